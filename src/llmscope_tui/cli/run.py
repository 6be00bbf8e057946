"""Running the monitor: the terminal UI, the log (headless or text), or the UI in a browser."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from llmscope_tui.cli.common import check_runnable, fail, settings_for
from llmscope_tui.cli.parser import PROG
from llmscope_tui.ingest import IngestOptions
from llmscope_tui.processes import PARENT_ENV, end_children, watch_serve_parent

#: serve, told to stop: how long its apps get after SIGTERM (then SIGKILL), and the bound on
#: the whole exit.
CHILD_GRACE_S = 4.0
SERVE_EXIT_S = CHILD_GRACE_S + 4.0

#: Flags that only make sense for a log run: with any of them and no --tui, no UI opens.
_LOG_FLAGS = ("format", "log_file", "duration", "count", "fail_on", "summary_json", "baseline_from")


def wants_tui(args: argparse.Namespace) -> bool:
    """The UI opens with --tui, or by default when a person is at a terminal; a pipe, a service
    or CI (stdin or stdout not a terminal) and the log-only flags get the text/JSON log instead."""
    if args.headless:
        return False
    if args.tui:
        return True
    if any(getattr(args, name) for name in _LOG_FLAGS):
        return False
    return _is_terminal(sys.stdin) and _is_terminal(sys.stdout)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def run_log(args: argparse.Namespace) -> int:
    from llmscope_tui import logfile
    from llmscope_tui.headless import HeadlessError, HeadlessOptions, run_headless
    from llmscope_tui.store import StoreError

    settings = settings_for(args)
    check_runnable(settings, ingest=args.ingest_port is not None)
    if not settings.demo and not settings.targets:
        print(f"{PROG}: {settings.config_file} has no [[targets]]: ingest only, on port {args.ingest_port}", file=sys.stderr)
    baselines = None
    if args.baseline_from is not None:
        from llmscope_tui.gate.baselines import BaselineFileError, load

        try:
            baselines = load(args.baseline_from.expanduser())
        except BaselineFileError as exc:
            return fail(str(exc))
    if args.summary_json is not None and args.count is None and args.duration is None:
        return fail("--summary-json summarises a bounded run: give --count N or --duration TIME too")
    if args.summary_json is not None and str(args.summary_json) == "-" and args.log_file is None:
        return fail("--summary-json -: stdout carries the log; give --log-file too, or a file for the summary")
    options = HeadlessOptions(
        log_file=args.log_file,
        duration_s=args.duration,
        count=args.count,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        fail_on=tuple(args.fail_on),
        # Not a terminal and not --headless (a pipe, `| tee`): readable lines, as the UI would say.
        format=args.format or ("json" if args.headless else "text"),
        ingest=IngestOptions.from_env(args.ingest_port, args.ingest_host) if args.ingest_port is not None else None,
        summary_json=args.summary_json.expanduser() if args.summary_json is not None else None,
        baselines=baselines,
    )
    handlers = logfile.attach_headless()  # tracebacks to the log file, one line on stderr
    try:
        return run_headless(settings, options)
    except (HeadlessError, StoreError) as exc:
        return fail(str(exc))
    finally:
        for handler in handlers:
            logfile.detach(handler)


def run_tui(args: argparse.Namespace) -> int:
    """The Textual face (imported only here: the headless path never loads Textual)."""
    from llmscope_tui import logfile
    from llmscope_tui.session import demo_ready
    from llmscope_tui.store import StoreError, check_writable
    from llmscope_tui.store.holder import HeldError, hold
    from llmscope_tui.tui.app import LLMScopeApp
    from llmscope_tui.viewer import FileViewer

    settings = settings_for(args)
    check_runnable(settings)
    watch_serve_parent()  # a browser tab's app: end when serve does
    log_handler = logfile.attach()  # the screen is the UI's: warnings and tracebacks go here
    try:
        with demo_ready(settings) as session, ExitStack() as holding:
            ready = session.settings
            try:  # one monitor per data file: on a held file the UI is a viewer of it
                holding.enter_context(hold(ready.db_path))
                monitor = session.monitor()
                check_writable(ready.db_path)  # exit 2 now, not a monitor failing inside the screen
            except HeldError as held:
                monitor = FileViewer(ready, held.holder)
            fps = args.fps if args.fps is not None else ready.tui.fps
            app = LLMScopeApp(ready, fps=fps, monitor=monitor, exit_watchdog=True, freeze_gc=True)
            try:
                app.run(mouse=ready.tui.mouse and not args.no_mouse)
            finally:
                app.disarm_watchdog()
            unsaved = app.monitor.summary.unsaved
            if unsaved:
                print(f"{PROG}: {unsaved} samples could not be saved to {ready.db_path}", file=sys.stderr)
                return 1
            return app.return_code or 0
    except StoreError as exc:
        return fail(str(exc))
    finally:
        if log_handler is not None:
            logfile.detach(log_handler)


def serve(args: argparse.Namespace) -> int:
    """The TUI in a browser through textual-serve: each browser tab runs its own
    `llmscope-tui --tui` process; the first holds the data file and probes, later tabs are
    viewers of it (store/holder.py). An app ends with serve (processes.py). textual-serve has no login,
    so only loopback is allowed; from another machine, tunnel: ssh -L 8000:127.0.0.1:8000 HOST."""
    import shlex

    from llmscope_tui.ingest import is_loopback

    try:
        _ServeEndingChildren = _serve_class()
    except ImportError:
        return fail("serve needs textual-serve: pip install 'llmscope-tui[serve]'")
    if not is_loopback(args.host):
        return fail(
            f"--host {args.host}: serve has no login, so it listens on loopback only; "
            f"from another machine use: ssh -L {args.port}:127.0.0.1:{args.port} THIS_HOST"
        )
    settings = settings_for(args)  # a bad config is reported here, once, not in every browser tab
    check_runnable(settings)
    command = [sys.executable, "-m", "llmscope_tui", "--tui"]
    for flag in ("config", "db"):
        if getattr(args, flag, None):
            command += [f"--{flag}", str(Path(getattr(args, flag)).expanduser().resolve())]
    if getattr(args, "demo", False):
        command.append("--demo")
    if args.fps is not None:
        command += ["--fps", str(args.fps)]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"{PROG}: serving the TUI at http://{host}:{args.port} (Ctrl+C stops)", file=sys.stderr)
    os.environ[PARENT_ENV] = str(os.getpid())  # each tab's app ends when serve does
    line = shlex.join(command)
    # `exec`: the app replaces the shell textual-serve starts, so it is serve's own child
    _ServeEndingChildren(line if os.name == "nt" else f"exec {line}", host=args.host, port=args.port, title=PROG).serve()
    return 0


def _serve_class() -> type:
    """textual-serve's Server whose stop (SIGINT, SIGTERM) first ends the apps it started:
    otherwise it waits for every open tab's app to finish, for ever if one never does."""
    from textual_serve.server import Server

    class ServeEndingChildren(Server):
        def request_exit(self) -> None:
            from aiohttp.web_runner import GracefulExit

            # whatever still blocks the shutdown after that, the process ends within a bound
            bound = threading.Timer(SERVE_EXIT_S, os._exit, (0,))
            bound.daemon = True
            bound.start()
            end_children(os.getpid(), grace_s=CHILD_GRACE_S)
            raise GracefulExit()

    return ServeEndingChildren

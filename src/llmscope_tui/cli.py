"""The `llmscope-tui` command: run (live view), --headless, export, check-config.

Every user mistake (bad flag, bad config, unreadable file) ends in one line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmscope_tui import __version__, paths
from llmscope_tui.config import FPS_RANGE, ConfigError, Settings, load_settings
from llmscope_tui.durations import parse_duration
from llmscope_tui.ingest import IngestConfigError, IngestOptions

PROG = "llmscope-tui"
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (and exit 2) instead of usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _fps(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    low, high = FPS_RANGE
    if not low <= number <= high:
        raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}, got {value}")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="config file (TOML)")
    common.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help="SQLite data file")
    common.add_argument(
        "--demo", action="store_true", default=argparse.SUPPRESS, help="use the built-in demo provider and demo.db"
    )

    parser = _Parser(
        prog=PROG,
        parents=[common],
        description="Live monitor for LLM APIs: TTFT, latency, throughput, errors and cost, with SPC.",
        epilog="'llmscope-tui COMMAND --help' shows a command's options. Docs: README.md and docs/.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--headless", action="store_true", help="run without UI, one JSON object per line")
    parser.add_argument(
        "--tui", action="store_true", help="open the terminal UI (the default when stdin and stdout are a terminal)"
    )
    parser.add_argument(
        "--fps",
        metavar="N",
        type=_fps,
        default=None,
        help="TUI screen updates per second (default 4, or [tui] fps; lower on slow links)",
    )
    parser.add_argument("--no-mouse", action="store_true", help="TUI: leave the mouse to the terminal (its own text selection)")
    parser.add_argument(
        "--format",
        choices=("json", "text"),
        default=None,
        help="log format: json (default with --headless) or text (readable lines, no UI)",
    )
    parser.add_argument("--log-file", metavar="FILE", type=Path, help="write the log here instead of stdout")
    parser.add_argument("--duration", metavar="SECONDS", type=_duration, help="stop after this long (e.g. 90s, 5m)")
    parser.add_argument("--count", metavar="N", type=_positive_int, help="stop after N samples")
    parser.add_argument("--metrics-port", metavar="PORT", type=_port, help="serve Prometheus metrics on this port")
    parser.add_argument(
        "--metrics-host", metavar="HOST", default="127.0.0.1", help="address for --metrics-port (default 127.0.0.1)"
    )
    parser.add_argument(
        "--fail-on",
        metavar="WHAT",
        action="append",
        choices=("incident", "error", "violation", "budget"),
        default=[],
        help="exit 1 (naming what and where on stderr) if an incident opened, a probe failed, an SPC "
        "rule fired or a budget reached 100 %%; repeatable",
    )

    parser.add_argument(
        "--ingest-port",
        metavar="PORT",
        type=_port,
        help="accept application usage on POST /v1/events (off by default; llmscope_tui.client posts to 8787)",
    )
    parser.add_argument(
        "--ingest-host",
        metavar="HOST",
        default="127.0.0.1",
        help="address for --ingest-port (default 127.0.0.1; any other needs LLMSCOPE_API_KEY)",
    )

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    export = sub.add_parser("export", parents=[common], help="write a CSV snapshot of stored samples")
    export.add_argument("--csv", metavar="FILE", required=True, help="output file, or - for stdout")
    export.add_argument("--since", metavar="AGE", type=_duration, help="only samples newer than this (e.g. 24h, 7d)")
    export.add_argument("--target", metavar="NAME", help="only this target")
    sub.add_parser("check-config", parents=[common], help="show the resolved settings, or the config errors")
    ing = sub.add_parser("ingest", parents=[common], help="import application usage records from a JSON-lines file")
    ing.add_argument("file", metavar="FILE", type=Path)
    report = sub.add_parser("report", parents=[common], help="rollups, spend, budgets and recommendations")
    report.add_argument("--window", choices=("1h", "24h", "7d"), default="24h", help="rollup window (default 24h)")
    report.add_argument("--by", choices=("target", "provider"), default="target", help="group rollups by")
    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="watch the TUI from a browser (pip install 'llmscope-tui[serve]'); loopback only",
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument("--fps", metavar="N", type=_fps, default=None, help="TUI screen updates per second")
    rebase = sub.add_parser(
        "rebaseline",
        parents=[common],
        help="start new SPC baselines (next run), or freeze them from a past time window",
    )
    rebase.add_argument("--target", metavar="NAME", help="only this target (default: all)")
    rebase.add_argument("--since", metavar="AGE", type=_duration, help="window start, as an age (e.g. 3h)")
    rebase.add_argument("--until", metavar="AGE", type=_duration, help="window end, as an age (default: now)")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(
        getattr(args, "config", None),
        db=getattr(args, "db", None),
        demo=getattr(args, "demo", False),
    )
    if settings.demo and args.command in ("report", "ingest"):
        from llmscope_tui.session import demo_prices

        settings.prices = [*settings.prices, *demo_prices()]  # price the demo's data like the demo did
    return settings


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            return _export(args)
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "ingest":
            return _ingest(args)
        if args.command == "report":
            return _report(args)
        if args.command == "rebaseline":
            return _rebaseline(args)
        if args.command == "serve":
            return _serve(args)
        if _wants_tui(args):
            return _run_tui(args)
        return _run(args)
    except (ConfigError, IngestConfigError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


#: Flags that only make sense for a log run: with any of them and no --tui, no UI opens.
_LOG_FLAGS = ("format", "log_file", "duration", "count", "fail_on")


def _wants_tui(args: argparse.Namespace) -> bool:
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


def _runnable(settings: Settings) -> None:
    if settings.targets and not settings.enabled_targets:
        reasons = "; ".join(f"{t.name}: {t.disabled_reason}" for t in settings.targets)
        raise ConfigError(f"no target can run ({reasons})")


def _run(args: argparse.Namespace) -> int:
    from llmscope_tui.headless import HeadlessError, HeadlessOptions, run_headless
    from llmscope_tui.store import StoreError

    settings = _settings(args)
    _runnable(settings)
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
    )
    try:
        return run_headless(settings, options)
    except (HeadlessError, StoreError) as exc:
        return _fail(str(exc))


def _run_tui(args: argparse.Namespace) -> int:
    """The Textual face (imported only here: the headless path never loads Textual)."""
    from llmscope_tui.session import demo_ready
    from llmscope_tui.store import StoreError
    from llmscope_tui.tui.app import LLMScopeApp

    settings = _settings(args)
    _runnable(settings)
    try:
        with demo_ready(settings) as session:
            ready = session.settings
            fps = args.fps if args.fps is not None else ready.tui.fps
            app = LLMScopeApp(
                ready, fps=fps, monitor=session.monitor(), exit_watchdog=True, freeze_gc=True
            )
            try:
                app.run(mouse=ready.tui.mouse and not args.no_mouse)
            finally:
                app.disarm_watchdog()
            return app.return_code or 0
    except StoreError as exc:
        return _fail(str(exc))


def _serve(args: argparse.Namespace) -> int:
    """The TUI in a browser through textual-serve: each browser tab runs its own
    `llmscope-tui --tui` process (its own probes), so open one tab. textual-serve has no login,
    so only loopback is allowed; from another machine, tunnel: ssh -L 8000:127.0.0.1:8000 HOST."""
    import shlex

    from llmscope_tui.ingest import is_loopback

    try:
        from textual_serve.server import Server
    except ImportError:
        return _fail("serve needs textual-serve: pip install 'llmscope-tui[serve]'")
    if not is_loopback(args.host):
        return _fail(
            f"--host {args.host}: serve has no login, so it listens on loopback only; "
            f"from another machine use: ssh -L {args.port}:127.0.0.1:{args.port} THIS_HOST"
        )
    settings = _settings(args)  # a bad config is reported here, once, not in every browser tab
    _runnable(settings)
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
    Server(shlex.join(command), host=args.host, port=args.port, title=PROG).serve()
    return 0


def _ingest(args: argparse.Namespace) -> int:
    """Import application usage from a JSON-lines file: priced and stored like live ingestion."""
    from llmscope_tui.costs import PriceBook
    from llmscope_tui.ingest import import_file
    from llmscope_tui.store import SampleStore, StoreError

    settings = _settings(args)
    prices = PriceBook(settings.prices)
    try:
        store = SampleStore(_resolve_db(args, settings))
    except StoreError as exc:
        return _fail(str(exc))

    def sink(samples: list[Any]) -> None:
        for sample in samples:
            if sample.cost_usd is None and (sample.tokens_in is not None or sample.tokens_out is not None):
                sample.cost_usd = prices.cost_sample(sample)
        store.add_many(samples)

    try:
        report = import_file(args.file, sink)
    finally:
        store.close()
    for line in report.lines(args.file):
        print(f"{PROG}: {line}", file=sys.stderr)
    return 1 if report.refused else 0


def _resolve_db(args: argparse.Namespace, settings: Settings) -> Path:
    if getattr(args, "demo", False) and "db" not in settings.sources:
        return paths.data_dir() / "demo.db"
    return settings.db_path


def _export(args: argparse.Namespace) -> int:
    from llmscope_tui.export import write_csv
    from llmscope_tui.store import StoreError

    settings = _settings(args)
    db = _resolve_db(args, settings)
    since = time.time() - args.since if args.since else None
    try:
        if args.csv == "-":
            count = write_csv(db, sys.stdout, since=since, target=args.target)
        else:
            count = write_csv(db, Path(args.csv).expanduser(), since=since, target=args.target)
    except StoreError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{args.csv}: cannot write CSV: {exc.strerror or exc}")
    where = "stdout" if args.csv == "-" else str(Path(args.csv).expanduser())
    print(f"{PROG}: wrote {count} samples from {db} to {where}", file=sys.stderr)
    return 0


def _check_config(args: argparse.Namespace) -> int:
    settings = _settings(args)
    out = sys.stdout
    if settings.config_file:
        out.write(f"config file:  {settings.config_file}\n")
    elif settings.demo:
        out.write("config file:  none found, and no provider keys: the demo runs (simulated provider)\n")
        out.write(f"              (searched {paths.default_config_file()} and LLMSCOPE_CONFIG)\n")
    else:
        out.write("config file:  none found: one target per provider key in the environment\n")
    db = _resolve_db(args, settings) if not settings.demo else paths.data_dir() / "demo.db"
    if settings.demo and "db" in settings.sources:
        db = settings.db_path
    source = settings.sources.get("db")
    out.write(f"data file:    {db}{f'  (from {source})' if source else ''}\n")
    out.write(f"themes:       {paths.user_themes_dir()}\n")
    out.write(
        f"monitor:      interval {settings.interval_s:g}s, timeout {settings.timeout_s:g}s "
        f"(connect {settings.connect_timeout_s:g}s, first token {settings.first_token_timeout_s:g}s), "
        f"concurrency {settings.concurrency}, retention {settings.retention_days:g} days\n"
    )
    spc = settings.spc
    out.write(
        f"spc:          baseline {spc.baseline_samples} samples, transform {spc.transform}, "
        f"rules {','.join(map(str, spc.rules))}, metrics {','.join(spc.metrics)}\n"
    )
    accept = "only by a rebaseline" if spc.accept_after_s is None else f"after {spc.accept_after_s:g}s or a rebaseline"
    out.write(
        f"incidents:    changes for the {'worse' if spc.alert_on == 'worse' else 'worse or better'}, "
        f"min_effect {spc.min_effect * 100:g}% and {spc.min_change_ms:g} ms, cusum k {spc.cusum_k:g} h {spc.cusum_h:g}, "
        f"close after {spc.close_after} quiet probes, a new level accepted {accept}\n"
    )
    if settings.demo:
        out.write("targets:      4 simulated demo targets (openai, anthropic, gemini, ollama protocols)\n")
        return 0
    _write_costs(settings, out)
    out.write(f"targets:      {len(settings.targets)}\n")
    for t in settings.targets:
        if t.api_key_env:
            key = f"key from {t.api_key_env} ({'set' if os.environ.get(t.api_key_env) else 'NOT SET'})"
        else:
            key = "no key"
        state = "" if t.enabled else f"  DISABLED: {t.disabled_reason}"
        out.write(
            f"  - {t.name}: {t.provider} {t.model} at {t.base_url}, every {t.interval_s:g}s, "
            f"max_tokens {t.max_tokens}, {key}{state}\n"
        )
    try:
        _runnable(settings)
    except ConfigError as exc:
        return _fail(str(exc))
    return 0


def _write_costs(settings: Settings, out: Any) -> None:
    """Probe overhead before it is spent, unpriced models, budgets (check-config)."""
    from llmscope_tui.costs import PriceBook, format_usd
    from llmscope_tui.report import overhead

    lines, per_day, per_month, unpriced = overhead(settings, PriceBook(settings.prices))
    out.write(f"probe cost:   {format_usd(per_day)}/day, {format_usd(per_month)}/month at these intervals (upper bound)\n")
    for line in lines:
        cost = "unpriced" if line.per_day is None else f"{format_usd(line.per_day)}/day"
        out.write(f"  - {line.target}: {line.probes_per_day:,.0f} probes/day, {cost}\n")
    if unpriced:
        out.write(f"unpriced:     {', '.join(unpriced)} (no cost recorded; add [[prices]] to set one)\n")
    for budget in settings.budgets:
        pause = f", pause probes at {budget.pause_probes_at * 100:g}%" if budget.pause_probes_at else ""
        out.write(f"budget:       {budget.name}: {format_usd(budget.limit_usd)} per {budget.period}, {budget.scope}{pause}\n")


def _open_reader(args: argparse.Namespace, settings: Settings) -> Any:
    from llmscope_tui.store import open_readonly

    return open_readonly(_resolve_db(args, settings))


def _report(args: argparse.Namespace) -> int:
    from llmscope_tui.report import render_report
    from llmscope_tui.store import StoreError

    settings = _settings(args)
    try:
        with _open_reader(args, settings) as store:
            sys.stdout.write(render_report(store, settings, args.window, args.by))
    except StoreError as exc:
        return _fail(str(exc))
    return 0


def _rebaseline(args: argparse.Namespace) -> int:
    from llmscope_tui.spc.bank import ChartBank
    from llmscope_tui.store import SampleStore, StoreError

    settings = _settings(args)
    db = _resolve_db(args, settings)
    if not db.exists():
        return _fail(f"no data file at {db}")
    if args.until is not None and args.since is None:
        return _fail("--until needs --since (the window start)")
    try:
        store = SampleStore(db)
    except StoreError as exc:
        return _fail(str(exc))
    try:
        bank = ChartBank(settings.spc, store)
        who = args.target or "every target"
        store.close_incidents(args.target, time.time(), "rebaselined")
        if args.since is None:
            bank.rebaseline(args.target)
            print(f"{PROG}: cleared the baselines of {who}; the next {settings.spc.baseline_samples} good "
                  "samples of each metric set new limits (a running monitor: press b in the TUI, or restart it)")
            return 0
        now = time.time()
        start, end = now - args.since, now - (args.until or 0)
        if end <= start:
            return _fail("--since must be further back than --until")
        targets = [args.target] if args.target else store.targets()
        frozen = 0
        for name in targets:
            for metric, baseline in bank.baseline_from_window(name, start, end):
                frozen += 1
                print(f"  {name} {metric}: center {baseline.center:.4g}, sigma {baseline.sigma:.4g} "
                      f"from {baseline.n_used} samples")
        if not frozen:
            return _fail("no successful samples in that window to take a baseline from")
        print(f"{PROG}: froze {frozen} baselines from that window (used from the next start)")
        return 0
    finally:
        store.close()

"""Run the monitor with no UI: JSON lines to stdout or a file, optional Prometheus and ingest endpoints.

This face composes the monitor with the HTTP listeners it asked for (llmscope_tui.server):
bound before the run, served once the monitor has started.

Never imports textual. SIGINT/SIGTERM/SIGHUP stop the run cleanly (a second signal stops
at once); every sample taken is on disk before the process exits. The log is written by a thread
of its own (:class:`~llmscope_tui.background_writer.BackgroundWriter`): an output nobody reads
never holds up probing.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import anyio

from llmscope_tui.background_writer import BackgroundWriter, TextOutput
from llmscope_tui.config import Settings
from llmscope_tui.costs import format_usd
from llmscope_tui.gate import BaselineFileError, BaselineSet, RunRecorder, conclude
from llmscope_tui.gate.checks import (
    EXIT_FAILED_CHECK,
    EXIT_OK,
    EXIT_USAGE,
    exit_code,
    failed_checks,
)
from llmscope_tui.gate.summary import check_writable
from llmscope_tui.ingest import IngestOptions
from llmscope_tui.metrics import MetricsExporter
from llmscope_tui.monitor import Monitor, RunSummary
from llmscope_tui.paths import open_private
from llmscope_tui.server import BindError, Endpoints
from llmscope_tui.session import demo_ready
from llmscope_tui.store.holder import hold

__all__ = [
    "EXIT_FAILED_CHECK",
    "EXIT_OK",
    "EXIT_USAGE",
    "HeadlessError",
    "HeadlessOptions",
    "exit_code",
    "failed_checks",
    "format_event",
    "run_headless",
]

#: the start event's clock (probe/netclock.clock_in_use) in words: who stamps t0 and arrivals
CLOCK_WORDS = {
    "kernel": "sends and arrivals stamped by the kernel",
    "kernel-rx": "arrivals stamped by the kernel, sends in user space",
    "user": "stamped in user space",
}


@dataclass(slots=True)
class HeadlessOptions:
    log_file: Path | None = None
    duration_s: float | None = None
    count: int | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    fail_on: tuple[str, ...] = ()
    format: str = "json"  # "json" (DESIGN 8 log) or "text" (one readable line per event)
    ingest: IngestOptions | None = None
    summary_json: Path | None = None  # the end-of-run summary as JSON (schemas/summary.schema.json)
    baselines: BaselineSet | None = None  # frozen limits to judge against from the first probe


class HeadlessError(Exception):
    """A problem that stops a headless run before it starts (one line, exit 2)."""


class JsonLinesWriter:
    """Writes each event as one JSON object per line, flushed, so `tail -f` and jq see it live.

    The line is made here, on the monitor's loop (the event as it is now); the run gives it a
    :class:`BackgroundWriter` as ``stream``, so the write itself never waits for the output."""

    def __init__(self, stream: TextOutput) -> None:
        self.stream = stream
        self.broken = False

    def __call__(self, event: dict[str, Any]) -> None:
        if self.broken:
            return
        try:
            self.stream.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away (e.g. `| head`)
            self.broken = True


class TextWriter(JsonLinesWriter):
    """One readable line per event, for a person watching a terminal.

    A line carries the time it is written (a probe's when it finished), not the event's ``ts``
    (a probe's start): probes end in another order than they start, and a log read top to
    bottom must run forward in time. The JSON log keeps ``ts`` as DESIGN 4 defines it."""

    def __init__(self, stream: TextOutput, clock: Callable[[], float] = time.time) -> None:
        super().__init__(stream)
        self.clock = clock

    def __call__(self, event: dict[str, Any]) -> None:
        line = format_event(event, at=self.clock())
        if line is None or self.broken:
            return
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            self.broken = True


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}ms"


def format_event(event: dict[str, Any], at: float | None = None) -> str | None:
    """A short human line for an event, or None for events not worth a line.

    Per-point rule firings are left to the JSON log; a person is told about incidents (opened,
    closed, and updates that change what to do: its alert says so), so a sustained change is
    two lines, not hundreds. ``at`` is the time shown (default: the event's ``ts``).
    """
    stamp = time.strftime("%H:%M:%S", time.localtime(event.get("ts", 0) if at is None else at))
    kind = event.get("event")
    if kind == "sample":
        head = f"{stamp} {event['target'][:16]:<16}"
        if not event["ok"]:
            status = f" {event['http_status']}" if event.get("http_status") else ""
            retry = f" retry {event['retry_after_s']:g}s" if event.get("retry_after_s") is not None else ""
            return f"{head} FAIL {event['error_kind']}{status}{retry}: {event.get('error_message') or ''}"
        tps = "-" if event.get("tps") is None else f"{event['tps']:.0f}/s"
        est = "~" if event.get("tokens_estimated") else ""
        cost = "" if event.get("cost_usd") is None else f" {format_usd(event['cost_usd'])}"
        return (
            f"{head} ok ttft {_ms(event.get('ttft_ms')):>7} lat {_ms(event.get('latency_ms')):>7} "
            f"{tps:>5} {est}{event.get('tokens_in')}>{est}{event.get('tokens_out')}{cost}"
        )
    if kind == "alert":
        if event.get("kind") == "incident" and (event.get("details") or {}).get("state") != "updated":
            return None  # the incident's own line says it
        return f"{stamp} ALERT ({event['severity']}): {event['text']}"
    if kind == "incident":
        if event["state"] == "updated":
            return None  # its alert says so when an update matters
        word = "INCIDENT" if event["state"] == "opened" else "resolved"
        return f"{stamp} {word}: {event['text']}"
    if kind == "error":
        return f"{stamp} error: {event['message']}"
    if kind == "start":
        names = ", ".join(t["name"] for t in event["targets"] if t["enabled"])
        clock = CLOCK_WORDS.get(event.get("clock") or "user", CLOCK_WORDS["user"])
        return f"{stamp} probing {names} ({clock})\n{stamp} data file {event['db']}"
    if kind == "stop":
        return (
            f"{stamp} stop ({event['reason']}): {event['samples']} samples, {event['failed']} failed, "
            f"{event.get('incidents', 0)} incidents"
        )
    if kind == "budget":
        return f"{stamp} budget: {event.get('message', '')}"
    return None


def _open_log(path: Path | None) -> IO[str]:
    if path is None:
        return sys.stdout
    try:
        return open_private(path)  # 0600 in a 0700 folder: samples and errors are the user's
    except OSError as exc:
        raise HeadlessError(f"{path}: cannot open log file: {exc.strerror or exc}") from None


def run_headless(settings: Settings, options: HeadlessOptions) -> int:
    """Run until stopped or bounded by duration/count; returns the process exit code.

    The summary (table, ``--fail-on`` lines) goes to stderr once the log is closed, so it comes
    after the log's last line on a terminal and never mixes into a JSON-lines stdout."""
    if options.summary_json is not None and str(options.summary_json) != "-":
        try:
            check_writable(options.summary_json)
        except OSError as exc:
            raise HeadlessError(f"{options.summary_json}: cannot write the summary there: {exc.strerror or exc}") from None
    stream = _open_log(options.log_file)
    out = BackgroundWriter(stream, name="log")
    writer = TextWriter(out) if options.format == "text" else JsonLinesWriter(out)
    exporter = MetricsExporter(settings.location) if options.metrics_port is not None else None
    endpoints: Endpoints | None = None
    recorder = RunRecorder()
    otlp = None
    try:
        otlp = _otlp_exporter(settings)
        with demo_ready(settings) as session, hold(session.settings.db_path):  # one monitor per data file
            ready = session.settings
            monitor = session.monitor()
            monitor.subscribe(writer)
            if options.count is not None or options.duration_s is not None:
                monitor.subscribe(recorder)  # a summary is of a bounded run: memory stays bounded
            if options.baselines is not None:
                _judge_against(options.baselines, monitor)
            if otlp is not None:
                monitor.subscribe(otlp)
            endpoints = _endpoints(monitor, options, exporter)
            if exporter is not None:
                monitor.subscribe(exporter)
                exporter.watch_budgets(monitor.budgets.spent_now)
                exporter.watch_pace(monitor.reads_on_loop)
                monitor.on_prepared.append(lambda m: exporter.seed_incidents(m.incidents.open_incidents()))
                print(
                    f"llmscope-tui: metrics on http://{options.metrics_host}:{endpoints.metrics_port}/metrics",
                    file=sys.stderr,
                )
            if ready.demo:
                print(
                    f"llmscope-tui: DEMO - {len(ready.targets)} simulated targets "
                    "(no config file, no provider keys); Ctrl-C stops",
                    file=sys.stderr,
                )
            try:
                summary = anyio.run(_run, monitor, options, endpoints)
            except BaseExceptionGroup as group:
                raise _sole_error(group) from None
    finally:
        if endpoints is not None:
            endpoints.close()
        if otlp is not None:
            otlp.close()  # the last measurements reach the collector
        out.close()  # every queued line written, waiting a bounded time for a slow reader
        if stream is not sys.stdout:
            stream.close()
    return conclude(recorder, summary, fail_on=options.fail_on, count=options.count, duration_s=options.duration_s,
                    baselines=options.baselines, summary_json=options.summary_json)


def _judge_against(baselines: BaselineSet, monitor: Monitor) -> None:
    """Use a baseline file's limits from the first probe (one line on stderr says so, and what
    it leaves unused); a file that cannot serve this run stops it (exit 2)."""
    try:
        notes = baselines.check_against(monitor.settings)
    except BaselineFileError as exc:
        raise HeadlessError(str(exc)) from None
    monitor.on_prepared.append(baselines.apply)
    print(
        f"llmscope-tui: judging against {baselines.path} ({len(baselines.limits)} limits of "
        f"{', '.join(baselines.targets())}, taken {baselines.created})",
        file=sys.stderr,
    )
    for note in notes:
        print(f"llmscope-tui: baseline: {note}", file=sys.stderr)


def _otlp_exporter(settings: Settings) -> Any:
    """The OTLP exporter when [otlp] endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) is set, else None;
    imported only then, so a run without it never loads opentelemetry."""
    if settings.otlp.endpoint is None:
        return None
    from llmscope_tui import __version__
    from llmscope_tui.otlp import OtlpExporter, missing_packages

    problem = missing_packages()
    if problem is not None:
        raise HeadlessError(problem)
    return OtlpExporter(settings.otlp.endpoint, settings.location, settings.otlp.interval_s, __version__)


def _sole_error(group: BaseExceptionGroup) -> BaseException:
    """Task groups wrap errors; a single user-facing one (port in use, bad data file) is
    re-raised alone so the CLI can print it as one line."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return leaves[0] if len(leaves) == 1 else group


def _endpoints(monitor: Monitor, options: HeadlessOptions, exporter: MetricsExporter | None) -> Endpoints:
    """Bind the ingest and metrics listeners now (a taken port stops the run before it starts)."""
    metrics = None
    if exporter is not None:
        metrics = (exporter.registry, options.metrics_host, options.metrics_port or 0)
    try:
        endpoints = Endpoints(ingest=options.ingest, sink=monitor.ingest, clock=monitor.wall_clock, metrics=metrics)
    except BindError as exc:
        raise HeadlessError(str(exc)) from None
    monitor.ingest_url = endpoints.events_url
    return endpoints


async def _run(monitor: Monitor, options: HeadlessOptions, endpoints: Endpoints | None = None) -> RunSummary:
    started = anyio.Event()
    monitor.subscribe(lambda event: started.set() if event.get("event") == "start" else None)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_stop_on_signals, monitor, tg.cancel_scope)
        if endpoints is not None:
            tg.start_soon(endpoints.serve, started)  # records are taken once the store is open
        await monitor.run(duration_s=options.duration_s, count=options.count)
        tg.cancel_scope.cancel()
    return monitor.summary


async def _stop_on_signals(monitor: Monitor, scope: anyio.CancelScope) -> None:
    signals = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGHUP"):
        signals.append(signal.SIGHUP)
    with anyio.open_signal_receiver(*signals) as received:
        async for signum in received:
            if monitor.scheduler is not None and monitor.scheduler.stopping:
                scope.cancel()  # second signal: stop now (the store still closes, shielded)
                return
            monitor.stop(f"signal {signal.Signals(signum).name}")

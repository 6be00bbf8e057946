"""The command line: flags and subcommands, and argparse types whose errors read as one line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llmscope_tui import __version__
from llmscope_tui.config import FPS_RANGE
from llmscope_tui.durations import parse_duration

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


def _plot_size(value: str) -> tuple[int, int]:
    from llmscope_tui.plots import parse_size  # plotext loads only for report --plot

    try:
        return parse_size(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _number(value: str, kind: type[int | float], what: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None


def _out_of_range(message: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(message)


def _positive_int(value: str) -> int:
    number: int = _number(value, int, "a whole number")
    if number < 1:
        raise _out_of_range(f"must be at least 1, got {number}")
    return number


def _fps(value: str) -> float:
    number: float = _number(value, float, "a number")
    low, high = FPS_RANGE
    if not low <= number <= high:
        raise _out_of_range(f"must be between {low:g} and {high:g}, got {value}")
    return number


def _port(value: str) -> int:
    number: int = _number(value, int, "a port number")
    if not 0 <= number <= 65535:
        raise _out_of_range(f"expected a port number 0-65535, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
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
        "--summary-json",
        metavar="FILE",
        type=Path,
        help="at the end of a bounded run (--count, --duration), write its summary as JSON here "
        "(0600; - for stdout with --log-file); docs/ci.md",
    )
    parser.add_argument(
        "--baseline-from",
        metavar="FILE",
        type=Path,
        help="judge probes against the SPC limits of a file from 'baseline save' from the first one, "
        "instead of learning limits in this run",
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
    report.add_argument(
        "--plot",
        action="store_true",
        help="after the text, plot TTFT p50/p95 per target and spend per day in the terminal",
    )
    report.add_argument(
        "--plot-size",
        metavar="WxH",
        type=_plot_size,
        help="size of the plots in columns x lines (default: the terminal's, or COLUMNS/LINES)",
    )
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
    base = sub.add_parser("baseline", parents=[common], help="save SPC limits to a file for --baseline-from (docs/ci.md)")
    base_sub = base.add_subparsers(dest="baseline_command", metavar="ACTION", required=True, parser_class=_Parser)
    save = base_sub.add_parser(
        "save",
        parents=[common],
        help="write the data file's frozen baselines (or, with --since, limits from a time window) to FILE",
    )
    save.add_argument("file", metavar="FILE", type=Path)
    save.add_argument("--target", metavar="NAME", help="only this target (default: all)")
    save.add_argument("--since", metavar="AGE", type=_duration, help="new limits from samples since this age (e.g. 3h)")
    save.add_argument("--until", metavar="AGE", type=_duration, help="window end, as an age (default: now)")
    return parser

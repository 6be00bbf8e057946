"""The `llmscope-tui` command: run (live view), --headless, export, check-config, ingest, report,
rebaseline, baseline save, serve.

Every user mistake (bad flag, bad config, unreadable file) ends in one line on stderr and exit
code 2, never a traceback. parser.py has the flags, run.py the faces, commands.py the
subcommands, common.py what they share.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmscope_tui.cli import commands
from llmscope_tui.cli.common import fail
from llmscope_tui.cli.parser import EXIT_USAGE, PROG, build_parser
from llmscope_tui.cli.run import run_log, run_tui, serve, wants_tui
from llmscope_tui.config import ConfigError
from llmscope_tui.ingest import IngestConfigError

__all__ = ["EXIT_USAGE", "PROG", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            return commands.export(args)
        if args.command == "check-config":
            return commands.check_config(args)
        if args.command == "ingest":
            return commands.ingest(args)
        if args.command == "report":
            return commands.report(args)
        if args.command == "rebaseline":
            return commands.rebaseline(args)
        if args.command == "baseline":
            return commands.baseline_save(args)
        if args.command == "serve":
            return serve(args)
        if wants_tui(args):
            return run_tui(args)
        return run_log(args)
    except (ConfigError, IngestConfigError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130

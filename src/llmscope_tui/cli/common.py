"""What every command does first: settings from the flags, the data file, one-line failures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llmscope_tui import paths
from llmscope_tui.cli.parser import EXIT_USAGE, PROG
from llmscope_tui.config import ConfigError, Settings, load_settings
from llmscope_tui.redaction import scrub


def settings_for(args: argparse.Namespace) -> Settings:
    settings = load_settings(
        getattr(args, "config", None),
        db=getattr(args, "db", None),
        demo=getattr(args, "demo", False),
    )
    for warning in settings.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if settings.demo and args.command in ("report", "ingest"):
        from llmscope_tui.session import demo_prices

        settings.prices = [*settings.prices, *demo_prices()]  # price the demo's data like the demo did
    return settings


def fail(message: str) -> int:
    print(f"{PROG}: {scrub(message)}", file=sys.stderr)  # an exception's text may quote a key
    return EXIT_USAGE


def check_runnable(settings: Settings, ingest: bool = False) -> None:
    """A run needs a target it can probe, or (``ingest``) the ingest endpoint to serve alone."""
    if not settings.demo and not settings.targets:
        if ingest:
            return
        raise ConfigError(
            f"{settings.config_file}: no [[targets]] to probe; add one (docs/configuration.md), "
            "use --ingest-port to only record application usage, or --demo for the simulated provider"
        )
    if settings.targets and not settings.enabled_targets:
        reasons = "; ".join(f"{t.name}: {t.disabled_reason}" for t in settings.targets)
        raise ConfigError(f"no target can run ({reasons})")


def resolve_db(args: argparse.Namespace, settings: Settings) -> Path:
    if getattr(args, "demo", False) and "db" not in settings.sources:
        return paths.data_dir() / "demo.db"
    return settings.db_path

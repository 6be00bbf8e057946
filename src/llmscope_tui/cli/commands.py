"""The subcommands that work on a data file or a config: export, check-config, ingest, report,
rebaseline."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from llmscope_tui import paths
from llmscope_tui.cli.common import check_runnable, fail, resolve_db, settings_for
from llmscope_tui.cli.parser import PROG
from llmscope_tui.config import ConfigError, Settings


def ingest(args: argparse.Namespace) -> int:
    """Import application usage from a JSON-lines file: priced and stored like live ingestion."""
    from llmscope_tui.costs import PriceBook
    from llmscope_tui.ingest import import_file
    from llmscope_tui.store import SampleStore, StoreError

    settings = settings_for(args)
    prices = PriceBook(settings.prices)
    try:
        store = SampleStore(resolve_db(args, settings))
    except StoreError as exc:
        return fail(str(exc))

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


def export(args: argparse.Namespace) -> int:
    from llmscope_tui.export import write_csv
    from llmscope_tui.store import StoreError

    settings = settings_for(args)
    db = resolve_db(args, settings)
    since = time.time() - args.since if args.since else None
    try:
        if args.csv == "-":
            count = write_csv(db, sys.stdout, since=since, target=args.target)
        else:
            count = write_csv(db, Path(args.csv).expanduser(), since=since, target=args.target)
    except StoreError as exc:
        return fail(str(exc))
    except OSError as exc:
        return fail(f"{args.csv}: cannot write CSV: {exc.strerror or exc}")
    where = "stdout" if args.csv == "-" else str(Path(args.csv).expanduser())
    print(f"{PROG}: wrote {count} samples from {db} to {where}", file=sys.stderr)
    return 0


def check_config(args: argparse.Namespace) -> int:
    settings = settings_for(args)
    out = sys.stdout
    if settings.config_file:
        out.write(f"config file:  {settings.config_file}\n")
    elif settings.demo:
        out.write("config file:  none found, and no provider keys: the demo runs (simulated provider)\n")
        out.write(f"              (searched {paths.default_config_file()} and LLMSCOPE_CONFIG)\n")
    else:
        out.write("config file:  none found: one target per provider key in the environment\n")
    db = resolve_db(args, settings) if not settings.demo else paths.data_dir() / "demo.db"
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
    where = settings.sources.get("location")
    out.write(f"location:     {settings.location}{f'  (from {where})' if where else '  (host name)'}\n")
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
    otlp_problem = _write_otlp(settings, out)
    if otlp_problem is not None:
        return fail(otlp_problem)
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
        check_runnable(settings)
    except ConfigError as exc:
        return fail(str(exc))
    return 0


def _write_otlp(settings: Settings, out: Any) -> str | None:
    """The OTLP line (never its headers); the problem when it is set but its extra is missing."""
    otlp = settings.otlp
    if otlp.endpoint is None:
        out.write("otlp:         off\n")
        return None
    from llmscope_tui.otlp import missing_packages

    where = settings.sources.get("otlp")
    out.write(f"otlp:         {otlp.endpoint}/v1/metrics every {otlp.interval_s:g}s{f'  (from {where})' if where else ''}\n")
    return missing_packages()


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

    return open_readonly(resolve_db(args, settings))


def _plots(store: Any, args: argparse.Namespace) -> str:
    """report --plot: sized to the terminal (COLUMNS/LINES win) unless --plot-size; plain (no
    color, ASCII frame) for a pipe or with NO_COLOR set."""
    import shutil

    from llmscope_tui.plots import render_plots

    size = args.plot_size or tuple(shutil.get_terminal_size())
    plain = bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()
    return render_plots(store, args.window, size, plain=plain)


def report(args: argparse.Namespace) -> int:
    from llmscope_tui.report import render_report
    from llmscope_tui.store import StoreError

    settings = settings_for(args)
    try:
        with _open_reader(args, settings) as store:
            sys.stdout.write(render_report(store, settings, args.window, args.by))
            if args.plot:
                sys.stdout.write("\n" + _plots(store, args))
    except StoreError as exc:
        return fail(str(exc))
    return 0


def rebaseline(args: argparse.Namespace) -> int:
    from llmscope_tui.spc.bank import ChartBank
    from llmscope_tui.store import SampleStore, StoreError
    from llmscope_tui.store.holder import HeldError, hold

    settings = settings_for(args)
    db = resolve_db(args, settings)
    if not db.exists():
        return fail(f"no data file at {db}")
    if args.until is not None and args.since is None:
        return fail("--until needs --since (the window start)")
    try:
        holding = hold(db)  # it writes the file: not under a live monitor's feet
    except HeldError as exc:
        return fail(f"{db} is being written by another llmscope-tui ({exc.holder.words()}); "
                    "rebaseline there (b in its TUI), or stop it first")
    except StoreError as exc:
        return fail(str(exc))
    try:
        store = SampleStore(db)
    except StoreError as exc:
        holding.release()
        return fail(str(exc))
    try:
        known = sorted({t.name for t in settings.targets} | set(store.targets()))
        if args.target and args.target not in known:
            return fail(f"--target {args.target}: no such target in the config or the data file (known: {', '.join(known) or 'none'})")
        bank = ChartBank(settings.spc, store)
        who = args.target or "every target"
        store.close_incidents(args.target, time.time(), "rebaselined")
        if args.since is None:
            bank.rebaseline(args.target)
            print(f"{PROG}: cleared the baselines of {who}; the next {settings.spc.baseline_samples} good "
                  "samples of each metric set new limits")
            return 0
        now = time.time()
        start, end = now - args.since, now - (args.until or 0)
        if end <= start:
            return fail("--since must be further back than --until")
        targets = [args.target] if args.target else store.targets()
        frozen = 0
        for name in targets:
            for metric, baseline in bank.baseline_from_window(name, start, end):
                frozen += 1
                print(f"  {name} {metric}: center {baseline.center:.4g}, sigma {baseline.sigma:.4g} "
                      f"from {baseline.n_used} samples")
        if not frozen:
            return fail("no successful samples in that window to take a baseline from")
        print(f"{PROG}: froze {frozen} baselines from that window (used from the next start)")
        return 0
    finally:
        store.close()
        holding.release()

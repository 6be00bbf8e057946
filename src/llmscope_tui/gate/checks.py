"""The ``--fail-on`` checks of a bounded run and DESIGN 8's exit codes.

Two shapes of the same verdict: one line per failed check for stderr (what a person reads in a
CI log) and one ``{check, target, detail}`` record per failed check and target for the JSON
summary (what a pipeline or a dashboard reads).
"""

from __future__ import annotations

import sys
from typing import IO, Any

from llmscope_tui.monitor import RunSummary

EXIT_OK, EXIT_FAILED_CHECK, EXIT_USAGE = 0, 1, 2
CHECKS = ("incident", "error", "violation", "budget")


def failed_checks(summary: RunSummary, fail_on: tuple[str, ...]) -> list[str]:
    """What a bounded run found among the ``--fail-on`` checks, one line each, saying where."""
    found = []
    if "incident" in fail_on and summary.incidents:
        first = summary.first_incident or ""
        more = f" (and {summary.incidents - 1} more)" if summary.incidents > 1 else ""
        found.append(f"incident: {first}{more}")
    if "error" in fail_on and summary.errors:
        where = "; ".join(
            f"{target}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            for target, kinds in sorted(summary.errors_by.items())
        )
        found.append(f"error: {summary.errors} failed probes ({where})")
    if "violation" in fail_on and summary.violations:
        where = ", ".join(f"{key} {n}" for key, n in sorted(summary.violations_by.items()))
        found.append(f"violation: {summary.violations} SPC rule firings ({where})")
    if "budget" in fail_on and summary.budgets_exceeded:
        found.append(f"budget: {', '.join(summary.budgets_exceeded)} reached 100 %")
    return found


def exit_code(summary: RunSummary, fail_on: tuple[str, ...], stderr: IO[str] | None = None) -> int:
    """DESIGN 8 exit codes for a finished run; a failed check, or samples that never reached
    the data file, are named on ``stderr``."""
    found = failed_checks(summary, fail_on)
    if summary.unsaved:
        print(f"llmscope-tui: {summary.unsaved} samples could not be saved to the data file", file=stderr or sys.stderr)
        return EXIT_FAILED_CHECK
    if not found:
        return EXIT_OK
    for line in found:
        print(f"llmscope-tui: --fail-on {line}", file=stderr or sys.stderr)
    return EXIT_FAILED_CHECK


def failure_records(
    summary: RunSummary,
    fail_on: tuple[str, ...],
    incidents: list[tuple[str, str]],
    rules: dict[tuple[str, str], set[int]],
) -> list[dict[str, Any]]:
    """The failed checks as ``{check, target, detail}``, one per check and target (target None
    for what belongs to no one target: a budget, unsaved samples).

    ``incidents``: (target, text) of each incident opened in the run; ``rules``: the Nelson rules
    that fired per (target, metric).
    """
    out: list[dict[str, Any]] = []
    if "incident" in fail_on:
        out += [{"check": "incident", "target": target, "detail": text} for target, text in incidents]
    if "error" in fail_on:
        for target, kinds in sorted(summary.errors_by.items()):
            detail = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            out.append({"check": "error", "target": target, "detail": f"{sum(kinds.values())} failed probes ({detail})"})
    if "violation" in fail_on:
        for key, n in sorted(summary.violations_by.items()):
            target, _, metric = key.rpartition(" ")
            fired = ",".join(map(str, sorted(rules.get((target, metric), set()))))
            out.append({"check": "violation", "target": target, "detail": f"{metric}: {n} rule firings (rules {fired})"})
    if "budget" in fail_on:
        out += [{"check": "budget", "target": None, "detail": f"budget {name} reached 100 %"} for name in summary.budgets_exceeded]
    if summary.unsaved:
        out.append({"check": "unsaved", "target": None, "detail": f"{summary.unsaved} samples could not be saved to the data file"})
    return out

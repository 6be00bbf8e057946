"""Pydantic's validation errors -> our one problem: a key path and a message in the house style.

Pydantic's own wording never reaches a user: each error type it can raise for this schema has a
sentence here, and anything unforeseen still gets a plain "not a valid value" line.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from llmscope_tui.config.schema import TABLES, ConfigFile, Loc, Problem

#: What a strict type check expected, as the user reads it.
_EXPECTED = {
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a whole number or a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a table",
    "model_type": "a table",
}

_SECTIONS = list(ConfigFile.model_fields)


def first_problem(error: ValidationError) -> tuple[Loc, str]:
    """The problem to report: the first in file-reading order, unknown keys before the rest.

    Pydantic lists every error it found; the user gets one line, chosen the way the checks
    always ran: top-level unknown keys, then [monitor], [spc], [alerts], [tui], budgets, prices,
    targets; within a table an unknown key, then a missing one, then the values in key order.
    """
    ranked = []
    for details in error.errors(include_url=False):
        loc, message = _translate(details)
        ranked.append((_rank(loc, details["type"]), loc, message))
    _, loc, message = min(ranked, key=lambda item: item[0])  # min keeps the first of equals
    return loc, message


def _rank(loc: Loc, kind: str) -> tuple[int, int, int]:
    if not loc or (len(loc) == 1 and kind == "extra_forbidden"):
        return (-1, 0, 0)
    section = _SECTIONS.index(str(loc[0])) if loc[0] in _SECTIONS else len(_SECTIONS)
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else -1
    return (section, index, {"extra_forbidden": 0, "missing": 1}.get(kind, 2))


def _translate(details: ErrorDetails) -> tuple[Loc, str]:
    loc: Loc = tuple(details["loc"])
    kind = details["type"]
    value = details.get("input")
    problem = (details.get("ctx") or {}).get("error")
    if isinstance(problem, Problem):
        return (loc[:-1] if problem.at_parent else (*loc, *problem.sub)), problem.message
    if kind == "extra_forbidden":
        return loc, f"unknown key (expected one of: {', '.join(_keys_at(loc[:-1]))})"
    if kind == "missing":
        return loc[:-1], f"missing required key {loc[-1]!r}"
    if kind in _EXPECTED:
        return loc, f"expected {_EXPECTED[kind]}, got {value!r}"
    return loc, f"not a valid value: {value!r}"


def _keys_at(loc: Loc) -> list[str]:
    pattern = tuple("*" if isinstance(part, int) else part for part in loc)
    model = TABLES.get(pattern)
    return sorted(model.model_fields) if model is not None else []

"""Rows <-> objects: Sample, Violation and Incident as the tables hold them, and value hygiene.

sqlite3 stores a numpy.int64 as an 8-byte BLOB without complaint and keeps a non-numeric string
in a REAL column, and a bad value found at commit time would fail a whole batch; so every row is
checked against its columns' types (taken from the dataclasses' annotations) before it is written.
"""

from __future__ import annotations

import json
import math
import operator
import types
import typing
from dataclasses import fields
from typing import Any

from llmscope_tui.incidents.model import Incident
from llmscope_tui.model import Sample, Violation
from llmscope_tui.store.schema import ALL_SAMPLE_COLUMNS, INCIDENT_COLUMNS, VIOLATION_COLUMNS

INT, REAL, TEXT = int, float, str
_KIND_WORD = {INT: "an integer", REAL: "a number", TEXT: "text"}


def _column_kinds(cls: type, names: tuple[str, ...]) -> tuple[type, ...]:
    """int, float or str per column, read from the dataclass annotation (``X | None`` -> X)."""
    hints = typing.get_type_hints(cls)
    kinds: list[type] = []
    for name in names:
        hint = hints[name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        (kind,) = (a for a in args if a is not type(None))
        if kind not in _KIND_WORD:
            raise TypeError(f"{cls.__name__}.{name}: no column type for {hint!r}")
        kinds.append(kind)
    return tuple(kinds)


SAMPLE_KINDS = _column_kinds(Sample, ALL_SAMPLE_COLUMNS)
VIOLATION_KINDS = _column_kinds(Violation, VIOLATION_COLUMNS)
SAMPLE_KIND_BY_NAME: dict[str, type] = dict(zip(ALL_SAMPLE_COLUMNS, SAMPLE_KINDS, strict=True))

#: Numeric sample columns that metric_series() can read (not the time, flags or counts of flags).
SERIES_COLUMNS: frozenset[str] = frozenset(
    name for name, kind in SAMPLE_KIND_BY_NAME.items() if kind is not TEXT
) - {"ts", "ok", "tokens_estimated"}
#: Text columns that spend can be grouped by.
GROUP_COLUMNS = frozenset({"target", "provider", "model", "source"})

sample_row = operator.attrgetter(*ALL_SAMPLE_COLUMNS)
violation_row = operator.attrgetter(*VIOLATION_COLUMNS)
_SAMPLE_DATACLASS_ORDER = tuple(f.name for f in fields(Sample)) == ALL_SAMPLE_COLUMNS


def text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


INSERT_SAMPLE = insert_sql("samples", ALL_SAMPLE_COLUMNS)
INSERT_VIOLATION = insert_sql("violations", VIOLATION_COLUMNS)


def to_sample(row: tuple[Any, ...]) -> Sample:
    if _SAMPLE_DATACLASS_ORDER:
        return Sample(*row)
    return Sample(**dict(zip(ALL_SAMPLE_COLUMNS, row, strict=True)))


def to_incident(row: tuple[Any, ...]) -> Incident:
    data = dict(zip(INCIDENT_COLUMNS, row, strict=True))
    try:
        data["metrics"] = json.loads(data["metrics"] or "[]")
        data["rules"] = json.loads(data["rules"] or "[]")
    except ValueError:
        data["metrics"], data["rules"] = [], []
    return Incident.from_event(data)


def incident_row(incident: Incident) -> tuple[Any, ...]:
    return (
        int(incident.id),
        incident.target,
        incident.provider,
        incident.scope,
        incident.severity,
        float(incident.start_ts),
        float(incident.opened_ts),
        incident.updated_ts,
        incident.closed_ts,
        incident.resolution,
        incident.error_kind,
        int(incident.down),
        float(incident.peak_z),
        json.dumps([m.as_dict() for m in incident.metrics.values()]),
        json.dumps(sorted(incident.rules)),
    )


def _plain(row: tuple[Any, ...], kinds: tuple[type, ...], required: int) -> bool:
    """True when every value already has its column's type (int allowed for REAL) and the
    required leading columns are present: the fast path, ~1 us per sample on the writer thread."""
    for value, kind in zip(row, kinds):
        if (
            value is not None
            and type(value) is not kind
            and not (kind is REAL and type(value) is int)
        ):
            return False
    for i in range(required):
        value = row[i]
        # None, NaN (sqlite would store NULL and refuse the row) or an infinite time
        if value is None or (type(value) is float and not math.isfinite(value)):
            return False
    return True


def _coerce(
    row: tuple[Any, ...],
    kinds: tuple[type, ...],
    names: tuple[str, ...],
    required: int,
    blanked: list[str],
) -> tuple[Any, ...]:
    """Plain Python values for sqlite, column by column.

    An optional value that cannot be converted (or NaN/inf in an integer column) is stored as
    NULL and described in ``blanked``, so the sample itself is kept; a missing or unusable
    required value (ts, target) raises ValueError.
    """
    out: list[Any] = []
    for i, (value, kind) in enumerate(zip(row, kinds, strict=True)):
        if value is not None and type(value) is not kind:
            try:
                if kind is INT:
                    try:
                        value = operator.index(value)  # int subclasses, numpy integers, bool
                    except TypeError:
                        number = float(value)
                        value = int(number) if math.isfinite(number) else None
                elif kind is REAL:
                    value = float(value)
                else:
                    value = str(value)
            except (TypeError, ValueError, OverflowError):
                problem = f"{names[i]}={value!r} is not {_KIND_WORD[kind]}"
                if i < required:
                    raise ValueError(problem) from None
                blanked.append(problem)
                value = None
        if i < required and (value is None or (type(value) is float and not math.isfinite(value))):
            raise ValueError(f"{names[i]} is required, got {value!r}")
        out.append(value)
    return tuple(out)


def prepare(
    rows: list[tuple[Any, ...]], kinds: tuple[type, ...], names: tuple[str, ...], required: int
) -> tuple[list[tuple[Any, ...]], list[str], list[str]]:
    """(rows fit to store, why rows were dropped, which values were blanked).

    Rows that are already plain (the normal case) pass untouched.
    """
    if all(_plain(row, kinds, required) for row in rows):
        return rows, [], []
    out: list[tuple[Any, ...]] = []
    dropped: list[str] = []
    blanked: list[str] = []
    for row in rows:
        try:
            out.append(_coerce(row, kinds, names, required, blanked))
        except ValueError as exc:
            dropped.append(str(exc))
    return out, dropped, blanked

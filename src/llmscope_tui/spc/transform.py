"""The charted scale: input checks and the optional log transform (DESIGN 6).

Why its own module: the batch engine, the baseline and the live chart must all refuse the same
bad input with the same words and put values on the same scale with the same numpy kernel, so
that live and batch results agree bit for bit.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

import numpy as np

#: The supported chart transforms: chart x itself, or chart log(x).
TRANSFORMS: tuple[str, ...] = ("none", "log")


def check_transform(transform: str) -> str:
    """The transform name itself, or ValueError naming the ones there are."""
    if transform not in TRANSFORMS:
        expected = ", ".join(TRANSFORMS)
        raise ValueError(f"unknown transform {transform!r}: expected one of {expected}")
    return transform


def checked_int(value: Any, low: int, high: int | None, message: str) -> int:
    """``value`` as an int in [low, high] (no upper bound when None); ValueError(message) for
    anything else, bools included (``True`` is not a rule number or a size)."""
    if isinstance(value, bool):
        raise ValueError(message)  # noqa: TRY004 (ValueError is the API)
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(message) from None
    if number < low or (high is not None and number > high):
        raise ValueError(message)
    return number


def as_series(values: Iterable[float], what: str = "values") -> np.ndarray:
    """A 1-D float64 array of finite numbers (a fresh copy); ValueError otherwise."""
    if isinstance(values, np.ndarray):
        arr = values
    else:
        if not hasattr(values, "__len__"):
            values = list(values)
        arr = np.asarray(values)
    try:
        arr = np.array(arr, dtype=np.float64)  # always a copy: callers may not alias ours
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a one-dimensional series, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"{what} must be finite numbers: position {bad} (0-based) is {arr[bad]!r}"
        )
    return arr


def transform_values(values: Iterable[float], transform: str = "none") -> np.ndarray:
    """The values on the charted scale: a float64 copy ("none") or their natural log ("log").

    Raises ValueError for NaN/inf, for an unknown transform, and -- with "log" -- for any value
    <= 0 (the log of a non-positive number is undefined; such values are refused, never
    clipped or dropped silently, so the caller decides what a zero latency means).
    """
    check_transform(transform)
    arr = as_series(values)
    if transform == "log":
        bad = arr <= 0.0
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise ValueError(
                "the log transform needs values > 0: "
                f"position {pos} (0-based) is {arr[pos]!r}"
            )
        np.log(arr, out=arr)
    return arr


def untransform_values(values: Iterable[float], transform: str = "none") -> np.ndarray:
    """The inverse of :func:`transform_values`: charted scale -> original unit (exp for log)."""
    check_transform(transform)
    arr = np.array(values, dtype=np.float64)
    if transform == "log":
        with np.errstate(over="ignore"):
            np.exp(arr, out=arr)
    return arr


"""One target's failures: is it down, or failing far more often than it usually does?

A single 500 from a provider that fails one probe in 500 is not news; five of the last twenty
are. The test is a binomial tail against the target's own error rate (learned from the probes
that left the window while no incident was open, never below 1 %): an error burst is at least
``m`` failures among the last ``WINDOW`` probes, where ``m`` is the smallest count that the usual
rate produces less than once in ``1/ALPHA`` probes; "down" is ``d`` failures in a row, with ``d``
just as improbable (3 for a target that usually fails 1 % of the time or less). Cancelled probes
(stopped by a shutdown) are not the provider's doing and are ignored.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: The probes an error burst is judged over.
WINDOW = 20
#: Chance, per probe, that the usual error rate alone opens an error incident (about one in
#: 17 days at a 15 s interval).
ALPHA = 1e-5
#: The error rate assumed until a target has shown its own (one failure in 100 probes).
PRIOR_ERRORS, PRIOR_PROBES = 1.0, 100.0
RATE_FLOOR = 0.01


@lru_cache(maxsize=512)
def burst_threshold(rate: float, window: int = WINDOW, alpha: float = ALPHA) -> int:
    """The fewest failures among ``window`` probes that ``rate`` makes rarer than ``alpha``."""
    rate = min(max(rate, 1e-9), 0.999)
    tail = 1.0
    for m in range(window + 1):
        if m >= 3 and tail < alpha:
            return m
        tail -= math.comb(window, m) * rate**m * (1 - rate) ** (window - m)  # P(X >= m + 1)
    return window + 1  # the usual rate is so high that no window is surprising


@lru_cache(maxsize=512)
def down_threshold(rate: float, alpha: float = ALPHA) -> int:
    """The fewest failures in a row that ``rate`` makes rarer than ``alpha`` (at least 3)."""
    rate = min(max(rate, 1e-9), 0.999)
    return max(3, math.ceil(math.log(alpha) / math.log(rate)))


@dataclass(frozen=True, slots=True)
class ErrorStatus:
    """down: d failures in a row; burst: m of the last WINDOW failed; kind: the most common
    error kind among the window's failures; failures/probes: the window's counts."""

    down: bool
    burst: bool
    kind: str | None
    failures: int
    probes: int
    in_a_row: int

    @property
    def active(self) -> bool:
        return self.down or self.burst


class ErrorDetector:
    """Error bursts and outages of one target (module docstring)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: each recent probe: [error kind or None if ok, held: part of an incident, never learnt]
        self._window: deque[list[Any]] = deque()
        self._failures = 0
        self._in_a_row = 0
        self._ref_errors = 0
        self._ref_probes = 0
        self.last = ErrorStatus(False, False, None, 0, 0, 0)

    @property
    def usual_rate(self) -> float:
        """The error rate this target normally has (never below 1 %)."""
        rate = (self._ref_errors + PRIOR_ERRORS) / (self._ref_probes + PRIOR_PROBES)
        return max(RATE_FLOOR, rate)

    def add(self, ok: bool, error_kind: str | None, *, hold: bool = False) -> ErrorStatus:
        """One probe's outcome. ``hold``: an incident is open, so the usual rate does not learn."""
        kind = None if ok else (error_kind or "error")
        self._window.append([kind, hold])
        if kind is not None:
            self._failures += 1
            self._in_a_row += 1
        else:
            self._in_a_row = 0
        if len(self._window) > WINDOW:
            old, held = self._window.popleft()
            if old is not None:
                self._failures -= 1
            if not hold and not held:
                self._ref_probes += 1
                self._ref_errors += old is not None
        rate = self.usual_rate
        down = self._in_a_row >= down_threshold(round(rate, 4))
        burst = len(self._window) >= 3 and self._failures >= burst_threshold(round(rate, 4))
        kind_now = None
        if self._failures:
            counts = Counter(k for k, _ in self._window if k is not None)
            top = max(counts.values())
            kind_now = next(k for k, _ in reversed(self._window) if k is not None and counts[k] == top)
        self.last = ErrorStatus(down, burst, kind_now, self._failures, len(self._window), self._in_a_row)
        return self.last

    def hold_window(self) -> None:
        """An incident opened: the probes that led up to it are part of it, not the usual rate."""
        for entry in self._window:
            entry[1] = True

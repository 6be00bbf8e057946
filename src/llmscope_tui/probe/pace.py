"""When to read responses on the event loop instead of the connections' reader threads.

A reader thread per connection (probe/offloop.py) keeps the first token's kernel stamp exact
however late the loop is, for about the CPU of a loop read while the loop has time to spare.
On a saturated loop its wake-ups cost: each one takes the GIL from a loop that never lets go
of it, and a probe cost 25-40 % more CPU (bench_probe.py targets, 10-1,000 targets asking far
more than one core does), so the probes a core can do fell from about 400/s to 250-330/s.
When the machine already cannot keep the schedule, that would cut the probes further; then the
loop reads, and a first token read more than one inter-token gap late may take the next one's
stamp (still the kernel's: the run's `clock` stays the same).

Saturated = over a window of at least WINDOW_S, the loop's thread was busy (its own CPU time,
not the machine's) for more than BUSY of the time AND most probes that finished found their
next probe already due (they cannot keep their interval). Either alone is normal: a busy loop
that keeps its schedule is what the threads are for; a schedule missed on an idle loop is a
slow provider or a short interval, where loop reads are as exact as the thread's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Pace"]

WINDOW_S = 1.0
BUSY = 0.85
MISSED = 0.5
#: back to threads: below both
CALM_BUSY = 0.7
CALM_MISSED = 0.1


class Pace:
    """Counts probes that missed their schedule and samples the loop thread's CPU; says when
    the loop is saturated (reads on the loop) and when it is not any more."""

    def __init__(
        self,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self._clock, self._cpu_clock = clock, cpu_clock
        self._since, self._cpu = clock(), cpu_clock()
        self._thread = threading.get_ident()  # a thread's CPU clock means nothing on another
        self._finished = self._missed = 0
        self.saturated = False

    def finished(self, missed: bool) -> None:
        """A probe ended; missed: its target's next probe was already due."""
        self._finished += 1
        self._missed += missed

    def check(self) -> bool | None:
        """Call on the loop's thread (its CPU time is what counts). True when the loop just
        became saturated, False when it just stopped being, None otherwise."""
        now = self._clock()
        elapsed = now - self._since
        if elapsed < WINDOW_S:
            return None
        cpu, thread = self._cpu_clock(), threading.get_ident()
        busy = (cpu - self._cpu) / elapsed
        missed = self._missed / self._finished if self._finished else 0.0
        same_thread, self._thread = thread == self._thread, thread
        self._since, self._cpu, self._finished, self._missed = now, cpu, 0, 0
        if not same_thread:  # made on one thread, checked on the loop's: the next window counts
            return None
        if not self.saturated and busy > BUSY and missed > MISSED:
            self.saturated = True
            return True
        if self.saturated and (busy < CALM_BUSY or missed < CALM_MISSED):
            self.saturated = False
            return False
        return None

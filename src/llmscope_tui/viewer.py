"""A read-only viewer of a data file that another live monitor holds (store/holder.py).

It is shaped like a :class:`~llmscope_tui.monitor.Monitor` (the same events, ``charts``,
``prices``, ``summary``), so a face shows it with no special case beyond a banner; but it never
probes and never writes: every few seconds it reads what the holder stored since the last read
(samples, rule firings, incidents) and publishes it as the holder published it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import anyio

from llmscope_tui.config import Settings
from llmscope_tui.monitor import Event, Monitor, RunSummary
from llmscope_tui.spc.bank import violation_event
from llmscope_tui.store.holder import Holder

#: How often the viewer reads what the holder wrote.
VIEW_EVERY_S = 2.0
#: Incidents compared per read (the newest): an update to an older one is rare and not shown.
INCIDENTS_READ = 200


class ViewerError(RuntimeError):
    """What changes the monitor cannot be done from a viewer."""


class FileViewer(Monitor):
    """Publishes what a live monitor in another process writes to ``settings.db_path``."""

    def __init__(
        self,
        settings: Settings,
        holder: Holder,
        *,
        every_s: float = VIEW_EVERY_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(settings, wall_clock=wall_clock)
        self.holder = holder
        self.every_s = every_s
        self._wake: asyncio.Event | None = None
        self._last_id = 0
        self._last_violation_ts = 0.0
        self._incidents: dict[int, tuple[Any, ...]] = {}

    @property
    def banner(self) -> str:
        return f"VIEWER: PID {self.holder.pid or '?'} writes this file"

    def refusal(self, what: str) -> str:
        """Why a key that changes the monitor does nothing here."""
        return f"{what} does nothing in a viewer: {self.banner}; {what} there (or stop it and restart this one)"

    def stop(self, reason: str = "stopped", grace_s: float | None = None) -> None:
        self._stop_requested = True
        self.summary.reason = reason
        if self._wake is not None:
            self._wake.set()

    def rebaseline(self, target: str | None = None) -> list[tuple[str, str]]:
        raise ViewerError(self.refusal("rebaseline"))

    def ingest(self, samples: list[Any]) -> None:
        raise ViewerError("a viewer does not take application usage")

    async def run(self, *, duration_s: float | None = None, count: int | None = None) -> RunSummary:
        """Read the file until stop(): the first read only marks where the history ends (the
        face reads the history itself), later ones publish what was written since."""
        self._wake = asyncio.Event()
        if self._stop_requested:
            self._wake.set()
        await anyio.to_thread.run_sync(self._start)
        # a viewer stamps nothing: which clock the holder uses is its own start event's to say
        self.publish({**self._start_event(), "clock": None,
                      "viewer": {"pid": self.holder.pid, "since": self.holder.since}})
        while not self._stop_requested:
            with anyio.move_on_after(self.every_s):
                await self._wake.wait()
            if self._stop_requested:
                break
            for event in await anyio.to_thread.run_sync(self._read):
                self.publish(event)
        self.publish({"event": "stop", "ts": self.wall_clock(), "reason": self.summary.reason,
                      "samples": self.summary.samples, "failed": 0, "violations": 0, "incidents": 0})
        return self.summary

    def _open(self) -> Any:
        from llmscope_tui.store import open_readonly

        return open_readonly(self.settings.db_path)

    def _start(self) -> None:
        """Where the file ends now, and the limits its monitor froze (SPC for the charts)."""
        self.prices.snapshot()
        try:
            with self._open() as store:
                self._last_id = store.last_sample_id()
                newest = store.violations(limit=1)
                self._last_violation_ts = newest[-1].ts + 1e-6 if newest else 0.0
                self._incidents = {i.id: _state(i) for i in store.incidents(limit=INCIDENTS_READ)}
                self.charts.store = store
                self.charts.restore()
        except Exception as exc:  # noqa: BLE001 (a file not created yet or damaged: said, the loop retries)
            self._error(f"cannot read {self.settings.db_path}: {exc}", where="store")
        finally:
            self.charts.store = None  # the viewer's charts never write baselines

    def _read(self) -> list[Event]:
        """In a thread: the events for what was stored since the last read."""
        events: list[Event] = []
        try:
            with self._open() as store:
                self._last_id, samples = store.samples_after(self._last_id)
                for sample in samples:
                    self.summary.samples += 1
                    if sample.source == "probe":
                        self.charts.observe(sample)  # the limits drawn follow the file's probes
                    events.append({"event": "sample", **sample.to_dict()})
                fired = store.violations(since=self._last_violation_ts)
                for violation in fired:
                    events.append(violation_event(violation))
                if fired:
                    self._last_violation_ts = max(v.ts for v in fired) + 1e-6
                now = self.wall_clock()
                for incident in reversed(store.incidents(limit=INCIDENTS_READ)):
                    state = _state(incident)
                    if self._incidents.get(incident.id) != state:
                        known = incident.id in self._incidents
                        self._incidents[incident.id] = state
                        kind = "closed" if not incident.open else ("updated" if known else "opened")
                        events.append(incident.to_event(kind, now))
        except Exception as exc:  # noqa: BLE001 (the holder may be migrating or gone: say so, read again later)
            events.append({"event": "error", "ts": self.wall_clock(), "message": f"cannot read the data file: {exc}",
                           "where": "store"})
        return events


def _state(incident: Any) -> tuple[Any, ...]:
    """What changes when the holder updates an incident."""
    return (incident.updated_ts, incident.closed_ts, incident.errors, incident.peak_z, len(incident.metrics))

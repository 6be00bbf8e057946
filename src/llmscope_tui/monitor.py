"""Wires probe -> store -> (SPC, costs) and publishes events that faces subscribe to.

The monitor knows nothing of screens: the headless face prints its events as JSON lines, the
TUI renders them, the metrics endpoint counts them. Every event is a plain dict shaped as the
headless log line (DESIGN 8), so there is exactly one event vocabulary.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from llmscope_tui import __version__
from llmscope_tui.alerts import AlertRouter, budget_event_alert, incident_alert
from llmscope_tui.config import Settings
from llmscope_tui.costs import Budget, BudgetTracker, PriceBook, budget_event
from llmscope_tui.incidents import IncidentChange, IncidentEngine, PolicySettings
from llmscope_tui.model import Sample, not_the_providers_fault
from llmscope_tui.probe.netclock import clock_in_use
from llmscope_tui.probe.scheduler import ProbeScheduler
from llmscope_tui.probe.stream import Timeouts
from llmscope_tui.redaction import scrub_event
from llmscope_tui.spc.bank import ChartBank, violation_event
from llmscope_tui.store import SampleStore

log = logging.getLogger(__name__)

Event = dict[str, Any]
Subscriber = Callable[[Event], None]
#: Something besides the probes that has news (the demo's incident script): it runs for the
#: whole run on the monitor's loop, publishing through the function it is given.
EventSource = Callable[[Subscriber], Coroutine[Any, Any, None]]

RETENTION_EVERY_S = 3600.0
#: After a restart, the probes replayed into the incident engine: the reference's first points
#: (from the active baseline's start) and the latest ones (the sums and the error window).
REPLAY_REFERENCE = 1500
REPLAY_RECENT = 300


@dataclass(slots=True)
class RunSummary:
    """What a bounded run did, for exit codes (and what failed, for the line that says why)."""

    samples: int = 0
    failed: int = 0
    errors: int = 0  # failed samples that were the provider's (not cancelled, not internal)
    violations: int = 0
    incidents: int = 0  # incidents opened during the run
    reason: str = "stopped"
    errors_by: dict[str, dict[str, int]] = field(default_factory=dict)  # target -> error kind -> n
    violations_by: dict[str, int] = field(default_factory=dict)  # "target metric" -> firings
    first_incident: str | None = None  # the first one's text, for the line that says why
    budgets_exceeded: list[str] = field(default_factory=list)
    unsaved: int = 0  # samples the data file never took (it stayed unwritable): exit 1


class Monitor:
    """Runs the probe loop for the configured targets and publishes what happens."""

    def __init__(
        self,
        settings: Settings,
        *,
        store: SampleStore | None = None,
        env: dict[str, str] | None = None,
        wall_clock: Callable[[], float] = time.time,
        ingest_url: str | None = None,
        sources: Sequence[EventSource] = (),
    ) -> None:
        self.settings = settings
        self.sources = tuple(sources)
        #: Where the face serves ingest (it owns the server and calls :meth:`ingest`); for the start event.
        self.ingest_url = ingest_url
        self.env = env
        settings.remember_secrets(os.environ if env is None else env)
        self.wall_clock = wall_clock
        self._store = store
        self._own_store = store is None
        self._subscribers: list[Subscriber] = []
        self.summary = RunSummary()
        self.scheduler: ProbeScheduler | None = None
        self._stop_requested = False
        self._stop_grace_s: float | None = None
        self.prices = PriceBook(settings.prices)
        self.charts = ChartBank(settings.spc, store)
        self.alerts = AlertRouter(
            webhook_url=settings.alerts.webhook_url,
            cooldown_s=settings.alerts.cooldown_s,
            publish=self.publish,
            clock=wall_clock,
        )
        self.incidents = IncidentEngine(PolicySettings.from_spc(settings.spc), settings.targets)
        self.budgets = BudgetTracker(settings.budgets, clock=wall_clock)
        #: Called with the monitor once the data file's state is restored, before the first
        #: probe (in a worker thread): e.g. limits from a baseline file replace what it restored.
        self.on_prepared: list[Callable[[Monitor], None]] = []

    # -- events ----------------------------------------------------------------------------

    def reads_on_loop(self) -> bool:
        """The probe loop is saturated and reads responses itself (probe/pace.py); any thread."""
        scheduler = self.scheduler
        return scheduler is not None and scheduler.stats.reads_on_loop

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call subscriber(event) for every event, on the monitor's event loop thread."""
        self._subscribers.append(subscriber)

    def publish(self, event: Event) -> None:
        """Send event to every subscriber, with any key in its text redacted (the last guard
        before a face prints, logs or draws it; a no-op lookup for text already scrubbed)."""
        event = scrub_event(event)
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception:  # a broken face must not stop the probing
                log.exception("event subscriber failed")

    def _from_thread(self, fn: Callable[[str], None]) -> Callable[[str], None]:
        """Wrap fn so another thread (the store's writer) can call it: it runs on this loop, where
        subscribers expect every event."""
        loop = asyncio.get_running_loop()

        def call(message: str) -> None:
            try:
                loop.call_soon_threadsafe(fn, message)
            except RuntimeError:  # the loop has closed: nobody left to tell but the log
                log.error("%s", message)

        return call

    def _store_error(self, message: str) -> None:
        self._error(message, where="store")

    def _error(self, message: str, **extra: Any) -> None:
        self.publish({"event": "error", "ts": self.wall_clock(), "message": message, **extra})

    # -- the run -----------------------------------------------------------------------------

    @property
    def store(self) -> SampleStore:
        if self._store is None:
            raise RuntimeError("the monitor's store is opened by run()")
        return self._store

    def stop(self, reason: str = "stopped", grace_s: float | None = None) -> None:
        """Ask a running monitor to finish: no new probes, in-flight ones may complete within
        ``grace_s`` (default: the scheduler's, up to 5 s); later ones are stored as cancelled."""
        self._stop_requested = True
        self.summary.reason = reason
        if grace_s is not None:
            self._stop_grace_s = grace_s  # the scheduler keeps the shortest it was given
        if self.scheduler is not None:
            self.scheduler.stop(self._stop_grace_s)

    async def run(self, *, duration_s: float | None = None, count: int | None = None) -> RunSummary:
        """Probe until stop(), the duration passes or count samples are taken."""
        settings = self.settings
        if self._store is None:
            self._store = SampleStore(settings.db_path, on_error=self._from_thread(self._store_error))
        self.charts.store = self._store
        started = False
        try:
            await anyio.to_thread.run_sync(self._prepare)
            self.scheduler = ProbeScheduler(
                settings.targets,
                self._on_sample,
                timeouts=Timeouts(
                    connect_s=settings.connect_timeout_s,
                    first_token_s=settings.first_token_timeout_s,
                    total_s=settings.timeout_s,
                ),
                concurrency=settings.concurrency,
                env=self.env,
                max_probes=count,
                is_paused=self.budgets.should_pause,
                wall_clock=self.wall_clock,
                grace_s=min(5.0, settings.timeout_s),
            )
            self.publish(self._start_event())
            started = True
            for target in settings.targets:
                if not target.enabled:
                    self._error(f"target {target.name} is disabled: {target.disabled_reason}", target=target.name)
            if self._stop_requested:
                self.scheduler.stop(self._stop_grace_s)
            async with anyio.create_task_group() as tg:
                if duration_s is not None:
                    tg.start_soon(self._stop_after, duration_s)
                tg.start_soon(self._retention_loop)
                tg.start_soon(self.alerts.run)
                for source in self.sources:
                    tg.start_soon(source, self.publish)
                await self.scheduler.run()
                if count is not None and not self._stop_requested:
                    self.summary.reason = "count reached"
                await self.alerts.aclose()
                tg.cancel_scope.cancel()
        finally:
            # whatever happened, every sample taken reaches the disk and the file is closed
            with anyio.CancelScope(shield=True):
                await self._close_store()
                if started:
                    self.publish(
                        {
                            "event": "stop",
                            "ts": self.wall_clock(),
                            "reason": self.summary.reason,
                            "samples": self.summary.samples,
                            "failed": self.summary.failed,
                            "violations": self.summary.violations,
                            "incidents": self.summary.incidents,
                        }
                    )
        return self.summary

    def _start_event(self) -> Event:
        s = self.settings
        return {
            "event": "start",
            "ts": self.wall_clock(),
            "version": __version__,
            "location": s.location,
            "demo": s.demo,
            "config": str(s.config_file) if s.config_file else None,
            "db": str(s.db_path),
            "ingest": self.ingest_url,
            "clock": clock_in_use(),  # who stamps t0 and arrivals: kernel, kernel-rx (arrivals only) or user
            "targets": [
                {
                    "name": t.name,
                    "provider": t.provider,
                    "model": t.model,
                    "base_url": t.base_url,
                    "interval_s": t.interval_s,
                    "api_key_env": t.api_key_env,
                    "enabled": t.enabled,
                    "disabled_reason": t.disabled_reason,
                }
                for t in s.targets
            ],
        }

    def _prepare(self) -> None:
        """Blocking start-up work, run in a thread: load prices, restore frozen baselines."""
        self.prices.snapshot()  # load the price database here, not on the first sample
        for target in self.settings.targets:
            self.prices.is_priced(target.provider, target.model)
        self.charts.restore()
        self._restore_incidents()
        for hook in self.on_prepared:
            hook(self)
        self.budgets.seed(self._spend_since, self.store.first_sample_ts())

    def _restore_incidents(self) -> None:
        """Take up the incidents a previous run left open, with each target's detectors replayed
        from its stored probes (blocking reads: run from _prepare's thread)."""
        store = self.store
        self.incidents.next_id = store.max_incident_id() + 1
        starts: dict[str, float] = {}
        for (target, _), row in store.active_baselines().items():
            if row.get("window_start") is not None:
                starts[target] = min(starts.get(target, row["window_start"]), row["window_start"])
        history = {}
        for target, since in starts.items():
            first = store.probe_history(target, since=since, limit=REPLAY_REFERENCE)
            last = store.probe_history(target, since=since, limit=REPLAY_RECENT, newest=True)
            seen = first[-1][0] if first else float("-inf")
            history[target] = first + [row for row in last if row[0] > seen]
        self.incidents.restore(store.incidents(open_only=True), history)

    def _spend_since(self, budget: Budget, since: float) -> float:
        return float(self.store.spend(since=since, **budget.store_filter()))

    def _on_sample(self, sample: Sample) -> None:
        """A probe finished: count it, then the shared path, then SPC and incidents."""
        self.summary.samples += 1
        if not sample.ok:
            self.summary.failed += 1
            if not not_the_providers_fault(sample.error_kind):
                self.summary.errors += 1
                kinds = self.summary.errors_by.setdefault(sample.target, {})
                kinds[str(sample.error_kind)] = kinds.get(str(sample.error_kind), 0) + 1
        self._take(sample)
        update = self.charts.observe(sample)
        for violation in update.violations:
            self.store.add_violation(violation)
            self.summary.violations += 1
            where = f"{violation.target} {violation.metric}"
            self.summary.violations_by[where] = self.summary.violations_by.get(where, 0) + 1
            self.publish(violation_event(violation))
        rules = [v.rule for v in update.violations]
        for change in self.incidents.observe(sample, update.zs, rules):
            self._incident(change)
            if change.accepted:
                self._rebaseline_charts(change.incident.target, reason="accepted")

    def _incident(self, change: IncidentChange) -> None:
        """Store, publish and alert one incident change."""
        self.store.save_incident(change.incident)
        if change.state == "opened":
            self.summary.incidents += 1
            if self.summary.first_incident is None:
                self.summary.first_incident = change.incident.text(change.ts)
        self.publish(change.event())
        alert = incident_alert(change)
        if alert is not None:
            self.alerts.submit(alert)

    def ingest(self, samples: list[Sample]) -> None:
        """Application usage (source "app") from the ingest endpoint: priced, stored, published and
        counted against budgets; not charted (app traffic mixes prompts and models, so a control
        chart of it would flag the traffic, not the provider) and not counted in the run summary."""
        for sample in samples:
            self._take(sample)

    def _take(self, sample: Sample) -> None:
        """The hot path every sample takes: price, store, publish, budgets (no blocking I/O)."""
        if sample.cost_usd is None and (sample.tokens_in is not None or sample.tokens_out is not None):
            sample.cost_usd = self.prices.cost_sample(sample)
        self.store.add(sample)
        self.publish({"event": "sample", **sample.to_dict()})
        for event in self.budgets.observe(sample):
            if event.kind == "threshold" and (event.threshold or 0) >= 1.0 and event.budget not in self.summary.budgets_exceeded:
                self.summary.budgets_exceeded.append(event.budget)
            self.publish(budget_event(event, sample.ts))
            self.alerts.submit(budget_event_alert(event, ts=sample.ts))

    def rebaseline(self, target: str | None = None) -> list[tuple[str, str]]:
        """Start new baselines for one target, or all (the TUI binds this to a key); its open
        incident closes as "rebaselined"."""
        for change in self.incidents.rebaseline(target, self.wall_clock()):
            self._incident(change)
        return self._rebaseline_charts(target)

    def _rebaseline_charts(self, target: str | None, reason: str = "asked") -> list[tuple[str, str]]:
        keys = self.charts.rebaseline(target)
        self.publish(
            {"event": "rebaseline", "ts": self.wall_clock(), "target": target, "charts": len(keys), "reason": reason}
        )
        return keys

    async def _stop_after(self, seconds: float) -> None:
        await anyio.sleep(seconds)
        self.stop("duration reached")

    async def _retention_loop(self) -> None:
        while True:
            try:
                removed = await anyio.to_thread.run_sync(self.store.purge_older_than, self.settings.retention_days)
                if removed:
                    log.info("retention: removed %d rows older than %g days", removed, self.settings.retention_days)
            except Exception as exc:  # noqa: BLE001 - a purge failure must not stop probing; said below
                self._error(f"retention purge failed: {exc}", where="store")
            await anyio.sleep(RETENTION_EVERY_S)

    async def _close_store(self) -> None:
        if self._own_store and self._store is not None:
            await anyio.to_thread.run_sync(self._store.close)
            self.summary.unsaved = self._store.unsaved_samples

"""The probe loop: every target on its own interval, never overlapping, under one concurrency cap.

Scheduling runs on the monotonic clock (anyio.current_time). A slow probe delays that target's
next probe; it is never doubled up. First probes are staggered over the first interval so a
restart does not hit every provider at once. Stopping is graceful: no new probes start and the
ones in flight get a grace period before they are cancelled (and recorded as `cancelled`).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio
import httpx

from llmscope_tui.model import ErrorKind, Sample, Target
from llmscope_tui.probe.netclock import read_on_loop, use_kernel_clock
from llmscope_tui.probe.pace import Pace
from llmscope_tui.probe.pool import use_flat_pool
from llmscope_tui.probe.stream import Timeouts, internal_error, probe_once

log = logging.getLogger(__name__)
DEFAULT_TIMEOUTS = Timeouts()


@dataclass(slots=True)
class SchedulerStats:
    """Live counters for the status line, metrics and benchmarks."""

    started: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = 0
    #: Recent schedule lags in seconds (actual start - due time), newest last.
    lags_s: deque[float] = field(default_factory=lambda: deque(maxlen=4096))
    #: responses read on the event loop, not by the connections' reader threads (saturated, probe/pace.py)
    reads_on_loop: bool = False


def make_client(
    concurrency: int, timeouts: Timeouts, n_targets: int = 1, *, kernel_clock: bool = True, off_loop: bool = True
) -> httpx.AsyncClient:
    """One pooled client for all probes: keep-alive like a real app, no read timeout of its own
    (first-token and total limits are enforced by the probe); sends and arrivals stamped by the kernel
    where it can (probe/netclock.py; kernel_clock=False keeps httpx's own backend, for benches),
    each connection read by a thread of its own (probe/offloop.py; off_loop=False reads on the loop);
    its pool's bookkeeping flat in the number of connections (probe/pool.py)."""
    limits = httpx.Limits(max_connections=concurrency + n_targets, max_keepalive_connections=concurrency + n_targets)
    timeout = httpx.Timeout(connect=timeouts.connect_s, read=None, write=timeouts.connect_s, pool=timeouts.total_s)
    client = httpx.AsyncClient(limits=limits, timeout=timeout, headers={"accept-encoding": "identity"})
    if kernel_clock:
        use_kernel_clock(client, off_loop)
    use_flat_pool(client)
    return client


class ProbeScheduler:
    """Runs probe_once for each enabled target forever, or until stop() or max_probes."""

    def __init__(
        self,
        targets: list[Target],
        on_sample: Callable[[Sample], None],
        *,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        concurrency: int = 8,
        env: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        is_paused: Callable[[Target], bool] | None = None,
        jitter: float = 0.05,
        stagger: bool = True,
        max_probes: int | None = None,
        grace_s: float = 5.0,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.targets = [t for t in targets if t.enabled]
        self.on_sample = on_sample
        self.timeouts = timeouts
        self.concurrency = concurrency
        self.env = os.environ if env is None else env
        self._client = client
        self.is_paused = is_paused or (lambda target: False)
        self.jitter = jitter
        self.stagger = stagger
        self.max_probes = max_probes
        self.grace_s = grace_s
        self.rng = rng or random.Random()
        self.wall_clock = wall_clock
        self.stats = SchedulerStats()
        self._stopping = anyio.Event()
        self._regrace = anyio.Event()
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._pace = Pace()

    def stop(self, grace_s: float | None = None) -> None:
        """Start no new probe; in-flight probes get grace_s to finish (the one given here when it
        is shorter: a person quitting does not wait out a slow provider, and a second stop can
        cut a running grace short)."""
        if grace_s is not None and grace_s < self.grace_s:
            self.grace_s = max(0.0, grace_s)
            self._regrace.set()
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> None:
        """Probe until stop() or until max_probes have started and finished. With no targets
        (an ingest-only run) there is nothing to probe: it waits for stop()."""
        if not self.targets:
            await self._stopping.wait()
            return
        own_client = self._client is None
        client = self._client or make_client(self.concurrency, self.timeouts, len(self.targets))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._cancel_after_grace, tg.cancel_scope)
                async with anyio.create_task_group() as loops:
                    start = anyio.current_time()
                    for index, target in enumerate(self.targets):
                        offset = self._stagger_offset(index, target) if self.stagger else 0.0
                        loops.start_soon(self._target_loop, client, target, start + offset)
                tg.cancel_scope.cancel()  # every loop ended on its own: no grace period to wait for
        finally:
            if own_client:
                with anyio.CancelScope(shield=True):
                    await client.aclose()

    def _stagger_offset(self, index: int, target: Target) -> float:
        return target.interval_s * index / max(1, len(self.targets))

    async def _cancel_after_grace(self, scope: anyio.CancelScope) -> None:
        await self._stopping.wait()
        began = anyio.current_time()
        while (left := began + self.grace_s - anyio.current_time()) > 0:
            self._regrace = anyio.Event()
            with anyio.move_on_after(left):
                await self._regrace.wait()  # a later stop() with a shorter grace
        scope.cancel()

    def _next_due(self, due: float, interval: float, probed: bool = False) -> float:
        spread = interval * self.jitter
        nxt = due + interval + (self.rng.uniform(-spread, spread) if spread else 0.0)
        now = anyio.current_time()
        if probed:
            self._pace.finished(missed=nxt < now)
        return max(nxt, now)

    async def _wait_until(self, due: float) -> bool:
        """Sleep until due; False when stop() came first."""
        delay = due - anyio.current_time()
        if delay > 0:
            with anyio.move_on_after(delay):
                await self._stopping.wait()
        return not self._stopping.is_set()

    async def _target_loop(self, client: httpx.AsyncClient, target: Target, due: float) -> None:
        while await self._wait_until(due):
            if self.is_paused(target):
                due = self._next_due(due, target.interval_s)
                continue
            async with self._limiter:
                if self._stopping.is_set() or self._budget_spent():
                    break
                self.stats.lags_s.append(anyio.current_time() - due)
                self._keep_pace(client)
                self.stats.started += 1
                self.stats.in_flight += 1
                try:
                    sample = await self._probe(client, target)
                finally:
                    self.stats.in_flight -= 1
            self._record(sample)
            if self.max_probes is not None and self.stats.completed >= self.max_probes:
                self.stop()
            due = self._next_due(due, target.interval_s, probed=True)

    def _keep_pace(self, client: httpx.AsyncClient) -> None:
        """Responses read on the loop while it is saturated, by the reader threads otherwise
        (probe/pace.py says why and when)."""
        change = self._pace.check()
        if change is None or not read_on_loop(client, change):
            return
        self.stats.reads_on_loop = change
        if change:
            log.warning("the probe loop is saturated (probes cannot keep their intervals): responses are read "
                        "on the event loop until it is not (cheaper; a first token read late may take the "
                        "next token's stamp)")
        else:
            log.warning("the probe loop has time to spare again: responses are read by the connections' threads")

    def _budget_spent(self) -> bool:
        return self.max_probes is not None and self.stats.started >= self.max_probes

    async def _probe(self, client: httpx.AsyncClient, target: Target) -> Sample:
        api_key = self.env.get(target.api_key_env) if target.api_key_env else None
        started_wall = self.wall_clock()
        try:
            return await probe_once(client, target, api_key, self.timeouts, wall_clock=self.wall_clock)
        except Exception as exc:  # noqa: BLE001 - a bug of ours must not end the loop: record, go on
            return Sample.of(
                target,
                started_wall,
                error_kind=str(ErrorKind.INTERNAL),
                error_message=internal_error(target.name, exc),  # the key was remembered: redacted
            )
        except anyio.get_cancelled_exc_class():
            # Stopped mid-probe: the attempt still happened, so it is still a sample.
            self._record(
                Sample.of(
                    target,
                    started_wall,
                    error_kind=str(ErrorKind.CANCELLED),
                    error_message="stopped while the probe was in flight",
                )
            )
            raise

    def _record(self, sample: Sample) -> None:
        self.stats.completed += 1
        if not sample.ok:
            self.stats.failed += 1
        try:
            self.on_sample(sample)
        except Exception:  # whatever the consumer does wrong, the probing goes on
            log.exception("handling the sample of %s failed", sample.target)

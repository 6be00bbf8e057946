"""The demo provider: the simulated models' state (one seeded generator each, the timeline's
clock), the server that serves them, and the ``demo`` events that say which incident runs.

It keeps no growing state: one RNG per model and a few counters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Self

import anyio
import numpy as np

from llmscope_tui.demo.generation import Plan, draw_plan
from llmscope_tui.demo.profiles import DEFAULT_PROFILES, ModelProfile, demo_targets
from llmscope_tui.demo.server import DemoHandler
from llmscope_tui.demo.timeline import DemoTimeline, Running, incident_words
from llmscope_tui.model import Target
from llmscope_tui.server.app import endpoint
from llmscope_tui.server.run import Limits, ThreadedHTTPServer

__all__ = ["DEFAULT_SEED", "DemoProvider"]

DEFAULT_SEED = 20240617
#: How often the demo looks whether a scripted incident started or ended (seconds).
ANNOUNCE_EVERY_S = 0.5


class DemoProvider:
    """The simulated provider: start it, probe ``demo_targets(provider.base_url)``, stop it.

    ``clock`` (seconds, monotonic) and ``timeline`` drive the incidents; ``latency_scale`` scales
    every simulated delay (tests use small values); ``seed`` makes each model's draws repeatable
    for a given order of requests to it; ``wall_clock`` stamps the ``demo`` events.
    """

    def __init__(
        self,
        *,
        seed: int | None = DEFAULT_SEED,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        timeline: DemoTimeline | None = None,
        latency_scale: float = 1.0,
        background_errors: bool = True,
        profiles: Sequence[ModelProfile] = DEFAULT_PROFILES,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.clock = clock
        self.wall_clock = wall_clock
        self.timeline = timeline if timeline is not None else DemoTimeline()
        self.latency_scale = latency_scale
        self.background_errors = background_errors
        self.profiles: dict[str, ModelProfile] = {p.model: p for p in profiles}
        root = np.random.SeedSequence(seed)
        self._rngs: dict[str, np.random.Generator] = {
            p.model: np.random.default_rng(child)
            for p, child in zip(profiles, root.spawn(len(profiles)))
        }
        app = endpoint(DemoHandler(self), max_body_bytes=1_000_000, body_timeout_s=30)
        # no shutdown grace: a stopping demo ends its streams at once, as a dying provider would
        self._server = ThreadedHTTPServer(app, host, port, Limits(shutdown_timeout_s=0), name="llmscope-demo")
        self._t0: float | None = None
        self._announced: tuple[tuple[str, int], ...] | None = None
        #: Bounded counters, for the UI or tests.
        self.requests = 0
        self.rate_limited = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        self._t0 = self.clock()
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server.running

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def server(self) -> ThreadedHTTPServer:
        return self._server

    def targets(self, interval_s: float = 1.0) -> list[Target]:
        return demo_targets(
            self.base_url, interval_s=interval_s, profiles=tuple(self.profiles.values())
        )

    def elapsed(self) -> float:
        """Seconds since ``start()`` on the injected clock (0 before start)."""
        return 0.0 if self._t0 is None else self.clock() - self._t0

    # -- what runs now ---------------------------------------------------------------------------

    def _names(self) -> dict[str, str]:
        return {p.model: p.target_name for p in self.profiles.values()}

    def incident_now(self) -> str | None:
        """The scripted incident(s) active right now, in words (the demo page's ``incident``);
        None when calm."""
        return self.timeline.describe(self.elapsed(), self._names())

    def incident_event(self) -> dict[str, Any]:
        """The ``demo`` monitor event: what runs now, in words (``incident``, null when calm) and
        item by item (``running``) with wall-clock start and end, so a reader keeps the words'
        countdowns current (``timeline.event_words``) without asking again."""
        elapsed = self.elapsed()
        now = self.wall_clock()
        running = self.timeline.running(elapsed)
        names = self._names()
        return {
            "event": "demo",
            "ts": now,
            "incident": incident_words(running, elapsed, names),
            "running": [_running_item(r.moved(now - elapsed), names) for r in running],
        }

    def announce_due(self) -> dict[str, Any] | None:
        """The ``demo`` event when the running incidents differ from the last announced (the
        first call always announces); else None."""
        running = tuple((r.kind, r.cycle) for r in self.timeline.running(self.elapsed()))
        if running == self._announced:
            return None
        self._announced = running
        return self.incident_event()

    async def announce(self, publish: Callable[[dict[str, Any]], None]) -> None:
        """Publish a ``demo`` event now and whenever a scripted incident starts or ends, until
        cancelled: a monitor event source (``Monitor(sources=...)``)."""
        while True:
            event = self.announce_due()
            if event is not None:
                publish(event)
            await anyio.sleep(ANNOUNCE_EVERY_S)

    def about(self) -> dict[str, Any]:
        """What the demo is, for its root page."""
        return {
            "name": "llmscope-tui demo provider",
            "models": {
                p.model: {"protocol": p.protocol, "target": p.target_name, "personality": p.blurb}
                for p in self.profiles.values()
            },
            "incident": self.incident_now(),
        }

    # -- simulation ------------------------------------------------------------------------------

    def admit(
        self, profile: ModelProfile, elapsed: float | None = None
    ) -> tuple[str | None, float]:
        """Decide, at arrival, whether this request fails (the error kind) and how much the
        timeline slows it (the TTFT factor)."""
        self.requests += 1
        effect = self.timeline.effect(profile.model, self.elapsed() if elapsed is None else elapsed)
        if effect.rate_limited:
            self.rate_limited += 1
            return "rate_limit", effect.ttft_factor
        rng = self._rngs[profile.model]
        if (
            self.background_errors
            and profile.error_rate > 0
            and float(rng.random()) < profile.error_rate
        ):
            return profile.error_kind, effect.ttft_factor
        return None, effect.ttft_factor

    def plan(
        self, profile: ModelProfile, texts: Sequence[str], max_tokens: int | None, factor: float
    ) -> Plan:
        """Draw one reply of ``profile`` from its own generator."""
        return draw_plan(
            profile, self._rngs[profile.model], texts, max_tokens, factor, self.latency_scale
        )

    def simulate(
        self, model: str, elapsed: float, prompt: str = "Reply with the word OK."
    ) -> tuple[str | None, Plan | None]:
        """Offline, what a request to ``model`` arriving ``elapsed`` s into the demo would get:
        (error kind, None) or (None, the plan of its stream). The same draws as over HTTP, for
        benchmarks that replay the demo faster than real time."""
        profile = self.profiles[model]
        failure, factor = self.admit(profile, elapsed)
        if failure:
            return failure, None
        return None, self.plan(profile, [prompt], 32, factor)


def _running_item(r: Running, names: dict[str, str]) -> dict[str, Any]:
    """One running incident as the ``demo`` event carries it."""
    item: dict[str, Any] = {
        "kind": r.kind,
        "target": names.get(r.model, r.model),
        "model": r.model,
        "cycle": r.cycle,
        "since_ts": r.since,
        "until_ts": r.until,
    }
    if r.kind == "shift":
        item["factor"] = r.factor
    elif r.kind == "drift":
        item["per_s"] = r.per_s
    return item

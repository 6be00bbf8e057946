"""When the probe loop reads responses itself instead of the connections' reader threads
(probe/pace.py): only while it is saturated, i.e. busy AND unable to keep the schedule."""

from __future__ import annotations

from typing import Any

import pytest

from llmscope_tui.probe import netclock, offloop
from llmscope_tui.probe.pace import Pace


class Clocks:
    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def advance(self, seconds: float, busy: float) -> None:
        self.wall += seconds
        self.cpu += seconds * busy


def _window(pace: Pace, clocks: Clocks, busy: float, missed: int, of: int) -> bool | None:
    for i in range(of):
        pace.finished(missed=i < missed)
    clocks.advance(1.0, busy)
    return pace.check()


def test_a_busy_loop_that_misses_its_schedule_is_saturated_until_it_calms_down() -> None:
    clocks = Clocks()
    pace = Pace(clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu)
    assert _window(pace, clocks, busy=0.95, missed=90, of=100) is True
    assert _window(pace, clocks, busy=0.95, missed=90, of=100) is None  # said once
    assert pace.saturated
    assert _window(pace, clocks, busy=0.8, missed=60, of=100) is None  # between the two marks: stays
    assert _window(pace, clocks, busy=0.5, missed=60, of=100) is False
    assert not pace.saturated


@pytest.mark.parametrize(("busy", "missed"), [(0.95, 5), (0.3, 100)], ids=["busy-on-time", "idle-late"])
def test_busy_alone_or_late_alone_keeps_the_threads(busy: float, missed: int) -> None:
    clocks = Clocks()
    pace = Pace(clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu)
    for _ in range(5):
        assert _window(pace, clocks, busy=busy, missed=missed, of=100) is None
    assert not pace.saturated


def test_nothing_is_decided_inside_a_window() -> None:
    clocks = Clocks()
    pace = Pace(clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu)
    pace.finished(missed=True)
    clocks.advance(0.5, 1.0)
    assert pace.check() is None and not pace.saturated


@pytest.mark.anyio
@pytest.mark.skipif(netclock.clock_in_use() == "user", reason="kernel receive stamps are Linux-only")
async def test_switched_to_the_loop_a_connection_reads_its_responses_without_the_thread(
    fake_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmscope_tui.model import Target
    from llmscope_tui.probe.scheduler import make_client
    from llmscope_tui.probe.stream import Timeouts, probe_once

    pushes = [0]
    original = offloop.SocketReader._push

    def counting(self: offloop.SocketReader, *args: Any) -> None:
        pushes[0] += 1
        original(self, *args)

    monkeypatch.setattr(offloop.SocketReader, "_push", counting)
    target = Target(name="t", provider="openai", model="m", protocol="openai", base_url=fake_provider.base_url + "/v1")
    timeouts = Timeouts(connect_s=5, first_token_s=5, total_s=5)
    async with make_client(1, timeouts) as client:
        assert (await probe_once(client, target, "k", timeouts)).ok
        assert pushes[0] > 0  # the thread read the first response
        assert netclock.read_on_loop(client, True)
        assert (await probe_once(client, target, "k", timeouts)).ok  # the thread parks during this one
        before = pushes[0]
        third = await probe_once(client, target, "k", timeouts)
        assert third.ok and third.ttft_ms is not None
        assert pushes[0] == before  # read on the loop
        assert netclock.read_on_loop(client, False)
        before = pushes[0]
        assert (await probe_once(client, target, "k", timeouts)).ok
        assert pushes[0] > before  # threads again


def test_read_on_loop_says_when_there_is_nothing_to_switch() -> None:
    import httpx

    assert netclock.read_on_loop(httpx.AsyncClient(), True) is False


@pytest.mark.anyio
@pytest.mark.skipif(netclock.clock_in_use() == "user", reason="kernel receive stamps are Linux-only")
async def test_the_scheduler_switches_its_client_when_the_pace_says_so(
    fake_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmscope_tui.model import Target
    from llmscope_tui.probe.scheduler import ProbeScheduler, make_client
    from llmscope_tui.probe.stream import Timeouts

    verdicts = iter([True, None, False])
    monkeypatch.setattr(Pace, "check", lambda self: next(verdicts, None))
    target = Target(name="t", provider="openai", model="m", protocol="openai",
                    base_url=fake_provider.base_url + "/v1", interval_s=0.01)
    timeouts = Timeouts(connect_s=5, first_token_s=5, total_s=5)
    seen: list[tuple[bool, bool]] = []
    async with make_client(1, timeouts) as client:
        backend = client._transport._pool._network_backend

        def on_sample(sample: object) -> None:
            seen.append((sched.stats.reads_on_loop, backend.off_loop))

        sched = ProbeScheduler([target], on_sample, timeouts=timeouts, client=client, env={}, max_probes=3, jitter=0)
        await sched.run()
    assert seen == [(True, False), (True, False), (False, True)]


def test_a_window_begun_on_another_thread_decides_nothing() -> None:
    """The scheduler may be built on one thread and run on another: two threads' CPU clocks
    cannot be subtracted, so that first window is skipped."""
    import threading

    clocks = Clocks()
    made: list[Pace] = []
    maker = threading.Thread(target=lambda: made.append(Pace(clock=lambda: clocks.wall, cpu_clock=lambda: clocks.cpu)))
    maker.start()
    maker.join()
    (pace,) = made
    assert _window(pace, clocks, busy=0.95, missed=90, of=100) is None
    assert _window(pace, clocks, busy=0.95, missed=90, of=100) is True

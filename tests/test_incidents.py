"""Incidents (DESIGN 6b): the detector, error bursts, the engine's life cycle, scope, hysteresis,
the min_effect floor and accepting a new level. Synthetic samples with their own timestamps:
no clock, no network, the same result on a loaded machine."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pytest

from llmscope_tui.incidents import (
    ErrorDetector,
    Incident,
    IncidentChange,
    IncidentEngine,
    MetricEffect,
    PolicySettings,
    ShiftDetector,
    burst_threshold,
    down_threshold,
    t_to_z,
)
from llmscope_tui.model import Sample, Target

POLICY = PolicySettings(baseline_samples=30, close_after=10)


def target(name: str, provider: str = "openai", base_url: str = "https://api.openai.com/v1") -> Target:
    return Target(name=name, provider=provider, model="m", protocol="openai", base_url=base_url, interval_s=15.0)


def probe(name: str, ts: float, ttft: float | None, *, provider: str = "openai", error: str | None = None) -> Sample:
    if error is not None:
        return Sample(ts=ts, target=name, provider=provider, model="m", ok=0, error_kind=error)
    return Sample(ts=ts, target=name, provider=provider, model="m", ok=1, ttft_ms=ttft, latency_ms=ttft * 1.4)


def calm(rng: np.random.Generator, n: int, median: float = 400.0, sigma: float = 0.25) -> list[float]:
    return (median * np.exp(sigma * rng.standard_normal(n))).tolist()


def feed(
    engine: IncidentEngine, name: str, values: Iterable[float | None], start: int = 0, **kw: Any
) -> list[tuple[int, IncidentChange]]:
    """Probe ``name`` once per "second" from ``start``: None is a failed probe (kw: error kind)."""
    out = []
    for i, value in enumerate(values, start=start):
        sample = probe(name, float(i), value, error=kw.get("error", "network") if value is None else None,
                       provider=kw.get("provider", "openai"))
        out.extend((i, change) for change in engine.observe(sample, rules=kw.get("rules", ())))
    return out


def states(changes: Sequence[tuple[int, IncidentChange]]) -> list[str]:
    return [c.state for _, c in changes]


# -- the detector's pieces ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "df", "z"),
    [(2.7764, 4, 1.95996), (3.1693, 10, 2.57583), (3.6460, 30, 3.29053), (-2.0423, 30, -1.95996), (0.0, 5, 0.0)],
)
def test_t_to_z_matches_the_tables(t: float, df: int, z: float) -> None:
    """Student t quantiles from the tables map to the normal quantile of the same tail."""
    assert t_to_z(t, df) == pytest.approx(z, abs=0.012)


def test_in_control_standardised_values_are_standard_normal_from_the_first_point() -> None:
    """What makes the detector self-starting: against a reference of any size, the standardised
    values of a stable process have mean 0 and sd 1, so no chart is born trigger-happy."""
    rng = np.random.default_rng(3)
    us = []
    for _ in range(400):
        d = ShiftDetector(10, k=0.9, h=1e9)
        for v in calm(rng, 40):
            d.add(v)
            if d.ready:
                us.append(d._pending[-1][2] if d._pending else 0.0)
    arr = np.array(us)
    assert abs(arr.mean()) < 0.03 and abs(arr.std() - 1.0) < 0.03


def test_error_thresholds_follow_the_usual_rate() -> None:
    assert down_threshold(0.01) == 3 and down_threshold(0.05) == 4
    assert burst_threshold(0.01) == 5 and burst_threshold(0.05) == 8
    # the threshold really is rarer than one in 100,000 probes under that rate
    p, m = 0.05, burst_threshold(0.05)
    tail = sum(math.comb(20, j) * p**j * (1 - p) ** (20 - j) for j in range(m, 21))
    assert tail < 1e-5 < tail + math.comb(20, m - 1) * p ** (m - 1) * (1 - p) ** (21 - m)


def test_error_detector_down_burst_and_a_stray_failure() -> None:
    d = ErrorDetector()
    for _ in range(50):
        d.add(True, None)
    assert not d.add(False, "server_error").active  # one 500 is not news
    assert not d.add(True, None).active
    for kind in ("rate_limit", "rate_limit"):
        d.add(False, kind)
    status = d.add(False, "rate_limit")
    assert status.down and status.kind == "rate_limit" and status.in_a_row == 3
    d = ErrorDetector()
    for i in range(120):  # after 100 good probes, failures spread out: 5 of 20, never 3 in a row
        d.add(i < 100 or i % 4 != 0, "timeout_total")
    assert d.last.burst and not d.last.down and d.last.kind == "timeout_total"
    # a target that always fails one probe in four learns that this is its usual rate
    usual = ErrorDetector()
    for i in range(400):
        usual.add(i % 4 != 0, "timeout_total")
    assert not usual.last.active and usual.usual_rate == pytest.approx(0.25, abs=0.05)


# -- the life cycle ---------------------------------------------------------------------------


def test_a_sustained_2x_shift_is_one_incident_from_open_to_close() -> None:
    rng = np.random.default_rng(11)
    engine = IncidentEngine(POLICY, [target("a")])
    assert feed(engine, "a", calm(rng, 80)) == []
    shifted = feed(engine, "a", [2 * v for v in calm(rng, 150)], start=80)
    opened = [(i, c) for i, c in shifted if c.state == "opened"]
    assert len(opened) == 1 and opened[0][0] < 80 + 5  # caught within 5 probes
    incident = opened[0][1].incident
    assert incident.metrics["ttft_ms"].effect == pytest.approx(1.0, abs=0.25)  # +100 %
    assert incident.start_ts >= 78 and incident.scope == "target" and incident.severity == "warning"
    assert "closed" not in states(shifted)  # 150 probes at the new level: still the one incident
    ttft = incident.metrics["ttft_ms"]
    assert ttft.baseline == pytest.approx(400, rel=0.15) and ttft.current == pytest.approx(800, rel=0.2)
    back = feed(engine, "a", calm(rng, 60), start=230)
    closed = [(i, c) for i, c in back if c.state == "closed"]
    assert len(closed) == 1 and [c.state for _, c in back].count("opened") == 0
    when, change = closed[0]
    assert 230 + POLICY.close_after <= when < 230 + POLICY.close_after + 15  # hysteresis, then closed
    assert change.incident.resolution == "recovered" and change.incident.id == incident.id
    # what it reports at the close is the change itself, not watered down by the quiet probes
    assert change.incident.metrics["ttft_ms"].effect == pytest.approx(1.0, abs=0.25)


def test_a_change_below_min_effect_is_left_to_the_charts() -> None:
    """A very steady metric moving 5 %: statistically certain, too small to interrupt anyone."""
    rng = np.random.default_rng(5)
    steady = [v for v in calm(rng, 200, median=20.0, sigma=0.01)]
    engine = IncidentEngine(POLICY, [target("itl")])
    assert feed(engine, "itl", steady[:60] + [1.05 * v for v in steady[60:]]) == []
    detector = engine.detector("itl", "ttft_ms")
    assert detector is not None and detector.sums[0] > POLICY.cusum_h  # it is seen, just not raised
    loose = IncidentEngine(PolicySettings(baseline_samples=30, min_effect=0.03, min_change_ms=0), [target("itl")])
    assert "opened" in states(feed(loose, "itl", steady[:60] + [1.05 * v for v in steady[60:]]))


def test_a_time_metric_must_also_move_by_min_change_ms() -> None:
    """+25 % of a 4 ms time is 1 ms: below what the stamps resolve on a busy machine."""
    rng = np.random.default_rng(15)
    fast = calm(rng, 200, median=4.0, sigma=0.05)
    shifted = fast[:60] + [1.25 * v for v in fast[60:]]
    assert feed(IncidentEngine(POLICY, [target("a")]), "a", shifted) == []
    bigger = fast[:60] + [1.8 * v for v in fast[60:]]  # +3.2 ms
    assert "opened" in states(feed(IncidentEngine(POLICY, [target("a")]), "a", bigger))


def test_no_flapping_while_a_change_comes_and_goes() -> None:
    """A shift that holds for a few probes, lets go for a few, and so on, is one incident."""
    rng = np.random.default_rng(8)
    engine = IncidentEngine(POLICY, [target("a")])
    feed(engine, "a", calm(rng, 60))
    values = calm(rng, 120)
    wobbly = [2.2 * v if (i // 4) % 2 == 0 else v for i, v in enumerate(values)]
    changes = feed(engine, "a", wobbly, start=60)
    assert states(changes).count("opened") == 1 and "closed" not in states(changes)


def test_errors_open_an_incident_with_the_dominant_kind_and_down_escalates() -> None:
    rng = np.random.default_rng(2)
    engine = IncidentEngine(POLICY, [target("g")])
    feed(engine, "g", calm(rng, 60))
    values: list[float | None] = [None, None, None, None]
    changes = feed(engine, "g", values, start=60, error="rate_limit")
    (when, opened), = [(i, c) for i, c in changes if c.state == "opened"]
    assert when == 62 and opened.incident.down and opened.incident.error_kind == "rate_limit"
    assert opened.incident.severity == "critical" and "down: rate_limit" in opened.incident.text(62.0)
    changes = feed(engine, "g", calm(rng, 40), start=64)
    assert states(changes) == ["closed"]
    # a latency incident that then goes down is updated, and the update says why it matters
    feed(engine, "g", calm(rng, 20), start=104)
    changes = feed(engine, "g", [3 * v for v in calm(rng, 6)], start=124)
    assert states(changes)[0] == "opened"
    changes = feed(engine, "g", [None] * 3, start=130, error="timeout_first_token")
    assert [c.escalation for _, c in changes if c.escalation] == ["down"]
    assert all(c.state == "updated" for _, c in changes)


def test_rules_and_peak_are_gathered_from_the_change_point_on() -> None:
    rng = np.random.default_rng(4)
    engine = IncidentEngine(POLICY, [target("a")])
    feed(engine, "a", calm(rng, 60))
    engine.observe(probe("a", 60.0, 400.0), zs={"ttft_ms": 0.5}, rules=[7])  # evidence before it
    out = []
    for i, v in enumerate([2.5 * x for x in calm(rng, 10)], start=61):
        out += engine.observe(probe("a", float(i), v), zs={"ttft_ms": 4.0 + i % 2}, rules=[1, 5])
    incident = out[0].incident
    assert incident.rules == {1, 5} and incident.peak_z == 5.0


def test_accept_after_makes_a_held_shift_the_new_normal() -> None:
    rng = np.random.default_rng(9)
    policy = PolicySettings(baseline_samples=30, close_after=10, accept_after_s=60.0)
    engine = IncidentEngine(policy, [target("a")])
    feed(engine, "a", calm(rng, 60))
    changes = feed(engine, "a", [1.8 * v for v in calm(rng, 200)], start=60)
    assert states(changes)[0] == "opened"
    closed = [c for _, c in changes if c.state == "closed"]
    assert len(closed) == 1 and closed[0].accepted and closed[0].incident.resolution == "accepted"
    assert states(changes).count("opened") == 1  # the new level is learnt, not raised again


def test_rebaseline_closes_the_open_incident() -> None:
    rng = np.random.default_rng(1)
    engine = IncidentEngine(POLICY, [target("a"), target("b")])
    feed(engine, "a", calm(rng, 60))
    feed(engine, "a", [3 * v for v in calm(rng, 6)], start=60)
    (change,) = engine.rebaseline("a", 100.0)
    assert change.state == "closed" and change.incident.resolution == "rebaselined"
    assert engine.open_incidents() == [] and not engine.detector("a", "ttft_ms").ready


# -- scope --------------------------------------------------------------------------------------


def run_fleet(shifted: set[str], names: Sequence[tuple[str, str]]) -> dict[str, list[IncidentChange]]:
    """Several targets probed in turn; ``shifted`` ones double their TTFT from probe 60 on."""
    rng = np.random.default_rng(21)
    engine = IncidentEngine(POLICY, [target(n, p, f"https://{p}.example/v1") for n, p in names])
    seen: dict[str, list[IncidentChange]] = {n: [] for n, _ in names}
    for i in range(90):
        for name, provider in names:
            value = calm(rng, 1)[0] * (2.0 if name in shifted and i >= 60 else 1.0)
            for change in engine.observe(probe(name, i + 0.01 * len(seen[name]), value, provider=provider)):
                seen[change.incident.target].append(change)
    return seen


FLEET = [("oa-1", "openai"), ("oa-2", "openai"), ("oa-3", "openai"), ("an-1", "anthropic"), ("an-2", "anthropic")]


def test_a_provider_wide_shift_is_one_incident_per_target_scoped_to_the_provider() -> None:
    seen = run_fleet({"oa-1", "oa-2", "oa-3"}, FLEET)
    assert seen["an-1"] == [] and seen["an-2"] == []
    for name in ("oa-1", "oa-2", "oa-3"):
        opened = [c for c in seen[name] if c.state == "opened"]
        assert len(opened) == 1 and opened[0].ts < 65  # within 5 probes
        assert opened[0].incident.scope == "provider:openai"
        assert "likely the provider" in opened[0].incident.text(70.0)


def test_every_target_at_once_points_at_the_network_or_this_machine() -> None:
    seen = run_fleet({n for n, _ in FLEET}, FLEET)
    assert all(c[0].incident.scope == "all" for c in seen.values())
    assert "network or this machine" in seen["an-1"][0].incident.text(70.0)


def test_one_target_alone_is_scoped_to_itself() -> None:
    seen = run_fleet({"oa-2"}, FLEET)
    assert [c.incident.scope for c in seen["oa-2"] if c.state == "opened"] == ["target"]
    assert sum(len(v) for k, v in seen.items() if k != "oa-2") == 0


# -- restart ----------------------------------------------------------------------------------


def test_restore_replays_history_and_takes_up_the_open_incident() -> None:
    rng = np.random.default_rng(6)
    history = [(float(i), True, None, {"ttft_ms": v, "latency_ms": v * 1.4}) for i, v in enumerate(calm(rng, 80))]
    history += [(80.0 + i, True, None, {"ttft_ms": 2 * v, "latency_ms": 2.8 * v}) for i, v in enumerate(calm(rng, 20))]
    stored = Incident(id=41, target="a", provider="openai", opened_ts=83.0, start_ts=80.0)
    stored.metrics["ttft_ms"] = MetricEffect("ttft_ms", 1.0, 400.0, 800.0)
    engine = IncidentEngine(POLICY, [target("a")])
    engine.restore([stored], {"a": history})
    assert engine.next_id == 42 and engine.incident("a") is stored
    assert engine.detector("a", "ttft_ms").ready and engine.detector("a", "ttft_ms").reference_size >= 30
    # still shifted after the restart: no second incident; calm again: the same one closes
    changes = feed(engine, "a", [2 * v for v in calm(rng, 20)], start=100)
    assert "opened" not in states(changes)
    changes = feed(engine, "a", calm(rng, 60), start=120)
    assert states(changes)[-1] == "closed" and changes[-1][1].incident.id == 41


def test_a_runs_first_good_probe_is_no_evidence() -> None:
    """It carries the start (a new connection, a cold process): stored and charted, not judged."""
    rng = np.random.default_rng(12)
    engine = IncidentEngine(POLICY, [target("a")])
    feed(engine, "a", [None, 40_000.0, *calm(rng, 30)], error="network")  # a failure, a 100x start
    detector = engine.detector("a", "ttft_ms")
    assert detector is not None and detector.ready and detector.reference_median == pytest.approx(400, rel=0.15)


def test_restart_forgets_the_evidence_that_led_up_to_the_stop() -> None:
    """Probes that finished while the process shut down looked slow; with no incident open at
    the stop they must not open one right after the restart."""
    rng = np.random.default_rng(13)
    history = [(float(i), True, None, {"ttft_ms": v}) for i, v in enumerate(calm(rng, 60))]
    history += [(60.0 + i, True, None, {"ttft_ms": 2.5 * v}) for i, v in enumerate(calm(rng, 2))]
    engine = IncidentEngine(POLICY, [target("a")])
    engine.restore([], {"a": history})
    assert engine.detector("a", "ttft_ms").sums == (0.0, 0.0)
    assert feed(engine, "a", [1.3 * v for v in calm(rng, 3)], start=70) == []

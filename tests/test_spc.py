"""SPC (DESIGN 6): reference vectors, edges, oracle properties, baseline, live chart."""

from __future__ import annotations

import ast
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmscope_tui import spc
from llmscope_tui.spc import (
    RULE_TEXT,
    Baseline,
    Firing,
    LiveChart,
    compute_baseline,
    evaluate,
    evaluate_arrays,
    transform_values,
    untransform_values,
)

sys.path.insert(0, str(Path(__file__).parent))
from spc_reference import reference_evaluate

ALL = range(1, 9)


def flagged(values, rule, center=0.0, sigma=1.0):
    """1-based positions where `rule` (alone) fires."""
    return [f.index + 1 for f in evaluate(values, center, sigma, [rule])]


def pairs(firings):
    return [(f.index, f.rule) for f in firings]


# --------------------------------------------------------------------------------------------
# DESIGN 6 reference vectors
# --------------------------------------------------------------------------------------------

REFERENCE_VECTORS = [
    (1, [0, 3.2, -3.4, 3], [2, 3]),
    (2, [0.5] * 10 + [-0.5] * 10, [9, 10, 19, 20]),
    (3, [1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 4, 3, 2, 1], [6, 7, 13, 14]),
    (4, [1, 3, 2, 4, 3, 5, 4, 6, 5, 7, 6, 8, 7, 9, 8], [14, 15]),
    (5, [0, 2.3, 0.4, 2.2, -2.4, -0.2, -2.5], [4, 7]),
    (6, [1.2, 1.3, 0.2, 1.4, 1.5, -1.2, -1.3, -0.1, -1.4, -1.5], [5, 10]),
    (7, [0.3] * 16 + [1.2], [15, 16]),
    (8, [1.2, -1.3, 1.1, -1.4, 1.5, -1.2, 1.3, -1.1, 0.2], [8]),
    (8, [1.2] * 8, []),
]


@pytest.mark.parametrize(("rule", "series", "expected"), REFERENCE_VECTORS)
def test_reference_vector_rule_alone(rule, series, expected):
    assert flagged(series, rule) == expected


@pytest.mark.parametrize(("rule", "series", "expected"), REFERENCE_VECTORS)
def test_reference_vector_all_rules_together(rule, series, expected):
    firings = evaluate(series, 0.0, 1.0)
    # the rule's own positions are the same when every rule runs ...
    assert [f.index + 1 for f in firings if f.rule == rule] == expected
    # ... the whole result is sorted by (index, rule) and matches the oracle
    assert pairs(firings) == sorted(pairs(firings))
    assert pairs(firings) == reference_evaluate(series, 0.0, 1.0)


@pytest.mark.parametrize(("rule", "series", "expected"), REFERENCE_VECTORS)
def test_reference_vectors_oracle_agrees(rule, series, expected):
    assert [i + 1 for i, r in reference_evaluate(series, 0.0, 1.0, [rule])] == expected


def test_reference_vector_8_all_rules_exact():
    series = [1.2, -1.3, 1.1, -1.4, 1.5, -1.2, 1.3, -1.1, 0.2]
    assert pairs(evaluate(series, 0, 1)) == [(7, 8)]


def test_firing_carries_z_and_is_frozen():
    [firing] = evaluate([10.0, 17.0], 10.0, 2.0, [1])
    assert firing == Firing(index=1, rule=1, z=3.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        firing.rule = 2  # type: ignore[misc]


def test_reference_vectors_scaled_by_center_and_sigma():
    # the same patterns on a chart with center 400 and sigma 20 flag the same points
    for rule, series, expected in REFERENCE_VECTORS:
        if rule in (3, 4):
            continue
        scaled = [400 + 20 * v for v in series]
        assert flagged(scaled, rule, 400.0, 20.0) == expected, rule


# --------------------------------------------------------------------------------------------
# Edges
# --------------------------------------------------------------------------------------------


def test_rule1_exactly_on_the_limit_does_not_fire():
    assert flagged([3.0, -3.0, 0.0], 1) == []
    assert flagged([13.0], 1, center=10.0, sigma=1.0) == []
    assert flagged([3.0000001, -3.0000001], 1) == [1, 2]


def test_rule5_exactly_two_sigma_does_not_count():
    assert flagged([2.0, 2.0, 2.0], 5) == []
    assert flagged([-2.0, -2.0, -2.0], 5) == []
    assert flagged([2.01, 2.0, 2.01], 5) == [3]
    assert flagged([2.01, 2.01, 2.0], 5) == []  # newest must be one of the two
    assert flagged([2.5, -2.5, 2.5], 5) == [3]  # 2.5 and 2.5 on the same side
    assert flagged([2.5, -2.5, -2.5], 5) == [3]
    assert flagged([2.5, -2.5, 0.0], 5) == []


def test_rule5_needs_a_full_window_of_three():
    assert flagged([2.5, 2.5], 5) == []
    assert flagged([2.5, 2.5, 2.5], 5) == [3]


def test_rule6_newest_must_be_one_and_one_sigma_is_not_beyond():
    assert flagged([1.5, 1.5, 1.5, 1.5, 0.0], 6) == []
    assert flagged([1.5, 1.5, 1.0, 1.0, 1.5], 6) == []  # z == 1 is not beyond
    assert flagged([1.5, 1.5, 1.0, 1.01, 1.5], 6) == [5]
    assert flagged([1.5, 1.5, 1.5, 1.0, 1.5], 6) == [5]  # 4 of 5, the newest among them
    assert flagged([1.5, 1.5, 1.5, 0.0, 1.5], 6) == [5]
    assert flagged([1.5, 1.5, 1.5, 1.5], 6) == []  # a window of 5 is needed
    assert flagged([-1.5, -1.5, 9.0, -1.5, -1.5], 6) == [5]


def test_rule7_one_sigma_counts_as_within():
    series = [1.0, -1.0] * 8  # 16 points, all exactly on the 1-sigma lines
    assert flagged(series, 7) == [15, 16]
    assert flagged(series, 6) == []
    assert flagged(series, 8) == []
    assert flagged([0.0] * 14 + [1.0000001], 7) == []


def test_rule8_one_sigma_is_not_beyond():
    assert flagged([1.5, -1.5, 1.5, -1.5, 1.5, -1.5, 1.5, -1.0], 8) == []
    assert flagged([1.5, -1.5, 1.5, -1.5, 1.5, -1.5, 1.5, -1.01], 8) == [8]
    # one side only never fires, however long
    assert flagged([-1.5] * 20, 8) == []
    # a single point on the other side anywhere in the last 8 is enough
    assert flagged([1.5] * 7 + [-1.5] + [1.5] * 8, 8) == list(range(8, 16))


def test_rule2_center_line_breaks_the_run():
    assert flagged([0.5] * 8 + [0.0] + [0.5] * 8, 2) == []
    assert flagged([0.5] * 8 + [-0.0] + [0.5] * 8, 2) == []
    assert flagged([-0.1] * 9, 2) == [9]
    assert flagged([400.0] * 12, 2, center=400.0, sigma=1.0) == []


def test_equal_neighbours_break_rules_3_and_4():
    assert flagged([1, 2, 3, 3, 4, 5, 6], 3) == []
    assert flagged([1, 2, 3, 4, 5, 5, 6], 3) == []
    assert flagged([1, 2, 3, 4, 5, 6], 3) == [6]
    assert flagged([6, 5, 4, 3, 2, 1], 3) == [6]
    assert flagged([1.0] * 20, 3) == []
    alternating = [1, 3, 2, 4, 3, 5, 4, 6, 5, 7, 6, 8, 7, 9]
    assert flagged(alternating, 4) == [14]
    with_tie = alternating[:7] + [alternating[6]] + alternating[7:]
    assert flagged(with_tie, 4) == []
    assert flagged([1.0] * 20, 4) == []


def test_rules_3_and_4_use_values_not_zones():
    # tiny steps far inside 1 sigma still form a trend
    assert flagged([0.001 * k for k in range(6)], 3) == [6]
    assert flagged([0.001 * (k % 2) for k in range(14)], 4) == [14]


@pytest.mark.parametrize("rule", range(1, 9))
def test_series_shorter_than_the_window_gives_nothing(rule):
    window = spc.RULE_WINDOW[rule]
    # a series that would fire the rule on its last point if it were long enough
    patterns = {
        1: [5.0],
        2: [0.5] * 9,
        3: [1, 2, 3, 4, 5, 6],
        4: [1, 3, 2, 4, 3, 5, 4, 6, 5, 7, 6, 8, 7, 9],
        5: [2.5, 2.5, 2.5],
        6: [1.5] * 5,
        7: [0.1] * 15,
        8: [1.5, -1.5] * 4,
    }
    series = patterns[rule]
    assert len(series) == window
    assert flagged(series, rule) == [window]
    assert flagged(series[:-1], rule) == []
    assert all(f.rule != rule for f in evaluate(series[:-1], 0, 1))


def test_empty_series_and_empty_rules():
    assert evaluate([], 0.0, 1.0) == []
    assert evaluate([5.0, 5.0], 0.0, 1.0, []) == []
    index, rule, z = evaluate_arrays([], 0, 1)
    assert index.size == rule.size == z.size == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad):
    with pytest.raises(ValueError, match="finite"):
        evaluate([1.0, bad, 2.0], 0.0, 1.0)
    with pytest.raises(ValueError, match="position 1"):
        evaluate(np.array([1.0, bad]), 0.0, 1.0)


@pytest.mark.parametrize("sigma", [0.0, -1.0, math.nan, math.inf, "x", None])
def test_bad_sigma_is_refused(sigma):
    with pytest.raises(ValueError, match="sigma"):
        evaluate([1.0, 2.0], 0.0, sigma)


@pytest.mark.parametrize("center", [math.nan, math.inf, -math.inf, None])
def test_bad_center_is_refused(center):
    with pytest.raises(ValueError, match="center"):
        evaluate([1.0, 2.0], center, 1.0)


@pytest.mark.parametrize("rules", [[0], [9], [1, 2, 10], [-1], ["1"], [1.5], [True], "12", 5])
def test_unknown_rules_are_refused(rules):
    with pytest.raises(ValueError, match="rule"):
        evaluate([1.0, 2.0], 0.0, 1.0, rules)


def test_bad_shapes_and_types_are_refused():
    with pytest.raises(ValueError, match="one-dimensional"):
        evaluate([[1.0, 2.0]], 0.0, 1.0)
    with pytest.raises(ValueError, match="numbers"):
        evaluate(["a", "b"], 0.0, 1.0)
    with pytest.raises(ValueError):
        evaluate([1.0, None], 0.0, 1.0)


def test_accepts_iterables_and_numpy_rule_numbers():
    series = [0.5] * 9
    assert pairs(evaluate(iter(series), 0, 1, (np.int64(2),))) == [(8, 2)]
    assert pairs(evaluate(np.array(series, dtype=np.float32), 0, 1, [2, 2])) == [(8, 2)]


def test_evaluate_arrays_matches_evaluate():
    rng = np.random.default_rng(3)
    x = rng.normal(size=2000)
    index, rule, z = evaluate_arrays(x, 0.1, 0.9)
    firings = evaluate(x, 0.1, 0.9)
    assert list(zip(index.tolist(), rule.tolist())) == pairs(firings)
    assert z.tolist() == [f.z for f in firings]


def test_huge_values_do_not_crash():
    firings = evaluate([1e308, -1e308, 1e308], 0.0, 1e-300, [1, 3, 4, 5])
    assert [(f.index, f.rule) for f in firings][:2] == [(0, 1), (1, 1)]
    assert all(math.isinf(f.z) for f in firings)


def test_rule_text_covers_every_rule():
    assert sorted(RULE_TEXT) == list(range(1, 9))
    assert RULE_TEXT[1] == "1 point beyond 3σ from the center"
    assert all(isinstance(t, str) and 0 < len(t) < 60 for t in RULE_TEXT.values())


def test_the_spc_engine_imports_only_numpy_and_the_stdlib():
    """Every module of the spc package but bank.py (the live bookkeeping) needs only numpy."""
    engine = [p for p in Path(spc.__file__).parent.glob("*.py") if p.name != "bank.py"]
    assert {p.stem for p in engine} >= {"__init__", "transform", "rules", "baseline", "live"}
    roots = set()
    for path in engine:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"no relative imports in {path.name}"
                assert node.module != "llmscope_tui.spc.bank", f"{path.name} imports bank"
                roots.add(node.module)
    siblings = {r for r in roots if r.startswith("llmscope_tui.spc.")}
    top = {r.split(".")[0] for r in roots - siblings}
    assert top - set(sys.stdlib_module_names) == {"numpy"}


# --------------------------------------------------------------------------------------------
# Property tests against the oracle
# --------------------------------------------------------------------------------------------

EDGE_VALUES = [k * 0.5 for k in range(-8, 9)] + [-0.0, 0.25, -0.25]


@st.composite
def segment(draw):
    """A short run of one shape: random, alternating, rising, falling or flat."""
    kind = draw(st.sampled_from(["random", "alt", "up", "down", "flat"]))
    length = draw(st.integers(1, 18))
    point = st.one_of(
        st.sampled_from(EDGE_VALUES),
        st.floats(-4.5, 4.5, allow_nan=False, allow_infinity=False),
    )
    if kind == "random":
        return draw(st.lists(point, min_size=length, max_size=length))
    if kind == "flat":
        return [draw(point)] * length
    base = draw(point)
    steps = draw(
        st.lists(st.sampled_from([0.0, 0.5, 1.0, 0.25, 2.0]), min_size=length, max_size=length)
    )
    out = []
    for k, step in enumerate(steps):
        if kind == "up":
            base += step
        elif kind == "down":
            base -= step
        else:
            base += step if k % 2 else -step
        out.append(base)
    return out


series_strategy = st.lists(segment(), max_size=6).map(lambda segs: [v for s in segs for v in s])
rules_strategy = st.sets(st.integers(1, 8), max_size=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series=series_strategy, rules=rules_strategy)
@pytest.mark.slow
def test_evaluate_equals_reference_on_edge_heavy_series(series, rules):
    assert pairs(evaluate(series, 0.0, 1.0, rules)) == reference_evaluate(series, 0.0, 1.0, rules)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    series=series_strategy,
    rules=rules_strategy,
    center=st.sampled_from([-1.0, 0.0, 0.5, 2.0]),
    sigma=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
)
@pytest.mark.slow
def test_evaluate_equals_reference_with_other_limits(series, rules, center, sigma):
    got = evaluate(series, center, sigma, rules)
    assert pairs(got) == reference_evaluate(series, center, sigma, rules)
    assert [f.z for f in got] == [(series[f.index] - center) / sigma for f in got]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), center=st.floats(-1, 1), sigma=st.floats(0.3, 3))
def test_evaluate_equals_reference_on_long_random_series(seed, center, sigma):
    x = np.random.default_rng(seed).normal(size=400).round(1)
    assert pairs(evaluate(x, center, sigma)) == reference_evaluate(x.tolist(), center, sigma)


# --------------------------------------------------------------------------------------------
# Baseline (phase I)
# --------------------------------------------------------------------------------------------


def test_baseline_drops_an_outlier_exact_numbers():
    values = [10, 11, 10, 11, 10, 11, 10, 11, 10, 30]
    # first pass: mean 12.4, MRbar = (8 x 1 + 20) / 9, sigma0 = MRbar / 1.128 = 2.758;
    # 30 is 17.6 > 3 sigma0 = 8.27 from the mean -> dropped, and so is its moving range.
    b = compute_baseline(values)
    assert b.n_input == 10
    assert b.n_used == 9
    assert b.n_mr_used == 8
    assert b.center == pytest.approx(94 / 9)
    assert b.mr_bar == pytest.approx(1.0)
    assert b.sigma == pytest.approx(1 / 1.128)
    assert not b.exclusion_skipped and not b.sigma_floored
    unfiltered_sigma = (28 / 9) / 1.128
    assert b.sigma < unfiltered_sigma / 3
    assert b.ucl == pytest.approx(94 / 9 + 3 / 1.128)
    assert b.lcl == pytest.approx(94 / 9 - 3 / 1.128)


def test_baseline_keeps_a_large_moving_range_between_kept_points():
    values = [0, 1] * 20 + [-1.25, 2.5]
    b = compute_baseline(values)
    # no point is beyond 3 sigma0, so every point and every moving range stays (DESIGN 6: the
    # 3.267 x MRbar drop of the first build made sigma too small on clean data)
    assert b.n_used == 42
    assert b.n_mr_used == 41
    assert b.center == pytest.approx(21.25 / 42)
    assert b.mr_bar == pytest.approx((39 + 2.25 + 3.75) / 41)
    assert b.sigma == pytest.approx((45 / 41) / 1.128)


def test_baseline_with_a_step_inside_skips_the_exclusion():
    # every point is > 3 sigma0 from the grand mean: the exclusion would keep nothing
    b = compute_baseline([0.0] * 8 + [5.0] * 8)
    assert b.exclusion_skipped
    assert b.n_used == 16 and b.n_mr_used == 15
    assert b.center == 2.5
    assert b.sigma == pytest.approx((5 / 15) / 1.128)


def test_baseline_without_variation_floors_sigma():
    b = compute_baseline([0.1] * 30)
    assert b.sigma_floored
    assert b.center == 0.1
    assert b.sigma == pytest.approx(1e-9)
    # identical values keep z == 0 exactly: no rule but 7 ("15 within 1 sigma") ever fires
    assert {f.rule for f in evaluate([0.1] * 20, b.center, b.sigma)} == {7}
    assert all(f.z == 0.0 for f in evaluate([0.1] * 20, b.center, b.sigma))
    assert pairs(evaluate([0.1, 0.1000001], b.center, b.sigma, [1])) == [(1, 1)]
    assert compute_baseline([400.0, 400.0]).sigma == pytest.approx(400e-9)


def test_baseline_needs_two_finite_points():
    with pytest.raises(ValueError, match="at least 2"):
        compute_baseline([1.0])
    with pytest.raises(ValueError, match="at least 2"):
        compute_baseline([])
    with pytest.raises(ValueError, match="finite"):
        compute_baseline([1.0, math.nan, 2.0])
    with pytest.raises(ValueError, match="transform"):
        compute_baseline([1.0, 2.0], transform="sqrt")


def test_baseline_two_points():
    b = compute_baseline([1.0, 3.0])
    assert (b.center, b.mr_bar, b.n_used) == (2.0, 2.0, 2)
    assert b.sigma == pytest.approx(2 / 1.128)


def test_baseline_does_not_mutate_its_input():
    values = np.array([1.0, 2.0, 4.0])
    compute_baseline(values, transform="log")
    assert values.tolist() == [1.0, 2.0, 4.0]


# --------------------------------------------------------------------------------------------
# Log transform
# --------------------------------------------------------------------------------------------


def test_transform_values():
    assert transform_values([1.0, math.e], "log").tolist() == pytest.approx([0.0, 1.0])
    assert transform_values([3.0, -2.0]).tolist() == [3.0, -2.0]
    assert untransform_values([0.0, 1.0], "log").tolist() == pytest.approx([1.0, math.e])
    with pytest.raises(ValueError, match="> 0"):
        transform_values([1.0, 0.0], "log")
    with pytest.raises(ValueError, match="position 2"):
        transform_values([1.0, 2.0, -5.0], "log")
    with pytest.raises(ValueError, match="unknown transform"):
        transform_values([1.0], "sqrt")


def test_log_baseline_is_the_baseline_of_the_logs():
    rng = np.random.default_rng(7)
    latency = rng.lognormal(math.log(400), 0.25, size=30)
    b_log = compute_baseline(latency, transform="log")
    b_ref = compute_baseline(np.log(latency))
    assert b_log.transform == "log"
    assert (b_log.center, b_log.sigma, b_log.n_used) == (b_ref.center, b_ref.sigma, b_ref.n_used)
    assert math.exp(b_log.center) == pytest.approx(400, rel=0.15)


def test_log_chart_limits_in_original_unit():
    chart = LiveChart.from_baseline(math.log(400), 0.25, transform="log")
    lines = chart.limits()
    assert lines.center == pytest.approx(math.log(400))
    assert lines.ucl == pytest.approx(math.log(400) + 0.75)
    orig = chart.limits(original_unit=True)
    assert orig.center == pytest.approx(400)
    assert orig.ucl == pytest.approx(400 * math.exp(0.75))
    assert orig.lcl == pytest.approx(400 * math.exp(-0.75))
    assert orig.as_tuple() == tuple(sorted(orig.as_tuple()))
    assert chart.z(400 * math.exp(0.5)) == pytest.approx(2.0)
    # in ms, a point 2.2x the median is beyond 3 sigma; a skewed-but-normal point is not
    assert [f.rule for f in chart.add(400 * 2.2, ts=1.0)] == [1]
    assert chart.add(400 * 1.5, ts=2.0) == []
    with pytest.raises(ValueError, match="> 0"):
        chart.add(0.0, ts=3.0)


# --------------------------------------------------------------------------------------------
# LiveChart
# --------------------------------------------------------------------------------------------


def test_live_chart_phases_and_progress():
    chart = LiveChart(baseline_size=5, rules=[1, 2])
    assert chart.phase == "baseline" and chart.progress == (0, 5)
    assert chart.center is None and chart.limits() is None and chart.z(1.0) is None
    for k, value in enumerate([10, 11, 10, 11], start=1):
        assert chart.add(value, ts=k) == []
        assert chart.progress == (k, 5)
    assert chart.add(10, ts=5) == []  # the N-th point freezes the baseline, is not tested
    assert chart.phase == "monitoring" and chart.progress == (5, 5)
    assert chart.center == pytest.approx(10.4)
    assert chart.sigma == pytest.approx(1 / 1.128)
    assert chart.ucl == pytest.approx(10.4 + 3 / 1.128)
    assert chart.lcl == pytest.approx(10.4 - 3 / 1.128)
    lines = chart.limits()
    assert lines.upper1 == pytest.approx(10.4 + 1 / 1.128)
    assert lines.lower2 == pytest.approx(10.4 - 2 / 1.128)
    assert chart.limits(original_unit=True) == lines
    [firing] = chart.add(20.0, ts=6.0)
    assert (firing.index, firing.rule, firing.value, firing.ts) == (0, 1, 20.0, 6.0)
    assert firing.z == pytest.approx((20 - 10.4) * 1.128)
    assert chart.n_monitored == 1 and chart.last_z == firing.z


def test_live_chart_refuses_bad_points_without_changing_state():
    chart = LiveChart(baseline_size=3)
    chart.add(1.0)
    for bad in (math.nan, math.inf, None, "x"):
        with pytest.raises(ValueError):
            chart.add(bad)
    assert chart.progress == (1, 3)


def test_live_chart_bad_arguments():
    for size in (1, 0, 2.5, True, "30"):
        with pytest.raises(ValueError, match="baseline_size"):
            LiveChart(baseline_size=size)
    with pytest.raises(ValueError, match="rule"):
        LiveChart(rules=[9])
    with pytest.raises(ValueError, match="transform"):
        LiveChart(transform="sqrt")
    with pytest.raises(ValueError, match="sigma"):
        LiveChart.from_baseline(1.0, 0.0)


def test_live_chart_rebaseline():
    chart = LiveChart(baseline_size=3, rules=[1])
    for value in (1.0, 2.0, 1.0):
        chart.add(value)
    assert chart.phase == "monitoring"
    old = chart.baseline
    chart.add(100.0)
    chart.rebaseline()
    assert chart.phase == "baseline" and chart.progress == (0, 3)
    assert chart.baseline is None
    for value in (100.0, 101.0):
        assert chart.add(value) == []
    assert chart.add(100.0) == []
    assert chart.baseline != old and chart.center == pytest.approx(301 / 3)
    assert chart.n_monitored == 0
    assert chart.add(100.5) == []
    chart.rebaseline(baseline_size=4)
    assert chart.progress == (0, 4)


def test_live_chart_from_baseline_and_replay():
    values = [0.5] * 8 + [0.6, 0.7]
    chart = LiveChart.from_baseline(0.0, 1.0, rules=[2], recent=values[:5])
    assert chart.phase == "monitoring"
    assert chart.baseline.n_used == 0
    got = [(f.index, f.rule) for v in values[5:] for f in chart.add(v)]
    assert got == pairs(evaluate(values, 0.0, 1.0, [2])) == [(8, 2), (9, 2)]


def feed(chart, values):
    out = []
    for k, value in enumerate(values):
        out.extend(chart.add(value, ts=float(k)))
    return out


POSITIVE_EDGE = [0.5 * k for k in range(1, 13)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    n=st.integers(2, 30),
    rules=rules_strategy,
    transform=st.sampled_from(["none", "log"]),
)
@pytest.mark.slow
def test_live_chart_equals_evaluate_on_phase_ii(data, n, rules, transform):
    series = data.draw(
        st.lists(
            st.one_of(
                st.sampled_from(POSITIVE_EDGE),
                st.floats(0.1, 8.0, allow_nan=False),
            ),
            min_size=n,
            max_size=n + 80,
        )
    )
    chart = LiveChart(baseline_size=n, rules=rules, transform=transform)
    live = feed(chart, series)
    expected_baseline = compute_baseline(series[:n], transform=transform)
    assert chart.baseline == expected_baseline
    phase2 = series[n:]
    b = expected_baseline
    batch = evaluate(transform_values(phase2, transform), b.center, b.sigma, rules)
    assert [(f.index, f.rule, f.z) for f in live] == [(f.index, f.rule, f.z) for f in batch]
    assert [f.value for f in live] == [float(phase2[f.index]) for f in live]
    assert [f.ts for f in live] == [float(n + f.index) for f in live]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series=series_strategy, rules=rules_strategy)
def test_live_chart_equals_evaluate_on_edge_heavy_series(series, rules):
    chart = LiveChart.from_baseline(0.0, 1.0, rules=rules)
    assert pairs(feed(chart, series)) == reference_evaluate(series, 0.0, 1.0, rules)


def test_live_chart_on_a_long_stream_matches_evaluate():
    rng = np.random.default_rng(11)
    x = rng.lognormal(math.log(400), 0.25, size=3000)
    x[2000:] *= 1.3  # a shift, so that many rules fire
    chart = LiveChart(baseline_size=30, transform="log")
    live = feed(chart, x)
    b = chart.baseline
    batch = evaluate(np.log(x[30:]), b.center, b.sigma)
    assert len(batch) > 100
    assert [(f.index, f.rule, f.z) for f in live] == [(f.index, f.rule, f.z) for f in batch]


def test_baseline_dataclass_is_frozen():
    b = compute_baseline([1.0, 2.0, 3.0])
    assert isinstance(b, Baseline)
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.center = 0.0  # type: ignore[misc]

"""SPC benchmark: speed of the rule engine and detection quality on synthetic latency streams.

Prints figures; it is not a test and asserts nothing. Run:

    .venv/bin/python bench/bench_spc.py            # default, well under a minute
    .venv/bin/python bench/bench_spc.py --runs 10000 --det-runs 5000   # tighter figures

Streams are log-normal "latencies" (median 400 ms, sigma_log 0.25 by default), seeded.
Every change is a physical change of the stream, the same for both transforms:
  shift +k sigma : the median is multiplied by exp(k * sigma_log)   (+1: x1.28, +2: x1.65,
                   -2: x0.61 -- faster)
  drift          : the log-median climbs by 0.1 sigma_log per point (+2 sigma after 20 points)
  variance x2    : sigma_log is multiplied by sqrt(2) (median unchanged)
Charts are run with transform "none" (chart ms) and "log" (chart log(ms)).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

try:
    from llmscope_tui import spc
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from llmscope_tui import spc

RULES = spc.ALL_RULES
RULE_SETS: dict[str, tuple[int, ...]] = {
    "1-8": (1, 2, 3, 4, 5, 6, 7, 8),
    "1,2,5,6": (1, 2, 5, 6),
    "1": (1,),
}


# --------------------------------------------------------------------------------------------
# Normal theory
# --------------------------------------------------------------------------------------------


def _tail(k: float) -> float:
    """P(Z > k) for a standard normal Z."""
    return 0.5 * math.erfc(k / math.sqrt(2.0))


def _zigzag(n: int) -> int:
    """Euler zigzag number A000111(n): alternating permutations of n items, one direction."""
    row = [1]
    for _ in range(n):
        nxt = [0]
        for value in reversed(row):
            nxt.append(nxt[-1] + value)
        row = nxt
    return row[-1]


def theory_rates() -> dict[int, float]:
    """Per-point firing probability of each rule in steady state, iid N(0,1), known limits."""
    p1, p2, p3 = _tail(1.0), _tail(2.0), _tail(3.0)
    return {
        1: 2 * p3,
        2: 2 * 0.5**9,
        3: 2 / math.factorial(6),
        4: 2 * _zigzag(14) / math.factorial(14),
        5: 2 * p2 * (1 - (1 - p2) ** 2),
        6: 2 * p1 * (4 * p1**3 * (1 - p1) + p1**4),
        7: (1 - 2 * p1) ** 15,
        8: (2 * p1) ** 8 - 2 * p1**8,
    }


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def all_masks(y: np.ndarray, center: float, sigma: float) -> np.ndarray:
    """(8, n) boolean matrix: row r-1 is where rule r fires."""
    _, masks = spc.rule_masks(y, center, sigma, RULES)
    return np.stack([masks[r] for r in RULES])


def openings(mask: np.ndarray) -> int:
    """Episode starts in a boolean firing mask (what EpisodeTracker turns into alerts)."""
    if mask.size == 0:
        return 0
    return int(mask[0]) + int(np.count_nonzero(mask[1:] & ~mask[:-1]))


def fmt(x: float, width: int = 7, digits: int = 2) -> str:
    if math.isnan(x):
        return " " * (width - 1) + "-"
    return f"{x:{width}.{digits}f}"


# --------------------------------------------------------------------------------------------
# 1. Speed
# --------------------------------------------------------------------------------------------


def bench_speed(repeats: int, seed: int) -> None:
    print("== Speed ==")
    n = 1_000_000
    x = np.random.default_rng(seed).normal(size=n)
    for name, fn in (("evaluate", spc.evaluate), ("evaluate_arrays", spc.evaluate_arrays)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn(x, 0.0, 1.0, RULES)
            times.append(time.perf_counter() - t0)
        count = len(out) if isinstance(out, list) else out[0].size
        print(
            f"{name:16s} 1,000,000 points, rules 1-8: median {np.median(times) * 1e3:6.1f} ms "
            f"(min {min(times) * 1e3:.1f}, {repeats} runs, {count} firings)"
        )
    chart = spc.LiveChart.from_baseline(0.0, 1.0)
    values = x[:200_000].tolist()
    t0 = time.perf_counter()
    for v in values:
        chart.add(v, 0.0)
    dt = time.perf_counter() - t0
    per_point = dt / len(values) * 1e6
    print(f"LiveChart.add    {per_point:6.2f} µs per point (200,000 points, rules 1-8)")
    print()


# --------------------------------------------------------------------------------------------
# 2. False alarms
# --------------------------------------------------------------------------------------------


def bench_false_alarms(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed + 1)
    theory = theory_rates()
    mu, s = math.log(args.median), args.sigma_log
    true_mean = math.exp(mu + s * s / 2)
    true_sd = true_mean * math.sqrt(math.exp(s * s) - 1)

    # the union of rules under normal theory, by simulation with known limits on iid N(0,1)
    z = np.random.default_rng(args.seed + 2).normal(size=args.theory_points)
    m = all_masks(z, 0.0, 1.0)
    theory_union = {
        name: np.count_nonzero(m[[r - 1 for r in rs]].any(axis=0)) / z.size * 1000
        for name, rs in RULE_SETS.items()
    }
    theory_alerts = {
        name: sum(openings(m[r - 1]) for r in rs) / z.size * 1000 for name, rs in RULE_SETS.items()
    }

    configs = [("known", None)] + [(f"N={n}", n) for n in args.baseline_sizes]
    results: dict[tuple[str, str], dict] = {}
    sigma_ratio: dict[tuple[str, str], np.ndarray] = {}
    for transform in ("none", "log"):
        for label, n_base in configs:
            per_rule = np.zeros(8)
            union = dict.fromkeys(RULE_SETS, 0)
            alerts = dict.fromkeys(RULE_SETS, 0)
            run_r1 = []
            ratios = []
            total = 0
            for _ in range(args.runs):
                base_raw = rng.lognormal(mu, s, size=n_base or 0)
                raw = rng.lognormal(mu, s, size=args.points)
                y = spc.transform_values(raw, transform)
                if n_base is None:
                    center, sigma = (mu, s) if transform == "log" else (true_mean, true_sd)
                else:
                    b = spc.compute_baseline(base_raw, transform=transform)
                    center, sigma = b.center, b.sigma
                    ratios.append(sigma / (s if transform == "log" else true_sd))
                mm = all_masks(y, center, sigma)
                per_rule += mm.sum(axis=1)
                run_r1.append(mm[0].mean() * 1000)
                for name, rs in RULE_SETS.items():
                    sub = mm[[r - 1 for r in rs]]
                    union[name] += int(np.count_nonzero(sub.any(axis=0)))
                    alerts[name] += sum(openings(row) for row in sub)
                total += y.size
            results[(transform, label)] = {
                "per_rule": per_rule / total * 1000,
                "union": {k: v / total * 1000 for k, v in union.items()},
                "alerts": {k: v / total * 1000 for k, v in alerts.items()},
                "r1_runs": np.array(run_r1),
            }
            if ratios:
                sigma_ratio[(transform, label)] = np.array(ratios)

    print(
        f"== False alarms: firings per 1000 in-control phase II points "
        f"({args.runs} runs x {args.points} points per column) =="
    )
    print(
        f"stream: log-normal, median {args.median:g} ms, sigma_log {s:g}; "
        "'known' = true center/sigma, 'N=k' = baseline estimated from k points"
    )
    cols = [(t, label) for t in ("none", "log") for label, _ in configs]
    print(f"{'rule':48s}{'normal':>7s}" + "".join(f"{t + ' ' + label:>12s}" for t, label in cols))
    for r in RULES:
        row = f"{r} {spc.RULE_TEXT[r]:46s}{fmt(theory[r] * 1000)}"
        row += "".join(fmt(results[c]["per_rule"][r - 1], 12) for c in cols)
        print(row)
    for name in RULE_SETS:
        row = f"any of rules {name:35s}{fmt(theory_union[name])}"
        row += "".join(fmt(results[c]["union"][name], 12) for c in cols)
        print(row)
    for name in RULE_SETS:
        row = f"alerts (episode starts), rules {name:17s}{fmt(theory_alerts[name])}"
        row += "".join(fmt(results[c]["alerts"][name], 12) for c in cols)
        print(row)
    print(
        f"('normal' per rule: exact steady-state probability; 'any'/'alerts' rows: simulated, "
        f"{args.theory_points} iid N(0,1) points, known limits)"
    )
    print()
    print("Rule 1 false alarms per 1000 points, spread across charts (each chart = one run):")
    for c in cols:
        r1 = results[c]["r1_runs"]
        print(
            f"  {c[0]:4s} {c[1]:6s}  median {np.median(r1):5.2f}   p90 {np.percentile(r1, 90):6.2f}"
            f"   p99 {np.percentile(r1, 99):6.2f}   (normal theory {theory[1] * 1000:.2f})"
        )
    print("Estimated sigma / true sigma of the charted quantity:")
    for (t, label), ratio in sigma_ratio.items():
        print(
            f"  {t:4s} {label:6s}  mean {ratio.mean():.3f}   p10 {np.percentile(ratio, 10):.3f}"
            f"   p90 {np.percentile(ratio, 90):.3f}"
        )
    print()


# --------------------------------------------------------------------------------------------
# 3. Detection
# --------------------------------------------------------------------------------------------


def bench_detection(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed + 3)
    mu, s = math.log(args.median), args.sigma_log
    warm, horizon, n_base = args.warmup, args.horizon, args.baseline
    steps = np.arange(horizon)

    scenarios = {
        "no change (control)": (np.zeros(horizon), 1.0),
        "shift +1 sigma": (np.full(horizon, 1.0 * s), 1.0),
        "shift +2 sigma": (np.full(horizon, 2.0 * s), 1.0),
        "shift -2 sigma": (np.full(horizon, -2.0 * s), 1.0),
        "drift +0.1 sigma/pt": (0.1 * s * (steps + 1), 1.0),
        "variance x2": (np.zeros(horizon), math.sqrt(2.0)),
    }
    print(
        f"== Detection: {args.det_runs} runs each; baseline N={n_base}, then {warm} in-control "
        f"points, then the change for {horizon} points =="
    )
    print(
        "delay = post-change points up to and including the first firing of any enabled rule "
        "(a firing that happens to fall after the change counts, false or not: see the control)"
    )
    print(
        f"{'change':22s}{'transform':>10s}{'rules':>9s}{'<=10 pts':>10s}"
        f"{'<=' + str(horizon) + ' pts':>10s}{'median delay':>14s}{'p90 delay':>11s}"
    )
    for name, (log_shift, sd_factor) in scenarios.items():
        delays = {(t, rs): [] for t in ("none", "log") for rs in RULE_SETS}
        for _ in range(args.det_runs):
            base = rng.normal(mu, s, size=n_base)
            pre = rng.normal(mu, s, size=warm)
            post = mu + log_shift + rng.normal(0.0, s * sd_factor, size=horizon)
            raw = np.exp(np.concatenate([pre, post]))
            base_raw = np.exp(base)
            for t in ("none", "log"):
                b = spc.compute_baseline(base_raw, transform=t)
                mm = all_masks(spc.transform_values(raw, t), b.center, b.sigma)[:, warm:]
                for rs in RULE_SETS:
                    hit = mm[[r - 1 for r in RULE_SETS[rs]]].any(axis=0)
                    idx = np.flatnonzero(hit)
                    delays[(t, rs)].append(idx[0] + 1 if idx.size else math.inf)
        for t in ("none", "log"):
            for rs in RULE_SETS:
                d = np.array(delays[(t, rs)])
                within10 = np.mean(d <= 10) * 100
                within_h = np.mean(np.isfinite(d)) * 100
                capped = np.where(np.isfinite(d), d, horizon + 1)  # "not caught" sorts last
                med = np.percentile(capped, 50, method="inverted_cdf")
                p90 = np.percentile(capped, 90, method="inverted_cdf")
                med_s = f">{horizon}" if med > horizon else f"{med:.0f}"
                p90_s = f">{horizon}" if p90 > horizon else f"{p90:.0f}"
                print(
                    f"{name:22s}{t:>10s}{rs:>9s}{within10:9.1f}%{within_h:9.1f}%"
                    f"{med_s:>14s}{p90_s:>11s}"
                )
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="false-alarm runs per column")
    parser.add_argument("--points", type=int, default=1000, help="phase II points per run")
    parser.add_argument("--det-runs", type=int, default=2000, help="detection runs per change")
    parser.add_argument("--baseline", type=int, default=30, help="baseline size for detection")
    parser.add_argument(
        "--baseline-sizes", type=int, nargs="+", default=[30, 100],
        help="baseline sizes for the false-alarm table",
    )
    parser.add_argument("--warmup", type=int, default=20, help="in-control points before a change")
    parser.add_argument("--horizon", type=int, default=50, help="points observed after a change")
    parser.add_argument("--theory-points", type=int, default=2_000_000)
    parser.add_argument("--median", type=float, default=400.0, help="median latency, ms")
    parser.add_argument("--sigma-log", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--only", choices=["speed", "false-alarms", "detection"])
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, seed {args.seed}")
    print()
    if args.only in (None, "speed"):
        bench_speed(args.repeats, args.seed)
    if args.only in (None, "false-alarms"):
        bench_false_alarms(args)
    if args.only in (None, "detection"):
        bench_detection(args)
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()

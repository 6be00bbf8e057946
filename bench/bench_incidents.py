"""Incident benchmark: what the alerting policy raises on noise and how fast it sees real changes.

Prints figures; it is not a test and asserts nothing. Run:

    .venv/bin/python bench/bench_incidents.py                 # about two minutes on 2 cores
    .venv/bin/python bench/bench_incidents.py --runs 1000     # tighter false-incident figures
    .venv/bin/python bench/bench_incidents.py --only demo --live-demo   # + a real 10-minute demo

Two policies are compared on the same streams:
  default   the incident engine with default settings (llmscope_tui.incidents: a self-starting
            CUSUM on log(x) per metric, min_effect 15 %, one incident per target)
  rules     the first build's alerting: Nelson rules 1-8 on a 30-point baseline of the raw
            milliseconds, one alert per rule episode per metric (no persistence)

Streams (one simulated target = its four charted metrics, computed as a probe computes them):
  target       TTFT log-normal (median 400 ms, sigma_log 0.25); 9-14 output tokens; per-token
               gaps log-normal (median 15 ms, sigma_log 0.35); latency, ITL, tok/s from those
  independent  four independent log-normal metrics, sigma_log 0.25 each (a harsher case: real
               metrics share noise, so their false alarms overlap)
  heavy tail   "target" with 1 % of probes 3x slower to the first token (cold starts)
  AR(1)        "target" whose log-TTFT noise is autocorrelated (phi 0.3)
A false incident is any incident on an in-control stream, counted per target over 5,760 probes
after the baseline (a day at a 15 s interval). Detection: the change starts after the baseline
and 20 in-control probes; "within k" = an incident opened on one of the k probes from the
change on (a false incident already open at the change counts as a miss).
"""

from __future__ import annotations

import argparse
import dataclasses
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

from llmscope_tui.incidents import IncidentEngine, PolicySettings
from llmscope_tui.model import Sample

METRICS = ("ttft_ms", "latency_ms", "itl_ms", "tps")
DAY = 5760
OLD_BASELINE, OLD_TRANSFORM = 30, "none"


# --------------------------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------------------------


def stream(
    rng: np.random.Generator, n: int, kind: str = "target", change: str | None = None, at: int = 0
) -> np.ndarray:
    """(n, 4) metric values of one simulated target, a change from probe ``at`` on."""
    if kind == "independent":
        noise = rng.normal(0.0, 0.25, size=(n, 4))
        out = np.exp(noise) * np.array([400.0, 565.0, 15.0, 66.7])
        if change is not None:
            out[at:, 0] *= _change_factor(rng, change, n - at, 0.25)
        return out
    e = rng.normal(size=n)
    if kind == "ar1":
        phi = 0.3
        for t in range(1, n):
            e[t] = phi * e[t - 1] + math.sqrt(1 - phi * phi) * e[t]
    ttft = 400.0 * np.exp(0.25 * e)
    if kind == "heavy":
        ttft *= np.where(rng.random(n) < 0.01, 3.0, 1.0)
    if change is not None:
        ttft[at:] *= _change_factor(rng, change, n - at, 0.25)
    tokens = rng.integers(9, 15, size=n)
    gaps = 15.0 * np.exp(0.35 * rng.normal(size=(n, 13)))
    gaps[np.arange(13)[None, :] >= (tokens - 1)[:, None]] = 0.0
    gen = gaps.sum(axis=1)
    latency = ttft + gen
    itl = gen / (tokens - 1)
    return np.column_stack([ttft, latency, itl, 1000.0 / itl])


def _change_factor(rng: np.random.Generator, change: str, n: int, sigma: float) -> np.ndarray:
    if change == "1.5x":
        return np.full(n, 1.5)
    if change == "2x":
        return np.full(n, 2.0)
    if change == "drift":  # the log-median climbs 0.1 sigma per probe: +1 sigma after 10
        return np.exp(0.1 * sigma * (np.arange(n) + 1))
    if change == "variance x2":  # sigma_log x sqrt(2), median unchanged
        return np.exp(sigma * (math.sqrt(2.0) - 1.0) * rng.normal(size=n))
    raise ValueError(change)


# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------


def incidents_default(values: np.ndarray, policy: PolicySettings) -> list[int]:
    """Probe indexes at which the incident engine opened an incident."""
    engine = IncidentEngine(policy)
    opened = []
    for i, row in enumerate(values.tolist()):
        sample = Sample(ts=float(i), target="t", provider="p", model="m", ok=1,
                        ttft_ms=row[0], latency_ms=row[1], itl_ms=row[2], tps=row[3])
        for change in engine.observe(sample):
            if change.state == "opened":
                opened.append(i)
    return opened


def incidents_rules(values: np.ndarray) -> list[int]:
    """Probe indexes where an episode of any rule opened on any metric (the first build)."""
    opened: list[int] = []
    for m in range(4):
        base = spc.compute_baseline(values[:OLD_BASELINE, m], transform=OLD_TRANSFORM)
        y = spc.transform_values(values[OLD_BASELINE:, m], OLD_TRANSFORM)
        _, masks = spc.rule_masks(y, base.center, base.sigma, spc.ALL_RULES)
        for mask in masks.values():
            starts = np.flatnonzero(mask & ~np.concatenate(([False], mask[:-1])))
            opened.extend((starts + OLD_BASELINE).tolist())
    return sorted(opened)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def bench_false(args: argparse.Namespace, policy: PolicySettings) -> None:
    print(f"== False incidents per target per {DAY:,} probes (in-control streams, {args.runs} targets each) ==")
    print(f"{'stream':14s}{'default':>10s}{'  p(>=1)':>9s}{'rules':>10s}   (runs for rules: {args.rule_runs})")
    for kind in ("target", "independent", "heavy", "ar1"):
        rng = np.random.default_rng(args.seed + hash(kind) % 1000)
        counts = []
        t0 = time.perf_counter()
        for _ in range(args.runs):
            values = stream(rng, policy.baseline_samples + DAY, kind)
            counts.append(len(incidents_default(values, policy)))
        elapsed = time.perf_counter() - t0
        old = [len(incidents_rules(stream(rng, OLD_BASELINE + DAY, kind))) for _ in range(args.rule_runs)]
        c = np.array(counts)
        label = {"target": "target", "independent": "independent", "heavy": "heavy tail", "ar1": "AR(1) 0.3"}[kind]
        print(f"{label:14s}{c.mean():10.2f}{(c > 0).mean() * 100:8.1f}%{np.mean(old):10.0f}"
              f"   ({elapsed / (args.runs * (policy.baseline_samples + DAY)) * 1e6:.1f} us per probe)")
    print("  'p(>=1)': share of targets with at least one false incident in the day")
    print()


def bench_detection(args: argparse.Namespace, policy: PolicySettings) -> None:
    horizon, warm = 30, 20
    print(f"== Detection: share of {args.det_runs} runs with an incident within k probes of the change "
          f"(baseline {policy.baseline_samples}, then {warm} in-control probes) ==")
    print(f"{'change (TTFT)':18s}{'policy':>9s}{'<=5':>8s}{'<=10':>8s}{'<=15':>8s}{'median':>8s}")
    for change in ("2x", "1.5x", "drift", "variance x2"):
        for name in ("default", "rules"):
            rng = np.random.default_rng(args.seed + 17)
            base = policy.baseline_samples if name == "default" else OLD_BASELINE
            at = base + warm
            delays = []
            for _ in range(args.det_runs):
                values = stream(rng, at + horizon, "target", change, at)
                opened = incidents_default(values, policy) if name == "default" else incidents_rules(values)
                before = [i for i in opened if i < at]
                after = [i for i in opened if i >= at]
                if name == "default" and before:
                    delays.append(math.inf)  # already in a (false) incident: not a clean catch
                else:
                    delays.append(after[0] - at + 1 if after else math.inf)
            d = np.array(delays)
            capped = np.where(np.isfinite(d), d, horizon + 1)
            med = np.percentile(capped, 50, method="inverted_cdf")
            print(f"{change:18s}{name:>9s}" + "".join(f"{np.mean(d <= k) * 100:7.1f}%" for k in (5, 10, 15))
                  + f"{('>' + str(horizon)) if med > horizon else f'{med:.0f}':>8s}")
    print("  goals (DESIGN 6b, default policy): 2x within 5 probes >= 95 %, 1.5x within 15 >= 90 %")
    print()


def demo_incidents(seed: int, minutes: float, policy: PolicySettings) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Replay the demo offline (its own draws and timeline, 1 probe/s per target): the
    incidents the default policy opens and the episodes the first build's rules opened."""
    from llmscope_tui.demo import DemoProvider, demo_targets

    demo = DemoProvider(seed=seed)  # never started: simulate() draws without a server
    targets = demo_targets("http://127.0.0.1:9")
    engine = IncidentEngine(policy, targets)
    seen: dict[str, list[str]] = {t.name: [] for t in targets}
    series: dict[str, list[list[float]]] = {t.name: [] for t in targets}
    for second in range(int(minutes * 60)):
        for target in targets:
            failure, plan = demo.simulate(target.model, float(second), target.prompt)
            sample = Sample(ts=float(second), target=target.name, provider=target.provider, model=target.model)
            if plan is None:
                sample.error_kind = failure
            else:
                ttft, last = plan.times[0] * 1000, plan.times[-1] * 1000
                n = plan.tokens_out
                sample.ok, sample.ttft_ms, sample.latency_ms = 1, ttft, last
                if n > 1 and last > ttft:
                    sample.itl_ms = (last - ttft) / (n - 1)
                    sample.tps = (n - 1) / ((last - ttft) / 1000)
                    series[target.name].append([ttft, last, sample.itl_ms, sample.tps])
            for change in engine.observe(sample):
                if change.state == "opened":
                    inc = change.incident
                    seen[target.name].append(f"{second:>4d}s {inc.what()}")
    episodes = {name: len(incidents_rules(np.array(rows))) if len(rows) > OLD_BASELINE else 0
                for name, rows in series.items()}
    return seen, episodes


def bench_demo(args: argparse.Namespace, policy: PolicySettings) -> None:
    print(f"== The demo, {args.demo_minutes:g} minutes replayed offline (seeds {args.seed}..{args.seed + args.demo_seeds - 1}) ==")
    print("scripted: demo-anthropic TTFT x1.8, demo-ollama drift, demo-gemini 429 burst; demo-openai calm")
    totals: dict[str, list[int]] = {}
    old_totals: dict[str, list[int]] = {}
    for k in range(args.demo_seeds):
        seen, episodes = demo_incidents(args.seed + k, args.demo_minutes, policy)
        for name, items in seen.items():
            totals.setdefault(name, []).append(len(items))
            old_totals.setdefault(name, []).append(episodes[name])
            if k == 0:
                for item in items:
                    print(f"  seed {args.seed}  {name:15s} opened at {item}")
    print(f"{'target':16s}{'incidents per run':>20s}{'rule episodes (first build)':>30s}")
    for name, counts in totals.items():
        print(f"{name:16s}{' '.join(map(str, counts)):>20s}{np.mean(old_totals[name]):>30.0f}")
    print()


def live_demo(args: argparse.Namespace) -> None:
    """The real thing: `llmscope-tui --headless --demo` for the given minutes, incidents counted
    from its log (real HTTP, real time)."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "demo.db"
        cmd = [sys.executable, "-m", "llmscope_tui", "--headless", "--demo", "--db", str(db),
               "--duration", f"{args.demo_minutes * 60:g}s"]
        print(f"== Live demo: {' '.join(cmd[2:])} ==", flush=True)
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        counts: dict[str, int] = {}
        for line in out.stdout.splitlines():
            event = json.loads(line)
            if event.get("event") == "incident" and event["state"] == "opened":
                counts[event["target"]] = counts.get(event["target"], 0) + 1
                print(f"  {event['text']}")
        print("incidents opened per target:", counts or "none")
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="in-control targets per stream (default policy)")
    parser.add_argument("--rule-runs", type=int, default=50, help="in-control targets per stream (rules)")
    parser.add_argument("--det-runs", type=int, default=1000, help="runs per change")
    parser.add_argument("--demo-minutes", type=float, default=10.0)
    parser.add_argument("--demo-seeds", type=int, default=5)
    parser.add_argument("--live-demo", action="store_true", help="also run the real headless demo (takes its minutes)")
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--only", choices=("false", "detection", "demo"))
    parser.add_argument("--cusum-k", type=float, help="try another k (default: the shipped one)")
    parser.add_argument("--cusum-h", type=float, help="try another h (default: the shipped one)")
    parser.add_argument("--alert-on", choices=("worse", "both"), help="try the other direction setting")
    args = parser.parse_args(argv)
    policy = PolicySettings()
    changes = {"cusum_k": args.cusum_k, "cusum_h": args.cusum_h, "alert_on": args.alert_on}
    policy = dataclasses.replace(policy, **{k: v for k, v in changes.items() if v is not None})
    print(f"numpy {np.__version__}, python {sys.version.split()[0]}, seed {args.seed}; default policy: "
          f"baseline {policy.baseline_samples}, k {policy.cusum_k}, h {policy.cusum_h}, "
          f"min_effect {policy.min_effect:.0%} and {policy.min_change_ms:g} ms, close_after {policy.close_after}, "
          f"alert_on {policy.alert_on}")
    print()
    t0 = time.perf_counter()
    if args.only in (None, "false"):
        bench_false(args, policy)
    if args.only in (None, "detection"):
        bench_detection(args, policy)
    if args.only in (None, "demo"):
        bench_demo(args, policy)
        if args.live_demo:
            live_demo(args)
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

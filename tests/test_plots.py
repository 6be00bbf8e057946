"""report --plot: the store's spend per day, the plotted figures against numpy on the same samples,
and the plots as a user sees them (names, legend, day labels, the size asked for)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from llmscope_tui.model import Sample
from llmscope_tui.plots import parse_size, render_plots, spend_days, ttft_series
from llmscope_tui.store import SampleStore, open_readonly

NOW = datetime(2026, 11, 30, 12, 0, 7, tzinfo=UTC).timestamp()
TARGETS = {"openai-gpt-4o-mini": 300.0, "anthropic-haiku": 500.0}


def _samples(now: float) -> list[Sample]:
    """Two targets probed every 5 minutes for a day with varied TTFT; app spend on past days."""
    rng = np.random.default_rng(11)
    out = []
    for target, base in TARGETS.items():
        for i in range(288):
            ts = now - 86400 + i * 300 + 1
            ttft = float(base + rng.gamma(2.0, 40.0))
            out.append(Sample(ts=ts, target=target, provider=target.split("-")[0], model="m", ok=1,
                              ttft_ms=ttft, latency_ms=ttft + 400, cost_usd=0.001))
        out.append(Sample(ts=now - 600, target=target, provider="x", model="m", ok=0, error_kind="timeout"))
    for days in range(1, 9):
        for hour in (0.5, 23.5):
            out.append(Sample(ts=now - days * 86400 + hour * 3600, target="app", provider="openai",
                              model="m", ok=1, source="app", cost_usd=0.01 * days))
    return out


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = tmp_path / "data.db"
    writer = SampleStore(db)
    writer.add_many(_samples(NOW))
    writer.close()
    with open_readonly(db) as reader:
        yield reader


def test_spend_by_day_matches_grouping_by_utc_date(store) -> None:  # type: ignore[no-untyped-def]
    since = NOW - 5 * 86400
    expected: dict[str, float] = defaultdict(float)
    for s in _samples(NOW):
        if s.ts >= since and s.cost_usd is not None:
            expected[datetime.fromtimestamp(s.ts, UTC).strftime("%Y-%m-%d")] += s.cost_usd
    got = store.spend_by_day(since=since)
    assert list(got) == sorted(expected)
    assert got == pytest.approx(dict(expected))


def test_spend_days_are_the_last_seven_with_zero_for_a_quiet_day(store) -> None:  # type: ignore[no-untyped-def]
    days = spend_days(store, now=NOW + 86400)  # tomorrow: no spend yet
    first = datetime.fromtimestamp(NOW, UTC).date() - timedelta(days=5)
    assert list(days) == [str(first + timedelta(days=i)) for i in range(7)]
    assert days[str(first + timedelta(days=6))] == 0.0
    spent = store.spend_by_day(since=NOW - 10 * 86400)
    assert {d: v for d, v in days.items() if v} == {d: spent[d] for d in list(days)[:6]}


def test_plotted_percentiles_are_numpys_on_the_same_samples(store) -> None:  # type: ignore[no-untyped-def]
    series = {s.target: s for s in ttft_series(store, "24h", now=NOW)}
    assert sorted(series) == sorted(TARGETS)
    since, step = NOW - 86400, 3600.0
    for target in TARGETS:
        buckets: dict[int, list[float]] = defaultdict(list)
        for s in _samples(NOW):
            if s.target == target and s.ok and s.ttft_ms is not None and since <= s.ts < NOW:
                buckets[int((s.ts - since) // step)].append(s.ttft_ms)
        one = series[target]
        assert one.starts == [since + b * step for b in sorted(buckets)]
        assert one.p50 == pytest.approx([np.percentile(buckets[b], 50) for b in sorted(buckets)])
        assert one.p95 == pytest.approx([np.percentile(buckets[b], 95) for b in sorted(buckets)])


@pytest.mark.parametrize("size", [(100, 40), (80, 24), (200, 60)])
def test_plots_name_targets_legend_and_days_within_the_size(store, size) -> None:  # type: ignore[no-untyped-def]
    text = render_plots(store, "24h", size, plain=True, now=NOW)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) <= size[1] and max(map(len, lines)) <= size[0]
    assert text.isascii() and "\033" not in text
    for target in TARGETS:
        assert f"{target}: TTFT" in text
    assert text.count("p50, + p95)") + text.count("(*p50 +p95)") == len(TARGETS)
    for day in ("11-24", "11-25", "11-26", "11-27", "11-28", "11-29", "11-30"):
        assert day in text
    assert "spend per UTC day" in text


def test_targets_that_do_not_fit_are_counted_on_a_line_of_their_own(tmp_path: Path) -> None:
    db = tmp_path / "many.db"
    writer = SampleStore(db)
    writer.add_many(Sample(ts=NOW - 60 - i, target=f"t{i:02d}", provider="p", model="m", ok=1, ttft_ms=100.0 + i)
                    for i in range(12))
    writer.close()
    with open_readonly(db) as reader:
        text = render_plots(reader, "1h", (80, 24), plain=True, now=NOW)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) <= 24 and max(map(len, lines)) <= 80
    assert lines[-1].startswith("(") and "more targets not plotted" in lines[-1]
    assert "t00: TTFT" in text and "spend per UTC day" in text


def test_color_only_for_a_terminal(store) -> None:  # type: ignore[no-untyped-def]
    assert "\033[" in render_plots(store, "24h", (80, 24), plain=False, now=NOW)


def test_parse_size() -> None:
    assert parse_size("120x40") == (120, 40)
    for bad in ("120", "x40", "12x4", "axb"):
        with pytest.raises(ValueError):
            parse_size(bad)


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmscope_tui", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **env}, check=False)


@pytest.mark.slow
def test_report_plot_on_an_empty_data_file_says_so_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    SampleStore(db).close()
    done = _run("report", "--db", str(db), "--plot", env={})
    assert done.returncode == 0, done.stderr
    plot_part = done.stdout.split("\n\n")[-1]
    assert plot_part == "plot: no probe samples in the last 24h and no spend in the last 7 days\n"


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
def test_report_plot_sized_by_columns_and_lines_plain_in_a_pipe(tmp_path: Path) -> None:
    db = tmp_path / "data.db"
    writer = SampleStore(db)
    writer.add_many(_samples(time.time()))
    writer.close()
    done = _run("report", "--db", str(db), "--plot", env={"COLUMNS": "90", "LINES": "30"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Probes over the last 24h")  # the text report, then the plots
    lines = done.stdout.rstrip("\n").split("\n")
    plots = lines[next(i for i, line in enumerate(lines) if ": TTFT" in line):]
    assert len(plots) <= 30 and max(map(len, plots)) <= 90 and "".join(plots).isascii()
    assert all(f"{t}: TTFT" in done.stdout for t in TARGETS) and any("spend per UTC day" in line for line in plots)
    sized = _run("report", "--db", str(db), "--plot", "--plot-size", "120x50", env={"COLUMNS": "90"})
    assert max(map(len, sized.stdout.split("\n"))) > 90
    bad = _run("report", "--db", str(db), "--plot-size", "huge", env={})
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def _y_labels(text: str, title: str) -> list[float]:
    """The y-axis labels of the panel with this title, top to bottom, read off the plain text."""
    lines = text.split("\n")
    top = next(i for i, line in enumerate(lines) if title in line) + 1
    labels = []
    for line in lines[top + 1:]:
        if "-----" in line:  # the bottom of the frame
            break
        frame = min(i for i in (line.find("+"), line.find("|")) if i >= 0)
        if line[:frame].strip():
            labels.append(float(line[:frame]))
    return labels


def test_the_drawn_axes_span_numpys_percentiles_and_the_days_spend(store) -> None:  # type: ignore[no-untyped-def]
    """The y range drawn runs from the lowest hourly p50 to the highest hourly p95, as numpy
    computes them from the samples; the spend axis tops at the biggest day's spend."""
    text = render_plots(store, "24h", (100, 40), plain=True, now=NOW)
    since = NOW - 86400
    for target in TARGETS:
        hours: dict[int, list[float]] = defaultdict(list)
        for s in _samples(NOW):
            if s.target == target and s.ok and s.ttft_ms is not None and s.ts >= since:
                hours[int((s.ts - since) // 3600)].append(s.ttft_ms)
        labels = _y_labels(text, f"{target}: TTFT")
        assert labels[0] == pytest.approx(max(np.percentile(v, 95) for v in hours.values()), abs=0.05)
        assert labels[-1] == pytest.approx(min(np.percentile(v, 50) for v in hours.values()), abs=0.05)
    by_day: dict[str, float] = defaultdict(float)
    for s in _samples(NOW):
        by_day[datetime.fromtimestamp(s.ts, UTC).strftime("%m-%d")] += s.cost_usd or 0.0
    labels = _y_labels(text, "spend per UTC day")
    shown = ("11-24", "11-25", "11-26", "11-27", "11-28", "11-29", "11-30")
    assert labels[0] == pytest.approx(max(by_day[d] for d in shown), abs=0.005)
    assert labels[-1] == 0.0

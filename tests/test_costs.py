"""costs.py: prices from genai-prices (bundled snapshot, never the network), overrides,
budgets and their alerts, projections, probe overhead, recommendations, config parsing."""

from __future__ import annotations

import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmscope_tui.costs import (
    PROVIDER_IDS,
    Budget,
    BudgetAlerter,
    BudgetTracker,
    CostConfigError,
    Measured,
    ModelUsage,
    PriceBook,
    PriceOverride,
    budget_event,
    budget_status,
    estimate_prompt_tokens,
    format_usd,
    overhead_totals,
    parse_budget,
    parse_budgets,
    parse_price,
    period_bounds,
    probe_overhead,
    recommend,
)
from llmscope_tui.model import Sample, Target

WHEN = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


_SHARED_BOOK = PriceBook()


def approx(value: float) -> object:
    return pytest.approx(value, rel=1e-9, abs=1e-15)


# --------------------------------------------------------------------------------------------
# Prices from genai-prices
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "model", "tin", "tout", "cached", "expected"),
    [
        # gpt-4o-mini: $0.15 in, $0.075 cache read, $0.60 out per MTok
        ("openai", "gpt-4o-mini", 1000, 50, 200, (800 * 0.15 + 200 * 0.075 + 50 * 0.6) / 1e6),
        ("openai", "gpt-4o-mini", 1000, 50, None, (1000 * 0.15 + 50 * 0.6) / 1e6),
        # claude-3-5-haiku: $0.80 in, $0.08 cache read, $4 out
        ("anthropic", "claude-3-5-haiku-latest", 1000, 100, 600, (400 * 0.8 + 600 * 0.08 + 100 * 4) / 1e6),
        ("anthropic", "claude-3-5-haiku-latest", 1000, 100, 0, (1000 * 0.8 + 100 * 4) / 1e6),
        # gemini-2.0-flash through our "gemini" provider: $0.10 in, $0.025 cache read, $0.40 out
        ("gemini", "gemini-2.0-flash", 10_000, 500, 4000, (6000 * 0.1 + 4000 * 0.025 + 500 * 0.4) / 1e6),
    ],
)
def test_cost_by_hand_for_known_models(
    book: PriceBook, provider: str, model: str, tin: int, tout: int, cached: int | None, expected: float
) -> None:
    assert book.cost(provider, model, tin, tout, cached, WHEN) == approx(expected)


def test_tiered_prices_on_both_sides_of_the_tier(book: PriceBook) -> None:
    # gemini-2.5-pro: $1.25 / $0.125 / $10 up to 200k prompt tokens, $2.50 / $0.25 / $15 above,
    # on every token of the request (genai-prices' cliff tiers, by total input tokens).
    prices = book.unit_prices("gemini", "gemini-2.5-pro", WHEN)
    assert prices is not None and prices.tiered
    assert (prices.input_per_mtok, prices.cache_read_per_mtok, prices.output_per_mtok) == (1.25, 0.125, 10.0)
    below = book.cost("gemini", "gemini-2.5-pro", 200_000, 1000, 50_000, WHEN)
    above = book.cost("gemini", "gemini-2.5-pro", 200_001, 1000, 50_000, WHEN)
    assert below == approx((150_000 * 1.25 + 50_000 * 0.125 + 1000 * 10) / 1e6)
    assert above == approx((150_001 * 2.5 + 50_000 * 0.25 + 1000 * 15) / 1e6)


def test_every_mapped_provider_exists_in_genai_prices(book: PriceBook) -> None:
    ids = {p.id for p in book.snapshot().providers}
    assert PROVIDER_IDS["gemini"] == "google"
    for ours, theirs in PROVIDER_IDS.items():
        assert theirs is None or theirs in ids, ours
    for self_hosted in ("ollama", "vllm", "llamacpp", "lmstudio", "openai-compatible"):
        assert PROVIDER_IDS[self_hosted] is None


@pytest.mark.parametrize(
    ("provider", "model", "their_provider"),
    [
        ("openai", "gpt-4o", "openai"),
        ("azure", "gpt-4o-mini", "azure"),
        ("anthropic", "claude-haiku-4-5", "anthropic"),
        ("gemini", "gemini-2.5-flash", "google"),
        ("groq", "llama-3.3-70b-versatile", "groq"),
        ("mistral", "mistral-small-latest", "mistral"),
        ("deepseek", "deepseek-chat", "deepseek"),
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "together"),
        ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct", "fireworks"),
        ("openrouter", "openai/gpt-4o-mini", "openrouter"),
    ],
)
def test_cost_agrees_with_genai_prices(book: PriceBook, provider: str, model: str, their_provider: str) -> None:
    import genai_prices

    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1234, output_tokens=56, cache_read_tokens=200),
        model,
        provider_id=their_provider,
        genai_request_timestamp=WHEN,
    ).total_price
    assert book.cost(provider, model, 1234, 56, 200, WHEN) == approx(float(expected))
    assert book.is_priced(provider, model, WHEN)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("anthropic", "claude-3-5-haiku-latest"),
        ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-sonnet-4-5-20250929"),
        ("gemini", "gemini-2.0-flash"),
        ("gemini", "models/gemini-2.0-flash"),
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4o-mini-2024-07-18"),
        ("openai", "openai/gpt-4o-mini"),
    ],
)
def test_model_ids_as_people_write_them(book: PriceBook, provider: str, model: str) -> None:
    assert book.is_priced(provider, model)
    assert book.cost(provider, model, 100, 10) is not None


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("ollama", "llama3.1:8b"),
        ("vllm", "meta-llama/Llama-3.1-8B-Instruct"),
        ("llamacpp", "gpt-4o-mini"),
        ("openai-compatible", "gpt-4o"),  # never priced as OpenAI by genai-prices' fuzzy provider match
        ("openai", "gpt-made-up-9000"),
        ("anthropic", "not-a-model"),
        ("demo", "gpt-4o-mini"),  # an unknown provider name is not a genai-prices id
        ("openai", ""),
    ],
)
def test_unpriced_is_none_never_a_guess(book: PriceBook, provider: str, model: str) -> None:
    assert book.cost(provider, model, 1000, 100, 0, WHEN) is None
    assert not book.is_priced(provider, model)
    assert book.unit_prices(provider, model) is None


@settings(max_examples=60, deadline=None)
@given(
    tin=st.integers(min_value=0, max_value=199_000),
    tout=st.integers(min_value=0, max_value=20_000),
    share=st.floats(min_value=0, max_value=1),
)
def test_genai_prices_agrees_with_the_design_formula(tin: int, tout: int, share: float) -> None:
    """DESIGN 7's formula on the base-tier unit prices == genai-prices' own calculation."""
    book = _SHARED_BOOK
    cached = int(tin * share)
    for provider, model in (("openai", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5"), ("gemini", "gemini-2.5-pro")):
        prices = book.unit_prices(provider, model, WHEN)
        assert prices is not None
        assert book.cost(provider, model, tin, tout, cached, WHEN) == approx(prices.cost(tin, tout, cached))


def test_token_edge_cases(book: PriceBook) -> None:
    assert book.cost("openai", "gpt-4o-mini", None, None) is None  # no usage at all: no cost
    assert book.cost("openai", "gpt-4o-mini", 1000, None, None, WHEN) == approx(1000 * 0.15 / 1e6)
    assert book.cost("openai", "gpt-4o-mini", None, 10, None, WHEN) == approx(10 * 0.6 / 1e6)
    # more cached than input (bad data) is clamped instead of raising
    assert book.cost("openai", "gpt-4o-mini", 100, 0, 500, WHEN) == approx(100 * 0.075 / 1e6)
    assert book.cost("openai", "gpt-4o-mini", -5, 0, None, WHEN) == 0.0


def test_cost_sample_uses_the_sample_fields_and_time(book: PriceBook) -> None:
    sample = Sample(
        ts=WHEN.timestamp(), target="t", provider="openai", model="gpt-4o-mini",
        tokens_in=1000, tokens_out=50, tokens_cached=200,
    )  # fmt: skip
    assert book.cost_sample(sample) == approx((800 * 0.15 + 200 * 0.075 + 50 * 0.6) / 1e6)


def test_time_dependent_prices_follow_when(book: PriceBook) -> None:
    """DeepSeek has off-peak prices by time of day: the memo must not mix them up."""
    import genai_prices

    usage = genai_prices.Usage(input_tokens=1000, output_tokens=100)
    costs = []
    for hour in (12, 20, 12, 20):
        when = WHEN.replace(hour=hour)
        expected = genai_prices.calc_price(usage, "deepseek-chat", provider_id="deepseek", genai_request_timestamp=when)
        got = book.cost("deepseek", "deepseek-chat", 1000, 100, None, when)
        assert got == approx(float(expected.total_price))
        costs.append(got)
    assert costs[0] != costs[1] and costs[0] == costs[2]


def test_pricing_a_sample_is_fast() -> None:
    book = PriceBook()
    book.cost("openai", "gpt-4o-mini", 1000, 16, 0)  # first call: loads and resolves
    n = 5000
    start = time.perf_counter()
    for _ in range(n):
        book.cost("openai", "gpt-4o-mini", 1000, 16, 0)
        book.cost("ollama", "llama3", 1000, 16, 0)
    per_call = (time.perf_counter() - start) / (2 * n)
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} us per cost() call"


def test_no_network_and_no_updater() -> None:
    """Importing costs loads no genai-prices; pricing uses the bundled snapshot with sockets blocked."""
    code = """
import socket, sys, threading
def no_network(*args, **kwargs):
    raise AssertionError("network access attempted")
socket.socket.connect = no_network
socket.socket.connect_ex = no_network
socket.create_connection = no_network
socket.getaddrinfo = no_network
import llmscope_tui.costs as costs
assert "genai_prices" not in sys.modules, "genai-prices imported at import time"
assert not any(m == "textual" or m.startswith("textual.") for m in sys.modules)
book = costs.PriceBook()
assert book.cost("openai", "gpt-4o-mini", 1000, 10) is not None
assert book.cost("ollama", "llama3", 1000, 10) is None
from genai_prices import data_snapshot
assert not book.snapshot().from_auto_update
assert data_snapshot._custom_snapshot is None
names = [t.name for t in threading.enumerate()]
assert names == ["MainThread"], names
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stdout + result.stderr


# --------------------------------------------------------------------------------------------
# Overrides
# --------------------------------------------------------------------------------------------


def test_override_prices_a_self_hosted_model_at_zero() -> None:
    entry = {"model": "my-vllm-model", "provider": "vllm", "input_per_mtok": 0, "output_per_mtok": 0}
    book = PriceBook([parse_price(entry)])
    assert book.cost("vllm", "my-vllm-model", 1000, 100) == 0.0
    assert book.is_priced("vllm", "my-vllm-model")
    prices = book.unit_prices("vllm", "my-vllm-model")
    assert prices is not None and prices.source == "override"
    assert book.cost("vllm", "other-model", 1000, 100) is None
    assert book.cost("ollama", "my-vllm-model", 1000, 100) is None  # scoped to vllm


def test_override_beats_the_database_and_scoped_beats_unscoped() -> None:
    book = PriceBook(
        [
            PriceOverride("gpt-4o-mini", None, 1.0, 2.0, None),
            PriceOverride("gpt-4o-mini", "azure", 3.0, 4.0, 0.5),
        ]
    )
    # unscoped: any provider; cached tokens at the input price when no cache price is given
    assert book.cost("openai", "gpt-4o-mini", 1000, 100, 200) == approx((1000 * 1.0 + 100 * 2.0) / 1e6)
    assert book.cost("azure", "gpt-4o-mini", 1000, 100, 200) == approx((800 * 3.0 + 200 * 0.5 + 100 * 4.0) / 1e6)
    assert book.cost("openai", "gpt-4o", 1000, 100) is not None  # other models still from genai-prices


def test_override_scoped_by_genai_prices_id() -> None:
    book = PriceBook([PriceOverride("gemini-2.0-flash", "google", 9.0, 9.0)])
    assert book.cost("gemini", "gemini-2.0-flash", 1000, 0) == approx(9000 / 1e6)


# --------------------------------------------------------------------------------------------
# Periods, projection, budgets
# --------------------------------------------------------------------------------------------


def test_period_bounds() -> None:
    assert period_bounds("month", datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    assert period_bounds("day", datetime(2026, 2, 28, 8, 30)) == (  # naive = UTC
        datetime(2026, 2, 28, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    )
    # 01:00 in UTC+2 is still the previous day in UTC
    plus2 = timezone(timedelta(hours=2))
    assert period_bounds("day", datetime(2026, 3, 1, 1, 0, tzinfo=plus2))[0] == datetime(2026, 2, 28, tzinfo=UTC)
    with pytest.raises(ValueError):
        period_bounds("week", WHEN)


@pytest.mark.parametrize(
    ("spent", "state"),
    [(0.0, "ok"), (39.5, "ok"), (40.0, "warning"), (49.99, "warning"), (50.0, "critical"), (80.0, "critical")],
)
def test_budget_states(spent: float, state: str) -> None:
    budget = Budget("all", 50.0, "month", "all")
    status = budget_status(budget, spent, WHEN)
    assert status.state == state
    assert status.fraction == pytest.approx(spent / 50.0)
    assert (status.period_start, status.period_end) == period_bounds("month", WHEN)
    assert status.limit == 50.0 and status.spent == spent


def test_budget_state_tolerates_float_sums() -> None:
    spent = sum([0.1] * 8)  # 0.7999999999999999
    assert budget_status(Budget("b", 1.0), spent, WHEN).state == "warning"


def test_budget_scopes() -> None:
    sample = Sample(ts=0, target="fast", provider="openai", model="gpt-4o-mini", source="probe")
    app = {"provider": "anthropic", "target": "app", "source": "app"}
    assert Budget("a", 1, scope="all").matches(sample)
    assert Budget("a", 1, scope="provider:openai").matches(sample)
    assert not Budget("a", 1, scope="provider:openai").matches(app)
    assert Budget("a", 1, scope="target:fast").matches(sample)
    assert Budget("a", 1, scope="source:app").matches(app)
    assert not Budget("a", 1, scope="source:app").matches(sample)
    target = Target("fast", "openai", "gpt-4o-mini", "openai", "https://api.openai.com/v1")
    assert Budget("a", 1, scope="target:fast").matches_target(target)
    assert Budget("a", 1, scope="source:probe").matches_target(target)
    assert not Budget("a", 1, scope="source:app").matches_target(target)
    with pytest.raises(CostConfigError):
        Budget("a", 1, scope="model:x")


def _statuses(budget: Budget, fractions: list[float], now: datetime) -> list[object]:
    return [budget_status(budget, f * budget.limit_usd, now) for f in fractions]


def test_each_threshold_fires_once_per_period_and_rearms() -> None:
    budget = Budget("all", 100.0, "month", "all")
    alerter = BudgetAlerter([budget])
    fired: list[float | None] = []
    for status in _statuses(budget, [0.1, 0.49, 0.5, 0.6, 0.55, 0.8, 0.85, 0.99, 1.0, 1.3, 1.0], WHEN):
        fired += [e.threshold for e in alerter.update(status) if e.kind == "threshold"]
    assert fired == [0.5, 0.8, 1.0]
    # next month: re-armed
    july = WHEN + timedelta(days=20)
    events = alerter.update(budget_status(budget, 55.0, july))
    assert [(e.kind, e.threshold) for e in events] == [("threshold", 0.5)]
    assert alerter.update(budget_status(budget, 56.0, july)) == []
    assert "50 %" in events[0].message and "$55.00 of $100.00 this month" in events[0].message


def test_a_jump_announces_every_threshold_in_order() -> None:
    budget = Budget("all", 10.0)
    events = BudgetAlerter([budget]).update(budget_status(budget, 11.0, WHEN))
    assert [e.threshold for e in events] == [0.5, 0.8, 1.0]


def test_daily_budget_rearms_each_day() -> None:
    budget = Budget("daily", 1.0, "day")
    alerter = BudgetAlerter([budget])
    assert len(alerter.update(budget_status(budget, 0.6, WHEN))) == 1
    assert alerter.update(budget_status(budget, 0.7, WHEN + timedelta(hours=3))) == []
    assert len(alerter.update(budget_status(budget, 0.6, WHEN + timedelta(days=1)))) == 1


def test_seeded_state_after_restart_does_not_reannounce() -> None:
    budget = Budget("all", 100.0)
    restarted = BudgetAlerter([budget], initial=[budget_status(budget, 85.0, WHEN)])
    assert restarted.update(budget_status(budget, 86.0, WHEN)) == []
    assert [e.threshold for e in restarted.update(budget_status(budget, 100.0, WHEN))] == [1.0]
    # a seed from last month does not silence this month
    stale = BudgetAlerter([budget], initial=[budget_status(budget, 85.0, WHEN - timedelta(days=31))])
    assert [e.threshold for e in stale.update(budget_status(budget, 85.0, WHEN))] == [0.5, 0.8]


def test_pausing_probes_in_scope() -> None:
    budget = Budget("openai", 10.0, "month", "provider:openai", pause_probes_at=1.0)
    alerter = BudgetAlerter([budget])
    openai_t = Target("o", "openai", "gpt-4o-mini", "openai", "https://api.openai.com/v1")
    claude_t = Target("c", "anthropic", "claude-haiku-4-5", "anthropic", "https://api.anthropic.com")
    assert alerter.update(budget_status(budget, 9.0, WHEN))[-1].kind == "threshold"
    assert not alerter.should_pause(openai_t)
    events = alerter.update(budget_status(budget, 10.0, WHEN))
    assert [e.kind for e in events] == ["threshold", "paused"]
    assert alerter.should_pause(openai_t) and not alerter.should_pause(claude_t)
    assert alerter.is_paused("openai") and alerter.paused_budgets() == ["openai"]
    assert alerter.update(budget_status(budget, 11.0, WHEN)) == []
    # new month: spend starts over, probes resume
    events = alerter.update(budget_status(budget, 0.0, WHEN + timedelta(days=20)))
    assert [e.kind for e in events] == ["resumed"]
    assert not alerter.should_pause(openai_t)
    # a restart above the pause line pauses silently
    seeded = BudgetAlerter([budget], initial=[budget_status(budget, 12.0, WHEN)])
    assert seeded.should_pause(openai_t)
    assert budget_status(budget, 12.0, WHEN).pause_probes


def _priced(cost: float | None, provider: str = "openai") -> Sample:
    return Sample(ts=WHEN.timestamp(), target="t", provider=provider, model="m", cost_usd=cost)


def test_tracker_counts_priced_samples_in_scope_and_announces_thresholds() -> None:
    budget = Budget("openai", 10.0, "month", "provider:openai")
    tracker = BudgetTracker([budget], clock=WHEN.timestamp)
    tracker.seed(lambda b, since: 6.0)  # $6 already spent this month: 50 % is not announced again
    assert tracker.observe(_priced(3.0, "anthropic")) == []  # another provider's spend
    assert tracker.observe(_priced(None)) == [] and tracker.observe(_priced(0.0)) == []
    events = tracker.observe(_priced(2.5))
    assert [e.threshold for e in events] == [0.8]
    # no time has passed since the start: no rate yet, so no projection is named
    assert events[0].message == 'budget "openai" reached 80 %: $8.50 of $10.00 this month'
    assert budget_event(events[0], 1.0)["spent_usd"] == 8.5
    assert [s.spent for s in tracker.statuses()] == [8.5]


def test_a_sample_priced_nan_does_not_freeze_the_budget() -> None:
    """One NaN cost used to make the running sum NaN for the rest of the period: no alert, no
    pause ever again. It now counts nothing, and later spend is still announced."""
    budget = Budget("all", 10.0, "month", "all", pause_probes_at=1.0)
    tracker = BudgetTracker([budget], clock=WHEN.timestamp)
    assert tracker.observe(_priced(float("nan"))) == []
    assert tracker.observe(_priced(float("inf"))) == []
    events = tracker.observe(_priced(10.0))
    assert [(e.kind, e.threshold) for e in events] == [
        ("threshold", 0.5),
        ("threshold", 0.8),
        ("threshold", 1.0),
        ("paused", None),
    ]
    assert tracker.statuses()[0].spent == 10.0


# --------------------------------------------------------------------------------------------
# Probe overhead
# --------------------------------------------------------------------------------------------


def test_probe_overhead() -> None:
    book = PriceBook([PriceOverride("house-model", "vllm", 1.0, 2.0)])
    prompt = "Reply with the word OK."  # 23 characters -> 6 tokens + template
    targets = [
        Target(
            "mini", "openai", "gpt-4o-mini", "openai", "https://api.openai.com/v1",
            prompt=prompt, max_tokens=16, interval_s=60,
        ),
        Target("house", "vllm", "house-model", "openai", "http://127.0.0.1:8000/v1", max_tokens=32, interval_s=15),
        Target("local", "ollama", "llama3", "ollama", "http://127.0.0.1:11434", interval_s=30),
        Target("off", "openai", "gpt-4o", "openai", "https://api.openai.com/v1", disabled_reason="no key"),
    ]
    lines = probe_overhead(targets, book, est_tokens_in={"house": 100}, est_tokens_out={"house": 20}, when=WHEN)
    assert [line.target for line in lines] == ["mini", "house", "local"]
    mini, house, local = lines
    assert mini.probes_per_day == 1440 and mini.tokens_in == estimate_prompt_tokens(prompt) == 6 + 8
    assert mini.tokens_out == 16
    one = book.cost("openai", "gpt-4o-mini", 14, 16, 0, WHEN)
    assert mini.cost_per_probe == one
    assert mini.per_day == approx(one * 1440) and mini.per_month == approx(one * 1440 * 30)
    assert house.probes_per_day == 5760 and (house.tokens_in, house.tokens_out) == (100, 20)
    assert house.per_day == approx((100 * 1.0 + 20 * 2.0) / 1e6 * 5760)
    assert not local.priced and local.per_day is None and local.per_month is None
    day, month, unpriced = overhead_totals(lines)
    assert day == approx(mini.per_day + house.per_day) and month == approx(day * 30)
    assert unpriced == ["local"]


# --------------------------------------------------------------------------------------------
# Recommendations
# --------------------------------------------------------------------------------------------


@pytest.fixture
def fixture_book() -> PriceBook:
    return PriceBook(
        [
            PriceOverride("big", "vllm", 10.0, 30.0),
            PriceOverride("small", "vllm", 1.0, 3.0),
            PriceOverride("mid", "lmstudio", 5.0, 10.0),
            PriceOverride("pricier", "lmstudio", 20.0, 60.0),
        ]
    )


def test_recommendations_on_a_fixture(fixture_book: PriceBook) -> None:
    usage = [
        ModelUsage("vllm", "big", 600_000, 50_000),
        ModelUsage("vllm", "big", 400_000, 50_000),  # summed: 1M in, 100k out -> $13.00
        ModelUsage("vllm", "unmonitored", 1e9, 1e9),
        ModelUsage("ollama", "llama3", 1e6, 1e6),
    ]
    monitored = [("vllm", "big"), ("vllm", "small"), ("lmstudio", "mid"), ("lmstudio", "pricier"), ("ollama", "llama3")]
    measured = {("vllm", "small"): [Measured("small-eu", 420.0, 0.003)]}
    recs = recommend(usage, fixture_book, monitored, measured)
    assert [(r.alt_provider, r.alt_model) for r in recs] == [("vllm", "small"), ("lmstudio", "mid")]
    small, mid = recs
    assert small.current_monthly == pytest.approx(13.0) and small.alt_monthly == pytest.approx(1.3)
    assert small.saving_monthly == pytest.approx(11.7) and small.price_ratio == pytest.approx(0.1)
    assert small.source == "monitored" and small.alt_measured == (Measured("small-eu", 420.0, 0.003),)
    assert small.text == (
        "switching vllm/big to vllm/small: $13.00 -> $1.30 per month at the current rate (-90 %); "
        "on target small-eu: p50 TTFT 420 ms, error rate 0.3 %"
    )
    assert mid.text == "switching vllm/big to lmstudio/mid: $13.00 -> $6.00 per month at the current rate (-54 %)"


def test_recommendations_count_cached_tokens() -> None:
    book = PriceBook([PriceOverride("a", "vllm", 10.0, 10.0, 1.0), PriceOverride("b", "vllm", 4.0, 10.0)])
    usage = [ModelUsage("vllm", "a", 1_000_000, 0, 900_000)]  # a: 0.1M x 10 + 0.9M x 1 = $1.90; b: $4.00
    assert recommend(usage, book, [("vllm", "a"), ("vllm", "b")]) == []


def test_catalogue_recommendations(book: PriceBook) -> None:
    usage = [ModelUsage("openai", "gpt-4o", 10_000_000, 2_000_000, 1_000_000)]
    recs = recommend(usage, book, [("openai", "gpt-4o")], when=WHEN)
    assert recs and len(recs) <= 3
    current = book.unit_prices("openai", "gpt-4o", WHEN)
    assert current is not None
    for rec in recs:
        assert rec.source == "catalogue" and rec.alt_provider == "openai"
        assert rec.alt_model.startswith("gpt") and rec.alt_model != "gpt-4o"
        assert 0.25 <= rec.price_ratio < 0.99
        assert not any(word in rec.alt_model for word in ("audio", "realtime", "image", "search", "embed", "ft:"))
        alt = book.unit_prices("openai", rec.alt_model, WHEN)
        assert alt is not None and alt.context_window is not None
        assert alt.context_window >= (current.context_window or 0)
        assert rec.alt_monthly == pytest.approx(alt.cost(10_000_000, 2_000_000, 1_000_000))
        assert "p50" not in rec.text
    assert [r.saving_monthly for r in recs] == sorted((r.saving_monthly for r in recs), reverse=True)
    assert recommend(usage, book, [("openai", "gpt-4o")], catalogue=False, when=WHEN) == []
    assert recommend(usage, book, [], when=WHEN) == []  # not monitored


# --------------------------------------------------------------------------------------------
# Config parsing
# --------------------------------------------------------------------------------------------

EXAMPLE = """
[[budgets]]
name = "all"
limit_usd = 50
period = "month"
scope = "all"
pause_probes_at = 1.0

[[budgets]]
name = "openai daily"
limit_usd = 2.5
period = "day"
scope = "provider:openai"

[[prices]]
model = "my-vllm-model"
provider = "vllm"
input_per_mtok = 0
output_per_mtok = 0
cache_read_per_mtok = 0

[[prices]]
model = "gpt-4o-mini"
input_per_mtok = 0.2
output_per_mtok = 0.8
"""


def test_parse_the_documented_config_shape() -> None:
    data = tomllib.loads(EXAMPLE)
    budgets = parse_budgets(data["budgets"])
    assert budgets == [
        Budget("all", 50.0, "month", "all", 1.0),
        Budget("openai daily", 2.5, "day", "provider:openai", None),
    ]
    prices = [parse_price(p) for p in data["prices"]]
    assert prices == [
        PriceOverride("my-vllm-model", "vllm", 0.0, 0.0, 0.0),
        PriceOverride("gpt-4o-mini", None, 0.2, 0.8, None),
    ]
    assert parse_budget({"name": "x", "limit_usd": 1}) == Budget("x", 1.0, "month", "all", None)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"limit_usd": 5}, "name"),
        ({"name": "a"}, "limit_usd"),
        ({"name": "a", "limit_usd": 0}, "limit_usd"),
        ({"name": "a", "limit_usd": -1}, "limit_usd"),
        ({"name": "a", "limit_usd": "50"}, "limit_usd"),
        ({"name": "a", "limit_usd": True}, "limit_usd"),
        ({"name": "a", "limit_usd": float("inf")}, "limit_usd"),
        ({"name": "", "limit_usd": 5}, "name"),
        ({"name": "a", "limit_usd": 5, "period": "week"}, "period"),
        ({"name": "a", "limit_usd": 5, "scope": "model:gpt"}, "scope"),
        ({"name": "a", "limit_usd": 5, "scope": "provider:"}, "scope"),
        ({"name": "a", "limit_usd": 5, "scope": "source:cron"}, "scope"),
        ({"name": "a", "limit_usd": 5, "pause_probes_at": 0}, "pause_probes_at"),
        ({"name": "a", "limit_usd": 5, "pause_probes_at": 80}, "pause_probes_at"),
        ({"name": "a", "limit_usd": 5, "limit": 5}, "limit"),
    ],
)
def test_parse_budget_errors_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(CostConfigError) as info:
        parse_budget(data)
    assert info.value.key == key
    assert isinstance(info.value, ValueError) and str(info.value).startswith(f"{key}: ")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"input_per_mtok": 1, "output_per_mtok": 1}, "model"),
        ({"model": "m", "output_per_mtok": 1}, "input_per_mtok"),
        ({"model": "m", "input_per_mtok": 1}, "output_per_mtok"),
        ({"model": "m", "input_per_mtok": -1, "output_per_mtok": 1}, "input_per_mtok"),
        ({"model": "m", "input_per_mtok": 1, "output_per_mtok": "cheap"}, "output_per_mtok"),
        ({"model": "m", "input_per_mtok": 1, "output_per_mtok": 1, "cache_read_per_mtok": -0.1}, "cache_read_per_mtok"),
        ({"model": "m", "provider": 3, "input_per_mtok": 1, "output_per_mtok": 1}, "provider"),
        ({"model": "m", "input_per_mtok": 1, "output_per_mtok": 1, "cached_per_mtok": 1}, "cached_per_mtok"),
    ],
)
def test_parse_price_errors_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(CostConfigError) as info:
        parse_price(data)
    assert info.value.key == key


def test_parse_budgets_rejects_duplicate_names_with_the_index() -> None:
    with pytest.raises(CostConfigError) as info:
        parse_budgets([{"name": "a", "limit_usd": 1}, {"name": "a", "limit_usd": 2}])
    assert (info.value.key, info.value.index) == ("name", 1)
    with pytest.raises(CostConfigError) as info:
        parse_budgets([{"name": "a", "limit_usd": 1}, {"name": "b", "limit_usd": -2}])
    assert (info.value.key, info.value.index) == ("limit_usd", 1)
    with pytest.raises(CostConfigError) as info:
        parse_budgets(["not a table"])  # type: ignore[list-item]
    assert info.value.key == "budgets"


def test_format_usd() -> None:
    assert format_usd(1234.5) == "$1,234"
    assert format_usd(13) == "$13.00"
    assert format_usd(0.42) == "$0.42"
    assert format_usd(0.0042) == "$0.0042"
    assert format_usd(0.000042) == "$0.000042"
    assert format_usd(0) == "$0.00"

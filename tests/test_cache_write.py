"""tokens_cache_write (DESIGN 4, 7, 8): Anthropic cache writes read from the wire, stored (old data
files included), exported, logged, ingested, and priced at the cache-write price, not the input's."""

from __future__ import annotations

import csv
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import genai_prices
import pytest

from fake_provider import FakeProvider, Script, Usage
from llmscope_tui.costs import ModelUsage, PriceBook, PriceOverride, recommend
from llmscope_tui.export import write_csv
from llmscope_tui.ingest import RecordError, parse_record
from llmscope_tui.model import SAMPLE_FIELDS, Sample
from llmscope_tui.monitor import Monitor
from llmscope_tui.store import SCHEMA_VERSION, SampleStore, open_readonly
from llmscope_tui.store import schema as store_schema
from llmscope_tui.wire import PROTOCOLS
from llmscope_tui.wire.base import StreamState

WHEN = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
HAIKU = "claude-3-5-haiku-latest"  # $0.80 input, $0.08 cache read, $1.00 cache write (1.25x), $4 output
#: One Anthropic call's usage as the API reports it: fresh input apart from the cache's.
WIRE_USAGE = {"input_tokens": 500, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 400, "output_tokens": 10}


def read_stream(frames: list[dict[str, Any]]) -> StreamState:
    state = StreamState()
    for frame in frames:
        PROTOCOLS["anthropic"].read_object(frame, None, state)
    return state


def test_cache_creation_is_read_from_message_start_and_message_delta() -> None:
    start = {"type": "message_start", "message": {"model": HAIKU, "usage": {**WIRE_USAGE, "output_tokens": 1}}}
    delta = {"type": "message_delta", "usage": {"output_tokens": 10}}
    usage = read_stream([start, delta]).usage
    assert (usage.tokens_in, usage.tokens_cached, usage.tokens_cache_write, usage.tokens_out) == (1000, 100, 400, 10)
    # usage only in message_delta, cumulative (as newer API versions send it)
    bare = {"type": "message_start", "message": {"model": HAIKU}}
    usage = read_stream([bare, {"type": "message_delta", "usage": WIRE_USAGE}]).usage
    assert (usage.tokens_in, usage.tokens_cached, usage.tokens_cache_write) == (1000, 100, 400)
    assert read_stream([bare, delta]).usage.tokens_cache_write is None  # none reported


def test_a_cache_write_costs_what_genai_prices_says_and_more_than_input() -> None:
    book = PriceBook()
    usage = read_stream([{"type": "message", "model": HAIKU, "content": [], "usage": WIRE_USAGE}]).usage
    sample = Sample(
        ts=WHEN.timestamp(), target="t", provider="anthropic", model=HAIKU, tokens_in=usage.tokens_in,
        tokens_out=usage.tokens_out, tokens_cached=usage.tokens_cached, tokens_cache_write=usage.tokens_cache_write or 0,
    )  # fmt: skip
    # the truth: genai-prices' own reading of the same usage object, and its own price
    extracted = genai_prices.extract_usage({"model": HAIKU, "usage": WIRE_USAGE}, provider_id="anthropic")
    truth = float(extracted.calc_price(genai_request_timestamp=WHEN).total_price)
    assert book.cost_sample(sample) == pytest.approx(truth, rel=1e-12)
    assert truth == pytest.approx((500 * 0.8 + 100 * 0.08 + 400 * 1.0 + 10 * 4) / 1e6)
    at_input_price = book.cost("anthropic", HAIKU, 1000, 10, 100, WHEN)  # the cache write as input
    assert at_input_price is not None and book.cost_sample(sample) > at_input_price
    # bad counts are cut to what tokens_in holds (genai-prices refuses more), reads first
    assert book.cost("anthropic", HAIKU, 1000, 0, 800, WHEN, tokens_cache_write=400) == pytest.approx(
        (800 * 0.08 + 200 * 1.0) / 1e6
    )
    # an override has no cache-write price: the writes pay the input price
    own = PriceBook([PriceOverride(model="mine", input_per_mtok=2.0, output_per_mtok=0.0, cache_read_per_mtok=1.0)])
    assert own.cost("x", "mine", 1000, 0, 100, tokens_cache_write=400) == pytest.approx((900 * 2.0 + 100 * 1.0) / 1e6)


def test_monthly_totals_price_cache_writes_like_a_call() -> None:
    """Recommendations price a month's token mix with base-tier unit prices: the same formula."""
    book = PriceBook()
    unit = book.unit_prices("anthropic", HAIKU, WHEN)
    assert unit is not None and unit.cache_write_per_mtok == pytest.approx(1.0)
    assert unit.cost(1000, 10, 100, 400) == pytest.approx(book.cost("anthropic", HAIKU, 1000, 10, 100, WHEN,
                                                                     tokens_cache_write=400))  # fmt: skip
    mix = [ModelUsage("anthropic", HAIKU, 1e9, 1e6, 1e8, 4e8)]
    monitored = [("anthropic", HAIKU), ("anthropic", "claude-3-haiku")]
    (rec,) = recommend(mix, book, monitored, catalogue=False, when=WHEN)
    assert rec.current_monthly == pytest.approx(unit.cost(1e9, 1e6, 1e8, 4e8))
    assert rec.current_monthly > unit.cost(1e9, 1e6, 1e8)  # the writes cost more than input


def _old_data_file(path: Path) -> None:
    """A data file as llmscope-tui wrote it before tokens_cache_write (schema 2), with one sample."""
    conn = sqlite3.connect(path, isolation_level=None)
    store_schema.migrate(conn, path, store_schema.MIGRATIONS[:2])
    conn.execute(
        "INSERT INTO samples (ts, target, provider, model, ok, tokens_in, tokens_out, tokens_cached, source)"
        " VALUES (1790000000.5, 'old', 'anthropic', ?, 1, 1000, 10, 100, 'probe')",
        [HAIKU],
    )
    conn.close()


def test_an_old_data_file_reads_and_upgrades_with_zero_cache_writes(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    _old_data_file(db)
    # read-only (export, report, the TUI): not migrated, the missing column reads 0
    with open_readonly(db) as reader:
        (old,) = reader.samples()
        assert old.tokens_cache_write == 0 and old.tokens_cached == 100
        assert reader.columns(["tokens_cache_write"])["tokens_cache_write"].tolist() == [0]
    assert write_csv(db, tmp_path / "old.csv") == 1
    with open(tmp_path / "old.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["tokens_cache_write"] == "0"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2  # reading never upgrades
    conn.close()
    # opened for writing: upgraded in place, the old row gets 0, new rows keep theirs
    with SampleStore(db) as store:
        store.add(Sample(ts=1790000001.5, target="new", provider="anthropic", model=HAIKU, ok=1,
                         tokens_in=1000, tokens_out=10, tokens_cached=100, tokens_cache_write=400))  # fmt: skip
        assert store.flush(5)
        assert [s.tokens_cache_write for s in store.samples()] == [0, 400]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT tokens_cache_write FROM samples ORDER BY ts").fetchall() == [(0,), (400,)]
    conn.close()


def test_the_csv_column_follows_tokens_cached(tmp_path: Path) -> None:
    assert SAMPLE_FIELDS.index("tokens_cache_write") == SAMPLE_FIELDS.index("tokens_cached") + 1
    db = tmp_path / "s.db"
    with SampleStore(db) as store:
        store.add(Sample(ts=1790000000.0, target="t", provider="anthropic", model=HAIKU, ok=1,
                         tokens_in=1000, tokens_out=10, tokens_cached=100, tokens_cache_write=400))  # fmt: skip
    write_csv(db, tmp_path / "s.csv")
    with open(tmp_path / "s.csv", newline="") as f:
        header, row = list(csv.reader(f))
    assert header == list(SAMPLE_FIELDS)
    assert dict(zip(header, row, strict=True))["tokens_cache_write"] == "400"


def test_ingest_records_take_cache_writes_bounded_like_the_other_counts() -> None:
    base = {"provider": "anthropic", "model": HAIKU, "tokens_in": 1000, "tokens_cached": 100, "tokens_out": 10}
    assert parse_record({**base, "tokens_cache_write": 400}, now=WHEN.timestamp()).tokens_cache_write == 400
    assert parse_record(base, now=WHEN.timestamp()).tokens_cache_write == 0  # optional, 0 when absent
    refusals = [
        ({**base, "tokens_cache_write": 901}, "901 plus tokens_cached 100 is more than tokens_in 1000"),
        ({**base, "tokens_cache_write": -1}, "non-negative integer"),
        ({**base, "tokens_cache_write": "4"}, "non-negative integer"),
        ({**base, "tokens_in": None, "tokens_cache_write": 2**53}, "non-negative integer"),
        ({"provider": "p", "model": "m", "tokens_cache_write": 1}, "without tokens_in"),
    ]
    for record, fragment in refusals:
        with pytest.raises(RecordError, match="tokens_cache_write") as err:
            parse_record(record, now=WHEN.timestamp())
        assert fragment in str(err.value), record


@pytest.mark.anyio
async def test_a_probe_stores_logs_and_prices_the_cache_write(tmp_path: Path, fake_provider: FakeProvider) -> None:
    from llmscope_tui.config import load_settings

    fake_provider.script(
        default=Script(usage=Usage(input_tokens=1000, cached_tokens=100, cache_creation_tokens=400, output_tokens=10))
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\ninterval = "50ms"\ndb = "{tmp_path / "samples.db"}"\n'
        f'[[targets]]\nname = "claude"\nprovider = "anthropic"\nmodel = "{HAIKU}"\nbase_url = "{fake_provider.base_url}"\n'
    )
    settings = load_settings(config, env={"ANTHROPIC_API_KEY": "sk-ant-test"})
    monitor = Monitor(settings)
    events: list[dict[str, Any]] = []
    monitor.subscribe(events.append)
    with anyio.fail_after(30):
        await monitor.run(count=1)
    (event,) = [e for e in events if e["event"] == "sample"]  # the JSON log's sample event
    assert event["ok"] == 1
    assert (event["tokens_in"], event["tokens_cached"], event["tokens_cache_write"]) == (1000, 100, 400)
    truth = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=1000, cache_read_tokens=100, cache_write_tokens=400, output_tokens=10),
        HAIKU, provider_id="anthropic", genai_request_timestamp=datetime.fromtimestamp(event["ts"], UTC),
    )  # fmt: skip
    assert event["cost_usd"] == pytest.approx(float(truth.total_price), rel=1e-12)
    with open_readonly(settings.db_path) as store:
        (stored,) = store.samples()
    assert stored.tokens_cache_write == 400 and stored.cost_usd == event["cost_usd"]

"""CSV export (DESIGN 8): header and order, UTC ISO timestamps, formula escaping, filters, atomicity."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from llmscope_tui import export
from llmscope_tui.export import format_ts, write_csv
from llmscope_tui.model import SAMPLE_FIELDS, Sample
from llmscope_tui.store import SampleStore, StoreError

T0 = 1_795_329_660.0  # 2026-11-22T06:41:00Z


def sample(i: int, **over: Any) -> Sample:
    values: dict[str, Any] = {
        "ts": T0 + i * 60 + 0.123,
        "target": "alpha" if i % 2 == 0 else "beta",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "ok": 1,
        "http_status": 200,
        "connect_ms": 0.0,
        "ttft_ms": 312.3456789,
        "latency_ms": 1000.0,
        "itl_ms": 20.1 + 0.2,  # 20.299999999999997 in binary
        "tps": 49.26108374384236,
        "tokens_in": 30,
        "tokens_out": 16,
        "tokens_cached": 0,
        "tokens_reasoning": None,
        "tokens_estimated": 0,
        "cost_usd": 0.1 + 0.2,  # 0.30000000000000004
        "request_id": f"req_{i}",
        "source": "probe",
        "retry_after_s": 3.0,
        "error_message": "not exported",
    }
    values.update(over)
    return Sample(**values)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "samples.db"
    with SampleStore(path) as s:
        s.add_many(sample(i) for i in range(6))
    return path


def read(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def test_header_order_timestamps_and_cells(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    assert write_csv(db, out) == 6
    rows = read(out)
    assert rows[0] == list(SAMPLE_FIELDS)
    assert len(rows) == 7
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["ts"] == "2026-11-22T06:41:00.123Z"
    assert rows[2][0] == "2026-11-22T06:42:00.123Z"  # oldest first
    assert first["target"] == "alpha" and first["request_id"] == "req_0"
    assert first["ok"] == "1" and first["http_status"] == "200" and first["tokens_in"] == "30"
    assert first["connect_ms"] == "0"
    assert first["ttft_ms"] == "312.346"
    assert first["latency_ms"] == "1000"
    assert first["itl_ms"] == "20.3"  # no binary noise
    assert first["tps"] == "49.261"
    assert first["cost_usd"] == "0.3"
    assert first["tokens_reasoning"] == "" and first["error_kind"] == ""  # None -> empty
    assert "error_message" not in first and "retry_after_s" not in first
    data = out.read_bytes()
    assert data.count(b"\r\n") == 7 and data.count(b"\n") == 7  # RFC 4180 line ends


def test_format_ts_rounds_to_milliseconds_in_utc() -> None:
    assert format_ts(0.0) == "1970-01-01T00:00:00.000Z"
    assert format_ts(0.9996) == "1970-01-01T00:00:01.000Z"  # carries into the second
    assert format_ts(1_795_329_660.1234) == "2026-11-22T06:41:00.123Z"
    assert format_ts(1_795_329_659.9999) == "2026-11-22T06:41:00.000Z"


def test_small_costs_are_positional_with_ten_significant_digits() -> None:
    cells = export.format_row(
        sample(0, cost_usd=1.53e-05, ttft_ms=1e-07, tps=123456.78951).as_row()[: len(SAMPLE_FIELDS)]
    )
    row = dict(zip(SAMPLE_FIELDS, cells, strict=True))
    assert row["cost_usd"] == "0.0000153"
    assert row["ttft_ms"] == "0"
    assert row["tps"] == "123456.79"  # .3f then trailing zeros trimmed -> 123456.790 -> 123456.79
    cells = export.format_row(sample(0, cost_usd=0.000123456789012345).as_row()[: len(SAMPLE_FIELDS)])
    assert dict(zip(SAMPLE_FIELDS, cells, strict=True))["cost_usd"] == "0.000123456789"


def test_formula_injection_is_escaped_in_text_cells_only(tmp_path: Path) -> None:
    db = tmp_path / "evil.db"
    with SampleStore(db) as s:
        s.add(
            sample(
                0,
                target="=HYPERLINK(\"http://x\")",
                provider="+cmd",
                model="-2+3",
                error_kind="@SUM(A1)",
                request_id="\tTAB",
                source="\rCR",
                connect_ms=-0.5,  # a number: never mangled
                tokens_in=-1,
            )
        )
        s.add(sample(1, target="safe=inside", model="model-1"))
    out = tmp_path / "evil.csv"
    write_csv(db, out)
    rows = read(out)
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["target"] == "'=HYPERLINK(\"http://x\")"
    assert row["provider"] == "'+cmd"
    assert row["model"] == "'-2+3"
    assert row["error_kind"] == "'@SUM(A1)"
    assert row["request_id"] == "'\tTAB"
    assert row["source"] == "'\rCR"
    assert row["connect_ms"] == "-0.5" and row["tokens_in"] == "-1"
    other = dict(zip(rows[0], rows[2], strict=True))
    assert other["target"] == "safe=inside" and other["model"] == "model-1"


def test_filters_by_target_and_since(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.csv"
    assert write_csv(db, out, target="beta") == 3
    assert {r[1] for r in read(out)[1:]} == {"beta"}
    assert write_csv(db, out, since=T0 + 3 * 60) == 3
    assert [r[0][14:19] for r in read(out)[1:]] == ["44:00", "45:00", "46:00"]
    assert write_csv(db, out, since=T0 + 3 * 60, target="alpha") == 1
    assert write_csv(db, out, target="nobody") == 0
    assert read(out) == [list(SAMPLE_FIELDS)]


def test_export_to_a_stream(db: Path) -> None:
    buf = io.StringIO()
    assert write_csv(db, buf) == 6
    lines = buf.getvalue().splitlines()
    assert lines[0] == ",".join(SAMPLE_FIELDS)
    assert len(lines) == 7


def test_export_while_another_store_is_writing(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    writer = SampleStore(db)
    try:
        writer.add_many(sample(i) for i in range(100))
        assert writer.flush(5)
        writer.add(sample(100))  # maybe not yet on disk: the export sees a consistent snapshot
        out = tmp_path / "live.csv"
        n = write_csv(db, out)
        assert n in (100, 101)
        assert len(read(out)) == n + 1
        # And from another process, as `llmscope-tui export` runs beside a live monitor.
        code = (
            "from llmscope_tui.export import write_csv; import sys\n"
            f"print(write_csv({str(db)!r}, sys.stdout, target='alpha'), file=sys.stderr)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert int(result.stderr.strip()) == 51
        assert result.stdout.splitlines()[0] == ",".join(SAMPLE_FIELDS)
    finally:
        writer.close()


def test_missing_data_file_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no data file at"):
        write_csv(tmp_path / "none.db", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_a_failed_export_leaves_the_old_file_and_no_temp_file(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "keep.csv"
    out.write_text("previous export\n")
    calls = {"n": 0}
    real = export.format_row

    def failing(row: Any) -> list[str]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(row)

    monkeypatch.setattr(export, "format_row", failing)
    with pytest.raises(OSError):
        write_csv(db, out)
    assert out.read_text() == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
    monkeypatch.setattr(export, "format_row", real)
    assert write_csv(db, out) == 6
    assert read(out)[0] == list(SAMPLE_FIELDS)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".keep.csv")] == []


def test_an_export_is_readable_by_the_user_alone(db: Path, tmp_path: Path) -> None:
    """0600 whatever the umask (DESIGN 8): an export holds what the data file holds."""
    out = tmp_path / "mode.csv"
    old = os.umask(0)
    try:
        write_csv(db, out)
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o600


def test_export_streams_rows(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_csv consumes the rows as an iterator (constant memory), never as a list."""
    from llmscope_tui.store import StoreReader

    seen: list[str] = []
    real = StoreReader.iter_rows

    def spy(self: StoreReader, *args: Any, **kwargs: Any) -> Any:
        it = real(self, *args, **kwargs)
        seen.append(type(it).__name__)
        return it

    monkeypatch.setattr(StoreReader, "iter_rows", spy)
    assert write_csv(db, io.StringIO()) == 6
    assert seen == ["generator"]

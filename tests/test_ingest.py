"""Application usage ingestion: record validation, the local endpoint, the bind policy, file import."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from llmscope_tui.ingest import (
    BodyError,
    IngestConfigError,
    IngestOptions,
    RecordError,
    check_bind,
    import_file,
    is_loopback,
    parse_body,
    parse_record,
)
from llmscope_tui.model import Sample
from llmscope_tui.server import IngestServer

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z
GOOD = {"provider": "openai", "model": "gpt-4o-mini", "tokens_in": 120, "tokens_out": 30}

# -- parse_record ----------------------------------------------------------------------------------------


def test_parse_record_happy_path() -> None:
    sample = parse_record(
        {
            "provider": "OpenAI",
            "model": "gpt-4o",
            "tokens_in": 1200,
            "tokens_out": 101,
            "tokens_cached": 1000,
            "tokens_reasoning": 40,
            "latency_ms": 1300,
            "ttft_ms": 300.5,
            "ok": True,
            "ts": "2025-06-15T15:00:00Z",
            "project": "checkout",
            "request_id": "req_123",
            "http_status": 200,
        },
        now=NOW,
    )
    assert isinstance(sample, Sample)
    assert sample.source == "app"
    assert sample.target == "app:checkout"
    assert sample.provider == "openai"  # normalised, as the presets spell it
    assert sample.model == "gpt-4o"
    assert (sample.tokens_in, sample.tokens_out, sample.tokens_cached, sample.tokens_reasoning) == (1200, 101, 1000, 40)
    assert sample.ok == 1 and sample.error_kind is None and sample.http_status == 200
    assert sample.ts == 1_749_999_600.0
    assert sample.tokens_estimated == 0
    assert sample.cost_usd is None  # the monitor prices it, like a probe
    assert sample.request_id == "req_123"
    # DESIGN 4: itl = (latency - ttft) / (tokens_out - 1), tps = (tokens_out - 1) / span.
    assert sample.itl_ms == pytest.approx((1300 - 300.5) / 100)
    assert sample.tps == pytest.approx(100 / ((1300 - 300.5) / 1000))


def test_parse_record_defaults() -> None:
    sample = parse_record({"provider": "anthropic", "model": "claude-3-5-haiku"}, now=NOW)
    assert sample.target == "app:anthropic/claude-3-5-haiku"
    assert sample.ts == NOW
    assert sample.ok == 1
    assert sample.tokens_in is None and sample.itl_ms is None and sample.tps is None


def test_parse_record_failure_defaults() -> None:
    failed = parse_record({**GOOD, "error_kind": "rate_limit", "http_status": 429}, now=NOW)
    assert failed.ok == 0 and failed.error_kind == "rate_limit"
    derived = parse_record({**GOOD, "ok": 0, "http_status": 503}, now=NOW)
    assert derived.ok == 0 and derived.error_kind == "server_error"
    by_status = parse_record({**GOOD, "http_status": 401}, now=NOW)
    assert by_status.ok == 0 and by_status.error_kind == "auth"


def test_parse_record_tag_and_epoch_ts() -> None:
    sample = parse_record({**GOOD, "tag": "batch-job", "ts": NOW - 60}, now=NOW)
    assert sample.target == "app:batch-job"
    assert sample.ts == NOW - 60


@pytest.mark.parametrize(
    ("record", "field", "fragment"),
    [
        ({"model": "m"}, "provider", "required"),
        ({"provider": "openai"}, "model", "required"),
        ({**GOOD, "tokens_inn": 3}, "tokens_inn", "did you mean 'tokens_in'"),
        ({**GOOD, "colour": "red"}, "colour", "unknown field"),
        ({**GOOD, "tokens_in": -5}, "tokens_in", "expected a non-negative integer, got -5"),
        ({**GOOD, "tokens_out": 1.5}, "tokens_out", "non-negative integer"),
        ({**GOOD, "tokens_out": True}, "tokens_out", "non-negative integer"),
        ({**GOOD, "tokens_cached": 121}, "tokens_cached", "more than tokens_in 120"),
        ({"provider": "p", "model": "m", "tokens_cached": 1}, "tokens_cached", "without tokens_in"),
        ({**GOOD, "tokens_reasoning": 31}, "tokens_reasoning", "more than tokens_out"),
        ({**GOOD, "error_kind": "boom"}, "error_kind", "rate_limit"),
        ({**GOOD, "ok": True, "error_kind": "auth"}, "ok", "is true but error_kind"),
        ({**GOOD, "ok": "yes"}, "ok", "true/false"),
        ({**GOOD, "ts": "yesterday"}, "ts", "ISO-8601"),
        ({**GOOD, "ts": 12}, "ts", "before 2000"),
        ({**GOOD, "ts": NOW + 2 * 86400}, "ts", "in the future"),
        ({**GOOD, "ts": NOW * 1000}, "ts", "looks like milliseconds"),
        ({**GOOD, "ts": float("nan")}, "ts", "epoch seconds"),
        ({**GOOD, "latency_ms": -1}, "latency_ms", "non-negative"),
        ({**GOOD, "latency_ms": 100, "ttft_ms": 200}, "ttft_ms", "more than latency_ms"),
        ({**GOOD, "project": "x" * 101}, "project", "longer than 100"),
        ({**GOOD, "project": "a\x1b[2Jb"}, "project", "control characters"),
        ({**GOOD, "project": "a", "tag": "b"}, "tag", "not both"),
        ({**GOOD, "http_status": 42}, "http_status", "100-599"),
        ({**GOOD, "provider": 3}, "provider", "expected a string"),
        (["not", "an", "object"], "record", "JSON object"),
    ],
)
def test_parse_record_refusals(record: object, field: str, fragment: str) -> None:
    with pytest.raises(RecordError) as info:
        parse_record(record, now=NOW)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert fragment in str(info.value)


def test_parse_body_object_list_and_refusals() -> None:
    assert len(parse_body(json.dumps(GOOD).encode(), now=NOW)) == 1
    assert len(parse_body(json.dumps([GOOD, GOOD, GOOD]).encode(), now=NOW)) == 3
    for body, status, fragment in [
        (b"", 400, "empty"),
        (b"[]", 400, "empty list"),
        (b"{nope", 400, "not valid JSON"),
        (b'{"provider": "p", "model": "m", "latency_ms": NaN}', 400, "NaN"),
        (b"42", 400, "JSON object or a list"),
        (json.dumps([GOOD] * 3).encode(), 413, "too many records"),
    ]:
        with pytest.raises(BodyError) as info:
            parse_body(body, now=NOW, max_records=2)
        assert info.value.status == status
        assert fragment in info.value.message


def test_parse_body_is_all_or_nothing_and_names_every_bad_record() -> None:
    body = json.dumps([GOOD, {**GOOD, "tokens_in": -5}, GOOD, {**GOOD, "model": ""}]).encode()
    with pytest.raises(BodyError) as info:
        parse_body(body, now=NOW)
    assert info.value.message.startswith("record 2 of 4: tokens_in: expected a non-negative integer, got -5")
    assert [(e["record"], e["field"]) for e in info.value.errors] == [(2, "tokens_in"), (4, "model")]


# -- the endpoint ------------------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[Sample]] = []
        self.threads: set[int] = set()

    def __call__(self, samples: list[Sample]) -> None:
        self.threads.add(threading.get_ident())
        self.batches.append(samples)

    @property
    def samples(self) -> list[Sample]:
        return [s for batch in self.batches for s in batch]


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def server(sink: Sink) -> AsyncIterator[IngestServer]:
    async with IngestServer(sink, max_body_bytes=4000, clock=lambda: NOW) as srv:
        yield srv


@pytest.fixture
async def keyed_server(sink: Sink) -> AsyncIterator[IngestServer]:
    async with IngestServer(sink, api_key="s3cret-key", clock=lambda: NOW) as srv:
        yield srv


def _client(srv: IngestServer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=srv.base_url, timeout=5.0)


@pytest.mark.anyio
async def test_endpoint_takes_an_object_and_a_list(server: IngestServer, sink: Sink) -> None:
    assert server.base_url.startswith("http://127.0.0.1:")
    async with _client(server) as http:
        one = await http.post("/v1/events", json={**GOOD, "project": "checkout"})
        many = await http.post("/v1/events", json=[GOOD, {**GOOD, "model": "gpt-4o"}])
    assert (one.status_code, one.json()) == (202, {"accepted": 1})
    assert (many.status_code, many.json()) == (202, {"accepted": 2})
    assert [len(b) for b in sink.batches] == [1, 2]
    assert {s.source for s in sink.samples} == {"app"}
    assert sink.samples[0].target == "app:checkout"
    assert sink.samples[2].model == "gpt-4o"
    # The sink runs on the caller's loop thread (the monitor's), not a server thread.
    assert sink.threads == {threading.get_ident()}
    assert server.accepted == 3


@pytest.mark.anyio
async def test_endpoint_needs_no_key_when_none_is_set(server: IngestServer) -> None:
    async with _client(server) as http:
        response = await http.post("/v1/events", json=GOOD, headers={"authorization": "Bearer whatever"})
    assert response.status_code == 202


@pytest.mark.anyio
async def test_endpoint_refuses_missing_or_wrong_key(keyed_server: IngestServer, sink: Sink) -> None:
    async with _client(keyed_server) as http:
        missing = await http.post("/v1/events", json=GOOD)
        wrong = await http.post("/v1/events", json=GOOD, headers={"authorization": "Bearer s3cret-kex"})
        basic = await http.post("/v1/events", json=GOOD, headers={"authorization": "Basic s3cret-key"})
        right = await http.post("/v1/events", json=GOOD, headers={"authorization": "Bearer s3cret-key"})
        lower = await http.post("/v1/events", json=GOOD, headers={"authorization": "bearer s3cret-key"})
    for refused in (missing, wrong, basic):
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "LLMSCOPE_API_KEY" in refused.json()["error"]["message"]
        assert "s3cret" not in refused.text  # the key is never echoed
    assert right.status_code == 202 and lower.status_code == 202
    assert len(sink.samples) == 2
    assert "s3cret" not in repr(keyed_server)


@pytest.mark.anyio
async def test_endpoint_400_names_the_record_and_the_field(server: IngestServer, sink: Sink) -> None:
    async with _client(server) as http:
        response = await http.post("/v1/events", json=[GOOD, GOOD, {**GOOD, "tokens_in": -5}])
        typo = await http.post("/v1/events", json={**GOOD, "latncy_ms": 3})
        garbage = await http.post("/v1/events", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == "record 3 of 3: tokens_in: expected a non-negative integer, got -5"
    assert error["errors"] == [
        {"record": 3, "field": "tokens_in", "message": "expected a non-negative integer, got -5"}
    ]
    assert typo.status_code == 400 and "latncy_ms: unknown field; did you mean 'latency_ms'" in typo.text
    assert garbage.status_code == 400 and "not valid JSON" in garbage.text
    assert sink.samples == []  # nothing of a refused request is stored


@pytest.mark.anyio
async def test_endpoint_413_over_the_size_limit(server: IngestServer, sink: Sink) -> None:
    big = [{**GOOD, "request_id": f"r{i:05d}"} for i in range(100)]  # ~7 kB > 4000 bytes
    async with _client(server) as http:
        response = await http.post("/v1/events", json=big)
    assert response.status_code == 413
    assert "4000 bytes" in response.json()["error"]["message"]
    assert sink.samples == []


@pytest.mark.anyio
async def test_endpoint_413_too_many_records(sink: Sink) -> None:
    async with IngestServer(sink, max_records=2) as srv, _client(srv) as http:
        response = await http.post("/v1/events", json=[GOOD] * 3)
    assert response.status_code == 413 and "too many records" in response.text


@pytest.mark.anyio
async def test_endpoint_415_wrong_content_type(server: IngestServer, sink: Sink) -> None:
    body = json.dumps(GOOD).encode()
    async with _client(server) as http:
        text = await http.post("/v1/events", content=body, headers={"content-type": "text/plain"})
        form = await http.post("/v1/events", data={"provider": "openai"})
        none = await http.post("/v1/events", content=body)
        charset = await http.post(
            "/v1/events", content=body, headers={"content-type": "application/json; charset=utf-8"}
        )
    for refused in (text, form, none):
        assert refused.status_code == 415
        assert "application/json" in refused.json()["error"]["message"]
    assert charset.status_code == 202
    assert len(sink.samples) == 1


@pytest.mark.anyio
async def test_endpoint_auth_comes_before_content_type(keyed_server: IngestServer) -> None:
    async with _client(keyed_server) as http:
        response = await http.post("/v1/events", content=b"x", headers={"content-type": "text/plain"})
    assert response.status_code == 401


@pytest.mark.anyio
async def test_endpoint_404_405_and_health(server: IngestServer) -> None:
    async with _client(server) as http:
        missing = await http.post("/v1/nope", json=GOOD)
        get_events = await http.get("/v1/events")
        health = await http.get("/v1/health")
        post_health = await http.post("/v1/health", json={})
    assert missing.status_code == 404
    assert get_events.status_code == 405 and get_events.headers["allow"] == "POST"
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert post_health.status_code == 405


# -- bind policy ---------------------------------------------------------------------------------------------


def test_check_bind_refuses_a_public_address_without_a_key() -> None:
    with pytest.raises(IngestConfigError) as info:
        check_bind("0.0.0.0", None)
    assert str(info.value) == (
        "refusing to listen on 0.0.0.0 without LLMSCOPE_API_KEY set: "
        "anyone who can reach this port could write into your data"
    )
    for host in ("::", "192.168.1.10", "example.org", ""):
        with pytest.raises(IngestConfigError):
            check_bind(host, "")
    check_bind("0.0.0.0", "a-key")  # allowed with a key
    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"):
        check_bind(host, None)
        assert is_loopback(host)
    with pytest.raises(IngestConfigError):
        IngestServer(lambda samples: None, host="0.0.0.0")


def test_ingest_options_from_env() -> None:
    assert IngestOptions.from_env(8787) == IngestOptions(8787, "127.0.0.1", None)
    with pytest.raises(IngestConfigError, match="LLMSCOPE_API_KEY"):
        IngestOptions.from_env(8787, "0.0.0.0", env={})
    keyed = IngestOptions.from_env(8787, "0.0.0.0", env={"LLMSCOPE_API_KEY": "k3y-value"})
    assert keyed.api_key == "k3y-value"
    assert "k3y-value" not in repr(keyed)


# -- files -----------------------------------------------------------------------------------------------------


def test_import_file_takes_good_lines_and_reports_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    lines = [
        json.dumps({**GOOD, "project": "a"}),  # 1
        "",  # 2: blank, skipped
        "{not json",  # 3
        json.dumps({**GOOD, "tokens_out": -1}),  # 4
        json.dumps(GOOD),  # 5
        "[1, 2]",  # 6
        json.dumps({**GOOD, "modle": "x"}),  # 7
        json.dumps(GOOD),  # 8
    ]
    path.write_text("\ufeff" + "\n".join(lines) + "\n", encoding="utf-8")
    batches: list[list[Sample]] = []
    report = import_file(path, batches.append, now=NOW, batch=2)
    assert report.taken == 3
    assert [n for n, _ in report.refused] == [3, 4, 6, 7]
    reasons = dict(report.refused)
    assert reasons[3].startswith("not JSON:")
    assert reasons[4] == "tokens_out: expected a non-negative integer, got -1"
    assert reasons[6].startswith("record: expected a JSON object")
    assert reasons[7].startswith("modle: unknown field; did you mean 'model'")
    assert [len(b) for b in batches] == [2, 1]
    assert all(s.source == "app" for b in batches for s in b)
    text = report.lines(path)
    assert text[0] == f"{path}: took 3 records, refused 4"
    assert text[1].startswith(f"{path}:3: not JSON")


def test_import_file_refuses_overlong_and_non_utf8_lines(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    good = b'{"provider":"p","model":"%s"}'
    path.write_bytes(good % b"m" + b"\n" + b"x" * 5000 + b"\n\xff\xfe\n" + good % b"n")
    taken: list[Sample] = []
    report = import_file(path, taken.extend, now=NOW, max_line_bytes=1000)
    assert report.taken == 2 and [s.model for s in taken] == ["m", "n"]
    assert report.refused == [(2, "line longer than 1000 bytes"), (3, "not UTF-8 text (byte 1)")]


def test_import_file_missing_or_unreadable(tmp_path: Path) -> None:
    with pytest.raises(IngestConfigError, match=r"nope\.jsonl: no such file$"):
        import_file(tmp_path / "nope.jsonl", lambda s: None)
    with pytest.raises(IngestConfigError, match="cannot read"):
        import_file(tmp_path, lambda s: None)

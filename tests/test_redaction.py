"""Key redaction: which forms of a key are caught, what is left alone, and that every path a
message takes (probe, store, events, ingest refusals, the app-side client) goes through it."""

from __future__ import annotations

import base64
import logging
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from fake_provider import FakeProvider, Script
from llmscope_tui import redaction
from llmscope_tui.model import Sample, Target
from llmscope_tui.probe.stream import Timeouts, probe_once
from llmscope_tui.redaction import REDACTED, Redactor
from llmscope_tui.wire.errors import error_text

HEX = "0123456789abcdef0123456789abcdef01234567"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.c2lnbmF0dXJlQ0FOQVJZ"
SK = "sk-canaryAAAA1111bbbb2222cccc3333wxyz"
SHORTISH = "pxyCAN7qq9bbcc"


@pytest.fixture
def red() -> Redactor:
    return Redactor([HEX, JWT, SK, SHORTISH, "ollama", "EMPTY"])


@pytest.mark.parametrize(
    "text",
    [
        f"Incorrect API key provided: {SK}.",
        "Incorrect API key provided: sk-can...wxyz.",
        "key pxyCAN****bbcc is not valid",
        f"key {HEX[:8]}… was revoked",
        f"key ending in ****{HEX[-4:]}",
        f"key {HEX[:10]} (truncated)",
        f"signature {JWT[-12:]}",
        f"proxy said {quote(JWT, safe='')}",
        "Authorization: Basic " + base64.b64encode(f"user:{SHORTISH}".encode()).decode(),
        "blob " + base64.b64encode(f"xy:{HEX}:z".encode()).decode(),
        "blob " + base64.urlsafe_b64encode(f"?{JWT}".encode()).decode(),
    ],
)
def test_every_form_of_a_known_key_is_redacted(red: Redactor, text: str) -> None:
    out = red.scrub(text)
    assert REDACTED in out
    for key in (HEX, JWT, SK, SHORTISH):
        assert key not in out and key[:8] not in out and key[-6:] not in out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /v1?key=AIzaSyUnknownKey123&alt=sse", f"GET /v1?key={REDACTED}&alt=sse"),
        ('{"x-api-key": "some-unknown-key-123"}', f'{{"x-api-key": "{REDACTED}"}}'),
        ("Authorization: Bearer abc.def.ghi123", f"Authorization: Bearer {REDACTED}"),
        ("bad key sk-ant-api03-abcdefgh", f"bad key {REDACTED}"),
        ("gsk_abcdefghijklmnop and AIzaSyABCDEFGHIJKL", f"{REDACTED} and {REDACTED}"),
    ],
)
def test_key_shaped_text_is_redacted_even_when_the_key_is_unknown(text: str, expected: str) -> None:
    assert Redactor().scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "HTTP 401: Unauthorized",
        "model ollama is not loaded; EMPTY reply",  # short placeholder keys are not secrets
        "the year 2024, request 0123 and wxyz",  # 4-character fragments without a mask
        "ask a question: task-abcdefgh, risk-management",  # "sk-" inside a word
        "waiting... retry ** later",  # masks next to ordinary words
        "unparseable frame: '{not json'",
        "basic authentication required; Authorization: required; Bearer token missing",
    ],
)
def test_harmless_text_is_left_alone(red: Redactor, text: str) -> None:
    assert red.scrub(text) == text


def test_scrubbing_is_idempotent_and_a_new_key_invalidates_the_memo() -> None:
    red = Redactor()
    text = "echo: late-key-0000111122223333"
    assert red.scrub(text) == text  # not known yet: left alone, and memoised
    red.add(["late-key-0000111122223333"])
    once = red.scrub(text)
    assert once == f"echo: {REDACTED}" and red.scrub(once) == once


def test_error_text_redacts_before_it_cuts_so_no_half_key_survives() -> None:
    key = "cutkey-" + "q" * 40
    redaction.remember(key)
    out = error_text("x" * 280 + " " + key)
    assert len(out) <= 300 and "cutkey" not in out and "qqqq" not in out


def test_settings_remember_custom_key_variables_credential_headers_and_webhook_tokens() -> None:
    from llmscope_tui.config import Settings

    target = Target(
        "t", "openai-compatible", "m", "openai", "http://127.0.0.1:1/v1?api-version=2024-10-21&sig=sigvalue123456",
        api_key_env="MY_PROXY_CRED",
        extra_headers=(("X-Title", "My Application Name"), ("X-Proxy-Auth", "hdr-secret-99887766")),
    )  # fmt: skip
    settings = Settings(config_file=None, targets=[target], db_path=Path("x.db"))
    settings.alerts.webhook_url = "https://hooks.example.invalid/services/T00/B00/webhookTokenXYZ123456"
    env = {"MY_PROXY_CRED": "custom-cred-5566", "SOME_SERVICE_TOKEN": "tok-4433221100", "HOME_KEY": "/home/me/.key"}
    settings.remember_secrets(env)
    known = redaction.keys()
    for secret in ("custom-cred-5566", "tok-4433221100", "hdr-secret-99887766", "sigvalue123456", "webhookTokenXYZ123456"):
        assert secret in known
    for harmless in ("My Application Name", "2024-10-21", "/home/me/.key"):
        assert harmless not in known


@pytest.mark.anyio
async def test_in_stream_errors_and_malformed_frames_are_redacted_like_http_bodies(
    fake_provider: FakeProvider,
) -> None:
    key = "probe-key-7f7f7f7f7f7f"
    target = Target("t", "openai", "m", "openai", fake_provider.base_url + "/v1")
    faults = [
        Script(status=401, error_message=f"bad key {key}"),
        Script(fault="error_event", error_message=f"quota for {key} exceeded"),
        Script(fault="malformed", malformed_frame=f"data: {{not json {key}\n\n".encode()),
        Script(fault="malformed", malformed_frame=f'data: {{"choices": [{{"delta": "{key}"}}]}}\n\n'.encode()),
    ]
    async with httpx.AsyncClient() as client:
        for script in faults:
            fake_provider.enqueue(script)
            sample = await probe_once(client, target, key, Timeouts(2, 2, 4))
            assert sample.error_message and REDACTED in sample.error_message, sample.error_message
            assert key not in sample.error_message and key[:8] not in sample.error_message


def test_the_store_and_the_event_stream_are_final_guards(tmp_path: Path) -> None:
    from llmscope_tui.store import SampleStore

    key = "guard-key-1234567890ab"
    redaction.remember(key)
    db = tmp_path / "s.db"
    with SampleStore(db) as store:
        store.add(Sample(ts=1.0, target="t", provider="p", model="m", error_message=f"raw {key}"))
        store.add_many([Sample(ts=2.0, target=f"app:{key}", provider="p", model="m", source="app", request_id=key)])
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT target, request_id, error_message FROM samples").fetchall()
    assert rows and not any(key in str(cell) for row in rows for cell in row)
    assert redaction.scrub_event({"event": "error", "message": f"failed: {key}", "detail": {"why": [key]}}) == {
        "event": "error", "message": f"failed: {REDACTED}", "detail": {"why": [REDACTED]},
    }  # fmt: skip


@pytest.mark.anyio
async def test_the_monitor_publishes_error_events_redacted(tmp_path: Path, fake_provider: FakeProvider) -> None:
    from conftest import fake_settings
    from llmscope_tui.monitor import Monitor

    key = "monitor-key-55aa55aa55aa"
    monitor = Monitor(fake_settings(tmp_path, fake_provider), env={"OPENAI_API_KEY": key})
    events: list[dict[str, Any]] = []
    monitor.subscribe(events.append)
    monitor._error(f"something failed with {key}")
    assert events == [{"event": "error", "ts": events[0]["ts"], "message": f"something failed with {REDACTED}"}]


def test_ingest_refusals_never_quote_a_key() -> None:
    from llmscope_tui.ingest import RecordError, parse_record

    key = "ingest-key-0099887766"
    redaction.remember(key)
    with pytest.raises(RecordError) as refused:
        parse_record({"provider": "openai", "model": "m", "ok": key}, now=1.0)
    assert key not in str(refused.value) and REDACTED in str(refused.value)


def test_the_app_side_client_warns_without_its_key(caplog: pytest.LogCaptureFixture) -> None:
    from llmscope_tui.client.delivery import Delivery

    key = "client-key-2468ace02468"
    delivery = Delivery("http://127.0.0.1:9/v1/usage", key, 1.0)
    with caplog.at_level(logging.WARNING, logger="llmscope_tui.client"):
        delivery._warn(f"endpoint refused records: bad key {key}")
    assert caplog.messages and key not in caplog.text and REDACTED in caplog.text


@pytest.mark.slow  # a whole app through Pilot with a real monitor: about a second
@pytest.mark.anyio
async def test_the_tui_draws_a_down_target_without_the_key_its_errors_quote(
    tmp_path: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import fake_settings
    from llmscope_tui.tui.app import LLMScopeApp
    from llmscope_tui.tui.widgets import TargetsTable

    key = "tui-canary-key-31415926535"
    monkeypatch.setenv("FAKE_PROVIDER_API_KEY", key)
    fake_provider.script(
        default=Script(status=401, error_message=f"Incorrect API key provided: {key}, or {key[:6]}...{key[-4:]}")
    )
    app = LLMScopeApp(fake_settings(tmp_path, fake_provider), fps=20, store_every_s=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(TargetsTable)
        deadline = 400  # polls of 0.05 s: a bound, not a margin
        while not (table.row_count and app.state.samples >= 3) and deadline:
            await pilot.pause(0.05)
            deadline -= 1
        app.monitor._error(f"a failure quoting {key}")  # an `error` event, drawn on the status line
        await pilot.pause(0.2)
        assert app.state.samples >= 3 and "down" in str(table.get_cell("fake", "status"))
        screen = app.export_screenshot()
        assert key not in screen and key[:8] not in screen and REDACTED in app.state.last_error
        assert key not in repr(app.state.targets)
        await pilot.press("q")

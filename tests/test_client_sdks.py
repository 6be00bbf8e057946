"""instrument() with the SDKs people have today, offline against the fake provider.

openai 3, anthropic 2 and google-genai 3 are built on httpx2 (pydantic's fork of httpx);
anthropic refuses an httpx client. instrument() takes an httpx2 one as well as an httpx one. Each SDK
makes a plain and a streamed call through an instrumented httpx2 client, sync and async, and
the records must reach the real ingest routes with the fake's usage, the model, timings and
source "app". An SDK that is not installed skips its tests (they are in the test extra).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fake_provider import FakeProvider, Script, Usage
from llmscope_tui.client import instrument
from llmscope_tui.model import Sample
from llmscope_tui.server import ThreadedHTTPServer
from llmscope_tui.wire.errors import classify_exception
from test_client import Endpoint

httpx2 = pytest.importorskip("httpx2", reason="httpx2 is not installed (the SDKs' HTTP client)")

KEY = "sk-sdk-test-0123456789"
MESSAGES = [{"role": "user", "content": "Say OK"}]
TEXT = "Hello there, OK."  # the fake's default pieces, joined
USAGE = Usage(input_tokens=20, output_tokens=5)

#: SDK -> (the module to import, the model asked for, the provider the record names).
SDKS = {
    "openai": ("openai", "gpt-4o-mini", "openai-compatible"),  # a 127.0.0.1 host: not api.openai.com
    "anthropic": ("anthropic", "claude-haiku-4-5", "anthropic"),
    "google-genai": ("google.genai", "gemini-2.5-flash", "gemini"),
}


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(default=Script(usage=USAGE)) as provider:
        yield provider


@pytest.fixture
def ingest() -> Iterator[tuple[Endpoint, str]]:
    ep = Endpoint()
    with ThreadedHTTPServer(ep, name="fake-ingest") as server:
        yield ep, server.base_url + "/v1/events"


def _sdk(name: str) -> Any:
    module, _, _ = SDKS[name]
    return pytest.importorskip(module, reason=f"the {name} SDK is not installed (pip install '.[test]')")


def _sync_calls(name: str, sdk: Any, base_url: str, http: Any) -> list[str]:
    """A plain and a streamed call through ``http``; the texts the app got back."""
    model = SDKS[name][1]
    if name == "openai":
        oc = sdk.OpenAI(api_key=KEY, base_url=f"{base_url}/v1", http_client=http)
        reply = oc.chat.completions.create(model=model, messages=MESSAGES)
        stream = oc.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        return [reply.choices[0].message.content, "".join(c.choices[0].delta.content or "" for c in stream if c.choices)]
    if name == "anthropic":
        ac = sdk.Anthropic(api_key=KEY, base_url=base_url, http_client=http)
        message = ac.messages.create(model=model, max_tokens=16, messages=MESSAGES)
        with ac.messages.stream(model=model, max_tokens=16, messages=MESSAGES) as stream:
            streamed = "".join(stream.text_stream)
        return [message.content[0].text, streamed]
    gc = sdk.Client(api_key=KEY, http_options={"base_url": base_url, "httpx_client": http})
    reply = gc.models.generate_content(model=model, contents="Say OK")
    return [reply.text, "".join(c.text or "" for c in gc.models.generate_content_stream(model=model, contents="Say OK"))]


async def _async_calls(name: str, sdk: Any, base_url: str, http: Any) -> list[str]:
    model = SDKS[name][1]
    if name == "openai":
        oc = sdk.AsyncOpenAI(api_key=KEY, base_url=f"{base_url}/v1", http_client=http)
        reply = await oc.chat.completions.create(model=model, messages=MESSAGES)
        stream = await oc.chat.completions.create(
            model=model, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        streamed = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return [reply.choices[0].message.content, streamed]
    if name == "anthropic":
        ac = sdk.AsyncAnthropic(api_key=KEY, base_url=base_url, http_client=http)
        message = await ac.messages.create(model=model, max_tokens=16, messages=MESSAGES)
        async with ac.messages.stream(model=model, max_tokens=16, messages=MESSAGES) as stream:
            streamed = "".join([text async for text in stream.text_stream])
        return [message.content[0].text, streamed]
    gc = sdk.Client(api_key=KEY, http_options={"base_url": base_url, "httpx_async_client": http})
    reply = await gc.aio.models.generate_content(model=model, contents="Say OK")
    chunks = await gc.aio.models.generate_content_stream(model=model, contents="Say OK")
    return [reply.text, "".join([c.text or "" async for c in chunks])]


def _check_records(name: str, samples: list[Sample]) -> None:
    """One record for the plain call and one for the streamed one, each with the fake's usage."""
    _, model, provider = SDKS[name]
    assert len(samples) == 2, samples
    plain, streamed = sorted(samples, key=lambda s: s.ttft_ms is not None)
    for sample in (plain, streamed):
        assert (sample.provider, sample.model, sample.source, sample.target) == (provider, model, "app", "app:sdk")
        assert (sample.ok, sample.http_status, sample.error_kind) == (1, 200, None)
        assert (sample.tokens_in, sample.tokens_out) == (USAGE.input_tokens, USAGE.output_tokens)
        assert sample.latency_ms is not None and sample.latency_ms > 0
    assert plain.ttft_ms is None
    # The fake writes the first piece 10 ms after the request and the last 4 x 5 ms later
    # (fake_provider.Script): neither can be read sooner. (Not the gap between them: the
    # app-side times are when the SDK read each chunk, and an SDK's first stream of a process
    # may import its stream helpers while the rest of the reply arrives, then read it at once.)
    assert streamed.ttft_ms is not None and streamed.latency_ms is not None
    assert 10 <= streamed.ttft_ms <= streamed.latency_ms and streamed.latency_ms >= 10 + 4 * 5
    assert streamed.itl_ms is not None and streamed.tps is not None


@pytest.mark.slow  # an SDK's first import takes a second or more
@pytest.mark.parametrize("name", list(SDKS))
def test_sdk_sync_calls_are_reported(name: str, fake: FakeProvider, ingest: tuple[Endpoint, str]) -> None:
    sdk = _sdk(name)
    ep, url = ingest
    with httpx2.Client() as http:
        reporter = instrument(http, endpoint=url, project="sdk")
        texts = _sync_calls(name, sdk, fake.base_url, http)
        assert reporter.flush(10.0)
        reporter.close()
    assert texts == [TEXT, TEXT]  # the app's replies went through unchanged
    _check_records(name, ep.samples)
    assert reporter.stats["dropped"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["openai", "google-genai"])  # anthropic 2 refuses an httpx client
def test_sdk_calls_through_an_httpx_client_are_reported(
    name: str, fake: FakeProvider, ingest: tuple[Endpoint, str]
) -> None:
    sdk = _sdk(name)
    ep, url = ingest
    with httpx.Client() as http:
        reporter = instrument(http, endpoint=url, project="sdk")
        texts = _sync_calls(name, sdk, fake.base_url, http)
        assert reporter.flush(10.0)
        reporter.close()
    assert texts == [TEXT, TEXT]
    _check_records(name, ep.samples)


@pytest.mark.slow
@pytest.mark.anyio
@pytest.mark.parametrize("name", list(SDKS))
async def test_sdk_async_calls_are_reported(name: str, fake: FakeProvider, ingest: tuple[Endpoint, str]) -> None:
    sdk = _sdk(name)
    ep, url = ingest
    async with httpx2.AsyncClient() as http:
        reporter = instrument(http, endpoint=url, project="sdk")
        texts = await _async_calls(name, sdk, fake.base_url, http)
        assert reporter.flush(10.0)
        reporter.close()
    assert texts == [TEXT, TEXT]
    _check_records(name, ep.samples)


def test_an_httpx2_client_keeps_its_elapsed_and_is_timed_by_it(
    fake: FakeProvider, ingest: tuple[Endpoint, str]
) -> None:
    """httpx2 reads Response.elapsed from the response's stream: the pass-through hands it on
    (without it the app's `response.elapsed` raised, and a plain call was timed from the hook)."""
    ep, url = ingest
    fake.script(default=Script(usage=USAGE, headers_delay_s=0.05))
    with httpx2.Client(base_url=fake.base_url) as http:
        reporter = instrument(http, endpoint=url, project="sdk")
        response = http.post("/v1/chat/completions", json={"model": "m", "messages": MESSAGES})
        assert reporter.flush(10.0)
        reporter.close()
    assert response.elapsed.total_seconds() >= 0.05
    (sample,) = ep.samples
    assert sample.latency_ms is not None and sample.latency_ms >= 50
    assert (sample.tokens_in, sample.tokens_out) == (20, 5)


@pytest.mark.anyio
async def test_an_httpx2_async_stream_passes_through_and_is_measured(
    fake: FakeProvider, ingest: tuple[Endpoint, str]
) -> None:
    """Without any SDK: an httpx2.AsyncClient's streamed call, read chunk by chunk."""
    ep, url = ingest
    body = {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    async with httpx2.AsyncClient(base_url=fake.base_url) as http:
        reporter = instrument(http, endpoint=url, project="sdk")
        async with http.stream("POST", "/v1/chat/completions", json=body) as response:
            received = b"".join([chunk async for chunk in response.aiter_raw()])
        assert reporter.flush(10.0)
        reporter.close()
    content = fake.last_request.wait_done().content  # the content frames the fake wrote
    assert len(content) == 5 and all(frame in received for frame in content)
    assert received.endswith(b"data: [DONE]\n\n")
    (sample,) = ep.samples
    assert (sample.model, sample.tokens_in, sample.tokens_out, sample.ok) == ("m", 20, 5, 1)
    assert sample.ttft_ms is not None and sample.latency_ms is not None and sample.latency_ms >= 30


def test_instrument_names_what_it_takes() -> None:
    with pytest.raises(TypeError, match=r"needs an httpx2 or httpx Client or AsyncClient, got builtins\.object"):
        instrument(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got httpx.Response"):
        instrument(httpx.Response(200))  # type: ignore[arg-type]


def test_an_sdk_subclass_of_an_httpx2_client_is_taken(ingest: tuple[Endpoint, str]) -> None:
    class AppClient(httpx2.AsyncClient):  # type: ignore[misc,name-defined]
        pass

    reporter = instrument(AppClient(), endpoint=ingest[1])
    reporter.close()


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (lambda: httpx2.ConnectTimeout("t"), "timeout_connect"),
        (lambda: httpx2.PoolTimeout("t"), "timeout_connect"),
        (lambda: httpx2.ReadTimeout("t"), "timeout_total"),
        (lambda: httpx2.RemoteProtocolError("t"), "network"),
        (lambda: httpx2.DecodingError("t"), "malformed"),
    ],
)
def test_httpx2_errors_are_classified_as_httpx_ones(exc: Any, kind: str) -> None:
    assert str(classify_exception(exc())) == kind


@pytest.mark.slow  # a fresh interpreter
def test_an_httpx_client_does_not_import_httpx2() -> None:
    code = (
        "import sys, httpx\n"
        "from llmscope_tui.client import instrument\n"
        "instrument(httpx.Client(), endpoint='http://127.0.0.1:9/v1/events').close(0)\n"
        "print('httpx2' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, "False"), result.stderr

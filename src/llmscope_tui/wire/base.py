"""What a wire protocol module provides: request building and a per-stream frame reader.

The probe's stream core (probe/stream.py) owns timing and timeouts, and the app-side client
(llmscope_tui.client) observes an app's own calls; both read frames through these readers,
so each protocol is read in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmscope_tui.model import ErrorKind, Target

#: Response headers that carry the provider's own request id: OpenAI and most compatible servers,
#: Anthropic, Azure, Google. Not a CDN's (cf-ray names a Cloudflare edge hop, not the request).
PROVIDER_ID_HEADERS = ("x-request-id", "request-id", "apim-request-id", "x-goog-request-id")
#: Where a request id is looked for, first found wins: the provider's own; then the provider's
#: as LiteLLM's proxy passes it on (every upstream header prefixed `llm_provider-`); then the id
#: LiteLLM's proxy gives the call (the key of its spend logs), which is all a proxy answering on
#: its own (a mock, a cache hit, an error of its own) sends, and what its operator looks up.
REQUEST_ID_HEADERS = (
    *PROVIDER_ID_HEADERS,
    *(f"llm_provider-{h}" for h in PROVIDER_ID_HEADERS),
    "x-litellm-call-id",
)


def request_id(headers: Mapping[str, str]) -> str | None:
    """The request id from response headers (REQUEST_ID_HEADERS' order), if one was sent."""
    return next((headers[h] for h in REQUEST_ID_HEADERS if h in headers), None)


@dataclass(slots=True)
class RequestSpec:
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    method: str = "POST"


@dataclass(slots=True)
class Usage:
    """Server-reported token usage, normalised to DESIGN 4 meanings."""

    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_cached: int | None = None
    tokens_cache_write: int | None = None
    tokens_reasoning: int | None = None


@dataclass(slots=True)
class FrameInfo:
    """What one frame meant: content arrived, the stream ended, or an error inside the stream."""

    content: bool = False
    pieces: int = 0  # content pieces in this frame, used to estimate tokens when usage is missing
    done: bool = False
    error: tuple[ErrorKind, str] | None = None
    #: a reasoning delta arrived: the reasoning is visible, so it stays in DESIGN 4's `streamed`
    reasoning: bool = False

    def merge(self, other: FrameInfo) -> FrameInfo:
        """Both frames' meaning (a Gemini JSON array holds several)."""
        return FrameInfo(
            content=self.content or other.content,
            pieces=self.pieces + other.pieces,
            done=self.done or other.done,
            error=self.error or other.error,
            reasoning=self.reasoning or other.reasoning,
        )


@dataclass(slots=True)
class StreamState:
    """Per-request state a protocol's reader fills in."""

    usage: Usage = field(default_factory=Usage)
    model: str | None = None  # the model the server says answered (the first one named)

    def note_model(self, value: Any) -> None:
        if isinstance(value, str) and value and self.model is None:
            self.model = value


class FrameReader(Protocol):
    """Reads what one protocol's frames and bodies mean; the app-side client needs only this."""

    name: str
    framing: str  # "sse" or "ndjson"

    def read_frame(self, event: str | None, data: str, state: StreamState) -> FrameInfo:
        """One SSE event or NDJSON line; raises MalformedFrame when it is not what it should be."""
        ...

    def read_object(self, obj: Any, event: str | None, state: StreamState) -> FrameInfo:
        """One decoded JSON frame, or a whole JSON body of a call made without streaming."""
        ...

    def error_type(self, body: Any) -> tuple[str | None, str]:
        """(provider error type, message) from a non-2xx JSON body."""
        ...


class WireProtocol(FrameReader, Protocol):
    """A protocol the probe speaks: it also builds the request."""

    def build_request(self, target: Target, api_key: str | None) -> RequestSpec: ...


class MalformedFrame(Exception):
    """A frame that is not what the protocol promises (bad JSON, wrong shape)."""


#: What read_object raises on valid JSON of the wrong shape (a string where an object belongs).
SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError)


class JSONReader:
    """Shared frame handling: parse the JSON, turn a wrong shape into MalformedFrame."""

    #: A data frame that only says the stream ended (OpenAI's ``[DONE]``), or None.
    done_marker: str | None = None

    def read_frame(self, event: str | None, data: str, state: StreamState) -> FrameInfo:
        if self.done_marker is not None and data.strip() == self.done_marker:
            return FrameInfo(done=True)
        obj = load_json(data)
        try:
            return self.read_object(obj, event, state)
        except SHAPE_ERRORS as exc:
            raise MalformedFrame(f"unexpected frame shape ({type(exc).__name__}): {data[:80]!r}") from exc

    def read_object(self, obj: Any, event: str | None, state: StreamState) -> FrameInfo:
        raise NotImplementedError

    def error_type(self, body: Any) -> tuple[str | None, str]:
        return generic_error(body)


def count(value: Any) -> int | None:
    """A token count as the server sent it, or None when it is not a non-negative integer."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def stream_error(body: Any) -> tuple[ErrorKind, str]:
    """The error kind and message of an error event or line inside a 200 stream."""
    kind, message = generic_error(body)
    return (ErrorKind.OVERLOADED if kind == "overloaded_error" else ErrorKind.STREAM_ERROR), message


def load_json(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise MalformedFrame(f"unparseable frame: {data[:80]!r}") from exc


def generic_error(body: Any) -> tuple[str | None, str]:
    """Error type and message from the common {"error": {...}} / {"error": "..."} shapes."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            kind = err.get("type") or err.get("status") or err.get("code")
            message = err.get("message") or json.dumps(err)[:300]
            return (str(kind) if kind is not None else None), str(message)
        if isinstance(err, str):
            return None, err
    return None, str(body)[:300]

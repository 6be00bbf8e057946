"""What a wire protocol module provides: request building and a per-stream frame reader.

The probe's stream core (probe/stream.py) owns timing and timeouts, and the app-side client
(llmscope_tui.client) observes an app's own calls; both read frames through these readers,
so each protocol is read in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmscope_tui.model import ErrorKind, Target


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
    tokens_reasoning: int | None = None


@dataclass(slots=True)
class FrameInfo:
    """What one frame meant: content arrived, the stream ended, or an error inside the stream."""

    content: bool = False
    pieces: int = 0  # content pieces in this frame, used to estimate tokens when usage is missing
    done: bool = False
    error: tuple[ErrorKind, str] | None = None


@dataclass(slots=True)
class StreamState:
    """Per-request state a protocol's reader fills in."""

    usage: Usage = field(default_factory=Usage)


class WireProtocol(Protocol):
    name: str
    framing: str  # "sse" or "ndjson"

    def build_request(self, target: Target, api_key: str | None) -> RequestSpec: ...

    def read_frame(self, event: str | None, data: str, state: StreamState) -> FrameInfo: ...

    def error_type(self, body: Any) -> tuple[str | None, str]:
        """(provider error type, message) from a non-2xx JSON body."""
        ...


class MalformedFrame(Exception):
    """A frame that is not what the protocol promises (bad JSON, wrong shape)."""


def load_json(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:
        raise MalformedFrame(f"unparseable frame: {data[:80]!r}") from exc


def load_object(data: str) -> dict[str, Any]:
    """A frame that must be one JSON object (every protocol's data frames are)."""
    obj = load_json(data)
    if not isinstance(obj, dict):
        raise MalformedFrame(f"expected a JSON object, got {data[:80]!r}")
    return obj


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

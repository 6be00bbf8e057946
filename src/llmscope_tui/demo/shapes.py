"""What the demo's four protocol encoders share: a request accepted (``Ask``), a reply ready to
send (``Stream``), a refusal (``BadRequest``, each error kind's name per provider), JSON and SSE
framing, and the ``Wire`` interface each encoder fills in (``encoders.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from llmscope_tui.demo.generation import Plan
from llmscope_tui.demo.profiles import ModelProfile
from llmscope_tui.server.app import Request, Response

__all__ = ["Ask", "BadRequest", "ErrorNames", "Stream", "Wire", "error_names"]

Headers = list[tuple[str, str]]
Events = list[tuple[float, bytes]]  # (seconds after the request arrived, bytes to send then)
ProfileOf = Callable[[Any, str], ModelProfile]  # (model as sent, protocol) -> profile or BadRequest

STREAM_ONLY = "the llmscope demo provider only serves streamed requests (stream: true)"
SSE_HEADERS: Headers = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
]


class BadRequest(Exception):
    """A request the demo refuses as a client error (``kind``: bad_request or not_found)."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class Ask:
    """A streamed request the demo accepted: what bears on the reply."""

    profile: ModelProfile
    model: str  # as the client spelled it (Ollama echoes it back)
    texts: list[str]  # the prompt's texts, for the input token count
    max_tokens: int | None
    include_usage: bool = True  # OpenAI sends usage only when asked


@dataclass(slots=True)
class Stream:
    """A reply ready to send: headers, timed frames, and a last touch as each frame leaves."""

    headers: Headers
    events: Events
    on_send: Callable[[bytes], bytes] | None = None


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"


def int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON body, which every protocol sends as an object."""
    try:
        body = json.loads(request.body) if request.body else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(400, "bad_request", f"could not parse the JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "bad_request", "the request body must be a JSON object")
    return body


def texts_of(content: Any) -> list[str]:
    """Strings in a message content: a string, or a list of parts (strings or {"text": ...})."""
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
    return out


def messages_texts(body: dict[str, Any], missing: str) -> list[str]:
    """The texts of ``body["messages"]``, a non-empty list (BadRequest ``missing`` if not)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest(400, "bad_request", missing)
    return [t for m in messages if isinstance(m, dict) for t in texts_of(m.get("content"))]


def timed(times: Sequence[float], payloads: Sequence[bytes]) -> Events:
    return list(zip(times, payloads, strict=True))


class ErrorNames(NamedTuple):
    """One error kind in each provider's words (Ollama names none: its errors are a string)."""

    openai: tuple[str, str | None]  # (type, code)
    anthropic: str  # error.type
    gemini: str  # error.status


_ERROR_NAMES = {
    "rate_limit": ErrorNames(
        ("requests", "rate_limit_exceeded"), "rate_limit_error", "RESOURCE_EXHAUSTED"
    ),
    "overloaded": ErrorNames(("server_error", None), "overloaded_error", "UNAVAILABLE"),
    "server_error": ErrorNames(("server_error", None), "api_error", "INTERNAL"),
    "not_found": ErrorNames(
        ("invalid_request_error", "model_not_found"), "not_found_error", "NOT_FOUND"
    ),
}
_BAD_REQUEST = ErrorNames(
    ("invalid_request_error", None), "invalid_request_error", "INVALID_ARGUMENT"
)


def error_names(kind: str) -> ErrorNames:
    return _ERROR_NAMES.get(kind, _BAD_REQUEST)


def retry_headers(retry_after: int | None) -> Headers:
    return [] if retry_after is None else [("retry-after", str(retry_after))]


class Wire:
    """One protocol's dress for requests, streams and errors."""

    name: ClassVar[str]
    overloaded_status: ClassVar[int] = 503
    #: What this provider says instead of the demo's generic message, per error kind.
    error_texts: ClassVar[dict[str, str]] = {}

    def read(self, request: Request, path_args: Sequence[str], profile_of: ProfileOf) -> Ask:
        raise NotImplementedError

    def stream(self, ask: Ask, plan: Plan) -> Stream:
        raise NotImplementedError

    def error_parts(
        self, status: int, kind: str, message: str, retry_after: int | None
    ) -> tuple[Any, Headers]:
        raise NotImplementedError

    def error(
        self, status: int, kind: str, message: str, retry_after: int | None = None
    ) -> Response:
        """A refusal shaped as this provider shapes it, with Retry-After when given."""
        body, headers = self.error_parts(
            status, kind, self.error_texts.get(kind, message), retry_after
        )
        return Response.json(body, status, [*headers, *retry_headers(retry_after)])

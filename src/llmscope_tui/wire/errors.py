"""Error classification shared by every protocol (DESIGN 5), and the one way a message from
outside (an error body, an in-stream error, a frame, an exception) becomes ours: error_text."""

from __future__ import annotations

import email.utils
import time

import httpx

from llmscope_tui.model import ErrorKind
from llmscope_tui.redaction import scrub


def classify_status(status: int, body_error_type: str | None = None) -> ErrorKind:
    """Map a non-2xx HTTP status (and the provider's error type, if any) to an error kind."""
    if body_error_type == "overloaded_error" or status == 529:
        return ErrorKind.OVERLOADED
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (401, 403):
        return ErrorKind.AUTH
    if 500 <= status <= 599:
        return ErrorKind.SERVER_ERROR
    return ErrorKind.CLIENT_ERROR


def classify_exception(exc: BaseException) -> ErrorKind:
    """Map a transport exception raised by httpx (or httpx2, whose classes have the same
    names in another package: an instrumented SDK's) to an error kind."""
    if type(exc).__module__.startswith("httpx2"):
        return _classify_by_name({cls.__name__ for cls in type(exc).__mro__})
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return ErrorKind.TIMEOUT_CONNECT
    if isinstance(exc, httpx.ReadTimeout):
        return ErrorKind.TIMEOUT_TOTAL
    if isinstance(exc, httpx.TimeoutException):
        return ErrorKind.TIMEOUT_TOTAL
    if isinstance(exc, (httpx.TransportError, OSError)):
        return ErrorKind.NETWORK
    if isinstance(exc, (UnicodeDecodeError, httpx.DecodingError)):
        return ErrorKind.MALFORMED
    return ErrorKind.NETWORK


def _classify_by_name(names: set[str]) -> ErrorKind:
    """classify_exception's mapping by class name, for httpx2's exceptions."""
    if names & {"ConnectTimeout", "PoolTimeout"}:
        return ErrorKind.TIMEOUT_CONNECT
    if "TimeoutException" in names:
        return ErrorKind.TIMEOUT_TOTAL
    if "DecodingError" in names:
        return ErrorKind.MALFORMED
    return ErrorKind.NETWORK


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_text(text: str, limit: int = 300) -> str:
    """The message a sample (or an error line) stores: keys redacted first, so none is cut in
    half before it is recognised (redaction.py: what is caught), then one line, bounded."""
    return short(scrub(text), limit)


def short(text: str, limit: int = 300) -> str:
    """One line, bounded, for logs and the UI."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

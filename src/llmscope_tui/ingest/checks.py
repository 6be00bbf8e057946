"""The ingest record's building blocks: its errors, its limits and one check per kind of value.

Why a module of their own: the record model (records.py) reads as its list of fields, and every
message a sender sees ("tokens_in: expected a non-negative integer, got -5") is worded here, once.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic_core import PydanticCustomError

from llmscope_tui.model import ErrorKind
from llmscope_tui.redaction import scrub

#: At most this many records in one request body.
MAX_RECORDS = 1000
#: How many per-record errors a 400 body lists (the message names the first).
MAX_LISTED_ERRORS = 20

MIN_TS = 946_684_800.0  # 2000-01-01T00:00:00Z
MAX_FUTURE_S = 86_400.0  # a day of clock skew, no more
MAX_MS = 86_400_000.0  # one call lasting more than a day is a unit mistake
MAX_TOKENS = 2**53 - 1
MAX_LEN = {"provider": 100, "model": 200, "project": 100, "tag": 100, "request_id": 200}
ERROR_KINDS = tuple(kind.value for kind in ErrorKind)
PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,60}")


# -- errors ------------------------------------------------------------------------------------------


class IngestError(Exception):
    """Base of the ingest errors."""


class RecordError(IngestError, ValueError):
    """One record is not acceptable; ``field`` names the culprit. ``str()`` is "field: message"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class BodyError(IngestError):
    """A request body that is refused as a whole: ``status`` (400 or 413) and a human message.

    ``errors`` lists the refused records as ``{"record": n, "field": f, "message": m}``
    (records counted from 1), at most :data:`MAX_LISTED_ERRORS` of them.
    """

    def __init__(self, status: int, message: str, errors: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = list(errors)


class IngestConfigError(IngestError):
    """A setup problem (bind address without a key, unreadable import file): one line for the user."""


def refuse(field: str, message: str) -> PydanticCustomError:
    # The message travels in the context, so braces in a shown value are never formatted.
    return PydanticCustomError("llmscope", "{message}", {"field": field, "message": message})


# -- value checks ------------------------------------------------------------------------------------


def describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, default=repr) if not isinstance(value, float) else repr(value)
    text = scrub(text)  # a refused value is quoted back to the sender and on stderr: never a key
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checked_string(value: Any, name: str, *, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise refuse(name, "required (a non-empty string)")
        return None
    if not isinstance(value, str):
        raise refuse(name, f"expected a string, got {describe(value)}")
    value = value.strip()
    if not value:
        raise refuse(name, "must not be empty")
    limit = MAX_LEN[name]
    if len(value) > limit:
        raise refuse(name, f"longer than {limit} characters ({len(value)})")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise refuse(name, "contains control characters")
    return value


def checked_tokens(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > MAX_TOKENS:
        raise refuse(name, f"expected a non-negative integer, got {describe(value)}")
    return value


def checked_millis(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if not is_number(value) or not math.isfinite(value) or value < 0:
        raise refuse(name, f"expected a non-negative number of milliseconds, got {describe(value)}")
    if value > MAX_MS:
        raise refuse(name, f"{value:g} ms is more than a day; send milliseconds")
    return float(value)


def checked_timestamp(value: Any, now: float) -> float:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise refuse("ts", f"expected epoch seconds or an ISO-8601 time, got {describe(value)}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ts = moment.timestamp()
    elif is_number(value) and math.isfinite(value):
        ts = float(value)
    else:
        raise refuse("ts", f"expected epoch seconds or an ISO-8601 time, got {describe(value)}")
    if ts < MIN_TS:
        raise refuse("ts", f"{describe(value)} is before 2000-01-01")
    if ts > now + MAX_FUTURE_S:
        hint = ""
        if is_number(value) and MIN_TS <= ts / 1000 <= now + MAX_FUTURE_S:
            hint = " (it looks like milliseconds; send epoch seconds)"
        raise refuse("ts", f"{describe(value)} is more than a day in the future{hint}")
    return ts


def error_kind_for_status(status: int) -> str:
    if status == 529:
        return ErrorKind.OVERLOADED.value
    if status == 429:
        return ErrorKind.RATE_LIMIT.value
    if status in (401, 403):
        return ErrorKind.AUTH.value
    if 500 <= status <= 599:
        return ErrorKind.SERVER_ERROR.value
    return ErrorKind.CLIENT_ERROR.value

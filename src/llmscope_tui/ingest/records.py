"""One ingest record -> one ``app`` sample: a pydantic v2 model with ``extra="forbid"``.

Why pydantic with our own validators: the schema (fields, their order, unknown fields refused)
is declared once, and every message stays the one users already read ("tokens_in: expected a
non-negative integer, got -5"). Fields are validated in declaration order, which is the order
the checks always ran in, and only the first failure of a record is reported; a check that
involves two fields runs in the later field's validator (``info.data`` holds the earlier ones).
"""

from __future__ import annotations

import difflib
import json
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from llmscope_tui.ingest.checks import (
    ERROR_KINDS,
    MAX_LISTED_ERRORS,
    MAX_RECORDS,
    PLAIN_NAME,
    BodyError,
    RecordError,
    checked_millis,
    checked_string,
    checked_timestamp,
    checked_tokens,
    describe,
    error_kind_for_status,
    refuse,
)
from llmscope_tui.model import Sample

# -- the record --------------------------------------------------------------------------------------


class Record(BaseModel):
    """The ingest record (docs/ingest.md). Validate with ``context={"now": epoch_seconds}``."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(None, validate_default=True)
    model: str = Field(None, validate_default=True)
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_cached: int | None = None
    tokens_cache_write: int | None = None
    tokens_reasoning: int | None = Field(None, validate_default=True)
    latency_ms: float | None = None
    ttft_ms: float | None = None
    http_status: int | None = None
    error_kind: str | None = None
    ok: bool = Field(None, validate_default=True)
    ts: float | None = None
    project: str | None = None
    tag: str | None = None
    request_id: str | None = None

    @field_validator("provider", "model", mode="plain")
    @classmethod
    def _required_name(cls, value: Any, info: ValidationInfo) -> str | None:
        return checked_string(value, str(info.field_name), required=True)

    @field_validator("project", "request_id", mode="plain")
    @classmethod
    def _name(cls, value: Any, info: ValidationInfo) -> str | None:
        return checked_string(value, str(info.field_name))

    @field_validator("tokens_in", "tokens_out", "tokens_cached", "tokens_cache_write", mode="plain")
    @classmethod
    def _count(cls, value: Any, info: ValidationInfo) -> int | None:
        return checked_tokens(value, str(info.field_name))

    @field_validator("tokens_reasoning", mode="plain")
    @classmethod
    def _reasoning(cls, value: Any, info: ValidationInfo) -> int | None:
        reasoning = checked_tokens(value, "tokens_reasoning")
        cached, written, tokens_in, tokens_out = (
            info.data.get(k) for k in ("tokens_cached", "tokens_cache_write", "tokens_in", "tokens_out")
        )
        for name, part in (("tokens_cached", cached), ("tokens_cache_write", written)):
            if part is not None and tokens_in is None:
                raise refuse(name, "given without tokens_in (tokens_in counts all input, cached included)")
        if cached is not None and tokens_in is not None and cached > tokens_in:
            raise refuse(
                "tokens_cached",
                f"{cached} is more than tokens_in {tokens_in} (tokens_in counts all input, cached included)",
            )
        if written is not None and tokens_in is not None and (cached or 0) + written > tokens_in:
            raise refuse(
                "tokens_cache_write",
                f"{written} plus tokens_cached {cached or 0} is more than tokens_in {tokens_in} "
                "(tokens_in counts all input, cache reads and writes included)",
            )
        if reasoning is not None and tokens_out is not None and reasoning > tokens_out:
            raise refuse(
                "tokens_reasoning",
                f"{reasoning} is more than tokens_out {tokens_out} (reasoning tokens are part of tokens_out)",
            )
        return reasoning

    @field_validator("latency_ms", mode="plain")
    @classmethod
    def _latency(cls, value: Any) -> float | None:
        return checked_millis(value, "latency_ms")

    @field_validator("ttft_ms", mode="plain")
    @classmethod
    def _ttft(cls, value: Any, info: ValidationInfo) -> float | None:
        ttft, latency = checked_millis(value, "ttft_ms"), info.data.get("latency_ms")
        if ttft is not None and latency is not None and ttft > latency:
            raise refuse("ttft_ms", f"{ttft:g} is more than latency_ms {latency:g}")
        return ttft

    @field_validator("http_status", mode="plain")
    @classmethod
    def _status(cls, value: Any) -> int | None:
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 599):
            raise refuse("http_status", f"expected an HTTP status code 100-599, got {describe(value)}")
        return value

    @field_validator("error_kind", mode="plain")
    @classmethod
    def _error_kind(cls, value: Any) -> str | None:
        if value is not None and (not isinstance(value, str) or value not in ERROR_KINDS):
            raise refuse("error_kind", f"expected one of {', '.join(ERROR_KINDS)}; got {describe(value)}")
        return value

    @field_validator("ok", mode="plain")
    @classmethod
    def _ok(cls, value: Any, info: ValidationInfo) -> bool:
        error_kind, status = info.data.get("error_kind"), info.data.get("http_status")
        if value is None:
            ok = error_kind is None and not (status is not None and not 200 <= status < 300)
        elif isinstance(value, bool):
            ok = value
        elif isinstance(value, int) and value in (0, 1):
            ok = bool(value)
        else:
            raise refuse("ok", f"expected true/false (or 1/0), got {describe(value)}")
        if ok and error_kind is not None:
            raise refuse("ok", f"is true but error_kind is {error_kind!r}")
        return ok

    @field_validator("ts", mode="plain")
    @classmethod
    def _ts(cls, value: Any, info: ValidationInfo) -> float | None:
        return None if value is None else checked_timestamp(value, (info.context or {}).get("now", time.time()))

    @field_validator("tag", mode="plain")
    @classmethod
    def _tag(cls, value: Any, info: ValidationInfo) -> str | None:
        tag, project = checked_string(value, "tag"), info.data.get("project")
        if project is not None and tag is not None and project != tag:
            raise refuse("tag", "give project or tag, not both")
        return tag


#: Every field a record may carry, in the order docs/ingest.md and the "known fields" hint list
#: them. Anything else is refused (typos are caught).
RECORD_FIELDS: tuple[str, ...] = (
    "provider", "model", "tokens_in", "tokens_out", "tokens_cached", "tokens_cache_write", "tokens_reasoning", "latency_ms",
    "ttft_ms", "ok", "error_kind", "ts", "project", "tag", "request_id", "http_status",
)  # fmt: skip
assert set(RECORD_FIELDS) == set(Record.model_fields)


def _first_error(exc: ValidationError) -> RecordError:
    """The error the user is told about: an unknown field first, else the first field in order."""
    errors = exc.errors(include_url=False)
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    error = unknown[0] if unknown else errors[0]
    if error["type"] == "extra_forbidden":
        name = str(error["loc"][0])
        shown = name if PLAIN_NAME.fullmatch(name) else describe(name)
        close = difflib.get_close_matches(name, RECORD_FIELDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (known fields: {', '.join(RECORD_FIELDS)})"
        return RecordError(shown, f"unknown field{hint}")
    ctx = error.get("ctx") or {}
    if "field" in ctx:
        return RecordError(ctx["field"], ctx["message"])
    return RecordError(".".join(map(str, error["loc"])) or "record", error["msg"])  # pragma: no cover


def parse_record(obj: Any, *, now: float) -> Sample:
    """Validate one record and turn it into an ``app`` sample; raise :class:`RecordError` if refused.

    ``now`` (epoch seconds) is the default ``ts`` and the reference for "too far in the future".
    """
    if not isinstance(obj, dict):
        raise RecordError("record", f"expected a JSON object, got {describe(obj)}")
    try:
        record = Record.model_validate(obj, context={"now": now})
    except ValidationError as exc:
        raise _first_error(exc) from None

    error_kind = record.error_kind
    status = record.http_status
    if not record.ok and error_kind is None and status is not None and not 200 <= status < 300:
        error_kind = error_kind_for_status(status)
    project = record.project or record.tag
    provider = record.provider.lower()
    sample = Sample(
        ts=now if record.ts is None else record.ts,
        target=f"app:{project}" if project else f"app:{provider}/{record.model}",
        provider=provider,
        model=record.model,
        ok=int(record.ok),
        error_kind=error_kind,
        http_status=status,
        ttft_ms=record.ttft_ms,
        latency_ms=record.latency_ms,
        tokens_in=record.tokens_in,
        tokens_out=record.tokens_out,
        tokens_cached=record.tokens_cached,
        tokens_cache_write=record.tokens_cache_write or 0,
        tokens_reasoning=record.tokens_reasoning,
        tokens_estimated=0,
        cost_usd=None,
        request_id=record.request_id,
        source="app",
    )
    # The same inter-token figures as a probe (DESIGN 4).
    ttft, latency, tokens_out = record.ttft_ms, record.latency_ms, record.tokens_out
    if ttft is not None and latency is not None and tokens_out is not None and tokens_out > 1:
        span_ms = latency - ttft
        if span_ms > 0:
            sample.itl_ms = span_ms / (tokens_out - 1)
            sample.tps = (tokens_out - 1) / (span_ms / 1000)
    return sample


# -- a request body -----------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(data: bytes | str) -> Any:
    """JSON as the ingest path reads it: NaN and Infinity are refused."""
    return json.loads(data, parse_constant=_reject_constant)


def parse_body(body: bytes, *, now: float | None = None, max_records: int = MAX_RECORDS) -> list[Sample]:
    """A JSON object or a list of objects -> samples, all or nothing.

    Raises :class:`BodyError` (400) naming the first bad record ("record 3 of 5: tokens_in: ...",
    records counted from 1) and listing the others, or (413) when there are more than
    ``max_records`` records.
    """
    now = time.time() if now is None else now
    if not body.strip():
        raise BodyError(400, "request body is empty; expected a JSON object or a list of objects")
    try:
        data = loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BodyError(400, f"request body is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        records: list[Any] = [data]
    elif isinstance(data, list):
        records = data
        if not records:
            raise BodyError(400, "empty list: no records to take")
        if len(records) > max_records:
            raise BodyError(413, f"too many records in one request: {len(records)} (at most {max_records})")
    else:
        raise BodyError(400, f"expected a JSON object or a list of objects, got {describe(data)}")

    samples: list[Sample] = []
    errors: list[dict[str, Any]] = []
    total = len(records)
    first: str | None = None
    for index, record in enumerate(records, 1):
        try:
            samples.append(parse_record(record, now=now))
        except RecordError as exc:
            if first is None:
                first = f"record {index} of {total}: {exc}"
            if len(errors) < MAX_LISTED_ERRORS:
                errors.append({"record": index, "field": exc.field, "message": exc.message})
            else:
                break
    if first is not None:
        more = len(errors)
        suffix = "" if more == 1 else f" (and {more - 1} more refused record{'s' if more > 2 else ''}; nothing taken)"
        raise BodyError(400, first + suffix, errors)
    return samples

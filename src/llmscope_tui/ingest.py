"""Application usage ingestion: what the apps really spend, stored beside the probes' samples.

Three ways in, one record format (docs/ingest.md):

* ``POST /v1/events`` on a local HTTP endpoint (:class:`IngestServer`, off by default), with a
  JSON object or a list of objects;
* ``llmscope-tui ingest FILE.jsonl`` (:func:`import_file`), one object per line;
* :mod:`llmscope_tui.client`, which reads usage from an app's own httpx traffic and posts it.

Every record becomes a :class:`~llmscope_tui.model.Sample` with ``source="app"`` and
``cost_usd=None`` (the monitor prices it exactly like a probe). Records are validated strictly:
an unknown field, a negative count or an absurd timestamp is refused with a message that names
the field, so a typo is caught the first time instead of silently losing data.

Security: the endpoint binds 127.0.0.1 unless told otherwise, refuses a non-loopback address
unless LLMSCOPE_API_KEY is set (:func:`check_bind`), and when a key is set every request must
carry ``Authorization: Bearer <key>`` (compared in constant time). The key is never echoed or
logged. Strings that end up on a terminal (provider, model, project, request id) may not contain
control characters, so a record cannot inject escape sequences into the live view.

The server runs in the *caller's* asyncio event loop (the monitor's), so the sink is called on
that loop's thread and needs no locking. Nothing here imports Textual.
"""

from __future__ import annotations

import difflib
import hmac
import ipaddress
import json
import logging
import math
import os
import re
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmscope_tui.httpserver import HTTPError, LoopbackHTTPServer, Request, Response
from llmscope_tui.model import ErrorKind, Sample

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_PORT",
    "EVENTS_PATH",
    "HEALTH_PATH",
    "MAX_RECORDS",
    "RECORD_FIELDS",
    "BodyError",
    "ImportReport",
    "IngestConfigError",
    "IngestError",
    "IngestOptions",
    "IngestServer",
    "RecordError",
    "check_bind",
    "import_file",
    "is_loopback",
    "parse_body",
    "parse_record",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

#: The environment variable holding the endpoint's shared secret.
API_KEY_ENV = "LLMSCOPE_API_KEY"
#: The port the client (``llmscope_tui.client``) posts to unless told otherwise.
DEFAULT_PORT = 8787
EVENTS_PATH = "/v1/events"
HEALTH_PATH = "/v1/health"
#: At most this many records in one request body.
MAX_RECORDS = 1000
#: At most this many bytes in one line of an imported file (the endpoint's default body limit).
MAX_LINE_BYTES = 1_000_000
#: How many per-record errors a 400 body lists (the message names the first).
MAX_LISTED_ERRORS = 20

#: Every field a record may carry. Anything else is refused (typos are caught).
RECORD_FIELDS: tuple[str, ...] = (
    "provider",
    "model",
    "tokens_in",
    "tokens_out",
    "tokens_cached",
    "tokens_reasoning",
    "latency_ms",
    "ttft_ms",
    "ok",
    "error_kind",
    "ts",
    "project",
    "tag",
    "request_id",
    "http_status",
)

_MIN_TS = 946_684_800.0  # 2000-01-01T00:00:00Z
_MAX_FUTURE_S = 86_400.0  # a day of clock skew, no more
_MAX_MS = 86_400_000.0  # one call lasting more than a day is a unit mistake
_MAX_TOKENS = 2**53 - 1
_MAX_LEN = {"provider": 100, "model": 200, "project": 100, "tag": 100, "request_id": 200}
_ERROR_KINDS = tuple(kind.value for kind in ErrorKind)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,60}")


# -- errors ------------------------------------------------------------------------------------------


class IngestError(Exception):
    """Base of this module's errors."""


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


# -- one record ----------------------------------------------------------------------------------------


def _describe(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True, default=repr) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _string(obj: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise RecordError(name, "required (a non-empty string)")
        return None
    if not isinstance(value, str):
        raise RecordError(name, f"expected a string, got {_describe(value)}")
    value = value.strip()
    if not value:
        raise RecordError(name, "must not be empty")
    limit = _MAX_LEN[name]
    if len(value) > limit:
        raise RecordError(name, f"longer than {limit} characters ({len(value)})")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise RecordError(name, "contains control characters")
    return value


def _tokens(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > _MAX_TOKENS:
        raise RecordError(name, f"expected a non-negative integer, got {_describe(value)}")
    return value


def _millis(obj: dict[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise RecordError(name, f"expected a non-negative number of milliseconds, got {_describe(value)}")
    if value > _MAX_MS:
        raise RecordError(name, f"{value:g} ms is more than a day; send milliseconds")
    return float(value)


def _timestamp(value: Any, now: float) -> float:
    if isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise RecordError(
                "ts", f"expected epoch seconds or an ISO-8601 time, got {_describe(value)}"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ts = moment.timestamp()
    elif _is_number(value) and math.isfinite(value):
        ts = float(value)
    else:
        raise RecordError("ts", f"expected epoch seconds or an ISO-8601 time, got {_describe(value)}")
    if ts < _MIN_TS:
        raise RecordError("ts", f"{_describe(value)} is before 2000-01-01")
    if ts > now + _MAX_FUTURE_S:
        hint = ""
        if _is_number(value) and _MIN_TS <= ts / 1000 <= now + _MAX_FUTURE_S:
            hint = " (it looks like milliseconds; send epoch seconds)"
        raise RecordError("ts", f"{_describe(value)} is more than a day in the future{hint}")
    return ts


def _error_kind_for_status(status: int) -> str:
    if status == 529:
        return ErrorKind.OVERLOADED.value
    if status == 429:
        return ErrorKind.RATE_LIMIT.value
    if status in (401, 403):
        return ErrorKind.AUTH.value
    if 500 <= status <= 599:
        return ErrorKind.SERVER_ERROR.value
    return ErrorKind.CLIENT_ERROR.value


def parse_record(obj: Any, *, now: float) -> Sample:
    """Validate one record and turn it into an ``app`` sample; raise :class:`RecordError` if refused.

    ``now`` (epoch seconds) is the default ``ts`` and the reference for "too far in the future".
    """
    if not isinstance(obj, dict):
        raise RecordError("record", f"expected a JSON object, got {_describe(obj)}")
    for name in obj:
        if name not in RECORD_FIELDS:
            shown = name if _PLAIN_NAME.fullmatch(name) else _describe(name)
            close = difflib.get_close_matches(str(name), RECORD_FIELDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known fields: {', '.join(RECORD_FIELDS)})"
            raise RecordError(shown, f"unknown field{hint}")

    provider = _string(obj, "provider", required=True)
    model = _string(obj, "model", required=True)
    assert provider is not None and model is not None
    provider = provider.lower()

    tokens_in = _tokens(obj, "tokens_in")
    tokens_out = _tokens(obj, "tokens_out")
    tokens_cached = _tokens(obj, "tokens_cached")
    tokens_reasoning = _tokens(obj, "tokens_reasoning")
    if tokens_cached is not None:
        if tokens_in is None:
            raise RecordError("tokens_cached", "given without tokens_in (tokens_in counts all input, cached included)")
        if tokens_cached > tokens_in:
            raise RecordError(
                "tokens_cached",
                f"{tokens_cached} is more than tokens_in {tokens_in} (tokens_in counts all input, cached included)",
            )
    if tokens_reasoning is not None and tokens_out is not None and tokens_reasoning > tokens_out:
        raise RecordError(
            "tokens_reasoning",
            f"{tokens_reasoning} is more than tokens_out {tokens_out} (reasoning tokens are part of tokens_out)",
        )

    latency_ms = _millis(obj, "latency_ms")
    ttft_ms = _millis(obj, "ttft_ms")
    if ttft_ms is not None and latency_ms is not None and ttft_ms > latency_ms:
        raise RecordError("ttft_ms", f"{ttft_ms:g} is more than latency_ms {latency_ms:g}")

    http_status = obj.get("http_status")
    if http_status is not None:
        if not isinstance(http_status, int) or isinstance(http_status, bool) or not 100 <= http_status <= 599:
            raise RecordError("http_status", f"expected an HTTP status code 100-599, got {_describe(http_status)}")

    error_kind = obj.get("error_kind")
    if error_kind is not None:
        if not isinstance(error_kind, str) or error_kind not in _ERROR_KINDS:
            raise RecordError("error_kind", f"expected one of {', '.join(_ERROR_KINDS)}; got {_describe(error_kind)}")

    ok_value = obj.get("ok")
    if ok_value is None:
        failed_status = http_status is not None and not 200 <= http_status < 300
        ok = error_kind is None and not failed_status
    elif isinstance(ok_value, bool):
        ok = ok_value
    elif isinstance(ok_value, int) and ok_value in (0, 1):
        ok = bool(ok_value)
    else:
        raise RecordError("ok", f"expected true/false (or 1/0), got {_describe(ok_value)}")
    if ok and error_kind is not None:
        raise RecordError("ok", f"is true but error_kind is {error_kind!r}")
    if not ok and error_kind is None and http_status is not None and not 200 <= http_status < 300:
        error_kind = _error_kind_for_status(http_status)

    ts = now if obj.get("ts") is None else _timestamp(obj["ts"], now)

    project = _string(obj, "project")
    tag = _string(obj, "tag")
    if project is not None and tag is not None and project != tag:
        raise RecordError("tag", "give project or tag, not both")
    project = project or tag
    request_id = _string(obj, "request_id")

    sample = Sample(
        ts=ts,
        target=f"app:{project}" if project else f"app:{provider}/{model}",
        provider=provider,
        model=model,
        ok=int(ok),
        error_kind=error_kind,
        http_status=http_status,
        ttft_ms=ttft_ms,
        latency_ms=latency_ms,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        tokens_cached=tokens_cached,
        tokens_reasoning=tokens_reasoning,
        tokens_estimated=0,
        cost_usd=None,
        request_id=request_id,
        source="app",
    )
    # The same inter-token figures as a probe (DESIGN 4).
    if ttft_ms is not None and latency_ms is not None and tokens_out is not None and tokens_out > 1:
        span_ms = latency_ms - ttft_ms
        if span_ms > 0:
            sample.itl_ms = span_ms / (tokens_out - 1)
            sample.tps = (tokens_out - 1) / (span_ms / 1000)
    return sample


# -- a request body ---------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(data: bytes | str) -> Any:
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
        data = _loads(body)
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
        raise BodyError(400, f"expected a JSON object or a list of objects, got {_describe(data)}")

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


# -- bind policy ----------------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 (also IPv4-mapped) and "localhost"."""
    name = host.strip().strip("[]").lower()
    if name in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to listen on a non-loopback address unless an API key protects the endpoint."""
    if api_key:
        return
    if not is_loopback(host):
        shown = host or "all interfaces"
        raise IngestConfigError(
            f"refusing to listen on {shown} without {API_KEY_ENV} set: "
            "anyone who can reach this port could write into your data"
        )


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """Where the endpoint listens and the key it requires (the key never shows in a repr)."""

    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls, port: int, host: str = "127.0.0.1", env: Mapping[str, str] | None = None
    ) -> IngestOptions:
        """Options for ``--ingest-port``/``--ingest-host``, the key from LLMSCOPE_API_KEY; applies
        :func:`check_bind` (raises :class:`IngestConfigError`)."""
        env = os.environ if env is None else env
        key = env.get(API_KEY_ENV) or None
        check_bind(host, key)
        return cls(port=port, host=host, api_key=key)


# -- the endpoint -------------------------------------------------------------------------------------------


Sink = Callable[[list[Sample]], None]


class IngestServer:
    """``POST /v1/events`` and ``GET /v1/health`` on a :class:`LoopbackHTTPServer` in the caller's loop.

    ``sink(samples)`` is called once per accepted request, on the event loop that ran
    :meth:`start`, with every record of that request (all or nothing). Use as
    ``async with IngestServer(sink, port=8787) as server: ...`` or ``await start()`` / ``await stop()``.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        max_body_bytes: int = 1_000_000,
        max_records: int = MAX_RECORDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_bind(host, api_key)
        self.sink = sink
        self.host = host
        self.requested_port = port
        self.max_body_bytes = max_body_bytes
        self.max_records = max_records
        self.clock = clock
        self._key = api_key.encode("utf-8") if api_key else None
        self._server: LoopbackHTTPServer | None = None
        #: Counters (plain integers): records taken, requests refused.
        self.accepted = 0
        self.refused = 0

    def __repr__(self) -> str:  # never shows the key
        state = f"port={self._server.port}" if self._server is not None else "stopped"
        return f"IngestServer(host={self.host!r}, {state}, auth={'on' if self._key else 'off'})"

    @property
    def auth_required(self) -> bool:
        return self._key is not None

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> IngestServer:
        """Bind and serve in the running event loop. Raises OSError if the port is taken."""
        if self._server is not None:
            raise RuntimeError("ingest server already started")
        server = LoopbackHTTPServer(
            self.handle, self.host, self.requested_port, self.max_body_bytes, server_header="llmscope-tui-ingest"
        )
        await server.start()
        self._server = server
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def __aenter__(self) -> IngestServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ingest server not started")
        return self._server.port

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("ingest server not started")
        return self._server.base_url

    @property
    def events_url(self) -> str:
        return self.base_url + EVENTS_PATH

    # -- requests -------------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        """The request handler (also usable with :class:`~llmscope_tui.httpserver.ThreadedServer`)."""
        path = request.path.rstrip("/") or "/"
        if path == HEALTH_PATH:
            if request.method not in ("GET", "HEAD"):
                raise HTTPError(405, f"use GET {HEALTH_PATH}", {"allow": "GET, HEAD"})
            return Response.json({"status": "ok", "auth": self._key is not None})
        if path != EVENTS_PATH:
            raise HTTPError(404, f"not found; records go to POST {EVENTS_PATH}")
        if request.method != "POST":
            raise HTTPError(405, f"use POST {EVENTS_PATH}", {"allow": "POST"})
        try:
            self._authorize(request)
            self._check_content_type(request)
        except HTTPError:
            self.refused += 1
            raise
        try:
            samples = parse_body(request.body, now=self.clock(), max_records=self.max_records)
        except BodyError as exc:
            self.refused += 1
            error: dict[str, Any] = {"code": exc.status, "message": exc.message}
            if exc.errors:
                error["errors"] = exc.errors
            return Response.json({"error": error}, exc.status)
        self.sink(samples)
        self.accepted += len(samples)
        return Response.json({"accepted": len(samples)}, 202)

    def _authorize(self, request: Request) -> None:
        if self._key is None:
            return
        given = request.header("authorization") or ""
        scheme, _, token = given.strip().partition(" ")
        # The server decoded header bytes as latin-1: encoding back gives the bytes sent.
        presented = token.strip().encode("latin-1", "replace") if scheme.lower() == "bearer" else b""
        # compare_digest runs in time independent of where the strings differ.
        if not hmac.compare_digest(presented, self._key):
            raise HTTPError(
                401,
                f"missing or wrong API key: send 'Authorization: Bearer <key>' with the value of {API_KEY_ENV}",
                {"www-authenticate": 'Bearer realm="llmscope-tui"'},
            )

    @staticmethod
    def _check_content_type(request: Request) -> None:
        given = request.header("content-type") or ""
        media = given.split(";", 1)[0].strip().lower()
        if media != "application/json":
            shown = repr(given[:80]) if given else "none"
            raise HTTPError(415, f"expected Content-Type: application/json, got {shown}")


# -- files ---------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    """What :func:`import_file` did: records taken, and (line number, reason) for each refused line."""

    taken: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)

    def lines(self, path: Path | str, limit: int = 20) -> list[str]:
        """Human lines for a CLI: a summary, then up to ``limit`` refusals."""
        out = [f"{path}: took {self.taken} record{'' if self.taken == 1 else 's'}, refused {len(self.refused)}"]
        for number, reason in self.refused[:limit]:
            out.append(f"{path}:{number}: {reason}")
        if len(self.refused) > limit:
            out.append(f"... and {len(self.refused) - limit} more refused lines")
        return out


def _read_lines(handle: Any, max_line: int) -> Any:
    """(number, bytes or None when too long) for each line, without holding an overlong one in memory."""
    number = 0
    while True:
        line = handle.readline(max_line + 1)
        if not line:
            return
        number += 1
        if len(line) > max_line and not line.endswith(b"\n"):
            while True:  # skip the rest of this line
                rest = handle.readline(max_line + 1)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None
            continue
        yield number, line


def import_file(
    path: Path | str,
    sink: Sink,
    *,
    now: float | None = None,
    batch: int = 1000,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> ImportReport:
    """Import JSON-lines records from a file: good lines are taken even when others are refused.

    Lines are numbered from 1; blank lines are skipped. ``sink`` gets lists of up to ``batch``
    samples. A missing or unreadable file raises :class:`IngestConfigError` (one line).
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    file = Path(path).expanduser()
    now = time.time() if now is None else now
    report = ImportReport()
    pending: list[Sample] = []
    try:
        handle = file.open("rb")
    except FileNotFoundError:
        raise IngestConfigError(f"{file}: no such file") from None
    except OSError as exc:
        raise IngestConfigError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        with handle:
            for number, raw in _read_lines(handle, max_line_bytes):
                if raw is None:
                    report.refused.append((number, f"line longer than {max_line_bytes} bytes"))
                    continue
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                if not raw.strip():
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    report.refused.append((number, f"not UTF-8 text (byte {exc.start + 1})"))
                    continue
                try:
                    obj = _loads(text)
                except (ValueError, RecursionError) as exc:
                    report.refused.append((number, f"not JSON: {exc}"))
                    continue
                try:
                    pending.append(parse_record(obj, now=now))
                except RecordError as exc:
                    report.refused.append((number, str(exc)))
                    continue
                if len(pending) >= batch:
                    sink(pending)
                    report.taken += len(pending)
                    pending = []
    except OSError as exc:
        raise IngestConfigError(f"{file}: cannot read: {exc.strerror or exc}") from None
    if pending:
        sink(pending)
        report.taken += len(pending)
    return report

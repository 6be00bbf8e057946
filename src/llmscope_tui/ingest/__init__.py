"""Application usage ingestion: what the apps really spend, stored beside the probes' samples.

Three ways in, one record format (docs/ingest.md):

* ``POST /v1/events`` on a local HTTP endpoint (off by default; served by
  :mod:`llmscope_tui.server`), with a JSON object or a list of objects;
* ``llmscope-tui ingest FILE.jsonl`` (:func:`import_file`), one object per line;
* :mod:`llmscope_tui.client`, which reads usage from an app's own httpx traffic and posts it.

Every record becomes a :class:`~llmscope_tui.model.Sample` with ``source="app"`` and
``cost_usd=None`` (the monitor prices it exactly like a probe). Records are validated strictly
(:mod:`.records`): an unknown field, a negative count or an absurd timestamp is refused with a
message that names the field, so a typo is caught the first time instead of silently losing data.
Strings that end up on a terminal (provider, model, project, request id) may not contain control
characters, so a record cannot inject escape sequences into the live view. Nothing here knows
HTTP or imports Textual.
"""

from llmscope_tui.ingest.checks import (
    MAX_LISTED_ERRORS,
    MAX_RECORDS,
    BodyError,
    IngestConfigError,
    IngestError,
    RecordError,
)
from llmscope_tui.ingest.importer import MAX_LINE_BYTES, ImportReport, import_file
from llmscope_tui.ingest.options import (
    API_KEY_ENV,
    DEFAULT_PORT,
    EVENTS_PATH,
    HEALTH_PATH,
    IngestOptions,
    check_bind,
    is_loopback,
)
from llmscope_tui.ingest.records import RECORD_FIELDS, Record, parse_body, parse_record

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_PORT",
    "EVENTS_PATH",
    "HEALTH_PATH",
    "MAX_LINE_BYTES",
    "MAX_LISTED_ERRORS",
    "MAX_RECORDS",
    "RECORD_FIELDS",
    "BodyError",
    "ImportReport",
    "IngestConfigError",
    "IngestError",
    "IngestOptions",
    "Record",
    "RecordError",
    "check_bind",
    "import_file",
    "is_loopback",
    "parse_body",
    "parse_record",
]

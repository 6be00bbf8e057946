"""``llmscope-tui ingest FILE.jsonl``: records from a JSON-lines file, good lines taken even when
others are refused, each refusal named by line number."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from llmscope_tui.ingest.checks import IngestConfigError, RecordError
from llmscope_tui.ingest.records import loads, parse_record
from llmscope_tui.model import Sample

#: At most this many bytes in one line of an imported file (the endpoint's default body limit).
MAX_LINE_BYTES = 1_000_000

Sink = Callable[[list[Sample]], None]


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


def _read_lines(handle: BinaryIO, max_line: int) -> Iterator[tuple[int, bytes | None]]:
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
                    obj = loads(text)
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

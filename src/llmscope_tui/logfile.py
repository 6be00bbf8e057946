"""The log file: where warnings and the tracebacks of our own bugs go while the UI owns the screen.

Under the terminal UI nothing may write to stdout or stderr (Textual swallows it, or it would
tear the screen), so the package's logger also writes WARNING and above to a private file in
the platform's log folder (DESIGN 5: a bug of ours leaves its traceback there and one line in
the UI). The headless run writes the same file and says each record on stderr in one line
(stdout carries its log): a traceback never reaches a user's terminal (DESIGN 5), and every
line passes the key redaction first.
"""

from __future__ import annotations

import logging
from pathlib import Path

from llmscope_tui.paths import log_dir, private_file

LOGGER = "llmscope_tui"
FILE_NAME = "llmscope-tui.log"


def default_log_file() -> Path:
    return log_dir() / FILE_NAME


def attach(path: Path | None = None) -> logging.Handler | None:
    """Send the package's warnings and errors to ``path`` (default: the log folder's
    llmscope-tui.log, created 0600 in a 0700 folder); None when it cannot be opened, since a
    missing log file must not keep the monitor from starting."""
    path = path or default_log_file()
    try:
        private_file(path)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        return None
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_Scrubbed("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger(LOGGER).addHandler(handler)
    return handler


class _Scrubbed(logging.Formatter):
    """The record with its traceback, keys redacted (an exception may quote one)."""

    def format(self, record: logging.LogRecord) -> str:
        from llmscope_tui.redaction import scrub

        return scrub(super().format(record))


class _OneLine(logging.Formatter):
    """``llmscope-tui: <the message's first line>``: no traceback, keys redacted; the file named
    when there is more to read there."""

    def __init__(self, where: Path | None) -> None:
        super().__init__()
        self.where = where

    def format(self, record: logging.LogRecord) -> str:
        from llmscope_tui.redaction import scrub

        lines = record.getMessage().splitlines() or [""]
        more = len(lines) > 1 or record.exc_info is not None
        tail = f" (details in {self.where})" if more and self.where is not None else ""
        return scrub(f"llmscope-tui: {lines[0]}{tail}")


def attach_headless(path: Path | None = None) -> list[logging.Handler]:
    """The file (as :func:`attach`) and one line per record on stderr."""
    handlers: list[logging.Handler] = []
    file_handler = attach(path)
    if file_handler is not None:
        handlers.append(file_handler)
    stderr = logging.StreamHandler()
    stderr.setLevel(logging.WARNING)
    where = Path(file_handler.baseFilename) if isinstance(file_handler, logging.FileHandler) else None
    stderr.setFormatter(_OneLine(where))
    logging.getLogger(LOGGER).addHandler(stderr)
    handlers.append(stderr)
    return handlers


def detach(handler: logging.Handler) -> None:
    """Stop writing to the file ``attach`` opened, and close it."""
    logging.getLogger(LOGGER).removeHandler(handler)
    handler.close()

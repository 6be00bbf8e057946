"""The log file: where warnings and the tracebacks of our own bugs go while the UI owns the screen.

Under the terminal UI nothing may write to stdout or stderr (Textual swallows it, or it would
tear the screen), so the package's logger also writes WARNING and above to a private file in
the platform's log folder (DESIGN 5: a bug of ours leaves its traceback there and one line in
the UI). The headless run keeps stderr for them: stdout carries its log.
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
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger(LOGGER).addHandler(handler)
    return handler


def detach(handler: logging.Handler) -> None:
    """Stop writing to the file ``attach`` opened, and close it."""
    logging.getLogger(LOGGER).removeHandler(handler)
    handler.close()

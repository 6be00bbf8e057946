"""Re-export for modules not yet moved to llmscope_tui.wire.errors (removed at merge)."""

from llmscope_tui.wire.errors import (
    classify_exception,
    classify_status,
    parse_retry_after,
    redact,
    short,
)

__all__ = ["classify_exception", "classify_status", "parse_retry_after", "redact", "short"]

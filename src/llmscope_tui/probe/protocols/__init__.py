"""Re-export for modules not yet moved to llmscope_tui.wire (removed at merge)."""

from llmscope_tui.wire import PROTOCOLS, WireProtocol

__all__ = ["PROTOCOLS", "WireProtocol"]

"""The wire: how each LLM API is asked and read, shared by the probe and the app-side client.

framing.py cuts bytes into SSE events / NDJSON lines with arrival stamps; one module per
protocol says what a request looks like and what each frame means; errors.py classifies.
"""

from __future__ import annotations

from llmscope_tui.wire.anthropic import AnthropicProtocol
from llmscope_tui.wire.base import WireProtocol
from llmscope_tui.wire.gemini import GeminiProtocol
from llmscope_tui.wire.ollama import OllamaProtocol
from llmscope_tui.wire.openai import OpenAIProtocol

PROTOCOLS: dict[str, WireProtocol] = {
    "openai": OpenAIProtocol(),
    "anthropic": AnthropicProtocol(),
    "gemini": GeminiProtocol(),
    "ollama": OllamaProtocol(),
}

__all__ = ["PROTOCOLS", "WireProtocol"]

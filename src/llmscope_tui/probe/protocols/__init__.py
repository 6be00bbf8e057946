"""The four wire protocols, by name."""

from __future__ import annotations

from llmscope_tui.probe.protocols.anthropic import AnthropicProtocol
from llmscope_tui.probe.protocols.base import WireProtocol
from llmscope_tui.probe.protocols.gemini import GeminiProtocol
from llmscope_tui.probe.protocols.ollama import OllamaProtocol
from llmscope_tui.probe.protocols.openai import OpenAIProtocol

PROTOCOLS: dict[str, WireProtocol] = {
    "openai": OpenAIProtocol(),
    "anthropic": AnthropicProtocol(),
    "gemini": GeminiProtocol(),
    "ollama": OllamaProtocol(),
}

__all__ = ["PROTOCOLS", "WireProtocol"]

"""Which of an app's calls are LLM calls: URL -> wire format, provider and reader."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from llmscope_tui.wire import PROTOCOLS
from llmscope_tui.wire.base import FrameReader
from llmscope_tui.wire.openai import OpenAIResponsesReader

#: The reader of each wire format: the probe's own protocol readers, plus OpenAI's Responses API.
READERS: dict[str, FrameReader] = {
    "openai-chat": PROTOCOLS["openai"],
    "openai-responses": OpenAIResponsesReader(),
    "anthropic": PROTOCOLS["anthropic"],
    "gemini": PROTOCOLS["gemini"],
    "ollama": PROTOCOLS["ollama"],
}

_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gemini",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral",
    "api.deepseek.com": "deepseek",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
}
_HOST_SUFFIXES = ((".openai.azure.com", "azure"), (".cognitiveservices.azure.com", "azure"))
#: Provider name for an endpoint on a host we do not know (self-hosted, gateways).
_FORMAT_PROVIDER = {
    "openai-chat": "openai-compatible",
    "openai-responses": "openai-compatible",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "ollama": "ollama",
}
_GEMINI_PATH = re.compile(r"/models/([^/:]+):(?:stream)?generateContent$", re.IGNORECASE)


class URLLike(Protocol):
    """What route() reads of a URL: httpx.URL and httpx2.URL both have it."""

    @property
    def path(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Route:
    """An LLM call: its wire format (a key of READERS), provider, and the model its URL names."""

    fmt: str
    provider: str
    url_model: str | None

    @property
    def reader(self) -> FrameReader:
        return READERS[self.fmt]


def route(url: URLLike, provider: str | None) -> Route | None:
    """The route of a call to ``url``, or None when it is not an LLM call we can read."""
    path = url.path.rstrip("/")
    url_model = None
    if path.endswith("/completions"):  # chat/completions and the legacy completions
        fmt = "openai-chat"
    elif path.endswith("/responses"):
        fmt = "openai-responses"
    elif path.endswith("/v1/messages"):
        fmt = "anthropic"
    elif path.endswith(("/api/chat", "/api/generate")):
        fmt = "ollama"
    else:
        match = _GEMINI_PATH.search(path)
        if match is None:
            return None
        fmt, url_model = "gemini", match.group(1)
    return Route(fmt, provider or _provider_of(url, fmt), url_model)


def _provider_of(url: URLLike, fmt: str) -> str:
    host = (url.host or "").lower()
    provider = _HOSTS.get(host)
    if provider is None:
        provider = next((name for suffix, name in _HOST_SUFFIXES if host.endswith(suffix)), None)
    if provider is None:
        provider = "ollama" if url.port == 11434 else _FORMAT_PROVIDER[fmt]
    return provider

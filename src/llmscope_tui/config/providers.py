"""Provider presets: which wire protocol a provider speaks, its default URL and key variable.

Every OpenAI-compatible server is one row here, not a module: the protocol modules stay four.
They live with the configuration because only the config turns a `provider = "..."` into a
Target (protocol, URL, key variable); the probe reads the Target and never the presets.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderPreset:
    protocol: str
    base_url: str | None  # None: the config must give base_url
    key_envs: tuple[str, ...]  # first one set wins; empty: no key by default
    key_required: bool
    base_url_envs: tuple[str, ...] = ()


PRESETS: dict[str, ProviderPreset] = {
    "openai": ProviderPreset(
        "openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",), True, ("OPENAI_BASE_URL",)
    ),
    "azure": ProviderPreset(
        "openai", None, ("AZURE_OPENAI_API_KEY",), True, ("AZURE_OPENAI_ENDPOINT",)
    ),
    "anthropic": ProviderPreset(
        "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",), True
    ),
    "gemini": ProviderPreset(
        "gemini",
        "https://generativelanguage.googleapis.com",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        True,
    ),
    "ollama": ProviderPreset(
        "ollama", "http://127.0.0.1:11434", (), False, ("OLLAMA_HOST", "OLLAMA_URL")
    ),
    "vllm": ProviderPreset("openai", "http://127.0.0.1:8000/v1", ("VLLM_API_KEY",), False),
    "llamacpp": ProviderPreset("openai", "http://127.0.0.1:8080/v1", ("LLAMACPP_API_KEY",), False),
    "lmstudio": ProviderPreset("openai", "http://127.0.0.1:1234/v1", ("LMSTUDIO_API_KEY",), False),
    "openrouter": ProviderPreset(
        "openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",), True
    ),
    "groq": ProviderPreset("openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",), True),
    "mistral": ProviderPreset("openai", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), True),
    "deepseek": ProviderPreset(
        "openai", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",), True
    ),
    "together": ProviderPreset(
        "openai", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",), True
    ),
    "fireworks": ProviderPreset(
        "openai", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",), True
    ),
    "openai-compatible": ProviderPreset("openai", None, (), False),
}

#: Azure OpenAI data-plane API version used when the config does not give one.
AZURE_DEFAULT_API_VERSION = "2024-10-21"


def url_problem(url: str) -> str | None:
    """What makes ``url`` unusable as a base URL (in the words the user reads), or None: a run
    would otherwise fail every probe with a traceback (``http://[::1/v1``, port 99999, a space)."""
    from urllib.parse import urlsplit

    if any(c.isspace() for c in url):
        return f"a URL has no spaces, got {url!r}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:  # bad IPv6 brackets, a port out of range or not a number
        return f"not a valid URL ({exc}), got {url!r}"
    if parts.scheme not in ("http", "https"):
        return f"expected an http(s) URL, got {url!r}"
    if not parts.hostname:
        return f"expected a host in the URL, got {url!r}"
    if port == 0:
        return f"port must be 1-65535, got {url!r}"
    return None


def normalize_base_url(url: str) -> str:
    """Accept what people put in OLLAMA_HOST and friends: no scheme, a bind-all address, a slash."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    url = url.replace("://0.0.0.0", "://127.0.0.1")
    return url.rstrip("/")


#: Targets created from provider keys in the environment when there is no config file:
#: (key variable, provider, an inexpensive model).
AUTO_TARGETS: tuple[tuple[str, str, str], ...] = (
    ("OPENAI_API_KEY", "openai", "gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic", "claude-3-5-haiku-latest"),
    ("GEMINI_API_KEY", "gemini", "gemini-2.0-flash"),
    ("GOOGLE_API_KEY", "gemini", "gemini-2.0-flash"),
)

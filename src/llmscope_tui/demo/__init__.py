"""The built-in demo: a simulated LLM provider served over real HTTP on a loopback port.

With no config and no keys, llmscope-tui probes this server with the real protocol code, so
everything downstream (timing, framing, SPC, costs, the UI) runs exactly as it would against a
real provider. The server speaks four wire protocols on one port:

- OpenAI      POST /v1/chat/completions                              (SSE, ``data: [DONE]``)
- Anthropic   POST /v1/messages                                      (SSE with named events)
- Gemini      POST /v1beta/models/{model}:streamGenerateContent?alt=sse   (SSE, CRLF framed)
- Ollama      POST /api/chat                                         (NDJSON)

Each simulated model has a latency personality (``profiles``: log-normal time to first token
and per-token gaps drawn from a seeded numpy Generator, a token count, a chunking style, a rare
background error; ``generation`` draws a reply from it), and a scripted timeline of incidents
(``timeline``) repeats every few minutes so SPC has something to find within about a minute of
starting: a sustained latency shift on one model, a slow drift on another, a burst of 429s on a
third, while the fourth stays calm as a control. ``encoders`` dresses a reply in each protocol,
``server`` serves them, ``provider`` holds it together and tells the monitor, as ``demo``
events, which incident runs. The server ignores authentication headers.
"""

from llmscope_tui.demo.generation import count_tokens
from llmscope_tui.demo.profiles import DEFAULT_PROFILES, ModelProfile, demo_targets
from llmscope_tui.demo.provider import DemoProvider
from llmscope_tui.demo.timeline import DemoTimeline, event_words

__all__ = [
    "DEFAULT_PROFILES",
    "DemoProvider",
    "DemoTimeline",
    "ModelProfile",
    "count_tokens",
    "demo_targets",
    "event_words",
]

"""Report what an application really spends on LLM calls to a running llmscope-tui.

::

    import httpx2, openai
    from llmscope_tui.client import instrument

    http = httpx2.Client()
    instrument(http, project="checkout")
    client = openai.OpenAI(http_client=http)

:func:`instrument` adds a response event hook to an ``httpx2`` or ``httpx`` ``Client`` /
``AsyncClient`` (and so to the openai 3, anthropic 2 and google-genai 3 SDKs, which take an
httpx2 one; see flavour.py). For every call to a recognised LLM
endpoint -- OpenAI chat completions / completions / responses (and every OpenAI-compatible
server, Azure included), Anthropic messages, Gemini generateContent / streamGenerateContent,
Ollama chat / generate -- it records the provider, the model, the token usage (DESIGN 4
meanings), the latency, the time to first token of a streamed reply, and ok / error kind, and
posts these records in batches to the llmscope-tui ingest endpoint (docs/ingest.md).

How it stays out of the app's way:

* It never consumes a response. The hook only wraps ``response.stream`` with a pass-through
  that hands every byte to the app unchanged, in the same chunks, and keeps a reference to it
  (the first 4 MiB and the last 256 KiB). Whatever the app reads -- a whole JSON body, or an SSE /
  NDJSON stream chunk by chunk -- is observed as it passes; when the app closes the response the
  observation is queued. Streamed replies therefore get real token counts (from the usage
  chunk / ``message_delta`` / ``usageMetadata`` / Ollama's final line) and a time to first token.
* What the bytes mean is read by the same protocol readers the probe uses
  (:mod:`llmscope_tui.wire`), so a protocol is read in one place.
* Parsing, and sending, happen in one daemon thread, never in the app's thread or event loop
  (so the same code serves sync and async clients, under asyncio or trio). The app's thread
  only stamps a clock and appends to a bounded queue; when the queue is full the oldest entries
  are dropped and counted.
* Nothing raises into the app: every step of the hook, the stream wrapper and the worker catches
  its own errors. A down, slow or refusing endpoint only means records are retried (with
  backoff, the queue bounded) or dropped.
* Only counts and timings are sent: never the app's API key, headers, prompt or response text.
  (The request body is looked at, in the worker thread, only to find the ``model`` of a call
  whose response does not say it, e.g. a 429.)

Limits, said plainly: a call that never produced a response (DNS failure, refused connection, a
timeout before the headers) is not reported; a streamed response is reported when the app
closes it (the SDKs do when the stream ends or the ``with`` block exits), and its timings are
when the app *read* the bytes, which is when they arrived unless the app reads slowly; a stream
the app abandons before its end marker is reported as ``cancelled``; a JSON body larger than
4 MiB, or a compressed stream larger than that, is reported without tokens.

The package, one job per module: ``routing`` (URL -> wire format and provider), ``observe``
(the pass-through stream wrappers), ``summary`` (observation -> record, through the wire
readers), ``delivery`` (posting batches, retried with stamina), ``reporter`` (the queue and its
thread), ``hooks`` (:func:`instrument`), ``flavour`` (httpx or httpx2).
"""

from __future__ import annotations

import logging

from llmscope_tui.client.hooks import instrument
from llmscope_tui.client.reporter import API_KEY_ENV, DEFAULT_ENDPOINT, Reporter

__all__ = ["API_KEY_ENV", "DEFAULT_ENDPOINT", "Reporter", "instrument"]

# A library must not print through logging's last-resort handler into the app's stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())

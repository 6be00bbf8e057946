"""instrument(): the response hook through which the openai, anthropic and google-genai SDKs
(and any httpx or httpx2 client) report their calls to a Reporter."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from llmscope_tui.client.flavour import client_kind
from llmscope_tui.client.reporter import DEFAULT_ENDPOINT, Reporter

if TYPE_CHECKING:  # for type checkers only: httpx2 is imported by the apps that use it, not here
    import httpx
    import httpx2

_MARK = "__llmscope_reporter__"


def instrument(
    client: httpx2.Client | httpx2.AsyncClient | httpx.Client | httpx.AsyncClient,
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    api_key: str | None = None,
    project: str | None = None,
    batch_size: int = 50,
    flush_interval_s: float = 2.0,
    provider: str | None = None,
) -> Reporter:
    """Report every LLM call made through ``client`` to the llmscope-tui ingest endpoint.

    ``client`` is an ``httpx2.Client`` / ``httpx2.AsyncClient`` (what the openai 3, anthropic 2
    and google-genai 3 SDKs take) or an ``httpx.Client`` / ``httpx.AsyncClient``; anything else
    is a TypeError.

    ``api_key`` defaults to LLMSCOPE_API_KEY; ``project`` names the app (shown as target
    ``app:<project>``); ``provider`` overrides the provider guessed from the URL's host (useful
    for a self-hosted OpenAI-compatible server, e.g. "vllm"). Returns the :class:`Reporter`; call
    ``reporter.close()`` for a clean exit (also done at interpreter exit). Instrumenting the same
    client twice returns the first reporter.
    """
    kind = client_kind(client)
    if kind is None:
        raise TypeError(
            "instrument() needs an httpx2 or httpx Client or AsyncClient, "
            f"got {type(client).__module__}.{type(client).__qualname__}"
        )
    is_async = kind[1]
    hooks = client.event_hooks["response"]
    for hook in hooks:
        existing = getattr(hook, _MARK, None)
        if existing is not None and not existing._closed:
            return existing
    reporter = Reporter(
        endpoint=endpoint,
        api_key=api_key,
        project=project,
        provider=provider,
        batch_size=batch_size,
        flush_interval_s=flush_interval_s,
    )
    new_hook = _async_hook(reporter) if is_async else _sync_hook(reporter)
    setattr(new_hook, _MARK, reporter)
    # First, so the stream is wrapped before any other hook of the app reads the body.
    hooks.insert(0, new_hook)
    reporter._hooks.append((weakref.ref(client), new_hook))
    return reporter


def _sync_hook(reporter: Reporter) -> Callable[[Any], None]:
    ref = weakref.ref(reporter)  # the hook must not keep a closed reporter alive

    def hook(response: Any) -> None:  # an httpx or httpx2 Response
        r = ref()
        if r is not None:
            r._on_response(response, False)

    return hook


def _async_hook(reporter: Reporter) -> Callable[[Any], Awaitable[None]]:
    ref = weakref.ref(reporter)

    async def hook(response: Any) -> None:
        r = ref()
        if r is not None:
            r._on_response(response, True)

    return hook


__all__: list[str] = ["instrument"]

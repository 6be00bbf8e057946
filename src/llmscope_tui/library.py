"""The library API: probe an LLM API from your own code, or run the monitor and read its events.

Import these from the package root (``from llmscope_tui import probe_once, make_target``):
the names in ``llmscope_tui.__all__`` are the stable surface (docs/library.md); the modules
behind them may move. Nothing here imports Textual.

Three uses, smallest first:

* :func:`make_target` + :func:`probe_once` (or :func:`probe_once_sync`): one streamed request,
  timed from the wire exactly as the monitor times its probes, returned as a DESIGN 4
  :class:`~llmscope_tui.model.Sample`. Nothing is stored.
* :func:`watch`: the whole monitor (probes on their intervals, the data file, SPC, incidents,
  budgets, alerts) with its events as an async iterator.
* :class:`~llmscope_tui.monitor.Monitor` itself, for callbacks (``subscribe``) and ``run()``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio

from llmscope_tui.config.providers import (
    AZURE_DEFAULT_API_VERSION,
    PRESETS,
    normalize_base_url,
    url_problem,
)
from llmscope_tui.config.settings import DEFAULT_PROMPT, MAX_TOKENS
from llmscope_tui.model import Sample, Target
from llmscope_tui.probe import stream
from llmscope_tui.probe.scheduler import make_client
from llmscope_tui.probe.stream import Timeouts
from llmscope_tui.wire import PROTOCOLS

if TYPE_CHECKING:  # imported when used: a probe needs neither the monitor nor the price list
    from llmscope_tui.config.settings import Settings
    from llmscope_tui.costs import PriceBook
    from llmscope_tui.monitor import Event, Monitor, RunSummary

__all__ = ["Watch", "make_target", "probe_once", "probe_once_sync", "watch"]

_prices: PriceBook | None = None
_prices_lock = threading.Lock()


def make_target(
    provider: str,
    model: str,
    *,
    name: str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    prompt: str = DEFAULT_PROMPT,
    max_tokens: int = 16,
    interval_s: float = 15.0,
    api_version: str | None = None,
    headers: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """A :class:`Target` resolved as a ``[[targets]]`` table of the config file is
    (docs/configuration.md): the provider preset gives the wire protocol, the default URL (or
    its URL variable, e.g. OPENAI_BASE_URL, when ``base_url`` is not given) and the key
    variable; ``name`` defaults to ``provider/model``. A target whose key variable is unset
    comes back disabled (``target.disabled_reason``), as in the config. ValueError for what the
    config would refuse, in its words."""
    env = os.environ if env is None else env
    preset = PRESETS.get(provider)
    if preset is None:
        raise ValueError(f"unknown provider {provider!r}; one of: {', '.join(sorted(PRESETS))}")
    if not model.strip():
        raise ValueError("model: expected a model id, got an empty string")
    if not 1 <= max_tokens <= MAX_TOKENS:
        raise ValueError(f"max_tokens: expected 1 to {MAX_TOKENS}, got {max_tokens}")
    if not interval_s > 0:
        raise ValueError(f"interval_s: expected seconds above 0, got {interval_s}")
    url = base_url
    if url is None:
        from_env = next((v for v in preset.base_url_envs if env.get(v)), None)
        url = env[from_env] if from_env else preset.base_url
    if url is None:
        raise ValueError(f"provider {provider!r} needs base_url")
    url = normalize_base_url(url)
    problem = url_problem(url)
    if problem is not None:
        raise ValueError(f"base_url: {problem}")
    if api_key_env is None and preset.key_required and not preset.key_envs:
        raise ValueError(f"provider {provider!r} needs api_key_env")
    key_envs = (api_key_env,) if api_key_env else preset.key_envs
    chosen = next((v for v in key_envs if env.get(v)), key_envs[0] if key_envs else None)
    disabled = None
    if (preset.key_required or api_key_env) and chosen and not env.get(chosen):
        disabled = f"{chosen} is not set"
    if provider == "azure" and api_version is None:
        api_version = AZURE_DEFAULT_API_VERSION
    return Target(
        name=name or f"{provider}/{model}",
        provider=provider,
        model=model,
        protocol=preset.protocol,
        base_url=url,
        api_key_env=chosen,
        prompt=prompt,
        max_tokens=max_tokens,
        interval_s=interval_s,
        api_version=api_version,
        disabled_reason=disabled,
        extra_headers=tuple(sorted((headers or {}).items())),
    )


async def probe_once(
    target: Target,
    *,
    api_key: str | None = None,
    timeouts: Timeouts | None = None,
    env: Mapping[str, str] | None = None,
    priced: bool = True,
) -> Sample:
    """Send one streamed request to ``target`` and return its :class:`Sample` (DESIGN 4: ts,
    connect/TTFT/latency/ITL in ms, tps, tokens, ok and error_kind, ...), as the monitor would
    record it. The key is ``api_key``, or the target's key variable read from ``env``
    (default: the process environment); it is never stored or logged, and is redacted from
    ``error_message``.

    Each call opens its own connection (a cold probe: ``connect_ms`` is part of the TTFT);
    for probes on an interval over kept-alive connections, run the monitor (:func:`watch`).
    A provider's failure is a sample with ``ok == 0`` and an ``error_kind``, never an
    exception; ValueError for a target that cannot be probed (disabled and its key variable
    still unset, an unknown protocol).
    ``priced``: fill ``cost_usd`` from genai-prices (loaded once per process, in a thread)."""
    if target.protocol not in PROTOCOLS:
        raise ValueError(f"target {target.name!r}: unknown protocol {target.protocol!r}; one of: {', '.join(sorted(PROTOCOLS))}")
    if api_key is None:
        source = os.environ if env is None else env
        api_key = source.get(target.api_key_env) if target.api_key_env else None
        if not api_key and target.disabled_reason is not None:  # its key variable is still unset
            raise ValueError(f"target {target.name!r} is disabled: {target.disabled_reason}")
    timeouts = timeouts or Timeouts()
    client = make_client(1, timeouts)
    try:
        sample = await stream.probe_once(client, target, api_key or None, timeouts)
    finally:
        with anyio.CancelScope(shield=True):
            await client.aclose()
    if priced and sample.cost_usd is None and (sample.tokens_in is not None or sample.tokens_out is not None):
        book = await anyio.to_thread.run_sync(_price_book)
        sample.cost_usd = book.cost_sample(sample)
    return sample


def probe_once_sync(
    target: Target,
    *,
    api_key: str | None = None,
    timeouts: Timeouts | None = None,
    env: Mapping[str, str] | None = None,
    priced: bool = True,
) -> Sample:
    """:func:`probe_once` for code without an event loop (a script, a notebook cell without
    top-level await): it runs its own. RuntimeError inside a running loop: await probe_once."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("probe_once_sync() was called inside a running event loop: use `await probe_once(...)`")

    async def run() -> Sample:
        return await probe_once(target, api_key=api_key, timeouts=timeouts, env=env, priced=priced)

    return anyio.run(run)


def _price_book() -> PriceBook:
    """genai-prices' bundled prices, loaded once per process (blocking: call from a thread)."""
    global _prices
    from llmscope_tui.costs import PriceBook

    with _prices_lock:
        if _prices is None:
            book = PriceBook([])
            book.snapshot()
            _prices = book
        return _prices


class Watch:
    """A running monitor's events as an async iterator, from :func:`watch`.

    Each event is a dict shaped as a headless log line (docs/headless.md): ``start``,
    ``sample`` (every DESIGN 4 field), ``violation``, ``incident``, ``alert``, ``budget``, ``error``,
    ``rebaseline``, ``stop``. Iteration ends after ``stop``."""

    def __init__(self, monitor: Monitor, receive: Any) -> None:
        self.monitor = monitor
        #: The run's summary once it has ended (None while it runs).
        self.summary: RunSummary | None = None
        #: Events not delivered because the consumer fell ``max_buffer`` events behind.
        self.dropped = 0
        self._receive = receive
        self._error: BaseException | None = None

    def __aiter__(self) -> Watch:
        return self

    async def __anext__(self) -> Event:
        try:
            event: Event = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        return event

    def stop(self, reason: str = "stopped", grace_s: float | None = None) -> None:
        """Ask the monitor to finish (probes in flight get ``grace_s``); iteration then ends
        with the ``stop`` event."""
        self.monitor.stop(reason, grace_s)


@asynccontextmanager
async def watch(
    settings: Settings,
    *,
    duration_s: float | None = None,
    count: int | None = None,
    max_buffer: int = 10_000,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Watch]:
    """Run a :class:`Monitor` on ``settings`` for the block's duration and iterate its events::

        async with watch(settings, count=20) as events:
            async for event in events:
                ...

    The run ends after ``count`` samples or ``duration_s`` seconds (or never: call
    ``events.stop()`` or leave the block, which stops it and waits for it to close the data
    file). ``settings`` come from :func:`~llmscope_tui.config.load_settings` or are built
    directly (``Settings(config_file=None, targets=[...], db_path=Path(...))``). An error that
    ends the run (the data file cannot be opened) is raised when the block exits, and so is an
    exception of the block itself, once the run has stopped (as itself, not in a group)."""
    from llmscope_tui.monitor import Monitor

    if max_buffer < 1:
        raise ValueError(f"max_buffer must be >= 1, got {max_buffer}")
    monitor = Monitor(settings, env=None if env is None else dict(env))
    send, receive = anyio.create_memory_object_stream[dict[str, Any]](max_buffer)
    events = Watch(monitor, receive)

    def deliver(event: Event) -> None:
        try:
            send.send_nowait(event)
        except anyio.WouldBlock:
            events.dropped += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the block was left: nobody reads any more

    monitor.subscribe(deliver)

    async def run() -> None:
        try:
            events.summary = await monitor.run(duration_s=duration_s, count=count)
        except Exception as exc:  # noqa: BLE001 - raised once the block exits, not wrapped in a group
            events._error = exc
        finally:
            send.close()

    body_error: Exception | None = None
    with receive:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            try:
                yield events
            except Exception as exc:  # noqa: BLE001 - the block's own: raised as itself, below
                body_error = exc
            finally:
                if events.summary is None and events._error is None:
                    monitor.stop("stopped")
    if body_error is not None:  # after the run stopped: not wrapped in the task group's ExceptionGroup
        raise body_error
    if events._error is not None:
        raise events._error


"""AlertRouter: cooldown, then delivery to the sinks.

1. the log, always: an ``{"event": "alert", ...}`` event through ``publish`` (the monitor's
   event bus, so the headless JSON-lines log, the TUI and the metrics all see it);
2. hooks, e.g. the TUI's bell / notification (a hook that raises is logged, never re-raised);
3. a webhook (``[alerts] webhook_url``), Slack-compatible: a JSON body with a ``text`` field
   (delivery and retries: :mod:`llmscope_tui.alerts.webhook`).

Cooldown
--------
Per ``Alert.key``: an alert whose key was *delivered* less than ``cooldown_s`` ago is
suppressed (counted in ``AlertRouter.suppressed``, sent to no sink, and it does not extend the
window). Incident alerts are keyed by incident and state (``incident:12:opened``), so they are
never suppressed by another incident's; budget alerts by budget and threshold.

The webhook queue
-----------------
:meth:`AlertRouter.submit` never blocks and never does I/O: it puts the alert on a bounded
in-memory queue that :meth:`AlertRouter.run` (a long-running task in the monitor's task group)
drains one alert at a time, in order, with its own ``httpx.AsyncClient``. Giving up on an alert
publishes one ``{"event": "error", "where": "alerts", ...}`` event. So one alert holds the queue
at most ``attempts x webhook_timeout_s`` plus the backoffs; probing is never held at all.

When the queue is full the *oldest* queued alert is dropped (the newest describes the current
state, which is what a reader of a backed-up channel needs most); drops are counted in
``dropped`` and one error event is published per overflow spell (re-armed once the queue has
drained).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from llmscope_tui.alerts.alert import Alert
from llmscope_tui.alerts.webhook import Webhook
from llmscope_tui.wire.errors import short

log = logging.getLogger("llmscope_tui.alerts")
log.addHandler(logging.NullHandler())

Hook = Callable[[Alert], None]


class AlertRouter:
    """Cooldown + delivery of alerts to the log, hooks and an optional webhook (module docstring).

    Counters (plain ints): ``delivered`` (passed the cooldown), ``suppressed`` (cooldown),
    ``dropped`` (webhook queue overflow or submitted after close), ``webhook_sent``,
    ``webhook_failed`` (gave up), ``undelivered_at_close``.
    """

    #: How long a shutdown may spend sending what is still queued.
    flush_timeout_s: float = 2.0

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        cooldown_s: float = 300.0,
        publish: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], float] = time.time,
        webhook_timeout_s: float = 5.0,
        webhook_retries: int = 3,
        backoff_s: float = 0.5,
        max_queue: int = 1000,
        max_backoff_s: float = 30.0,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        if webhook_retries < 0:
            raise ValueError(f"webhook_retries must be 0 or more, got {webhook_retries}")
        self.webhook_url = webhook_url or None
        self.cooldown_s = float(cooldown_s)
        self._publish = publish
        self.clock = clock
        self.max_queue = max_queue
        self._webhook: Webhook | None = None
        if self.webhook_url:
            self._webhook = Webhook(
                self.webhook_url,
                timeout_s=webhook_timeout_s,
                retries=webhook_retries,
                backoff_s=backoff_s,
                max_backoff_s=max_backoff_s,
            )
        self._hooks: list[Hook] = []
        self._last_delivered: dict[str, float] = {}
        # Only a router with a webhook has a queue (anyio warns about streams left unclosed).
        self._send: MemoryObjectSendStream[Alert] | None = None
        self._receive: MemoryObjectReceiveStream[Alert] | None = None
        if self._webhook is not None:
            self._send, self._receive = anyio.create_memory_object_stream[Alert](
                max_buffer_size=max_queue
            )
        self._overflow_reported = False
        self._closed = False
        self._running = False
        self._run_done: anyio.Event | None = None
        self._run_scope: anyio.CancelScope | None = None
        self._abandon = False
        self._current: Alert | None = None
        self.delivered = 0
        self.suppressed = 0
        self.dropped = 0
        self.webhook_sent = 0
        self.webhook_failed = 0
        self.undelivered_at_close = 0

    # -- public, synchronous -------------------------------------------------------------------

    @property
    def webhook_label(self) -> str | None:
        """The webhook as it may be shown: ``scheme://host/…``."""
        return self._webhook.label if self._webhook is not None else None

    @property
    def queued(self) -> int:
        """Alerts waiting for the webhook (not counting one being delivered)."""
        if self._receive is None:
            return 0
        return self._receive.statistics().current_buffer_used

    def add_hook(self, fn: Hook) -> None:
        """Call ``fn(alert)`` for every delivered alert (e.g. the TUI's bell/notification)."""
        self._hooks.append(fn)

    def remove_hook(self, fn: Hook) -> None:
        if fn in self._hooks:
            self._hooks.remove(fn)

    def submit(self, alert: Alert) -> bool:
        """Deliver ``alert`` unless its key is cooling down; never blocks, never raises for a sink.

        Returns True when delivered (log event published, hooks called, webhook queued),
        False when suppressed by the cooldown. Not thread-safe: call it from the event loop
        that runs :meth:`run` (the monitor's).
        """
        now = self.clock()
        last = self._last_delivered.get(alert.key)
        # A clock stepped backwards (NTP) must not mute a key for the size of the step.
        if last is not None and 0 <= now - last < self.cooldown_s:
            self.suppressed += 1
            log.debug("alert suppressed by cooldown: %s", alert.key)
            return False
        self._last_delivered[alert.key] = now
        if len(self._last_delivered) > 4096:
            self._forget_expired(now)
        self.delivered += 1
        self._emit(alert.to_event())
        for hook in list(self._hooks):
            try:
                hook(alert)
            except Exception as exc:  # broad on purpose: a hook's bug must not stop the others
                log.exception("alert hook %r failed", hook)
                self._error(f"alert hook failed: {type(exc).__name__}: {short(str(exc), 200)}")
        if self._send is not None:
            self._enqueue(alert)
        return True

    def reset_cooldown(self, key: str | None = None) -> None:
        """Forget when ``key`` (or every key) was last delivered."""
        if key is None:
            self._last_delivered.clear()
        else:
            self._last_delivered.pop(key, None)

    # -- sinks ---------------------------------------------------------------------------------

    def _emit(self, event: dict[str, Any]) -> None:
        if self._publish is None:
            log.info("%s", event.get("text") or event.get("message"))
            return
        try:
            self._publish(event)
        except Exception:  # broad on purpose: a subscriber's bug must not stop the alert
            log.exception("publishing an alert event failed")

    def _error(self, message: str, **extra: Any) -> None:
        event = {"event": "error", "ts": self.clock(), "where": "alerts", "message": message}
        self._emit({**event, **extra})

    def _forget_expired(self, now: float) -> None:
        for key, when in list(self._last_delivered.items()):
            if now - when >= self.cooldown_s:
                del self._last_delivered[key]

    def _enqueue(self, alert: Alert) -> None:
        assert self._send is not None and self._receive is not None
        if self._closed:
            self.dropped += 1
            log.warning("alert not sent to the webhook: the router is closed")
            return
        try:
            self._send.send_nowait(alert)
            return
        except anyio.WouldBlock:
            pass
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1
            return
        # Full: drop the oldest queued alert, keep the newest.
        try:
            self._receive.receive_nowait()
        except (anyio.WouldBlock, anyio.EndOfStream):
            pass
        self.dropped += 1
        try:
            self._send.send_nowait(alert)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self.dropped += 1
        if not self._overflow_reported:
            self._overflow_reported = True
            self._error(
                f"webhook queue full ({self.max_queue} alerts waiting for {self.webhook_label}): "
                f"dropping the oldest; {self.dropped} dropped so far"
            )

    # -- webhook delivery ----------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        assert self._webhook is not None
        return self._webhook.client()

    async def run(self) -> None:
        """Deliver queued alerts to the webhook, one at a time, until :meth:`aclose` (or cancel).

        Start it in the monitor's task group. Without a webhook it returns at once. Cancelled
        from outside, it first tries (shielded, for at most ``flush_timeout_s`` = 2 s) to send
        what is queued, then re-raises the cancellation.
        """
        if self._receive is None or self._running or self._closed:
            return
        receive = self._receive
        self._running = True
        self._run_done = anyio.Event()
        try:
            async with self._client() as client:
                with anyio.CancelScope() as scope:
                    self._run_scope = scope
                    try:
                        async for alert in receive:
                            self._current = alert
                            await self._deliver(client, alert)
                            self._current = None
                            if self.queued == 0:
                                self._overflow_reported = False
                    except anyio.get_cancelled_exc_class():
                        if not self._abandon and not scope.cancel_called:
                            with anyio.CancelScope(shield=True):
                                await self._flush(client, self.flush_timeout_s)
                                self._report_left()
                        raise
        finally:
            self._running = False
            self._run_scope = None
            self._run_done.set()

    async def aclose(self, timeout_s: float | None = None) -> None:
        """Stop taking alerts for the webhook; flush the queue within ``timeout_s`` (default 2 s).

        If :meth:`run` is running, it drains the queue and returns; after the bound it is
        cancelled. If it never ran, the queue is flushed here. What is left undelivered is
        counted in ``undelivered_at_close`` and reported in one error event.
        """
        if self._closed:
            return
        self._closed = True
        bound = self.flush_timeout_s if timeout_s is None else timeout_s
        if self._send is None or self._receive is None:
            return
        self._send.close()
        if self._running and self._run_done is not None:
            with anyio.move_on_after(bound):
                await self._run_done.wait()
            if self._running and self._run_scope is not None:
                self._abandon = True
                self._run_scope.cancel()
                with anyio.move_on_after(1.0):
                    await self._run_done.wait()
        elif self.queued:
            async with self._client() as client:
                await self._flush(client, bound)
        self._report_left()
        self._receive.close()

    def _report_left(self) -> None:
        """Count and report what a shutdown leaves undelivered, then forget it."""
        left = self.queued + (1 if self._current is not None else 0)
        self._discard_queue()
        self._current = None
        if left:
            self.undelivered_at_close += left
            where = self.webhook_label
            self._error(f"shutdown: {left} alert(s) not delivered to the webhook {where}")

    def _discard_queue(self) -> None:
        if self._receive is None:
            return
        while True:
            try:
                self._receive.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return

    async def _flush(self, client: httpx.AsyncClient, bound: float) -> None:
        if self._receive is None:
            return
        with anyio.move_on_after(bound):
            if self._current is not None:
                await self._deliver(client, self._current)
                self._current = None
            while True:
                try:
                    alert = self._receive.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    return
                self._current = alert
                await self._deliver(client, alert)
                self._current = None

    async def _deliver(self, client: httpx.AsyncClient, alert: Alert) -> bool:
        """POST one alert with retries; True when the receiver took it."""
        assert self._webhook is not None
        result = await self._webhook.deliver(client, alert)
        if result.sent:
            self.webhook_sent += 1
            return True
        self.webhook_failed += 1
        plural = "attempt" if result.attempts == 1 else "attempts"
        self._error(
            f"webhook delivery failed after {result.attempts} {plural}: {result.reason}",
            target=alert.target,
            webhook=self.webhook_label,
        )
        return False

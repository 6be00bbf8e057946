"""Alerts: incidents and budget thresholds -> sinks.

An :class:`Alert` is one thing a human should hear about, with one plain-English line of text.
Incidents (DESIGN 6b: a sound and large enough change of a target, its errors, or it going down)
and budget thresholds are the only things that alert: single rule firings never do, so a person
is not flooded. The monitor builds alerts with :func:`incident_alert`, :func:`budget_alert` and
:func:`budget_event_alert` and hands them to an :class:`AlertRouter`, which delivers them to the
sinks:

1. the log, always: an ``{"event": "alert", ...}`` event through ``publish`` (the monitor's
   event bus, so the headless JSON-lines log, the TUI and the metrics all see it);
2. hooks, e.g. the TUI's bell / notification (a hook that raises is logged, never re-raised);
3. a webhook (``[alerts] webhook_url``), Slack-compatible: a JSON body with a ``text`` field.

Cooldown
--------
Per ``Alert.key``: an alert whose key was *delivered* less than ``cooldown_s`` ago is
suppressed (counted in ``AlertRouter.suppressed``, sent to no sink, and it does not extend the
window). Incident alerts are keyed by incident and state (``incident:12:opened``), so they are
never suppressed by another incident's; budget alerts by budget and threshold.

Webhook delivery
----------------
:meth:`AlertRouter.submit` never blocks and never does I/O: it puts the alert on a bounded
in-memory queue that :meth:`AlertRouter.run` (a long-running task in the monitor's task group)
drains one alert at a time, in order, with its own ``httpx.AsyncClient``. Each attempt is bounded
by ``webhook_timeout_s`` as a whole (not only per socket operation). Connect errors, other
transport errors, timeouts, 429 and 5xx are retried up to ``webhook_retries`` times with
exponential backoff (``backoff_s`` x 2^n), or after ``Retry-After`` when the receiver sends one,
both capped at ``max_backoff_s``. Other statuses (4xx, 3xx) are not retried. Giving up publishes
one ``{"event": "error", "where": "alerts", ...}`` event. So one alert holds the queue at most
``attempts x webhook_timeout_s`` plus the backoffs; probing is never held at all.

When the queue is full the *oldest* queued alert is dropped (the newest describes the current
state, which is what a reader of a backed-up channel needs most); drops are counted in
``dropped`` and one error event is published per overflow spell (re-armed once the queue has
drained).

Webhook URLs are secrets (a Slack webhook URL *is* its credential): messages and events show
only ``scheme://host/…`` (see :func:`redact_url`).

Nothing here imports Textual.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from llmscope_tui import __version__
from llmscope_tui.costs import format_usd
from llmscope_tui.durations import format_duration
from llmscope_tui.probe.errors import parse_retry_after, short

if TYPE_CHECKING:
    from llmscope_tui.costs import BudgetEvent
    from llmscope_tui.incidents import IncidentChange

__all__ = [
    "Alert",
    "AlertKind",
    "AlertRouter",
    "Severity",
    "budget_alert",
    "budget_event_alert",
    "format_duration",
    "incident_alert",
    "redact_url",
]

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

AlertKind = Literal["incident", "budget"]
Severity = Literal["info", "warning", "critical"]

ALERT_KINDS: tuple[str, ...] = ("incident", "budget")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


@dataclass(frozen=True)
class Alert:
    """One thing to tell a human.

    kind: "incident" | "budget".
    target: the target it is about, or None (budgets).
    key: what the cooldown is keyed on, e.g. ``"incident:12:opened"``, ``"budget:all:0.8"``.
    text: one plain-English line, e.g. "demo-anthropic: incident #3 TTFT +82 % (520 -> 946 ms)".
    ts: epoch seconds of what happened. severity: "info" | "warning" | "critical".
    details: JSON-serialisable facts for machines (the log event and the webhook body carry it).
    """

    kind: AlertKind
    target: str | None
    key: str
    text: str
    ts: float
    severity: Severity = "warning"
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r} (expected one of {', '.join(ALERT_KINDS)})")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r} (expected one of {', '.join(SEVERITIES)})")

    def to_event(self) -> dict[str, Any]:
        """The log event: ``{"event": "alert", "ts", "kind", "target", "severity", "text", "details"}``."""
        return {
            "event": "alert",
            "ts": self.ts,
            "kind": self.kind,
            "target": self.target,
            "severity": self.severity,
            "text": self.text,
            "details": dict(self.details),
        }

    def webhook_body(self) -> dict[str, Any]:
        """The Slack-compatible JSON body: ``text`` plus fields Slack ignores and others may use."""
        return {
            "text": self.text,
            "kind": self.kind,
            "target": self.target,
            "severity": self.severity,
            "ts": self.ts,
            "details": dict(self.details),
        }


# --------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------

def redact_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/secret`` -> ``https://hooks.slack.com/…``.

    Userinfo (``user:pass@``), path, query and fragment are all dropped.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<webhook>"
    if not parts.scheme or not host:
        return "<webhook>"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme}://{netloc}/…"


# --------------------------------------------------------------------------------------------
# Constructors
# --------------------------------------------------------------------------------------------

def incident_alert(change: IncidentChange) -> Alert | None:
    """An incident that opened, grew worse or closed, as an alert; None for an update that
    does not change what a person should do (effects moving, a rule added).

    Opened: the incident's severity (critical when the target is down). Updated: only when it
    escalates (the target went down, errors joined a latency incident, the scope widened to the
    provider or to every target). Closed: info. Key: ``incident:<id>:<what>``.
    """
    incident = change.incident
    what: str = change.state
    if change.state == "updated":
        escalated = change.escalation
        if escalated is None:
            return None
        what = escalated
    severity: Severity = "info" if change.state == "closed" else incident.severity
    return Alert(
        kind="incident",
        target=incident.target,
        key=f"incident:{incident.id}:{what}",
        text=incident.text(change.ts),
        ts=float(change.ts),
        severity=severity,
        details={
            "id": incident.id,
            "state": change.state,
            "scope": incident.scope,
            "metrics": [m.as_dict() for m in incident.metrics.values()],
            "rules": sorted(incident.rules),
            "error_kind": incident.error_kind,
            "down": incident.down,
            "start_ts": incident.start_ts,
            "resolution": incident.resolution,
        },
    )


def _period_words(period: str) -> str:
    return {"day": "today", "month": "this month"}.get(period, f"this {period}")


def _budget_severity(fraction: float) -> Severity:
    if fraction >= 1.0 - 1e-9:
        return "critical"
    if fraction >= 0.8 - 1e-9:
        return "warning"
    return "info"


def budget_alert(
    name: str,
    threshold: float,
    spent: float,
    limit: float,
    period: str = "month",
    *,
    projected: float | None = None,
    ts: float | None = None,
) -> Alert:
    """A budget reached ``threshold`` (a fraction: 0.5, 0.8, 1.0) of its limit.

    Text: 'budget "all" reached 80 %: $40.00 of $50.00 this month, $61.20 projected'.
    Key: "budget:<name>:<threshold>". Severity: critical at 100 %, warning from 80 %, else info.
    """
    text = f'budget "{name}" reached {threshold * 100:.0f} %: {format_usd(spent)} of {format_usd(limit)} '
    text += _period_words(period)
    if projected is not None and projected > spent:
        text += f", {format_usd(projected)} projected"
    return Alert(
        kind="budget",
        target=None,
        key=f"budget:{name}:{threshold:g}",
        text=text,
        ts=float(time.time() if ts is None else ts),
        severity=_budget_severity(threshold),
        details={
            "budget": name,
            "threshold": threshold,
            "spent_usd": spent,
            "limit_usd": limit,
            "period": period,
            "projected_usd": projected,
        },
    )


def budget_event_alert(event: BudgetEvent, *, ts: float | None = None) -> Alert:
    """A ``costs.BudgetEvent`` ("threshold", "paused" or "resumed") as an alert.

    Thresholds go through :func:`budget_alert`; "paused"/"resumed" keep the event's message,
    with key "budget:<name>:paused" / "budget:<name>:resumed".
    """
    status = event.status
    if event.kind == "threshold" and event.threshold is not None:
        return budget_alert(
            event.budget, event.threshold, status.spent, status.limit, status.period, projected=status.projected, ts=ts
        )
    return Alert(
        kind="budget",
        target=None,
        key=f"budget:{event.budget}:{event.kind}",
        text=event.message,
        ts=float(time.time() if ts is None else ts),
        severity="warning" if event.kind == "paused" else "info",
        details={
            "budget": event.budget,
            "action": event.kind,
            "spent_usd": status.spent,
            "limit_usd": status.limit,
            "period": status.period,
        },
    )


# --------------------------------------------------------------------------------------------
# The router
# --------------------------------------------------------------------------------------------

Hook = Callable[[Alert], None]


class _Permanent(Exception):
    """A webhook failure not worth retrying."""


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


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
        self.webhook_timeout_s = float(webhook_timeout_s)
        self.webhook_retries = int(webhook_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.max_queue = max_queue
        self._hooks: list[Hook] = []
        self._last_delivered: dict[str, float] = {}
        # Only a router with a webhook has a queue (anyio warns about streams left unclosed).
        self._send: MemoryObjectSendStream[Alert] | None = None
        self._receive: MemoryObjectReceiveStream[Alert] | None = None
        if self.webhook_url:
            self._send, self._receive = anyio.create_memory_object_stream[Alert](max_buffer_size=max_queue)
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
        return redact_url(self.webhook_url) if self.webhook_url else None

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
            except Exception as exc:
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
        except Exception:
            log.exception("publishing an alert event failed")

    def _error(self, message: str, **extra: Any) -> None:
        self._emit({"event": "error", "ts": self.clock(), "where": "alerts", "message": message, **extra})

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
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.webhook_timeout_s),
            follow_redirects=False,
            headers={"user-agent": f"llmscope-tui/{__version__}", "content-type": "application/json"},
        )

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
        """Stop taking alerts for the webhook and flush the queue within ``timeout_s`` (default 2 s).

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
            self._error(f"shutdown: {left} alert(s) not delivered to the webhook {self.webhook_label}")

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
        assert self.webhook_url is not None
        try:
            body = json.dumps(alert.webhook_body(), default=str, ensure_ascii=False).encode()
        except (TypeError, ValueError):  # details that do not serialise: the text still goes out
            log.exception("alert details are not JSON-serialisable")
            body = json.dumps({"text": alert.text, "kind": alert.kind, "target": alert.target}).encode()
        attempts = 0
        max_attempts = 1 + self.webhook_retries
        reason = "no attempt"
        while attempts < max_attempts:
            attempts += 1
            try:
                await self._attempt(client, body)
            except _Permanent as exc:
                reason = str(exc)
                break
            except _Retryable as exc:
                reason = str(exc)
                if attempts >= max_attempts:
                    break
                delay = self.backoff_s * (2 ** (attempts - 1))
                if exc.retry_after is not None:
                    delay = exc.retry_after
                delay = min(max(delay, 0.0), self.max_backoff_s)
                log.info("webhook attempt %d failed (%s); retrying in %.2fs", attempts, reason, delay)
                await anyio.sleep(delay)
            except Exception as exc:  # a bug or an unexpected library error: never kill run()
                log.exception("webhook delivery failed unexpectedly")
                reason = self._scrub(short(f"{type(exc).__name__}: {exc}", 200))
                break
            else:
                self.webhook_sent += 1
                return True
        self.webhook_failed += 1
        plural = "attempt" if attempts == 1 else "attempts"
        self._error(
            f"webhook delivery failed after {attempts} {plural}: {reason}",
            target=alert.target,
            webhook=self.webhook_label,
        )
        return False

    async def _attempt(self, client: httpx.AsyncClient, body: bytes) -> None:
        assert self.webhook_url is not None
        try:
            with anyio.fail_after(self.webhook_timeout_s):
                response = await client.post(self.webhook_url, content=body)
        except TimeoutError:
            raise _Retryable(f"no answer within {self.webhook_timeout_s:g}s") from None
        except httpx.TimeoutException:
            raise _Retryable(f"no answer within {self.webhook_timeout_s:g}s") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
            raise _Permanent(self._scrub(f"{type(exc).__name__}: {exc}")) from None
        except httpx.TransportError as exc:
            raise _Retryable(self._scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)) from None
        except httpx.HTTPError as exc:  # e.g. a body that does not decode
            raise _Permanent(self._scrub(f"{type(exc).__name__}: {exc}")) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        snippet = self._scrub(short(response.text, 200)) if response.content else ""
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        if snippet:
            reason += f": {snippet}"
        if status == 429 or 500 <= status <= 599:
            raise _Retryable(reason, parse_retry_after(response.headers.get("retry-after")))
        raise _Permanent(reason)

    def _scrub(self, text: str) -> str:
        """Remove the webhook URL (and its path) from text that may have echoed it."""
        url = self.webhook_url or ""
        if url:
            text = text.replace(url, self.webhook_label or "<webhook>")
            try:
                parts = urlsplit(url)
            except ValueError:
                return text
            for secret in (parts.path, parts.query, parts.password or "", parts.username or ""):
                if secret and secret != "/" and len(secret) >= 4:
                    text = text.replace(secret, "/…")
        return text

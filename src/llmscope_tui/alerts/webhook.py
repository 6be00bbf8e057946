"""Webhook delivery: POST one alert, retry what is worth retrying, never leak the URL.

Each attempt is bounded by ``timeout_s`` as a whole (not only per socket operation). Connect
errors, other transport errors, timeouts, 429 and 5xx are retried up to ``retries`` times with
exponential backoff (``backoff_s`` x 2^n plus up to ``backoff_s`` of random jitter), or after
``Retry-After`` when the receiver sends one; both are capped at ``max_backoff_s``. Other
statuses (4xx, 3xx) are not retried. The retry loop is stamina's (tenacity underneath):
``stamina.set_testing(True)`` makes every wait zero in tests.

Webhook URLs are secrets (a Slack webhook URL *is* its credential): messages show only
``scheme://host/…`` (see :func:`redact_url`), and text that may echo the URL is scrubbed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx
import stamina

from llmscope_tui import __version__
from llmscope_tui.alerts.alert import Alert
from llmscope_tui.redaction import scrub
from llmscope_tui.wire.errors import parse_retry_after, short

log = logging.getLogger("llmscope_tui.alerts")
# stamina also announces each retry, at WARNING on its own logger. With no logging configured
# (headless, the TUI) Python would print that to stderr; our own line above says more.
logging.getLogger("stamina").addHandler(logging.NullHandler())


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


class _Failed(Exception):
    """An attempt that did not deliver; the message says why (already scrubbed)."""


class _Permanent(_Failed):
    """A webhook failure not worth retrying."""


class _Retryable(_Failed):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Delivery:
    """How one alert's delivery ended: ``sent``, after ``attempts``; ``reason`` when not sent."""

    sent: bool
    attempts: int
    reason: str = ""


class Webhook:
    """One receiver URL and its delivery policy (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.url = url
        self.label = redact_url(url)
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s),
            follow_redirects=False,
            headers={
                "user-agent": f"llmscope-tui/{__version__}",
                "content-type": "application/json",
            },
        )

    async def deliver(self, client: httpx.AsyncClient, alert: Alert) -> Delivery:
        """POST one alert with retries. Never raises for a failure (only for cancellation)."""
        body = _body(alert)
        attempts = 1 + self.retries
        tried = 0
        try:
            async for attempt in stamina.retry_context(
                on=self._retry_wait,
                attempts=attempts,
                timeout=None,
                wait_initial=self.backoff_s,
                wait_max=self.max_backoff_s,
                wait_jitter=self.backoff_s,
                wait_exp_base=2,
            ):
                with attempt:
                    tried = attempt.num
                    try:
                        await self._attempt(client, body)
                    except _Retryable as exc:
                        if tried < attempts:
                            self._log_retry(tried, exc, attempt.next_wait)
                        raise
        except _Failed as exc:
            return Delivery(False, tried, str(exc))
        except Exception as exc:  # broad on purpose: a bug here must not stop the router
            log.exception("webhook delivery failed unexpectedly")
            return Delivery(False, tried, self.scrub(short(f"{type(exc).__name__}: {exc}", 200)))
        return Delivery(True, tried)

    def _log_retry(self, tried: int, exc: _Retryable, backoff: float) -> None:
        wait = self._retry_after(exc)
        words = f"{backoff:.2f}s + jitter" if wait is None else f"{wait:.2f}s"
        log.info("webhook attempt %d failed (%s); retrying in %s", tried, exc, words)

    def _retry_after(self, exc: _Retryable) -> float | None:
        """The receiver's Retry-After, capped at ``max_backoff_s``; None when it sent none."""
        if exc.retry_after is None:
            return None
        return min(max(exc.retry_after, 0.0), self.max_backoff_s)

    def _retry_wait(self, exc: Exception) -> bool | float:
        """stamina's hook: retry this? With a Retry-After, wait exactly that long."""
        if not isinstance(exc, _Retryable):
            return False
        wait = self._retry_after(exc)
        return True if wait is None else wait

    async def _attempt(self, client: httpx.AsyncClient, body: bytes) -> None:
        try:
            with anyio.fail_after(self.timeout_s):
                response = await client.post(self.url, content=body)
        except (TimeoutError, httpx.TimeoutException):
            raise _Retryable(f"no answer within {self.timeout_s:g}s") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as exc:
            raise _Permanent(self.scrub(f"{type(exc).__name__}: {exc}")) from None
        except httpx.TransportError as exc:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise _Retryable(self.scrub(text)) from None
        except httpx.HTTPError as exc:  # e.g. a body that does not decode
            raise _Permanent(self.scrub(f"{type(exc).__name__}: {exc}")) from None
        status = response.status_code
        if 200 <= status < 300:
            return
        snippet = self.scrub(short(response.text, 200)) if response.content else ""
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        if snippet:
            reason += f": {snippet}"
        if status == 429 or 500 <= status <= 599:
            raise _Retryable(reason, parse_retry_after(response.headers.get("retry-after")))
        raise _Permanent(reason)

    def scrub(self, text: str) -> str:
        """Remove the webhook URL (and its path) from text that may have echoed it."""
        url = self.url
        if url:
            text = text.replace(url, self.label)
            try:
                parts = urlsplit(url)
            except ValueError:
                return text
            for secret in (parts.path, parts.query, parts.password or "", parts.username or ""):
                if secret and secret != "/" and len(secret) >= 4:
                    text = text.replace(secret, "/…")
        return text


def _body(alert: Alert) -> bytes:
    """The JSON the receiver gets, keys redacted (a webhook is an output like any other)."""
    try:
        return scrub(json.dumps(alert.webhook_body(), default=str, ensure_ascii=False)).encode()
    except (TypeError, ValueError):  # details that do not serialise: the text still goes out
        log.exception("alert details are not JSON-serialisable")
        fallback = {"text": alert.text, "kind": alert.kind, "target": alert.target}
        return scrub(json.dumps(fallback)).encode()

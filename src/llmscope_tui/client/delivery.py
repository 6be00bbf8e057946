"""Posting batches of records to the ingest endpoint, retried while the endpoint is away.

Retries are stamina's (exponential backoff with jitter, 0.5 s doubling to at most 30 s);
``stamina.set_testing(True, attempts=n)`` makes them immediate and bounded in tests.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx
import stamina

from llmscope_tui import redaction
from llmscope_tui.loopback import is_loopback
from llmscope_tui.wire.errors import error_text

log = logging.getLogger("llmscope_tui.client")

_WAIT_INITIAL_S = 0.5
_WAIT_MAX_S = 30.0
_WAIT_JITTER_S = 0.5


class EndpointAway(Exception):
    """The endpoint is not there now (no connection, 408, 429 or 5xx): the batch is retried."""


class _GiveUp(Exception):
    """The reporter is closing and out of time: stop retrying this batch."""


class _OwnRetries(logging.Filter):
    """Keeps stamina's per-retry log line out of the app's log: we warn once per streak."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(getattr(record, "stamina.callable", "")).startswith(__name__)


logging.getLogger("stamina").addFilter(_OwnRetries())


class Delivery:
    """One endpoint's sending side: the HTTP client, the retry policy, the once-a-streak warning."""

    def __init__(self, endpoint: str, api_key: str | None, send_timeout_s: float) -> None:
        self.endpoint = endpoint
        self._api_key = api_key
        redaction.remember(api_key)  # what the endpoint answers may quote it
        self._send_timeout_s = send_timeout_s
        self._http: httpx.Client | None = None
        #: Attempts the endpoint did not take (it was away), and the last problem seen.
        self.send_failures = 0
        self.last_error: str | None = None

    def deliver(self, batch: list[dict[str, Any]], before_retry: Callable[[], bool]) -> bool:
        """Post ``batch`` until it is taken (True) or refused for good (False).

        While the endpoint is away it is retried with backoff, for as long as ``before_retry``
        (run before each retry) returns True; when it returns False the batch is given up.
        """
        tries = 0

        @stamina.retry(
            on=EndpointAway,
            attempts=None,  # until delivered, refused, or given up at close
            timeout=None,
            wait_initial=_WAIT_INITIAL_S,
            wait_max=_WAIT_MAX_S,
            wait_jitter=_WAIT_JITTER_S,
        )
        def attempt() -> bool:
            nonlocal tries
            tries += 1
            if tries > 1 and not before_retry():
                raise _GiveUp
            return self._post(batch)

        try:
            return attempt()
        except (_GiveUp, EndpointAway):  # EndpointAway: stamina's test mode bounds the attempts
            return False

    def _post(self, batch: list[dict[str, Any]]) -> bool:
        headers = {"content-type": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        if self._http is None:
            self._http = httpx.Client(
                timeout=httpx.Timeout(self._send_timeout_s), trust_env=not is_loopback(urlsplit(self.endpoint).hostname or "")
            )
        try:
            content = json.dumps(batch).encode()
        except (TypeError, ValueError) as exc:  # a hand-made record that is not JSON
            self._warn(f"sending to {self.endpoint} failed: {type(exc).__name__}")
            return False
        try:
            response = self._http.post(self.endpoint, content=content, headers=headers)
        except (httpx.HTTPError, OSError) as exc:
            self._away(f"cannot reach {self.endpoint}: {type(exc).__name__}")
        status = response.status_code
        if 200 <= status < 300:
            self.last_error = None
            return True
        if status in (408, 429) or status >= 500:
            self._away(f"{self.endpoint} answered {status}; retrying")
        message = ""
        try:
            message = error_text(str(response.json()["error"]["message"]), 200)
        except (ValueError, KeyError, TypeError):
            pass
        self._warn(f"{self.endpoint} refused {len(batch)} records with {status}: {message}")
        return False

    def _away(self, message: str) -> NoReturn:
        self.send_failures += 1
        self._warn(message)
        raise EndpointAway(message)

    def _warn(self, message: str) -> None:
        message = redaction.scrub(message)
        if message != self.last_error:  # once per streak, not per batch
            log.warning("llmscope client: %s", message)
        self.last_error = message

    def close(self) -> None:
        if self._http is not None:
            with contextlib.suppress(Exception):  # closing must not fail the reporter
                self._http.close()
            self._http = None

"""Alerts: cooldown, the log sink, hooks, webhook delivery (retries, timeouts, secrets), incident texts."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
import stamina

from conftest import ThreadedServer
from llmscope_tui.alerts import (
    Alert,
    AlertRouter,
    budget_alert,
    budget_event_alert,
    format_duration,
    incident_alert,
    redact_url,
)
from llmscope_tui.costs import Budget, BudgetAlerter, budget_status
from llmscope_tui.incidents import Incident, IncidentChange, MetricEffect
from llmscope_tui.server.app import Request, Response

SECRET_PATH = "/services/T0SECRET/B0SECRET/xyzSECRETtoken"

# Fast settings for every webhook test: short timeouts and backoffs, loopback only.
FAST = {"webhook_timeout_s": 0.3, "backoff_s": 0.02, "cooldown_s": 0.0}


def make_alert(n: int = 0, target: str = "demo", kind: str = "incident") -> Alert:
    return Alert(
        kind=kind,  # type: ignore[arg-type]
        target=target,
        key=f"{target}:rule1:ttft_ms:{n}",
        text=f"alert number {n}",
        ts=1_700_000_000.0 + n,
        severity="warning",
        details={"n": n},
    )


class Receiver:
    """A webhook receiver. ``script`` gives each request's behaviour in turn (the last one repeats):
    an int status, ("hang", seconds) or (status, headers)."""

    def __init__(self, script: list[Any] | None = None) -> None:
        self.script = script or [200]
        self.requests: list[dict[str, Any]] = []
        self.times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    async def __call__(self, request: Request) -> Response:
        with self._lock:
            index = len(self.requests)
            self.requests.append(
                {"path": request.path, "headers": request.headers, "json": json.loads(request.body or b"null")}
            )
            self.times.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            step = self.script[min(index, len(self.script) - 1)]
            if isinstance(step, tuple) and step[0] == "hang":
                await asyncio.sleep(step[1])
                return Response.text("too late")
            if isinstance(step, tuple):
                return Response.text("nope", step[0], step[1])
            if isinstance(step, int) and step >= 400:
                return Response.text(f"error {step} for {request.path}", step)
            return Response.text("ok", step)
        finally:
            with self._lock:
                self.in_flight -= 1

    @property
    def texts(self) -> list[str]:
        return [r["json"]["text"] for r in self.requests]


def serve(receiver: Receiver) -> ThreadedServer:
    return ThreadedServer(receiver, name="alerts-test-receiver")


async def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)


def errors(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "error"]


@pytest.fixture(autouse=True)
def no_backoff_waits() -> Any:
    """Retries happen as configured, but stamina skips every wait (one test turns it back on)."""
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


def retry_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]


# --------------------------------------------------------------------------------------------
# Cooldown, log sink, hooks
# --------------------------------------------------------------------------------------------


def test_cooldown_suppresses_repeats_of_a_key_within_the_window() -> None:
    now = [1000.0]
    events: list[dict[str, Any]] = []
    router = AlertRouter(cooldown_s=60.0, publish=events.append, clock=lambda: now[0])
    a, b = make_alert(1), make_alert(2)

    assert router.submit(a) is True
    now[0] += 30
    assert router.submit(a) is False  # same key inside the window
    assert router.submit(b) is True  # another key is independent
    now[0] += 29.9
    assert router.submit(a) is False  # 59.9 s after the last delivered one
    now[0] += 0.1
    assert router.submit(a) is True  # 60 s: the window (from the delivered one) has passed
    now[0] += 1
    assert router.submit(a) is False  # a new window started at the re-delivery
    assert router.suppressed == 3
    assert router.delivered == 3
    now[0] -= 3600  # the wall clock stepped back: the key is not muted for an hour
    assert router.submit(a) is True
    router.reset_cooldown()
    assert router.submit(a) is True
    texts = [e["text"] for e in events if e["event"] == "alert"]
    assert texts == ["alert number 1", "alert number 2", "alert number 1", "alert number 1", "alert number 1"]


def test_log_event_is_published_and_hooks_are_called_even_if_one_raises() -> None:
    events: list[dict[str, Any]] = []
    seen: list[Alert] = []
    router = AlertRouter(publish=events.append, cooldown_s=0)

    def broken(alert: Alert) -> None:
        raise RuntimeError("hook bug")

    router.add_hook(broken)
    router.add_hook(seen.append)
    alert = make_alert(7)
    assert router.submit(alert) is True
    assert router.submit(make_alert(8)) is True

    alert_events = [e for e in events if e["event"] == "alert"]
    assert alert_events[0] == {
        "event": "alert",
        "ts": alert.ts,
        "kind": "incident",
        "target": "demo",
        "severity": "warning",
        "text": "alert number 7",
        "details": {"n": 7},
    }
    assert len(alert_events) == 2
    json.dumps(alert_events)  # the log sink writes them as JSON lines
    assert [a.text for a in seen] == ["alert number 7", "alert number 8"]
    hook_errors = errors(events)
    assert len(hook_errors) == 2 and all("hook bug" in e["message"] for e in hook_errors)
    assert all(e["where"] == "alerts" for e in hook_errors)


def test_a_raising_publish_does_not_break_submit() -> None:
    def bad_publish(event: dict[str, Any]) -> None:
        raise ValueError("subscriber bug")

    seen: list[Alert] = []
    router = AlertRouter(publish=bad_publish)
    router.add_hook(seen.append)
    assert router.submit(make_alert()) is True
    assert len(seen) == 1


def test_alert_validates_kind_and_severity() -> None:
    with pytest.raises(ValueError):
        Alert(kind="nope", target=None, key="k", text="t", ts=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Alert(kind="budget", target=None, key="k", text="t", ts=0.0, severity="loud")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Webhook
# --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_webhook_gets_a_slack_compatible_json_body() -> None:
    receiver = Receiver([200])
    events: list[dict[str, Any]] = []
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + SECRET_PATH, publish=events.append, **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            router.submit(make_alert(1, target="demo-anthropic"))
            await wait_for(lambda: router.webhook_sent == 1)
            await router.aclose()
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == SECRET_PATH
    assert request["headers"]["content-type"] == "application/json"
    body = request["json"]
    assert body["text"] == "alert number 1"
    assert body["kind"] == "incident"
    assert body["target"] == "demo-anthropic"
    assert body["severity"] == "warning"
    assert body["ts"] == pytest.approx(1_700_000_001.0)
    assert errors(events) == []


@pytest.mark.anyio
async def test_webhook_retries_5xx_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="llmscope_tui.alerts")
    receiver = Receiver([500, 503, 200])
    events: list[dict[str, Any]] = []
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + SECRET_PATH, publish=events.append, webhook_retries=3, **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            router.submit(make_alert())
            await wait_for(lambda: router.webhook_sent == 1)
            await router.aclose()
    assert len(receiver.requests) == 3
    assert router.webhook_failed == 0
    assert errors(events) == []
    lines = retry_lines(caplog)
    assert [line.split(" (")[0] for line in lines] == ["webhook attempt 1 failed", "webhook attempt 2 failed"]
    assert "HTTP 500" in lines[0] and "HTTP 503" in lines[1] and "SECRET" not in " ".join(lines)


@pytest.mark.anyio
async def test_backoff_and_retry_after_really_wait_outside_tests() -> None:
    """With stamina's test mode off: an exponential backoff after a 500, the receiver's
    Retry-After after a 429 (lower bounds only, so a loaded machine cannot break it)."""
    receiver = Receiver([500, (429, {"retry-after": "0.25"}), 200])
    with stamina.set_testing(False), serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + "/hook", **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            router.submit(make_alert())
            await wait_for(lambda: router.webhook_sent == 1)
            await router.aclose()
    assert len(receiver.requests) == 3
    gaps = [b - a for a, b in zip(receiver.times, receiver.times[1:])]
    assert gaps[0] >= 0.015  # backoff_s = 0.02 (plus up to 0.02 s of jitter)
    assert gaps[1] >= 0.24  # the receiver's 0.25 s, not the backoff's 0.04 s


@pytest.mark.anyio
async def test_webhook_gives_up_after_the_retries_without_leaking_the_url() -> None:
    receiver = Receiver([500])
    events: list[dict[str, Any]] = []
    with serve(receiver) as server:
        url = server.base_url + SECRET_PATH
        router = AlertRouter(webhook_url=url, publish=events.append, webhook_retries=2, **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            router.submit(make_alert())
            await wait_for(lambda: router.webhook_failed == 1)
            await router.aclose()
    assert len(receiver.requests) == 3  # 1 attempt + 2 retries
    failures = errors(events)
    assert len(failures) == 1
    message = failures[0]["message"]
    assert failures[0]["where"] == "alerts"
    assert message.startswith("webhook delivery failed after 3 attempts: HTTP 500")
    dumped = json.dumps(events)
    for secret in ("SECRET", "/services/", url):
        assert secret not in dumped  # the receiver echoed the path in its body: scrubbed
    assert failures[0]["webhook"] == f"http://127.0.0.1:{server.port}/…"


@pytest.mark.anyio
async def test_webhook_honours_retry_after_on_429(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="llmscope_tui.alerts")
    receiver = Receiver([(429, {"retry-after": "0.25"}), 200])
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + "/hook", **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            router.submit(make_alert())
            await wait_for(lambda: router.webhook_sent == 1)
            await router.aclose()
    assert len(receiver.requests) == 2
    [line] = retry_lines(caplog)
    assert "HTTP 429" in line and line.endswith("retrying in 0.25s")  # not the 0.02 s backoff


@pytest.mark.anyio
async def test_retry_after_is_capped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="llmscope_tui.alerts")
    receiver = Receiver([(429, {"retry-after": "3600"}), 200])
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + "/hook", max_backoff_s=0.05, **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            router.submit(make_alert())
            await wait_for(lambda: router.webhook_sent == 1)
            await router.aclose()
    assert len(receiver.requests) == 2
    [line] = retry_lines(caplog)
    assert line.endswith("retrying in 0.05s")


@pytest.mark.anyio
async def test_webhook_4xx_is_not_retried() -> None:
    receiver = Receiver([404, 200])
    events: list[dict[str, Any]] = []
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + SECRET_PATH, publish=events.append, **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            router.submit(make_alert(1))
            router.submit(make_alert(2))
            await wait_for(lambda: router.webhook_sent == 1)
            await router.aclose()
    # Deliveries are sequential: a retry of alert 1 would have come before alert 2.
    assert receiver.texts == ["alert number 1", "alert number 2"]
    assert router.webhook_failed == 1
    [failure] = errors(events)
    assert failure["message"].startswith("webhook delivery failed after 1 attempt: HTTP 404")
    assert "SECRET" not in failure["message"]


@pytest.mark.anyio
@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_a_hanging_receiver_times_out_and_later_alerts_still_go_through() -> None:
    # Alert 1: both attempts hang (0.3 s timeout each); alert 2 is answered at once.
    receiver = Receiver([("hang", 10.0), ("hang", 10.0), 200])
    events: list[dict[str, Any]] = []
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + "/hook", publish=events.append, webhook_retries=1, **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            started = time.monotonic()
            router.submit(make_alert(1))
            router.submit(make_alert(2))
            # submit never waits for the network: it is a plain call, and nothing has been sent
            # when it returns (delivery runs in router.run, which has not had a turn yet)
            assert receiver.texts == [] and router.webhook_sent == 0
            await wait_for(lambda: router.webhook_sent == 1, timeout=8.0)
            elapsed = time.monotonic() - started
            await router.aclose()
    # 2 attempts x 0.3 s (no backoff wait in tests), plus slack; never the receiver's 2 x 10 s.
    assert 0.55 <= elapsed < 5.0
    assert router.webhook_failed == 1
    assert receiver.texts == ["alert number 1", "alert number 1", "alert number 2"]
    [failure] = errors(events)
    assert failure["message"] == "webhook delivery failed after 2 attempts: no answer within 0.3s"


@pytest.mark.anyio
async def test_a_refused_connection_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    events: list[dict[str, Any]] = []
    router = AlertRouter(webhook_url=f"http://127.0.0.1:{port}{SECRET_PATH}", publish=events.append, webhook_retries=2, **FAST)
    async with anyio.create_task_group() as tg:
        tg.start_soon(router.run)
        router.submit(make_alert())
        await wait_for(lambda: router.webhook_failed == 1)
        await router.aclose()
    [failure] = errors(events)
    assert failure["message"].startswith("webhook delivery failed after 3 attempts: ConnectError")
    assert "SECRET" not in failure["message"]


@pytest.mark.anyio
async def test_deliveries_are_sequential_and_ordered() -> None:
    receiver = Receiver([200])
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + "/hook", **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            for n in range(6):
                router.submit(make_alert(n))
            await wait_for(lambda: router.webhook_sent == 6)
            await router.aclose()
    assert receiver.texts == [f"alert number {n}" for n in range(6)]
    assert receiver.max_in_flight == 1


@pytest.mark.anyio
async def test_queue_overflow_drops_the_oldest_and_reports_once() -> None:
    receiver = Receiver([200])
    events: list[dict[str, Any]] = []
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + "/hook", publish=events.append, max_queue=2, **FAST)
        for n in range(5):  # run() not started yet: the queue fills up
            assert router.submit(make_alert(n)) is True
        assert router.dropped == 3
        assert router.queued == 2
        overflow = errors(events)
        assert len(overflow) == 1 and "queue full" in overflow[0]["message"]
        assert len([e for e in events if e["event"] == "alert"]) == 5  # the log sink saw them all
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            await wait_for(lambda: router.webhook_sent == 2)
            await router.aclose()
    assert receiver.texts == ["alert number 3", "alert number 4"]


@pytest.mark.anyio
async def test_aclose_flushes_what_is_queued() -> None:
    receiver = Receiver([200])
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + "/hook", **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            for n in range(3):
                router.submit(make_alert(n))
            await router.aclose()
        assert router.webhook_sent == 3
        assert router.undelivered_at_close == 0
        # After close: the log sink still works, the webhook is not used.
        assert router.submit(make_alert(9)) is True
        assert router.dropped == 1
    assert len(receiver.requests) == 3


@pytest.mark.anyio
async def test_aclose_without_run_flushes_inline() -> None:
    receiver = Receiver([200])
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + "/hook", **FAST)
        router.submit(make_alert(1))
        await router.aclose()
    assert receiver.texts == ["alert number 1"]


@pytest.mark.anyio
async def test_aclose_gives_up_on_a_hanging_receiver_within_its_bound() -> None:
    receiver = Receiver([("hang", 10.0)])
    events: list[dict[str, Any]] = []
    with serve(receiver) as server:
        router = AlertRouter(
            webhook_url=server.base_url + "/hook", publish=events.append, webhook_timeout_s=5.0, backoff_s=0.02
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            for n in range(3):
                router.submit(make_alert(n))
            await wait_for(lambda: len(receiver.requests) == 1)
            started = time.monotonic()
            await router.aclose(timeout_s=0.2)
            assert time.monotonic() - started < 1.0
    assert router.undelivered_at_close == 3
    assert any("not delivered" in e["message"] for e in errors(events))


@pytest.mark.anyio
async def test_cancelling_run_flushes_within_a_bound() -> None:
    receiver = Receiver([200])
    with serve(receiver) as server:
        router = AlertRouter(webhook_url=server.base_url + "/hook", **FAST)
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.run)
            await anyio.sleep(0.01)
            for n in range(3):
                router.submit(make_alert(n))
            tg.cancel_scope.cancel()  # the monitor stops without calling aclose()
        assert router.webhook_sent == 3
        await router.aclose()


@pytest.mark.anyio
async def test_without_a_webhook_run_returns_at_once() -> None:
    router = AlertRouter()
    with anyio.fail_after(1):
        await router.run()
        await router.aclose()
    assert router.submit(make_alert()) is True


def test_redact_url() -> None:
    assert redact_url("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com/…"
    assert redact_url("http://user:pw@127.0.0.1:8080/x?token=1") == "http://127.0.0.1:8080/…"
    assert redact_url("not a url") == "<webhook>"


# --------------------------------------------------------------------------------------------
# Target health and constructors
# --------------------------------------------------------------------------------------------


def shift_incident(**extra: Any) -> Incident:
    incident = Incident(id=7, target="demo-anthropic", provider="anthropic", opened_ts=1000.0, start_ts=990.0, **extra)
    incident.metrics["ttft_ms"] = MetricEffect("ttft_ms", 0.8213, 520.0, 947.1)
    incident.metrics["latency_ms"] = MetricEffect("latency_ms", 0.64, 700.0, 1148.0)
    incident.rules = {1, 2, 5}
    incident.peak_z = 5.14
    return incident


def test_an_opened_incident_says_who_what_how_much_and_the_evidence() -> None:
    alert = incident_alert(IncidentChange("opened", shift_incident(), 1000.0))
    assert alert is not None
    assert alert.text == (
        "demo-anthropic: incident #7 TTFT +82 % (520 -> 947 ms), latency +64 %; rules 1,2,5; peak |z| 5.1"
    )
    assert alert.kind == "incident" and alert.severity == "warning" and alert.key == "incident:7:opened"
    assert alert.details["metrics"][0] == {"metric": "ttft_ms", "effect": 0.8213, "baseline": 520.0, "current": 947.1}
    json.dumps(alert.to_event())


def test_incident_updates_alert_only_when_they_escalate() -> None:
    incident = shift_incident()
    assert incident_alert(IncidentChange("updated", incident, 1010.0)) is None  # figures moved
    incident.down, incident.error_kind = True, "rate_limit"
    down = incident_alert(IncidentChange("updated", incident, 1010.0, escalation="down"))
    assert down is not None and down.severity == "critical" and down.key == "incident:7:down"
    assert down.text.endswith("down: rate_limit; rules 1,2,5; peak |z| 5.1")


def test_scope_and_closing_words() -> None:
    provider = shift_incident(scope="provider:anthropic")
    assert provider.text(1000.0).endswith("(every anthropic target changed together: likely the provider)")
    everyone = shift_incident(scope="all")
    assert "likely the network or this machine" in everyone.text(1000.0)
    closed = shift_incident()
    closed.closed_ts, closed.resolution = 1130.0, "recovered"
    alert = incident_alert(IncidentChange("closed", closed, 1130.0))
    assert alert is not None and alert.severity == "info" and alert.key == "incident:7:closed"
    assert alert.text.startswith("demo-anthropic: incident #7 closed after 2m 20s (recovered): TTFT +82 %")
    faster = Incident(id=8, target="t", provider="p", opened_ts=1.0, start_ts=1.0)
    faster.metrics["ttft_ms"] = MetricEffect("ttft_ms", -0.4, 500.0, 300.0)
    assert faster.severity == "info"  # only an improvement: worth a look, not a page


def test_budget_alert() -> None:
    alert = budget_alert("all", 0.8, 40.0, 50.0, "month", projected=61.2, ts=1.0)
    assert alert.text == 'budget "all" reached 80 %: $40.00 of $50.00 this month, $61.20 projected'
    assert alert.key == "budget:all:0.8"
    assert alert.kind == "budget" and alert.target is None and alert.severity == "warning"
    assert budget_alert("d", 1.0, 5, 5, "day", ts=1.0).severity == "critical"
    assert budget_alert("d", 0.5, 2.5, 5, "day", ts=1.0).text == 'budget "d" reached 50 %: $2.50 of $5.00 today'


def test_a_budget_alert_says_what_the_budget_event_says() -> None:
    """The alert, the JSON log and the TUI show one line, written in one place (costs)."""
    budget = Budget("all", 50.0, "month", "all", pause_probes_at=1.0)
    when = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    events = BudgetAlerter([budget]).update(budget_status(budget, 50.0, when))
    assert [e.kind for e in events] == ["threshold", "threshold", "threshold", "paused"]
    alerts = [budget_event_alert(e, ts=1.0) for e in events]
    assert [a.text for a in alerts] == [e.message for e in events]
    assert [a.severity for a in alerts] == ["info", "warning", "critical", "warning"]
    assert [a.key for a in alerts] == ["budget:all:0.5", "budget:all:0.8", "budget:all:1", "budget:all:paused"]


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 45, 60, 130, 3600, 3725, 90000)] == [
        "0s",
        "45s",
        "1m",
        "2m 10s",
        "1h",
        "1h 2m",
        "1d 1h",
    ]

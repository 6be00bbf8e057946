"""The monitor on an event loop of its own, in its own thread, under the UI.

Why: a probe stamps its first token when its loop gets round to the socket. On Textual's loop
that can be tens of milliseconds late whenever the screen is composed (a full update at 160x48
holds the loop 15-50 ms, the first layout ~150 ms), which would put the UI's own cost into the
TTFT it shows. In a thread of its own the probe loop waits at most one GIL switch interval
(5 ms by default, lowered here) behind rendering. bench/bench_tui.py ttft measures it.

The UI talks to the monitor only through this class: events arrive through the subscriber
(called on the monitor thread; the app's subscriber only appends to a deque), and what changes
the monitor (stop, rebaseline) is run on the monitor's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

_T = TypeVar("_T")

#: The GIL hand-over interval while the UI runs: how long rendering can keep a ready probe
#: waiting (CPython's default is 5 ms).
SWITCH_INTERVAL_S = 0.001


class MonitorThread:
    """Runs ``monitor.run()`` on a new event loop in a daemon thread.

    ``on_done(error)`` is called on the UI's loop (``ui_loop``) when the run ends, with the
    exception that ended it or None.
    """

    def __init__(self, monitor: Any, ui_loop: asyncio.AbstractEventLoop, on_done: Callable[[BaseException | None], None]) -> None:
        self.monitor = monitor
        self.ui_loop = ui_loop
        self.on_done = on_done
        self.loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._main, name="llmscope-monitor", daemon=True)
        self._previous_switch = sys.getswitchinterval()

    def start(self) -> None:
        sys.setswitchinterval(min(self._previous_switch, SWITCH_INTERVAL_S))
        self._thread.start()
        self._started.wait(5.0)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and self.loop is not None and not self.loop.is_closed()

    def _main(self) -> None:
        error: BaseException | None = None
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # noqa: BLE001 (handed to the UI, which says what happened)
            error = exc
        finally:
            self._started.set()
            sys.setswitchinterval(self._previous_switch)
            try:
                self.ui_loop.call_soon_threadsafe(self.on_done, error)
            except RuntimeError:
                pass  # the UI's loop is gone already

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._started.set()
        await self.monitor.run()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (it ends once the monitor has stopped)."""
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def call(self, fn: Callable[..., _T], *args: Any, timeout: float = 5.0) -> _T:
        """Run fn(*args) on the monitor's loop and return its result (directly, when the monitor
        is not running: then nothing else touches it)."""
        loop = self.loop
        if loop is None or not self.running:
            return fn(*args)
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 (the caller gets it from the future)
                future.set_exception(exc)

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # closed between the check and the call
            return fn(*args)
        return future.result(timeout)

    def stop(self, reason: str, grace_s: float | None = None) -> None:
        """Ask the monitor to finish (in-flight probes get ``grace_s``, the store closes)."""
        stop = partial(self.monitor.stop, reason, grace_s=grace_s)
        loop = self.loop
        if loop is None or not self.running:
            stop()
            return
        try:
            loop.call_soon_threadsafe(stop)
        except RuntimeError:
            stop()

"""Parent and child processes of ``serve``: a browser tab's app ends with serve, and serve ends
its apps when it is told to stop.

textual-serve starts one ``llmscope-tui --tui`` per browser tab and talks to it over pipes. If
serve dies, nothing tells the app (its input just ends), and an app left under PID 1 kept
probing and rendering. So serve names itself in :data:`PARENT_ENV`; the app watches that
parent (Linux: ``PR_SET_PDEATHSIG``, and everywhere a check of ``getppid`` twice a second) and
sends itself SIGTERM when it is gone. Serve, told to stop, sends its children SIGTERM and,
after a bound, SIGKILL (:func:`end_children`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

#: Set by serve for the apps it starts: serve's PID.
PARENT_ENV = "LLMSCOPE_SERVE_PARENT"
#: How often the app checks that its parent is still there.
PARENT_CHECK_S = 0.5
_PR_SET_PDEATHSIG = 1


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def watch_parent(parent: int, on_gone: Callable[[], None] = _terminate_self) -> threading.Thread:
    """Call ``on_gone`` once when ``parent`` is no longer this process's parent (it died: the
    orphan was handed to PID 1 or a subreaper). Returns the watching (daemon) thread."""
    if sys.platform.startswith("linux"):
        try:  # the kernel sends SIGTERM the moment the parent dies; the thread below backs it up
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        on_gone()

    thread = threading.Thread(target=watch, name="llmscope-parent-watch", daemon=True)
    thread.start()
    return thread


def watch_serve_parent() -> None:
    """In an app started by serve (:data:`PARENT_ENV` set): end with serve."""
    value = os.environ.get(PARENT_ENV, "")
    if value.isdigit():
        watch_parent(int(value))


def child_pids(pid: int) -> list[int]:
    """The live descendants of ``pid`` (children first), from the process table (``ps``:
    Linux and macOS); zombies (ended, not yet reaped) are left out."""
    try:
        out = subprocess.run(
            ["ps", "-A", "-o", "pid=", "-o", "ppid=", "-o", "stat="],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0].isdigit() and fields[1].isdigit() and not fields[2].startswith("Z"):
            children.setdefault(int(fields[1]), []).append(int(fields[0]))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(0), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        out = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return bool(out) and not out.startswith("Z")


def end_children(pid: int, grace_s: float = 3.0) -> list[int]:
    """SIGTERM every descendant of ``pid``; SIGKILL those still running after ``grace_s``.
    Returns the PIDs that were signalled."""
    pids = child_pids(pid)
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    _signal_all([p for p in pids if alive(p)], getattr(signal, "SIGKILL", signal.SIGTERM))
    return pids


def _signal_all(pids: list[int], signum: int) -> None:
    for p in pids:
        try:
            os.kill(p, signum)
        except (ProcessLookupError, PermissionError):
            pass

"""Run the real command in a pseudo-terminal, as a person's terminal or an SSH session does."""

from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Sequence


class PtyRun:
    """`python -m llmscope_tui ARGS` on a pty of ``size`` (columns, rows); everything it draws
    collects in ``screen`` (a reader thread keeps the pty from filling and blocking the app)."""

    def __init__(self, args: Sequence[str], env: dict[str, str], size: tuple[int, int] = (80, 24)) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmscope_tui", *args],
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True, env=env,
        )
        os.close(slave)
        self.screen = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.screen.extend(chunk)

    def wait_for(self, text: bytes, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return text in self.screen
            time.sleep(0.05)
        return True

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def hang_up(self) -> None:
        """The terminal goes away (an SSH drop): the pty closes and the kernel sends SIGHUP."""
        os.close(self.master)
        self.proc.send_signal(signal.SIGHUP)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        try:
            os.close(self.master)
        except OSError:
            pass

"""One monitor per data file: a live monitor holds ``<data file>.lock``.

Two monitors on one file probe the same targets twice (double the API spend) and run two SPC
runs into one file. So a monitor takes an exclusive, non-blocking lock on a sidecar file
(0600) that holds its PID and start time. The lock belongs to the open file: the OS drops it
when the process ends in any way (a crash, SIGKILL), so a stale lock cannot exist; the PID
left in the file means nothing once nobody holds the lock.

Why a sidecar and not SQLite's own locks: SQLite locks only for the length of a transaction
(WAL readers and the writer share the file all the time), so nothing in the file says "a
monitor is running". POSIX: ``fcntl.flock`` (Linux, macOS; on a network file system it may
only exclude processes on the same machine). Windows: ``msvcrt.locking`` on one byte.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from llmscope_tui.paths import FILE_MODE, private_dir
from llmscope_tui.store.schema import StoreError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

#: Windows locks a byte range; past any content, so reading the PID never meets the lock.
_WIN_LOCK_OFFSET = 1 << 20


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a data file: the process and since when (epoch seconds; None if unknown)."""

    pid: int | None
    since: float | None

    def words(self) -> str:
        """``PID 1234, since 10:02`` for the one line that names the holder."""
        pid = f"PID {self.pid}" if self.pid else "PID unknown"
        if self.since is None:
            return pid
        return f"{pid}, since {time.strftime('%H:%M', time.localtime(self.since))}"


class HeldError(StoreError):
    """The data file is held by another live monitor (one line, exit 2)."""

    def __init__(self, path: Path, holder: Holder) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"{path} is being written by another llmscope-tui ({holder.words()}); "
            "stop it, or use --db for another data file"
        )


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


class DataFileHold:
    """The held lock of one data file; :meth:`release` (or leaving the ``with``) lets it go."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Unlock and close. The sidecar file stays (removing it would race a new holder)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the lock

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold(db: Path) -> DataFileHold:
    """Hold ``db`` for this process, or raise :class:`HeldError` naming the live holder.

    A lock file that cannot be created (a read-only folder) raises StoreError: a monitor that
    cannot hold its file cannot write it either."""
    db = Path(db).expanduser()
    path = lock_path(db)
    try:
        private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except OSError as exc:
        raise StoreError(f"cannot write data file {db}: cannot create {path.name}: {exc.strerror or exc}") from exc
    if not _try_lock(fd):
        os.close(fd)
        raise HeldError(db, read_holder(db))
    try:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"{os.getpid()} {time.time():.3f}\n".encode())
    except OSError:
        pass  # the lock is what counts; the PID is only for the message
    return DataFileHold(path, fd)


def holder_of(db: Path) -> Holder | None:
    """Who holds ``db`` now, or None when no live monitor does (a stale file is no holder)."""
    db = Path(db).expanduser()
    try:
        fd = os.open(lock_path(db), os.O_RDWR)
    except OSError:
        return None  # no lock file: nobody ever held it (or it cannot be opened: no claim)
    try:
        if _try_lock(fd):
            return None  # free (closing below lets it go again)
        return read_holder(db)
    finally:
        os.close(fd)


def read_holder(db: Path) -> Holder:
    """The PID and start time the holder wrote (unknown while it is still writing them)."""
    try:
        fields = lock_path(db).read_text(encoding="ascii", errors="replace").split()
        return Holder(int(fields[0]), float(fields[1]))
    except (OSError, ValueError, IndexError):
        return Holder(None, None)


def _try_lock(fd: int) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:  # no locks on this file system (ENOLCK): run unguarded, as before
            return True
        return True
    import msvcrt  # Windows: lock one byte far past the PID line

    os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    finally:
        os.lseek(fd, 0, os.SEEK_SET)
    return True

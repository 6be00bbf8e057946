"""Where llmscope-tui keeps its files, per platform (platformdirs), in one place."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO

import platformdirs

APP_NAME = "llmscope-tui"


def config_dir() -> Path:
    """Directory searched for config.toml and the user's themes/."""
    return platformdirs.user_config_path(APP_NAME)


def default_config_file() -> Path:
    return config_dir() / "config.toml"


def data_dir() -> Path:
    return platformdirs.user_data_path(APP_NAME)


def default_db_file() -> Path:
    """DESIGN 8: the samples file unless --db, LLMSCOPE_DB or config say otherwise."""
    return data_dir() / "samples.db"


def log_dir() -> Path:
    return platformdirs.user_log_path(APP_NAME)


def user_themes_dir() -> Path:
    return config_dir() / "themes"


def builtin_themes_dir() -> Path:
    """Themes shipped inside the package (copied from the top-level themes/ folder at build).

    In an editable install the package has no copy, so fall back to the repository folder.
    """
    packaged = Path(__file__).parent / "themes"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "themes"


#: What we create: readable by the user alone (DESIGN 8). Samples, logs and exports can carry
#: prompts, provider errors and spend; nobody else on the machine needs them.
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``path`` and its missing parents, each new one 0700 (an existing one is left as it is:
    a shared folder the user chose stays shared)."""
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask
    return path


def open_private(path: Path, mode: str = "a") -> IO[str]:
    """Open a text file we write (a log, an export) 0600 in a 0700 folder, line-buffered."""
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, FILE_MODE), mode, encoding="utf-8", buffering=1)


def private_file(path: Path) -> Path:
    """Create ``path`` 0600 (in a 0700 folder) if it does not exist yet; SQLite gives its
    -wal and -shm files the data file's mode, so they follow."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    return path


def write_private(path: Path, text: str) -> None:
    """Write a whole small file (a summary, a baseline) 0600 in a 0700 folder, through a
    temporary file beside it and os.replace: a reader sees the old file or all of the new one."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

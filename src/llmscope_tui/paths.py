"""Where llmscope-tui keeps its files, per platform (platformdirs), in one place."""

from __future__ import annotations

from pathlib import Path

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

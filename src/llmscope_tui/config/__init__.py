"""Configuration: TOML file + environment -> typed, checked :class:`Settings`.

Import from here (``from llmscope_tui.config import load_settings``); the modules are:

``settings``   the dataclasses the rest of the program reads, and :class:`ConfigError`
``load``       which file (flag, LLMSCOPE_CONFIG, platform dir), the environment, resolving targets
``schema``     the file's tables as strict pydantic models (unknown keys are errors)
``messages``   a pydantic error -> one sentence in our words (pydantic's never reach a user)
``locate``     a key path -> its line in the file (a small TOML position scanner)
``providers``  provider presets: protocol, default URL, key variables

Only load.py imports schema and messages, and only when a file is read: importing this package
does not import pydantic.
"""

from __future__ import annotations

from llmscope_tui.config.load import find_config_file, load_settings
from llmscope_tui.config.settings import (
    DEFAULT_PROMPT,
    FPS_RANGE,
    AlertSettings,
    ConfigError,
    Settings,
    SpcSettings,
    TuiSettings,
)

__all__ = [
    "DEFAULT_PROMPT",
    "FPS_RANGE",
    "AlertSettings",
    "ConfigError",
    "Settings",
    "SpcSettings",
    "TuiSettings",
    "find_config_file",
    "load_settings",
]

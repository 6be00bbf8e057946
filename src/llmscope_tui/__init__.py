"""llmscope-tui: a live terminal monitor for LLM APIs, and a library to probe them from Python.

The library's stable surface is ``__all__`` below (docs/library.md)::

    from llmscope_tui import make_target, probe_once_sync

    sample = probe_once_sync(make_target("openai", "gpt-4o-mini"))
    print(sample.ok, sample.ttft_ms, sample.latency_ms, sample.tokens_out)

Names are imported on first use (PEP 562), so ``import llmscope_tui`` -- which every command of
the CLI does -- costs no more than this file.
"""

# typing costs more to import than the rest of this module together (tens of ms on a busy
# machine); type checkers read this constant as typing.TYPE_CHECKING.
TYPE_CHECKING = False
__version__ = "0.1.0"

#: Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    "make_target": "llmscope_tui.library",
    "probe_once": "llmscope_tui.library",
    "probe_once_sync": "llmscope_tui.library",
    "watch": "llmscope_tui.library",
    "Watch": "llmscope_tui.library",
    "Target": "llmscope_tui.model",
    "Sample": "llmscope_tui.model",
    "ErrorKind": "llmscope_tui.model",
    "Timeouts": "llmscope_tui.probe.stream",
    "Monitor": "llmscope_tui.monitor",
    "RunSummary": "llmscope_tui.monitor",
    "Settings": "llmscope_tui.config",
    "ConfigError": "llmscope_tui.config",
    "load_settings": "llmscope_tui.config",
}

__all__ = [
    "ConfigError",
    "ErrorKind",
    "Monitor",
    "RunSummary",
    "Sample",
    "Settings",
    "Target",
    "Timeouts",
    "Watch",
    "__version__",
    "load_settings",
    "make_target",
    "probe_once",
    "probe_once_sync",
    "watch",
]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from llmscope_tui.config import ConfigError, Settings, load_settings
    from llmscope_tui.library import Watch, make_target, probe_once, probe_once_sync, watch
    from llmscope_tui.model import ErrorKind, Sample, Target
    from llmscope_tui.monitor import Monitor, RunSummary
    from llmscope_tui.probe.stream import Timeouts


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'llmscope_tui' has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=[name]), name)  # no importlib: it imports warnings
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

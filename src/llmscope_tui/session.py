"""What every face does before running the monitor: start the demo provider when needed.

Shared by the headless face and the TUI so that "no config and no keys -> demo" means the
same thing everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from llmscope_tui import paths
from llmscope_tui.config import Settings
from llmscope_tui.costs import PriceBook, PriceOverride

if TYPE_CHECKING:
    from llmscope_tui.monitor import EventSource, Monitor

#: Each simulated model is billed like the real model it imitates (prices from genai-prices);
#: the simulated local llama is self-hosted, so free.
DEMO_PRICED_LIKE: dict[str, tuple[str, str] | None] = {
    "gpt-4o-mini-sim": ("openai", "gpt-4o-mini"),
    "claude-haiku-sim": ("anthropic", "claude-3-5-haiku-latest"),
    "gemini-flash-sim": ("gemini", "gemini-2.0-flash"),
    "llama3-sim": None,
}


def demo_prices() -> list[PriceOverride]:
    """Price overrides for the demo's simulated models, derived from the price database."""
    book = PriceBook()
    overrides = []
    for model, like in DEMO_PRICED_LIKE.items():
        prices = book.unit_prices(*like) if like else None
        if like and prices is None:
            continue  # the database no longer knows it: leave the demo model unpriced
        overrides.append(
            PriceOverride(
                model=model,
                input_per_mtok=prices.input_per_mtok if prices else 0.0,
                output_per_mtok=prices.output_per_mtok if prices else 0.0,
                cache_read_per_mtok=prices.cache_read_per_mtok if prices else 0.0,
            )
        )
    return overrides


@dataclasses.dataclass(frozen=True, slots=True)
class Ready:
    """Settings ready to run, and what publishes events beside the probes (the demo's script)."""

    settings: Settings
    event_sources: tuple[EventSource, ...] = ()

    def monitor(self, **kwargs: Any) -> Monitor:
        """The monitor for this run, its event sources attached."""
        from llmscope_tui.monitor import Monitor

        return Monitor(self.settings, sources=self.event_sources, **kwargs)


@contextmanager
def demo_ready(settings: Settings) -> Iterator[Ready]:
    """Yield settings ready to run; in demo mode the simulated provider runs until exit and
    tells the monitor which scripted incident runs (``demo`` events).

    The demo writes to its own file (demo.db) unless a data file was given explicitly, so
    simulated samples never mix with real ones.
    """
    if not settings.demo:
        yield Ready(settings)
        return
    from llmscope_tui.demo import DemoProvider, demo_targets

    with DemoProvider() as demo:
        ready = dataclasses.replace(
            settings, targets=demo_targets(demo.base_url), prices=[*settings.prices, *demo_prices()]
        )
        if "db" not in settings.sources:
            ready.db_path = paths.data_dir() / "demo.db"
        yield Ready(ready, (demo.announce,))

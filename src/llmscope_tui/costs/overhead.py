"""What monitoring itself costs: probe overhead per target, per day and per month."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from llmscope_tui.costs.periods import DAYS_PER_MONTH
from llmscope_tui.costs.prices import PriceBook
from llmscope_tui.model import Target

#: Tokens a chat request adds around the prompt text (role markers, template), for estimates.
PROMPT_OVERHEAD_TOKENS = 8


@dataclass(frozen=True, slots=True)
class OverheadLine:
    """What probing one target costs. ``cost_per_probe`` is an upper bound (tokens_out =
    max_tokens); None for an unpriced target. Per month = per day x :data:`DAYS_PER_MONTH`."""

    target: str
    provider: str
    model: str
    interval_s: float
    probes_per_day: float
    tokens_in: int
    tokens_out: int
    cost_per_probe: float | None
    per_day: float | None
    per_month: float | None

    @property
    def priced(self) -> bool:
        return self.cost_per_probe is not None


def estimate_prompt_tokens(prompt: str) -> int:
    """About 4 characters a token, plus the chat template around it."""
    return math.ceil(len(prompt) / 4) + PROMPT_OVERHEAD_TOKENS


def probe_overhead(
    targets: Iterable[Target],
    price_book: PriceBook,
    est_tokens_in: Mapping[str, int] | None = None,
    est_tokens_out: Mapping[str, int] | None = None,
    *,
    when: datetime | None = None,
) -> list[OverheadLine]:
    """The cost of monitoring: one line per enabled target, in the order given.

    Probes a day = 86400 / interval_s. Tokens in: ``est_tokens_in[target.name]`` (e.g. the
    measured median) or :func:`estimate_prompt_tokens`; tokens out: ``est_tokens_out[...]`` or
    the target's max_tokens (an upper bound; reasoning models may bill more).
    """
    lines: list[OverheadLine] = []
    for target in targets:
        if not target.enabled:
            continue
        tin = (est_tokens_in or {}).get(target.name)
        tout = (est_tokens_out or {}).get(target.name)
        tin = estimate_prompt_tokens(target.prompt) if tin is None else int(tin)
        tout = int(target.max_tokens) if tout is None else int(tout)
        per_day_n = 86400.0 / target.interval_s if target.interval_s > 0 else 0.0
        one = price_book.cost(target.provider, target.model, tin, tout, 0, when)
        per_day = None if one is None else one * per_day_n
        lines.append(
            OverheadLine(
                target=target.name,
                provider=target.provider,
                model=target.model,
                interval_s=float(target.interval_s),
                probes_per_day=per_day_n,
                tokens_in=tin,
                tokens_out=tout,
                cost_per_probe=one,
                per_day=per_day,
                per_month=None if per_day is None else per_day * DAYS_PER_MONTH,
            )
        )
    return lines


def overhead_totals(lines: Iterable[OverheadLine]) -> tuple[float, float, list[str]]:
    """(per day, per month) over the priced lines, and the names of the unpriced targets."""
    day = month = 0.0
    unpriced: list[str] = []
    for line in lines:
        if line.per_day is None or line.per_month is None:
            unpriced.append(line.target)
        else:
            day += line.per_day
            month += line.per_month
    return day, month, unpriced

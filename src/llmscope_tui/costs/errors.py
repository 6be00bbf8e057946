"""The one exception of the costs package: a bad ``[[budgets]]`` or ``[[prices]]`` entry."""

from __future__ import annotations


class CostConfigError(ValueError):
    """A bad ``[[budgets]]`` or ``[[prices]]`` entry: ``key`` names the offending key.

    The config loader adds the file and line. ``index`` is the entry's position in its list
    when the error came from :func:`parse_budgets`.
    """

    def __init__(self, key: str, message: str, index: int | None = None) -> None:
        super().__init__(key, message)
        self.key = key
        self.message = message
        self.index = index

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"

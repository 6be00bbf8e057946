"""Reads of what the monitor concluded and spent: rule firings, incidents, baselines, spend."""

from __future__ import annotations

from typing import Any

from llmscope_tui.incidents.model import Incident
from llmscope_tui.model import Violation
from llmscope_tui.store.connection import ReadConnections, check_limit, conjunction, where
from llmscope_tui.store.rows import GROUP_COLUMNS, text_or_none, to_incident
from llmscope_tui.store.schema import BASELINE_COLUMNS, INCIDENT_COLUMNS, VIOLATION_COLUMNS


class RecordQueries(ReadConnections):
    """Violations, incidents and baselines as the monitor saved them; spend and token usage."""

    # -- violations and baselines ------------------------------------------------------------

    def violations(
        self,
        target: str | None = None,
        metric: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[Violation]:
        """Rule firings, oldest first (newest last); with ``limit``, the newest ``limit``."""
        limit = check_limit(limit)
        where_sql, params = where(target, since, metric=text_or_none(metric))
        rows = self._query_ordered(
            ", ".join(VIOLATION_COLUMNS), "violations", where_sql, params, limit
        )
        return [Violation(*row) for row in rows]

    def active_baselines(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The frozen SPC baselines in force, by (target, metric), as column -> value dicts."""
        rows = self._query(
            f"SELECT {', '.join(BASELINE_COLUMNS)} FROM baselines WHERE active = 1 ORDER BY id"
        )
        return {(row[1], row[2]): dict(zip(BASELINE_COLUMNS, row, strict=True)) for row in rows}

    def baselines(
        self, target: str | None = None, metric: str | None = None
    ) -> list[dict[str, Any]]:
        """Every baseline ever saved (active or not), oldest first: the history of limits."""
        where_sql, params = where(target, metric=text_or_none(metric))
        rows = self._query(
            f"SELECT {', '.join(BASELINE_COLUMNS)} FROM baselines{where_sql} ORDER BY id", params
        )
        return [dict(zip(BASELINE_COLUMNS, row, strict=True)) for row in rows]

    # -- incidents ---------------------------------------------------------------------------

    def incidents(
        self,
        target: str | None = None,
        since: float | None = None,
        limit: int | None = None,
        *,
        open_only: bool = False,
    ) -> list[Incident]:
        """Incidents that were open at or after ``since`` (all when None), oldest first; with
        ``limit``, the newest ``limit`` of them."""
        limit = check_limit(limit)
        conditions: list[tuple[str, list[Any]]] = []
        if target is not None:
            conditions.append(("target = ?", [str(target)]))
        if since is not None:
            conditions.append(("(closed_ts IS NULL OR closed_ts >= ?)", [float(since)]))
        if open_only:
            conditions.append(("closed_ts IS NULL", []))
        where_sql, params = conjunction(conditions)
        sql = (
            f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents{where_sql}"
            " ORDER BY opened_ts DESC, id DESC"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._query(sql, params)
        rows.reverse()
        return [to_incident(row) for row in rows]

    def max_incident_id(self) -> int:
        return int(self._query("SELECT coalesce(max(id), 0) FROM incidents")[0][0])

    # -- spend and usage (costs, budgets, reports) ----------------------------------------------

    def spend(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        target: str | None = None,
        provider: str | None = None,
        source: str | None = None,
    ) -> float:
        """Dollars spent (sum of cost_usd; unpriced samples count 0) in [since, until) and scope."""
        where_sql, params = where(target, since, until, source, provider=provider)
        return float(self._query(f"SELECT total(cost_usd) FROM samples{where_sql}", params)[0][0])

    def first_sample_ts(self) -> float | None:
        """When the data begins: the oldest sample's ts (None for an empty file). Spend rates
        are taken since then when that is less than an hour (DESIGN 7)."""
        found = self._query("SELECT min(ts) FROM samples", [])[0][0]
        return None if found is None else float(found)

    def spend_by(
        self, column: str, since: float | None = None, until: float | None = None
    ) -> dict[str, float]:
        """Dollars spent per target, provider, model or source (every group seen, 0.0 when
        unpriced)."""
        if column not in GROUP_COLUMNS:
            raise ValueError(
                f"cannot group spend by {column!r}; expected one of {sorted(GROUP_COLUMNS)}"
            )
        where_sql, params = where(None, since, until)
        rows = self._query(
            f"SELECT {column}, total(cost_usd) FROM samples{where_sql}"
            f" GROUP BY {column} ORDER BY {column}",
            params,
        )
        return {key: float(total) for key, total in rows if key is not None}

    def spend_by_day(self, since: float | None = None, until: float | None = None) -> dict[str, float]:
        """Dollars spent per UTC day ("YYYY-MM-DD", oldest first) in [since, until); days with
        no samples are absent. For the report's spend-per-day plot."""
        where_sql, params = where(None, since, until)
        rows = self._query(
            "SELECT strftime('%Y-%m-%d', ts, 'unixepoch') AS day, total(cost_usd)"
            f" FROM samples{where_sql} GROUP BY day ORDER BY day",
            params,
        )
        return {day: float(total) for day, total in rows}

    def usage_by_model(
        self, since: float | None = None, until: float | None = None
    ) -> list[tuple[str, str, int, int, int, int]]:
        """(provider, model, tokens_in, tokens_out, tokens_cached, tokens_cache_write) summed per
        model, sorted."""
        where_sql, params = where(None, since, until)
        rows = self._query(
            "SELECT provider, model, total(tokens_in), total(tokens_out), total(tokens_cached), "
            f"total({self.column_sql('tokens_cache_write')}) "
            f"FROM samples{where_sql} GROUP BY provider, model ORDER BY provider, model",
            params,
        )
        return [(p, m, *(int(n) for n in counts)) for p, m, *counts in rows]

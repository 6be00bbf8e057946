"""What the panes read from the data file: the history at start, percentiles, spend, budgets and
the stored window of a zoomed-out chart.

Each read runs in a thread worker so the UI never waits on SQLite, one read of a kind at a time
(a read never overlaps the previous one); the result is applied on the UI's loop.
"""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.css.query import NoMatches

from .state import METRICS
from .widgets import ChartsPane, CostsPane
from .widgets.charts import STORED_BUCKETS, StoredWindow
from .widgets.costs import CostData
from .widgets.visibility import drawn_if_shown

if TYPE_CHECKING:
    from .app import LLMScopeApp

#: Spend, budgets and recommendations: re-read this often (percentiles: every store read).
COSTS_EVERY_S = 30.0


class StoreReads:
    """The app's reads of the data file and what they last said."""

    def __init__(self, app: LLMScopeApp) -> None:
        self.app = app
        self.settings = app.settings
        self.monitor = app.monitor
        self.state = app.state
        self.busy = False
        self.window_busy = False
        self.history_loaded = False
        self.last_costs_read = -1e9
        #: Last hour's rollups per target (percentiles in the Targets pane).
        self.stats: dict[str, Any] = {}
        self.cost_today: dict[str, float] = {}
        self.cost_data = CostData()

    def read_soon(self) -> None:
        if self.busy or self.app.quitting:
            return
        self.busy = True
        self.app.run_worker(self.read, thread=True, group="store", name="store-read", exit_on_error=False)

    def read(self) -> None:
        """In a thread worker: what is due, then :meth:`apply` on the UI's loop."""
        from llmscope_tui.report import budget_statuses, cost_summary, overhead, recommendations
        from llmscope_tui.rollups import rollups
        from llmscope_tui.store import open_readonly

        result: dict[str, Any] = {}
        try:
            prices = self.monitor.prices
            if self.cost_data.overhead_day is None:
                _, per_day, per_month, unpriced = overhead(self.settings, prices)
                result["overhead"] = (per_day, per_month, unpriced)
            if Path(self.settings.db_path).exists():
                with open_readonly(self.settings.db_path) as store:
                    if not self.history_loaded:  # alone, so the charts fill at once (~0.1 s on 1M samples)
                        result["history"] = read_history(store, [t.name for t in self.settings.targets])
                    else:
                        ups = rollups(store, "1h", "target")
                        result["stats"] = {r.key: r for r in ups}
                    if "stats" in result and time.monotonic() - self.last_costs_read >= COSTS_EVERY_S:
                        # month-long spend scans take seconds on a big file, and spend moves slowly
                        # (the targets' cost today also adds what the live events bring meanwhile)
                        result["summary"] = cost_summary(store, prices)
                        result["budgets"] = budget_statuses(store, self.settings)
                        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
                        result["today"] = store.spend_by("target", since=day)
                        result["recs"] = [r.text for r in recommendations(store, self.settings, prices, ups)[:3]]
        except Exception as exc:  # noqa: BLE001 (a locked or damaged file: say so in the pane, keep going)
            result["error"] = str(exc)
        try:
            self.app.call_from_thread(self.apply, result)
        except RuntimeError:
            pass  # the app is gone

    def _freeze_startup_objects(self) -> None:
        """A full garbage collection stops every thread, the monitor's too, for as long as it
        walks every object: 50-90 ms with the 150k objects the UI, Textual and the price
        catalogue hold, which would land in a probe's TTFT. What exists once the first screen
        and the history are up (widgets, styles, catalogue) lives as long as the app, so it is
        collected once and moved out of the collector's reach (gc.freeze)."""
        if self.app.freeze_gc:
            gc.collect()
            gc.freeze()

    def apply(self, result: dict[str, Any]) -> None:
        app, bridge = self.app, self.app.bridge
        self.busy = False
        data = self.cost_data
        if "history" in result:
            self.history_loaded = True
            self.state.backfill(*result["history"])
            app.set_timer(0.05, self.read_soon)  # then percentiles and spend
            bridge.invalidate()
            app.call_later(bridge.tick)  # draw it now, not at the next frame
            app.set_timer(2.0, self._freeze_startup_objects)  # once the first screen is up
        if "overhead" in result:
            data.overhead_day, data.overhead_month, data.unpriced_targets = result["overhead"]
        if "stats" in result:
            self.stats = result["stats"]
        if "summary" in result:
            self.last_costs_read = time.monotonic()
            data.summary = result["summary"]
            data.budgets = result["budgets"]
            data.recommendations = result["recs"]
            self.cost_today = result["today"]
            for view in self.state.targets.values():
                view.cost_live = 0.0
            data.live, data.live_by_provider = 0.0, {}  # in the summary now
        data.error = result.get("error")
        if not app.paused:
            try:
                costs = app.main.query_one(CostsPane)
            except NoMatches:
                return
            if drawn_if_shown(costs):
                costs.render_data(data)
            bridge.changed()  # the Targets' percentiles and cost: at the next pass, not a pass of their own

    def read_window_soon(self, charts: ChartsPane) -> None:
        """A chart zoomed out past what memory holds (1 hour to 7 days) reads its window from
        the data file in a thread, squeezed in SQLite; one read at a time."""
        key = charts.stored_read_due()
        if key is None or self.window_busy or self.app.quitting or not Path(self.settings.db_path).exists():
            return
        self.window_busy = True
        chart = self.monitor.charts.chart(key[0], key[1]) if self.monitor is not None else None
        limits = chart.limits(original_unit=True) if chart is not None else None
        center = limits.center if limits is not None else None
        self.app.run_worker(
            lambda: self._read_window(key, center), thread=True, group="window", name="window-read", exit_on_error=False
        )

    def _read_window(self, key: tuple[str, str, float], center: float | None) -> None:
        from llmscope_tui.store import open_readonly

        target, metric, seconds = key
        until = time.time()
        result: StoredWindow | str
        try:
            with open_readonly(self.settings.db_path) as store:
                ts, values = store.metric_extremes(target, metric, until - seconds, until, STORED_BUCKETS, center)
                fired = store.violations(target, metric, since=until - seconds, limit=20_000)
            result = StoredWindow(
                read_at=time.monotonic(),
                until=until,
                points=list(zip(ts.tolist(), values.tolist(), strict=True)),
                firings={v.ts: v.value for v in fired},
            )
        except Exception as exc:  # noqa: BLE001 (a locked or damaged file: say so, keep the live chart)
            result = str(exc)
        try:
            self.app.call_from_thread(self._apply_window, key, result)
        except RuntimeError:
            pass  # the app is gone

    def _apply_window(self, key: tuple[str, str, float], result: StoredWindow | str) -> None:
        self.window_busy = False
        try:
            charts = self.app.main.query_one(ChartsPane)
        except NoMatches:
            return
        if isinstance(result, str):  # try again after the window's refresh time, live points meanwhile
            self.app.notify(f"cannot read the chart's window: {result}", severity="error", timeout=10)
            result = StoredWindow(read_at=time.monotonic(), until=float("-inf"))
        charts.stored[key] = result
        self.app.bridge.invalidate()


def read_history(
    store: Any, targets: list[str]
) -> tuple[dict[tuple[str, str], list[tuple[float, float]]], list[Any], list[Any]]:
    """The last points of each chart, the recent rule firings and the latest incidents, so a
    restart does not open on empty charts and an empty Incidents pane (index reads: fast on a
    file of millions of samples)."""
    from .state import HISTORY, MAX_INCIDENTS

    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name in targets:
        for metric in METRICS:
            ts, values = store.metric_series(name, metric, limit=HISTORY)
            if len(ts):
                series[(name, metric)] = list(zip(ts.tolist(), values.tolist(), strict=True))
    return series, store.violations(limit=HISTORY), store.incidents(limit=MAX_INCIDENTS)


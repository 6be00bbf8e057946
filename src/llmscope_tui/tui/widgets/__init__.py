"""The panes of the TUI."""

from .charts import ChartsPane
from .costs import CostsPane
from .incidents import IncidentsTable
from .targets import TargetsTable

__all__ = ["ChartsPane", "CostsPane", "IncidentsTable", "TargetsTable"]

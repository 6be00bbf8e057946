"""The panes of the TUI."""

from .charts import ChartsPane
from .costs import CostsPane
from .targets import TargetsTable
from .violations import ViolationsTable

__all__ = ["ChartsPane", "CostsPane", "TargetsTable", "ViolationsTable"]

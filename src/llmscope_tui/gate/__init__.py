"""The CI gate: what a bounded headless run concludes (a summary table, a JSON summary, the
``--fail-on`` checks and exit codes) and saved SPC limits a run is judged against.

Never imports Textual. ``checks`` has the verdict, ``summary`` the figures, ``baselines`` the
baseline files; their JSON formats are in llmscope_tui/schemas/.
"""

from llmscope_tui.gate.baselines import BaselineFileError, BaselineSet, SavedLimits
from llmscope_tui.gate.checks import (
    EXIT_FAILED_CHECK,
    EXIT_OK,
    EXIT_USAGE,
    exit_code,
    failed_checks,
)
from llmscope_tui.gate.summary import RunRecorder, build_summary, conclude, format_table

__all__ = [
    "EXIT_FAILED_CHECK",
    "EXIT_OK",
    "EXIT_USAGE",
    "BaselineFileError",
    "BaselineSet",
    "RunRecorder",
    "SavedLimits",
    "build_summary",
    "conclude",
    "exit_code",
    "failed_checks",
    "format_table",
]

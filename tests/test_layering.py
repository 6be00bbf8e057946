"""The headless core must run without Textual (DESIGN 2), as harlequin proves for its own core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CORE_MODULES = [
    "llmscope_tui.cli",
    "llmscope_tui.config",
    "llmscope_tui.headless",
    "llmscope_tui.monitor",
    "llmscope_tui.store",
    "llmscope_tui.export",
    "llmscope_tui.metrics",
    "llmscope_tui.probe.scheduler",
    "llmscope_tui.probe.stream",
    "llmscope_tui.demo",
    "llmscope_tui.spc",
    "llmscope_tui.spc.bank",
    "llmscope_tui.costs",
    "llmscope_tui.costs.tracker",
    "llmscope_tui.alerts",
    "llmscope_tui.rollups",
    "llmscope_tui.report",
    "llmscope_tui.ingest",
    "llmscope_tui.client",
    "llmscope_tui.library",
    "llmscope_tui.otlp",  # imports opentelemetry only inside OtlpExporter, built when OTLP is configured
]


@pytest.mark.slow
def test_core_modules_never_import_textual() -> None:
    """Nor opentelemetry: the `otlp` extra may be absent, and is loaded only when configured."""
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'opentelemetry'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_a_headless_run_never_imports_textual(tmp_path: Path) -> None:
    """Run a short headless demo with textual made unimportable: it must still work."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "textual.py").write_text("raise ImportError('textual must not be imported by the headless path')\n")
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(blocker)!r})\n"
        "from llmscope_tui.cli import main\n"
        f"rc = main(['--headless', '--demo', '--count', '4', '--db', {str(tmp_path / 'h.db')!r}])\n"
        "assert 'textual' not in sys.modules or sys.modules['textual'].__file__.startswith("
        f"{str(blocker)!r})\n"
        "sys.exit(rc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count('"event":"sample"') == 4

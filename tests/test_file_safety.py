"""Files we create are the user's alone, a data file we cannot write is refused at start, and
a run that could not save samples says so and exits 1 (DESIGN 8)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from llmscope_tui.cli import main
from llmscope_tui.headless import exit_code
from llmscope_tui.monitor import RunSummary
from llmscope_tui.paths import open_private, private_dir, private_file
from llmscope_tui.store import SampleStore, StoreError, check_writable

TARGET = '[[targets]]\nname = "x"\nprovider = "ollama"\nmodel = "m"\nbase_url = "http://127.0.0.1:9"\n'


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_folders_are_0700_files_0600_and_an_existing_folder_is_left_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    db = shared / "a" / "b" / "samples.db"
    with SampleStore(db) as store:
        store.flush()
    assert mode(shared) == 0o755  # the user's choice stays
    assert mode(shared / "a") == mode(shared / "a" / "b") == 0o700
    assert mode(db) == 0o600
    for extra in (db.with_name("samples.db-wal"), db.with_name("samples.db-shm")):
        if extra.exists():
            assert mode(extra) == 0o600, extra  # SQLite gives them the data file's mode
    with open_private(tmp_path / "logs" / "run.jsonl") as log:
        log.write("{}\n")
    assert mode(tmp_path / "logs") == 0o700 and mode(tmp_path / "logs" / "run.jsonl") == 0o600
    assert private_dir(tmp_path / "logs") == tmp_path / "logs"
    assert mode(private_file(tmp_path / "x" / "y")) == 0o600


def test_headless_log_and_csv_export_are_0600(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(TARGET)
    db, log, csv = tmp_path / "d" / "s.db", tmp_path / "l" / "log.jsonl", tmp_path / "out.csv"
    assert main(["--headless", "--count", "1", "--config", str(config), "--db", str(db), "--log-file", str(log)]) == 0
    assert main(["export", "--config", str(config), "--db", str(db), "--csv", str(csv)]) == 0
    assert [mode(p) for p in (db, log, csv)] == [0o600] * 3
    assert [mode(p.parent) for p in (db, log)] == [0o700] * 2


def _make_read_only(path: Path) -> None:
    """As root file modes do not stop a write: the immutable flag does (skip where neither can)."""
    if os.geteuid() != 0:
        os.chmod(path, 0o444)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root without chattr +i: no way to make a file read-only here")


def _make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    os.chmod(path, 0o600)


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
def test_a_read_only_data_file_is_refused_at_start_with_one_line(tmp_path: Path) -> None:
    """It used to run, hold every sample in memory, lose them all and exit 0."""
    config = tmp_path / "c.toml"
    config.write_text(TARGET)
    db = tmp_path / "s.db"
    SampleStore(db).close()
    before = db.read_bytes()
    _make_read_only(db)
    try:
        with pytest.raises(StoreError):
            check_writable(db)
        result = subprocess.run(
            [sys.executable, "-m", "llmscope_tui", "--headless", "--count", "2", "--config", str(config), "--db", str(db)],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
    finally:
        _make_writable(db)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and str(db) in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""
    assert db.read_bytes() == before


def test_a_run_that_could_not_save_samples_exits_1_and_says_how_many() -> None:
    import io

    err = io.StringIO()
    assert exit_code(RunSummary(samples=40, unsaved=40), (), stderr=err) == 1
    assert err.getvalue() == "llmscope-tui: 40 samples could not be saved to the data file\n"
    assert exit_code(RunSummary(samples=40), ()) == 0


def test_a_config_holding_a_secret_that_others_can_read_draws_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from llmscope_tui.config import load_settings

    config = tmp_path / "c.toml"
    config.write_text(
        '[alerts]\nwebhook_url = "https://hooks.example/T000/B000/xyz"\n' + TARGET
        + 'headers = { "Authorization" = "Bearer abc", "HTTP-Referer" = "https://me" }\n'
    )
    os.chmod(config, 0o644)
    (warning,) = load_settings(config, env={}).warnings
    assert "[alerts] webhook_url" in warning and "targets[0].headers.Authorization" in warning
    assert "HTTP-Referer" not in warning and "mode 0644" in warning and f"chmod 600 {config}" in warning
    assert "Bearer abc" not in warning and "xyz" not in warning  # never the secret itself
    assert main(["check-config", "--config", str(config)]) == 0
    assert "warning:" in capsys.readouterr().err
    os.chmod(config, 0o600)
    assert load_settings(config, env={}).warnings == []

"""The TUI in a real pseudo-terminal: opened by the bare command, in 16 and 256 colours, and
quit by its key with the samples on disk."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from conftest import samples_in_the_file_alone, subprocess_env, wait_for_stored_samples
from pty_terminal import PtyRun

#: SGR colour parameters: 38;5;N / 48;5;N (256 colours) and 38;2;R;G;B / 48;2;… (truecolor)
EXTENDED = re.compile(rb"\x1b\[[0-9;]*[34]8;([25]);")


pytestmark = pytest.mark.slow  # a real process in a pseudo-terminal or behind a web server: seconds each

def run_until_drawn(tmp_path: Path, args: list[str], **env: str) -> bytes:
    run = PtyRun([*args, "--db", str(tmp_path / "t.db")], subprocess_env(**env))
    try:
        assert run.wait_for(b"Targets"), run.screen[-2000:]
        assert run.wait_for(b"demo-openai")
        run.type("q")
        assert run.proc.wait(timeout=20) == 0
        return bytes(run.screen)
    finally:
        run.close()


def test_the_bare_command_at_a_terminal_opens_the_tui(tmp_path: Path) -> None:
    screen = run_until_drawn(tmp_path, [], TERM="xterm-256color")  # no config, no keys: the demo
    assert b"DEMO" in screen and b"Targets" in screen and b"Charts" in screen
    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] >= 0  # written and closed


@pytest.mark.parametrize(
    ("color_system", "allowed"),
    [("standard", set()), ("256", {b"5"}), ("truecolor", {b"5", b"2"})],
)
def test_the_tui_draws_within_the_terminals_colours(tmp_path: Path, color_system: str, allowed: set[bytes]) -> None:
    """16-colour terminals get only the 16 colour codes; 256 never gets 24-bit colour."""
    screen = run_until_drawn(tmp_path, ["--tui", "--demo"], TERM="xterm", TEXTUAL_COLOR_SYSTEM=color_system)
    used = set(EXTENDED.findall(screen))
    assert used <= allowed, (color_system, used)
    if color_system == "truecolor":
        assert b"2" in used  # the themes' own colours reach a truecolor terminal


def test_no_color_draws_in_greys_only_and_keeps_every_state_in_words(tmp_path: Path) -> None:
    """NO_COLOR: Textual draws in monochrome (shades of grey for depth, never a hue)."""
    screen = run_until_drawn(tmp_path, ["--tui", "--demo"], TERM="xterm-256color", NO_COLOR="1")
    for params in re.findall(rb"\x1b\[([0-9;]*)m", screen):
        codes = [int(c) for c in params.split(b";") if c]
        i = 0
        while i < len(codes):
            if codes[i] in (38, 48):
                if codes[i + 1] == 5:
                    assert codes[i + 2] >= 232 or codes[i + 2] in (0, 7, 8, 15, 16, 231), params
                    i += 3
                else:
                    r, g, b = codes[i + 2 : i + 5]
                    assert r == g == b, params
                    i += 5
                continue
            assert codes[i] < 30 or codes[i] in (39, 49), params  # bold, dim, italic, reverse
            i += 1
    assert b"\xe2\x97\x8f up" in screen or b"waiting" in screen  # "● up": the state in a symbol and a word


def test_quit_then_losing_the_terminal_leaves_no_process_behind(tmp_path: Path) -> None:
    """q starts a clean stop; the SSH session drops before the exit has restored the terminal.
    The exit can then never finish writing; the process must still end, samples on disk."""
    run = PtyRun(["--tui", "--demo", "--db", str(tmp_path / "t.db")], subprocess_env(TERM="xterm-256color"))
    try:
        assert run.wait_for(b"demo-openai")
        wait_for_stored_samples(tmp_path / "t.db")  # probes have landed on disk
        run.type("q")
        run.hang_up()
        assert run.proc.wait(timeout=30) is not None
    finally:
        run.close()
    with sqlite3.connect(tmp_path / "t.db") as conn:
        assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] > 0


def test_ctrl_c_quits_with_every_sample_in_the_data_file_itself(tmp_path: Path) -> None:
    """Ctrl-C quits (not Textual's "press ctrl+q" notice), exit code 0; the WAL is checkpointed,
    so the data file copied alone holds every sample."""
    db = tmp_path / "t.db"
    run = PtyRun(["--tui", "--demo", "--db", str(db)], subprocess_env(TERM="xterm-256color"))
    try:
        assert run.wait_for(b"demo-openai")
        wait_for_stored_samples(db)
        run.type("\x03")
        assert run.proc.wait(timeout=30) == 0
    finally:
        run.close()
    assert samples_in_the_file_alone(db, tmp_path / "backup") > 0

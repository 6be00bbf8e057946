"""The confirm dialog: mouse buttons and keys, and Enter never meaning yes on "No"."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Button

import llmscope_tui.tui as tui_package
from llmscope_tui.tui.screens import ConfirmScreen
from llmscope_tui.tui.themes import AppVariables

pytestmark = pytest.mark.anyio

TCSS = str(Path(tui_package.__file__).parent / "app.tcss")


class _Asks(AppVariables, App[None]):
    """Pushes one ConfirmScreen, with the app's stylesheet, and records the answer."""

    CSS_PATH = TCSS

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[bool | None] = []

    def on_mount(self) -> None:
        self.push_screen(ConfirmScreen("Rebaseline demo-openai?\nIts control limits are forgotten."), self.answers.append)


async def _answer(*steps: str, size: tuple[int, int] = (80, 24)) -> list[bool | None]:
    """Run the dialog, do the steps ("click:#id" or a key), return what it was dismissed with."""
    app = _Asks()
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        for step in steps:
            if step.startswith("click:"):
                assert await pilot.click(step.removeprefix("click:"))
            else:
                await pilot.press(step)
            await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen), "the dialog is still open"
    return app.answers


async def test_clicking_yes_answers_yes() -> None:
    assert await _answer("click:#yes") == [True]


async def test_clicking_no_answers_no() -> None:
    assert await _answer("click:#no") == [False]


@pytest.mark.slow  # nine whole dialogs through Pilot: seconds together
@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (("y",), True),
        (("n",), False),
        (("escape",), False),
        (("enter",), False),  # "No" is focused first: Enter out of habit starts nothing
        (("left", "enter"), True),
        (("tab", "enter"), True),  # Tab moves on to "Yes" (the focus chain wraps)
        (("left", "right", "enter"), False),
        (("left", "n"), False),  # the letters answer wherever the focus is
        (("right", "y"), True),
    ],
)
async def test_keys(keys: tuple[str, ...], expected: bool) -> None:
    assert await _answer(*keys) == [expected]


async def test_enter_presses_the_focused_button_only() -> None:
    app = _Asks()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.focused is screen.query_one("#no", Button)
        labels = [str(b.label) for b in screen.query(Button)]
        assert labels == ["Yes (y)", "No (n)"]
        await pilot.press("enter")
        await pilot.pause()
    assert app.answers == [False]


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_buttons_fit_at_80x24_and_at_40_columns() -> None:
    for size in ((80, 24), (40, 20)):
        app = _Asks()
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            screen = app.screen
            for button in screen.query(Button):
                region = button.region
                assert region.width >= len(str(button.label)) + 2, (size, button.id, region)
                assert 0 <= region.x and region.right <= size[0] and region.bottom <= size[1], (size, button.id, region)
            await pilot.press("n")

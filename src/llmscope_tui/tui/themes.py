"""Theme files -> textual.theme.Theme plus the chart's line colours.

A theme is a TOML file (built-ins in the package's themes/ folder, the user's in the config
dir's themes/ folder; a user file with a built-in's name replaces it)::

    name = "my-theme"          # optional; default: the file name
    dark = true                # optional
    ansi = false               # optional: true uses the terminal's own palette (ansi_* colours)

    [colors]                   # textual.theme.Theme fields; primary is required
    primary = "#4FA3E0"
    background = "#1B1E24"     # secondary accent warning error success foreground surface panel boost

    [variables]                # optional Textual CSS variables, e.g. border-blurred = "#333333"

    [chart]                    # optional; colours of the control chart
    points = "#61AFEF"         # center limit zone2 zone1 violation

Colours are anything Rich and Textual parse: "#rrggbb", names such as "red", or "ansi_red".
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.color import Color as RichColor
from rich.color import ColorParseError
from textual.app import App
from textual.color import Color
from textual.color import ColorParseError as TextualColorParseError
from textual.theme import BUILTIN_THEMES, Theme

from llmscope_tui import paths

DEFAULT_THEME = "llmscope-dark"
THEME_COLOR_KEYS = (
    "primary", "secondary", "accent", "warning", "error", "success",
    "foreground", "background", "surface", "panel", "boost",
)
CHART_KEYS = ("points", "center", "limit", "zone2", "zone1", "violation")


@dataclass(frozen=True, slots=True)
class ChartColors:
    """Rich colour names for the control chart's parts."""

    points: str = "cyan"
    center: str = "green"
    limit: str = "red"
    zone2: str = "yellow"
    zone1: str = "bright_black"
    violation: str = "bright_red"


@dataclass(slots=True)
class LoadedTheme:
    theme: Theme
    chart: ChartColors
    source: Path | None = None


@dataclass(slots=True)
class ThemeLoad:
    themes: dict[str, LoadedTheme] = field(default_factory=dict)
    #: (theme name or file stem, what went wrong)
    errors: list[tuple[str, str]] = field(default_factory=list)


class ThemeError(ValueError):
    pass


def _check_color(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ThemeError(f"{where} must be a colour string")
    value = value.strip()
    if value.startswith("ansi_"):
        return value
    try:
        Color.parse(value)
    except TextualColorParseError:
        raise ThemeError(f"{where}: {value!r} is not a colour") from None
    return value


def _rich_color(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ThemeError(f"{where} must be a colour string")
    name = value.strip().removeprefix("ansi_")
    try:
        RichColor.parse(name)
    except ColorParseError:
        raise ThemeError(f"{where}: {value!r} is not a colour") from None
    return name


def _table(data: dict[str, Any], name: str, known: Any, what: str) -> dict[str, Any]:
    """The theme file's [name] table (empty when absent); ThemeError for a non-table or a key
    not in ``known``."""
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ThemeError(f"[{name}] must be a table")
    unknown = set(table) - set(known)
    if unknown:
        raise ThemeError(f"unknown {what} in [{name}]: {', '.join(sorted(unknown))}")
    return table


def parse_theme(data: dict[str, Any], default_name: str, source: Path | None = None) -> LoadedTheme:
    """A theme from parsed TOML data; ThemeError names what is wrong."""
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise ThemeError("name must be a non-empty string")
    colors = _table(data, "colors", THEME_COLOR_KEYS, "colour key(s)")
    if "primary" not in colors:
        raise ThemeError("[colors] needs primary")
    checked = {key: _check_color(value, f"colors.{key}") for key, value in colors.items()}
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise ThemeError("[variables] must be a table of strings")
    chart_data = _table(data, "chart", CHART_KEYS, "key(s)")
    chart = ChartColors(**{k: _rich_color(v, f"chart.{k}") for k, v in chart_data.items()})
    dark, ansi = data.get("dark", True), data.get("ansi", False)
    if not isinstance(dark, bool) or not isinstance(ansi, bool):
        raise ThemeError("dark and ansi must be true or false")
    if ansi:  # Textual's CSS needs the ansi-* variables its own ansi themes define
        variables = {**BUILTIN_THEMES["ansi-dark" if dark else "ansi-light"].variables, **variables}
    color = checked.get  # every key but primary may be missing: Textual derives it
    theme = Theme(
        name=name.strip(), primary=checked["primary"], secondary=color("secondary"), accent=color("accent"),
        warning=color("warning"), error=color("error"), success=color("success"),
        foreground=color("foreground"), background=color("background"), surface=color("surface"),
        panel=color("panel"), boost=color("boost"), dark=dark, ansi=ansi, variables=dict(variables),
    )
    try:
        theme.to_color_system().generate()  # fail here, not when the app switches to it
    except Exception as exc:  # noqa: BLE001 (Textual raises several kinds for bad colours)
        raise ThemeError(f"Textual cannot use it: {exc}") from None
    return LoadedTheme(theme, chart, source)


def load_theme_file(path: Path) -> LoadedTheme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ThemeError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"{path}: invalid TOML: {exc}") from None
    try:
        return parse_theme(data, path.stem, path)
    except ThemeError as exc:
        raise ThemeError(f"{path}: {exc}") from None


def load_themes(dirs: list[Path] | None = None) -> ThemeLoad:
    """Every *.toml theme in the built-in then the user folder (later ones replace earlier)."""
    if dirs is None:
        dirs = [paths.builtin_themes_dir(), paths.user_themes_dir()]
    result = ThemeLoad()
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                loaded = load_theme_file(path)
            except ThemeError as exc:
                result.errors.append((path.stem, str(exc)))
                continue
            result.themes[loaded.theme.name] = loaded
    return result


class AppVariables(App[Any]):
    """The CSS variables app.tcss uses beyond Textual's own; every app that loads app.tcss mixes
    this in. A theme may set them in [variables]."""

    def get_theme_variable_defaults(self) -> dict[str, str]:
        """``$pane-border`` (unfocused panes): the theme's panel colour lightened, what every
        theme drew before; light.toml sets its own, since that is white on white there."""
        generated = self.current_theme.to_color_system().generate()
        return {**super().get_theme_variable_defaults(), "pane-border": generated["panel-lighten-2"]}


def theme_named(wanted: str, themes: dict[str, Any]) -> str | None:
    """``[tui] theme`` may give the full name (llmscope-light) or the file's short one (light)."""
    for name in (wanted, f"llmscope-{wanted}"):
        if name in themes:
            return name
    return None


def theme_problem(app: App[Any], theme: Theme) -> str | None:
    """Try the theme on a copy of the app's stylesheet: Textual only finds a missing CSS
    variable when it applies a theme, and then the app dies; better to refuse the theme here."""
    variables = {
        **app.get_theme_variable_defaults(),
        **theme.to_color_system().generate(),
        **theme.variables,
    }
    sheet = app.stylesheet.copy()
    try:
        sheet.set_variables(variables)
        sheet.reparse()
    except Exception as exc:  # noqa: BLE001 (Textual raises several kinds for bad CSS)
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None

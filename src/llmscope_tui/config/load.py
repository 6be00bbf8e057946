"""TOML config + environment -> typed, validated settings.

Every problem becomes a ConfigError whose text names the file, the line and the key, so the CLI
can print one actionable line and exit 2. Precedence: command-line flag > environment > config
file > built-in default. Search order for the file: --config, LLMSCOPE_CONFIG, then the
platform config directory (see paths.py).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmscope_tui import paths
from llmscope_tui.costs import Budget, CostConfigError, PriceOverride, parse_budget, parse_price
from llmscope_tui.durations import parse_duration
from llmscope_tui.model import Metric, Target
from llmscope_tui.probe.providers import AZURE_DEFAULT_API_VERSION, PRESETS, normalize_base_url

DEFAULT_PROMPT = "Reply with the word OK."

#: Targets created from provider keys in the environment when there is no config file.
AUTO_TARGETS: tuple[tuple[str, str, str], ...] = (
    ("OPENAI_API_KEY", "openai", "gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic", "claude-3-5-haiku-latest"),
    ("GEMINI_API_KEY", "gemini", "gemini-2.0-flash"),
    ("GOOGLE_API_KEY", "gemini", "gemini-2.0-flash"),
)


class ConfigError(Exception):
    """A config or environment problem, worded as the one line the user sees."""


@dataclass(slots=True)
class SpcSettings:
    """[spc]: the control charts (evidence) and the incident policy (what a person is told).

    Defaults meet DESIGN 6b's figures (bench/bench_incidents.py, docs/spc.md section 5)."""

    baseline_samples: int = 100
    transform: str = "log"
    rules: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)
    metrics: tuple[str, ...] = tuple(m.value for m in Metric)
    #: the smallest change of a metric's median that opens an incident (0.15 = 15 %)
    min_effect: float = 0.15
    #: CUSUM reference value and decision interval, in standard deviations of log(x)
    cusum_k: float = 0.9
    cusum_h: float = 5.0
    #: quiet probes in a row before an incident closes (hysteresis)
    close_after: int = 20
    #: a shift that holds this long becomes the new normal (the target is rebaselined); None: never
    accept_after_s: float | None = None
    #: "worse": incidents for changes for the worse only; "both": a speed-up too
    alert_on: str = "worse"
    #: a time metric must also move by at least this many ms to open an incident
    min_change_ms: float = 2.0


@dataclass(slots=True)
class AlertSettings:
    webhook_url: str | None = None
    cooldown_s: float = 300.0
    bell: bool = False


@dataclass(slots=True)
class TuiSettings:
    """[tui]: how the terminal UI looks and how often it redraws (never what it measures)."""

    fps: float = 4.0
    theme: str | None = None
    mouse: bool = True


#: Screen updates per second the TUI accepts (0.2 = one every 5 s, for a very slow link).
FPS_RANGE = (0.2, 30.0)


@dataclass(slots=True)
class Settings:
    """Everything the monitor needs, resolved and checked."""

    config_file: Path | None
    targets: list[Target]
    db_path: Path
    demo: bool = False
    interval_s: float = 15.0
    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float = 20.0
    concurrency: int = 8
    retention_days: float = 7.0
    spc: SpcSettings = field(default_factory=SpcSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    tui: TuiSettings = field(default_factory=TuiSettings)
    budgets: list[Budget] = field(default_factory=list)
    prices: list[PriceOverride] = field(default_factory=list)
    #: Where each value came from when it was not the default, e.g. {"interval": "LLMSCOPE_INTERVAL"}.
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def enabled_targets(self) -> list[Target]:
        return [t for t in self.targets if t.enabled]


# --------------------------------------------------------------------------- locating keys


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"' ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Map each key path, e.g. ("targets", 1, "interval"), to its 1-based line in the file.

    tomllib gives no positions, so this reads the table headers and `key =` lines itself; it
    covers the shapes this config uses (tables, arrays of tables, plain keys).
    """
    found: dict[tuple[Any, ...], int] = {}
    counters: dict[str, int] = {}
    prefix: tuple[Any, ...] = ()
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = header.group(2).replace('"', "").replace("'", "").strip()
            if header.group(1) == "[[":
                index = counters.get(name, -1) + 1
                counters[name] = index
                prefix = (*name.split("."), index)
            else:
                prefix = tuple(name.split("."))
            found.setdefault(prefix, lineno)
            continue
        key = _KEY.match(line)
        if key:
            found.setdefault((*prefix, key.group(1).strip("\"'")), lineno)
    return found


class _Reader:
    """Validates one parsed config file, raising ConfigError that point at file:line key."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = _key_lines(text)

    def error(self, where: tuple[Any, ...], message: str) -> ConfigError:
        line = None
        for n in range(len(where), 0, -1):
            line = self.lines.get(where[:n])
            if line is not None:
                break
        location = f"{self.path}:{line}" if line is not None else str(self.path)
        return ConfigError(f"{location}: {_dotted(where)}: {message}")

    def table(self, data: Mapping[str, Any], where: tuple[Any, ...], allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                raise self.error((*where, key), f"unknown key (expected one of: {hint})")

    def get(self, data: Mapping[str, Any], key: str, where: tuple[Any, ...], kind: type | tuple[type, ...]) -> Any:
        value = data.get(key)
        if value is None:
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.error((*where, key), f"expected {_kind_name(kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            raise self.error((*where, key), f"expected {_kind_name(kinds)}, got {value!r}")
        return value

    def duration(self, data: Mapping[str, Any], key: str, where: tuple[Any, ...]) -> float | None:
        if key not in data:
            return None
        try:
            return parse_duration(data[key])
        except ValueError as exc:
            raise self.error((*where, key), str(exc)) from None

    def number(
        self, data: Mapping[str, Any], key: str, where: tuple[Any, ...], ok: Callable[[float], bool], expected: str
    ) -> float | None:
        """A number that ``ok`` accepts, or ConfigError "<expected>, got <value>"."""
        value = self.get(data, key, where, (int, float))
        if value is not None and not ok(value):
            raise self.error((*where, key), f"{expected}, got {value}")
        return None if value is None else float(value)

    def choice(self, data: Mapping[str, Any], key: str, where: tuple[Any, ...], options: tuple[str, ...]) -> str | None:
        """One of ``options`` (a string), or ConfigError naming them."""
        value = self.get(data, key, where, str)
        if value is not None and value not in options:
            names = " or ".join(f'"{o}"' for o in options)
            raise self.error((*where, key), f"expected {names}, got {value!r}")
        return value

    def positive_int(self, data: Mapping[str, Any], key: str, where: tuple[Any, ...]) -> int | None:
        value = self.get(data, key, where, int)
        if value is not None and value < 1:
            raise self.error((*where, key), f"must be at least 1, got {value}")
        return value


def _dotted(where: tuple[Any, ...]) -> str:
    out = ""
    for part in where:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "a whole number", float: "a number", bool: "true or false", list: "a list"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


# --------------------------------------------------------------------------- loading

_TOP_KEYS = {"monitor", "targets", "spc", "alerts", "budgets", "prices", "tui"}
_MONITOR_KEYS = {
    "interval",
    "timeout",
    "connect_timeout",
    "first_token_timeout",
    "concurrency",
    "retention_days",
    "db",
}
_TARGET_KEYS = {
    "name",
    "provider",
    "model",
    "base_url",
    "api_key_env",
    "prompt",
    "max_tokens",
    "interval",
    "api_version",
    "headers",
}
_SPC_KEYS = {
    "baseline_samples",
    "transform",
    "rules",
    "metrics",
    "min_effect",
    "cusum_k",
    "cusum_h",
    "close_after",
    "accept_after",
    "alert_on",
    "min_change_ms",
}
_ALERT_KEYS = {"webhook_url", "cooldown", "bell"}
_TUI_KEYS = {"fps", "theme", "mouse"}


def find_config_file(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read, or None for "no config" (then: keys from the environment, or the demo)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (from --config)")
        return path
    if env.get("LLMSCOPE_CONFIG"):
        path = Path(env["LLMSCOPE_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (from LLMSCOPE_CONFIG)")
        return path
    default = paths.default_config_file()
    return default if default.is_file() else None


def load_settings(
    config: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    db: str | Path | None = None,
    demo: bool = False,
) -> Settings:
    """Resolve the settings a run uses. Raises ConfigError with one user-facing line."""
    env = os.environ if env is None else env
    path = None if demo else find_config_file(config, env)
    data: dict[str, Any] = {}
    reader: _Reader | None = None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: config file is not UTF-8 text") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        reader = _Reader(path, text)
        reader.table(data, (), _TOP_KEYS)

    settings = Settings(config_file=path, targets=[], db_path=paths.default_db_file())
    if reader is not None:
        _read_monitor(reader, data, settings)
        _read_spc(reader, data, settings)
        _read_alerts(reader, data, settings)
        _read_tui(reader, data, settings)
        _read_costs(reader, data, settings)
    _apply_env(env, settings)
    if db:
        settings.db_path = Path(db).expanduser()
        settings.sources["db"] = "--db"

    if reader is not None:
        settings.targets = _read_targets(reader, data, settings, env)
    elif not demo:
        settings.targets = _auto_targets(settings, env)
    if not settings.targets:
        settings.demo = True
    return settings


def _read_monitor(reader: _Reader, data: dict[str, Any], settings: Settings) -> None:
    monitor = data.get("monitor", {})
    if not isinstance(monitor, dict):
        raise reader.error(("monitor",), "expected a table [monitor]")
    where = ("monitor",)
    reader.table(monitor, where, _MONITOR_KEYS)
    for key, attr in (
        ("interval", "interval_s"),
        ("timeout", "timeout_s"),
        ("connect_timeout", "connect_timeout_s"),
        ("first_token_timeout", "first_token_timeout_s"),
    ):
        value = reader.duration(monitor, key, where)
        if value is not None:
            setattr(settings, attr, value)
            settings.sources[key] = str(reader.path)
    concurrency = reader.positive_int(monitor, "concurrency", where)
    if concurrency is not None:
        settings.concurrency = concurrency
    retention = reader.get(monitor, "retention_days", where, (int, float))
    if retention is not None:
        if retention <= 0:
            raise reader.error((*where, "retention_days"), f"must be a positive number of days, got {retention}")
        settings.retention_days = float(retention)
    db = reader.get(monitor, "db", where, str)
    if db is not None:
        settings.db_path = (reader.path.parent / Path(db).expanduser()).resolve()
        settings.sources["db"] = str(reader.path)
    if "first_token_timeout" not in monitor:
        settings.first_token_timeout_s = min(settings.first_token_timeout_s, settings.timeout_s)
    if "connect_timeout" not in monitor:
        settings.connect_timeout_s = min(settings.connect_timeout_s, settings.timeout_s)


def _read_spc(reader: _Reader, data: dict[str, Any], settings: Settings) -> None:
    spc = data.get("spc", {})
    if not isinstance(spc, dict):
        raise reader.error(("spc",), "expected a table [spc]")
    where = ("spc",)
    reader.table(spc, where, _SPC_KEYS)
    n = reader.positive_int(spc, "baseline_samples", where)
    if n is not None:
        if n < 5:
            raise reader.error((*where, "baseline_samples"), f"needs at least 5 samples, got {n}")
        settings.spc.baseline_samples = n
    transform = reader.choice(spc, "transform", where, ("none", "log"))
    if transform is not None:
        settings.spc.transform = transform
    rules = reader.get(spc, "rules", where, list)
    if rules is not None:
        if not rules or any(isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 8 for r in rules):
            raise reader.error((*where, "rules"), f"expected a list of rule numbers 1-8, got {rules!r}")
        settings.spc.rules = tuple(sorted(set(rules)))
    metrics = reader.get(spc, "metrics", where, list)
    if metrics is not None:
        known = [m.value for m in Metric]
        bad = [m for m in metrics if m not in known]
        if not metrics or bad:
            raise reader.error((*where, "metrics"), f"expected a list drawn from {known}, got {metrics!r}")
        settings.spc.metrics = tuple(dict.fromkeys(metrics))
    numbers = (
        ("min_effect", lambda v: 0 <= v < 1, "expected a fraction from 0 to below 1 (0.15 = 15 %)"),
        ("min_change_ms", lambda v: 0 <= v <= 60_000, "expected milliseconds from 0 to 60000"),
        ("cusum_k", lambda v: 0 < v <= 5, "expected a number above 0 and at most 5"),
        ("cusum_h", lambda v: 0.5 < v <= 50, "expected a number above 0.5 and at most 50"),
    )
    for key, ok, expected in numbers:
        value = reader.number(spc, key, where, ok, expected)
        if value is not None:
            setattr(settings.spc, key, value)
    close_after = reader.positive_int(spc, "close_after", where)
    if close_after is not None:
        settings.spc.close_after = close_after
    alert_on = reader.choice(spc, "alert_on", where, ("worse", "both"))
    if alert_on is not None:
        settings.spc.alert_on = alert_on
    if spc.get("accept_after") in ("off", "never"):
        settings.spc.accept_after_s = None
    else:
        settings.spc.accept_after_s = reader.duration(spc, "accept_after", where)


def _read_alerts(reader: _Reader, data: dict[str, Any], settings: Settings) -> None:
    alerts = data.get("alerts", {})
    if not isinstance(alerts, dict):
        raise reader.error(("alerts",), "expected a table [alerts]")
    where = ("alerts",)
    reader.table(alerts, where, _ALERT_KEYS)
    url = reader.get(alerts, "webhook_url", where, str)
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise reader.error((*where, "webhook_url"), f"expected an http(s) URL, got {url!r}")
        settings.alerts.webhook_url = url
    cooldown = reader.duration(alerts, "cooldown", where)
    if cooldown is not None:
        settings.alerts.cooldown_s = cooldown
    bell = reader.get(alerts, "bell", where, bool)
    if bell is not None:
        settings.alerts.bell = bell


def _read_tui(reader: _Reader, data: dict[str, Any], settings: Settings) -> None:
    tui = data.get("tui", {})
    if not isinstance(tui, dict):
        raise reader.error(("tui",), "expected a table [tui]")
    where = ("tui",)
    reader.table(tui, where, _TUI_KEYS)
    fps = reader.get(tui, "fps", where, (int, float))
    if fps is not None:
        low, high = FPS_RANGE
        if not low <= fps <= high:
            raise reader.error((*where, "fps"), f"expected screen updates per second from {low:g} to {high:g}, got {fps}")
        settings.tui.fps = float(fps)
    theme = reader.get(tui, "theme", where, str)
    if theme is not None:
        settings.tui.theme = theme
    mouse = reader.get(tui, "mouse", where, bool)
    if mouse is not None:
        settings.tui.mouse = mouse


def _read_costs(reader: _Reader, data: dict[str, Any], settings: Settings) -> None:
    for section, parse, out in (
        ("budgets", parse_budget, settings.budgets),
        ("prices", parse_price, settings.prices),
    ):
        raw = data.get(section, [])
        if not isinstance(raw, list):
            raise reader.error((section,), f"expected an array of tables [[{section}]]")
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                raise reader.error((section, index), f"expected a table [[{section}]]")
            try:
                out.append(parse(item))
            except CostConfigError as exc:
                raise reader.error((section, index, exc.key), exc.message) from None
    seen: set[str] = set()
    for index, budget in enumerate(settings.budgets):
        if budget.name in seen:
            raise reader.error(("budgets", index, "name"), f"duplicate budget name {budget.name!r}")
        seen.add(budget.name)


def _read_targets(reader: _Reader, data: dict[str, Any], settings: Settings, env: Mapping[str, str]) -> list[Target]:
    raw = data.get("targets", [])
    if not isinstance(raw, list):
        raise reader.error(("targets",), "expected an array of tables [[targets]]")
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        where: tuple[Any, ...] = ("targets", index)
        if not isinstance(item, dict):
            raise reader.error(where, "expected a table [[targets]]")
        reader.table(item, where, _TARGET_KEYS)
        for required in ("name", "provider", "model"):
            if not item.get(required):
                raise reader.error(where, f"missing required key {required!r}")
        name = reader.get(item, "name", where, str).strip()
        if name in seen:
            raise reader.error((*where, "name"), f"duplicate target name {name!r} (first at targets[{seen[name]}])")
        seen[name] = index
        provider = reader.get(item, "provider", where, str)
        preset = PRESETS.get(provider)
        if preset is None:
            raise reader.error(
                (*where, "provider"), f"unknown provider {provider!r} (expected one of: {', '.join(PRESETS)})"
            )
        model = reader.get(item, "model", where, str)
        base_url = reader.get(item, "base_url", where, str)
        if base_url is None:
            base_url = next((env[v] for v in preset.base_url_envs if env.get(v)), None) or preset.base_url
        if base_url is None:
            raise reader.error(where, f"provider {provider!r} needs base_url")
        if not normalize_base_url(base_url).startswith(("http://", "https://")):
            raise reader.error((*where, "base_url"), f"expected an http(s) URL, got {base_url!r}")
        key_env = reader.get(item, "api_key_env", where, str)
        if key_env is not None and not key_env.strip():
            raise reader.error((*where, "api_key_env"), "names no variable; remove it to use the default")
        if key_env is None and preset.key_required and not preset.key_envs:
            raise reader.error(where, f"provider {provider!r} needs api_key_env")
        key_envs = (key_env,) if key_env else preset.key_envs
        chosen_env = next((v for v in key_envs if env.get(v)), key_envs[0] if key_envs else None)
        disabled = None
        if (preset.key_required or key_env) and chosen_env and not env.get(chosen_env):
            disabled = f"{chosen_env} is not set"
        max_tokens = reader.positive_int(item, "max_tokens", where)
        prompt = reader.get(item, "prompt", where, str)
        interval = reader.duration(item, "interval", where)
        api_version = reader.get(item, "api_version", where, str)
        headers = reader.get(item, "headers", where, dict) or {}
        for key, value in headers.items():
            if not isinstance(value, str):
                raise reader.error((*where, "headers"), f"header {key!r} must be a string")
        if provider == "azure" and api_version is None:
            api_version = AZURE_DEFAULT_API_VERSION
        targets.append(
            Target(
                name=name,
                provider=provider,
                model=model,
                protocol=preset.protocol,
                base_url=normalize_base_url(base_url),
                api_key_env=chosen_env,
                prompt=prompt if prompt is not None else DEFAULT_PROMPT,
                max_tokens=max_tokens or 16,
                interval_s=interval or settings.interval_s,
                api_version=api_version,
                disabled_reason=disabled,
                extra_headers=tuple(sorted(headers.items())),
            )
        )
    return targets


def _auto_targets(settings: Settings, env: Mapping[str, str]) -> list[Target]:
    """No config file: one cheap target per provider key found in the environment."""
    targets: list[Target] = []
    providers_done: set[str] = set()
    for var, provider, model in AUTO_TARGETS:
        if not env.get(var) or provider in providers_done:
            continue
        providers_done.add(provider)
        preset = PRESETS[provider]
        base = next((env[v] for v in preset.base_url_envs if env.get(v)), None) or preset.base_url
        assert base is not None
        targets.append(
            Target(
                name=f"{provider}/{model}",
                provider=provider,
                model=model,
                protocol=preset.protocol,
                base_url=normalize_base_url(base),
                api_key_env=var,
                interval_s=settings.interval_s,
            )
        )
    return targets


def _apply_env(env: Mapping[str, str], settings: Settings) -> None:
    for names, attr, key in (
        (("LLMSCOPE_INTERVAL", "MONITORING_INTERVAL"), "interval_s", "interval"),
    ):
        var = next((n for n in names if env.get(n)), None)
        if var:
            try:
                setattr(settings, attr, parse_duration(env[var]))
            except ValueError as exc:
                raise ConfigError(f"environment variable {var}: {exc}") from None
            settings.sources[key] = var
    var = next((n for n in ("LLMSCOPE_RETENTION_DAYS", "DATA_RETENTION_DAYS") if env.get(n)), None)
    if var:
        try:
            days = float(env[var])
        except ValueError:
            raise ConfigError(f"environment variable {var}: expected a number of days, got {env[var]!r}") from None
        if not days > 0:
            raise ConfigError(f"environment variable {var}: must be a positive number of days, got {env[var]!r}")
        settings.retention_days = days
        settings.sources["retention_days"] = var
    if env.get("LLMSCOPE_DB"):
        settings.db_path = Path(env["LLMSCOPE_DB"]).expanduser()
        settings.sources["db"] = "LLMSCOPE_DB"

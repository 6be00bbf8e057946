"""Which file, what the environment says, and the resolved :class:`Settings`.

Precedence: command-line flag > environment > config file > built-in default. Search order for
the file: --config, LLMSCOPE_CONFIG, then the platform config directory (see paths.py). Every
problem is one ConfigError line naming the file, the line and the key (the CLI exits 2).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmscope_tui import paths
from llmscope_tui.config.locate import Loc, describe
from llmscope_tui.config.providers import (
    AUTO_TARGETS,
    AZURE_DEFAULT_API_VERSION,
    PRESETS,
    normalize_base_url,
    url_problem,
)
from llmscope_tui.config.settings import (
    DEFAULT_PROMPT,
    MAX_INTERVAL_S,
    MAX_RETENTION_DAYS,
    ConfigError,
    Settings,
    location_problem,
)
from llmscope_tui.durations import parse_duration
from llmscope_tui.model import Target

if TYPE_CHECKING:
    from llmscope_tui.config.schema import ConfigFile, TargetTable


def find_config_file(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read, or None for "no config" (then: keys from the environment, or
    the demo)."""
    if explicit is not None and not str(explicit).strip():
        raise ConfigError("--config: empty path; name a config file, or use --demo for the simulated provider")
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
    settings = Settings(config_file=path, targets=[], db_path=paths.default_db_file())
    source: _Source | None = None
    if path is not None:
        source = _Source(path)
        _apply_file(source.file, path, settings)
    _apply_env(env, settings)
    if db:
        settings.db_path = Path(db).expanduser()
        settings.sources["db"] = "--db"

    if source is not None:
        settings.targets = [
            _target(source, index, item, settings, env)
            for index, item in enumerate(source.file.targets)
        ]
    elif not demo:
        settings.targets = _auto_targets(settings, env)
    if not settings.targets and source is None:
        settings.demo = True  # no config file and no key: the demo (a file with no targets is not)
    if source is not None:
        settings.warnings += _exposed_secrets(source)
    settings.remember_secrets(env)
    return settings


#: Header names whose values are credentials (a substring of the lower-cased name).
_SECRET_HEADER_WORDS = ("authorization", "api-key", "api_key", "apikey", "token", "secret", "cookie")


def _exposed_secrets(source: _Source) -> list[str]:
    """A config file that holds a secret (a credential header, a webhook URL, which is itself
    a key to post to the channel) and that other users can read: a warning, not an error."""
    if os.name != "posix":
        return []
    try:
        mode = source.path.stat().st_mode & 0o777
    except OSError:
        return []
    if not mode & 0o077:
        return []
    held = []
    if source.file.alerts.webhook_url:
        held.append("[alerts] webhook_url")
    for index, target in enumerate(source.file.targets):
        held += [
            f"targets[{index}].headers.{name}"
            for name in target.headers
            if any(word in name.lower() for word in _SECRET_HEADER_WORDS)
        ]
    if not held:
        return []
    warning = (
        f"{source.path} holds a secret ({', '.join(held)}) and others can read it "
        f"(mode {mode:04o}); run: chmod 600 {source.path}"
    )
    return [warning]


class _Source:
    """One config file: its text, and its tables checked against the schema."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: config file is not UTF-8 text") from None
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(_toml_error(path, exc)) from None
        self.file = self._check(data)

    def _check(self, data: dict[str, Any]) -> ConfigFile:
        # pydantic is imported here, not at the top: a run with no config file (the demo, keys
        # from the environment) and every `import llmscope_tui.config` skip its import time.
        from pydantic import ValidationError

        from llmscope_tui.config.messages import first_problem
        from llmscope_tui.config.schema import ConfigFile

        try:
            return ConfigFile.model_validate(data)
        except ValidationError as exc:
            raise self.error(*first_problem(exc)) from None

    def error(self, loc: Loc, message: str) -> ConfigError:
        return ConfigError(describe(self.path, self.text, loc, message))


_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def _toml_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    """tomllib's reason with its line moved where all our errors put it: ``file:line:``."""
    reason = str(exc)
    found = _TOML_POSITION.search(reason)
    if found is None:
        return f"{path}: invalid TOML: {reason}"
    line, column = found.groups()
    return f"{path}:{line}: invalid TOML: {reason[: found.start()]} (column {column})"


def _apply_file(file: ConfigFile, path: Path, settings: Settings) -> None:
    monitor = file.monitor
    for key, attr in (
        ("interval", "interval_s"),
        ("timeout", "timeout_s"),
        ("connect_timeout", "connect_timeout_s"),
        ("first_token_timeout", "first_token_timeout_s"),
    ):
        value = getattr(monitor, key)
        if value is not None:
            setattr(settings, attr, value)
            settings.sources[key] = str(path)
    if monitor.concurrency is not None:
        settings.concurrency = monitor.concurrency
    if monitor.retention_days is not None:
        settings.retention_days = monitor.retention_days
    if monitor.location is not None:
        settings.location = monitor.location
        settings.sources["location"] = str(path)
    if monitor.db is not None:
        settings.db_path = (path.parent / Path(monitor.db).expanduser()).resolve()
        settings.sources["db"] = str(path)
    if monitor.first_token_timeout is None:
        settings.first_token_timeout_s = min(settings.first_token_timeout_s, settings.timeout_s)
    if monitor.connect_timeout is None:
        settings.connect_timeout_s = min(settings.connect_timeout_s, settings.timeout_s)

    spc, out = file.spc, settings.spc
    spc_keys = ("baseline_samples", "transform", "min_effect", "min_change_ms", "cusum_k", "cusum_h")
    _overlay(out, spc, **{key: key for key in (*spc_keys, "close_after", "alert_on")})
    if spc.rules is not None:
        out.rules = tuple(sorted(set(spc.rules)))
    if spc.metrics is not None:
        out.metrics = tuple(dict.fromkeys(spc.metrics))
    out.accept_after_s = spc.accept_after

    _overlay(settings.alerts, file.alerts, webhook_url="webhook_url", cooldown_s="cooldown", bell="bell")
    _overlay(settings.tui, file.tui, fps="fps", theme="theme", mouse="mouse")
    _overlay(settings.otlp, file.otlp, endpoint="endpoint", interval_s="interval")
    if file.otlp.endpoint is not None:
        settings.sources["otlp"] = str(path)

    settings.budgets = list(file.budgets)
    settings.prices = list(file.prices)


def _target(
    source: _Source, index: int, item: TargetTable, settings: Settings, env: Mapping[str, str]
) -> Target:
    """One checked [[targets]] table + the environment (URL and key variables) -> a Target."""
    where: Loc = ("targets", index)
    preset = PRESETS[item.provider]
    base_url = item.base_url
    from_env = None
    if base_url is None:
        from_env = next((v for v in preset.base_url_envs if env.get(v)), None)
        base_url = env[from_env] if from_env else preset.base_url
    if base_url is None:
        raise source.error(where, f"provider {item.provider!r} needs base_url")
    problem = url_problem(normalize_base_url(base_url))
    if problem is not None and from_env:
        raise ConfigError(f"{from_env} (the base URL of target {item.name!r}): {problem}")
    if problem is not None:
        raise source.error((*where, "base_url"), problem)
    if item.api_key_env is None and preset.key_required and not preset.key_envs:
        raise source.error(where, f"provider {item.provider!r} needs api_key_env")
    key_envs = (item.api_key_env,) if item.api_key_env else preset.key_envs
    chosen_env = next((v for v in key_envs if env.get(v)), key_envs[0] if key_envs else None)
    disabled = None
    if (preset.key_required or item.api_key_env) and chosen_env and not env.get(chosen_env):
        disabled = f"{chosen_env} is not set"
    api_version = item.api_version
    if item.provider == "azure" and api_version is None:
        api_version = AZURE_DEFAULT_API_VERSION
    return Target(
        name=item.name,
        provider=item.provider,
        model=item.model,
        protocol=preset.protocol,
        base_url=normalize_base_url(base_url),
        api_key_env=chosen_env,
        prompt=item.prompt if item.prompt is not None else DEFAULT_PROMPT,
        max_tokens=item.max_tokens or 16,
        interval_s=item.interval or settings.interval_s,
        api_version=api_version,
        disabled_reason=disabled,
        extra_headers=tuple(sorted(item.headers.items())),
    )


def _auto_targets(settings: Settings, env: Mapping[str, str]) -> list[Target]:
    """No config file: one cheap target per provider key found in the environment."""
    targets: list[Target] = []
    providers_done: set[str] = set()
    for var, provider, model in AUTO_TARGETS:
        if not env.get(var) or provider in providers_done:
            continue
        providers_done.add(provider)
        preset = PRESETS[provider]
        from_env = next((v for v in preset.base_url_envs if env.get(v)), None)
        base = env[from_env] if from_env else preset.base_url
        assert base is not None
        problem = url_problem(normalize_base_url(base))
        if problem is not None:
            raise ConfigError(f"{from_env}: {problem}")
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
    var = next((n for n in ("LLMSCOPE_INTERVAL", "MONITORING_INTERVAL") if env.get(n)), None)
    if var:
        try:
            settings.interval_s = parse_duration(env[var], MAX_INTERVAL_S)
        except ValueError as exc:
            raise ConfigError(f"environment variable {var}: {exc}") from None
        settings.sources["interval"] = var
    var = next((n for n in ("LLMSCOPE_RETENTION_DAYS", "DATA_RETENTION_DAYS") if env.get(n)), None)
    if var:
        try:
            days = float(env[var])
        except ValueError:
            raise ConfigError(
                f"environment variable {var}: expected a number of days, got {env[var]!r}"
            ) from None
        if not 0 < days <= MAX_RETENTION_DAYS:
            raise ConfigError(
                f"environment variable {var}: expected days above 0 and at most {MAX_RETENTION_DAYS:g}, got {env[var]!r}"
            )
        settings.retention_days = days
        settings.sources["retention_days"] = var
    if env.get("LLMSCOPE_LOCATION"):
        problem = location_problem(env["LLMSCOPE_LOCATION"])
        if problem is not None:
            raise ConfigError(f"environment variable LLMSCOPE_LOCATION: {problem}")
        settings.location = env["LLMSCOPE_LOCATION"].strip()
        settings.sources["location"] = "LLMSCOPE_LOCATION"
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):  # the OpenTelemetry standard variable
        problem = url_problem(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        if problem is not None:
            raise ConfigError(f"environment variable OTEL_EXPORTER_OTLP_ENDPOINT: {problem}")
        settings.otlp.endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        settings.sources["otlp"] = "OTEL_EXPORTER_OTLP_ENDPOINT"
    if env.get("LLMSCOPE_DB"):
        settings.db_path = Path(env["LLMSCOPE_DB"]).expanduser()
        settings.sources["db"] = "LLMSCOPE_DB"


def _overlay(settings: Any, table: Any, **fields: str) -> None:
    """Copy each key the file set (not None) onto the settings: ``setting_name="file_key"``."""
    for name, key in fields.items():
        value = getattr(table, key)
        if value is not None:
            setattr(settings, name, value)

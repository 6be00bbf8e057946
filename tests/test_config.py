"""Config: resolution order, environment overrides, and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmscope_tui import paths
from llmscope_tui.config import ConfigError, load_settings
from llmscope_tui.durations import parse_duration

GOOD = """\
[monitor]
interval = "15s"
timeout = "30s"
concurrency = 4

[[targets]]
name = "gpt-4o-mini"
provider = "openai"
model = "gpt-4o-mini"
interval = "30s"

[[targets]]
name = "local"
provider = "ollama"
model = "llama3.2"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env or {})
    return str(info.value)


def test_durations() -> None:
    assert parse_duration("500ms") == 0.5
    assert parse_duration("15s") == 15
    assert parse_duration("2m") == 120
    assert parse_duration("24h") == 86400
    assert parse_duration(3) == 3.0
    for bad in ("fast", "-1s", 0, True, "1 week", None):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_good_config_resolves_targets_and_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), env={"OPENAI_API_KEY": "sk-test"})
    assert not settings.demo
    assert settings.concurrency == 4
    gpt, local = settings.targets
    assert (gpt.protocol, gpt.base_url, gpt.api_key_env, gpt.interval_s) == (
        "openai",
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        30.0,
    )
    assert gpt.enabled
    assert (local.protocol, local.base_url, local.interval_s, local.api_key_env) == (
        "ollama",
        "http://127.0.0.1:11434",
        15.0,
        None,
    )


def test_missing_key_disables_only_that_target(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), env={})
    gpt, local = settings.targets
    assert gpt.disabled_reason == "OPENAI_API_KEY is not set"
    assert local.enabled
    assert [t.name for t in settings.enabled_targets] == ["local"]


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "OPENAI_API_KEY": "k",
        "LLMSCOPE_INTERVAL": "5s",
        "DATA_RETENTION_DAYS": "3",
        "LLMSCOPE_DB": str(tmp_path / "x.db"),
        "OLLAMA_HOST": "0.0.0.0:11500",
    }
    settings = load_settings(write(tmp_path, GOOD), env=env)
    assert settings.interval_s == 5.0
    assert settings.targets[1].interval_s == 5.0  # no per-target override
    assert settings.targets[0].interval_s == 30.0  # per-target wins
    assert settings.retention_days == 3.0
    assert settings.db_path == tmp_path / "x.db"
    assert settings.targets[1].base_url == "http://127.0.0.1:11500"
    assert settings.sources["db"] == "LLMSCOPE_DB"


def test_location_defaults_to_the_short_host_name_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "probe-eu1.example.net")
    assert load_settings(write(tmp_path, GOOD), env={}).location == "probe-eu1"
    config = write(tmp_path, GOOD.replace("concurrency = 4", 'concurrency = 4\nlocation = "eu-west"'))
    settings = load_settings(config, env={})
    assert (settings.location, settings.sources["location"]) == ("eu-west", str(config))
    settings = load_settings(config, env={"LLMSCOPE_LOCATION": "us-east"})
    assert (settings.location, settings.sources["location"]) == ("us-east", "LLMSCOPE_LOCATION")
    with pytest.raises(ConfigError, match="^environment variable LLMSCOPE_LOCATION: must be printable"):
        load_settings(config, env={"LLMSCOPE_LOCATION": "a\tb"})
    monkeypatch.setattr(socket, "gethostname", lambda: "")
    assert load_settings(None, env={}).location == "unknown"


def test_monitoring_interval_is_an_alias(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), env={"MONITORING_INTERVAL": "2m"})
    assert settings.interval_s == 120


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LLMSCOPE_INTERVAL"):
        load_settings(write(tmp_path, GOOD), env={"LLMSCOPE_INTERVAL": "soon"})


def test_no_config_no_keys_is_the_demo() -> None:
    settings = load_settings(None, env={})
    assert settings.demo and settings.targets == []
    assert settings.db_path == paths.default_db_file()


def test_no_config_with_keys_probes_those_providers() -> None:
    settings = load_settings(None, env={"ANTHROPIC_API_KEY": "x", "GOOGLE_API_KEY": "y"})
    assert not settings.demo
    assert [(t.provider, t.api_key_env) for t in settings.targets] == [
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("gemini", "GOOGLE_API_KEY"),
    ]


def test_config_search_order(tmp_path: Path) -> None:
    user_file = paths.default_config_file()
    user_file.parent.mkdir(parents=True)
    user_file.write_text(GOOD)
    assert load_settings(None, env={}).config_file == user_file
    env_file = write(tmp_path, GOOD.replace("gpt-4o-mini", "other"), "env.toml")
    assert load_settings(None, env={"LLMSCOPE_CONFIG": str(env_file)}).config_file == env_file
    flag_file = write(tmp_path, GOOD, "flag.toml")
    assert load_settings(flag_file, env={"LLMSCOPE_CONFIG": str(env_file)}).config_file == flag_file


def test_missing_explicit_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="LLMSCOPE_CONFIG"):
        load_settings(None, env={"LLMSCOPE_CONFIG": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[monitor]\ninterval = 'fast'\n", ":2: monitor.interval: expected a duration"),
        ("[monitor]\nconcurency = 3\n", ":2: monitor.concurency: unknown key"),
        ("[monitor]\nconcurrency = 'many'\n", ":2: monitor.concurrency: expected a whole number"),
        ("[monitor]\nconcurrency = 0\n", ":2: monitor.concurrency: expected 1 to 1,000"),
        ("[monitr]\n", ":1: monitr: unknown key"),
        (
            GOOD + "\n[[targets]]\nname = 'x'\nprovider = 'openia'\nmodel = 'm'\n",
            ":19: targets[2].provider: unknown provider 'openia'",
        ),
        (
            GOOD + "\n[[targets]]\nname = 'local'\nprovider = 'ollama'\nmodel = 'm'\n",
            ":18: targets[2].name: duplicate target name 'local' (first at targets[1])",
        ),
        (GOOD + "\n[[targets]]\nname = 'x'\nprovider = 'ollama'\n", ":17: targets[2]: missing required key 'model'"),
        (GOOD.replace('interval = "30s"', 'interval = "30 parsecs"'), ":10: targets[0].interval: expected a duration"),
        (GOOD.replace('interval = "30s"', "max_tokens = -4"), ":10: targets[0].max_tokens: expected 1 to 100,000"),
        (GOOD.replace('interval = "30s"', "temperature = 0"), ":10: targets[0].temperature: unknown key"),
        ("[[targets]]\nname='a'\nprovider='azure'\nmodel='d'\n", ":1: targets[0]: provider 'azure' needs base_url"),
        ("[[targets]]\nname='a'\nprovider='ollama'\nmodel='d'\napi_key_env=''\n", ":5: targets[0].api_key_env"),
        ("[spc]\ntransform = 'sqrt'\n", ":2: spc.transform"),
        ("[spc]\nrules = [1, 9]\n", ":2: spc.rules"),
        ("[spc]\nmin_effect = 15\n", ":2: spc.min_effect: expected a fraction from 0 to below 1"),
        ("[spc]\ncusum_h = 0\n", ":2: spc.cusum_h: expected a number above 0.5"),
        ("[spc]\nalert_on = 'sometimes'\n", ':2: spc.alert_on: expected "worse" or "both"'),
        ("[spc]\naccept_after = 'later'\n", ":2: spc.accept_after: expected a duration"),
        ("[spc]\nclose_after = 0\n", ":2: spc.close_after: must be at least 1"),
        ("[alerts]\nwebhook_url = 'slack'\n", ":2: alerts.webhook_url"),
        ("[monitor\n", "invalid TOML"),
        ("[monitor]\nlocation = '  '\n", ":2: monitor.location: must not be blank"),
        ("[monitor]\nlocation = 3\n", ":2: monitor.location: expected a string"),
        ('[monitor]\nlocation = "eu\\n1"\n', ":2: monitor.location: must be printable text"),
        ("[monitor]\nlocation = '" + "x" * 65 + "'\n", ":2: monitor.location: at most 64 characters"),
    ],
)
def test_each_mistake_is_one_line_with_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(tmp_path, text, env={"OPENAI_API_KEY": "k"})
    assert "\n" not in message
    assert str(tmp_path / "config.toml") in message
    assert expected in message


def test_azure_builds_deployment_url(tmp_path: Path) -> None:
    text = (
        "[[targets]]\nname='az'\nprovider='azure'\nmodel='my-deploy'\n"
        "base_url='https://res.openai.azure.com/'\n"
    )
    settings = load_settings(write(tmp_path, text), env={"AZURE_OPENAI_API_KEY": "k"})
    target = settings.targets[0]
    assert target.base_url == "https://res.openai.azure.com"
    assert target.api_version
    from llmscope_tui.wire import PROTOCOLS

    spec = PROTOCOLS["openai"].build_request(target, "secret")
    assert spec.url.startswith("https://res.openai.azure.com/openai/deployments/my-deploy/chat/completions?api-version=")
    assert spec.headers["api-key"] == "secret" and "authorization" not in spec.headers


def test_relative_db_is_relative_to_the_config_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, "[monitor]\ndb = 'data/s.db'\n"), env={})
    assert settings.db_path == (tmp_path / "data" / "s.db").resolve()


def test_budgets_and_prices(tmp_path: Path) -> None:
    text = (
        "[[budgets]]\nname = 'all'\nlimit_usd = 50\nperiod = 'month'\nscope = 'all'\n"
        "[[prices]]\nmodel = 'my-model'\nprovider = 'vllm'\ninput_per_mtok = 0\noutput_per_mtok = 0\n"
    )
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.budgets[0].name == "all" and settings.budgets[0].limit_usd == 50
    assert settings.prices[0].model == "my-model"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[budgets]]\nname = 'a'\nlimit_usd = -1\n", ":3: budgets[0].limit_usd"),
        ("[[budgets]]\nname = 'a'\nlimit_usd = 5\nperiod = 'week'\n", ":4: budgets[0].period"),
        ("[[budgets]]\nname = 'a'\nlimit_usd = 5\n[[budgets]]\nname = 'a'\nlimit_usd = 5\n", ":5: budgets[1].name"),
        ("[[prices]]\nmodel = 'm'\ninput_per_mtok = 'cheap'\noutput_per_mtok = 1\n", ":3: prices[0].input_per_mtok"),
    ],
)
def test_budget_and_price_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_incident_policy_keys(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        GOOD + "\n[spc]\nmin_effect = 0.3\nalert_on = 'both'\naccept_after = '2h'\nclose_after = 5\n"
        "cusum_k = 1\ncusum_h = 6\nmin_change_ms = 5\n"
    )
    spc = load_settings(tmp_path / "c.toml", env={"OPENAI_API_KEY": "k"}).spc
    assert (spc.min_effect, spc.alert_on, spc.accept_after_s, spc.close_after) == (0.3, "both", 7200.0, 5)
    assert (spc.cusum_k, spc.cusum_h, spc.min_change_ms) == (1.0, 6.0, 5.0)
    defaults = load_settings(None, env={}).spc
    assert (defaults.baseline_samples, defaults.transform, defaults.accept_after_s) == (100, "log", None)
    assert load_settings(None, env={}).alerts.bell is False  # the bell is off unless asked for


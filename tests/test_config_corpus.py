"""A corpus of broken config files: each is one exact line naming file, line, key and problem.

Users praise these lines, so the wording is pinned here: the line comes from locate.py's
scanner (dotted keys, inline tables, arrays of tables, keys given nowhere), the words from
messages.py (never pydantic's). A few go through the real command as well: exit 2, one line,
no traceback (DESIGN 8).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from llmscope_tui.cli import main
from llmscope_tui.config import ConfigError, load_settings
from llmscope_tui.config.locate import key_lines, line_of

T = '[[targets]]\nname = "a"\nprovider = "ollama"\nmodel = "m"\n'

# (case, file text, the error after "<file>:")
CORPUS = [
    (
        "unknown-table",
        "[monitr]\ninterval = '5s'\n",
        "1: monitr: unknown key (expected one of: alerts, budgets, monitor, otlp, prices, spc, targets, tui)",
    ),
    (
        "unknown-top-key",
        "# my config\ncolour = 'red'\n",
        "2: colour: unknown key (expected one of: alerts, budgets, monitor, otlp, prices, spc, targets, tui)",
    ),
    (
        "unknown-monitor-key",
        "[monitor]\nconcurency = 3\n",
        "2: monitor.concurency: unknown key (expected one of: concurrency, connect_timeout, db, first_token_timeout, interval, location, retention_days, timeout)",
    ),
    (
        "unknown-spc-key",
        "[spc]\ntransfrom = 'log'\n",
        "2: spc.transfrom: unknown key (expected one of: accept_after, alert_on, baseline_samples, close_after, cusum_h, cusum_k, metrics, min_change_ms, min_effect, rules, transform)",
    ),
    (
        "unknown-alerts-key",
        "[alerts]\nwebhook = 'https://x'\n",
        "2: alerts.webhook: unknown key (expected one of: bell, cooldown, webhook_url)",
    ),
    (
        "unknown-tui-key",
        "[tui]\ncolours = 'dark'\n",
        "2: tui.colours: unknown key (expected one of: fps, mouse, theme)",
    ),
    (
        "unknown-target-key",
        T + "temperature = 0\n",
        "5: targets[0].temperature: unknown key (expected one of: api_key_env, api_version, base_url, headers, interval, max_tokens, model, name, prompt, provider)",
    ),
    (
        "unknown-budget-key",
        "[[budgets]]\nname = 'a'\nlimit_usd = 5\ndaily = 1\n",
        "4: budgets[0].daily: unknown key in [[budgets]] (expected one of: name, limit_usd, period, scope, pause_probes_at)",
    ),
    (
        "unknown-price-key",
        "[[prices]]\nmodel = 'm'\ninput_per_mtok = 1\noutput_per_mtok = 1\ncached = 1\n",
        "5: prices[0].cached: unknown key in [[prices]] (expected one of: model, provider, input_per_mtok, output_per_mtok, cache_read_per_mtok)",
    ),
    (
        "unknown-subtable",
        "[spc.extra]\na = 1\n",
        "1: spc.extra: unknown key (expected one of: accept_after, alert_on, baseline_samples, close_after, cusum_h, cusum_k, metrics, min_change_ms, min_effect, rules, transform)",
    ),
    (
        "dotted-top-level",
        "# charts\nspc.transform = 'sqrt'\n",
        '2: spc.transform: expected "none" or "log", got \'sqrt\'',
    ),
    (
        "dotted-in-table",
        "[monitor]\ninterval = '5s'\nfoo.bar = 1\n",
        "3: monitor.foo: unknown key (expected one of: concurrency, connect_timeout, db, first_token_timeout, interval, location, retention_days, timeout)",
    ),
    (
        "dotted-quoted",
        '"spc" . "cusum_k" = 0\n',
        "1: spc.cusum_k: expected a number above 0 and at most 5, got 0",
    ),
    (
        "dotted-spaced-in-target",
        T + "headers . X-Id = 5\n",
        "5: targets[0].headers: header 'X-Id' must be a string",
    ),
    (
        "inline-table-top",
        "monitor = { interval = '5s', concurrency = 0 }\n",
        "1: monitor.concurrency: expected 1 to 1,000, got 0",
    ),
    (
        "inline-budgets-not-array",
        "budgets = { daily = 5 }\n",
        "1: budgets: expected an array of tables [[budgets]]",
    ),
    (
        "inline-headers",
        T + 'headers = { "X-Id" = "1", X-Num = 5 }\n',
        "5: targets[0].headers: header 'X-Num' must be a string",
    ),
    (
        "array-of-inline-targets",
        'targets = [\n  { name = "a", provider = "ollama", model = "m" },\n  { name = "b", provider = "nope", model = "m" },\n]\n',
        "3: targets[1].provider: unknown provider 'nope' (expected one of: openai, azure, anthropic, gemini, ollama, vllm, llamacpp, lmstudio, openrouter, groq, mistral, deepseek, together, fireworks, openai-compatible)",
    ),
    (
        "inline-target-missing-model",
        'targets = [ { name = "a", provider = "ollama" } ]\n',
        "1: targets[0]: missing required key 'model'",
    ),
    (
        "missing-model",
        T + '\n[[targets]]\nname = "b"\nprovider = "ollama"\n',
        "6: targets[1]: missing required key 'model'",
    ),
    (
        "empty-name",
        '[[targets]]\nname = "  "\nprovider = "ollama"\nmodel = "m"\n',
        "1: targets[0]: missing required key 'name'",
    ),
    (
        "duplicate-name",
        T + '\n[[targets]]\nname = "a"\nprovider = "ollama"\nmodel = "m"\n',
        "7: targets[1].name: duplicate target name 'a' (first at targets[0])",
    ),
    (
        "unknown-provider",
        "[[targets]]\nname = \"a\"\nprovider = \"ollama\"\nmodel = \"m\"\n\n[[targets]]\nname = 'x'\nprovider = 'openia'\nmodel = 'm'\n",
        "8: targets[1].provider: unknown provider 'openia' (expected one of: openai, azure, anthropic, gemini, ollama, vllm, llamacpp, lmstudio, openrouter, groq, mistral, deepseek, together, fireworks, openai-compatible)",
    ),
    (
        "azure-needs-base-url",
        "[[targets]]\nname='a'\nprovider='azure'\nmodel='d'\n",
        "1: targets[0]: provider 'azure' needs base_url",
    ),
    (
        "base-url-not-http",
        T + "base_url = 'ftp://host'\n",
        "5: targets[0].base_url: expected an http(s) URL, got 'ftp://host'",
    ),
    (
        "empty-api-key-env",
        T + "api_key_env = ''\n",
        "5: targets[0].api_key_env: names no variable; remove it to use the default",
    ),
    (
        "max-tokens-zero",
        T + "max_tokens = 0\n",
        "5: targets[0].max_tokens: expected 1 to 100,000, got 0",
    ),
    (
        "max-tokens-string",
        T + "max_tokens = '16'\n",
        "5: targets[0].max_tokens: expected a whole number, got '16'",
    ),
    (
        "max-tokens-float",
        T + "max_tokens = 1.5\n",
        "5: targets[0].max_tokens: expected a whole number, got 1.5",
    ),
    (
        "target-interval",
        T + "interval = '30 parsecs'\n",
        "5: targets[0].interval: expected a duration like 15s, 500ms or 2m, got '30 parsecs'",
    ),
    ("target-not-a-table", "targets = [1]\n", "1: targets[0]: expected a table [[targets]]"),
    ("targets-not-array", "targets = 5\n", "1: targets: expected an array of tables [[targets]]"),
    ("monitor-not-table", "monitor = 5\n", "1: monitor: expected a table [monitor]"),
    (
        "interval-negative",
        "[monitor]\ninterval = -1\n",
        "2: monitor.interval: a duration must be a positive number of seconds, got -1",
    ),
    (
        "timeout-bool",
        "[monitor]\ntimeout = true\n",
        "2: monitor.timeout: expected a duration like 15s, 500ms or 2m, got True",
    ),
    (
        "concurrency-string",
        "[monitor]\nconcurrency = 'many'\n",
        "2: monitor.concurrency: expected a whole number, got 'many'",
    ),
    (
        "retention-zero",
        "[monitor]\nretention_days = 0\n",
        "2: monitor.retention_days: expected a number of days above 0 and at most 3650, got 0",
    ),
    (
        "retention-string",
        "[monitor]\nretention_days = 'week'\n",
        "2: monitor.retention_days: expected a whole number or a number, got 'week'",
    ),
    ("db-number", "[monitor]\ndb = 5\n", "2: monitor.db: expected a string, got 5"),
    (
        "baseline-too-small",
        "[spc]\nbaseline_samples = 3\n",
        "2: spc.baseline_samples: needs at least 5 samples, got 3",
    ),
    (
        "rules-out-of-range",
        "[spc]\nrules = [1, 9]\n",
        "2: spc.rules: expected a list of rule numbers 1-8, got [1, 9]",
    ),
    ("rules-not-list", "[spc]\nrules = 'all'\n", "2: spc.rules: expected a list, got 'all'"),
    (
        "metrics-unknown",
        "[spc]\nmetrics = ['ttft']\n",
        "2: spc.metrics: expected a list drawn from ['ttft_ms', 'latency_ms', 'itl_ms', 'tps'], got ['ttft']",
    ),
    (
        "min-effect-percent",
        "[spc]\nmin_effect = 15\n",
        "2: spc.min_effect: expected a fraction from 0 to below 1 (0.15 = 15 %), got 15",
    ),
    (
        "cusum-k-zero",
        "[spc]\ncusum_k = 0\n",
        "2: spc.cusum_k: expected a number above 0 and at most 5, got 0",
    ),
    (
        "cusum-h-float",
        "[spc]\ncusum_h = 0.25\n",
        "2: spc.cusum_h: expected a number above 0.5 and at most 50, got 0.25",
    ),
    (
        "min-change-too-big",
        "[spc]\nmin_change_ms = 70000\n",
        "2: spc.min_change_ms: expected milliseconds from 0 to 60000, got 70000",
    ),
    ("transform-number", "[spc]\ntransform = 2\n", "2: spc.transform: expected a string, got 2"),
    (
        "alert-on",
        "[spc]\nalert_on = 'sometimes'\n",
        '2: spc.alert_on: expected "worse" or "both", got \'sometimes\'',
    ),
    (
        "accept-after",
        "[spc]\naccept_after = 'later'\n",
        "2: spc.accept_after: expected a duration like 15s, 500ms or 2m, got 'later'",
    ),
    (
        "close-after-zero",
        "[spc]\nclose_after = 0\n",
        "2: spc.close_after: must be at least 1, got 0",
    ),
    (
        "webhook-not-url",
        "[alerts]\nwebhook_url = 'slack'\n",
        "2: alerts.webhook_url: expected an http(s) URL, got 'slack'",
    ),
    (
        "cooldown-words",
        "[alerts]\ncooldown = '5 minutes'\n",
        "2: alerts.cooldown: expected a duration like 15s, 500ms or 2m, got '5 minutes'",
    ),
    (
        "bell-string",
        "[alerts]\nbell = 'yes'\n",
        "2: alerts.bell: expected true or false, got 'yes'",
    ),
    (
        "fps-too-high",
        "[tui]\nfps = 100\n",
        "2: tui.fps: expected screen updates per second from 0.2 to 30, got 100",
    ),
    ("mouse-number", "[tui]\nmouse = 1\n", "2: tui.mouse: expected true or false, got 1"),
    ("theme-number", "[tui]\ntheme = 3\n", "2: tui.theme: expected a string, got 3"),
    (
        "budget-negative",
        "[[budgets]]\nname = 'a'\nlimit_usd = -1\n",
        "3: budgets[0].limit_usd: must be > 0, got -1",
    ),
    (
        "budget-period",
        "[[budgets]]\nname = 'a'\nlimit_usd = 5\nperiod = 'week'\n",
        '4: budgets[0].period: must be "day" or "month", got \'week\'',
    ),
    (
        "budget-missing-limit",
        "[[budgets]]\nname = 'a'\n",
        "1: budgets[0].limit_usd: is required in [[budgets]]",
    ),
    (
        "budget-duplicate",
        "[[budgets]]\nname = 'a'\nlimit_usd = 5\n[[budgets]]\nname = 'a'\nlimit_usd = 5\n",
        "5: budgets[1].name: duplicate budget name 'a'",
    ),
    (
        "price-not-number",
        "[[prices]]\nmodel = 'm'\ninput_per_mtok = 'cheap'\noutput_per_mtok = 1\n",
        "3: prices[0].input_per_mtok: must be a number, got 'cheap'",
    ),
    (
        "multiline-string-before",
        T + 'prompt = """\nsay\n[not a header]\nOK"""\nmax_tokens = 0\n',
        "9: targets[0].max_tokens: expected 1 to 100,000, got 0",
    ),
    (
        "comment-and-string-tricks",
        T
        + 'prompt = \'a # not a comment\'  # comment [x]\napi_version = "v\\"1"\nmax_tokens = -2\n',
        "7: targets[0].max_tokens: expected 1 to 100,000, got -2",
    ),
    (
        "subtable-of-target",
        T + "[targets.headers]\nX = 1\n",
        "5: targets[0].headers: header 'X' must be a string",
    ),
    (
        "third-target",
        T
        + '\n[[targets]]\nname = "b"\nprovider = "ollama"\nmodel = "m"\n\n# third\n[[targets]]\nname = "c"\nprovider = "ollama"\nmodel = "m"\ninterval = \'soon\'\n',
        "16: targets[2].interval: expected a duration like 15s, 500ms or 2m, got 'soon'",
    ),
    (
        "headers-not-a-table",
        T + "headers = 'X-Id: 1'\n",
        "5: targets[0].headers: expected a table, got 'X-Id: 1'",
    ),
    (
        "name-not-a-string",
        T.replace('name = "a"', "name = 0"),
        "2: targets[0].name: expected a string, got 0",
    ),
    (
        "retention-nan",
        "[monitor]\nretention_days = nan\n",
        "2: monitor.retention_days: expected a number of days above 0 and at most 3650, got nan",
    ),
    # values a run cannot use (issue 13): malformed URLs and ports, past sane bounds, blank names
    (
        "base-url-port-out-of-range",
        T + 'base_url = "http://127.0.0.1:99999/v1"\n',
        "5: targets[0].base_url: not a valid URL (Port out of range 0-65535), got 'http://127.0.0.1:99999/v1'",
    ),
    (
        "base-url-open-bracket",
        T + 'base_url = "http://[::1/v1"\n',
        "5: targets[0].base_url: not a valid URL (Invalid IPv6 URL), got 'http://[::1/v1'",
    ),
    (
        "base-url-space",
        T + 'base_url = "http://exa mple.com/v1"\n',
        "5: targets[0].base_url: a URL has no spaces, got 'http://exa mple.com/v1'",
    ),
    (
        "base-url-no-host",
        T + 'base_url = "http:///v1"\n',
        "5: targets[0].base_url: expected a host in the URL, got 'http:///v1'",
    ),
    ("interval-1e300", "[monitor]\ninterval = 1e300\n", "2: monitor.interval: at most 1d, got 1e+300"),
    (
        "interval-huge-days",
        "[monitor]\ninterval = '99999999999999d'\n",
        "2: monitor.interval: at most 1d, got '99999999999999d'",
    ),
    ("timeout-a-week", "[monitor]\ntimeout = '7d'\n", "2: monitor.timeout: at most 1h, got '7d'"),
    (
        "concurrency-1e20",
        "[monitor]\nconcurrency = 100000000000000000000\n",
        "2: monitor.concurrency: expected 1 to 1,000, got 100000000000000000000",
    ),
    (
        "retention-1e308",
        "[monitor]\nretention_days = 1e308\n",
        "2: monitor.retention_days: expected a number of days above 0 and at most 3650, got 1e+308",
    ),
    (
        "max-tokens-1e23",
        T + "max_tokens = 100000000000000000000000\n",
        "5: targets[0].max_tokens: expected 1 to 100,000, got 100000000000000000000000",
    ),
    (
        "target-interval-past-a-day",
        T + "interval = '2d'\n",
        "5: targets[0].interval: at most 1d, got '2d'",
    ),
    ("blank-name", T.replace('name = "a"', 'name = "   "'), "1: targets[0]: missing required key 'name'"),
    ("toml-syntax", "[monitor]\ninterval = \n", "2: invalid TOML: Invalid value (column 12)"),
    (
        "toml-unclosed-header",
        "[monitor\n",
        "1: invalid TOML: Expected ']' at the end of a table declaration (column 9)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_broken_config_gives_its_exact_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={"OPENAI_API_KEY": "k"})
    assert str(info.value) == f"{path}:{expected}"


def test_the_corpus_is_large_and_every_line_is_ours() -> None:
    assert len(CORPUS) >= 40
    for _, _, expected in CORPUS:
        assert "Input should" not in expected and "Value error" not in expected  # pydantic's words


@pytest.mark.parametrize(
    "case",
    [
        "dotted-top-level",
        "inline-headers",
        "array-of-inline-targets",
        "missing-model",
        "toml-syntax",
        "base-url-port-out-of-range",
        "concurrency-1e20",
    ],
)
def test_check_config_exits_2_with_the_same_line(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text, expected = next(c[1:] for c in CORPUS if c[0] == case)
    path = tmp_path / "config.toml"
    path.write_text(text)
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == f"llmscope-tui: {path}:{expected}\n"
    assert "Traceback" not in err


SCANNED = """\
# a comment with [brackets] and key = "value"
title = 'x'  # trailing
spc.transform = "log"
"quoted.key" = 1
prompt = '''
[not.a.header]
fake = 1
'''
notes = \"\"\"a \\\"\"\" b\"\"\"
grid = [
  [1, 2],
  { a = 1, b.c = 2 },
]

[[targets]]
name = "a"
[targets.headers]
X = "1"

[[targets]]
name = "b"
inline = { deep = { key = 1 } }
"""


def test_the_scanner_finds_every_shape_of_key() -> None:
    assert tomllib.loads(SCANNED)["notes"] == 'a """ b'  # valid TOML, tricky where it counts
    lines = key_lines(SCANNED)
    assert lines[("title",)] == 2
    assert lines[("spc",)] == lines[("spc", "transform")] == 3
    assert lines[("quoted.key",)] == 4
    assert ("not", "a", "header") not in lines and ("fake",) not in lines
    assert lines[("notes",)] == 9
    assert lines[("grid", 0)] == 11 and lines[("grid", 1)] == 12
    assert lines[("grid", 1, "b", "c")] == 12
    assert lines[("targets",)] == lines[("targets", 0)] == 15
    assert lines[("targets", 0, "headers", "X")] == 18
    assert lines[("targets", 1)] == 20
    assert lines[("targets", 1, "inline", "deep", "key")] == 22
    assert line_of(lines, ("targets", 1, "model")) == 20  # given nowhere: its table's header


def test_importing_config_leaves_pydantic_unloaded_until_a_file_is_read(tmp_path: Path) -> None:
    """The demo and key-only runs never pay pydantic's import; a config file does."""
    path = tmp_path / "config.toml"
    path.write_text(T)
    code = (
        "import sys\n"
        "from llmscope_tui.config import load_settings\n"
        "load_settings(None, env={})\n"
        "before = 'pydantic' in sys.modules\n"
        f"load_settings({str(path)!r}, env={{}})\n"
        "print(before, 'pydantic' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True"], result.stderr

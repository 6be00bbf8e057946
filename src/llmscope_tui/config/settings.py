"""The resolved settings the rest of the program reads: plain dataclasses, no validation here.

The file is checked by schema.py and resolved by load.py; everything else (monitor, TUI, CLI)
only ever sees these objects, so none of it imports pydantic.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from llmscope_tui import redaction
from llmscope_tui.costs import Budget, PriceOverride
from llmscope_tui.model import Metric, Target

DEFAULT_PROMPT = "Reply with the word OK."

#: Screen updates per second the TUI accepts (0.2 = one every 5 s, for a very slow link).
#: Sane bounds (a value past them is a typo, and would overflow timers or a provider's limit);
#: docs/configuration.md lists them.
MAX_INTERVAL_S = 86400.0
MAX_TIMEOUT_S = 3600.0
MAX_CONCURRENCY = 1000
MAX_TOKENS = 100_000
MAX_RETENTION_DAYS = 3650.0
FPS_RANGE = (0.2, 30.0)
#: A location label longer than this is a mistake (it is on every Prometheus series).
MAX_LOCATION_CHARS = 64


def location_problem(value: str) -> str | None:
    """Why ``value`` cannot be a location label (None: it can). It goes on every series a fleet's
    Prometheus stores, so it is short, printable and not blank."""
    if not value.strip():
        return "must not be blank"
    if len(value) > MAX_LOCATION_CHARS:
        return f"at most {MAX_LOCATION_CHARS} characters, got {len(value)}"
    if not value.isprintable():
        return f"must be printable text, got {value!r}"
    return None


def default_location() -> str:
    """The machine's short host name (``probe-eu1`` of ``probe-eu1.example.net``), so two hosts
    differ out of the box; "unknown" when the system has none."""
    name = socket.gethostname().split(".")[0].strip()
    return name if name and location_problem(name) is None else "unknown"


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
    """[alerts]: where alerts go and how often the same one may repeat."""

    webhook_url: str | None = None
    cooldown_s: float = 300.0
    bell: bool = False


@dataclass(slots=True)
class TuiSettings:
    """[tui]: how the terminal UI looks and how often it redraws (never what it measures)."""

    fps: float = 4.0
    theme: str | None = None
    mouse: bool = True


@dataclass(slots=True)
class OtlpSettings:
    """[otlp]: optional OpenTelemetry export (the `otlp` extra); off while endpoint is None.

    ``endpoint`` is the collector's base URL (``http://127.0.0.1:4318``); /v1/metrics is added.
    Headers (an API key for a hosted backend) come only from OTEL_EXPORTER_OTLP_HEADERS."""

    endpoint: str | None = None
    interval_s: float = 15.0


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
    #: where this probe runs: the ``location`` label of every metric series (a fleet tells its
    #: probes apart by it), and in the headless ``start`` event
    location: str = field(default_factory=default_location)
    spc: SpcSettings = field(default_factory=SpcSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    tui: TuiSettings = field(default_factory=TuiSettings)
    otlp: OtlpSettings = field(default_factory=OtlpSettings)
    budgets: list[Budget] = field(default_factory=list)
    prices: list[PriceOverride] = field(default_factory=list)
    #: Where each value came from when it was not the default,
    #: e.g. {"interval": "LLMSCOPE_INTERVAL"}.
    sources: dict[str, str] = field(default_factory=dict)
    #: What the user should fix but that does not stop a run (a config file holding a secret
    #: that others can read): said on stderr at start, and in the TUI.
    warnings: list[str] = field(default_factory=list)

    @property
    def enabled_targets(self) -> list[Target]:
        return [t for t in self.targets if t.enabled]

    def remember_secrets(self, env: Mapping[str, str]) -> None:
        """Tell the redaction registry every secret this configuration can send or receive:
        each target's key variable (custom names too), every variable named like a key
        (LLMSCOPE_API_KEY, OPENAI_API_KEY, ...), credential header values,
        a URL's password and key-like query values, the webhook URL (it is its own credential),
        the OTLP headers' values."""
        names = [t.api_key_env for t in self.targets]
        redaction.remember_environment(env, names)
        for target in self.targets:
            redaction.remember_headers(target.extra_headers)
            redaction.remember_url(target.base_url)
        redaction.remember_url(self.alerts.webhook_url, path_is_secret=True)
        redaction.remember_url(self.otlp.endpoint)
        # OTLP headers ("api-key=...,x-team=...", URL-encoded) carry a hosted backend's key: every value
        for variable in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"):
            pairs = [item.partition("=") for item in env.get(variable, "").split(",")]
            redaction.remember(*(value.strip() for _, _, value in pairs), *(unquote(v.strip()) for _, _, v in pairs))

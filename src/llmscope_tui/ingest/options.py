"""Where the ingest endpoint listens and who may write to it (the bind policy).

Security: the endpoint binds 127.0.0.1 unless told otherwise, refuses a non-loopback address
unless LLMSCOPE_API_KEY is set (:func:`check_bind`), and when a key is set every request must
carry ``Authorization: Bearer <key>``. The key is never echoed, logged or shown in a repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from llmscope_tui.ingest.checks import IngestConfigError
from llmscope_tui.loopback import is_loopback
from llmscope_tui.redaction import remember

#: The environment variable holding the endpoint's shared secret.
API_KEY_ENV = "LLMSCOPE_API_KEY"
#: The port the client (``llmscope_tui.client``) posts to unless told otherwise.
DEFAULT_PORT = 8787
EVENTS_PATH = "/v1/events"
HEALTH_PATH = "/v1/health"


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to listen on a non-loopback address unless an API key protects the endpoint."""
    if api_key:
        return
    if not is_loopback(host):
        shown = host or "all interfaces"
        raise IngestConfigError(
            f"refusing to listen on {shown} without {API_KEY_ENV} set: "
            "anyone who can reach this port could write into your data"
        )


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """Where the endpoint listens and the key it requires (the key never shows in a repr)."""

    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"
    api_key: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(
        cls, port: int, host: str = "127.0.0.1", env: Mapping[str, str] | None = None
    ) -> IngestOptions:
        """Options for ``--ingest-port``/``--ingest-host``, the key from LLMSCOPE_API_KEY; applies
        :func:`check_bind` (raises :class:`IngestConfigError`)."""
        env = os.environ if env is None else env
        key = env.get(API_KEY_ENV) or None
        remember(key)
        check_bind(host, key)
        return cls(port=port, host=host, api_key=key)

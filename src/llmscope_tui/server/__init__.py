"""One in-process HTTP stack for what llmscope-tui serves: ingest, Prometheus /metrics, health.

- :mod:`.app`: the few ASGI pieces (a bounded body read, JSON errors, exact-path routing);
- :mod:`.routes`: ``POST /v1/events``, ``GET /v1/health``, ``GET /metrics``, ``GET /healthz``;
- :mod:`.run`: uvicorn in our event loop (or a thread's own) on sockets we bind, with limits;
- :mod:`.service`: the listeners a run asks for (:class:`Endpoints`), composed by the face
  (headless) with the monitor, and :class:`IngestServer` for the endpoint alone.

Nothing here imports Textual.
"""

from llmscope_tui.server.routes import HEALTHZ_PATH, METRICS_PATH, IngestRoutes, build_app
from llmscope_tui.server.run import HTTPServer, Limits, ThreadedHTTPServer, bind
from llmscope_tui.server.service import BindError, Endpoints, IngestServer

__all__ = [
    "HEALTHZ_PATH",
    "METRICS_PATH",
    "BindError",
    "Endpoints",
    "HTTPServer",
    "IngestRoutes",
    "IngestServer",
    "Limits",
    "ThreadedHTTPServer",
    "bind",
    "build_app",
]

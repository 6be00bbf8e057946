"""The demo's HTTP side: routes a request to its protocol, runs the steps every protocol shares
(read, admit, draw, stream or refuse) and paces the frames out at their simulated times.

It runs in the provider's own server thread and event loop (``ThreadedHTTPServer``), so the app's
loop and UI do not perturb the latencies it simulates.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from llmscope_tui.demo.encoders import WIRES
from llmscope_tui.demo.profiles import ModelProfile
from llmscope_tui.demo.shapes import BadRequest, Stream, Wire
from llmscope_tui.server.app import Request, Response, StreamingResponse

if TYPE_CHECKING:
    from llmscope_tui.demo.provider import DemoProvider

__all__ = ["DemoHandler"]

_GEMINI_PATH = re.compile(r"^/v1beta/models/([^/:]+):([A-Za-z]+)$")
_POST_ROUTES = {
    "/v1/chat/completions": "openai",
    "/v1/messages": "anthropic",
    "/api/chat": "ollama",
}
#: Which protocol's error shape a refused path gets (OpenAI's when none matches).
_ERROR_PREFIXES = (("/v1/messages", "anthropic"), ("/v1beta/", "gemini"), ("/api/", "ollama"))
_ERROR_MESSAGES = {
    "rate_limit": "Rate limit reached for requests (simulated 429 burst). Please try again in 1s.",
    "overloaded": "Overloaded",
    "server_error": "The server had an error while processing your request. Sorry about that!",
}


class DemoHandler:
    """The HTTP handler of a ``DemoProvider``: four protocols and a few GET pages on one port."""

    def __init__(self, provider: DemoProvider) -> None:
        self.provider = provider

    async def __call__(self, request: Request) -> Response | StreamingResponse:
        start = asyncio.get_running_loop().time()
        path = request.path
        try:
            if request.method == "POST":
                match = _GEMINI_PATH.match(path)
                name = "gemini" if match else _POST_ROUTES.get(path)
                if name is not None:
                    return await self._serve(
                        WIRES[name], request, match.groups() if match else (), start
                    )
            elif request.method in ("GET", "HEAD"):
                page = self._page(path)
                if page is not None:
                    return Response.json(page)
            raise BadRequest(
                404, "not_found", f"no route for {request.method} {path} on the demo provider"
            )
        except BadRequest as exc:
            name = next((n for prefix, n in _ERROR_PREFIXES if path.startswith(prefix)), "openai")
            return WIRES[name].error(exc.status, exc.kind, exc.message)

    async def _serve(
        self, wire: Wire, request: Request, path_args: tuple[str, ...], start: float
    ) -> Response | StreamingResponse:
        """The steps every protocol shares; ``wire`` says how each looks on the wire."""
        ask = wire.read(request, path_args, self._profile)
        failure, factor = self.provider.admit(ask.profile)
        if failure:
            await asyncio.sleep(0.02 * self.provider.latency_scale)
            retry = self.provider.timeline.retry_after_s if failure == "rate_limit" else None
            status = {"rate_limit": 429, "overloaded": wire.overloaded_status}.get(failure, 500)
            return wire.error(
                status, failure, _ERROR_MESSAGES.get(failure, "internal error"), retry
            )
        stream = wire.stream(
            ask, self.provider.plan(ask.profile, ask.texts, ask.max_tokens, factor)
        )
        return StreamingResponse(200, stream.headers, _paced(start, stream))

    def _profile(self, model: Any, protocol: str) -> ModelProfile:
        """The profile a request names, as its protocol spells models (BadRequest 404 if none)."""
        profiles = self.provider.profiles
        if not isinstance(model, str) or not model:
            raise BadRequest(400, "bad_request", "model: field required")
        name = model.removeprefix("models/")
        if protocol == "ollama" and name.endswith(":latest"):
            name = name[: -len(":latest")]
        profile = profiles.get(name)
        if profile is None:
            known = ", ".join(sorted(profiles))
            raise BadRequest(
                404, "not_found", f"model {model!r} not found; the demo serves: {known}"
            )
        return profile

    def _page(self, path: str) -> dict[str, Any] | None:
        """The GET pages: what the demo is (/), and the model lists clients ask for."""
        models = self.provider.profiles
        if path == "/":
            return self.provider.about()
        if path == "/v1/models":
            listed = [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "llmscope-demo"}
                for m in models
            ]
            return {"object": "list", "data": listed}
        if path == "/api/tags":
            return {"models": [{"name": m, "model": m} for m in models]}
        return None


async def _paced(start: float, stream: Stream) -> AsyncIterator[bytes]:
    """Yield each frame at its offset from ``start`` (loop time); frames due together go
    together."""
    loop = asyncio.get_running_loop()
    events = stream.events
    finish: Callable[[bytes], bytes] = stream.on_send or (lambda payload: payload)
    i = 0
    while i < len(events):
        at, payload = events[i]
        i += 1
        while i < len(events) and events[i][0] <= at:
            payload += events[i][1]
            i += 1
        delay = start + at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        yield finish(payload)

"""An ASGI middleware bounding request bodies: a declared Content-Length over the bound is answered
413 at once; a body that grows past it while read fails the read with the same answer.

After an early 413 the rest of the body is read and dropped — at most `DRAIN_BYTES` (or the bound,
if larger) and for at most `DRAIN_SECONDS` — before the connection closes ("lingering close"):
closing with the client's bytes still unread makes the kernel reset the connection, and a client
still sending (a browser, `http.client`) then sees a broken pipe instead of the answer."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from .errors import ConsoleError

Scope = dict[str, Any]
Message = dict[str, Any]

DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 5.0


class BodyLimit:
    def __init__(self, app: Any, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
        if declared is not None and (declared < 0 or declared > self.max_bytes):
            await _too_large(scope, send, self.max_bytes, bad=declared < 0)
            await _drain(receive, max(DRAIN_BYTES, self.max_bytes))
            return
        seen = 0
        limit = self.max_bytes

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ConsoleError(413, "too_large", f"the request is larger than {limit // (1024 * 1024)} MiB",
                                       limit=limit)
            return message

        await self.app(scope, bounded, send)


async def _too_large(scope: Scope, send: Callable[[Message], Awaitable[None]], limit: int, *, bad: bool) -> None:
    import json
    status, code, text = (400, "bad_request", "the Content-Length header is not a number") if bad else \
        (413, "too_large", f"the request is larger than {limit // (1024 * 1024)} MiB")
    if scope["path"].startswith("/api/"):
        body = json.dumps({"error": code, "message": text}, ensure_ascii=False).encode()
        ctype = b"application/json"
    else:
        body = (f"<!doctype html><meta charset=utf-8><title>{status}</title><p>{text}</p>").encode()
        ctype = b"text/html; charset=utf-8"
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype), (b"content-length", b"%d" % len(body))]})
    # no "Connection: close": the server would close at once, before the body is drained
    await send({"type": "http.response.body", "body": body})


async def _drain(receive: Callable[[], Awaitable[Message]], budget: int) -> None:
    """Read and drop what is left of the request body, within `budget` bytes and DRAIN_SECONDS."""
    import asyncio
    import time
    deadline = time.monotonic() + DRAIN_SECONDS
    while budget > 0:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), timeout=left)
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return

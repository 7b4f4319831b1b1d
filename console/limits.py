"""An ASGI middleware bounding request bodies: a declared Content-Length over the bound is answered
413 at once; a body that grows past it while read fails the read with the same answer."""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from .errors import ConsoleError

Scope = dict[str, Any]
Message = dict[str, Any]


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
                "headers": [(b"content-type", ctype), (b"content-length", b"%d" % len(body)),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

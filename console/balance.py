"""Keep-alive connections spread fairly over the console's workers.

Each worker listens on its own socket (`pki.server.run.bind_each`), and the kernel places a new
connection by a hash of its addresses: four keep-alive connections of one client land 4/0 on two
workers one time in eight and 3/1 half the time — and a stamping request is CPU work for the
worker that holds its connection, so a core idles while the other queues (measured with
`bench/bench_console.py`: the API's stamping rate 0.32–0.54 of the library's when the four
connections were unbalanced, 0.72–0.78 when balanced).

So each worker counts its open connections in its slot of a small array shared by the node's
workers (made before the fork; a worker writes only its own slot, from its event loop), and a
worker holding more than its fair share — more than ⌈the node's open connections / workers⌉ —
answers with ``Connection: close``.  The client's next connection is placed afresh; HTTP/1.1 lets
a server close after any response, and clients reconnect by themselves.  Nothing else changes.
"""
from __future__ import annotations

from multiprocessing.sharedctypes import RawArray
from typing import Any

__all__ = ["ConnectionShares", "counting_protocol", "CloseOverShare"]


class ConnectionShares:
    """Open connections per worker, in memory shared by the workers of one node."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self._open = RawArray("l", workers)

    def reset(self, index: int) -> None:
        """A worker starting (again): the connections of one that died went with it."""
        self._open[index] = 0

    def opened(self, index: int) -> None:
        self._open[index] += 1

    def closed(self, index: int) -> None:
        self._open[index] -= 1

    def count(self, index: int) -> int:
        return self._open[index]

    def over_share(self, index: int) -> bool:
        """Whether worker `index` holds more than ⌈all open connections / workers⌉."""
        mine = self._open[index]
        if mine <= 1:
            return False
        total = sum(self._open)
        return mine > -(-total // self.workers)


def counting_protocol(base: type, shares: ConnectionShares, index: int) -> type:
    """uvicorn's HTTP protocol class `base`, counting this worker's open connections in `shares`."""

    class Counting(base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: Any) -> None:
            shares.opened(index)
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            shares.closed(index)
            super().connection_lost(exc)

    Counting.__name__ = Counting.__qualname__ = f"Counting{base.__name__}"
    return Counting


class CloseOverShare:
    """ASGI middleware: a response of a worker over its share says ``Connection: close``."""

    def __init__(self, app: Any, shares: ConnectionShares, index: int) -> None:
        self.app = app
        self.shares = shares
        self.index = index

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        shares, index = self.shares, self.index

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start" and shares.over_share(index):
                message = dict(message, headers=[*message.get("headers", []), (b"connection", b"close")])
            await send(message)
        await self.app(scope, receive, sending)

"""The signing pool: every fresh signature of the status service, bounded and shared fairly.

What is signed on demand — OCSP answers to requests with a nonce, for unknown serials or
several CertIDs, and every timestamp token — costs a private-key operation (0.7 ms for
RSA-2048).  Done in the HTTP worker's event loop, a flood of such requests makes every
other request wait (measured before this module: pre-signed OCSP GETs fell from 21,412
to 500 req/s, p99 46.7 ms, under 16 connections of nonce POSTs).  So:

* **Signer processes** (`SignerProcesses`, forked by `serve` after the keys are loaded)
  hold the keys and do nothing but sign.  They run at a lower priority (`nice`, default
  10): when a core is contended, the kernel gives it to the HTTP workers first, so
  pre-signed answers keep flowing while the signers use what is left.  Each HTTP worker
  talks to each signer over its own AF_UNIX SOCK_SEQPACKET pair (a message is a whole
  request or reply; a signer that dies loses only the messages it had taken, and the
  supervisor starts another on the same sockets).
* **The pool** (`SigningPool`, one per HTTP worker, asyncio) bounds the work: at most
  `capacity` signatures queued or signing, at most `share` of them for one client (its
  IP address).  Requests wait in per-client queues served round-robin, and each signer
  has at most `depth` requests outstanding from a worker, so a client that floods waits
  behind its own requests, not in front of everyone else's.  A request that does not fit
  is refused at once (`PoolFull`: OCSP tryLater, TSA systemFailure), after `reject_delay`
  seconds, so that a client hammering a full pool is slowed down rather than answered
  faster.  Everything is counted (`stats`).
* RSA signatures are verified in the signer before they leave (OpenSSL does it too, but a
  faulty RSA-CRT signature must never leave); EC and SM2 signatures are not re-verified
  (a verification would double the cost of an SM2 token).

Message formats (little framing: SEQPACKET keeps boundaries):
    request  = request id (4 octets, big endian) ‖ key index (2) ‖ data
    reply    = request id (4) ‖ status (1: 0 ok, 1 error) ‖ signature or error text
"""
from __future__ import annotations

import asyncio
import logging
import os
import selectors
import signal
import socket
import struct
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..algorithms import PrivateKey

log = logging.getLogger("yinxin.server")

__all__ = ["PoolOptions", "PoolFull", "SigningKey", "SignerProcesses", "SigningPool"]

_REQUEST = struct.Struct(">IH")
_REPLY = struct.Struct(">IB")
MAX_MESSAGE = 1 << 16
#: refusals are logged at most this often (seconds), with their count
LOG_EVERY = 10.0


@dataclass(frozen=True)
class PoolOptions:
    signers: int = 2                  # signer processes
    capacity: int = 64                # fresh signatures queued or signing, per HTTP worker
    share: float = 0.5                # of `capacity`, for one client
    depth: int = 2                    # requests outstanding per signer, per HTTP worker
    nice: int = 10                    # niceness of the signer processes (0: same as the workers)
    reject_delay: float = 0.05        # seconds before a refusal is answered
    timeout: float = 10.0             # a signature not back by then is answered as a failure

    def __post_init__(self) -> None:
        if self.signers < 1 or self.capacity < 1 or self.depth < 1:
            raise ValueError("signers, capacity and depth are at least 1")
        if not 0 < self.share <= 1:
            raise ValueError("share is a fraction in (0, 1]")
        if not 0 <= self.nice <= 19 or self.reject_delay < 0 or self.timeout <= 0:
            raise ValueError("nice is 0..19, reject_delay >= 0, timeout > 0")

    @property
    def per_client(self) -> int:
        return max(1, int(self.capacity * self.share))


@dataclass(frozen=True)
class SigningKey:
    """A key the signers hold: `distid` for SM2, `verify` to check each signature before it leaves."""

    name: str
    key: PrivateKey = field(repr=False)
    distid: bytes | None = None

    def sign(self, data: bytes) -> bytes:
        if self.key.algorithm == "sm2":
            signature = self.key.sign(data, distid=self.distid)
        else:
            signature = self.key.sign(data)
        if self.key.algorithm.startswith("rsa"):
            self.key.public_key().verify(signature, data)
        return signature


class PoolFull(Exception):
    """No room for this client's signature now."""


def _expire(future: "asyncio.Future[bytes]") -> None:
    if not future.done():
        future.set_exception(TimeoutError("no signature within the pool's timeout"))


# --------------------------------------------------------------------------- signer processes

def _signer_main(keys: Sequence[SigningKey], channels: Sequence[socket.socket], nice: int) -> None:
    if nice:
        os.nice(nice)
    selector = selectors.DefaultSelector()
    for sock in channels:
        sock.setblocking(True)
        selector.register(sock, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                message = sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                continue
            if not message:             # the worker went away: its socket is done
                selector.unregister(sock)
                continue
            if len(message) < _REQUEST.size:
                continue
            request_id, index = _REQUEST.unpack_from(message)
            try:
                reply = _REPLY.pack(request_id, 0) + keys[index].sign(message[_REQUEST.size:])
            except Exception as exc:  # a bad key index or a failing key: the worker answers a failure
                reply = _REPLY.pack(request_id, 1) + f"{type(exc).__name__}: {exc}".encode()[:200]
            try:
                sock.send(reply)
            except OSError:
                selector.unregister(sock)


class SignerProcesses:
    """`signers` processes, each connected to each of `workers` HTTP workers.  Made in the parent
    before anything forks; `start(i)` forks signer i.  The supervisor keeps every socket open,
    so a worker or signer that dies is started again on the same sockets (what the dead one had
    taken is lost and answered as a failure after `PoolOptions.timeout`)."""

    def __init__(self, keys: Sequence[SigningKey], *, workers: int, options: PoolOptions) -> None:
        self.keys = list(keys)
        self.options = options
        # pairs[w][s] = (worker end, signer end)
        self.pairs = [[socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(options.signers)]
                      for _ in range(workers)]

    def index(self, name: str) -> int:
        for i, key in enumerate(self.keys):
            if key.name == name:
                return i
        raise KeyError(name)

    def start(self, signer: int, spawn: Any) -> int:
        """Fork signer `signer` through `spawn(role, target)` (the supervisor's); returns its pid."""
        mine = [self.pairs[w][signer][1] for w in range(len(self.pairs))]

        def run() -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)       # the supervisor stops us with SIGTERM
            for w, row in enumerate(self.pairs):
                for s, (worker_end, signer_end) in enumerate(row):
                    worker_end.close()
                    if s != signer:
                        signer_end.close()
            _signer_main(self.keys, mine, self.options.nice)
        return spawn(f"signer {signer + 1}", run)

    def worker_channels(self, worker: int) -> list[socket.socket]:
        """The sockets worker `worker` keeps (call in that worker after the fork)."""
        for w, row in enumerate(self.pairs):
            for worker_end, signer_end in row:
                signer_end.close()
                if w != worker:
                    worker_end.close()
        return [worker_end for worker_end, _ in self.pairs[worker]]

    def close_all(self) -> None:
        for row in self.pairs:
            for worker_end, signer_end in row:
                worker_end.close()
                signer_end.close()


# --------------------------------------------------------------------------- the pool (in a worker)

class _Channel:
    def __init__(self, sock: socket.socket, pool: "SigningPool") -> None:
        self.sock = sock
        self.pool = pool
        self.outstanding: dict[int, asyncio.Future[bytes]] = {}
        sock.setblocking(False)

    def on_readable(self) -> None:
        while True:
            try:
                message = self.sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message = b""
            if not message:
                self.pool._channel_lost(self)
                return
            request_id, status = _REPLY.unpack_from(message)
            future = self.outstanding.get(request_id)
            if future is not None and not future.done():
                body = message[_REPLY.size:]
                if status == 0:
                    future.set_result(body)      # its done-callback frees the slot and dispatches
                else:
                    future.set_exception(RuntimeError(body.decode(errors="replace")))


class SigningPool:
    """The HTTP worker's side of the signers (see the module docstring)."""

    def __init__(self, channels: Sequence[socket.socket], options: PoolOptions) -> None:
        self.options = options
        self._channels = [_Channel(sock, self) for sock in channels]
        self._queues: OrderedDict[str, deque[tuple[int, bytes, asyncio.Future[bytes]]]] = OrderedDict()
        self._held: dict[str, int] = {}      # per client: queued + outstanding
        self._total = 0
        self._next_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = {"signed": 0, "refused": 0, "failed": 0, "queued_max": 0}
        self._logged_at = 0.0
        self._logged_refused = 0

    def _ensure_loop(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            for channel in self._channels:
                self._loop.add_reader(channel.sock.fileno(), channel.on_readable)

    @property
    def backlog(self) -> bool:
        """Requests are waiting for a signer: the signers are the bottleneck (every core busy)."""
        return bool(self._queues)

    def admits(self, client: str) -> bool:
        return self._total < self.options.capacity and self._held.get(client, 0) < self.options.per_client

    async def refuse(self) -> None:
        """Count a refusal (logged at most every `LOG_EVERY` seconds, with the count since the last
        line) and wait `reject_delay` before the caller answers it."""
        self.stats["refused"] += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY:
            log.warning("signing pool full: %d request(s) refused (tryLater/systemFailure) in %.0f s; "
                        "%d queued or signing", self.stats["refused"] - self._logged_refused,
                        now - self._logged_at if self._logged_at else 0, self._total)
            self._logged_at, self._logged_refused = now, self.stats["refused"]
        if self.options.reject_delay:
            await asyncio.sleep(self.options.reject_delay)

    async def sign(self, client: str, key: int, data: bytes) -> bytes:
        """The signature of `data` with key number `key`; raises PoolFull when there is no room."""
        self._ensure_loop()
        if not self.admits(client):
            await self.refuse()
            raise PoolFull(client)
        assert self._loop is not None
        future: asyncio.Future[bytes] = self._loop.create_future()
        queue = self._queues.get(client)
        if queue is None:
            queue = self._queues[client] = deque()
        queue.append((key, data, future))
        self._held[client] = self._held.get(client, 0) + 1
        self._total += 1
        self.stats["queued_max"] = max(self.stats["queued_max"], self._total)
        self._dispatch()
        # a timer rather than asyncio.wait_for (which wraps every wait in another task)
        timer = self._loop.call_later(self.options.timeout, _expire, future)
        try:
            signature = await future
        except Exception:
            self.stats["failed"] += 1
            raise
        else:
            self.stats["signed"] += 1
            return signature
        finally:
            timer.cancel()
            self._total -= 1
            left = self._held[client] - 1
            if left:
                self._held[client] = left
            else:
                del self._held[client]

    def _dispatch(self) -> None:
        """Hand queued requests to signers with room, one client after another."""
        depth = self.options.depth
        while self._queues:
            channel = min(self._channels, key=lambda c: len(c.outstanding))
            if len(channel.outstanding) >= depth:
                return
            client, queue = next(iter(self._queues.items()))
            key, data, future = queue.popleft()
            if queue:
                self._queues.move_to_end(client)        # round-robin: this client goes to the back
            else:
                del self._queues[client]
            if future.done():                           # timed out while queued
                continue
            self._next_id = request_id = (self._next_id + 1) & 0xFFFFFFFF
            try:
                channel.sock.send(_REQUEST.pack(request_id, key) + data)
            except OSError as exc:
                future.set_exception(RuntimeError(f"signer unreachable: {exc}"))
                continue
            channel.outstanding[request_id] = future
            # answered, failed or timed out: the slot is free again either way (a reply that comes
            # after a timeout finds no one waiting and is dropped)
            future.add_done_callback(lambda _f, c=channel, r=request_id: self._settled(c, r))

    def _settled(self, channel: _Channel, request_id: int) -> None:
        if channel.outstanding.pop(request_id, None) is not None:
            self._dispatch()

    def _channel_lost(self, channel: _Channel) -> None:
        for future in channel.outstanding.values():
            if not future.done():
                future.set_exception(RuntimeError("a signer process ended"))
        channel.outstanding.clear()

"""Timestamps over HTTP: `POST /tsa/NAME` (RFC 3161 §3.4, application/timestamp-query).

Per request, in the HTTP worker: the query is parsed strictly (a refusal is an RFC 3161
rejection with its failure info, HTTP 200), the pool is asked for room (none: systemFailure,
with Retry-After), a serial and a genTime are drawn (a clock behind the last token:
timeNotAvailable), the signed attributes go to a signer process, the token is put together
and its row handed to the worker's `TokenLedger` — and only when that row is committed does
the reply leave.

`TokenLedger` is a group commit: one thread per worker takes every row waiting, writes them
in one transaction and wakes their requests; under load a commit (one fsync on SQLite
synchronous=FULL) serves dozens of tokens, so durability before sending costs little per
token.  If the commit fails, the tokens are never sent (systemFailure).  On SQLite the
workers' ledgers take turns on an flock'ed file beside the database before they write:
SQLite's own busy handler waits by sleeping 1, 2, 5, 10 … ms, which put tens of
milliseconds on a token whenever two workers committed at once; the kernel wakes a
waiter on flock the moment the lock is free.
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..store import Appender, Store
from ..tsa.authority import TsaSigner
from ..tsa.errors import ClockBehind, RequestRefused
from ..tsa.protocol import failure_response
from ..tsa.tables import tsa_tokens
from .signing import PoolFull, SigningPool

log = logging.getLogger("yinxin.server")

__all__ = ["TokenLedger", "TimestampService", "TsaReply"]

REPLY_TYPE = b"application/timestamp-reply"
#: at most this many rows in one commit
BATCH = 512
#: when the signers are saturated, after the first row of a commit, wait this long for more
#: (seconds).  Measured with bench/bench_tsa.py (RSA-2048, 32 connections): 1 ms gave 0.47–0.50×
#: openssl's signing rate, 2 ms 0.55–0.56× (fewer commits, each ~0.2 ms of a worker's CPU), 3 ms
#: 0.57×.  Gathering whenever rows came in pairs (not only when saturated) put SM2's half-rate
#: p99 at 7.7–9.1 ms with 2 ms (goal 10 ms): the wait buys nothing while a core is idle
GATHER_SECONDS = 0.002


class TokenLedger:
    """Commits token rows in batches from a thread; `await record(row)` returns once its row is durable.

    The rows of one event-loop iteration travel to the thread together, and the futures of one
    commit come back together: one thread wake-up each way per batch, not per token.
    `saturated()` says whether the signers are the bottleneck (`SigningPool.backlog`); only then
    does a commit wait `GATHER_SECONDS` for more rows (None: whenever the ledger is under load)."""

    def __init__(self, store: Store, saturated: Callable[[], bool] | None = None) -> None:
        self.store = store
        self._saturated = saturated
        self._appender = Appender(store, tsa_tokens)
        self._lock_fd: int | None = None
        database = store.engine.url.database
        if store.dialect == "sqlite" and database and database != ":memory:":
            self._lock_fd = os.open(f"{database}.ledger-lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._queue: queue.SimpleQueue[tuple[list[tuple[dict[str, Any], asyncio.Future[None]]],
                                             asyncio.AbstractEventLoop] | None] = queue.SimpleQueue()
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._thread = threading.Thread(target=self._run, name="yinxin-token-ledger", daemon=True)
        self._thread.start()
        self.stats = {"commits": 0, "rows": 0, "failed": 0}

    async def record(self, row: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._hand_over, loop)
        self._pending.append((row, future))
        await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        items, self._pending = self._pending, []
        self._queue.put((items, loop))

    def record_now(self, rows: list[dict[str, Any]]) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._appender.append(rows)
        finally:
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _run(self) -> None:
        last = 0               # rows of the last commit
        while True:
            first = self._queue.get()
            if first is None:
                return
            batches = [first]
            count = len(first[0])
            # under load (more hand-overs already waiting, or the last commit carried several
            # tokens) and with the signers saturated (requests queued for them: no core to spare)
            # gather for a moment: a commit costs CPU (~0.2 ms) and an fsync, so more tokens per
            # commit leave more CPU for signing; otherwise commit at once — the wait would only be
            # added to every token's time
            loaded = last > 1 or not self._queue.empty()
            window = GATHER_SECONDS if loaded and (self._saturated is None or self._saturated()) else 0.0
            deadline = time.monotonic() + window
            while count < BATCH:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic())) if window \
                        else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batches.append(item)
                count += len(item[0])
            error: BaseException | None = None
            try:
                self.record_now([row for items, _ in batches for row, _ in items])
                last = count
                self.stats["commits"] += 1
                self.stats["rows"] += count
            except BaseException as exc:       # noqa: BLE001 - every waiting request hears of it
                error = exc
                self.stats["failed"] += count
                log.error("recording %d timestamp tokens failed: %s", count, exc)
            for items, loop in batches:
                loop.call_soon_threadsafe(_settle_all, [future for _, future in items], error)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
        self._appender.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _settle_all(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


@dataclass
class TsaReply:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass
class _Served:
    signer: TsaSigner
    key: int            # index of its key in the signer processes (None: sign in this process)


class TimestampService:
    """The TSAs one worker answers for."""

    def __init__(self, tsas: dict[str, tuple[TsaSigner, int | None]], ledger: TokenLedger,
                 pool: SigningPool | None) -> None:
        self.tsas = {name: _Served(signer, key) for name, (signer, key) in tsas.items()}
        self.ledger = ledger
        self.pool = pool
        self.stats = {"granted": 0, "rejected": 0, "busy": 0, "clock_behind": 0, "failed": 0}

    def knows(self, name: str) -> bool:
        return name in self.tsas

    def _failure(self, failure: str, text: str, *, retry: bool = False) -> TsaReply:
        headers = [(b"content-type", REPLY_TYPE), (b"cache-control", b"no-store")]
        if retry:
            headers.append((b"retry-after", b"1"))
        return TsaReply(200, failure_response(failure, text), headers)

    async def answer(self, name: str, query: bytes, client: str) -> TsaReply:
        """The reply to one query for TSA `name` (known: see `knows`); never raises for bad input."""
        served = self.tsas[name]
        signer = served.signer
        try:
            request = signer.parse(query)
        except RequestRefused as exc:
            self.stats["rejected"] += 1
            return self._failure(exc.failure, exc.reason)
        pool = self.pool
        if pool is not None and served.key is not None and not pool.admits(client):
            await pool.refuse()
            self.stats["busy"] += 1
            return self._failure("system_failure", "the TSA is busy: try again shortly", retry=True)
        try:
            serial, gen_time, tst_info, attributes = signer.prepare(request)
        except ClockBehind as exc:
            self.stats["clock_behind"] += 1
            return self._failure("time_not_available", exc.message)
        try:
            if pool is not None and served.key is not None:
                signature = await pool.sign(client, served.key, attributes)
            else:
                signature = signer.sign(attributes)
        except PoolFull:
            self.stats["busy"] += 1
            return self._failure("system_failure", "the TSA is busy: try again shortly", retry=True)
        except Exception as exc:  # a signer failed or timed out: nothing was issued
            self.stats["failed"] += 1
            log.error("TSA %s: signing failed: %s", name, exc)
            return self._failure("system_failure", "the TSA could not sign", retry=True)
        issued = signer.finish(request, serial, gen_time, tst_info, attributes, signature, client)
        try:
            await self.ledger.record(issued.row)
        except Exception:  # not recorded: never sent
            self.stats["failed"] += 1
            return self._failure("system_failure", "the TSA could not record the token", retry=True)
        self.stats["granted"] += 1
        return TsaReply(200, issued.response, [(b"content-type", REPLY_TYPE), (b"cache-control", b"no-store")])

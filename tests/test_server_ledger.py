"""The token ledger's group commit waits for more rows only while the signers are saturated,
and the signing pool says when they are (requests queued for a signer)."""
from __future__ import annotations

import asyncio
import socket
import struct

from pki.server import tsa as tsa_server
from pki.server.signing import PoolOptions, SigningPool
from pki.server.tsa import TokenLedger
from pki.store import Store


def test_the_ledger_gathers_only_while_the_signers_are_saturated(tmp_path, monkeypatch):
    # a window no test could sit out: a commit that waited for it would show as a timeout
    monkeypatch.setattr(tsa_server, "GATHER_SECONDS", 60.0)
    saturated = [False]
    ledger = TokenLedger(Store.open(f"sqlite:///{tmp_path / 'ledger.db'}"), saturated=lambda: saturated[0])
    commits: list[list[int]] = []
    ledger.record_now = lambda rows: commits.append([row["n"] for row in rows])  # type: ignore[method-assign]

    async def scenario() -> None:
        # two rows of one event-loop iteration travel together: the ledger is "under load" after them
        await asyncio.gather(ledger.record({"n": 1}), ledger.record({"n": 2}))
        # under load, but a core is idle: committed at once, not after the window
        await asyncio.wait_for(ledger.record({"n": 3}), 30)
        await asyncio.gather(ledger.record({"n": 4}), ledger.record({"n": 5}))
        saturated[0] = True
        fourth = asyncio.ensure_future(ledger.record({"n": 6}))
        await asyncio.sleep(0.3)                  # the ledger has taken row 6 and is gathering
        assert not fourth.done()
        seventh = asyncio.ensure_future(ledger.record({"n": 7}))
        await asyncio.sleep(0.05)
        await asyncio.get_running_loop().run_in_executor(None, ledger.close)   # ends the window
        await asyncio.wait_for(asyncio.gather(fourth, seventh), 30)

    asyncio.run(scenario())
    assert commits == [[1, 2], [3], [4, 5], [6, 7]]


def test_the_pool_reports_a_backlog_while_requests_wait_for_a_signer():
    worker_end, signer_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pool = SigningPool([worker_end], PoolOptions(signers=1, depth=1, capacity=8, share=1.0))

    async def scenario() -> list[bytes]:
        assert not pool.backlog
        first = asyncio.ensure_future(pool.sign("127.0.0.1", 0, b"one"))
        second = asyncio.ensure_future(pool.sign("127.0.0.1", 0, b"two"))
        await asyncio.sleep(0)
        assert pool.backlog                       # depth 1: "two" waits for the signer
        loop = asyncio.get_running_loop()
        answers = []
        for _ in range(2):
            request = await loop.run_in_executor(None, signer_end.recv, 1024)
            request_id, _key = struct.unpack_from(">IH", request)
            signer_end.send(struct.pack(">IB", request_id, 0) + b"sig:" + request[6:])
            answers.append(request[6:])
        assert await first == b"sig:one" and await second == b"sig:two"
        assert not pool.backlog
        return answers

    assert asyncio.run(scenario()) == [b"one", b"two"]
    worker_end.close()
    signer_end.close()

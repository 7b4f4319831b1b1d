"""Keep-alive connections spread fairly over the console's workers (`console.balance`).

A worker holding more than ⌈open connections / workers⌉ answers with ``Connection: close``; the
client's next connection is placed afresh.  Judges: the kernel (`ss -tnp`: which process holds
each established connection) and plain `http.client` clients, which reconnect by themselves.
No assertion on time.
"""
from __future__ import annotations

import http.client
import re
import subprocess
from collections import Counter
from pathlib import Path

from console.balance import ConnectionShares
from console_support import ConsoleServer, make_world

CONNECTIONS = 16      # 8/8 by the kernel's hash alone: one time in five


def test_a_worker_over_its_share_is_told_so() -> None:
    shares = ConnectionShares(2)
    for _ in range(3):
        shares.opened(0)
    shares.opened(1)
    assert shares.over_share(0) and not shares.over_share(1)          # 3 > ⌈4/2⌉
    shares.closed(0)
    assert not shares.over_share(0)                                   # 2 of 3: ⌈3/2⌉ = 2
    shares.reset(0)
    assert shares.count(0) == 0 and not shares.over_share(1)          # one connection is never too many


def _held(port: int) -> Counter[str]:
    listing = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                             capture_output=True, text=True, check=True).stdout
    return Counter(re.findall(r"pid=(\d+)", listing))


def test_keep_alive_connections_end_up_spread_over_the_workers(tmp_path: Path) -> None:
    world = make_world(tmp_path / "home", people=False)
    world.home.store.dispose()
    server = ConsoleServer(world.path, workers=2)
    clients = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=30) for _ in range(CONNECTIONS)]
    try:
        closed = 0
        for _ in range(40):
            for client in clients:
                client.request("GET", "/healthz")
                answer = client.getresponse()
                assert answer.status == 200 and answer.read() == b"ok\n"
                closed += answer.getheader("connection", "").lower() == "close"
            held = _held(server.port)
            if len(held) == 2 and max(held.values()) <= CONNECTIONS // 2 and sum(held.values()) == CONNECTIONS:
                break
        assert len(held) == 2 and max(held.values()) <= CONNECTIONS // 2, (held, closed)
    finally:
        for client in clients:
            client.close()
        server.stop()

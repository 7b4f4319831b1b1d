"""The listening sockets of `yinxin serve` and `yinxin console`: one per worker on one address
(SO_REUSEPORT), so the kernel spreads connections over the workers; a port in use is refused, not
shared; the status service takes a client's address from its socket, never from X-Forwarded-For.

Judges: the kernel (which socket a connection is queued on, `ss -tnp` for the process holding
each established connection) and the TSA's own rows read with sqlite3.  No assertion on time.
"""
from __future__ import annotations

import errno
import http.client
import re
import select
import socket
import subprocess

import pytest

from ca_helpers import PASSWORD, World, sql, wall_clock
from pki.server.run import bind_each
from pki.tsa import TimestampAuthority
from server_support import LiveServer
from tsa_support import TSA_PASSWORD, openssl_query

CONNECTIONS = 16      # all on one of two workers by chance: 2 × 2⁻¹⁶


def _accepted_on(sockets: list[socket.socket]) -> list[int]:
    counts = [0] * len(sockets)
    for i, sock in enumerate(sockets):
        sock.setblocking(False)
        while select.select([sock], [], [], 0.2)[0]:
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                break
            conn.close()
            counts[i] += 1
    return counts


def test_each_worker_has_its_own_socket_and_connections_are_spread():
    sockets = bind_each("127.0.0.1", 0, 64, 2)
    try:
        ports = {s.getsockname()[1] for s in sockets}
        assert len(sockets) == 2 and len({id(s) for s in sockets}) == 2 and len(ports) == 1
        port = ports.pop()
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        counts = _accepted_on(sockets)
        for c in clients:
            c.close()
        assert sum(counts) == CONNECTIONS and min(counts) > 0, counts
    finally:
        for s in sockets:
            s.close()


def test_a_port_in_use_is_refused_even_by_a_reuseport_listener():
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(("127.0.0.1", 0))
    other.listen(8)
    try:
        with pytest.raises(OSError) as refused:
            bind_each("127.0.0.1", other.getsockname()[1], 64, 2)
        assert refused.value.errno == errno.EADDRINUSE
    finally:
        other.close()


def test_one_worker_binds_one_plain_socket():
    [sock] = bind_each("127.0.0.1", 0, 64, 1)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):  # type: ignore[no-untyped-def]
    world = World(tmp_path_factory.mktemp("sockets") / "home", tmp_path_factory.mktemp("sockets-files"),
                  wall_clock())
    world.init_ca("ec", "ecdsa-p256")
    TimestampAuthority(world.home).init("ec-tsa", ca="ec", ca_password=PASSWORD, password=TSA_PASSWORD,
                                        actor=world.op, approver=world.officer("bob"))
    password_file = world.files / "ca-password"
    password_file.write_bytes(PASSWORD + b"\n")
    world.home.store.dispose()
    live = LiveServer(world.home_dir, args=("--workers", "2", "--ca-password-file", str(password_file)),
                      env={"YINXIN_TSA_PASSWORD": TSA_PASSWORD.decode()}).start()
    yield world, live
    assert live.stop() == 0, live.errors()


def test_serve_spreads_connections_over_its_workers(served):
    _, live = served
    port = int(live.url.rsplit(":", 1)[1])
    connections = []
    for _ in range(CONNECTIONS):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() is not None
        connections.append(conn)
    try:
        listing = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                                 capture_output=True, text=True, check=True).stdout
        pids = set(re.findall(r"pid=(\d+)", listing))
        assert len(listing.splitlines()) == CONNECTIONS and len(pids) == 2, listing
    finally:
        for conn in connections:
            conn.close()


def test_the_status_service_ignores_x_forwarded_for(served):
    world, live = served
    data = world.files / "data.bin"
    data.write_bytes(b"a document to date\n")
    query = openssl_query(world.files, data, "sha256", stem="xff")
    conn = http.client.HTTPConnection("127.0.0.1", int(live.url.rsplit(":", 1)[1]), timeout=30)
    conn.request("POST", "/tsa/ec-tsa", body=query.read_bytes(),
                 headers={"Content-Type": "application/timestamp-query", "X-Forwarded-For": "10.9.9.9"})
    assert conn.getresponse().status == 200
    conn.close()
    clients = {c for (c,) in sql(world.db_path(), "SELECT client FROM tsa_tokens")}
    assert clients == {"127.0.0.1"}

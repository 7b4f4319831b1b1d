"""Running the status service: N HTTP worker processes (each on its own listening socket of one
address: `bind_each`), signers, one maintainer.

The parent process opens the home, loads the signing keys (so no password is
handed to a child), binds the sockets, and forks:

* `workers` HTTP workers, each running uvicorn (uvloop + httptools when installed) on
  its own socket with its own `StatusService`, `SigningPool`, `TimestampService` and
  database connections;
* `pool.signers` signer processes (`pki.server.signing`) holding the OCSP and TSA keys, at
  a lower priority, for every signature made on demand (``PoolOptions(signers=0)``: the
  workers sign themselves, as before the pool existed);
* one maintainer running `Maintainer` (pre-signing and CRL publication).

It then only supervises: a child that dies unexpectedly is started again
(at most once a second), SIGTERM/SIGINT stop them all.  Forking after the
keys are loaded and before any thread or event loop exists keeps the
children simple; each child opens its own database connections.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import sqlalchemy as sa
from sqlalchemy import event

from ..ca import CertificateAuthority
from ..presign import OcspPolicy
from .app import StatusApp
from .maintain import CrlPolicy, Maintainer, ServedCa
from .service import Endpoint, StatusService
from .signing import PoolOptions, SignerProcesses, SigningKey, SigningPool

log = logging.getLogger("yinxin.server")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    poll_interval: float = 0.1          # seconds: the bound on seeing a committed status change
    revalidate_after: float = 30.0
    cache_size: int = 100_000
    max_age: int = 3600                 # cap of Cache-Control max-age, seconds
    policy: OcspPolicy = field(default_factory=OcspPolicy)
    crl_policy: CrlPolicy = field(default_factory=CrlPolicy)
    sweep_interval: float = 300.0
    backlog: int = 2048
    pool: PoolOptions | None = field(default_factory=PoolOptions)    # None: workers sign themselves
    nonce_policy: str = "sign"          # "presigned": RFC 5019 — a nonce request gets the pre-signed answer

    def __post_init__(self) -> None:
        if self.nonce_policy not in ("sign", "presigned"):
            raise ValueError("nonce_policy is sign or presigned")
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")
        if self.poll_interval < 0 or self.revalidate_after < 0 or self.max_age < 0:
            raise ValueError("intervals must not be negative")


def read_engine(url: sa.engine.URL) -> sa.engine.Engine:
    """An engine for reads only: autocommit, so every statement sees the latest commit and no
    transaction is ever held open (SQLite WAL readers never block writers)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA query_only=ON")
            cur.close()
    return engine


def bind(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def bind_each(host: str, port: int, backlog: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one address, one per worker, with SO_REUSEPORT: the kernel
    spreads new connections over them.  On one shared socket the worker that wakes first accepts
    every connection waiting (uvloop accepts until the queue is empty), so a client opening its
    connections at once lands on one worker (measured: ten keep-alive connections, all ten on one
    of two workers).  The address is first bound once without SO_REUSEPORT, so a port already in
    use — even by another yinxin with SO_REUSEPORT — is refused instead of shared."""
    if count < 1:
        raise ValueError("count must be at least 1")
    if count == 1 or not hasattr(socket, "SO_REUSEPORT"):
        single = bind(host, port, backlog)
        return [single] * count
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for attempt in range(5):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            chosen = probe.getsockname()[1]
        sockets: list[socket.socket] = []
        try:
            for _ in range(count):
                sock = socket.socket(family, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host, chosen))
                sock.listen(backlog)
                sock.set_inheritable(True)
            return sockets
        except OSError:
            for sock in sockets:
                sock.close()
            if port != 0 or attempt == 4:    # a port chosen by the kernel may be taken meanwhile: choose again
                raise
    raise AssertionError("unreachable")


def freeze_heap() -> None:
    """Move every object a worker holds once set up (modules, keys, compiled statements) out of
    the garbage collector's reach (`gc.freeze`): a full collection walked them all — about 20 ms
    for the ~65,000 objects of the imports alone, a pause every request in flight waited for —
    and they live as long as the worker anyway."""
    import gc
    gc.collect()
    gc.freeze()


class _Stop(Exception):
    pass


def _stop_handler(_signum: int, _frame: Any) -> None:
    raise _Stop()


def _worker_main(authority: CertificateAuthority, served: list[ServedCa], sock: socket.socket,
                 options: ServeOptions, index: int, signers: SignerProcesses | None, tsas: list[Any]) -> None:
    import uvicorn

    from ..store import Store
    from .tsa import TimestampService, TokenLedger
    engine = read_engine(authority.home.store.engine.url)
    pool = None
    if signers is not None and options.pool is not None:
        pool = SigningPool(signers.worker_channels(index), options.pool)

    def key_index(name: str) -> int | None:
        return signers.index(name) if signers is not None else None

    endpoints = {s.ca.name: Endpoint(s.ca, s.signer, key_index=key_index(f"ocsp:{s.ca.name}") if s.signer else None)
                 for s in served}
    service = StatusService(endpoints, engine, clock=authority.home.clock, policy=options.policy,
                            poll_interval=options.poll_interval, revalidate_after=options.revalidate_after,
                            cache_size=options.cache_size, nonce_policy=options.nonce_policy)
    timestamps = None
    if tsas:
        ledger = TokenLedger(Store.open(authority.home.store.engine.url.render_as_string(hide_password=False)),
                             saturated=(lambda: pool.backlog) if pool is not None else None)
        timestamps = TimestampService({t.info.name: (t, key_index(f"tsa:{t.info.name}")) for t in tsas}, ledger, pool)
    app = StatusApp(service, max_age=options.max_age, pool=pool, timestamps=timestamps)
    # "auto": uvloop and httptools when installed (the dependencies name them), else asyncio and h11.
    # No X-Forwarded-For: a client is its socket's address (the signing pool's per-client share),
    # which uvicorn would otherwise take from that header on connections from 127.0.0.1
    config = uvicorn.Config(app, loop="auto", http="auto", lifespan="off", access_log=False,
                            log_config=None, log_level="warning", server_header=False,
                            timeout_keep_alive=15, backlog=options.backlog, proxy_headers=False)
    freeze_heap()
    uvicorn.Server(config).run(sockets=[sock])


def _maintainer_main(authority: CertificateAuthority, served: list[ServedCa], options: ServeOptions) -> None:
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    maintainer = Maintainer(authority, served, read_engine(authority.home.store.engine.url),
                            policy=options.policy, crl_policy=options.crl_policy,
                            sweep_interval=options.sweep_interval)
    maintainer.run(lambda: stopping)


def _spawn(role: str, target: Callable[[], None], name: str = "status service") -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        target()
    except KeyboardInterrupt:
        pass
    except BaseException:  # the parent logs the exit and starts another
        log.exception("%s %s failed", name, role)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)


#: forks a child: (role, target) -> pid (the supervisor's, so the child is logged and restarted as any other)
Spawn = Callable[[str, Callable[[], None]], int]


def signing_keys(served: list[ServedCa], tsas: list[Any]) -> list[SigningKey]:
    """The keys the signer processes hold: each served CA's OCSP signer, each TSA's key."""
    from ..sm2 import DEFAULT_DISTID
    keys = [SigningKey(f"ocsp:{s.ca.name}", s.signer.key, s.signer.distid) for s in served if s.signer is not None]
    keys += [SigningKey(f"tsa:{t.info.name}", t.key, (t.info.distid or DEFAULT_DISTID) if t.key.algorithm == "sm2"
                        else None) for t in tsas]
    return keys


def supervise(children: Sequence[tuple[str, Callable[[], None] | None]],
              sockets: Sequence[socket.socket], *,
              name: str = "status service", forked_by: dict[str, Callable[[Spawn], int]] | None = None,
              cleanup: Callable[[], None] | None = None) -> None:
    """Fork one process per (role, target), start again any that dies (at most once a second), until
    SIGTERM/SIGINT; then stop them all (SIGTERM, SIGKILL after 10 s), close `sockets` and call
    `cleanup`.  A role whose target is None forks itself through `forked_by[role](spawn)` (the
    signer processes set up their channels before forking).  The caller binds `sockets` and disposes of
    its database connections before: nothing crosses a fork open."""
    targets = dict(children)
    forkers = forked_by or {}

    def spawn(role: str, target: Callable[[], None]) -> int:
        return _spawn(role, target, name)

    roles: dict[int, str] = {}

    def start(role: str) -> None:
        target = targets[role]
        pid = forkers[role](spawn) if target is None else spawn(role, target)
        roles[pid] = role

    old_term = signal.signal(signal.SIGTERM, _stop_handler)
    old_int = signal.signal(signal.SIGINT, _stop_handler)
    try:
        for role in targets:
            start(role)
        last_restart = 0.0
        while True:
            pid, status = os.wait()
            role = roles.pop(pid, None)
            if role is None:
                continue
            log.warning("%s %s (pid %d) exited with %s; starting another", name, role, pid,
                        os.waitstatus_to_exitcode(status))
            pause = last_restart + 1.0 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            last_restart = time.monotonic()
            start(role)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for pid in list(roles):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while roles and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                roles.pop(pid, None)
            else:
                time.sleep(0.05)
        for pid in roles:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        for sock in sockets:
            sock.close()
        if cleanup is not None:
            cleanup()
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def serve(authority: CertificateAuthority, served: list[ServedCa], options: ServeOptions = ServeOptions(),
          *, tsas: Sequence[Any] = (), on_ready: Callable[[str, int], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT.  `on_ready(host, port)` is called once the socket listens.
    `tsas` are `pki.tsa.TsaSigner`s loaded with ``clock_shared=True`` (their genTime mark is
    shared by the workers)."""
    tsas = list(tsas)
    if not served and not tsas:
        raise ValueError("nothing to serve: no CA and no TSA")
    signers = None
    if options.pool is not None and options.pool.signers > 0:
        signers = SignerProcesses(signing_keys(served, tsas), workers=options.workers, options=options.pool)
    sockets = bind_each(options.host, options.port, options.backlog, options.workers)
    host, port = sockets[0].getsockname()[:2]
    authority.home.store.dispose()   # no connection crosses a fork
    if on_ready is not None:
        on_ready(host, port)
    sys.stdout.flush()
    sys.stderr.flush()

    def close_sockets() -> None:
        for sock in sockets:
            sock.close()

    def maintainer() -> None:
        close_sockets()
        if signers is not None:
            signers.close_all()
        _maintainer_main(authority, served, options)

    children: list[tuple[str, Callable[[], None] | None]] = [("maintainer", maintainer)] if served else []
    forked_by: dict[str, Callable[[Spawn], int]] = {}
    if signers is not None:
        for i in range(signers.options.signers):
            role = f"signer {i + 1}"
            children.append((role, None))
            forked_by[role] = (lambda index: lambda spawn: signers.start(
                index, lambda _role, target: spawn(_role, lambda: (close_sockets(), target()))))(i)
    for i in range(options.workers):
        children.append((f"worker {i + 1}", (lambda index: lambda: _worker_main(
            authority, served, sockets[index], options, index, signers, tsas))(i)))
    supervise(children, sockets, forked_by=forked_by, cleanup=signers.close_all if signers is not None else None)

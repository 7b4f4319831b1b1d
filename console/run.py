"""Running the console: N worker processes, each on its own listening socket of one address
(SO_REUSEPORT: the kernel spreads connections over them; TLS when given a certificate), keep-alive
connections kept spread fairly (`console.balance`).

The parent opens the home (migrating its schema), binds the sockets and forks the workers, then only
supervises them (`pki.server.run.supervise`: a worker that dies is started again; SIGTERM/SIGINT stop
them all).  Each worker runs uvicorn (uvloop and httptools when installed) with its own database
connections; the workers of a node — and the nodes sharing one PostgreSQL — hold no state of their
own that matters: sessions, tokens and documents are in the database, page pictures in the node's
cache directory named by the bytes' digest.
"""
from __future__ import annotations

import logging
import sys
from typing import Any, Callable

from .options import LOOPBACK, ConsoleOptions

log = logging.getLogger("yinxin.console")


def check_exposure(options: ConsoleOptions) -> None:
    """Plain HTTP only on the loopback address, or behind a TLS proxy: the session cookie is Secure
    (browsers keep it over TLS and on loopback only), and passwords never cross a network in clear."""
    if not options.tls and not options.proxy_headers and options.host not in LOOPBACK:
        raise ValueError(f"serving plain HTTP on {options.host}: give --certfile and --keyfile, or put a TLS proxy "
                         "in front and say --proxy-headers")


def _worker(home: Any, options: ConsoleOptions, sock: Any, shares: Any = None, index: int = 0) -> None:
    import uvicorn
    from uvicorn.protocols.http.auto import AutoHTTPProtocol
    from pki.server.run import freeze_heap
    from .app import create_app
    from .balance import CloseOverShare, counting_protocol
    app: Any = create_app(home, options, warm=True)     # before it accepts: no first request pays for imports
    protocol: Any = "auto"
    if shares is not None:                              # several workers: keep-alive connections spread fairly
        shares.reset(index)
        app, protocol = CloseOverShare(app, shares, index), counting_protocol(AutoHTTPProtocol, shares, index)
    config = uvicorn.Config(app, loop="auto", http=protocol, lifespan="off", access_log=False, log_config=None,
                            log_level="warning", server_header=False, timeout_keep_alive=15,
                            backlog=options.backlog, ssl_certfile=options.certfile, ssl_keyfile=options.keyfile,
                            proxy_headers=options.proxy_headers, forwarded_allow_ips=options.forwarded_allow_ips,
                            date_header=True)
    freeze_heap()
    uvicorn.Server(config).run(sockets=[sock])


def serve(home: Any, options: ConsoleOptions, *, on_ready: Callable[[str, int], None] | None = None) -> None:
    """Serve the console until SIGTERM/SIGINT; `on_ready(host, port)` once the socket listens."""
    from pki.server.run import bind_each, supervise
    check_exposure(options)
    if options.tls:
        import ssl
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(options.certfile, options.keyfile)    # a bad pair fails here, not in a worker
    sockets = bind_each(options.host, options.port, options.backlog, options.workers)
    host, port = sockets[0].getsockname()[:2]
    home.store.dispose()                     # no connection crosses a fork
    if on_ready is not None:
        on_ready(host, port)
    sys.stdout.flush()
    sys.stderr.flush()
    from .balance import ConnectionShares
    shares = ConnectionShares(options.workers) if options.workers > 1 else None
    supervise([(f"worker {i + 1}", (lambda index: lambda: _worker(home, options, sockets[index], shares, index))(i))
               for i in range(options.workers)], sockets,
              name="console")


__all__ = ["serve", "check_exposure"]

"""The console's settings (frozen, checked on construction)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class ConsoleOptions:
    host: str = "127.0.0.1"
    port: int = 8443
    workers: int = 1
    certfile: str | None = None
    keyfile: str | None = None
    #: TLS ends at a reverse proxy in front: trust its X-Forwarded-For/-Proto (from `forwarded_allow_ips`)
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"
    #: the largest request body (an uploaded PDF with the form around it)
    max_upload_bytes: int = 25 * 1024 * 1024
    #: failed bearer tokens or PINs from one address per minute before 429
    failures_per_minute: int = 20
    cache_dir: str | None = None
    backlog: int = 2048

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0..65535")
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("TLS needs both a certificate file and a key file")
        if self.max_upload_bytes < 1024 or self.failures_per_minute < 1:
            raise ValueError("max_upload_bytes ≥ 1024 and failures_per_minute ≥ 1")

    @property
    def tls(self) -> bool:
        return self.certfile is not None

    def origins(self, request: Any) -> set[str]:
        """The origins a same-site form may come from: the one the request was made to."""
        host = request.headers.get("host", "")
        return {f"{request.url.scheme}://{host}"} if host else set()

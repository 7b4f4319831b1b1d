"""Helpers for the status-service tests (tests/test_server_*.py).

* `LiveServer` — the real `yinxin serve` in a subprocess on 127.0.0.1 and a free port
* `http_get` / `http_post` — urllib, returning (status, headers, body) whatever the status
* `ocsp_url_get` — the RFC 5019 GET URL of a DER request (base64, URL-encoded)

OpenSSL (`openssl ocsp -url`, `openssl crl -CAfile`) judges what the server says.
"""
from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ca_helpers import cli_environment, console_script


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes


def _request(request: urllib.request.Request, timeout: float) -> HttpResult:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return HttpResult(response.status, {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as exc:
        return HttpResult(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 30) -> HttpResult:
    return _request(urllib.request.Request(url, headers=headers or {}), timeout)


def http_post(url: str, body: bytes, content_type: str = "application/ocsp-request", timeout: float = 30,
              method: str = "POST") -> HttpResult:
    return _request(urllib.request.Request(url, data=body, method=method,
                                           headers={"Content-Type": content_type}), timeout)


def ocsp_url_get(base: str, ca: str, request_der: bytes) -> str:
    return f"{base}/ocsp/{ca}/" + urllib.parse.quote(base64.b64encode(request_der).decode(), safe="")


@dataclass
class LiveServer:
    """`yinxin serve` running on 127.0.0.1; stop() ends it (SIGTERM to the supervisor it started)."""

    home: Path
    args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    info: dict[str, object] = field(default_factory=dict)
    log: Path | None = None

    def start(self, timeout: float = 60) -> "LiveServer":
        full_env = cli_environment(self.home, dict(self.env))
        self.log = self.home.parent / f"serve-{os.getpid()}-{time.monotonic_ns()}.log"
        self.process = subprocess.Popen(
            [console_script(), "serve", "--host", "127.0.0.1", "--port", "0", "--json", "--log-level", "warning",
             *self.args], stdout=subprocess.PIPE, stderr=open(self.log, "wb"), env=full_env)
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            self.process.wait(timeout=10)
            raise AssertionError(f"yinxin serve did not start: {self.log.read_text()}")
        self.info = json.loads(line)
        self.url = str(self.info["url"])
        deadline = time.monotonic() + timeout
        while True:
            try:
                if http_get(self.url + "/healthz", timeout=5).status == 200:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"yinxin serve is not answering: {self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process.stdout.close()  # type: ignore[union-attr]
        return code

    def errors(self) -> str:
        return self.log.read_text() if self.log else ""


def wait_for(predicate, timeout: float = 60, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """Poll until `predicate()` is truthy (set-up steps of the background service, not timings)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(interval)


def presigned(db: Path) -> dict[tuple[str, str], bytes]:
    """(CA name, serial) → stored pre-signed response, read with sqlite3 (not our store)."""
    con = sqlite3.connect(db)
    try:
        return {(ca, serial): der for ca, serial, der in con.execute(
            "SELECT cas.name, r.serial, r.der FROM ocsp_responses r JOIN cas ON cas.id = r.ca_id")}
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


def crl_numbers(db: Path, ca: str) -> list[tuple[int, int | None]]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT crls.number, crls.delta_base FROM crls JOIN cas ON cas.id = crls.ca_id "
                           "WHERE cas.name = ? ORDER BY crls.number", (ca,)).fetchall()
    finally:
        con.close()

"""Helpers for the console tests (test_console_*): a home with an organisation, people with passwords,
CAs and seals; the real `yinxin console` started as a subprocess on 127.0.0.1; a small HTTP client
(http.client, no library of ours) keeping cookies; multipart encoding; the database read past pki.store.

* `world(tmp_path, algorithm)` — a home: the example bureau (北京市测试局) and a second organisation
  (天津市测试局), an account for every person (password `PASSWORD`, already changed from the initial
  one), an admin `root`, CA and seal administrators, a root and an issuing CA of `algorithm`, each
  organisation's official seal with its custodian's password changed to `SEAL_PASSWORD`
* `ConsoleServer` — `yinxin console --port 0 --json` on the world's home; `.url`, `.stop()`
* `Client` — GET/POST with a cookie jar; `login(user, password)`; `csrf(path)` reads a form's token
* `domain_rows(db)` — every row of every table except the audit trail and the sessions' idle timers:
  what a refused request must leave as it was
"""
from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlencode, urlsplit

from ca_helpers import cli_environment, console_script

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
ORG = "北京市测试局"
OTHER = "天津市测试局"
PASSWORD = b"Wide-River-Stone-2026"
INITIAL = b"Initial-Passphrase-7"
ADMIN_PASSWORD = b"Admin-Passphrase-2026"
CA_PASSWORD = b"Ca-Password-2026!"
SEAL_INITIAL = b"Initial-Seal-Pw-1"
SEAL_PASSWORD = b"Custodian-Pw-2026#"
WRONG_SEAL_PASSWORD = b"Wrong-Seal-Pw-99!"
PIN = b"Pin-2468-Test"
SEALS = {ORG: "official-bj", OTHER: "official-tj"}
CUSTODIANS = {ORG: "wang", OTHER: "t_wang"}


def other_org(seal: str) -> dict[str, Any]:
    return {"name": OTHER, "code": "津测", "seal": seal, "people": [
        {"id": "t_sun", "name": "孙天", "department": "综合处"},
        {"id": "t_head", "name": "何处长", "department": "综合处", "head": True},
        {"id": "t_office", "name": "欧主任", "department": "办公室", "head": True, "roles": ["office_head"]},
        {"id": "t_li", "name": "李局", "roles": ["leader"]},
        {"id": "t_wu", "name": "吴局长", "roles": ["director"]},
        {"id": "t_ma", "name": "马印", "department": "办公室", "roles": ["registry"]},
        {"id": "t_wang", "name": "王印", "department": "办公室", "roles": ["seal_custodian"]},
        {"id": "t_liu", "name": "刘秘", "department": "办公室", "roles": ["secretary", "receiver"]},
    ]}


@dataclass
class World:
    path: Path
    home: Any
    algorithm: str
    seals: dict[str, str] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.path / "yinxin.db"

    def actor(self, account: str) -> Any:
        from pki.accounts.testing import actor_for_tests
        return actor_for_tests(self.home, account)

    def flow(self) -> Any:
        from docflow import DocumentFlow
        return DocumentFlow(self.home)


def make_world(path: Path, *, algorithm: str = "sm2", people: bool = True, signed: bool = False) -> World:
    """See the module docstring; `people` False skips the people's passwords (argon2 costs ~50 ms each).
    Without `signed` the organisations sign no decision (`signatures: none`); with it the bureau's
    people hold person certificates whose keys open with `PIN`, and every act is a signed decision."""
    import docflow  # noqa: F401  (the docflow and seal tables)
    import yaml
    from docflow import DocumentFlow
    from pki.accounts.accounts import Accounts
    from pki.accounts.testing import actor_for_tests
    from pki.ca import CertificateAuthority
    from pki.home import Home
    from seal.records import SealRegistry
    home = Home.open(path)
    accounts = Accounts.of(home)
    accounts.create("root", name="管理员", roles=("admin",), password=ADMIN_PASSWORD, actor=None)
    admin = accounts.resume(accounts.authenticate("root", ADMIN_PASSWORD).token)
    ca_admin = actor_for_tests(home, "ca-admin", roles=("ca_operator", "seal_admin"))
    ra = actor_for_tests(home, "ra", roles=("ra_officer",))
    authority = CertificateAuthority(home)
    authority.init_ca(name="root-ca", subject="/C=CN/O=yinxin tests/CN=Console Root", algorithm=algorithm,
                      password=CA_PASSWORD, actor=ca_admin)
    authority.init_ca(name="issuing", subject="/C=CN/O=yinxin tests/CN=Console Seal CA", algorithm=algorithm,
                      password=CA_PASSWORD, parent="root-ca", parent_password=CA_PASSWORD, actor=ca_admin)
    flow = DocumentFlow(home)
    bureau = yaml.safe_load((ROOT / "policies" / "examples" / "beijing-test-bureau.yaml").read_text("utf-8"))
    world = World(path=path, home=home, algorithm=algorithm)
    for data in (bureau, other_org(SEALS[OTHER])):
        data = dict(data, seal=SEALS[data["name"]])
        if not signed or data["name"] != ORG:
            data["signatures"] = "none"
        for person in data["people"]:
            if not accounts.exists(person["id"]):
                if people:
                    accounts.create(person["id"], name=person["name"], organisation=data["name"], password=INITIAL,
                                    actor=admin)
                    accounts.authenticate(person["id"], INITIAL, new_password=PASSWORD)
                else:
                    actor_for_tests(home, person["id"], name=person["name"], organisation=data["name"])
        flow.load_organisation_data(data, actor=admin, source="tests")
    registry = SealRegistry(home)
    for org, name in SEALS.items():
        custodian = CUSTODIANS[org]
        registry.create(name=name, organisation=org, seal_type="official", custodian=custodian, ca="issuing",
                        password=SEAL_INITIAL, ca_password=CA_PASSWORD, actor=ca_admin, approver=ra)
        registry.change_password(name, SEAL_INITIAL, SEAL_PASSWORD, actor=actor_for_tests(home, custodian))
        world.seals[org] = name
    if signed:
        from pki.accounts.testing import certified_actor
        for person in bureau["people"]:
            certified_actor(home, person["id"], ca="issuing", ca_password=CA_PASSWORD, pin=PIN)
    home.store.dispose()
    return world


def document_pdf(title: str = "关于开展电子印章试点工作的请示", organisation: str = ORG, pages: int = 1) -> bytes:
    from docflow.sample import make_document_pdf
    body = ["为推进电子政务建设，经研究，拟在全局开展电子印章试点工作。"] * max(1, pages * 12 - 11)
    return make_document_pdf(title, organisation, "2026年5月8日", body + ["妥否，请批示。"])


# --------------------------------------------------------------------------- the server

class ConsoleServer:
    """The real `yinxin console` on 127.0.0.1 (a free port), stopped with SIGTERM."""

    def __init__(self, home: Path, *, workers: int = 1, extra: Sequence[str] = (),
                 env: dict[str, str | None] | None = None, scheme: str = "http") -> None:
        self.log = home.parent / f"console-{uuid.uuid4().hex[:6]}.log"
        self._log = open(self.log, "wb")
        self.proc = subprocess.Popen([console_script(), "--json", "console", "--port", "0", "--workers", str(workers),
                                      "--log-level", "warning", *extra], stdout=subprocess.PIPE, stderr=self._log,
                                     env=cli_environment(home, env), start_new_session=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stop()
            raise AssertionError(f"yinxin console did not start: {self.log.read_text(errors='replace')}")
        info = json.loads(line)
        self.url = info["url"]
        self.port = info["port"]
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _, _ = request("GET", self.url + "/healthz", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("yinxin console did not answer /healthz within 30 s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()

    def errors(self) -> str:
        return self.log.read_text(errors="replace")

    def __enter__(self) -> "ConsoleServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --------------------------------------------------------------------------- HTTP

def request(method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 120) -> tuple[int, dict[str, list[str]], bytes]:
    parts = urlsplit(url)
    if parts.scheme == "https":
        import ssl
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl._create_unverified_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        found: dict[str, list[str]] = {}
        for name, value in response.getheaders():
            found.setdefault(name.lower(), []).append(value)
        return response.status, found, data
    finally:
        conn.close()


def multipart(fields: Sequence[tuple[str, str]] = (), files: Sequence[tuple[str, str, bytes, str]] = ()) \
        -> tuple[bytes, str]:
    boundary = "----yinxin" + uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").encode()
        out += value.encode("utf-8") + b"\r\n"
    for name, filename, data, ctype in files:
        out += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                f"Content-Type: {ctype}\r\n\r\n").encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def location(self) -> str | None:
        return self.header("location")


class Client:
    """A browser-like client: a cookie jar, forms, and the CSRF token read from a page."""

    def __init__(self, base: str, *, token: str | None = None) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self.token = token

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Host": urlsplit(self.base).netloc}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        headers.update(extra or {})
        return headers

    def _keep(self, answer: Answer) -> Answer:
        for value in answer.headers.get("set-cookie", []):
            name, _, rest = value.partition("=")
            cookie_value = rest.split(";", 1)[0]
            if "Max-Age=0" in value or not cookie_value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie_value
        return answer

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self._keep(Answer(*request("GET", self.base + path, headers=self._headers(headers))))

    def post(self, path: str, fields: Sequence[tuple[str, str]] | dict[str, str] = (),
             files: Sequence[tuple[str, str, bytes, str]] = (), headers: dict[str, str] | None = None,
             json_body: Any = None) -> Answer:
        items = list(fields.items()) if isinstance(fields, dict) else list(fields)
        if json_body is not None:
            body, ctype = json.dumps(json_body, ensure_ascii=False).encode("utf-8"), "application/json"
        elif files:
            body, ctype = multipart(items, files)
        else:
            body, ctype = urlencode(items).encode(), "application/x-www-form-urlencoded"
        all_headers = {"Content-Type": ctype, **(headers or {})}
        return self._keep(Answer(*request("POST", self.base + path, body=body, headers=self._headers(all_headers))))

    def csrf(self, path: str = "/todo") -> str:
        page = self.get(path)
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, f"no CSRF token on {path}: {page.status} {page.text[:300]}"
        return found.group(1)

    def login(self, username: str, password: bytes, *, new_password: bytes | None = None,
              pin: bytes | None = None) -> Answer:
        page = self.get("/login")
        token = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        fields = [("login_csrf", token.group(1)), ("username", username), ("password", password.decode()),
                  ("next", "/todo")]
        if new_password is not None:
            fields += [("new_password", new_password.decode()), ("new_password_confirm", new_password.decode())]
        if pin is not None:
            fields.append(("pin", pin.decode()))
        return self.post("/login", fields)


def pdf_file(data: bytes, name: str = "document.pdf") -> tuple[str, str, bytes, str]:
    return ("file", name, data, "application/pdf")


# --------------------------------------------------------------------------- the database

def domain_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read with sqlite3 — less the audit trail (a refused request is
    audited with its client address, as ASVS wants) and the sessions' idle timers."""
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        out = {}
        for table in tables:
            if table in ("audit_events", "audit_head", "audit_checkpoints"):
                continue
            columns = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            keep = [c for c in columns if not (table == "account_sessions" and c == "last_seen_at")]
            out[table] = con.execute(f"SELECT {', '.join(keep)} FROM {table} ORDER BY 1").fetchall()
        return out
    finally:
        con.close()


def sql(db: Path, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db, isolation_level=None)
    try:
        return con.execute(statement, params).fetchall()
    finally:
        con.close()


def audit_events(db: Path, action: str | None = None) -> list[dict[str, Any]]:
    rows = sql(db, "SELECT seq, actor, action, target, details FROM audit_events ORDER BY seq")
    return [{"seq": s, "actor": a, "action": x, "target": t, "details": json.loads(d or "{}")}
            for s, a, x, t, d in rows if action is None or x == action or (action.endswith(".") and x.startswith(action))]


def keep_artifact(path: Path, name: str) -> None:
    """Copy a test artefact (a screenshot, a PDF) to tests/artifacts/ (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, ARTIFACTS / name)

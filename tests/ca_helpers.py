"""Helpers for the CA-core tests (test_ca_*, test_ra_*, test_status_*, test_audit_*, test_cli_ca).

* `World`          — a yinxin home opened through the library with a FixedClock, and its actors
                     (`op`: the CA operator "operator"; `officer(name)`: an RA officer who is also a
                     CA operator; `person(name)`: an account with no role, applying for itself)
* `op_for`, `officer_for`, `person_for` — the same actors for a bare Home
* `openssl_csr`    — a key and a PKCS#10 request made by the OpenSSL command line
* `apply_and_issue`— the RA + CA path for one certificate (apply, approve, issue)
* `DyingKey`       — a CA key whose signing dies (`PowerFailure`): a reservation left behind
* `db_snapshot`    — every row of every table, read with the sqlite3 module (not our store)
* `yinxin`         — the real `yinxin` console script in a subprocess, for module-scoped homes
* `openssl`        — the OpenSSL command line

OpenSSL is the independent judge here; these helpers only set up what it judges.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence

from pki.accounts.actor import Actor
from pki.accounts.testing import actor_for_tests
from pki.algorithms import PrivateKey
from pki.ca import CaInfo, CertificateAuthority, Issued
from pki.clock import FixedClock, SystemClock
from pki.home import Home
from pki.x509 import certificate_to_pem

from pg_fixture import PgDatabase, prepare_home_database, run_sql, snapshot

PASSWORD = b"ca-password-1"
KEY_PASSWORD = b"key-password-1"
DISTID = "1234567812345678"
VFY_DISTID = ("-vfyopt", f"distid:{DISTID}")
BASE_URL = "http://pki.yinxin.test"
VECTORS = Path(__file__).parent / "vectors" / "ca"

#: the environment variables of a developer's shell that must not reach the CLI under test
SCRUBBED = ("YINXIN_PASSWORD", "YINXIN_P12_PASSWORD", "YINXIN_SM2_BACKEND", "YINXIN_DATABASE",
             "YINXIN_CA_PASSWORD", "YINXIN_PARENT_CA_PASSWORD", "YINXIN_KEY_PASSWORD",
             "YINXIN_POLICY_DIR", "YINXIN_OPERATOR", "YINXIN_DEBUG")


def wall_clock() -> FixedClock:
    """A FixedClock standing at the real time: OpenSSL checks validity against the system clock,
    so material it judges must be current; the tests still move time only explicitly."""
    return FixedClock(SystemClock().now())


def fixed_clock() -> FixedClock:
    """A FixedClock at an arbitrary, reproducible instant, for tests no OpenSSL call judges."""
    return FixedClock(datetime(2030, 3, 1, 8, 0, 0, tzinfo=timezone.utc))


# --------------------------------------------------------------------------- OpenSSL

def openssl(*args: str | os.PathLike[str], input: bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
    binary = shutil.which("openssl")
    assert binary, "openssl is not installed"
    proc = subprocess.run([binary, *map(str, args)], input=input, capture_output=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}")
    return proc


def openssl_out(*args: str | os.PathLike[str], input: bytes | None = None) -> str:
    """stdout + stderr of a successful openssl call, as text."""
    proc = openssl(*args, input=input)
    return proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")


_GENPKEY = {
    "rsa2048": ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"),
    "rsa3072": ("-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"),
    "ecdsa-p256": ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"),
    "ecdsa-p384": ("-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"),
    "sm2": ("-algorithm", "SM2"),
}


def openssl_key(directory: Path, algorithm: str, stem: str) -> Path:
    key = directory / f"{stem}.key"
    openssl("genpkey", *_GENPKEY[algorithm], "-out", key)
    return key


def openssl_csr(directory: Path, algorithm: str, subject: str, *, stem: str | None = None,
                san: str | None = None, key: Path | None = None, sm2_distid: str | None = DISTID,
                der: bool = False) -> tuple[Path, Path]:
    """(key file, CSR file) made by `openssl genpkey` + `openssl req`.

    SM2 requests are signed with SM3 and `-sigopt distid:…` (OpenSSL's default would be the
    empty ID, which a CA using the GM/T default ID must refuse); `sm2_distid=None` leaves it out.
    """
    stem = stem or f"{algorithm}-{abs(hash((subject, san))) % 10**8}"
    key = key or openssl_key(directory, algorithm, stem)
    csr = directory / f"{stem}.csr"
    args: list[str | os.PathLike[str]] = ["req", "-new", "-key", key, "-utf8", "-subj", subject, "-out", csr]
    if der:
        args += ["-outform", "DER"]
    if san:
        args += ["-addext", f"subjectAltName={san}"]
    if algorithm == "sm2":
        args += ["-sm3"]
        if sm2_distid is not None:
            args += ["-sigopt", f"distid:{sm2_distid}"]
    openssl(*args)
    return key, csr


def corrupt_csr_signature(csr_pem: bytes) -> bytes:
    """The same PEM request with one bit of its signature flipped."""
    from asn1crypto import csr as asn1_csr, pem
    _, _, der = pem.unarmor(csr_pem)
    request = asn1_csr.CertificationRequest.load(der)
    signature = bytearray(request["signature"].native)
    signature[len(signature) // 2] ^= 0x01
    broken = asn1_csr.CertificationRequest({
        "certification_request_info": request["certification_request_info"],
        "signature_algorithm": request["signature_algorithm"], "signature": bytes(signature)})
    return pem.armor("CERTIFICATE REQUEST", broken.dump())


def cert_text(path: Path) -> str:
    return openssl_out("x509", "-in", path, "-noout", "-text")


def write_pem(path: Path, cert: Any) -> Path:
    path.write_bytes(certificate_to_pem(cert))
    return path


# --------------------------------------------------------------------------- library world

@dataclass
class World:
    """A home opened through the library, its CAs, and a scratch directory for files."""

    home_dir: Path
    files: Path
    clock: FixedClock
    home: Home = field(init=False)
    authority: CertificateAuthority = field(init=False)

    def __post_init__(self) -> None:
        self.files.mkdir(parents=True, exist_ok=True)
        # SQLite, or a fresh PostgreSQL schema with YINXIN_TEST_DATABASE=postgresql (tests/pg_fixture.py)
        self.database = prepare_home_database(self.home_dir)
        self.home = Home.open(self.home_dir, clock=self.clock)
        self.authority = CertificateAuthority(self.home)
        # the cast of the CA-core tests, made up front: tests compare the database before and after
        op_for(self.home)
        for name in ("alice", "bob", "carol", "dave"):
            officer_for(self.home, name)

    @property
    def ra(self):  # type: ignore[no-untyped-def]
        return self.authority.ra

    @property
    def op(self) -> Actor:
        return op_for(self.home)

    def officer(self, name: str) -> Actor:
        return officer_for(self.home, name)

    def person(self, name: str) -> Actor:
        return person_for(self.home, name)

    def db_path(self) -> Path | PgDatabase:
        """The SQLite file, or the PostgreSQL schema: what `db_snapshot` and `sql` take."""
        return self.database

    def init_ca(self, name: str, algorithm: str, *, subject: str | None = None, parent: str | None = None,
                base_url: str | None = BASE_URL, days: int = 3650, **kwargs: Any) -> CaInfo:
        kwargs.setdefault("actor", self.op)
        return self.authority.init_ca(
            name=name, subject=subject or f"/C=CN/O=印信测试/CN={name} CA", algorithm=algorithm,
            password=PASSWORD, days=days, parent=parent, parent_password=PASSWORD if parent else None,
            base_url=base_url, **kwargs)

    def ca_pem(self, name: str) -> Path:
        return self.home_dir / "cas" / name / "ca.pem"

    def key(self, name: str):  # type: ignore[no-untyped-def]
        return self.authority.load_key(self.authority.get(name), PASSWORD)

    def write_cert(self, issued: Issued, stem: str) -> Path:
        path = self.files / f"{stem}.pem"
        path.write_bytes(issued.pem())
        return path


class PowerFailure(BaseException):
    """The process dies while the CA key signs (raised by `DyingKey`)."""


class DyingKey(PrivateKey):
    """A CA key whose signing dies: an issuance stops after step 2, leaving its reservation behind."""

    def __init__(self, real: PrivateKey) -> None:
        self._real = real
        self.algorithm = real.algorithm

    def sign(self, data: bytes, *, distid: bytes | None = None) -> bytes:
        raise PowerFailure()

    def public_key(self):  # type: ignore[no-untyped-def]
        return self._real.public_key()

    def to_pkcs8_der(self) -> bytes:
        return self._real.to_pkcs8_der()


def apply_and_issue(world: World, *, ca: str, profile: str, subject: str, csr: bytes | None = None,
                    applicant: str = "alice", approver: str = "bob", id_number: str | None = None,
                    sans: Sequence[tuple[str, str]] = (), generate_key_out: Path | None = None,
                    key_algorithm: str | None = None, evidence: Sequence[Path] = ()) -> Issued:
    app = world.ra.apply(ca=ca, profile=profile, subject=subject, actor=world.person(applicant), id_number=id_number,
                         csr=csr, generate_key_out=generate_key_out,
                         key_password=KEY_PASSWORD if generate_key_out else None,
                         key_algorithm=key_algorithm, subject_alt_names=sans, evidence_files=evidence)
    world.ra.approve(app.id, actor=world.officer(approver))
    return world.authority.issue(app.id, password=PASSWORD, actor=world.op)


# --------------------------------------------------------------------------- actors (pki.accounts.testing)

def op_for(home: Home) -> Actor:
    """The CA operator of the CA-core tests ("operator": CA operator and RA officer)."""
    return actor_for_tests(home, "operator", roles=("ca_operator", "ra_officer"))


def officer_for(home: Home, name: str) -> Actor:
    """An RA officer (and CA operator) called `name`."""
    return actor_for_tests(home, name, roles=("ra_officer", "ca_operator"))


def person_for(home: Home, name: str) -> Actor:
    """An account with no role: a person applying for their own certificate."""
    return actor_for_tests(home, name)


def write_session(home: Home, path: Path, name: str, *roles: str, pin: bytes | None = None,
                  organisation: str | None = None) -> Path:
    """A real session of `name` (made by pki.accounts.testing, without argon2's cost) written as the
    session file `yinxin login` writes (mode 0600); the CLI under test resumes it."""
    from pki.accounts.testing import session_for_tests
    session = session_for_tests(home, name, roles=roles, pin=pin, organisation=organisation)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(session.to_file())
    os.chmod(path, 0o600)
    return path


def session_env(home_dir: Path, name: str = "operator", *roles: str) -> dict[str, str]:
    """{"YINXIN_SESSION": a session file of `name`} for the CLI on `home_dir` (default: the CA
    operator and RA officer "operator"); the file lies beside the home, not in it."""
    roles = roles or ("ca_operator", "ra_officer")
    path = Path(home_dir).parent / "sessions" / f"{Path(home_dir).name}-{name}.session"
    if not path.exists():
        home = Home.open(home_dir)
        write_session(home, path, name, *roles)
        home.store.dispose()        # no idle connection of this process beside the CLI's
    return {"YINXIN_SESSION": str(path)}


# --------------------------------------------------------------------------- the database, read independently

def db_snapshot(db: Path | PgDatabase, *, idle_timers: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read past pki.store (sqlite3 or psycopg) — except, unless
    `idle_timers`, the sessions' last-use time, which every successful command restarts (a refused one
    leaves it, and everything else, as it was)."""
    rows = snapshot(db)
    if not idle_timers and "account_sessions" in rows:
        from pki.accounts.store import account_sessions
        at = list(account_sessions.c.keys()).index("last_seen_at")
        rows["account_sessions"] = [r[:at] + r[at + 1:] for r in rows["account_sessions"]]
    return rows


def row_counts(db: Path) -> dict[str, int]:
    return {table: len(rows) for table, rows in db_snapshot(db).items()}


def sql(db: Path | PgDatabase, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement directly on the SQLite file (for tampering and inspection)."""
    if isinstance(db, PgDatabase):
        return run_sql(db, statement, params)
    con = sqlite3.connect(db, isolation_level=None)
    try:
        return con.execute(statement, params).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------- the CLI

def console_script() -> str:
    beside_python = Path(sys.executable).parent / "yinxin"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("yinxin")
    assert found, "the `yinxin` console script is not installed (run scripts/bootstrap.sh)"
    return found


def cli_environment(home: Path, env: dict[str, str | None] | None = None) -> dict[str, str]:
    """This process's environment without the developer's YINXIN_* settings, YINXIN_HOME=home,
    then `env` on top (a value of None removes the variable)."""
    full_env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    full_env["YINXIN_HOME"] = str(home)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return full_env


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        import json
        return json.loads(self.out)


def yinxin(home: Path, *args: str | os.PathLike[str], env: dict[str, str | None] | None = None,
           input: bytes = b"") -> CliResult:
    """Run the real `yinxin` with YINXIN_HOME=home (stdin is not a terminal: it never prompts)."""
    proc = subprocess.run([console_script(), *map(str, args)], input=input, capture_output=True,
                          env=cli_environment(home, env), timeout=300)
    return CliResult(proc.returncode, proc.stdout.decode("utf-8", "replace"),
                     proc.stderr.decode("utf-8", "replace"))


def assert_one_line_error(result: CliResult, *needles: str) -> str:
    """A user error: non-zero exit, exactly one `yinxin: error: …` line on stderr, no traceback."""
    assert result.code != 0, result
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("yinxin: error: "), result.err
    for needle in needles:
        assert needle.lower() in lines[0].lower(), (needle, lines[0])
    return lines[0]


def plus(clock: FixedClock, **delta: float) -> datetime:
    return clock.now() + timedelta(**delta)

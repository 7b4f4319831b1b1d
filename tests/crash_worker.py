"""A worker process for the concurrency and crash tests: real processes on one database.

    python tests/crash_worker.py HOME SEED OPS LOG [--kinds issue,revoke,...] [--keys DIR] [--bulk-out DIR]

It opens HOME through the library (the database from HOME/config.yaml or HOME/yinxin.db) and does
OPS random operations (0: until killed), appending one JSON line per finished operation to LOG
(written and flushed after the operation committed, so a line in the log is something the database
must show).  Operations:

* issue    — apply (a key generated here, its encrypted file written under --keys, or a CSR),
             approve, issue; personal certificates draw identity numbers from a small shared pool,
             so workers compete for the one-person-one-certificate slot
* race     — issue one of the applications the test approved beforehand (all workers try them)
* revoke / hold / release — a random certificate in a state that allows it
* rekey    — renew a random issued certificate with a new CSR
* crl      — a full or delta CRL
* bulk     — `pki.bulk.issue_bulk` of a few rows with generated keys into --bulk-out, with or
               without worker processes

With YINXIN_CRASH_AFTER=N in the environment the worker SIGKILLs itself right after its N-th
database statement or commit: a kill at an exact, random point inside or between transactions.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pki.algorithms import generate_key  # noqa: E402
from pki.bulk import BulkRow, issue_bulk  # noqa: E402
from pki.ca import CertificateAuthority  # noqa: E402
from pki.errors import YinxinError  # noqa: E402
from pki.home import Home  # noqa: E402
from pki.status import generate_crl  # noqa: E402
from pki.store import applications, certificates  # noqa: E402
from pki.x509 import build_csr, csr_to_pem, parse_name  # noqa: E402
from ca_helpers import officer_for, person_for

PASSWORD = b"ca-password-1"
KEY_PASSWORD = b"key-password-1"
ID_POOL = [f"ID{n:03d}" for n in range(6)]
CA = "ec"


def _arm_crash(home: Home) -> None:
    """YINXIN_CRASH_AFTER=N: SIGKILL after the N-th statement or commit.  YINXIN_CRASH_WINDOW=J:
    SIGKILL J statements or commits after the first commit that reserved a serial (J=0: right
    after the reservation, before signing) — inside the window between reservation and record."""
    after = int(os.environ.get("YINXIN_CRASH_AFTER", "0") or 0)
    window = os.environ.get("YINXIN_CRASH_WINDOW")
    if after <= 0 and window is None:
        return
    seen = [0]
    reserving = [False]
    armed_at: list[int] = []

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def statement(_conn: object, _cursor: object, text: str, parameters: object, *_rest: object) -> None:
        seen[0] += 1
        if window is not None and text.startswith("INSERT INTO audit_events") \
                and "certificate.signing" in str(parameters):
            reserving[0] = True
        check()

    def commit(_conn: object) -> None:
        seen[0] += 1
        if reserving[0] and not armed_at:
            armed_at.append(seen[0])
        if window is not None and armed_at and int(window) == 0:
            die()
        check()

    def check() -> None:
        if after > 0 and seen[0] >= after:
            die()
        if window is not None and armed_at and seen[0] - armed_at[0] >= int(window):
            die()

    sa.event.listen(home.store.engine, "after_cursor_execute", statement)
    sa.event.listen(home.store.engine, "commit", commit)


class Worker:
    def __init__(self, home_dir: Path, seed: int, log: Path, keys: Path | None, bulk_out: Path | None) -> None:
        self.home = Home.open(home_dir)
        self.authority = CertificateAuthority(self.home)
        self.rand = random.Random(seed)
        self.seed = seed
        self.log = log.open("a", encoding="utf-8")
        self.keys = keys
        self.bulk_out = bulk_out
        self.counter = 0
        self.ca = self.authority.get(CA)
        self.ca_key = self.authority.load_key(self.ca, PASSWORD)

    def note(self, **entry: object) -> None:
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()

    def token(self) -> str:
        self.counter += 1
        return f"w{self.seed}-{self.counter}-{os.getpid()}"

    def pick(self, *statuses: str) -> str | None:
        with self.home.store.read() as conn:
            rows = conn.execute(sa.select(certificates.c.serial).where(
                certificates.c.status.in_(statuses), certificates.c.profile != "subca")).all()
        return self.rand.choice(rows)[0] if rows else None

    # ------------------------------------------------------------ operations

    def issue(self) -> None:
        token = self.token()
        personal = self.rand.random() < 0.5
        profile = "person" if personal else "organization"
        id_number = self.rand.choice(ID_POOL) if personal else None
        subject = f"/C=CN/O=Worker/CN={token}"
        if self.keys is not None and self.rand.random() < 0.7:
            key_out = self.keys / f"{token}.key.pem"
            app = self.authority.ra.apply(ca=CA, profile=profile, subject=subject,
                                          actor=person_for(self.authority.ra.home, f"app-{token}"),
                                          id_number=id_number, generate_key_out=key_out, key_password=KEY_PASSWORD,
                                          key_algorithm="ecdsa-p256")
        else:
            key = generate_key("ecdsa-p256")
            csr = csr_to_pem(build_csr(parse_name(subject), key))
            app = self.authority.ra.apply(ca=CA, profile=profile, subject=subject,
                                          actor=person_for(self.authority.ra.home, f"app-{token}"),
                                          id_number=id_number, csr=csr)
        self.authority.ra.approve(app.id, actor=officer_for(self.authority.ra.home, f"approver-{self.seed}"))
        issued = self.authority.issue(app.id, password=PASSWORD, actor=officer_for(self.authority.home,
                                                                                   f"operator-{self.seed}"))
        self.note(op="issue", serial=issued.record.serial, application=app.id, id_number=id_number,
                  subject=subject)

    def race(self) -> None:
        with self.home.store.read() as conn:
            ids = [r[0] for r in conn.execute(sa.select(applications.c.id).where(
                applications.c.state == "approved", applications.c.decision_comment == "race"))]
        if not ids:
            return
        app_id = self.rand.choice(ids)
        issued = self.authority.issue(app_id, password=PASSWORD, actor=officer_for(self.authority.home,
                                                                                   f"operator-{self.seed}"))
        self.note(op="race", serial=issued.record.serial, application=app_id)

    def revoke(self) -> None:
        serial = self.pick("issued", "held")
        if serial:
            record = self.authority.revoke(serial, reason="key_compromise", actor=officer_for(self.authority.home,
                                                                                              f"operator-{self.seed}"))
            self.note(op="revoke", serial=record.serial)

    def hold(self) -> None:
        serial = self.pick("issued")
        if serial:
            record = self.authority.hold(serial, actor=officer_for(self.authority.home, f"operator-{self.seed}"))
            self.note(op="hold", serial=record.serial)

    def release(self) -> None:
        serial = self.pick("held")
        if serial:
            record = self.authority.release(serial, actor=officer_for(self.authority.home, f"operator-{self.seed}"))
            self.note(op="release", serial=record.serial)

    def rekey(self) -> None:
        serial = self.pick("issued")
        if serial:
            record = self.authority.show(serial)
            csr = csr_to_pem(build_csr(parse_name(_openssl_form(record.subject)), generate_key("ecdsa-p256")))
            issued = self.authority.renew(serial, password=PASSWORD, csr=csr,
                                          actor=officer_for(self.authority.home, f"operator-{self.seed}"))
            self.note(op="rekey", serial=issued.record.serial, predecessor=serial)

    def crl(self) -> None:
        delta = self.rand.random() < 0.4
        result = generate_crl(self.authority, self.ca, self.ca_key, delta=delta,
                              actor=officer_for(self.authority.home, f"operator-{self.seed}"))
        self.note(op="crl", number=result.number, delta=delta)

    def bulk(self) -> None:
        assert self.bulk_out is not None
        rows = [BulkRow(line=i + 2, subject=f"/C=CN/O=Bulk/CN={self.token()}") for i in range(3)]
        report = issue_bulk(self.authority, rows, ca=CA, profile="organization", out_dir=self.bulk_out,
                            actor=officer_for(self.authority.home,
                                              f"operator-{self.seed}"), approver=officer_for(self.authority.home,
                                                                                             f"approver-{self.seed}"),
                            ca_password=PASSWORD, key_password=KEY_PASSWORD, key_algorithm="ecdsa-p256",
                            batch_size=3, crypto_processes=self.rand.choice((0, 2)))   # killed with workers too
        for result in report.results:
            self.note(op="bulk", ok=result.ok, serial=result.serial, error=result.error)

    def run(self, ops: int, kinds: list[str]) -> None:
        weights = {"issue": 4, "race": 2, "revoke": 3, "hold": 1, "release": 1, "rekey": 1, "crl": 2, "bulk": 2}
        chosen = [k for k in kinds]
        done = 0
        while ops <= 0 or done < ops:
            kind = self.rand.choices(chosen, [weights[k] for k in chosen])[0]
            try:
                getattr(self, kind)()
            except YinxinError as exc:      # lost a race: someone else changed it first
                self.note(op=kind, refused=type(exc).__name__, message=exc.message)
            done += 1
        self.log.close()


def _openssl_form(rfc4514: str) -> str:
    """'CN=x,O=y,C=CN' → '/C=CN/O=y/CN=x' (our subjects have no commas or slashes in values)."""
    return "/" + "/".join(reversed(rfc4514.split(",")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("home", type=Path)
    parser.add_argument("seed", type=int)
    parser.add_argument("ops", type=int)
    parser.add_argument("log", type=Path)
    parser.add_argument("--kinds", default="issue,race,revoke,hold,release,rekey,crl")
    parser.add_argument("--keys", type=Path)
    parser.add_argument("--bulk-out", type=Path)
    args = parser.parse_args()
    worker = Worker(args.home, args.seed, args.log, args.keys, args.bulk_out)
    _arm_crash(worker.home)
    print("ready", flush=True)      # the crash test times its kill from here
    worker.run(args.ops, args.kinds.split(","))


if __name__ == "__main__":
    main()

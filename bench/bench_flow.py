"""The document flow with every decision signed, beside sealing alone, in one run.

    python bench/bench_flow.py [--docs N] [--engines sqlite,postgresql] [--repeat R]

For each engine (SQLite in a fresh home; PostgreSQL on the throw-away cluster of
`scripts/pg.sh` when YINXIN_TEST_PG_URL is set, else skipped) one home is set up as the demo does
it: an SM2 root and issuing CA, the example organisation, its people with accounts, person
certificates (SM2) and real logins (argon2id, the PIN unlocking each signing key for the
session), the organisation's official SM2 seal with its custodian's password.  Then, taking turns:

* **flow**: N documents, each through the whole upward route — 拟稿, 核稿, 把关, two leaders
  countersigning, 签发, 登记, 盖章 (the seal stamped with the custodian's password and the stamped
  file verified), the drafter's check, and 发送 (the seal verified again on the outgoing bytes) —
  every one of the ten acts a decision signed with the actor's own certificate (SM2 with SM3) in
  the document's chain, the database transaction of each act included;
* **sealing only**: N signed-off PDFs sealed one by one by `SealService.stamp` — what the flow's
  盖章 step calls: the seal's password checked (PBKDF2) and its key opened, the PDF stamped (an
  incremental update, fsynced temporary files), the stamp audited — and nothing else.

Every document is its own PDF (the body carries its number), on both sides: what the code
remembers for exact bytes (`pki.memo`: the text of a version, the signatures listed in a file)
serves the steps of one document, never the next document of the benchmark.

The ratio flow / sealing-only is the goal (≥ 0.5: the flow may cost at most as much again as its
one heavy step).  Printed too: what one login costs (argon2id verification, and with the PIN
opening the person's key) and the stamp_batch rate of the same PDF for reference (the fastest
sealing yinxin has, one password check for the whole batch).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import docflow.store  # noqa: E402,F401  (the document-flow tables)
import seal.store  # noqa: E402,F401
from docflow import DocumentFlow  # noqa: E402
from docflow.sample import make_document_pdf  # noqa: E402
from pki.accounts import Accounts  # noqa: E402
from pki.ca import CertificateAuthority  # noqa: E402
from pki.home import Home  # noqa: E402
from pki.profiles import default_policy_dir  # noqa: E402
from seal.pdf_placement import AnchorText  # noqa: E402
from seal.records import SealRegistry  # noqa: E402

ORG = "北京市测试局"
CA_PW = b"Bench-CA-Password-2026!"
SEAL_INITIAL, SEAL_PW = b"Bench-Initial-Seal-1!", b"Bench-Seal-Password-2#"
PASSWORD = b"a bench of quiet maples"
PIN = b"24681357"
ROUTE = [("chen", "approve", None, "同意"), ("zhang", "approve", "li", "已把关，请李副局长审阅。"),
         ("li", "forward", "zhou", "同意，请周副局长会签。"), ("zhou", "approve", None, "会签同意。"),
         ("wu", "sign-off", None, "同意签发。"), ("ma", "register", None, "已登记编号。")]


def setup(path: Path, database: str | None) -> tuple[Home, dict[str, Any], dict[str, float]]:
    """The home, everybody's actor (logged in with the PIN), and what the logins cost (ms)."""
    home = Home.open(path, database=database)
    accounts = Accounts(home)
    accounts.create("admin", name="Bench admin", roles=["admin"], password=PASSWORD, actor=None)
    admin = accounts.authenticate("admin", PASSWORD).actor
    for account_id, roles in (("ca-op", ["ca_operator", "seal_admin"]), ("ra-gu", ["ra_officer"])):
        accounts.create(account_id, name=account_id, roles=roles, actor=admin)
        accounts.set_password(account_id, b"an initial bench phrase", actor=admin)
        accounts.authenticate(account_id, b"an initial bench phrase", new_password=PASSWORD)
    ca_op = accounts.authenticate("ca-op", PASSWORD).actor
    ra = accounts.authenticate("ra-gu", PASSWORD).actor
    authority = CertificateAuthority(home)
    authority.init_ca(name="root", subject="/C=CN/O=bench/CN=Bench SM2 Root", algorithm="sm2", password=CA_PW,
                      actor=ca_op)
    authority.init_ca(name="issuing", subject="/C=CN/O=bench/CN=Bench SM2 CA", algorithm="sm2", password=CA_PW,
                      parent="root", parent_password=CA_PW, actor=ca_op)
    flow = DocumentFlow(home)
    org = flow.load_organisation(default_policy_dir() / "examples" / "beijing-test-bureau.yaml", actor=admin)
    actors: dict[str, Any] = {}
    timings: dict[str, list[float]] = {"login": [], "login_pin": []}
    for n, person in enumerate(p.id for p in org.organisation.people):
        accounts.set_password(person, b"an initial bench phrase", actor=admin)
        accounts.authenticate(person, b"an initial bench phrase", new_password=PASSWORD)
        app = accounts.request_key(person, ca="issuing", pin=PIN, actor=accounts.authenticate(person, PASSWORD).actor,
                                   id_number=f"BENCH{n:04d}")
        authority.ra.approve(app.id, actor=ra)
        authority.issue(app.id, password=CA_PW, actor=ca_op)
        start = time.perf_counter()
        accounts.authenticate(person, PASSWORD)
        timings["login"].append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        actors[person] = accounts.authenticate(person, PASSWORD, pin=PIN).actor
        timings["login_pin"].append((time.perf_counter() - start) * 1000)
    registry = SealRegistry(home)
    registry.create(name="official-sm2", organisation=ORG, seal_type="official", custodian="wang", ca="issuing",
                    password=SEAL_INITIAL, ca_password=CA_PW, actor=ca_op, approver=ra)
    registry.change_password("official-sm2", SEAL_INITIAL, SEAL_PW, actor=actors["wang"])
    return home, actors, {k: statistics.median(v) for k, v in timings.items()}


def run_flow(home: Home, actors: dict[str, Any], bodies: list[bytes]) -> float:
    flow = DocumentFlow(home)
    start = time.perf_counter()
    for body in bodies:
        doc = flow.new_document(kind="upward", title="关于开展电子印章应用试点工作的请示", pdf=body,
                                actor=actors["sun"])
        for user, action, to, opinion in ROUTE:
            doc = flow.act(doc.id, actor=actors[user], action=action, opinion=opinion, to=to)
        doc = flow.seal(doc.id, actor=actors["wang"], seal="official-sm2", password=SEAL_PW)
        doc = flow.act(doc.id, actor=actors["sun"], action="approve", opinion="已核对盖章件。")
        flow.send(doc.id, actor=actors["liu"], to=["北京市示范区管理委员会"])
    return time.perf_counter() - start


def run_sealing(home: Home, actors: dict[str, Any], bodies: list[bytes]) -> float:
    from seal.service import SealService
    service = SealService(home)
    start = time.perf_counter()
    for body in bodies:
        service.stamp("official-sm2", SEAL_PW, body, placement=AnchorText(ORG), actor=actors["wang"])
    return time.perf_counter() - start


def run_batch(home: Home, actors: dict[str, Any], signed_off: bytes, count: int, work: Path) -> float:
    from seal.service import SealService
    src, out = work / "batch-in", work / "batch-out"
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    src.mkdir()
    out.mkdir()
    files = []
    for i in range(count):
        files.append(src / f"{i:04d}.pdf")
        files[-1].write_bytes(signed_off)
    start = time.perf_counter()
    SealService(home).stamp_many("official-sm2", SEAL_PW, files, out, placement=AnchorText(ORG), actor=actors["wang"],
                                 processes=1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=40, help="documents per measurement (default 40)")
    parser.add_argument("--repeat", type=int, default=2, help="measurements per configuration, taking turns")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    pg_url = os.environ.get("YINXIN_TEST_PG_URL")
    def body(n: int) -> bytes:
        # every document its own bytes, on both sides: nothing remembered for exact bytes (pki.memo)
        # may carry over from one document to the next
        return make_document_pdf("关于开展电子印章应用试点工作的请示", ORG, "2026年5月8日",
                                 ["北京市示范区管理委员会：", "为推进电子政务建设，经研究，拟在我局开展电子印章应用试点工作。",
                                  f"妥否，请批示。（样本{n}）"], main_recipient="北京市示范区管理委员会")
    turns = [[body(t * args.docs + i) for i in range(args.docs)] for t in range(2 * args.repeat + 1)]
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    work = Path(tempfile.mkdtemp(prefix="yinxin-bench-flow-"))
    try:
        for engine in args.engines.split(","):
            database = None
            if engine == "postgresql":
                if not pg_url:
                    print("postgresql: skipped (start one: eval \"$(bash scripts/pg.sh env)\")")
                    continue
                database = _fresh_pg_database(pg_url)
            home, actors, logins = setup(work / engine, database)
            # the receiving organisation (the flow sends to it)
            import yaml
            from docflow.demo import RECIPIENT
            recipient = work / f"{engine}-recipient.yaml"
            recipient.write_text(yaml.safe_dump(dict(RECIPIENT, seal=None), allow_unicode=True), encoding="utf-8")
            DocumentFlow(home).load_organisation(recipient, actor=Accounts.of(home).authenticate(
                "admin", PASSWORD).actor)
            run_flow(home, actors, [body(-1), body(-2)])             # warm up (imports, fonts, caches)
            flows, seals = [], []
            for turn in range(args.repeat):
                flows.append(args.docs / run_flow(home, actors, turns[2 * turn]))
                seals.append(args.docs / run_sealing(home, actors, turns[2 * turn + 1]))
            batch = args.docs / run_batch(home, actors, turns[-1][0], args.docs, work)
            flow_rate, seal_rate = statistics.median(flows), statistics.median(seals)
            print(f"\n== {engine}: {args.docs} documents × {args.repeat} turns")
            print(f"  flow (upward route, 10 signed acts, sealing included): "
                  f"{', '.join(f'{r:.2f}' for r in flows)} docs/s  median {flow_rate:.2f}")
            print(f"  sealing only (SealService.stamp, one by one):        "
                  f"{', '.join(f'{r:.2f}' for r in seals)} seals/s median {seal_rate:.2f}")
            print(f"  ratio flow / sealing-only: {flow_rate / seal_rate:.2f}  (goal ≥ 0.5)")
            print(f"  for reference, stamp_batch of the same PDF (1 process): {batch:.1f} seals/s")
            print(f"  login (argon2id verify, session): {logins['login']:.0f} ms; with the PIN opening the key: "
                  f"{logins['login_pin']:.0f} ms")
            home.store.dispose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average after: {open('/proc/loadavg').read().split()[:3]}")


def _fresh_pg_database(url: str) -> str:
    import uuid

    import sqlalchemy as sa
    name = f"bench_flow_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    base = url.rsplit("/", 1)[0]
    return f"{base}/{name}"


if __name__ == "__main__":
    main()

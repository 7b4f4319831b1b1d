"""Helpers for the document-flow tests (test_docflow_*, test_cli_doc).

* `Bureau`         — a home with the example organisation loaded, a DocumentFlow on it, a FixedClock,
                     and its people as actors: `b.actor("chen")` signs with chen's own certificate
                     (an SM2 root and issuing CA, "root" and "issuing", issue the person certificates;
                     a home made once per test session is copied, with the keys kept unlocked), and
                     `b.admin()` loads organisations
* `document_pdf`   — a GB/T 9704-like PDF made by docflow.sample (cached per text)
* `tables`         — every row of the docflow tables (and the audit log), read with the sqlite3
                     module, not with our store: the before/after comparison of refused operations
* `with_seals`     — an SM2 root and issuing CA, and official seals for organisations, made through
                     the real pki/seal APIs (password changed from the initial one, as the policy wants)
* `tamper`         — rewrite stored bytes behind the flow's back (drops the append-only trigger first,
                     as an attacker with database access would) to show the checks that still catch it
"""
from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from pki.accounts.actor import Actor
from pki.accounts.testing import actor_for_tests, certified_actor
from pki.clock import FixedClock, SystemClock
from pki.home import Home

import docflow  # noqa: F401  (registers the docflow migration before homes are opened)
from docflow import DocumentFlow
from docflow.elements import Digests
from docflow.sample import make_document_pdf

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_ORG = ROOT / "policies" / "examples" / "beijing-test-bureau.yaml"
VECTORS = Path(__file__).parent / "vectors" / "docflow"
ORG = "北京市测试局"
OTHER = "天津市测试局"
CA_PASSWORD = b"Ca-Password-2026!"
SEAL_INITIAL = b"Initial-Seal-Pw-1"
SEAL_PASSWORD = b"Custodian-Pw-2026#"
DOC_TABLES = ("doc_organisations", "doc_people", "doc_documents", "doc_versions", "doc_attachments",
              "doc_pending", "doc_actions", "doc_counters", "doc_deliveries", "doc_verifications", "doc_archive",
              "decisions", "accounts", "account_keys")


def example_org() -> dict[str, Any]:
    return yaml.safe_load(EXAMPLE_ORG.read_text(encoding="utf-8"))


def other_org(name: str = OTHER, seal: str = "tianjin-sm2") -> dict[str, Any]:
    """A second organisation (the recipient), people ids prefixed with t_."""
    return {"name": name, "code": "津测", "seal": seal, "people": [
        {"id": "t_sun", "name": "孙天", "department": "综合处"},
        {"id": "t_head", "name": "何处长", "department": "综合处", "head": True},
        {"id": "t_office", "name": "欧主任", "department": "办公室", "head": True, "roles": ["office_head"]},
        {"id": "t_li", "name": "李局", "roles": ["leader"]},
        {"id": "t_zhou", "name": "周局", "roles": ["leader"]},
        {"id": "t_wu", "name": "吴局长", "roles": ["director"]},
        {"id": "t_ma", "name": "马印", "department": "办公室", "roles": ["registry"]},
        {"id": "t_wang", "name": "王印", "department": "办公室", "roles": ["seal_custodian"]},
        {"id": "t_liu", "name": "刘秘", "department": "办公室", "roles": ["secretary", "receiver"]},
    ]}


@functools.lru_cache(maxsize=16)
def document_pdf(title: str = "关于开展电子印章试点工作的请示", organisation: str = ORG,
                 date: str = "2026年5月8日", body: str = "为推进电子政务建设，经研究，拟在全局开展电子印章试点工作。") -> bytes:
    return make_document_pdf(title, organisation, date, [body, "妥否，请批示。"])


@dataclass
class Bureau:
    home: Home
    flow: DocumentFlow
    clock: FixedClock
    path: Path
    seals: dict[str, str] = field(default_factory=dict)   # organisation -> seal name
    keys: dict[str, Any] = field(default_factory=dict)    # person id -> their unlocked signing key

    def tick(self, minutes: int = 1) -> None:
        self.clock.advance(timedelta(minutes=minutes))

    def db(self) -> Path:
        return self.path / "yinxin.db"

    def actor(self, person: str) -> Actor:
        """The person as an actor, their signing key unlocked (certified on first use when the
        person is not one of the prepared homes')."""
        key = self.keys.get(person)
        if key is None:
            actor = certified_actor(self.home, person, ca="issuing", ca_password=CA_PASSWORD)
            self.keys[person] = actor._signing_key
            return actor
        return actor_for_tests(self.home, person, signing_key=key)

    def unsigned(self, person: str) -> Actor:
        """The person as an actor whose session did not unlock a signing key."""
        return actor_for_tests(self.home, person)

    def admin(self, name: str = "admin") -> Actor:
        return actor_for_tests(self.home, name, roles=("admin",))


def _init_cas(home: Home) -> None:
    from pki.ca import CertificateAuthority
    authority = CertificateAuthority(home)
    ca_admin = actor_for_tests(home, "ca-admin", roles=("ca_operator",))
    authority.init_ca(name="root", subject="/C=CN/O=yinxin tests/CN=Test SM2 Root", algorithm="sm2",
                      password=CA_PASSWORD, actor=ca_admin)
    authority.init_ca(name="issuing", subject="/C=CN/O=yinxin tests/CN=Test SM2 Seal CA", algorithm="sm2",
                      password=CA_PASSWORD, parent="root", parent_password=CA_PASSWORD, actor=ca_admin)


_TEMPLATE: dict[str, Any] = {}


def _template() -> tuple[Path, dict[str, Any]]:
    """Once per test session: a home with the CAs, the example organisation loaded, and a person
    certificate (through the RA) for every person of it and of `other_org()`; the keys stay unlocked."""
    if not _TEMPLATE:
        directory = Path(tempfile.mkdtemp(prefix="yinxin-bureau-"))
        atexit.register(shutil.rmtree, directory, True)
        path = directory / "home"
        home = Home.open(path, clock=FixedClock(SystemClock().now().replace(microsecond=0)))
        flow = DocumentFlow(home)
        _init_cas(home)
        flow.load_organisation_data(example_org(), actor=actor_for_tests(home, "admin", roles=("admin",)),
                                    source=str(EXAMPLE_ORG))
        keys = {}
        for p in other_org()["people"]:        # not loaded yet: their accounts as its loading will make them
            actor_for_tests(home, p["id"], name=p["name"], organisation=OTHER)
        for person in [p["id"] for p in example_org()["people"]] + [p["id"] for p in other_org()["people"]]:
            keys[person] = certified_actor(home, person, ca="issuing", ca_password=CA_PASSWORD)._signing_key
        home.store.dispose()
        _TEMPLATE.update(path=path, keys=keys)
    return _TEMPLATE["path"], _TEMPLATE["keys"]


def template_keys() -> dict[str, Any]:
    """The unlocked signing keys of the people of the example and the other organisation, as every
    copy of a `bureau(…)` home holds their certificates."""
    return dict(_template()[1])


def bureau(tmp_path: Path, *, org: dict[str, Any] | None = None, seal_service: Any = None,
           path: Path | None = None) -> Bureau:
    """A fresh home (at `path`, default tmp_path/home) with the example organisation loaded (no seals
    yet), an SM2 root and issuing CA, and the people's certificates (see `Bureau.actor`)."""
    clock = FixedClock(SystemClock().now().replace(microsecond=0))
    path = path or tmp_path / "home"
    keys: dict[str, Any] = {}
    if org is None:
        template, keys = _template()
        shutil.copytree(template, path, dirs_exist_ok=True)      # `path` may be an empty directory
    home = Home.open(path, clock=clock)
    flow = DocumentFlow(home, seal_service=seal_service)
    if org is not None:
        _init_cas(home)
        flow.load_organisation_data(org, actor=actor_for_tests(home, "admin", roles=("admin",)),
                                    source=str(EXAMPLE_ORG))
    return Bureau(home=home, flow=flow, clock=clock, path=path, keys=dict(keys))


def tables(b: Bureau, *, audit: bool = True) -> dict[str, list[tuple]]:
    """Every row of the docflow tables (and the audit log), straight from the SQLite file."""
    conn = sqlite3.connect(b.db())
    try:
        names = DOC_TABLES + (("audit_events", "audit_head") if audit else ())
        return {n: conn.execute(f"SELECT * FROM {n} ORDER BY 1").fetchall() for n in names}
    finally:
        conn.close()


def audit_actions(b: Bureau, target: str | None = None) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(b.db())
    try:
        rows = conn.execute("SELECT actor, action, target, details, result_digest FROM audit_events ORDER BY seq")
        return [r for r in rows if target is None or r[2] == target]
    finally:
        conn.close()


# --------------------------------------------------------------------------- walking the routes

UPWARD_TO_SEAL = [("chen", "approve", None), ("zhang", "approve", "li"), ("li", "forward", "zhou"),
                  ("zhou", "approve", None), ("wu", "sign-off", None), ("ma", "register", None)]
DOWNWARD_TO_SEAL = [("chen", "approve", None), ("zhang", "approve", "li"), ("li", "sign-off", None),
                    ("ma", "register", None)]


def walk(b: Bureau, doc_id: int, steps: list[tuple[str, str, str | None]], opinion: str = "同意") -> Any:
    doc = None
    for user, action, to in steps:
        b.tick()
        doc = b.flow.act(doc_id, actor=b.actor(user), action=action, opinion=opinion, to=to)
    return doc


def new_upward(b: Bureau, *, drafter: str = "sun", **kw: Any) -> Any:
    args = dict(kind="upward", title="关于开展电子印章试点工作的请示", pdf=document_pdf(), actor=b.actor(drafter))
    args.update(kw)
    return b.flow.new_document(**args)


# --------------------------------------------------------------------------- seals

def with_seals(b: Bureau, *organisations: tuple[str, str, str]) -> None:
    """An SM2 root and issuing CA in the home, and for each (organisation, seal name, custodian) an
    official seal whose custodian has changed the initial password to SEAL_PASSWORD."""
    from pki.ca import CertificateAuthority
    from seal.records import SealRegistry
    if not CertificateAuthority(b.home).cas():
        _init_cas(b.home)
    registry = SealRegistry(b.home)
    seal_admin = actor_for_tests(b.home, "seal-admin", roles=("seal_admin", "ca_operator"))
    approver = actor_for_tests(b.home, "seal-approver", roles=("ra_officer",))
    for organisation, name, custodian in organisations:
        actor_for_tests(b.home, custodian)
        registry.create(name=name, organisation=organisation, seal_type="official", custodian=custodian,
                        ca="issuing", password=SEAL_INITIAL, ca_password=CA_PASSWORD, actor=seal_admin,
                        approver=approver)
        registry.change_password(name, SEAL_INITIAL, SEAL_PASSWORD, actor=b.unsigned(custodian))
        b.seals[organisation] = name


# --------------------------------------------------------------------------- tampering

def tamper_version(b: Bureau, doc_id: int, number: int, data: bytes, *, fix_digests: bool) -> None:
    """Replace the stored bytes of a version; with `fix_digests` the recorded digests are updated too
    (an attacker who knows what we record), so only the cryptographic checks can catch it."""
    conn = sqlite3.connect(b.db())
    try:
        conn.execute("DROP TRIGGER IF EXISTS doc_versions_no_update")
        if fix_digests:
            d = Digests.of(data)
            conn.execute("UPDATE doc_versions SET pdf=?, sha256=?, sm3=?, size=? WHERE doc_id=? AND number=?",
                         (data, d.sha256, d.sm3, d.size, doc_id, number))
            conn.execute("UPDATE doc_documents SET sealed_sha256=? WHERE id=? AND sealed_version=?",
                         (d.sha256, doc_id, number))
            conn.execute("UPDATE doc_deliveries SET sha256=? WHERE doc_id=? AND version=?", (d.sha256, doc_id, number))
        else:
            conn.execute("UPDATE doc_versions SET pdf=? WHERE doc_id=? AND number=?", (data, doc_id, number))
        conn.commit()
    finally:
        conn.close()


def copy_home(b: Bureau, dest: Path) -> Path:
    shutil.copytree(b.path, dest)
    return dest


def sealing_template(base: Path) -> Path:
    """A home with both organisations, an SM2 root + issuing CA and both official seals (made once
    per module, copied for each test by `bureau_copy`)."""
    b = bureau(base)
    b.flow.load_organisation_data(other_org(), actor=b.admin())
    with_seals(b, (ORG, "official-sm2", "wang"), (OTHER, "tianjin-sm2", "t_wang"))
    b.home.store.dispose()
    return b.path


def bureau_copy(template: Path, tmp_path: Path) -> Bureau:
    path = tmp_path / "home"
    shutil.copytree(template, path)
    clock = FixedClock(SystemClock().now().replace(microsecond=0))
    home = Home.open(path, clock=clock)
    return Bureau(home=home, flow=DocumentFlow(home), clock=clock, path=path,
                  seals={ORG: "official-sm2", OTHER: "tianjin-sm2"}, keys=template_keys())

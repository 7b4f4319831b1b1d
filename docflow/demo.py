"""The main job, end to end, in a fresh home: what `yinxin demo` runs.

Accountable people first: the first admin, the CA operator and two RA officers, each with an
account and a password of their own; an SM2 root and issuing CA; two organisations, whose people get
accounts, initial passwords they change at their first login, and personal SM2 signing keys whose
`person` certificates go through the RA (an officer approves, the CA operator issues); everybody is
logged in with their PIN, so that every decision below is signed with the actor's own certificate.
Then each organisation's official seal (its custodian changes the initial password); a drafted
request (上行文) walked along the upward route with countersigning; sealed over the organisation's
name and the date; sent, received (verified again), taken through the incoming route and archived
on both sides; fresh CRLs; every signed decision verified; and an evidence bundle a third party
checks with OpenSSL alone.  Every output lands in ``HOME/demo/``; every step goes through the same
public APIs the CLI uses.  Passwords and PINs are drawn at random and written (0600) to
``HOME/demo/secrets/``, the people's session files to ``HOME/demo/sessions/``, so that an operator
can continue by hand.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from pki.accounts.accounts import Accounts
from pki.accounts.actor import Actor
from pki.ca import CertificateAuthority
from pki.clock import SYSTEM_CLOCK, Clock
from pki.home import Home
from pki.keyfiles import write_file_atomic
from pki.profiles import default_policy_dir
from pki.status import generate_crl
from seal.records import SealRegistry
from seal.service import SealService

from .elements import CHINA_TIME
from .flow import DocumentFlow
from .sample import make_document_pdf

RECIPIENT = {"name": "北京市示范区管理委员会", "code": "京示", "seal": "shifan-official", "people": [
    {"id": "s_xu", "name": "徐处长", "department": "综合处", "head": True},
    {"id": "s_gao", "name": "高主任", "department": "办公室", "head": True, "roles": ["office_head"]},
    {"id": "s_he", "name": "何主任", "roles": ["leader", "director"]},
    {"id": "s_yang", "name": "杨文印", "department": "办公室", "roles": ["registry"]},
    {"id": "s_lin", "name": "林印章", "department": "办公室", "roles": ["seal_custodian"]},
    {"id": "s_qin", "name": "秦秘书", "department": "办公室", "roles": ["secretary", "receiver"]},
]}

UPWARD = [("chen", "approve", None, "文稿符合要求，同意报送。"),
          ("zhang", "approve", "li", "已把关，请李副局长审阅。"),
          ("li", "forward", "zhou", "同意，请周副局长会签。"),
          ("zhou", "approve", None, "会签同意。"),
          ("wu", "sign-off", None, "同意签发。"),
          ("ma", "register", None, "已登记编号。")]


#: the officers of the demo: account id, name, roles
OFFICERS = (("ca-op", "钱运维", ("ca_operator", "seal_admin")), ("ra-gu", "顾审核", ("ra_officer",)),
            ("ra-lu", "陆审核", ("ra_officer",)))


@dataclass(frozen=True)
class DemoResult:
    home: Path
    out_dir: Path
    sealed_pdf: Path
    reports: tuple[Path, ...]
    doc_number: str
    document_id: int
    incoming_id: int
    evidence: Path
    signed_decisions: int
    sessions: Path


def _password() -> bytes:
    # satisfies the seal password policy (upper, lower, digit, symbol, 20+ characters) and the
    # account password policy (12+ characters, not common, no id or name in it)
    return f"Yx-{secrets.token_urlsafe(15)}-7a".encode()


def _pin() -> bytes:
    return f"{secrets.randbelow(10 ** 8):08d}".encode()


class _People:
    """Everybody's account, secrets and session, kept as the CLI would (files under demo/)."""

    def __init__(self, home: Home, out: Path) -> None:
        self.home, self.out = home, out
        self.accounts = Accounts.of(home)
        self.actors: dict[str, Actor] = {}
        self.pins: dict[str, bytes] = {}
        self.passwords: dict[str, bytes] = {}

    def keep(self, account_id: str, *, password: bytes | None = None, pin: bytes | None = None) -> None:
        if password is not None:
            self.passwords[account_id] = password
            write_file_atomic(self.out / "secrets" / f"{account_id}.password", password + b"\n")
        if pin is not None:
            self.pins[account_id] = pin
            write_file_atomic(self.out / "secrets" / f"{account_id}.pin", pin + b"\n")

    def login(self, account_id: str, *, new_password: bytes | None = None) -> Actor:
        """A real login (argon2id), with the PIN when the person holds a certified key."""
        pin = self.pins.get(account_id) if self.accounts.active_key(account_id) else None
        session = self.accounts.authenticate(account_id, self.passwords[account_id], new_password=new_password,
                                             pin=pin)
        if new_password is not None:
            self.keep(account_id, password=new_password)
        write_file_atomic(self.out / "sessions" / f"{account_id}.session", session.to_file())
        self.actors[account_id] = session.actor
        return session.actor

    def enrol(self, account_id: str, *, admin: Actor) -> Actor:
        """An initial password from the admin, changed at the first login."""
        initial = _password()
        self.accounts.set_password(account_id, initial, actor=admin)
        self.keep(account_id, password=initial)
        return self.login(account_id, new_password=_password())

    def __getitem__(self, account_id: str) -> Actor:
        return self.actors[account_id]


def _certify(people: _People, authority: CertificateAuthority, account_id: str, *, ca: str, approver: str,
             issuer: Actor, ca_password: bytes, id_number: str) -> str:
    """The person's signing key (under their own session, protected by their PIN), approved by
    another RA officer, issued by the CA operator; then a fresh login with the PIN."""
    pin = _pin()
    people.keep(account_id, pin=pin)
    app = people.accounts.request_key(account_id, ca=ca, pin=pin, actor=people[account_id], id_number=id_number)
    authority.ra.approve(app.id, actor=people[approver], comment="identity checked in person")
    issued = authority.issue(app.id, password=ca_password, actor=issuer)
    people.login(account_id)
    return issued.record.serial.upper()


def run_demo(home_path: str | Path, *, say: Callable[[str], None] = lambda _: None,
             clock: Clock = SYSTEM_CLOCK) -> DemoResult:
    home = Home.open(home_path, clock=clock)
    out = home.path / "demo"
    secrets_dir = out / "secrets"
    ca_pw, seal_initial, seal_pw = _password(), _password(), _password()
    for name, value in (("ca-password", ca_pw), ("seal-password", seal_pw)):
        write_file_atomic(secrets_dir / name, value + b"\n")
    people = _People(home, out)

    say("1. accounts: the first admin, the CA operator and two RA officers (argon2id, sessions)")
    admin_pw = _password()
    people.accounts.create("admin", name="系统管理员", roles=["admin"], password=admin_pw, actor=None)
    people.keep("admin", password=admin_pw)
    admin = people.login("admin")
    for account_id, name, roles in OFFICERS:
        people.accounts.create(account_id, name=name, roles=roles, actor=admin)
        people.enrol(account_id, admin=admin)
    say(f"   {', '.join(f'{a} ({n})' for a, n, _ in OFFICERS)}: logged in, initial passwords changed")

    authority = CertificateAuthority(home)
    say("2. SM2 root CA and issuing CA")
    authority.init_ca(name="demo-root", subject="/C=CN/O=yinxin 演示/CN=演示根CA SM2", algorithm="sm2",
                      password=ca_pw, days=3650, actor=people["ca-op"])
    issuing = authority.init_ca(name="demo-issuing", subject="/C=CN/O=yinxin 演示/CN=演示签发CA SM2",
                                algorithm="sm2", password=ca_pw, days=1825, parent="demo-root",
                                parent_password=ca_pw, actor=people["ca-op"])
    say(f"   {issuing.name}: {issuing.subject} (SM2 ID {issuing.distid.decode()})")

    flow = DocumentFlow(home)
    say("3. organisations: their people become accounts, change their initial passwords at first login")
    sender = flow.load_organisation(default_policy_dir() / "examples" / "beijing-test-bureau.yaml", actor=admin)
    recipient_file = out / "recipient-organisation.yaml"
    write_file_atomic(recipient_file, yaml.safe_dump(RECIPIENT, allow_unicode=True).encode(), mode=0o644)
    recipient = flow.load_organisation(recipient_file, actor=admin)
    persons = [p.id for p in sender.organisation.people] + [p.id for p in recipient.organisation.people]
    for account_id in persons:
        people.enrol(account_id, admin=admin)
    say(f"   {sender.organisation.name} ({len(sender.organisation.people)} people) → "
        f"{recipient.organisation.name} ({len(recipient.organisation.people)} people)")

    say("4. personal signing keys: person certificates through the RA, keys under each person's PIN")
    ca_op = people["ca-op"]
    numbers = iter(f"DEMO{n:06d}" for n in range(1, 1000))
    # the RA's bootstrap: the first officer's approval is the one unsigned decision (no officer holds
    # a certificate yet); from then on every RA decision is signed too
    _certify(people, authority, "ra-gu", ca=issuing.name, approver="ra-lu", issuer=ca_op, ca_password=ca_pw,
             id_number=next(numbers))
    _certify(people, authority, "ra-lu", ca=issuing.name, approver="ra-gu", issuer=ca_op, ca_password=ca_pw,
             id_number=next(numbers))
    for account_id in persons:
        _certify(people, authority, account_id, ca=issuing.name, approver="ra-gu", issuer=ca_op,
                 ca_password=ca_pw, id_number=next(numbers))
    say(f"   {len(persons) + 2} person certificates from {issuing.name}; everybody logged in with the PIN")

    say("5. official seals (certificate from the seal profile, GB/T 38540 seal signed by the CA)")
    registry = SealRegistry(home)
    for org_name, seal_name, custodian in (("北京市测试局", "official-sm2", "wang"),
                                           (RECIPIENT["name"], "shifan-official", "s_lin")):
        record = registry.create(name=seal_name, organisation=org_name, seal_type="official",
                                 custodian=custodian, ca=issuing.name, password=seal_initial, ca_password=ca_pw,
                                 actor=ca_op, approver=people["ra-lu"])
        registry.change_password(seal_name, seal_initial, seal_pw, actor=people[custodian])
        say(f"   {seal_name}: {record.organisation}, certificate {record.cert_serial.upper()}, custodian {custodian}")
    write_file_atomic(out / "official-sm2.ses", registry.export("official-sm2"), mode=0o644)

    say("6. drafting a request (上行文)")
    today = clock.now().astimezone(CHINA_TIME)
    date_text = f"{today.year}年{today.month}月{today.day}日"
    body = make_document_pdf("关于开展电子印章应用试点工作的请示", "北京市测试局", date_text,
                             ["北京市示范区管理委员会：",
                              "为推进电子政务建设，提高公文流转效率，经研究，拟在我局开展电子印章应用试点工作。",
                              "妥否，请批示。"], main_recipient=RECIPIENT["name"])
    write_file_atomic(out / "draft.pdf", body, mode=0o644)
    doc = flow.new_document(kind="upward", title="关于开展电子印章应用试点工作的请示", pdf=body, actor=people["sun"],
                            main_recipients=[RECIPIENT["name"]])
    say(f"   document {doc.id} drafted by sun, next: {doc.step} {list(doc.pending)}")

    say("7. the upward route: review, office check, countersigning leaders, sign-off, registration")
    for user, action, to, opinion in UPWARD:
        doc = flow.act(doc.id, actor=people[user], action=action, opinion=opinion, to=to)
        say(f"   {user:<5} {action:<9} → {doc.step or 'done'} {list(doc.pending)}")

    say("8. sealing by the seal custodian, over the organisation's name and the date")
    doc = flow.seal(doc.id, actor=people["wang"], seal="official-sm2", password=seal_pw)
    sealed = flow.pdf(doc.id)
    sealed_path = out / "sealed.pdf"
    write_file_atomic(sealed_path, sealed, mode=0o644)
    doc = flow.act(doc.id, actor=people["sun"], action="approve", opinion="已核对盖章件。")

    say("9. sending (the seal is verified again on the exact outgoing bytes)")
    doc = flow.send(doc.id, actor=people["liu"], to=[RECIPIENT["name"]])
    say(f"   {doc.elements.doc_number} sent to {RECIPIENT['name']}")

    say("10. receiving: verified again before anything else")
    receipt = flow.receive(doc.id, actor=people["s_qin"])
    if not receipt.accepted:
        raise RuntimeError(f"the demo's own document was refused: {'; '.join(receipt.problems)}")
    incoming_id = receipt.incoming_doc_id
    assert incoming_id is not None
    for user, action, to in (("s_qin", "register", None), ("s_gao", "approve", "s_he"), ("s_he", "approve", None),
                             ("s_qin", "forward", "综合处"), ("s_xu", "approve", None), ("s_qin", "approve", None)):
        flow.act(incoming_id, actor=people[user], action=action, opinion="阅。", to=to)
    say(f"   received at {receipt.at:%Y-%m-%d %H:%M:%S} and handled as incoming document {incoming_id}")

    say("11. archiving on both sides, with the verification reports")
    sender_archive = flow.archive(doc.id, actor=people["liu"])
    receiver_archive = flow.archive(incoming_id, actor=people["s_qin"])
    verification = SealService(home).verify(sealed)
    reports = []
    for name, data in (("verification-report.json", verification.to_dict()),
                       ("archive-sender.json", {"reports": list(sender_archive.reports)}),
                       ("archive-recipient.json", {"reports": list(receiver_archive.reports)})):
        path = out / name
        write_file_atomic(path, json.dumps(data, ensure_ascii=False, indent=2, default=str).encode(), mode=0o644)
        reports.append(path)
    if not verification.valid:
        raise RuntimeError("the sealed document does not verify: " + "; ".join(verification.problems))

    say("12. signed decisions: every one verified; fresh CRLs; an evidence bundle for OpenSSL alone")
    for ca_name in ("demo-root", "demo-issuing"):
        info = authority.get(ca_name)
        generate_crl(authority, info, authority.load_key(info, ca_pw), actor=ca_op)
    signed = 0
    for doc_id in (doc.id, incoming_id):
        check = flow.verify_log(doc_id)
        if not check.ok:
            raise RuntimeError(f"the signed decisions of document {doc_id} do not verify: {check.first_problem}")
        signed += check.signed
    evidence = out / "evidence"
    bundle = flow.evidence(doc.id, evidence)
    say(f"   {signed} signed decisions verified; {bundle.acts} acts of document {doc.id} in {evidence} "
        "(sh verify.sh)")
    return DemoResult(home.path, out, sealed_path, tuple(reports), doc.elements.doc_number, doc.id, incoming_id,
                      evidence, signed, out / "sessions")

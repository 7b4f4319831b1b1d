"""The main job, end to end, in a fresh home: what `yinxin demo` runs.

An SM2 root and issuing CA; two organisations with their people; each an
official seal whose custodian changes the initial password; a drafted
request (上行文) walked along the upward route with countersigning; sealed
over the organisation's name and the date; sent, received (verified again),
taken through the incoming route and archived on both sides.  Every output
lands in ``HOME/demo/`` and every step goes through the same public APIs the
CLI uses.  Passwords are drawn at random and written (0600) to
``HOME/demo/secrets/`` so that an operator can continue by hand.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from pki.ca import CertificateAuthority
from pki.clock import SYSTEM_CLOCK, Clock
from pki.home import Home
from pki.keyfiles import write_file_atomic
from pki.profiles import default_policy_dir
from seal.records import SealRegistry
from seal.service import SealService

from .flow import DocumentFlow

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


DRAFT = """---
标题: 关于开展电子印章应用试点工作的请示
附注: （联系人：孙拟稿）
---
为推进电子政务建设，提高公文流转效率，经研究，拟在我局开展电子印章应用试点工作。现将有关事项请示如下。

# 试点内容

## 电子印章制作。由市级电子认证机构签发印章证书，按照GB/T 38540制作电子印章。

## 电子公文用印。签发后的公文经文印室登记编号排版，由印章管理员加盖电子印章后发送。

妥否，请批示。
"""


@dataclass(frozen=True)
class DemoResult:
    home: Path
    out_dir: Path
    sealed_pdf: Path
    reports: tuple[Path, ...]
    doc_number: str
    document_id: int
    incoming_id: int


def _password() -> bytes:
    # satisfies the seal password policy: upper, lower, digit, symbol, 20+ characters
    return f"Yx-{secrets.token_urlsafe(15)}-7a".encode()


def run_demo(home_path: str | Path, *, say: Callable[[str], None] = lambda _: None,
             clock: Clock = SYSTEM_CLOCK) -> DemoResult:
    home = Home.open(home_path, clock=clock)
    out = home.path / "demo"
    secrets_dir = out / "secrets"
    ca_pw, seal_initial, seal_pw = _password(), _password(), _password()
    for name, value in (("ca-password", ca_pw), ("seal-password", seal_pw)):
        write_file_atomic(secrets_dir / name, value + b"\n")

    authority = CertificateAuthority(home)
    say("1. SM2 root CA and issuing CA")
    authority.init_ca(name="demo-root", subject="/C=CN/O=yinxin 演示/CN=演示根CA SM2", algorithm="sm2",
                      password=ca_pw, days=3650, operator="ca-admin")
    issuing = authority.init_ca(name="demo-issuing", subject="/C=CN/O=yinxin 演示/CN=演示签发CA SM2",
                                algorithm="sm2", password=ca_pw, days=1825, parent="demo-root",
                                parent_password=ca_pw, operator="ca-admin")
    say(f"   {issuing.name}: {issuing.subject} (SM2 ID {issuing.distid.decode()})")

    flow = DocumentFlow(home)
    say("2. organisations and their people")
    sender = flow.load_organisation(default_policy_dir() / "examples" / "beijing-test-bureau.yaml",
                                    actor="admin")
    recipient_file = out / "recipient-organisation.yaml"
    write_file_atomic(recipient_file, yaml.safe_dump(RECIPIENT, allow_unicode=True).encode(), mode=0o644)
    recipient = flow.load_organisation(recipient_file, actor="admin")
    say(f"   {sender.organisation.name} ({len(sender.organisation.people)} people) → "
        f"{recipient.organisation.name} ({len(recipient.organisation.people)} people)")

    say("3. official seals (certificate from the seal profile, GB/T 38540 seal signed by the CA)")
    registry = SealRegistry(home)
    for org_name, seal_name, custodian in (("北京市测试局", "official-sm2", "wang"),
                                           (RECIPIENT["name"], "shifan-official", "s_lin")):
        record = registry.create(name=seal_name, organisation=org_name, seal_type="official",
                                 custodian=custodian, ca=issuing.name, password=seal_initial, ca_password=ca_pw,
                                 operator="seal-admin", approver="seal-approver")
        registry.change_password(seal_name, seal_initial, seal_pw, actor=custodian)
        say(f"   {seal_name}: {record.organisation}, certificate {record.cert_serial.upper()}")
    write_file_atomic(out / "official-sm2.ses", registry.export("official-sm2"), mode=0o644)

    say("4. drafting a request (上行文)")
    # a structured body (docflow.typeset): typeset on the organisation's red-header template; the
    # registry's step later puts the 发文字号, 签发人 and 成文日期 on the page
    write_file_atomic(out / "draft.txt", DRAFT.encode(), mode=0o644)
    doc = flow.new_document(kind="upward", body=DRAFT, drafter="sun", main_recipients=[RECIPIENT["name"]])
    write_file_atomic(out / "draft.pdf", flow.pdf(doc.id), mode=0o644)
    say(f"   document {doc.id} drafted by sun, next: {doc.step} {list(doc.pending)}")

    say("5. the upward route: review, office check, countersigning leaders, sign-off, registration")
    for user, action, to, opinion in UPWARD:
        doc = flow.act(doc.id, user=user, action=action, opinion=opinion, to=to)
        say(f"   {user:<5} {action:<9} → {doc.step or 'done'} {list(doc.pending)}")

    say("6. sealing by the seal custodian, over the organisation's name and the date")
    doc = flow.seal(doc.id, user="wang", seal="official-sm2", password=seal_pw)
    sealed = flow.pdf(doc.id)
    sealed_path = out / "sealed.pdf"
    write_file_atomic(sealed_path, sealed, mode=0o644)
    doc = flow.act(doc.id, user="sun", action="approve", opinion="已核对盖章件。")

    say("7. sending (the seal is verified again on the exact outgoing bytes)")
    doc = flow.send(doc.id, user="liu", to=[RECIPIENT["name"]])
    say(f"   {doc.elements.doc_number} sent to {RECIPIENT['name']}")

    say("8. receiving: verified again before anything else")
    receipt = flow.receive(doc.id, user="s_qin")
    if not receipt.accepted:
        raise RuntimeError(f"the demo's own document was refused: {'; '.join(receipt.problems)}")
    incoming_id = receipt.incoming_doc_id
    assert incoming_id is not None
    for user, action, to in (("s_qin", "register", None), ("s_gao", "approve", "s_he"), ("s_he", "approve", None),
                             ("s_qin", "forward", "综合处"), ("s_xu", "approve", None), ("s_qin", "approve", None)):
        flow.act(incoming_id, user=user, action=action, opinion="阅。", to=to)
    say(f"   received at {receipt.at:%Y-%m-%d %H:%M:%S} and handled as incoming document {incoming_id}")

    say("9. archiving on both sides, with the verification reports")
    sender_archive = flow.archive(doc.id, user="liu")
    receiver_archive = flow.archive(incoming_id, user="s_qin")
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
    return DemoResult(home.path, out, sealed_path, tuple(reports), doc.elements.doc_number, doc.id, incoming_id)

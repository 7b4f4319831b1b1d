"""Signing before sending: sealing bound to sign-off, send and receive re-verifying the exact bytes,
recall, archive — with real SM2 seals in a real home, and the attacks the issue lists.

Independent judges: qpdf --check (structure of the sealed file), pyHanko's reader (the signature's
byte range covers the whole file), poppler's pdftoppm (the red seal presses the organisation's name
and the date), and SQLite itself (the archive refuses UPDATE and DELETE)."""
from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from docflow import (DirectoryError, DocumentFlow, ElementError, FlowStateError, IntegrityFailure, NotAllowed,
                     VerificationFailed)
from pki.accounts.testing import actor_for_tests
from pki.ca import CertificateAuthority
from pki.store import certificates
from pki.clock import FixedClock
from pki.home import Home
from seal.errors import SealPasswordError
from seal.records import SealRegistry

from docflow_support import (DOC_TABLES, ORG, OTHER, SEAL_PASSWORD, UPWARD_TO_SEAL, DOWNWARD_TO_SEAL, Bureau,
                             bureau_copy, sealing_template,
                             bureau, document_pdf, new_upward, other_org, tables, tamper_version, walk, with_seals)

INCOMING_ROUTE = [("t_liu", "register", None), ("t_office", "approve", "t_li"), ("t_li", "approve", "t_zhou"),
                  ("t_zhou", "approve", None), ("t_wu", "approve", None), ("t_liu", "forward", "综合处"),
                  ("t_head", "approve", None), ("t_liu", "approve", None)]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with both organisations, an SM2 root + issuing CA and both official seals (made once)."""
    return sealing_template(tmp_path_factory.mktemp("docflow-seal-template"))


@pytest.fixture
def b(template: Path, tmp_path: Path) -> Bureau:
    return bureau_copy(template, tmp_path)


def docflow_tables(b: Bureau) -> dict:
    return tables(b, audit=False)


def refused(b: Bureau, error, match, call, *, audit: bool = True):
    before = tables(b, audit=audit)
    with pytest.raises(error, match=match) as info:
        call()
    assert tables(b, audit=audit) == before, "a refused operation changed the database"
    return info.value


def ca_admin(b: Bureau):  # type: ignore[no-untyped-def]
    """An RA officer and CA operator: holds and revokes seal certificates."""
    return actor_for_tests(b.home, "ca-admin", roles=("ca_operator", "ra_officer"))


def to_seal(b: Bureau, route=UPWARD_TO_SEAL, **kw):
    return walk(b, new_upward(b, **kw).id, route)


def sealed(b: Bureau, **kw):
    doc = to_seal(b, **kw)
    b.tick()
    return b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD)


def ready_to_send(b: Bureau, **kw):
    doc = sealed(b, **kw)
    b.tick()
    return b.flow.act(doc.id, actor=b.actor("sun"), action="approve", opinion="已核对盖章件")


def sent(b: Bureau, **kw):
    doc = ready_to_send(b, **kw)
    b.tick()
    return b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER])


def seal_serial(b: Bureau, name: str) -> str:
    return SealRegistry(b.home).get(name).cert_serial


def append_update(data: bytes) -> bytes:
    """An incremental update after the seal: new content drawn on page 1 (作废, "void"), by pyHanko."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    stream = generic.StreamObject(stream_data=b"q 1 0 0 RG 4 w 100 400 m 500 600 l S Q")
    contents = page["/Contents"]
    existing = list(contents) if isinstance(contents, generic.ArrayObject) else [page.raw_get("/Contents")]
    page["/Contents"] = generic.ArrayObject(existing + [writer.add_object(stream)])
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# ---------------------------------------------------------------------------- happy paths

def test_upward_sealed_sent_received_handled_and_archived(b: Bureau) -> None:
    doc = to_seal(b)
    signed_off = b.flow.pdf(doc.id, doc.signed_off_version)
    b.tick()
    doc = b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD)
    # versions: 1 signed off, 2 the registry's typesetting, 3 sealed
    assert (doc.step, doc.pending, doc.sealed_version, doc.current_version) == ("drafter_check", ("sun",), 3, 3)
    sealed_pdf = b.flow.pdf(doc.id)
    typeset = b.flow.pdf(doc.id, 2)      # the seal is an incremental update of the registry's version
    assert sealed_pdf.startswith(typeset) and len(sealed_pdf) > len(typeset) and typeset != signed_off
    _judge_sealed_file(b, sealed_pdf)
    refused(b, FlowStateError, "drafter has not checked", lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))
    b.tick()
    doc = b.flow.act(doc.id, actor=b.actor("sun"), action="approve", opinion="已核对")
    assert (doc.step, doc.pending) == ("send", ("liu",))
    b.tick()
    doc = b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER])
    assert doc.state == "sent" and [(d.organisation, d.state) for d in doc.deliveries] == [(OTHER, "delivered")]
    inbox = b.flow.todo("t_liu")
    assert [(i.what, i.doc_id, i.organisation) for i in inbox] == [("inbox", doc.id, ORG)]
    refused(b, NotAllowed, "receiver role", lambda: b.flow.receive(doc.id, actor=b.actor("t_li")))
    b.tick()
    receipt = b.flow.receive(doc.id, actor=b.actor("t_liu"))
    assert receipt.accepted and receipt.problems == () and receipt.at == b.clock.now()
    incoming = b.flow.show(receipt.incoming_doc_id)
    assert incoming.kind == "incoming" and incoming.organisation == OTHER
    assert incoming.elements.doc_number == doc.elements.doc_number and incoming.elements.issuer == ORG
    assert incoming.elements.signer == "吴局长"
    assert b.flow.pdf(incoming.id) == sealed_pdf
    assert (incoming.step, incoming.pending) == ("sign_for", ("t_liu",))
    delivery = b.flow.show(doc.id).deliveries[0]
    assert delivery.state == "received" and delivery.received_at == receipt.at
    # the 收文 route: sign for, propose, every leader reads in turn, distribute, handle, close
    seen = []
    for user, action, to in INCOMING_ROUTE:
        b.tick()
        incoming = b.flow.act(incoming.id, actor=b.actor(user), action=action, opinion=f"{user}意见", to=to)
        seen.append((incoming.step, incoming.pending))
    assert seen == [("propose", ("t_office",)), ("leaders_read", ("t_li",)), ("leaders_read", ("t_zhou",)),
                    ("leaders_read", ("t_wu",)), ("distribute", ("t_liu",)), ("handle", ("t_head",)),
                    ("close", ("t_liu",)), (None, ())]
    assert incoming.state == "done" and incoming.elements.received_number.startswith("收〔")
    assert incoming.elements.signed_for_at is not None
    # archives: the sender's and the recipient's, each with its verification reports
    b.tick()
    sender_record = b.flow.archive(doc.id, actor=b.actor("liu"))
    assert [r["purpose"] for r in sender_record.reports] == ["seal", "send", "receive", "archive"]
    assert all(r["valid"] for r in sender_record.reports)
    assert sender_record.digests.sha256 == delivery.sha256
    receiver_record = b.flow.archive(incoming.id, actor=b.actor("t_liu"))
    assert [r["purpose"] for r in receiver_record.reports] == ["receive", "archive"]
    record, data = b.flow.archived(doc.id)
    assert data == sealed_pdf and record.record["document"]["elements"]["signer"] == "吴局长"
    assert b.flow.show(doc.id).state == "archived"
    refused(b, FlowStateError, "archived", lambda: b.flow.recall(doc.id, actor=b.actor("liu")))
    _archive_is_append_only(b)


def test_downward_route_sealed_and_sent_to_two_organisations(b: Bureau) -> None:
    b.flow.load_organisation_data(other_org("河北省测试局", seal="hebei-sm2") | {"people": [
        {"id": "h_liu", "name": "刘收", "department": "办公室", "head": True,
         "roles": ["secretary", "receiver", "office_head"]},
        {"id": "h_li", "name": "李领", "roles": ["leader", "director"]},
        {"id": "h_ma", "name": "马印", "department": "办公室", "roles": ["registry", "seal_custodian"]}]},
        actor=b.admin())
    doc = b.flow.new_document(kind="downward", title="关于印发试点方案的通知", pdf=document_pdf("关于印发试点方案的通知"),
                              actor=b.actor("sun"), main_recipients=[OTHER, "河北省测试局"])
    doc = walk(b, doc.id, DOWNWARD_TO_SEAL)
    doc = b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD)
    doc = b.flow.act(doc.id, actor=b.actor("sun"), action="approve")
    doc = b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER, "河北省测试局"])
    assert sorted(d.organisation for d in doc.deliveries) == sorted([OTHER, "河北省测试局"])
    assert b.flow.receive(doc.id, actor=b.actor("h_liu")).accepted
    refused(b, FlowStateError, "not received yet by 天津市测试局", lambda: b.flow.archive(doc.id, actor=b.actor("liu")))
    assert b.flow.receive(doc.id, actor=b.actor("t_liu")).accepted
    assert b.flow.archive(doc.id, actor=b.actor("liu")).doc_id == doc.id


# ---------------------------------------------------------------------------- sealing

def test_only_the_custodian_seals_with_the_organisations_own_seal(b: Bureau) -> None:
    doc = to_seal(b)
    refused(b, NotAllowed, "out of turn", lambda: b.flow.seal(doc.id, actor=b.actor("ma"), seal="official-sm2",
                                                              password=SEAL_PASSWORD))
    refused(b, NotAllowed, "seal tianjin-sm2 is not 北京市测试局's seal",
            lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="tianjin-sm2", password=SEAL_PASSWORD))
    # a wrong password is the seal's business (counted and audited there); the document is untouched
    before = docflow_tables(b)
    with pytest.raises(SealPasswordError):
        b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=b"Wrong-Password-1")
    assert docflow_tables(b) == before


def test_sealing_a_changed_document_is_refused(b: Bureau) -> None:
    doc = to_seal(b)
    forged = document_pdf(body="签发后被悄悄改动的正文。")
    tamper_version(b, doc.id, 1, forged, fix_digests=False)
    refused(b, IntegrityFailure, "no longer matches its recorded SHA-256/SM3 digests",
            lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD))
    tamper_version(b, doc.id, 1, forged, fix_digests=True)     # the version's digests rewritten too
    refused(b, IntegrityFailure, "not the version that was signed off",
            lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD))


def test_sealing_with_a_revoked_or_held_seal_is_refused(b: Bureau) -> None:
    doc = to_seal(b)
    authority = CertificateAuthority(b.home)
    authority.hold(seal_serial(b, "official-sm2"), ca="issuing", actor=ca_admin(b))
    refused(b, FlowStateError, "is held", lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2",
                                                               password=SEAL_PASSWORD))


# ---------------------------------------------------------------------------- sending

def test_sending_an_unsealed_document_is_refused(b: Bureau) -> None:
    doc = to_seal(b)
    refused(b, FlowStateError, "not sealed", lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))
    doc = ready_to_send(b)
    unsealed = b.flow.pdf(doc.id, doc.signed_off_version)
    tamper_version(b, doc.id, doc.sealed_version, unsealed, fix_digests=True)
    error = refused(b, VerificationFailed, "no seal signature", lambda: b.flow.send(doc.id, actor=b.actor("liu"),
                                                                                    to=[OTHER]))
    assert error.exit_code == 1


def test_sending_a_document_altered_after_sealing_is_refused(b: Bureau) -> None:
    doc = ready_to_send(b)
    data = bytearray(b.flow.pdf(doc.id))
    # one byte inside the signed range changed (the header's binary comment: the file still parses the same)
    position = data.index(b"%PDF-1.7\n%") + 10
    data[position:position + 1] = b"\xee" if data[position] != 0xEE else b"\xef"
    tamper_version(b, doc.id, doc.sealed_version, bytes(data), fix_digests=False)
    refused(b, IntegrityFailure, "no longer matches its recorded", lambda: b.flow.send(doc.id, actor=b.actor("liu"),
                                                                                         to=[OTHER]))
    tamper_version(b, doc.id, doc.sealed_version, bytes(data), fix_digests=True)
    error = refused(b, VerificationFailed, "seal check", lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))
    assert any("signed-off file" in p for p in error.data["problems"])
    assert len(error.data["problems"]) >= 2      # the seal itself does not verify either


def test_sending_with_an_update_appended_after_the_seal_is_refused(b: Bureau) -> None:
    doc = ready_to_send(b)
    updated = append_update(b.flow.pdf(doc.id))
    tamper_version(b, doc.id, doc.sealed_version, updated, fix_digests=True)
    error = refused(b, VerificationFailed, "appended after the last seal",
                    lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))
    assert error.data["doc"] == doc.id


def test_sending_a_document_sealed_with_another_organisations_seal_is_refused(b: Bureau) -> None:
    doc = ready_to_send(b)
    signed_off = b.flow.pdf(doc.id, doc.signed_off_version)
    foreign = b.flow.seal_service.stamp("tianjin-sm2", SEAL_PASSWORD, signed_off,
                                        placement=__import__("seal.pdf_placement", fromlist=["AnchorText"])
                                        .AnchorText(ORG), actor=b.actor("t_wang")).pdf
    tamper_version(b, doc.id, doc.sealed_version, foreign, fix_digests=True)
    refused(b, VerificationFailed, "seal tianjin-sm2 of 天津市测试局, not 北京市测试局's seal official-sm2",
            lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))


@pytest.mark.parametrize("change", ["revoke", "hold"])
def test_sending_with_a_revoked_or_held_seal_certificate_is_refused(b: Bureau, change: str) -> None:
    doc = ready_to_send(b)
    authority = CertificateAuthority(b.home)
    if change == "revoke":
        authority.revoke(seal_serial(b, "official-sm2"), reason="keyCompromise", ca="issuing", actor=ca_admin(b))
    else:
        authority.hold(seal_serial(b, "official-sm2"), ca="issuing", actor=ca_admin(b))
    expected = "is revoked" if change == "revoke" else "is held"
    refused(b, VerificationFailed, expected, lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))


def test_sending_after_the_seal_certificate_expired_is_refused(b: Bureau) -> None:
    """盖章 verified these very bytes in this process; at 发送 the seal is judged again at the time
    of sending (nothing time-dependent is remembered between the two checks)."""
    doc = ready_to_send(b)
    with b.home.store.read() as conn:
        not_after = conn.execute(sa.select(certificates.c.not_after).where(
            certificates.c.serial == seal_serial(b, "official-sm2"))).scalar()
    b.clock.advance(not_after - b.clock.now() + timedelta(days=1))
    refused(b, VerificationFailed, "seal check", lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))


def test_recipients_must_be_known_organisations_with_receivers(b: Bureau) -> None:
    doc = ready_to_send(b)
    refused(b, DirectoryError, "no organisation named '不存在局'", lambda: b.flow.send(doc.id, actor=b.actor("liu"),
                                                                                    to=["不存在局"]))
    refused(b, ElementError, "cannot send a document to itself", lambda: b.flow.send(doc.id, actor=b.actor("liu"),
                                                                                     to=[ORG]))
    refused(b, ElementError, "at least one recipient", lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[]))
    refused(b, NotAllowed, "out of turn", lambda: b.flow.send(doc.id, actor=b.actor("zhang"), to=[OTHER]))


# ---------------------------------------------------------------------------- receiving, recall

def test_receipt_that_fails_verification_returns_the_document(b: Bureau) -> None:
    doc = sent(b)
    CertificateAuthority(b.home).revoke(seal_serial(b, "official-sm2"), reason="keyCompromise", ca="issuing",
                                        actor=ca_admin(b))
    b.tick()
    receipt = b.flow.receive(doc.id, actor=b.actor("t_liu"))
    assert not receipt.accepted and receipt.incoming_doc_id is None
    assert any("is revoked" in p for p in receipt.problems)
    delivery = b.flow.show(doc.id).deliveries[0]
    assert delivery.state == "returned" and "is revoked" in delivery.reason
    returned = b.flow.todo("liu")
    assert [(i.what, i.organisation) for i in returned] == [("returned", OTHER)]
    assert b.flow.todo("t_liu") == []
    assert b.flow.verifications(doc.id)[-1]["valid"] is False
    log = b.flow.log(doc.id)[-1]
    assert (log.action, log.actor) == ("receive_refused", "t_liu")


def test_recall_before_opening_then_resend(b: Bureau) -> None:
    doc = sent(b)
    refused(b, NotAllowed, "not a secretary", lambda: b.flow.recall(doc.id, actor=b.actor("sun")))
    b.tick()
    doc = b.flow.recall(doc.id, actor=b.actor("liu"))
    assert (doc.state, doc.step, doc.pending) == ("in_flow", "send", ("liu",))
    assert doc.deliveries[0].state == "recalled"
    assert b.flow.todo("t_liu") == []
    refused(b, FlowStateError, "was recalled", lambda: b.flow.open(doc.id, actor=b.actor("t_liu")))
    b.tick()
    doc = b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER])
    assert [d.state for d in doc.deliveries] == ["recalled", "delivered"]
    assert b.flow.receive(doc.id, actor=b.actor("t_liu")).accepted


def test_recall_after_opening_is_refused(b: Bureau) -> None:
    doc = sent(b)
    b.tick()
    data = b.flow.open(doc.id, actor=b.actor("t_liu"))
    assert data == b.flow.pdf(doc.id)
    refused(b, FlowStateError, "opened document .* can no longer be recalled",
            lambda: b.flow.recall(doc.id, actor=b.actor("liu")))


# ---------------------------------------------------------------------------- judges

def _judge_sealed_file(b: Bureau, data: bytes) -> None:
    import re
    path = b.path / "sealed.pdf"
    path.write_bytes(data)
    check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0 and "No syntax or stream encoding errors" in check.stdout, check.stdout
    from pyhanko.pdf_utils.reader import PdfFileReader
    sigs = PdfFileReader(io.BytesIO(data)).embedded_signatures
    assert len(sigs) == 1
    byte_range = list(sigs[0].sig_object["/ByteRange"])
    assert byte_range[0] == 0 and byte_range[2] + byte_range[3] == len(data)
    # the red seal presses the organisation's name and the date (GB/T 9704 §7.3.5.1)
    from PIL import Image, ImageChops
    # the signature (and the seal) is on the last page
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    last = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    pages = ["-f", str(last), "-l", str(last)]
    subprocess.run(["pdftoppm", "-r", "72", "-png", "-singlefile", *pages, str(path), str(b.path / "page")],
                   check=True)
    image = Image.open(b.path / "page.png").convert("RGB")
    r, g, bl = image.split()
    mask = ImageChops.multiply(r.point(lambda v: 255 if v > 150 else 0),
                               ImageChops.multiply(g.point(lambda v: 255 if v < 120 else 0),
                                                   bl.point(lambda v: 255 if v < 120 else 0)))
    words = subprocess.run(["pdftotext", "-bbox", *pages, str(path), "-"], capture_output=True, text=True).stdout
    boxes = {m.group(5): tuple(float(m.group(i)) for i in range(1, 5)) for m in re.finditer(
        r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]+)<', words)}
    cut = 400 if last == 1 else 0                            # below the red 版头 and its line
    box = mask.crop((0, cut, image.width, image.height)).getbbox()
    assert box is not None, "no red seal on the page"
    left, top, right, bottom = box[0], box[1] + cut, box[2], box[3] + cut
    centre_y = (top + bottom) / 2
    date = next(v for k, v in boxes.items() if k.endswith("日") and "年" in k)
    for box in (boxes[ORG] if ORG in boxes else boxes[next(k for k in boxes if ORG in k)], date):
        x0, y0, x1, y1 = box
        assert left <= x0 and x1 <= right and top <= y0 and y1 <= bottom, (box, (left, top, right, bottom))
        assert (y0 + y1) / 2 > centre_y                      # below the seal's centre
    assert 100 < right - left < 130                          # Ø42 mm = 119 pt at 72 dpi


def _archive_is_append_only(b: Bureau) -> None:
    conn = sqlite3.connect(b.db())
    try:
        for statement in ("UPDATE doc_archive SET archived_by = 'mallory'", "DELETE FROM doc_archive",
                          "UPDATE doc_versions SET pdf = x'00'", "DELETE FROM doc_actions",
                          "UPDATE doc_verifications SET valid = 1"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
    finally:
        conn.close()
    assert "doc_archive" in DOC_TABLES


def test_a_returned_delivery_can_be_sent_again_once_the_seal_is_good(b: Bureau) -> None:
    doc = sent(b)
    authority = CertificateAuthority(b.home)
    serial = seal_serial(b, "official-sm2")
    authority.hold(serial, ca="issuing", actor=ca_admin(b))          # reported lost, then found (补办)
    assert not b.flow.receive(doc.id, actor=b.actor("t_liu")).accepted
    refused(b, VerificationFailed, "is held", lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))
    authority.release(serial, ca="issuing", actor=ca_admin(b))
    b.flow.load_organisation_data(other_org("河北省测试局", seal="hebei-sm2") | {"people": [
        {"id": "h_liu", "name": "刘收", "department": "办公室", "head": True,
         "roles": ["secretary", "receiver", "office_head"]},
        {"id": "h_li", "name": "李领", "roles": ["leader", "director"]},
        {"id": "h_ma", "name": "马印", "department": "办公室", "roles": ["registry", "seal_custodian"]}]},
        actor=b.admin())
    refused(b, FlowStateError, "河北省测试局 was not a recipient",
            lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=["河北省测试局"]))
    b.tick()
    doc = b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER])
    assert [d.state for d in doc.deliveries] == ["returned", "delivered"]
    assert b.flow.receive(doc.id, actor=b.actor("t_liu")).accepted
    assert b.flow.log(doc.id)[-2].details["resend"] is True


def test_drafter_finding_a_problem_in_the_sealed_document_sends_it_back_to_the_signer(b: Bureau) -> None:
    doc = sealed(b)
    number = doc.elements.doc_number
    b.tick()
    doc = b.flow.revise(doc.id, actor=b.actor("sun"), pdf=document_pdf(body="核对时发现错字，已改正的正文。"), note="改正错字")
    assert (doc.step, doc.pending, doc.sealed_version, doc.current_version) == ("sign_off", ("wu",), None, 4)
    refused(b, FlowStateError, "not signed off", lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2",
                                                                      password=SEAL_PASSWORD))
    refused(b, FlowStateError, "not sealed", lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))
    doc = walk(b, doc.id, [("wu", "sign-off", None), ("ma", "register", None)])
    doc = b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD)
    assert (doc.signed_off_version, doc.sealed_version, doc.elements.doc_number) == (4, 6, number)
    assert b.flow.pdf(doc.id).startswith(b.flow.pdf(doc.id, 5))
    doc = b.flow.act(doc.id, actor=b.actor("sun"), action="approve")
    assert b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]).state == "sent"

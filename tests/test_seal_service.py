"""SealService: stamping with the seal rules checked first (and audited), and verification in the
GB/T 38540 order on top of the PDF engine — judged by pdfsig, pyHanko's validator and openssl."""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from pdf_fixtures import pdfsig, qpdf_check
from pki.clock import FixedClock
from pki.errors import YinxinError
from seal.cms_signer import make_signer
from seal.errors import SealLocked, SealPasswordError, SealStateError
from seal.ofd.errors import NotAnOfd
from seal.pdf_errors import AnchorNotFound, EncryptedPdf, NotAPdf, PlacementError
from seal.pdf_placement import AnchorText, AtPosition
from seal.pdf_sign import stamp_pdf
from seal.service import SealService
from seal_support import (ORG, OTHER_ORG, SEAL_PASSWORD, WRONG_PASSWORD, LibWorld, append_annotation,
                          audit_events, db_rows, document_pdf, flip_byte_in_signed_range, foreign_signed,
                          lib_world, load_pem_cert, pyhanko_statuses, sm2_attrs_verify)

SEALS = {  # name: (CA, organisation)
    "bj-official": ("sm2-seal-ca", ORG),       # SM2 through a subordinate CA
    "bj-contract": ("rsa-root", ORG),
    "tj-official": ("ec-root", OTHER_ORG),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> LibWorld:
    w = lib_world(tmp_path_factory.mktemp("seal-service") / "home")
    for name, (ca, org) in SEALS.items():
        w.make_seal(name, ca=ca, org=org, seal_type="contract" if name == "bj-contract" else "official")
    w.make_seal("short", ca="sm2-root", valid_days=1)
    w.make_seal("fresh", ca="sm2-root", ready=False)
    w.make_seal("to-hold", ca="rsa-root")
    w.make_seal("to-revoke", ca="rsa-root")
    w.tick(minutes=1)
    return w


@pytest.fixture(scope="module")
def sealed(world, tmp_path_factory) -> dict[str, Path]:
    """One document sealed by each seal over the organisation's name."""
    out = {}
    directory = tmp_path_factory.mktemp("sealed")
    for name, (_, org) in SEALS.items():
        path = directory / f"{name}.pdf"
        world.service.stamp_file(name, SEAL_PASSWORD, _input(directory, org), path, placement=AnchorText(org),
                                 actor="wang")
        out[name] = path
    return out


def _input(directory: Path, org: str = ORG) -> Path:
    path = directory / f"in-{hashlib.sha256(org.encode()).hexdigest()[:8]}.pdf"
    path.write_bytes(document_pdf(org))
    return path


def roots(world, *names):
    return [load_pem_cert(world.ca_pem(n)) for n in names]


# --------------------------------------------------------------------------- stamping

@pytest.mark.parametrize("name", list(SEALS))
def test_a_sealed_document_verifies_and_the_stamp_is_audited(world, sealed, tmp_path, name):
    path = sealed[name]
    qpdf_check(path)
    report = world.service.verify(path)
    assert report.valid and not report.problems, report.to_dict()
    (check,) = report.signatures
    ca, org = SEALS[name]
    assert (check.seal_name, check.organisation, check.certificate_status) == (name, org, "issued")
    assert check.seal_maker == world.authority.get(ca).certificate.subject.human_friendly
    assert check.report.intact and check.report.coverage == "ENTIRE_FILE" and check.report.chain.trusted
    data = json.loads(json.dumps(report.to_dict()))
    assert data["valid"] is True and data["signatures"][0]["seal"] == name
    assert data["signatures"][0]["seal_maker"] == check.seal_maker
    stamps = [e for e in audit_events(world.db, "seal.stamp", f"seal:{name}") if e["details"]["output"] == str(path)]
    assert len(stamps) == 1 and stamps[0]["actor"] == "wang"
    assert stamps[0]["result_digest"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert stamps[0]["details"]["input_sha256"] == hashlib.sha256(document_pdf(org)).hexdigest()


def test_rsa_and_ecdsa_seals_pass_pdfsig_and_pyhanko(world, sealed):
    for name, ca in (("bj-contract", "rsa-root"), ("tj-official", "ec-root")):
        text = pdfsig(sealed[name])
        assert "Signature is Valid." in text and "Total document signed" in text, text
        (status,) = pyhanko_statuses(sealed[name], roots(world, ca))
        assert status.bottom_line, status.pretty_print_details()


def test_sm2_seal_attributes_verify_with_openssl(world, sealed, tmp_path):
    out = sm2_attrs_verify(sealed["bj-official"], tmp_path)
    assert "Signature Verified Successfully" in out, out


def test_stamp_returns_the_bytes(world):
    outcome = world.service.stamp("bj-contract", SEAL_PASSWORD, document_pdf(), placement=AtPosition(1, 150, 60),
                                  actor="wang")
    assert outcome.pdf.startswith(document_pdf())           # an incremental update of the input
    assert outcome.digest == hashlib.sha256(outcome.pdf).hexdigest()
    assert outcome.field_name == outcome.result.field_name
    assert world.service.verify(outcome.pdf).valid


def test_joint_seals_of_two_organisations(world, sealed, tmp_path):
    first = sealed["bj-official"]
    joint = tmp_path / "joint.pdf"
    world.service.stamp_file("tj-official", SEAL_PASSWORD, first, joint, placement=AtPosition(1, 60, 60),
                             actor="li")
    report = world.service.verify(joint)
    assert report.valid, report.to_dict()
    assert [(s.seal_name, s.organisation) for s in report.signatures] == [("bj-official", ORG),
                                                                        ("tj-official", OTHER_ORG)]
    assert report.signatures[0].report.coverage == "ENTIRE_REVISION"
    assert "Signature is Valid." in pdfsig(joint)           # the ECDSA one; pdfsig has no SM2
    assert "Signature Verified Successfully" in sm2_attrs_verify(joint, tmp_path, index=0)


def test_stamp_many_seals_each_file_and_audits_each(world, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"doc{i}.pdf").write_bytes(document_pdf())
    (src / "broken.pdf").write_bytes(document_pdf()[:2000])
    out = tmp_path / "out"
    out.mkdir()
    seen = []
    items = world.service.stamp_many("bj-contract", SEAL_PASSWORD, sorted(src.iterdir()), out,
                                     placement=AnchorText(ORG), actor="wang",
                                     progress=lambda done, total, item: seen.append((done, total)))
    assert [i.ok for i in items] == [False, True, True, True]
    assert "damaged" in items[0].error
    assert sorted(p.name for p in out.iterdir()) == ["doc0.pdf", "doc1.pdf", "doc2.pdf"]
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    batch = [e for e in audit_events(world.db, "seal.stamp", "seal:bj-contract") if e["details"].get("batch")]
    assert sorted(Path(e["details"]["output"]).name for e in batch) == ["doc0.pdf", "doc1.pdf", "doc2.pdf"]
    for item in items[1:]:
        assert "Signature is Valid." in pdfsig(item.output)
        assert world.service.verify(item.output).valid


# --------------------------------------------------------------------------- refusals: no output

def _refused(world, tmp_path, error, needle, name="bj-contract", password=SEAL_PASSWORD, source=None,
             placement=None, service=None):
    source = source or _input(tmp_path)
    out = tmp_path / "out.pdf"
    before = sorted(p.name for p in tmp_path.iterdir())
    stamps = len(audit_events(world.db, "seal.stamp"))
    with pytest.raises(error) as info:
        (service or world.service).stamp_file(name, password, source, out, placement=placement or AnchorText(ORG),
                                              actor="wang")
    assert isinstance(info.value, YinxinError) and needle in info.value.message
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == before   # no output, no temp file
    assert len(audit_events(world.db, "seal.stamp")) == stamps
    return info.value


def test_wrong_password_no_output_failure_counted(world, tmp_path):
    exc = _refused(world, tmp_path, SealPasswordError, "wrong password for seal bj-contract",
                   password=WRONG_PASSWORD)
    assert exc.data["failures"] == 1
    world.registry.open_key("bj-contract", SEAL_PASSWORD, actor="wang")     # reset for the other tests


def test_initial_password_must_be_changed_first(world, tmp_path):
    from seal_support import SEAL_INITIAL
    _refused(world, tmp_path, SealStateError, "initial password", name="fresh", password=SEAL_INITIAL)


@pytest.mark.parametrize("when", ["before", "after"])
def test_outside_the_validity_window(world, tmp_path, when):
    record = world.registry.get("short")
    at = record.valid_from - timedelta(minutes=1) if when == "before" else record.valid_to + timedelta(minutes=1)
    other = LibWorld(world.path, FixedClock(at))
    _refused(world, tmp_path, SealStateError, "is valid from", name="short", service=other.service)


def test_held_then_revoked_certificate(world, tmp_path):
    record = world.registry.get("to-hold")
    world.authority.hold(record.cert_serial, ca=record.ca)
    exc = _refused(world, tmp_path, SealStateError, "is held", name="to-hold")
    assert exc.data["status"] == "held"
    world.authority.revoke(record.cert_serial, reason="keyCompromise", ca=record.ca)
    _refused(world, tmp_path, SealStateError, "is revoked (key_compromise)", name="to-hold")


def test_locked_seal(world, tmp_path):
    world.make_seal("to-lock", ca="sm2-root")
    policy = world.registry.policy
    for _ in range(policy.max_failures):
        with pytest.raises((SealPasswordError, SealLocked)):
            world.registry.open_key("to-lock", WRONG_PASSWORD, actor="wang")
    _refused(world, tmp_path, SealLocked, "is locked", name="to-lock")


@pytest.mark.parametrize("case, error, needle", [
    ("encrypted", EncryptedPdf, "encrypted"),
    ("broken", NotAPdf, "damaged"),
    ("not-pdf", NotAPdf, "not a PDF"),
    ("broken-zip", NotAnOfd, "not a readable zip"),
    ("page", PlacementError, "page 5 is out of range"),
    ("anchor", AnchorNotFound, "does not occur"),
])
def test_bad_documents(world, tmp_path, case, error, needle):
    source = tmp_path / f"{case}.pdf"
    data = document_pdf()
    if case == "encrypted":
        clear = tmp_path.parent / f"{tmp_path.name}-clear.pdf"
        clear.write_bytes(data)
        subprocess.run(["qpdf", "--encrypt", "user-pw", "owner-pw", "256", "--", str(clear), str(source)],
                       check=True)
        clear.unlink()
    elif case == "broken":
        source.write_bytes(data[:len(data) // 2])
    elif case == "not-pdf":
        source.write_bytes(b"GIF89a this is no document\n")
    elif case == "broken-zip":      # a zip by its first bytes, so taken for an OFD, but broken
        source.write_bytes(b"PK\x03\x04 this is a zip file, not a PDF\n")
    else:
        source.write_bytes(data)
    placement = AtPosition(5, 100, 100) if case == "page" else AnchorText("不存在的文字") if case == "anchor" else None
    _refused(world, tmp_path, error, needle, source=source, placement=placement)


def test_output_must_not_be_the_input(world, tmp_path):
    source = _input(tmp_path)
    with pytest.raises(ValueError, match="must not overwrite the input"):
        world.service.stamp_file("bj-contract", SEAL_PASSWORD, source, source, placement=AnchorText(ORG),
                                 actor="wang")
    assert source.read_bytes() == document_pdf()


# --------------------------------------------------------------------------- verification (GB/T 38540 order)

def test_a_changed_byte_is_not_intact(world, sealed):
    report = world.service.verify(flip_byte_in_signed_range(sealed["bj-official"].read_bytes()))
    (check,) = report.signatures
    assert not report.valid and not check.valid and not check.report.intact
    assert any("do not match the signed digest" in p for p in check.problems)


def test_an_update_after_the_seal(world, sealed):
    report = world.service.verify(append_annotation(sealed["bj-contract"].read_bytes()))
    assert not report.valid and report.engine.modified_after_last_signature
    assert "the document was modified after the last seal" in report.problems
    assert any("modified after signing" in p for p in report.signatures[0].problems)


def test_held_released_revoked_after_stamping(world, tmp_path):
    record = world.registry.get("to-revoke")
    path = tmp_path / "s.pdf"
    world.service.stamp_file("to-revoke", SEAL_PASSWORD, _input(tmp_path), path, placement=AnchorText(ORG),
                             actor="wang")
    assert world.service.verify(path).valid
    world.authority.hold(record.cert_serial, ca=record.ca)
    (check,) = world.service.verify(path).signatures
    assert not check.valid and check.certificate_status == "held"
    assert any("certificate of seal to-revoke is held" in p for p in check.problems)
    world.authority.release(record.cert_serial, ca=record.ca)
    assert world.service.verify(path).valid
    world.authority.revoke(record.cert_serial, reason="superseded", ca=record.ca)
    report = world.service.verify(path)
    assert not report.valid and report.signatures[0].certificate_status == "revoked"
    assert any("is revoked (superseded)" in p for p in report.signatures[0].problems)


def test_a_certificate_of_no_seal_here_is_invalid_even_when_its_chain_is_trusted(world, tmp_path):
    signed, foreign_root = foreign_signed(document_pdf())
    report = world.service.verify(signed)
    (check,) = report.signatures
    assert not report.valid and check.seal_name is None and check.certificate_status is None
    assert not check.report.chain.trusted
    assert any("belongs to no seal of this home" in p for p in check.problems)
    trusted = world.service.verify(signed, trust=[load_pem_cert(foreign_root)])
    (check,) = trusted.signatures
    assert check.report.chain.trusted and check.report.intact and check.report.signature_valid
    assert not trusted.valid and not check.valid
    assert any("belongs to no seal of this home" in p for p in check.problems)


def test_a_document_without_seal(world):
    report = world.service.verify(document_pdf())
    assert not report.valid and "the document carries no seal" in report.problems


def _replace_cms(data: bytes, edit) -> bytes:
    """The PDF with the last signature's CMS replaced by edit(ContentInfo), same /Contents size."""
    from asn1crypto import cms
    start, length, second, _ = map(int, re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)",
                                                   data)[-1])
    hole = data[start + length + 1:second - 1]               # the hex between < and >
    info = cms.ContentInfo.load(bytes.fromhex(hole.decode()).rstrip(b"\0"))
    new = edit(info).dump(force=True).hex().encode()
    assert len(new) <= len(hole)
    return data[:start + length + 1] + new + b"0" * (len(hole) - len(new)) + data[second - 1:]


def test_a_signature_whose_certificate_cannot_be_found_is_reported_not_raised(world, sealed):
    def other_serial(info):
        sid = info["content"]["signer_infos"][0]["sid"].chosen
        sid["serial_number"] = sid["serial_number"].native ^ 1
        return info
    report = world.service.verify(_replace_cms(sealed["bj-contract"].read_bytes(), other_serial))
    (check,) = report.signatures
    assert not report.valid and not check.valid and check.seal_name is None
    assert any("cannot be validated" in p for p in check.problems)


def test_an_unparsable_signature_is_a_damaged_pdf(world, sealed):
    data = sealed["bj-contract"].read_bytes()
    start, length, second, _ = map(int, re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)",
                                                   data)[-1])
    broken = data[:start + length + 1] + b"0" * (second - start - length - 2) + data[second - 1:]
    with pytest.raises(NotAPdf, match="damaged"):
        world.service.verify(broken)


class _RecordTamper:
    """Rewrite one column of a seal's stored record behind the registry's back, and put it back."""

    def __init__(self, world, name: str, column: str) -> None:
        self.world, self.name, self.column = world, name, column

    def __enter__(self):
        (self.saved,) = db_rows(self.world.db, f"SELECT {self.column} FROM seals WHERE name = ?", (self.name,))[0]
        return self

    def set(self, value) -> None:
        db_rows(self.world.db, f"UPDATE seals SET {self.column} = ? WHERE name = ?", (value, self.name))

    def __exit__(self, *exc) -> None:
        self.set(self.saved)


def test_the_makers_signature_over_the_seal_is_checked(world, sealed):
    path = sealed["bj-contract"]
    with _RecordTamper(world, "bj-contract", "ses_der") as tamper:
        forged = bytearray(tamper.saved)
        forged[-3] ^= 0x01                                   # inside the maker's signature
        tamper.set(bytes(forged))
        (check,) = world.service.verify(path).signatures
        assert not check.valid and check.seal_maker is None
        assert any("seal maker's signature over the SES_Seal does not verify" in p for p in check.problems)
        tamper.set(world.registry.get("tj-official").ses_der)    # a genuine seal by another maker
        (check,) = world.service.verify(path).signatures
        assert not check.valid and check.seal_maker is None
        assert any("does not match the maker's key" in p for p in check.problems), check.problems
        tamper.set(world.registry.get("to-hold").ses_der)        # a genuine seal by the same maker
        (check,) = world.service.verify(path).signatures
        assert not check.valid
        assert any("not one of the certificates of seal bj-contract" in p for p in check.problems), check.problems
    assert world.service.verify(path).valid


def test_the_seal_window_is_the_one_the_maker_signed(world, sealed):
    path = sealed["bj-contract"]
    record = world.registry.get("bj-contract")
    with _RecordTamper(world, "bj-contract", "valid_to") as tamper:
        tamper.set((record.valid_to + timedelta(days=3650)).strftime("%Y-%m-%d %H:%M:%S.%f"))
        assert world.registry.get("bj-contract").valid_to != record.valid_to
        (check,) = world.service.verify(path).signatures
        assert not check.valid
        assert any("differs from the one its maker signed" in p for p in check.problems)
    assert world.service.verify(path).valid


def test_a_signature_made_outside_the_seals_window_is_invalid(world, tmp_path):
    """The holder of the key signs after the seal's window (not through SealService, which refuses)."""
    record = world.registry.get("short")
    key = world.registry.open_key("short", SEAL_PASSWORD, actor="wang")
    ca = world.authority.get(record.ca)
    signer = make_signer(key, record.certificate, world.registry.chain(record), distid=ca.distid)
    late = FixedClock(record.valid_to + timedelta(hours=1))
    path = tmp_path / "late.pdf"
    stamp_pdf(document_pdf(), path, signer=signer, drawing=record.drawing(), placement=AnchorText(ORG), clock=late)
    report = LibWorld(world.path, FixedClock(record.valid_to + timedelta(hours=2))).service.verify(path)
    (check,) = report.signatures
    assert check.report.intact and check.report.chain.trusted
    assert not report.valid and any("was not valid at signing time" in p for p in check.problems)

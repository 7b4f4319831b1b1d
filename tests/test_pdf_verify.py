"""verify_pdf: chains, revocation (openssl-made CRLs and OCSP responses), seal checks,
and changes appended after a seal."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

import pki
from pdf_fixtures import ORG, crl, document, identity, ocsp_response, pdfsig
from seal.appearance import SealSpec, draw_seal
from seal.cms_signer import make_signer
from seal.pdf_errors import EncryptedPdf, NotAPdf
from seal.pdf_placement import AnchorText, AtPosition
from seal.pdf_sign import stamp_pdf
from seal.pdf_validation import RevocationData
from seal.pdf_verify import SealCheck, verify_pdf

# a little after "now": the openssl-made CRLs and OCSP responses are dated when made
from pdf_fixtures import CLOCK, clock_follows_the_run  # noqa: E402,F401  (autouse)


@pytest.fixture(scope="module")
def drawing():
    return draw_seal(SealSpec("official", ORG))


def seal(path, alg, drawing, source=None, placement=None, **kw):
    ident = identity(alg)
    stamp_pdf(document(3) if source is None else source, path,
              signer=make_signer(ident.key, ident.cert, [ident.root]), drawing=drawing,
              placement=placement or AnchorText(ORG), clock=CLOCK, **kw)
    return path


def roots(*algs):
    return [identity(a).root for a in algs]


@pytest.mark.parametrize("alg", ["rsa", "p256", "sm2"])
def test_report_describes_each_seal(tmp_path, drawing, alg):
    out = seal(tmp_path / "a.pdf", alg, drawing)
    report = verify_pdf(out, trust_roots=roots(alg), clock=CLOCK)
    assert report.valid and report.problems == ()
    assert report.revisions == 2 and not report.modified_after_last_signature
    (s,) = report.signatures
    ident = identity(alg)
    assert s.field_name == "Seal1" and s.page == 3
    assert s.signer_subject == ident.cert.subject.human_friendly
    assert s.signer_serial == ident.cert.serial_number == 4660
    assert s.algorithm == {"rsa": "sha256_rsa", "p256": "sha256_ecdsa", "sm2": "sm3_sm2"}[alg]
    assert s.signing_time == CLOCK.now()
    assert s.intact and s.signature_valid and s.valid
    assert s.coverage == "ENTIRE_FILE" and s.modified_after == ()
    assert s.chain.trusted and s.chain.path[0] == s.signer_subject
    assert s.revocation.status == "unknown"          # no revocation data supplied


def test_untrusted_root_is_reported_with_a_reason(tmp_path, drawing):
    out = seal(tmp_path / "a.pdf", "sm2", drawing)
    report = verify_pdf(out, trust_roots=roots("rsa"), clock=CLOCK)
    assert not report.valid and report.verdict == "indeterminate"     # seal.verdicts: not trusted ≠ forged
    (s,) = report.signatures
    assert s.intact and s.signature_valid and not s.chain.trusted
    assert "no chain to a trusted root" in s.chain.reason
    assert "Test SM2 Root" in s.chain.reason


def test_no_trust_roots_trusts_nothing(tmp_path, drawing):
    out = seal(tmp_path / "a.pdf", "rsa", drawing)
    report = verify_pdf(out, trust_roots=[], clock=CLOCK)
    assert not report.valid and not report.signatures[0].chain.trusted


def test_expired_certificate(tmp_path, drawing):
    out = seal(tmp_path / "a.pdf", "p256", drawing)
    later = pki.FixedClock(CLOCK.now() + timedelta(days=400))
    report = verify_pdf(out, trust_roots=roots("p256"), clock=later)
    assert not report.valid
    assert "expired" in report.signatures[0].chain.reason


@pytest.mark.parametrize("alg", ["rsa", "sm2"])
def test_crl_good_and_revoked(tmp_path, drawing, alg):
    out = seal(tmp_path / "a.pdf", alg, drawing)
    good = verify_pdf(out, trust_roots=roots(alg), clock=CLOCK,
                      revocation=RevocationData(crls=[crl(alg, revoked=False)]))
    assert good.valid, good.problems
    assert good.signatures[0].revocation.status == "good"
    bad = verify_pdf(out, trust_roots=roots(alg), clock=CLOCK,
                     revocation=RevocationData(crls=[crl(alg, revoked=True)]))
    assert not bad.valid
    rev = bad.signatures[0].revocation
    assert rev.status == "revoked" and rev.revoked_at is not None
    assert rev.reason and "compromise" in rev.reason.lower()


@pytest.mark.parametrize("alg", ["rsa", "sm2"])
def test_ocsp_good_and_revoked(tmp_path, drawing, alg):
    out = seal(tmp_path / "a.pdf", alg, drawing)
    good = verify_pdf(out, trust_roots=roots(alg), clock=CLOCK,
                      revocation=RevocationData(ocsps=[ocsp_response(alg, revoked=False)]))
    assert good.valid, good.problems
    assert good.signatures[0].revocation.status == "good"
    bad = verify_pdf(out, trust_roots=roots(alg), clock=CLOCK,
                     revocation=RevocationData(ocsps=[ocsp_response(alg, revoked=True)]))
    assert not bad.valid and bad.signatures[0].revocation.status == "revoked"


def test_require_mode_without_data_fails(tmp_path, drawing):
    out = seal(tmp_path / "a.pdf", "rsa", drawing)
    report = verify_pdf(out, trust_roots=roots("rsa"), clock=CLOCK,
                        revocation=RevocationData(mode="require"))
    assert not report.valid


def test_revocation_data_must_be_der():
    with pytest.raises(pki.CertificateError):
        RevocationData(crls=[b"not a crl"])
    with pytest.raises(ValueError):
        RevocationData(mode="maybe")


def test_embedded_validation_info_is_used_and_accepted_after_the_seal(tmp_path, drawing):
    out = seal(tmp_path / "a.pdf", "sm2", drawing, embed_validation_info=True,
               trust_roots=roots("sm2"),
               revocation=RevocationData(crls=[crl("sm2", revoked=False)]))
    report = verify_pdf(out, trust_roots=roots("sm2"), clock=CLOCK)   # no CRL supplied here
    assert report.valid, report.problems
    (s,) = report.signatures
    assert s.revocation.status == "good"           # from the document's DSS
    assert s.modification_level == "LTA_UPDATES"
    assert s.modified_after == ("revision 3: unsigned update",)
    assert not report.modified_after_last_signature


def test_seal_check_hook(tmp_path, drawing):
    out = seal(tmp_path / "a.pdf", "p256", drawing)
    seen = []

    def belongs(cert):
        seen.append(cert.serial_number)
        return SealCheck(True, seal="北京市测试局公章")

    report = verify_pdf(out, trust_roots=roots("p256"), clock=CLOCK, seal_check=belongs)
    assert report.valid and seen == [4660]
    assert report.signatures[0].seal_check.seal == "北京市测试局公章"
    report = verify_pdf(out, trust_roots=roots("p256"), clock=CLOCK,
                        seal_check=lambda cert: SealCheck(False, reason="seal is revoked"))
    assert not report.valid
    assert any("seal is revoked" in p for p in report.signatures[0].problems)


def _append_annotation(data: bytes) -> bytes:
    buf = io.BytesIO(data)
    writer = IncrementalPdfFileWriter(buf)
    page_ref, _ = writer.find_page_for_modification(0)
    annot = generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name("/Square"),
        pdf_name("/Rect"): generic.ArrayObject([generic.NumberObject(v) for v in (50, 50, 200, 200)]),
        pdf_name("/C"): generic.ArrayObject([generic.FloatObject(1), generic.FloatObject(0),
                                             generic.FloatObject(0)]),
    })
    writer.register_annotation(page_ref, writer.add_object(annot))
    writer.write_in_place()
    return buf.getvalue()


def test_update_after_the_seal_makes_it_invalid(tmp_path, drawing):
    out = seal(tmp_path / "a.pdf", "rsa", drawing)
    modified = _append_annotation(out.read_bytes())
    # poppler still calls the signature itself valid: it only covers its own revision
    assert "Signature is Valid." in pdfsig(_write(tmp_path / "m.pdf", modified))
    report = verify_pdf(modified, trust_roots=roots("rsa"), clock=CLOCK)
    assert not report.valid and report.modified_after_last_signature
    (s,) = report.signatures
    assert s.intact and s.signature_valid and s.chain.trusted
    assert s.coverage == "ENTIRE_REVISION"
    assert s.modified_after == ("revision 3: unsigned update",)
    assert any("modified after signing" in p for p in s.problems)
    assert "the document was modified after the last seal" in report.problems


def test_update_between_two_seals_invalidates_the_first(tmp_path, drawing):
    first = seal(tmp_path / "a.pdf", "rsa", drawing)
    modified = _append_annotation(first.read_bytes())
    second = seal(tmp_path / "b.pdf", "p256", drawing, source=modified,
                  placement=AtPosition(1, 150, 60))
    report = verify_pdf(second, trust_roots=roots("rsa", "p256"), clock=CLOCK)
    s1, s2 = report.signatures
    assert not s1.valid and s2.valid and not report.valid
    assert s1.modified_after == ("revision 3: unsigned update", "revision 4: seal Seal2")


def test_joint_seals_verify(tmp_path, drawing):
    first = seal(tmp_path / "a.pdf", "sm2", drawing, riding=True,
                 placement=AtPosition(-1, 60, 60))
    second = seal(tmp_path / "b.pdf", "rsa", drawing, source=first, riding=True,
                  placement=AtPosition(-1, 150, 60))
    report = verify_pdf(second, trust_roots=roots("sm2", "rsa"), clock=CLOCK)
    assert report.valid, report.problems
    s1, s2 = report.signatures
    assert s1.modification_level == "FORM_FILLING"
    assert s1.modified_after == ("revision 3: seal Seal2",)
    assert s2.coverage == "ENTIRE_FILE"


def test_no_signatures(tmp_path):
    report = verify_pdf(document(3), trust_roots=roots("rsa"), clock=CLOCK)
    assert not report.valid and report.signatures == ()
    assert report.problems == ("the document has no signatures",)


def test_not_a_pdf_and_encrypted():
    import pikepdf

    with pytest.raises(NotAPdf):
        verify_pdf(b"nothing to see", trust_roots=[], clock=CLOCK)
    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(document(3))) as pdf:
        pdf.save(buf, encryption=pikepdf.Encryption(user="", owner="x"))
    with pytest.raises(EncryptedPdf):
        verify_pdf(buf.getvalue(), trust_roots=[], clock=CLOCK)


def _write(path, data):
    path.write_bytes(data)
    return path

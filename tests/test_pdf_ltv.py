"""Timestamped seals for every algorithm, long-term validation data, and verification in the past.

Judges: `openssl ts -verify -token_in -digest …` for RSA/ECDSA signature timestamps; for SM2 the
token's signed attributes with `openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:…`, its
messageDigest and its imprint against `openssl dgst -sm3` (of the TSTInfo, of the signature value);
poppler's pdfsig and qpdf --check on every file; pyHanko's own PAdES-LTA validation
(`ades_lta_validation`) at ten years on.  Time is moved with a FixedClock or `at`, never waited for.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from ca_helpers import openssl
from ltv_support import ALGORITHMS, CA_PASSWORD, doc_timestamp_tokens, pyhanko_lta, signature_token, world
from pdf_fixtures import pdfsig, qpdf_check
from pki.x509 import certificate_to_pem
from seal.pdf_validation import RevocationData
from seal.pdf_verify import verify_pdf
from seal.service import verify_offline
from tsa_support import sm2_token_verify, token_parts

TEN_YEARS = timedelta(days=3653)


@pytest.fixture(scope="module")
def ltv(tmp_path_factory):
    return world(tmp_path_factory.mktemp("ltv"))


@pytest.fixture(scope="module")
def sealed(ltv):
    return {(name, mode): ltv.stamp(name, mode) for name in ALGORITHMS for mode in ("bb", "bt", "blt", "blta")}


def _tsa_pem(ltv, name):
    path = ltv.dir / f"{name}-tsa.pem"
    path.write_bytes(certificate_to_pem(ltv.tsa.get(f"{name}-tsa").certificate))
    return path


@pytest.mark.parametrize("name", ["rsa", "ec"])
def test_signature_timestamp_judged_by_openssl_ts(ltv, sealed, name, tmp_path):
    token, signature = signature_token(sealed[(name, "bt")])
    path = tmp_path / "token.der"
    path.write_bytes(token.dump())
    digest = hashlib.sha256(signature).hexdigest()
    proc = openssl("ts", "-verify", "-token_in", "-in", path, "-digest", digest, "-CAfile", ltv.root_pem(name),
                   "-untrusted", _tsa_pem(ltv, name), check=False)
    assert "Verification: OK" in (proc.stdout + proc.stderr).decode()
    assert "Signature is Valid." in pdfsig(sealed[(name, "bt")])


def test_sm2_signature_timestamp_has_an_sm3_imprint_over_the_signature_value(ltv, sealed, tmp_path):
    token, signature = signature_token(sealed[("sm2", "bt")])
    verdict, tst_sm3 = sm2_token_verify(token, _tsa_pem(ltv, "sm2"), tmp_path)
    assert "Signature Verified Successfully" in verdict
    assert token_parts(token)["message_digest"].hex() == tst_sm3
    value = tmp_path / "signature.bin"
    value.write_bytes(signature)
    tst = token["content"]["encap_content_info"]["content"].parsed
    assert tst["message_imprint"]["hash_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
    assert tst["message_imprint"]["hashed_message"].native.hex() == \
        openssl("dgst", "-sm3", "-r", value).stdout.decode().split()[0]


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_level_is_a_well_formed_pdf_and_verifies_now(ltv, sealed, name):
    roots = [ltv.root(name)]
    for mode in ("bb", "bt", "blt", "blta"):
        path = sealed[(name, mode)]
        qpdf_check(path)
        if name != "sm2":
            assert "Signature is Valid." in pdfsig(path), mode
        report = ltv.service.verify(path)
        assert report.verdict == "valid", (mode, report.problems)
        (check,) = report.signatures
        if mode == "bb":
            assert check.report.proof is None and check.report.judged_at == ltv.clock.now()
        else:
            assert check.report.proof.kind == "signature timestamp" and check.report.timestamp is not None
    assert len(doc_timestamp_tokens(sealed[(name, "blta")])) == 1
    assert not doc_timestamp_tokens(sealed[(name, "blt")])
    del roots


def test_the_dss_carries_what_a_later_verifier_needs(ltv, sealed):
    """B-LT: the CRL of the CA that issued the seal and TSA certificates is in the DSS (read with
    pyHanko's reader), so the offline check needs nothing else."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    with open(sealed[("sm2", "blt")], "rb") as fh:
        dss = DocumentSecurityStore.read_dss(PdfFileReader(fh, strict=False))
        crls = [ref.get_object().data for ref in dss.crls]
        certs = list(dss.load_certs())
    from asn1crypto import crl as asn1_crl
    issuers = {asn1_crl.CertificateList.load(c).issuer.human_friendly for c in crls}
    assert ltv.root("sm2").subject.human_friendly in issuers
    assert any(c.subject == ltv.tsa.get("sm2-tsa").certificate.subject for c in certs)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_ten_years_on_timestamped_seals_still_verify_and_the_rest_is_indeterminate(ltv, sealed, name):
    at = ltv.clock.now() + TEN_YEARS
    roots = [ltv.root(name)]
    verdicts = {}
    for mode in ("bb", "blt", "blta"):
        report = verify_offline(sealed[(name, mode)].read_bytes(), trust=roots, at=at)
        verdicts[mode] = report.verdict
        if mode == "blta":
            (sig,) = report.signatures
            assert sig.report.proof.kind == "signature timestamp"
            assert sig.report.judged_at == sig.report.proven_time < ltv.clock.now() + timedelta(minutes=1)
            assert [t.verdict for t in report.engine.document_timestamps] == ["valid"]
    assert verdicts == {"bb": "indeterminate", "blt": "valid", "blta": "valid"}
    # the seal certificate itself expired years ago
    seal_cert = ltv.registry.get(f"{name}-seal").certificate
    assert seal_cert["tbs_certificate"]["validity"]["not_after"].native < at


def test_without_a_timestamp_and_without_revocation_data_offline_is_indeterminate(ltv, sealed):
    report = verify_offline(sealed[("rsa", "bt")].read_bytes(), trust=[ltv.root("rsa")])
    assert report.verdict == "indeterminate"
    assert any("revocation" in p for p in report.signatures[0].problems)


def test_pyhanko_pades_lta_accepts_an_rsa_seal_ten_years_on(ltv, sealed):
    """At year ten the CA still publishes CRLs: the verifier holds the current one for the newest
    timestamp's certificate (no one holds revocation data from their own future)."""
    later = ltv.clock.now() + TEN_YEARS
    from pki.clock import FixedClock
    from pki.home import Home
    future = Home.open(ltv.home.path, clock=FixedClock(later))
    from pki.ca import CertificateAuthority
    from pki.status import generate_crl
    ca = CertificateAuthority(future)
    key = ca.load_key(ca.get("rsa"), CA_PASSWORD)
    op = ltv.actor("ca-op")
    crl = [generate_crl(ca, ca.get("rsa"), key, actor=op).der, generate_crl(ca, ca.get("rsa"), key, delta=True, actor=op).der]
    result = pyhanko_lta(sealed[("rsa", "blta")], [ltv.root("rsa")], later, crl)
    assert result.ades_subindic.name == "OK", result.failure_msg
    assert result.best_signature_time < ltv.clock.now() + timedelta(minutes=1)
    # the same seal without its timestamps is not accepted then
    bare = pyhanko_lta(sealed[("rsa", "bb")], [ltv.root("rsa")], later, crl)
    assert bare.ades_subindic.name != "OK"


def test_a_revocation_after_the_proven_time_does_not_invalidate_one_before_does(tmp_path):
    w = world(tmp_path / "w")
    early = w.stamp("ec", "bt")                       # proven at once by its signature timestamp
    plain = w.stamp("ec", "bb", tmp_path / "plain.pdf")
    w.clock.advance(timedelta(days=30))
    w.ca.revoke(w.registry.get("ec-seal").cert_serial, reason="keyCompromise", ca="ec", actor=w.actor("ca-op"))
    w.publish_crl("ec")
    w.clock.advance(timedelta(days=30))
    w.publish_crl("ec")                                # CRLs are republished all the time (yinxin serve)
    # the plain seal gets its first proof only now, after the revocation: a document timestamp
    extended = tmp_path / "plain-extended.pdf"
    w.service.extend(plain, extended, timestamper=w.stamper("ec"), actor=w.actor("archivist"))
    report = w.service.verify(early)
    (check,) = report.signatures
    assert report.verdict == "valid", report.problems
    assert check.report.revocation.status == "revoked" and check.report.revocation.after_proven_time
    assert any("after the proven time" in n for n in check.notes)
    late = w.service.verify(extended)
    (late_check,) = late.signatures
    assert late.verdict == "invalid" and late_check.report.proof.kind == "document timestamp"
    assert any("revoked" in p for p in late_check.problems)
    # the offline check reaches the same verdicts from the files alone
    roots = [w.root("ec")]
    assert verify_offline(early.read_bytes(), trust=roots).verdict == "indeterminate"   # B-T carries no CRL
    assert verify_offline(extended.read_bytes(), trust=roots).verdict == "invalid"


def test_extend_renews_without_touching_earlier_signatures(ltv, sealed, tmp_path):
    source = sealed[("sm2", "blta")]
    out = tmp_path / "renewed.pdf"
    result = ltv.service.extend(source, out, timestamper=ltv.stamper("sm2"), actor=ltv.actor("archivist"))
    data, before = out.read_bytes(), source.read_bytes()
    assert data[:len(before)] == before                       # an incremental update only
    qpdf_check(out)
    assert len(doc_timestamp_tokens(out)) == 2
    assert result.timestamp_not_after == ltv.tsa.get("sm2-tsa").not_after
    report = ltv.service.verify(out)
    assert report.verdict == "valid" and [t.verdict for t in report.engine.document_timestamps] == ["valid", "valid"]
    audit = ltv.home.store.read()
    with audit as conn:
        import sqlalchemy as sa
        from pki.store import audit_events
        assert conn.execute(sa.select(audit_events.c.actor).where(audit_events.c.action == "seal.extend")).scalar() \
            == "archivist"


def test_a_changed_revision_under_a_document_timestamp_is_invalid(ltv, sealed, tmp_path):
    """One bit flipped inside a stream of the DSS revision: only the document timestamp covers it."""
    import re
    data = sealed[("rsa", "blta")].read_bytes()
    ranges = [tuple(map(int, r)) for r in re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]",
                                                       data)]
    seal_end, timestamp_hole = ranges[0][2] + ranges[0][3], ranges[-1][1]
    stream = next(m for m in re.finditer(rb"stream\r?\n", data[seal_end:timestamp_hole])
                  if data.index(b"endstream", seal_end + m.end()) - (seal_end + m.end()) > 100)
    start = seal_end + stream.end()
    changed = bytearray(data)
    changed[(start + data.index(b"endstream", start)) // 2] ^= 0x01
    path = tmp_path / "changed.pdf"
    path.write_bytes(bytes(changed))
    report = verify_pdf(path, trust_roots=[ltv.root("rsa")], revocation=RevocationData(), clock=ltv.clock)
    assert report.verdict == "invalid"
    (ts,) = report.document_timestamps
    assert ts.verdict == "invalid" and not ts.intact
    assert any("changed after it was timestamped" in p for p in report.problems)
    (sig,) = report.signatures
    assert sig.intact                                          # the seal's own bytes are untouched

"""SM2 seals and the CMS inside sealed PDFs, judged by the openssl command line."""
from __future__ import annotations

import subprocess

import pytest
from asn1crypto import cms
from pyhanko.pdf_utils.reader import PdfFileReader

import pki
from pdf_fixtures import DISTID, ORG, document, flip_signed_byte, identity, openssl, qpdf_check
from seal.appearance import SealSpec, draw_seal
from seal.cms_signer import KeySigner, make_signer, signature_placeholder_size
from seal.pdf_placement import AnchorText, AtPosition
from seal.pdf_sign import stamp_pdf
from seal.pdf_verify import verify_pdf

# a little after "now": the certificates are made later in the session than this import
from pdf_fixtures import CLOCK, clock_follows_the_run  # noqa: E402,F401  (autouse)


@pytest.fixture(scope="module")
def drawing():
    return draw_seal(SealSpec("official", ORG))


def sealed(tmp_path, alg, drawing, **kw):
    ident = identity(alg)
    out = tmp_path / f"{alg}.pdf"
    stamp_pdf(document(3), out, signer=make_signer(ident.key, ident.cert, [ident.root]),
              drawing=drawing, placement=AnchorText(ORG), clock=CLOCK, **kw)
    return out


def extract(path, tmp_path):
    """Write the pieces an independent verifier needs: the CMS, the signed byte
    ranges, the DER signed attributes (as the SET OF that was signed) and the
    raw signature."""
    with open(path, "rb") as fh:
        reader = PdfFileReader(fh)
        (sig,) = reader.embedded_signatures
        content = sig.pkcs7_content
        start1, len1, start2, len2 = sig.byte_range
    data = path.read_bytes()
    ranges = data[start1:start1 + len1] + data[start2:start2 + len2]
    info = cms.ContentInfo.load(content)
    signer_info = info["content"]["signer_infos"][0]
    files = {"cms": tmp_path / "cms.der", "ranges": tmp_path / "ranges.bin",
             "attrs": tmp_path / "signedattrs.der", "sig": tmp_path / "sig.der"}
    files["cms"].write_bytes(info.dump())
    files["ranges"].write_bytes(ranges)
    files["attrs"].write_bytes(signer_info["signed_attrs"].untag().dump())
    files["sig"].write_bytes(signer_info["signature"].native)
    return signer_info, files


def test_sm2_signed_attributes_verify_with_openssl(tmp_path, drawing):
    out = sealed(tmp_path, "sm2", drawing)
    qpdf_check(out)
    signer_info, f = extract(out, tmp_path)
    assert signer_info["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert signer_info["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"
    leaf_pub = identity("sm2").leaf_pub
    result = openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(leaf_pub), "-rawin",
                     "-digest", "sm3", "-pkeyopt", f"distid:{DISTID}",
                     "-in", str(f["attrs"]), "-sigfile", str(f["sig"]))
    assert b"Signature Verified Successfully" in result
    # the distinguishing ID is really part of what was signed
    wrong = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(leaf_pub),
                            "-rawin", "-digest", "sm3", "-pkeyopt", "distid:0000000000000000",
                            "-in", str(f["attrs"]), "-sigfile", str(f["sig"])],
                           capture_output=True)
    assert b"Signature Verified Successfully" not in wrong.stdout


def test_sm2_message_digest_is_sm3_of_the_signed_ranges(tmp_path, drawing):
    out = sealed(tmp_path, "sm2", drawing)
    signer_info, f = extract(out, tmp_path)
    attrs = {a["type"].native: a["values"][0] for a in signer_info["signed_attrs"]}
    dgst = openssl("dgst", "-sm3", "-binary", str(f["ranges"]))
    assert attrs["message_digest"].native == dgst
    assert attrs["content_type"].native == "data"
    assert "signing_certificate_v2" in attrs      # PAdES baseline attribute


def test_sm2_custom_distid(tmp_path, drawing):
    ident = identity("sm2")
    out = tmp_path / "distid.pdf"
    stamp_pdf(document(3), out, signer=make_signer(ident.key, ident.cert, [ident.root],
                                                   distid=b"yinxin-test-id"),
              drawing=drawing, placement=AtPosition(1, 100, 100), clock=CLOCK)
    _, f = extract(out, tmp_path)
    result = openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(ident.leaf_pub), "-rawin",
                     "-digest", "sm3", "-pkeyopt", "distid:yinxin-test-id",
                     "-in", str(f["attrs"]), "-sigfile", str(f["sig"]))
    assert b"Signature Verified Successfully" in result


def test_sm2_seal_verifies_and_fails_after_a_byte_flip(tmp_path, drawing):
    out = sealed(tmp_path, "sm2", drawing, riding=True)
    report = verify_pdf(out, trust_roots=[identity("sm2").root], clock=CLOCK)
    assert report.valid, report.problems
    (sig,) = report.signatures
    assert sig.algorithm == "sm3_sm2" and sig.digest_algorithm == "sm3"
    assert sig.chain.trusted and len(sig.chain.path) == 2   # SM2 leaf → SM2 root, checked by us
    report = verify_pdf(flip_signed_byte(out.read_bytes()), trust_roots=[identity("sm2").root],
                        clock=CLOCK)
    assert not report.valid
    assert not report.signatures[0].intact


@pytest.mark.parametrize("alg", ["rsa", "p256"])
def test_rsa_ecdsa_cms_verifies_with_openssl_cms(tmp_path, drawing, alg):
    out = sealed(tmp_path, alg, drawing)
    signer_info, f = extract(out, tmp_path)
    result = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(f["cms"]),
         "-content", str(f["ranges"]), "-CAfile", str(identity(alg).root_pem), "-purpose", "any",
         "-out", "/dev/null"], capture_output=True, text=True)
    assert "Verification successful" in result.stderr, result.stderr
    expected = {"rsa": "sha256_rsa", "p256": "sha256_ecdsa"}[alg]
    assert signer_info["signature_algorithm"]["algorithm"].native == expected


def test_signer_mechanism_and_placeholder_sizes():
    ident = identity("p256")
    signer = make_signer(ident.key, ident.cert, [ident.root])
    assert isinstance(signer, KeySigner)
    assert signer.digest_algorithm == "sha256"
    assert signature_placeholder_size(identity("rsa").cert) == 256
    assert signature_placeholder_size(identity("p256").cert) == 72
    assert signature_placeholder_size(identity("sm2").cert) == 72


def test_signer_rejects_a_certificate_of_another_key():
    with pytest.raises(pki.CertificateError):
        make_signer(identity("rsa").key, identity("p256").cert)


def test_distid_only_for_sm2():
    with pytest.raises(ValueError):
        make_signer(identity("rsa").key, identity("rsa").cert, distid=b"123")


def test_dry_run_is_a_placeholder_and_real_run_verifies():
    import asyncio

    ident = identity("sm2")
    signer = make_signer(ident.key, ident.cert)
    data = b"signed attributes stand-in"
    assert asyncio.run(signer.async_sign_raw(data, "sm3", dry_run=True)) == bytes(72)
    sig = asyncio.run(signer.async_sign_raw(data, "sm3"))
    ident.key.public_key().verify(sig, data)
    with pytest.raises(ValueError):
        asyncio.run(signer.async_sign_raw(data, "sha256"))

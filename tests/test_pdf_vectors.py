"""Seals made by earlier code (tests/vectors/pdf) still verify, with our verifier and openssl."""
from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from asn1crypto import cms, pem, x509
from pyhanko.pdf_utils.reader import PdfFileReader

import pki
from pdf_fixtures import flip_signed_byte, pdfsig, qpdf_check
from seal.pdf_verify import verify_pdf

VECTORS = Path(__file__).parent / "vectors" / "pdf"
META = json.loads((VECTORS / "vectors.json").read_text())
CLOCK = pki.FixedClock(datetime.fromisoformat(META["clock"]))


def root(name: str) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor((VECTORS / f"{name}-root.pem").read_bytes())[2])


def test_sm2_vector_verifies():
    report = verify_pdf(VECTORS / "sm2-seal-riding.pdf", trust_roots=[root("sm2")], clock=CLOCK)
    assert report.valid, report.problems
    (s,) = report.signatures
    assert s.algorithm == "sm3_sm2" and s.page == 3 and s.signing_time == CLOCK.now()


def test_sm2_vector_signature_verifies_with_openssl(tmp_path):
    with open(VECTORS / "sm2-seal-riding.pdf", "rb") as fh:
        (sig,) = PdfFileReader(fh).embedded_signatures
        signer_info = cms.ContentInfo.load(sig.pkcs7_content)["content"]["signer_infos"][0]
    (tmp_path / "attrs.der").write_bytes(signer_info["signed_attrs"].untag().dump())
    (tmp_path / "sig.der").write_bytes(signer_info["signature"].native)
    proc = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey",
                           str(VECTORS / "sm2-leaf-pub.pem"), "-rawin", "-digest", "sm3",
                           "-pkeyopt", f"distid:{META['distid']}", "-in", str(tmp_path / "attrs.der"),
                           "-sigfile", str(tmp_path / "sig.der")], capture_output=True, text=True)
    assert "Signature Verified Successfully" in proc.stdout, proc.stdout + proc.stderr


def test_joint_vector_verifies_everywhere():
    path = VECTORS / "sm2-then-rsa-joint.pdf"
    qpdf_check(path)
    report = verify_pdf(path, trust_roots=[root("sm2"), root("rsa")], clock=CLOCK)
    assert report.valid, report.problems
    assert [s.algorithm for s in report.signatures] == ["sm3_sm2", "sha256_rsa"]
    assert "Signature is Valid." in pdfsig(path)          # the RSA seal; poppler has no SM2


@pytest.mark.parametrize("name", ["sm2-seal-riding.pdf", "sm2-then-rsa-joint.pdf"])
def test_vectors_fail_after_a_byte_flip(name):
    data = flip_signed_byte((VECTORS / name).read_bytes())
    report = verify_pdf(data, trust_roots=[root("sm2"), root("rsa")], clock=CLOCK)
    assert not report.valid

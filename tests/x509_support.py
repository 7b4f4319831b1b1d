"""Shared helpers for the x509/CRL/OCSP tests: keys, small CA hierarchies, the openssl CLI."""
from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from asn1crypto import x509 as asn1_x509

from pki.algorithms import ALGORITHMS, PrivateKey, generate_key
from pki.clock import SystemClock
from pki.x509 import (CertificateSpec, build_tbs_certificate, certificate_to_pem, parse_name,
                      sign_certificate)

GMT_DISTID = b"1234567812345678"
DISTID_OPT = "distid:1234567812345678"
#: certificates are valid around the real time, because `openssl ocsp` and `openssl crl`
#: check validity against the system clock
NOW = SystemClock().now()

_serial = iter(range(0x1000, 1 << 60))


@functools.lru_cache(maxsize=None)
def key(algorithm: str, index: int = 0) -> PrivateKey:
    """A key per (algorithm, index), generated once per test session."""
    assert algorithm in ALGORITHMS
    return generate_key(algorithm)


@dataclass(frozen=True)
class Issued:
    key: PrivateKey
    cert: asn1_x509.Certificate

    @property
    def pem(self) -> bytes:
        return certificate_to_pem(self.cert)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        return path


def issue(subject: str, subject_key: PrivateKey, issuer: Issued | None, *, ca: bool = False,
          distid: bytes | None = None, days: int = 365, **spec_kwargs) -> Issued:
    """A certificate for `subject_key`, signed by `issuer` (self-signed when None)."""
    name = parse_name(subject)
    signer_key = subject_key if issuer is None else issuer.key
    issuer_name = name if issuer is None else issuer.cert.subject
    aki = None if issuer is None else issuer.key.public_key().key_identifier()
    if ca:
        spec_kwargs.setdefault("key_usage", frozenset({"key_cert_sign", "crl_sign"}))
    else:
        spec_kwargs.setdefault("key_usage", frozenset({"digital_signature"}))
    spec = CertificateSpec(subject=name, issuer=issuer_name, serial=next(_serial),
                           not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=days),
                           public_key=subject_key.public_key(), issuer_key_identifier=aki, ca=ca,
                           **spec_kwargs)
    tbs = build_tbs_certificate(spec, signer_key.public_key().signature_algorithm())
    return Issued(subject_key, sign_certificate(tbs, signer_key, distid=distid))


def openssl(*args: str | Path, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the openssl CLI; output as text (merged stdout/stderr available separately)."""
    result = subprocess.run(["openssl", *map(str, args)], input=input, capture_output=True, timeout=120)
    result.out = result.stdout.decode("utf-8", "replace")  # type: ignore[attr-defined]
    result.err = result.stderr.decode("utf-8", "replace")  # type: ignore[attr-defined]
    if check and result.returncode != 0:
        raise AssertionError(f"openssl {' '.join(map(str, args))} failed:\n{result.out}\n{result.err}")
    return result


def pkeyutl_verify_sm2(tmp_path: Path, public_key_pem: bytes, data: bytes, signature: bytes,
                       distid: str = DISTID_OPT) -> bool:
    """OpenSSL's own SM2 verification of `signature` over `data` with a distinguishing ID."""
    pub = tmp_path / "pkeyutl-pub.pem"
    msg = tmp_path / "pkeyutl-data.bin"
    sig = tmp_path / "pkeyutl-sig.bin"
    pub.write_bytes(public_key_pem)
    msg.write_bytes(data)
    sig.write_bytes(signature)
    result = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
                     "-pkeyopt", distid, "-in", msg, "-sigfile", sig, check=False)
    text = result.out + result.err
    if result.returncode == 0 and "Signature Verified Successfully" in text:
        return True
    assert "Signature Verification Failure" in text, text
    return False

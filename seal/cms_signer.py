"""CMS signers for PDF seals: one pyHanko `Signer` over yinxin's loaded keys.

pyHanko's `SimpleSigner` re-parses its PKCS#8 key for every signature and
knows nothing of SM2.  `KeySigner` holds a `pki.PrivateKey` that was loaded
once (and decrypted once, under the seal password) and signs through it, so
RSA, ECDSA and SM2 take the same path:

* RSA: sha256WithRSAEncryption (PKCS#1 v1.5), digest SHA-256;
* ECDSA: ecdsa-with-SHA256 (P-256) or ecdsa-with-SHA384 (P-384);
* SM2: SM2-with-SM3 (OID 1.2.156.10197.1.501), digest SM3, the signature over
  SM3(Z ‖ signed attributes) with the signer's distinguishing ID.

The mechanism is fixed in the constructor, so pyHanko derives the document
digest from it (`get_cms_hash_algo_for_mechanism` → ``mech.hash_algo``, which
`pki.oids` answers with ``sm3`` for SM2) and hashes with
``getattr(cryptography.hazmat.primitives.hashes, 'SM3')``.  `ensure_sm_algorithms`
checks those seams once at import, so a pyHanko upgrade that moves them fails
loudly here instead of producing a wrong signature.
"""
from __future__ import annotations

from collections.abc import Iterable

import pki  # registers the SM2/SM3 OIDs with asn1crypto before anything below parses
from asn1crypto import algos, x509
from cryptography.hazmat.primitives import hashes
from pyhanko.sign.general import get_cms_hash_algo_for_mechanism
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

__all__ = ["KeySigner", "make_signer", "ensure_sm_algorithms", "signature_placeholder_size"]


def ensure_sm_algorithms() -> None:
    """Check that asn1crypto, pyHanko and cryptography all understand SM2/SM3.

    Raises RuntimeError (a deployment fault, not a user error) otherwise.
    """
    mech = algos.SignedDigestAlgorithm({"algorithm": pki.oids.SM2_SM3_NAME})
    problems = []
    if mech["algorithm"].dotted != pki.oids.SM2_WITH_SM3:
        problems.append("asn1crypto does not map sm3_sm2 to 1.2.156.10197.1.501")
    if mech.signature_algo != "sm2" or mech.hash_algo != "sm3":
        problems.append("asn1crypto does not split sm3_sm2 into (sm2, sm3)")
    if get_cms_hash_algo_for_mechanism(mech) != "sm3":
        problems.append("pyHanko does not derive SM3 from SM2-with-SM3")
    if not isinstance(get_pyca_cryptography_hash("sm3"), getattr(hashes, "SM3", ())):
        problems.append("cryptography has no SM3 hash for pyHanko to use")
    if algos.DigestAlgorithm({"algorithm": "sm3"})["algorithm"].dotted != pki.oids.SM3:
        problems.append("asn1crypto does not map sm3 to 1.2.156.10197.1.401")
    if problems:
        raise RuntimeError("SM2 support is broken: " + "; ".join(problems))


ensure_sm_algorithms()


def signature_placeholder_size(cert: x509.Certificate) -> int:
    """Bytes that always hold the raw signature of the certificate's key.

    Used for pyHanko's dry run (which only sizes the signature container),
    so that stamping signs once, not twice.  RSA signatures are exactly the
    modulus length; (EC)DSA/SM2 DER signatures are at most 2·(n+3)+2 bytes
    for an n-byte order (72 for 256-bit curves, 104 for P-384).
    """
    info = cert.public_key
    if info.algorithm == "rsa":
        return (info.bit_size + 7) // 8
    n = (info.bit_size + 7) // 8
    return 2 * (n + 3) + 2


class KeySigner(Signer):
    """A pyHanko `Signer` over a `pki.PrivateKey` that stays loaded.

    The signature mechanism is the key's own (`PublicKey.signature_algorithm`),
    so the CMS signerInfo, the document digest and the raw signature agree.
    """

    def __init__(self, key: pki.PrivateKey, cert: x509.Certificate,
                 chain: Iterable[x509.Certificate] = (), *, distid: bytes | None = None,
                 embed_roots: bool = True) -> None:
        public = key.public_key()
        if public.to_der() != cert.public_key.dump():
            raise pki.CertificateError("the certificate does not belong to this key",
                                       subject=cert.subject.human_friendly)
        if distid is not None and key.algorithm != "sm2":
            raise ValueError(f"a distinguishing ID applies to SM2 keys only, not {key.algorithm}")
        self._key = key
        self._distid = distid
        self._placeholder = bytes(signature_placeholder_size(cert))
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore.from_certs([cert, *chain]),
            signature_mechanism=public.signature_algorithm(),
            embed_roots=embed_roots,
        )

    @property
    def key_algorithm(self) -> str:
        return self._key.algorithm

    @property
    def digest_algorithm(self) -> str:
        """The document digest this signer uses (sha256, sha384 or sm3)."""
        return get_cms_hash_algo_for_mechanism(self.signature_mechanism)

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        # `data` is the DER of the signed attributes; the key hashes it itself
        # (SHA-2 for RSA/ECDSA, SM3 over Z ‖ data for SM2).
        if digest_algorithm != self.digest_algorithm:
            raise ValueError(f"{self._key.algorithm} signs with {self.digest_algorithm}, "
                             f"not {digest_algorithm}")
        if dry_run:
            return self._placeholder
        if self._key.algorithm == "sm2":
            return self._key.sign(data, distid=self._distid)
        return self._key.sign(data)


def make_signer(key: pki.PrivateKey, cert: x509.Certificate,
                chain: Iterable[x509.Certificate] = (), distid: bytes | None = None) -> KeySigner:
    """The pyHanko signer for a seal key and its certificate chain.

    `distid` is the SM2 distinguishing ID (default GM/T 0009's
    ``1234567812345678``); it must stay None for RSA and ECDSA keys.
    """
    if isinstance(cert, bytes):
        cert = x509.Certificate.load(cert)
    chain = [x509.Certificate.load(c) if isinstance(c, bytes) else c for c in chain]
    return KeySigner(key, cert, chain, distid=distid)

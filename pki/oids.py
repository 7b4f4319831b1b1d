"""Chinese commercial-cryptography OIDs, registered with asn1crypto once, at import.

asn1crypto knows none of the SM2/SM3/SM4 identifiers.  Every module that
builds or parses ASN.1 imports this module (``pki/__init__`` does it first),
so the registration happens exactly once per process and before any parse.
pyHanko and pyhanko-certvalidator use the same asn1crypto classes, so the
names registered here are the ones they see.
"""
from __future__ import annotations

from asn1crypto import algos, core, keys

SM2_CURVE = "1.2.156.10197.1.301"
SM3 = "1.2.156.10197.1.401"
HMAC_SM3 = "1.2.156.10197.1.401.2"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM4_CBC = "1.2.156.10197.1.104.2"

#: asn1crypto names (hash_signature, in asn1crypto's own style)
SM3_NAME = "sm3"
SM2_SM3_NAME = "sm3_sm2"
SM2_CURVE_NAME = "sm2p256v1"
SM4_CBC_NAME = "sm4_cbc"


def _add(cls: type, oid: str, name: str) -> None:
    cls._map[oid] = name
    if getattr(cls, "_reverse_map", None) is not None:
        cls._reverse_map[name] = oid


def _register() -> None:
    if SM2_CURVE in keys.NamedCurve._map:
        return
    keys.NamedCurve.register(SM2_CURVE_NAME, SM2_CURVE, 32)
    _add(algos.DigestAlgorithmId, SM3, SM3_NAME)
    _add(algos.HmacAlgorithmId, HMAC_SM3, SM3_NAME)
    _add(algos.SignedDigestAlgorithmId, SM2_WITH_SM3, SM2_SM3_NAME)
    _add(algos.EncryptionAlgorithmId, SM4_CBC, SM4_CBC_NAME)
    algos.EncryptionAlgorithm._oid_specs[SM4_CBC_NAME] = core.OctetString

    # asn1crypto maps signature names to (signature, hash) inside property
    # bodies; wrap them so SM2-with-SM3 answers ("sm2", "sm3").
    sig_prop = algos.SignedDigestAlgorithm.signature_algo
    hash_prop = algos.SignedDigestAlgorithm.hash_algo

    def signature_algo(self):  # type: ignore[no-untyped-def]
        if self["algorithm"].native == SM2_SM3_NAME:
            return "sm2"
        return sig_prop.fget(self)

    def hash_algo(self):  # type: ignore[no-untyped-def]
        if self["algorithm"].native == SM2_SM3_NAME:
            return SM3_NAME
        return hash_prop.fget(self)

    algos.SignedDigestAlgorithm.signature_algo = property(signature_algo)
    algos.SignedDigestAlgorithm.hash_algo = property(hash_algo)


_register()

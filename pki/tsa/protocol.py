"""RFC 3161 messages (asn1crypto.tsp declares them): strict request parsing, token assembly.

A TSA answers many requests with one certificate and one key, so everything in a
token except the serial, genTime, imprint, nonce and the signature is the same
from one token to the next.  `TokenBuilder` encodes those parts once and then
puts each token together from DER pieces:

    TimeStampResp { status { granted },
      ContentInfo { signedData, [0] SignedData { version 3, { digestAlgorithm },
        { id-ct-TSTInfo, [0] OCTET STRING { TSTInfo } },
        [0] { TSA certificate }                         -- when the request asks (certReq)
        { SignerInfo { version 1, issuerAndSerialNumber, digestAlgorithm,
            [0] { contentType, messageDigest, signingCertificateV2 { ESSCertIDv2 } },
            signatureAlgorithm, signature } } } } }

    TSTInfo { version 1, policy, messageImprint (the request's, byte for byte), serialNumber,
              genTime, accuracy, nonce (echoed), tsa [0] { directoryName } }

RSA and ECDSA TSAs sign with their key's hash (SHA-256, or SHA-384 for P-384);
an SM2 TSA signs SM2-with-SM3 over SM3(Z ‖ signed attributes) with its
distinguishing ID, and its ESSCertIDv2 names the certificate by its SM3 hash
(GM/T 0033).  A test parses every piece with asn1crypto and OpenSSL.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509

from .. import oids
from ..algorithms import PublicKey
from ..der import element, integer, tlv
from ..der import generalized_time as der_time
from ..sm2 import sm3
from . import asn1  # noqa: F401  (RFC 3161: a rejection has no token)
from .errors import FAILURE_NAMES, RequestRefused

__all__ = ["HASHES", "TimestampRequest", "TokenBuilder", "failure_response", "parse_request",
           "hash_data", "build_request"]

#: imprint hash algorithms: asn1crypto name -> (digest size, function)
HASHES: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "sha256": (32, lambda d: hashlib.sha256(d).digest()),
    "sha384": (48, lambda d: hashlib.sha384(d).digest()),
    "sha512": (64, lambda d: hashlib.sha512(d).digest()),
    oids.SM3_NAME: (32, sm3),
}
#: a nonce is at most this many octets (OpenSSL sends 8; RFC 3161 sets no bound, we do)
MAX_NONCE_OCTETS = 32
#: requests larger than this are not timestamp requests
MAX_REQUEST_BYTES = 8192


def hash_data(hash_algorithm: str, data: bytes) -> bytes:
    try:
        return HASHES[hash_algorithm][1](data)
    except KeyError:
        raise ValueError(f"unsupported hash algorithm {hash_algorithm!r} "
                         f"(one of {', '.join(HASHES)})") from None


# --------------------------------------------------------------------------- DER pieces

_tlv, _integer, _der_element = tlv, integer, element


def generalized_time(at: datetime) -> bytes:
    """GeneralizedTime to the millisecond, fraction without trailing zeros (RFC 3161 §2.4.2)."""
    return der_time(at, millis=True)


_OCTETS = 0x04
_SEQUENCE = 0x30
_SET = 0x31
_CONTEXT0 = 0xA0
_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
_TST_INFO = core.ObjectIdentifier("1.2.840.113549.1.9.16.1.4").dump()
_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()
_GRANTED = _tlv(_SEQUENCE, _integer(0))


# --------------------------------------------------------------------------- requests

@dataclass(frozen=True)
class TimestampRequest:
    """A parsed, checked TimeStampReq."""

    hash_algorithm: str             # asn1crypto name: sha256, sha384, sha512, sm3
    imprint: bytes
    policy: str | None              # the requested policy OID, if any
    nonce: int | None
    cert_req: bool
    imprint_der: bytes              # the request's MessageImprint, copied into the token as it came

    def __post_init__(self) -> None:
        size = HASHES.get(self.hash_algorithm, (None,))[0]
        if size is None or len(self.imprint) != size:
            raise ValueError("imprint does not fit its hash algorithm")


#: the DER of the imprint hash OIDs, for the fast path
_HASH_OIDS = {algos.DigestAlgorithmId(name).dump(): name for name in HASHES}


def _fast_request(der: bytes, hashes: frozenset[str] | set[str], policy_der: bytes) -> TimestampRequest | None:
    """The common, well-formed request read without building ASN.1 objects (a tenth of asn1crypto's
    time per token); None for anything else — `parse_request` then reads it fully and names the
    failure.  A test checks that both readings agree."""
    outer = _der_element(der, 0)
    if outer is None or outer[0] != 0x30 or outer[2] != len(der):
        return None
    pos = outer[1]
    if der[pos:pos + 3] != b"\x02\x01\x01":               # version 1
        return None
    pos += 3
    imprint = _der_element(der, pos)
    if imprint is None or imprint[0] != 0x30:
        return None
    algorithm = _der_element(der, imprint[1])
    if algorithm is None or algorithm[0] != 0x30:
        return None
    oid = _der_element(der, algorithm[1])
    if oid is None or oid[0] != 0x06:
        return None
    name = _HASH_OIDS.get(der[algorithm[1]:oid[2]])
    if name is None or name not in hashes or der[oid[2]:algorithm[2]] not in (b"", b"\x05\x00"):
        return None
    digest = _der_element(der, algorithm[2])
    if digest is None or digest[0] != 0x04 or digest[2] != imprint[2] or \
            digest[2] - digest[1] != HASHES[name][0]:
        return None
    imprint_der = der[pos:imprint[2]]
    pos = imprint[2]
    requested = nonce = None
    cert_req = False
    element = _der_element(der, pos)
    if element is not None and element[0] == 0x06:        # reqPolicy
        if der[pos:element[2]] != policy_der:
            return None
        requested, pos = True, element[2]
        element = _der_element(der, pos)
    if element is not None and element[0] == 0x02:        # nonce: positive, minimal, at most 32 octets
        body = der[element[1]:element[2]]
        if not body or len(body) > MAX_NONCE_OCTETS + 1 or body[0] & 0x80 or \
                (len(body) > 1 and body[0] == 0 and body[1] < 0x80) or \
                (len(body) == MAX_NONCE_OCTETS + 1 and body[0] != 0):
            return None
        nonce, pos = int.from_bytes(body, "big"), element[2]
        element = _der_element(der, pos)
    if element is not None and element[0] == 0x01:        # certReq: DER TRUE (a FALSE is not written)
        if der[element[1]:element[2]] != b"\xff":
            return None
        cert_req, pos = True, element[2]
    if pos != len(der):                                   # extensions, or anything else
        return None
    return TimestampRequest(name, der[digest[1]:digest[2]], None if requested is None else "", nonce, cert_req,
                            imprint_der)


def parse_request(der: bytes, *, hashes: frozenset[str] | set[str], policy: str) -> TimestampRequest:
    """Parse a DER TimeStampReq strictly; raise `RequestRefused` with the RFC 3161 failure:
    badDataFormat (not one DER TimeStampReq), badRequest (version, imprint length, nonce),
    badAlg (a hash this TSA does not accept), unacceptedPolicy, unacceptedExtension."""
    if not isinstance(der, (bytes, bytearray, memoryview)):
        raise TypeError("a timestamp request is bytes")
    der = bytes(der)
    if not der or len(der) > MAX_REQUEST_BYTES:
        raise RequestRefused("bad_data_format", "empty or oversized request")
    fast = _fast_request(der, hashes, _policy_der(policy))
    if fast is not None:
        if fast.policy is not None:
            return TimestampRequest(fast.hash_algorithm, fast.imprint, policy, fast.nonce, fast.cert_req,
                                    fast.imprint_der)
        return fast
    return _full_request(der, hashes, policy)


def _full_request(der: bytes, hashes: frozenset[str] | set[str], policy: str) -> TimestampRequest:
    """The request read with asn1crypto (strict), every refusal named."""
    try:
        req = tsp.TimeStampReq.load(der, strict=True)
        version = req["version"].native
        imprint = req["message_imprint"]
        hash_oid = imprint["hash_algorithm"]["algorithm"].dotted
        digest = imprint["hashed_message"].native
        params = imprint["hash_algorithm"]["parameters"]
        policy_field = req["req_policy"]
        requested = policy_field.dotted if policy_field.native is not None else None
        nonce = req["nonce"].native
        cert_req = bool(req["cert_req"].native)
        extensions = req["extensions"]
        has_extensions = extensions.native is not None and len(extensions) > 0
        imprint_der = imprint.dump()
    except (ValueError, TypeError, KeyError, OverflowError):
        raise RequestRefused("bad_data_format", "not a DER TimeStampReq") from None
    if version != "v1":
        raise RequestRefused("bad_request", f"version {version} (only 1)")
    name = algos.DigestAlgorithmId._map.get(hash_oid)
    if name not in HASHES:
        raise RequestRefused("bad_alg", f"hash algorithm {hash_oid} is not known")
    if name not in hashes:
        raise RequestRefused("bad_alg", f"this TSA does not accept {name} imprints "
                                        f"(it accepts {', '.join(sorted(hashes))})")
    if params.native is not None:
        raise RequestRefused("bad_request", "hash algorithm parameters must be absent or NULL")
    if len(digest) != HASHES[name][0]:
        raise RequestRefused("bad_request", f"a {name} imprint is {HASHES[name][0]} octets, not {len(digest)}")
    if requested is not None and requested != policy:
        raise RequestRefused("unaccepted_policy", f"policy {requested} (this TSA issues under {policy})")
    if nonce is not None and (nonce < 0 or nonce.bit_length() > 8 * MAX_NONCE_OCTETS):
        raise RequestRefused("bad_request", f"the nonce is negative or longer than {MAX_NONCE_OCTETS} octets")
    if has_extensions:
        raise RequestRefused("unaccepted_extension", "this TSA accepts no request extensions")
    return TimestampRequest(name, digest, requested, nonce, cert_req, imprint_der)


_POLICY_DER: dict[str, bytes] = {}


def _policy_der(policy: str) -> bytes:
    der = _POLICY_DER.get(policy)
    if der is None:
        der = _POLICY_DER[policy] = core.ObjectIdentifier(policy).dump()
    return der


def build_request(digest: bytes, hash_algorithm: str, *, nonce: int | None, cert_req: bool = True,
                  policy: str | None = None) -> bytes:
    """A DER TimeStampReq (what `openssl ts -query` writes)."""
    if hash_algorithm not in HASHES or len(digest) != HASHES[hash_algorithm][0]:
        raise ValueError(f"a {hash_algorithm} digest of {HASHES.get(hash_algorithm, (0,))[0]} octets is needed")
    fields: dict[str, object] = {
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": hash_algorithm}, "hashed_message": digest},
        "cert_req": cert_req}
    if policy is not None:
        fields["req_policy"] = policy
    if nonce is not None:
        fields["nonce"] = nonce
    return tsp.TimeStampReq(fields).dump()


_FAILURE_BITS = {name: bit for bit, name in tsp.PKIFailureInfo._map.items()}
_FAILURE_BITS.setdefault("unaccepted_extension", 16)


def failure_response(failure: str, text: str | None = None) -> bytes:
    """TimeStampResp { status rejection, statusString, failInfo } — DER."""
    if failure not in FAILURE_NAMES:
        raise ValueError(f"unknown failure {failure!r}")
    bit = _FAILURE_BITS[failure]
    # PKIFailureInfo: a named BIT STRING, minimal (trailing zero bits dropped)
    octets = bytearray(bit // 8 + 1)
    octets[bit // 8] |= 0x80 >> (bit % 8)
    unused = 7 - bit % 8
    body = _integer(2)
    if text:
        body += _tlv(_SEQUENCE, _tlv(0x0C, text.encode("utf-8")))
    body += _tlv(0x03, bytes((unused,)) + bytes(octets))
    return _tlv(_SEQUENCE, _tlv(_SEQUENCE, body))


# --------------------------------------------------------------------------- tokens

def _accuracy(accuracy_ms: int) -> bytes:
    seconds, millis = divmod(accuracy_ms, 1000)
    body = (_integer(seconds) if seconds else b"") + (_tlv(0x80, _integer(millis)[2:]) if millis else b"")
    return _tlv(_SEQUENCE, body)


class TokenBuilder:
    """Encodes the parts of a TSA's tokens that never change once, and assembles each token.

    `cert` is the TSA certificate, `public` its key; `digest_algorithm` is the hash of the
    SignerInfo (the key's own: sha256, sha384, sm3)."""

    def __init__(self, cert: asn1_x509.Certificate, public: PublicKey, *, policy: str, accuracy_ms: int) -> None:
        if accuracy_ms < 1:
            raise ValueError("accuracy is at least 1 ms")
        self.digest_algorithm = public.digest_algorithm
        self._digest = HASHES[self.digest_algorithm][1]
        self.digest_size = HASHES[self.digest_algorithm][0]
        self._policy = core.ObjectIdentifier(policy).dump()
        self._accuracy = _accuracy(accuracy_ms)
        self._version = _integer(1)
        self._tsa_name = _tlv(_CONTEXT0, asn1_x509.GeneralName(name="directory_name", value=cert.subject).dump())
        digest_alg = algos.DigestAlgorithm({"algorithm": self.digest_algorithm}).dump()
        self._digest_algorithms = _tlv(_SET, digest_alg)
        ess_hash = "sm3" if public.algorithm == "sm2" else "sha256"
        ess = tsp.ESSCertIDv2({
            "hash_algorithm": {"algorithm": ess_hash},
            "cert_hash": HASHES[ess_hash][1](cert.dump()),
            "issuer_serial": {"issuer": [asn1_x509.GeneralName(name="directory_name", value=cert.issuer)],
                              "serial_number": cert.serial_number}})
        if ess_hash == "sha256":      # DER: a DEFAULT value is left out
            ess = tsp.ESSCertIDv2({"cert_hash": ess["cert_hash"], "issuer_serial": ess["issuer_serial"]})
        fixed = [cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}).dump(),
                 cms.CMSAttribute({"type": "signing_certificate_v2",
                                   "values": [{"certs": [ess]}]}).dump()]
        probe = _tlv(_SEQUENCE, _MESSAGE_DIGEST + _tlv(_SET, _tlv(_OCTETS, bytes(self.digest_size))))
        ordered = sorted(fixed + [probe])       # DER SET OF: encodings in ascending order
        at = ordered.index(probe)
        self._attrs_before = b"".join(ordered[:at])
        self._attrs_after = b"".join(ordered[at + 1:])
        self._attrs_length = sum(len(a) for a in ordered)
        sid = cms.IssuerAndSerialNumber({"issuer": cert.issuer, "serial_number": cert.serial_number}).dump()
        self._signer_head = _integer(1) + sid + digest_alg
        self._signature_algorithm = public.signature_algorithm().dump()
        self._certificates = _tlv(_CONTEXT0, cert.dump())
        self._signed_data_version = _integer(3)

    def tst_info(self, request: TimestampRequest, serial: int, gen_time: datetime) -> bytes:
        body = (self._version + self._policy + request.imprint_der + _integer(serial)
                + generalized_time(gen_time) + self._accuracy
                + (_integer(request.nonce) if request.nonce is not None else b"") + self._tsa_name)
        return _tlv(_SEQUENCE, body)

    def signed_attributes(self, tst_info: bytes) -> bytes:
        """The DER SET OF attributes the TSA key signs (RFC 5652 §5.4)."""
        digest = _tlv(_SEQUENCE, _MESSAGE_DIGEST + _tlv(_SET, _tlv(_OCTETS, self._digest(tst_info))))
        return _tlv(_SET, self._attrs_before + digest + self._attrs_after)

    def token(self, tst_info: bytes, signed_attributes: bytes, signature: bytes, *, with_certificate: bool) -> bytes:
        """The TimeStampToken (ContentInfo) DER."""
        signer_info = _tlv(_SEQUENCE, self._signer_head + b"\xa0" + signed_attributes[1:]
                           + self._signature_algorithm + _tlv(_OCTETS, signature))
        encap = _tlv(_SEQUENCE, _TST_INFO + _tlv(_CONTEXT0, _tlv(_OCTETS, tst_info)))
        signed_data = _tlv(_SEQUENCE, self._signed_data_version + self._digest_algorithms + encap
                           + (self._certificates if with_certificate else b"") + _tlv(_SET, signer_info))
        return _tlv(_SEQUENCE, _SIGNED_DATA + _tlv(_CONTEXT0, signed_data))


def granted_response(token: bytes) -> bytes:
    """TimeStampResp { status granted, token } — DER."""
    return _tlv(_SEQUENCE, _GRANTED + token)

"""OCSP (RFC 6960): strict request parsing, signed BasicOCSPResponses, error responses.

Requests come from the network, so `parse_ocsp_request` trusts nothing:
one DER structure, no trailing bytes, known hash algorithms with digests of
the right length, at least one CertID, a nonce of 1–32 octets (RFC 8954),
no unknown critical extension, and for signed requests a requestorName and
a signature that verifies with the first certificate sent along.  Anything
else is a `MalformedOcspRequest` that the responder answers with
``malformedRequest``.

Responses are declared with asn1crypto and signed through the key layer, for
all six algorithms alike.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

from asn1crypto import algos, core
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509

from . import oids
from .algorithms import PrivateKey, PublicKey
from .crl import REASONS
from .errors import InvalidSignature, PkiError
from .sm2 import sm3
from .x509 import (_check_algorithm_fits_key, _sign, _utc, certificate_public_key,
                   verify_signed_data)

__all__ = [
    "HASH_ALGORITHMS", "MalformedOcspRequest", "OcspCertId", "OcspRequestInfo", "SingleStatus",
    "assemble_ocsp_response", "basic_response", "build_ocsp_request", "build_ocsp_response", "issuer_hashes",
    "load_ocsp_response", "ocsp_error_response", "ocsp_response_tbs", "parse_ocsp_request",
    "verify_ocsp_response_signature",
]

#: CertID hash algorithms accepted in requests, with their digest sizes
HASH_ALGORITHMS = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64, oids.SM3_NAME: 32}
_ERROR_STATUSES = {"malformed_request", "internal_error", "try_later", "sig_required",
                   "sign_required", "unauthorized"}
_KNOWN_REQUEST_EXTENSIONS = {"nonce", "acceptable_responses", "preferred_signature_algorithms"}


class MalformedOcspRequest(PkiError):
    """An OCSP request that is not a well-formed RFC 6960 OCSPRequest."""

    def __init__(self, reason: str, **data: object) -> None:
        super().__init__(f"malformed OCSP request: {reason}", reason=reason, **data)
        self.reason = reason


@dataclass(frozen=True)
class OcspCertId:
    hash_algorithm: str          # asn1crypto digest name: sha1, sha256, …, sm3
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int

    def __post_init__(self) -> None:
        size = HASH_ALGORITHMS.get(self.hash_algorithm)
        if size is None:
            raise ValueError(f"unsupported CertID hash {self.hash_algorithm!r}")
        if len(self.issuer_name_hash) != size or len(self.issuer_key_hash) != size:
            raise ValueError(f"CertID hashes must be {size} octets for {self.hash_algorithm}")
        if not isinstance(self.serial, int) or isinstance(self.serial, bool):
            raise TypeError("serial must be an int")

    def to_asn1(self) -> asn1_ocsp.CertId:
        return asn1_ocsp.CertId({
            # parameters NULL, as OpenSSL writes them; responders compare the OID only
            "hash_algorithm": {"algorithm": self.hash_algorithm, "parameters": core.Null()},
            "issuer_name_hash": self.issuer_name_hash,
            "issuer_key_hash": self.issuer_key_hash,
            "serial_number": self.serial,
        })


@dataclass(frozen=True)
class OcspRequestInfo:
    cert_ids: tuple[OcspCertId, ...]
    nonce: bytes | None
    raw: bytes


def _hash(name: str, data: bytes) -> bytes:
    if name == oids.SM3_NAME:
        return sm3(data)
    if name not in HASH_ALGORITHMS:
        raise ValueError(f"unsupported hash {name!r} (one of {', '.join(HASH_ALGORITHMS)})")
    return hashlib.new(name, data).digest()


def _public_key_bits(cert: asn1_x509.Certificate) -> bytes:
    """subjectPublicKey's value without tag, length and unused-bits octet (RFC 6960 4.1.1)."""
    contents = cert["tbs_certificate"]["subject_public_key_info"]["public_key"].contents
    return contents[1:]


def issuer_hashes(issuer_cert: asn1_x509.Certificate, hash_algorithm: str = "sha1") -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CertID naming a certificate issued by `issuer_cert`."""
    subject_der = issuer_cert["tbs_certificate"]["subject"].dump()
    return _hash(hash_algorithm, subject_der), _hash(hash_algorithm, _public_key_bits(issuer_cert))


# --------------------------------------------------------------------------- requests

def _malformed(reason: str) -> MalformedOcspRequest:
    return MalformedOcspRequest(reason)


def parse_ocsp_request(der: bytes) -> OcspRequestInfo:
    """Parse and check an OCSPRequest (DER); `MalformedOcspRequest` for anything else."""
    if not isinstance(der, (bytes, bytearray, memoryview)):
        raise TypeError("OCSP request must be bytes")
    der = bytes(der)
    if not der:
        raise _malformed("empty request")
    from .ocsp_fast import fast_request
    fast = fast_request(der)           # the common shapes, read without ASN.1 objects
    if fast is not None:
        cert_ids, nonce = fast
        try:
            return OcspRequestInfo(tuple(OcspCertId(*cid) for cid in cert_ids), nonce, der)
        except ValueError:
            pass                       # the strict reading below names what is wrong
    return asn1_parse_ocsp_request(der)


def asn1_parse_ocsp_request(der: bytes) -> OcspRequestInfo:
    """`parse_ocsp_request` with asn1crypto, for every shape."""
    if not der:
        raise _malformed("empty request")
    try:
        request = asn1_ocsp.OCSPRequest.load(der, strict=True)
        request.native  # parse everything now: junk fails here
        # DER, not merely BER: re-encoding must give the same octets
        if asn1_ocsp.OCSPRequest.load(der).dump(force=True) != der:
            raise ValueError("not DER")
    except Exception as exc:  # asn1crypto raises several types for junk
        raise _malformed("not a DER OCSPRequest") from exc

    tbs = request["tbs_request"]
    if tbs["version"].native != "v1":
        raise _malformed("unsupported version")
    if len(tbs["request_list"]) == 0:
        raise _malformed("empty requestList")
    cert_ids = []
    for single in tbs["request_list"]:
        cert_id = single["req_cert"]
        algorithm = cert_id["hash_algorithm"]["algorithm"].native
        if algorithm not in HASH_ALGORITHMS:
            raise _malformed(f"unsupported CertID hash algorithm {algorithm}")
        try:
            cert_ids.append(OcspCertId(algorithm, cert_id["issuer_name_hash"].native,
                                       cert_id["issuer_key_hash"].native,
                                       cert_id["serial_number"].native))
        except ValueError as exc:
            raise _malformed(str(exc)) from None
        for extension in single["single_request_extensions"]:
            if extension["critical"].native:
                raise _malformed(f"unsupported critical request extension {extension['extn_id'].dotted}")

    nonce = None
    seen = set()
    for extension in tbs["request_extensions"]:
        name = extension["extn_id"].native
        if name in seen:
            raise _malformed(f"extension {name} appears twice")
        seen.add(name)
        if name not in _KNOWN_REQUEST_EXTENSIONS:
            if extension["critical"].native:
                raise _malformed(f"unsupported critical request extension {extension['extn_id'].dotted}")
            continue
        try:
            value = extension["extn_value"].parsed
            value.native
        except Exception as exc:
            raise _malformed(f"malformed {name} extension") from exc
        if name == "nonce":
            nonce = value.native
            if not 1 <= len(nonce) <= 32:  # RFC 8954 section 2.1
                raise _malformed("nonce must be 1 to 32 octets")

    signature = request["optional_signature"]
    if signature.native is not None:
        _check_request_signature(tbs, signature)
    return OcspRequestInfo(tuple(cert_ids), nonce, der)


def _check_request_signature(tbs: asn1_ocsp.TBSRequest, signature: asn1_ocsp.Signature) -> None:
    # RFC 6960 4.1.2: a signed request names its requestor
    if tbs["requestor_name"].native is None:
        raise _malformed("signed request without requestorName")
    certs = signature["certs"]
    if certs.native is None or len(certs) == 0:
        return  # nothing to check it with; the responder does not require signed requests
    try:
        key = certificate_public_key(certs[0])
    except PkiError as exc:
        raise _malformed("unusable requestor certificate") from exc
    try:
        verify_signed_data(key, signature["signature_algorithm"], signature["signature"].native,
                           tbs.dump())
    except InvalidSignature as exc:
        raise _malformed("request signature does not verify") from exc


def build_ocsp_request(cert_ids: Sequence[OcspCertId], *, nonce: bytes | None = None) -> bytes:
    """An unsigned OCSPRequest (DER), for clients and tests."""
    if not cert_ids:
        raise ValueError("an OCSP request names at least one certificate")
    tbs: dict[str, object] = {"request_list": [{"req_cert": cid.to_asn1()} for cid in cert_ids]}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "critical": False, "extn_value": nonce}]
    return asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump()


# --------------------------------------------------------------------------- responses

@dataclass(frozen=True)
class SingleStatus:
    """What the responder says about one certificate."""

    cert_id: OcspCertId
    status: str                       # "good" | "revoked" | "unknown"
    this_update: datetime
    next_update: datetime | None
    revoked_at: datetime | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.cert_id, OcspCertId):
            raise TypeError("cert_id must be an OcspCertId")
        if self.status not in ("good", "revoked", "unknown"):
            raise ValueError(f"status must be good, revoked or unknown, not {self.status!r}")
        object.__setattr__(self, "this_update", _utc(self.this_update, "this_update"))
        if self.next_update is not None:
            object.__setattr__(self, "next_update", _utc(self.next_update, "next_update"))
            if self.next_update <= self.this_update:
                raise ValueError("next_update must be later than this_update")
        if self.status == "revoked":
            if self.revoked_at is None:
                raise ValueError("a revoked status needs revoked_at")
            object.__setattr__(self, "revoked_at", _utc(self.revoked_at, "revoked_at"))
            if self.reason is not None and self.reason not in REASONS:
                raise ValueError(f"unknown revocation reason {self.reason!r}")
            if self.reason == "remove_from_crl":
                raise ValueError("removeFromCRL is not a revocation: answer good")
        elif self.revoked_at is not None or self.reason is not None:
            raise ValueError(f"a {self.status} status has no revocation time or reason")


def _generalized(value: datetime) -> core.GeneralizedTime:
    return core.GeneralizedTime(_utc(value, "time"))


def _single_response(status: SingleStatus) -> dict[str, object]:
    if status.status == "revoked":
        revoked: dict[str, object] = {"revocation_time": _generalized(status.revoked_at)}  # type: ignore[arg-type]
        if status.reason is not None:
            revoked["revocation_reason"] = status.reason
        cert_status = asn1_ocsp.CertStatus(name="revoked", value=revoked)
    else:
        cert_status = asn1_ocsp.CertStatus(name=status.status, value=status.status)
    single: dict[str, object] = {"cert_id": status.cert_id.to_asn1(), "cert_status": cert_status,
                                 "this_update": _generalized(status.this_update)}
    if status.next_update is not None:
        single["next_update"] = _generalized(status.next_update)
    return single


def build_ocsp_response(*, statuses: Sequence[SingleStatus], responder_cert: asn1_x509.Certificate,
                        responder_key: PrivateKey, produced_at: datetime, nonce: bytes | None = None,
                        extra_certs: Sequence[asn1_x509.Certificate] = (),
                        distid: bytes | None = None, responder_id_by_key: bool = True) -> bytes:
    """A successful OCSPResponse (DER) holding a BasicOCSPResponse signed by `responder_key`.

    The responder certificate (then `extra_certs`) travels in ``certs``; the
    ResponderID is the SHA-1 of its key (RFC 6960 4.2.2.3) or its name.  The
    signature is checked with the responder certificate's key before it is
    returned, which also proves key and certificate belong together.
    """
    public_key = responder_key.public_key()
    if certificate_public_key(responder_cert) != public_key:
        raise ValueError("responder_key does not belong to responder_cert")
    tbs_der = ocsp_response_tbs(statuses=statuses, responder_cert=responder_cert, produced_at=produced_at,
                                nonce=nonce, responder_id_by_key=responder_id_by_key)
    algorithm = public_key.signature_algorithm()
    _check_algorithm_fits_key(algorithm, responder_key, "the responder key's algorithm")
    signature = _sign(responder_key, tbs_der, distid)
    verify_signed_data(public_key, algorithm, signature, tbs_der, distid=distid)
    return assemble_ocsp_response(tbs_der, signature, responder_cert=responder_cert, algorithm=algorithm,
                                  extra_certs=extra_certs)


def ocsp_response_tbs(*, statuses: Sequence[SingleStatus], responder_cert: asn1_x509.Certificate,
                      produced_at: datetime, nonce: bytes | None = None, responder_id_by_key: bool = True) -> bytes:
    """The DER ResponseData a responder signs (`build_ocsp_response`'s first half; the status
    service signs it in its signing pool and calls `assemble_ocsp_response`).  Written from DER
    pieces (`pki.ocsp_fast`; a test compares it with `asn1_response_tbs`)."""
    if not statuses:
        raise ValueError("an OCSP response answers at least one CertID")
    if responder_id_by_key:
        from .ocsp_fast import response_data
        return response_data([((s.cert_id.hash_algorithm, s.cert_id.issuer_name_hash, s.cert_id.issuer_key_hash,
                                 s.cert_id.serial), s.status, s.this_update, s.next_update, s.revoked_at, s.reason)
                                for s in statuses], responder_cert, produced_at, nonce)
    return asn1_response_tbs(statuses=statuses, responder_cert=responder_cert, produced_at=produced_at, nonce=nonce,
                             responder_id_by_key=False)


def asn1_response_tbs(*, statuses: Sequence[SingleStatus], responder_cert: asn1_x509.Certificate,
                      produced_at: datetime, nonce: bytes | None = None, responder_id_by_key: bool = True) -> bytes:
    """`ocsp_response_tbs` built with asn1crypto (the responder named by key hash or by name)."""
    if not statuses:
        raise ValueError("an OCSP response answers at least one CertID")
    if responder_id_by_key:
        responder_id = asn1_ocsp.ResponderId(name="by_key",
                                             value=hashlib.sha1(_public_key_bits(responder_cert)).digest())
    else:
        responder_id = asn1_ocsp.ResponderId(name="by_name", value=responder_cert["tbs_certificate"]["subject"])
    data: dict[str, object] = {
        "responder_id": responder_id,
        "produced_at": _generalized(produced_at),
        "responses": [_single_response(status) for status in statuses],
    }
    if nonce is not None:
        data["response_extensions"] = [{"extn_id": "nonce", "critical": False, "extn_value": nonce}]
    return asn1_ocsp.ResponseData(data).dump()


def assemble_ocsp_response(tbs_der: bytes, signature: bytes, *, responder_cert: asn1_x509.Certificate,
                           algorithm: algos.SignedDigestAlgorithm,
                           extra_certs: Sequence[asn1_x509.Certificate] = ()) -> bytes:
    """The OCSPResponse around a signed ResponseData (DER pieces; a test compares it with
    `asn1_assemble_ocsp_response`)."""
    from .ocsp_fast import ocsp_response
    return ocsp_response(tbs_der, signature, algorithm.dump(), [c.dump() for c in (responder_cert, *extra_certs)])


def asn1_assemble_ocsp_response(tbs_der: bytes, signature: bytes, *, responder_cert: asn1_x509.Certificate,
                                algorithm: algos.SignedDigestAlgorithm,
                                extra_certs: Sequence[asn1_x509.Certificate] = ()) -> bytes:
    """`assemble_ocsp_response` built with asn1crypto."""
    basic = asn1_ocsp.BasicOCSPResponse({
        "tbs_response_data": asn1_ocsp.ResponseData.load(tbs_der),
        "signature_algorithm": algorithm,
        "signature": signature,
        "certs": [asn1_x509.Certificate.load(c.dump()) for c in (responder_cert, *extra_certs)],
    })
    return asn1_ocsp.OCSPResponse({
        "response_status": "successful",
        "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
    }).dump()


def ocsp_error_response(status: str) -> bytes:
    """An unsuccessful OCSPResponse (no responseBytes): malformed_request, internal_error, try_later,
    sig_required, unauthorized."""
    if status not in _ERROR_STATUSES:
        raise ValueError(f"unknown OCSP error status {status!r}")
    return asn1_ocsp.OCSPResponse({
        "response_status": "sign_required" if status == "sig_required" else status}).dump()


def load_ocsp_response(der: bytes) -> asn1_ocsp.OCSPResponse:
    try:
        response = asn1_ocsp.OCSPResponse.load(bytes(der), strict=True)
        response.native
    except Exception as exc:
        raise PkiError("not a DER OCSPResponse", field="ocsp_response") from exc
    return response


def basic_response(response: asn1_ocsp.OCSPResponse) -> asn1_ocsp.BasicOCSPResponse:
    """The BasicOCSPResponse inside a successful OCSPResponse."""
    if response["response_status"].native != "successful":
        raise PkiError(f"OCSP response status is {response['response_status'].native}",
                       field="ocsp_response")
    return response["response_bytes"]["response"].parsed


def verify_ocsp_response_signature(response: asn1_ocsp.OCSPResponse, responder_public_key: PublicKey, *,
                                   distid: bytes | None = None) -> None:
    """Raise `InvalidSignature` unless `responder_public_key` signed the BasicOCSPResponse."""
    basic = basic_response(response)
    verify_signed_data(responder_public_key, basic["signature_algorithm"], basic["signature"].native,
                       basic["tbs_response_data"].dump(), distid=distid)

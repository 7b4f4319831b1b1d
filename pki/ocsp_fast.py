"""OCSP on the status service's hot path, without building ASN.1 objects.

An answer signed on demand (a nonce, an unknown serial, several CertIDs) cost the HTTP worker
2.5 ms of asn1crypto work around a 0.7 ms RSA signature: reading the request twice (strict
parse, then a DER round trip), building the ResponseData, then the BasicOCSPResponse around
the signature.  Under a flood of such requests that work, done in the worker's event loop,
was what slowed pre-signed answers down.  Here the common shapes are read and written from
DER pieces:

* `fast_request` reads an unsigned request of CertIDs with at most a nonce extension; anything
  else (signatures, other extensions, versions, requestor names, non-DER) returns None and
  `pki.ocsp.parse_ocsp_request` reads it strictly;
* `response_data` and `ocsp_response` write exactly what `pki.ocsp.ocsp_response_tbs` and
  `assemble_ocsp_response` write with asn1crypto.

Tests hold both readings and both writings together.
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Sequence

from asn1crypto import algos, core
from asn1crypto import x509 as asn1_x509

from .der import element, generalized_time, integer, tlv

__all__ = ["fast_request", "response_data", "ocsp_response"]

_SEQ, _OCTETS, _OID = 0x30, 0x04, 0x06
_NONCE_OID = core.ObjectIdentifier("1.3.6.1.5.5.7.48.1.2").dump()
_BASIC_OID = core.ObjectIdentifier("1.3.6.1.5.5.7.48.1.1").dump()
#: CertID hash algorithm OIDs (DER) → (asn1crypto name, digest size)
_HASHES = {algos.DigestAlgorithmId(name).dump(): (name, size)
           for name, size in (("sha1", 20), ("sha256", 32), ("sha384", 48), ("sha512", 64), ("sm3", 32))}
_REASON_CODES = {"unspecified": 0, "key_compromise": 1, "ca_compromise": 2, "affiliation_changed": 3,
                 "superseded": 4, "cessation_of_operation": 5, "certificate_hold": 6, "privilege_withdrawn": 9,
                 "aa_compromise": 10}


def fast_request(der: bytes) -> tuple[list[tuple[str, bytes, bytes, int]], bytes | None] | None:
    """([(hash algorithm, issuerNameHash, issuerKeyHash, serial)], nonce) of a common request, or None."""
    outer = element(der, 0)
    if outer is None or outer[0] != _SEQ or outer[2] != len(der):
        return None
    tbs = element(der, outer[1])
    if tbs is None or tbs[0] != _SEQ or tbs[2] != len(der):          # no optionalSignature
        return None
    listing = element(der, tbs[1])
    if listing is None or listing[0] != _SEQ or listing[1] == listing[2]:
        return None
    cert_ids = []
    pos = listing[1]
    while pos < listing[2]:
        request = element(der, pos)
        if request is None or request[0] != _SEQ or request[2] > listing[2]:
            return None
        cert_id = _cert_id(der, request[1])
        if cert_id is None or cert_id[1] != request[2]:               # no singleRequestExtensions
            return None
        cert_ids.append(cert_id[0])
        pos = request[2]
    nonce = None
    if listing[2] != tbs[2]:
        nonce = _nonce_extension(der, listing[2], tbs[2])
        if nonce is None:
            return None
    return cert_ids, nonce


def _cert_id(der: bytes, pos: int) -> tuple[tuple[str, bytes, bytes, int], int] | None:
    cid = element(der, pos)
    if cid is None or cid[0] != _SEQ:
        return None
    algorithm = element(der, cid[1])
    if algorithm is None or algorithm[0] != _SEQ:
        return None
    oid = element(der, algorithm[1])
    if oid is None or oid[0] != _OID or der[oid[2]:algorithm[2]] not in (b"", b"\x05\x00"):
        return None
    known = _HASHES.get(der[algorithm[1]:oid[2]])
    if known is None:
        return None
    name, size = known
    name_hash = element(der, algorithm[2])
    key_hash = element(der, name_hash[2]) if name_hash is not None else None
    serial = element(der, key_hash[2]) if key_hash is not None else None
    if name_hash is None or key_hash is None or serial is None or name_hash[0] != _OCTETS or \
            key_hash[0] != _OCTETS or serial[0] != 0x02 or serial[2] != cid[2]:
        return None
    if name_hash[2] - name_hash[1] != size or key_hash[2] - key_hash[1] != size:
        return None
    body = der[serial[1]:serial[2]]
    if not body or body[0] & 0x80 or (len(body) > 1 and body[0] == 0 and body[1] < 0x80):
        return None                                                    # positive, minimal
    return (name, der[name_hash[1]:name_hash[2]], der[key_hash[1]:key_hash[2]], int.from_bytes(body, "big")), cid[2]


def _nonce_extension(der: bytes, pos: int, end: int) -> bytes | None:
    """[2] EXPLICIT Extensions holding exactly one non-critical nonce: its 1–32 octets."""
    wrapper = element(der, pos)
    if wrapper is None or wrapper[0] != 0xA2 or wrapper[2] != end:
        return None
    extensions = element(der, wrapper[1])
    if extensions is None or extensions[0] != _SEQ or extensions[2] != end:
        return None
    extension = element(der, extensions[1])
    if extension is None or extension[0] != _SEQ or extension[2] != end:
        return None
    oid = element(der, extension[1])
    if oid is None or der[extension[1]:oid[2]] != _NONCE_OID:
        return None
    value = element(der, oid[2])
    if value is None or value[0] != _OCTETS or value[2] != end:      # no critical flag
        return None
    inner = element(der, value[1])
    if inner is None or inner[0] != _OCTETS or inner[2] != value[2] or not 1 <= inner[2] - inner[1] <= 32:
        return None
    return der[inner[1]:inner[2]]


def _cert_id_der(hash_algorithm: str, name_hash: bytes, key_hash: bytes, serial: int) -> bytes:
    algorithm = tlv(_SEQ, algos.DigestAlgorithmId(hash_algorithm).dump() + b"\x05\x00")
    return tlv(_SEQ, algorithm + tlv(_OCTETS, name_hash) + tlv(_OCTETS, key_hash) + integer(serial))


def _single(cert_id: tuple[str, bytes, bytes, int], status: str, this_update: datetime,
            next_update: datetime | None, revoked_at: datetime | None, reason: str | None) -> bytes:
    if status == "good":
        cert_status = b"\x80\x00"
    elif status == "unknown":
        cert_status = b"\x82\x00"
    else:
        assert revoked_at is not None
        info = generalized_time(revoked_at)
        if reason is not None:
            info += tlv(0xA0, bytes((0x0A, 0x01, _REASON_CODES[reason])))
        cert_status = tlv(0xA1, info)
    body = _cert_id_der(*cert_id) + cert_status + generalized_time(this_update)
    if next_update is not None:
        body += tlv(0xA0, generalized_time(next_update))
    return tlv(_SEQ, body)


def response_data(statuses: Sequence[tuple[tuple[str, bytes, bytes, int], str, datetime, datetime | None,
                                            datetime | None, str | None]],
                  responder_cert: asn1_x509.Certificate, produced_at: datetime, nonce: bytes | None) -> bytes:
    """The DER ResponseData (responder by key hash) of `statuses`:
    ((hash, name hash, key hash, serial), status, thisUpdate, nextUpdate, revoked_at, reason)."""
    key_bits = responder_cert["tbs_certificate"]["subject_public_key_info"]["public_key"].contents[1:]
    responder = tlv(0xA2, tlv(_OCTETS, hashlib.sha1(key_bits).digest()))
    body = responder + generalized_time(produced_at) + tlv(_SEQ, b"".join(_single(*s) for s in statuses))
    if nonce is not None:
        extension = tlv(_SEQ, _NONCE_OID + tlv(_OCTETS, tlv(_OCTETS, nonce)))
        body += tlv(0xA1, tlv(_SEQ, extension))
    return tlv(_SEQ, body)


def ocsp_response(tbs: bytes, signature: bytes, signature_algorithm: bytes, certs: Sequence[bytes]) -> bytes:
    """OCSPResponse { successful, BasicOCSPResponse { tbs, algorithm, signature, [0] certs } }."""
    basic = tlv(_SEQ, tbs + signature_algorithm + tlv(0x03, b"\x00" + signature)
                + tlv(0xA0, tlv(_SEQ, b"".join(certs))))
    return tlv(_SEQ, b"\x0a\x01\x00" + tlv(0xA0, tlv(_SEQ, _BASIC_OID + tlv(_OCTETS, basic))))

"""SES_Signature: an electronic seal applied to a document (GB/T 38540 v4 and GM/T 0031 v1).

A top-level SEQUENCE of 2 elements is v1 {toSign, signature}; of 4–5 it is v4 {toSign, cert,
signatureAlgID, signature[, timeStamp]}.  The signer's signature covers the DER of TBS_Sign as
stored in the file (never re-encoded); SM2 signatures use the distinguishing ID
1234567812345678 unless told otherwise and are DER (r, s) or, from some producers, raw r ‖ s.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from asn1crypto import core

from pki.algorithms import PrivateKey
from pki.errors import InvalidSignature, KeyFileError

from . import v4
from .der import bit_string_bytes, children, header
from .errors import SesFormatError
from .seal import SealData, check_signature_value, parse_seal

__all__ = ["SignatureData", "parse_signature", "build_signature", "verify_signer", "signer_public_key"]

SM2_WITH_SM3 = "1.2.156.10197.1.501"


@dataclass(frozen=True)
class SignatureData:
    """An SES_Signature, decoded; the byte strings are as stored."""
    version: int                    # 4 (GB/T 38540) or 1 (GM/T 0031)
    tbs_der: bytes                  # TBS_Sign, what the signer signed
    seal_der: bytes                 # the SES_Seal inside TBS_Sign
    seal: SealData
    time_info: datetime | None      # the signing time the signer states
    time_text: str
    data_hash: bytes
    property_info: str
    signer_cert: bytes
    signature_alg_oid: str
    signature: bytes
    timestamp: bytes | None = None  # DER TimeStampToken over the signature value (v4 only)


def _text_time(text: str) -> datetime | None:
    value = text.strip().rstrip("\x00")
    for fmt in ("%Y%m%d%H%M%SZ", "%Y%m%d%H%M%S.%fZ", "%y%m%d%H%M%SZ", "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%SZ", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    return None


def parse_signature(der: bytes) -> SignatureData:
    """Decode an SES_Signature of either version; SesFormatError names what does not parse."""
    der = bytes(der)
    try:
        parts = children(der)
    except SesFormatError as exc:
        raise SesFormatError(f"SignedValue is not a DER SES_Signature ({exc})") from None
    try:
        if len(parts) in (4, 5):
            return _parse_v4(parts)
        if len(parts) == 2:
            return _parse_v1(parts)
    except SesFormatError as exc:
        raise SesFormatError(f"the SES_Signature does not parse: {exc}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise SesFormatError(f"the SES_Signature does not parse: {exc}") from None
    raise SesFormatError(f"the SES_Signature does not parse: it has {len(parts)} elements, not 2 (GM/T 0031) "
                         "or 4–5 (GB/T 38540)")


def _parse_v4(parts: list[bytes]) -> SignatureData:
    tbs = parts[0]
    fields = children(tbs)
    if len(fields) not in (5, 6):
        raise SesFormatError(f"TBS_Sign v4 has 5 or 6 elements, not {len(fields)}")
    version = core.Integer.load(fields[0]).native
    seal_der = fields[1]
    seal = parse_seal(seal_der)
    time_value = core.load(fields[2])
    time_info = time_value.native if isinstance(time_value.native, datetime) else None
    timestamp = None
    if len(parts) == 5:
        tag, hl, length = header(parts[4])
        if tag != 0xA0:
            raise SesFormatError("timeStamp is not [0] EXPLICIT")
        timestamp = bit_string_bytes(parts[4][hl:hl + length])
    if version != 4:
        raise SesFormatError(f"TBS_Sign version {version} in a GB/T 38540 structure")
    return SignatureData(
        version=4, tbs_der=tbs, seal_der=seal_der, seal=seal, time_info=time_info,
        time_text=str(time_value.native) if time_info is None else time_info.strftime("%Y%m%d%H%M%SZ"),
        data_hash=bit_string_bytes(fields[3]), property_info=core.IA5String.load(fields[4]).native,
        signer_cert=core.OctetString.load(parts[1]).native,
        signature_alg_oid=core.ObjectIdentifier.load(parts[2]).dotted,
        signature=bit_string_bytes(parts[3]), timestamp=timestamp)


def _parse_v1(parts: list[bytes]) -> SignatureData:
    tbs = parts[0]
    fields = children(tbs)
    if len(fields) != 7:
        raise SesFormatError(f"TBS_Sign v1 has 7 elements, not {len(fields)}")
    seal_der = fields[1]
    seal = parse_seal(seal_der)
    text = bit_string_bytes(fields[2]).decode("ascii", "replace")
    return SignatureData(
        version=1, tbs_der=tbs, seal_der=seal_der, seal=seal, time_info=_text_time(text), time_text=text,
        data_hash=bit_string_bytes(fields[3]), property_info=core.IA5String.load(fields[4]).native,
        signer_cert=core.OctetString.load(fields[5]).native,
        signature_alg_oid=core.ObjectIdentifier.load(fields[6]).dotted,
        signature=bit_string_bytes(parts[1]))


@functools.lru_cache(maxsize=8)
def _loaded_seal(seal_der: bytes) -> v4.SESeal:
    """The SES_Seal as an asn1crypto value, parsed once per seal (a batch signs with one seal);
    it is only ever dumped, never changed, so its stored bytes go into TBS_Sign unchanged."""
    return v4.SESeal.load(seal_der)


def build_signature(*, seal_der: bytes, signing_time: datetime, data_hash: bytes, property_info: str,
                    signer_key: PrivateKey, signer_cert_der: bytes, distid: bytes | None,
                    timestamp: bytes | None = None,
                    timestamp_for: Callable[[bytes], bytes] | None = None) -> bytes:
    """A GB/T 38540 v4 SES_Signature: TBS_Sign {4, the SES_Seal as given, timeInfo, dataHash,
    propertyInfo}, the signer's certificate, SM2-with-SM3 over the DER of TBS_Sign (DER r, s), and
    optionally timeStamp: a DER TimeStampToken over the signature value — given as `timestamp`, or
    obtained by `timestamp_for(signature_value)` once the signature exists."""
    if signer_key.algorithm != "sm2":
        raise ValueError("a GB/T 38540 signature is SM2 with SM3")
    if timestamp is not None and timestamp_for is not None:
        raise ValueError("give the timestamp or the function that obtains it, not both")
    when = signing_time.astimezone(timezone.utc).replace(microsecond=0)
    tbs = v4.TBSSign({"version": 4, "eseal": _loaded_seal(bytes(seal_der)), "time_info": when,
                      "data_hash": data_hash, "property_info": property_info}).dump()
    signature = signer_key.sign(tbs, distid=distid)
    if timestamp_for is not None:
        timestamp = timestamp_for(signature)
    value = {"to_sign": v4.TBSSign.load(tbs), "cert": signer_cert_der, "signature_alg_id": SM2_WITH_SM3,
             "signature": signature}
    if timestamp is not None:
        value["time_stamp"] = timestamp
    return v4.SESSignature(value).dump()


def signer_public_key(cert_der: bytes):  # -> pki.PublicKey
    """The public key of a certificate, read leniently: other producers' certificates carry
    names in string types asn1crypto will not decode, which says nothing about the key."""
    from asn1crypto import x509 as asn1_x509
    from pki.algorithms import public_key_from_spki
    try:
        cert = asn1_x509.Certificate.load(bytes(cert_der))
        spki = cert["tbs_certificate"]["subject_public_key_info"]
        return public_key_from_spki(spki.dump())
    except Exception as exc:
        raise KeyFileError(f"the certificate's public key cannot be read ({exc})") from None


def verify_signer(data: SignatureData, *, distid: bytes | None) -> None:
    """The signer's signature over TBS_Sign (as stored); InvalidSignature when it fails."""
    key = signer_public_key(data.signer_cert)
    try:
        check_signature_value(key, data.signature_alg_oid, data.signature, data.tbs_der, distid=distid)
    except InvalidSignature as exc:
        raise InvalidSignature(f"the signer's signature over TBS_Sign does not verify ({exc.message})") from None

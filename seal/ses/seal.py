"""SES_Seal: the electronic seal itself (GB/T 38540 version 4, and GM/T 0031 "version 1").

What the seal maker (制章者) signs differs between the two standards, and this is where a
verifier decides the fate of a seal:

* GB/T 38540 (v4): the DER of SES_SealInfo alone — what every v4 producer signs;
* GM/T 0031 (v1): the DER of SEQUENCE { SES_SealInfo, cert, signatureAlgorithm }.

yinxin up to 0.1 signed its v4 seals by the v1 rule (`RULE_GMT0031` on a v4 structure), which
v4 verifiers reject; such seals are re-signed by their maker (`SealRegistry.resign`).  A seal
whose stored signature follows that old rule is recognised and named as such, never accepted
as a v4 seal.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import core

from pki.algorithms import PrivateKey, PublicKey
from pki.errors import InvalidSignature, UnknownAlgorithm

from . import v1, v4
from .der import bit_string_bytes, children
from .errors import SesFormatError

__all__ = ["ORGANISATION_SEAL", "PERSONAL_SEAL", "RULE_GBT38540", "RULE_GMT0031", "SealData",
           "MakerSignature", "build_seal_info", "sign_seal", "parse_seal", "maker_signature",
           "verify_seal", "maker_rule", "check_signature_value", "sm2_signature_der"]

ORGANISATION_SEAL, PERSONAL_SEAL = 1, 2
HEADER_ID, HEADER_VERSION = "ES", 4
#: what the maker signs: the DER of SES_SealInfo (GB/T 38540) or SEQUENCE{info, cert, alg} (GM/T 0031)
RULE_GBT38540, RULE_GMT0031 = "gbt38540", "gmt0031"

#: algorithm OIDs of the maker's or signer's signature, and the key algorithm family they need
SIGNATURE_OIDS = {
    "1.2.156.10197.1.501": "sm2",            # SM2 with SM3
    "1.2.840.113549.1.1.11": "rsa",          # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12": "rsa",
    "1.2.840.113549.1.1.13": "rsa",
    "1.2.840.10045.4.3.2": "ecdsa",
    "1.2.840.10045.4.3.3": "ecdsa",
}

#: certificate digest algorithms named in CertDigestObj.type
_DIGESTS = {"sm3": "sm3", "1.2.156.10197.1.401": "sm3", "sha1": "sha1", "1.3.14.3.2.26": "sha1",
            "sha256": "sha256", "sha-256": "sha256", "2.16.840.1.101.3.4.2.1": "sha256"}


@dataclass(frozen=True)
class SealData:
    """The content of an SES_Seal, decoded (either version)."""
    es_id: str
    vendor: str
    seal_type: int
    name: str
    certificates: tuple[bytes, ...]
    created: datetime
    valid_start: datetime
    valid_end: datetime
    picture_type: str
    picture: bytes
    width_mm: int
    height_mm: int
    maker_cert: bytes
    sign_alg_oid: str
    signed_value: bytes
    version: int = 4                          # the structure: 4 (GB/T 38540) or 1 (GM/T 0031)
    header_version: int = 4
    cert_digests: tuple[tuple[str, bytes], ...] = field(default=())   # certListType 2: (algorithm, digest)

    def lists_certificate(self, cert_der: bytes) -> bool:
        """Is `cert_der` in the seal's certList (as a certificate, or by its digest)?"""
        if cert_der in self.certificates:
            return True
        for algorithm, digest in self.cert_digests:
            name = _DIGESTS.get(algorithm.strip().lower())
            if name == "sm3":
                from pki.sm2 import sm3
                if sm3(cert_der) == digest:
                    return True
            elif name is not None and hashlib.new(name, cert_der).digest() == digest:
                return True
        return False


@dataclass(frozen=True)
class MakerSignature:
    """What the maker signed (as stored), by which rule, and the signature."""
    rule: str
    to_sign: bytes
    signature: bytes
    algorithm_oid: str
    maker_cert: bytes


def build_seal_info(*, es_id: str, vendor: str, seal_type: int, name: str, certificates: tuple[bytes, ...],
                    created: datetime, valid_start: datetime, valid_end: datetime, picture_type: str,
                    picture: bytes, width_mm: int, height_mm: int) -> v4.SESSealInfo:
    """A version-4 SES_SealInfo listing certificates (certListType 1)."""
    if seal_type not in (ORGANISATION_SEAL, PERSONAL_SEAL):
        raise ValueError("SES seal type is 1 (organisation) or 2 (personal)")
    return v4.SESSealInfo({
        "header": {"id": HEADER_ID, "version": HEADER_VERSION, "vid": vendor},
        "es_id": es_id,
        "property": {"type": seal_type, "name": name, "cert_list_type": 1,
                     "cert_list": v4.CertInfoList(list(certificates)),
                     "create_date": created, "valid_start": valid_start, "valid_end": valid_end},
        "picture": {"type": picture_type, "data": picture, "width": width_mm, "height": height_mm},
    })


def sign_seal(info: v4.SESSealInfo, *, maker_key: PrivateKey, maker_cert_der: bytes,
              distid: bytes | None) -> bytes:
    """DER SES_Seal (v4) whose maker signature covers the DER of SES_SealInfo (GB/T 38540)."""
    alg_oid = maker_key.public_key().signature_algorithm()["algorithm"].dotted
    info_der = info.dump()
    signature = maker_key.sign(info_der, distid=distid if maker_key.algorithm == "sm2" else None)
    return v4.SESeal({"e_seal_info": v4.SESSealInfo.load(info_der), "cert": maker_cert_der,
                      "sign_alg_id": alg_oid, "signed_value": signature}).dump()


def _time(value: core.Asn1Value) -> datetime:
    native = value.native
    if not isinstance(native, datetime):
        raise SesFormatError("a seal date is not a time")
    return native


def parse_seal(der: bytes) -> SealData:
    """Decode an SES_Seal of either version; SesFormatError (a SealError) for anything else."""
    try:
        parts = children(bytes(der))
        if len(parts) == 4:
            return _parse_v4(der)
        if len(parts) == 2:
            return _parse_v1(der)
        raise SesFormatError("not an SES_Seal")
    except SesFormatError as exc:
        if str(exc).startswith(("SES_Seal", "not an SES_Seal (header")):
            raise
        raise SesFormatError("not a valid GB/T 38540 SES_Seal encoding") from exc
    except Exception as exc:
        raise SesFormatError("not a valid GB/T 38540 SES_Seal encoding") from exc


def _check_header(header: v4.SESHeader, version: int) -> None:
    if header["id"].native != HEADER_ID:
        raise SesFormatError(f"not an SES_Seal (header id {header['id'].native!r})")
    if version == 4 and header["version"].native != HEADER_VERSION:
        raise SesFormatError(f"SES_Seal version {header['version'].native} is not supported "
                             f"(GB/T 38540-2020 is version {HEADER_VERSION})")


def _parse_v4(der: bytes) -> SealData:
    seal = v4.SESeal.load(bytes(der), strict=True)
    info = seal["e_seal_info"]
    header, prop, pic = info["header"], info["property"], info["picture"]
    _check_header(header, 4)
    list_type = prop["cert_list_type"].native
    raw_list = prop["cert_list"].dump()
    certificates: tuple[bytes, ...] = ()
    digests: tuple[tuple[str, bytes], ...] = ()
    if list_type == 1:
        certificates = tuple(c.native for c in v4.CertInfoList.load(raw_list, strict=True))
    elif list_type == 2:
        digests = tuple((d["type"].native, d["value"].native) for d in v4.CertDigestList.load(raw_list, strict=True))
    else:
        raise SesFormatError(f"SES_Seal certListType {list_type} is neither 1 nor 2")
    return SealData(
        es_id=info["es_id"].native, vendor=header["vid"].native, seal_type=prop["type"].native,
        name=prop["name"].native, certificates=certificates, created=_time(prop["create_date"]),
        valid_start=_time(prop["valid_start"]), valid_end=_time(prop["valid_end"]),
        picture_type=pic["type"].native, picture=pic["data"].native, width_mm=pic["width"].native,
        height_mm=pic["height"].native, maker_cert=seal["cert"].native,
        sign_alg_oid=seal["sign_alg_id"].dotted, signed_value=bit_string_bytes(children(der)[3]),
        version=4, header_version=header["version"].native, cert_digests=digests)


def _parse_v1(der: bytes) -> SealData:
    seal = v1.SESeal.load(bytes(der), strict=True)
    info, sign_info = seal["eseal_info"], seal["sign_info"]
    header, prop, pic = info["header"], info["property"], info["picture"]
    _check_header(header, 1)
    return SealData(
        es_id=info["es_id"].native, vendor=header["vid"].native, seal_type=prop["type"].native,
        name=prop["name"].native, certificates=tuple(c.native for c in prop["cert_list"]),
        created=_time(prop["create_date"]), valid_start=_time(prop["valid_start"]),
        valid_end=_time(prop["valid_end"]), picture_type=pic["type"].native, picture=pic["data"].native,
        width_mm=pic["width"].native, height_mm=pic["height"].native, maker_cert=sign_info["cert"].native,
        sign_alg_oid=sign_info["signature_algorithm"].dotted,
        signed_value=bit_string_bytes(children(children(der)[1])[2]),
        version=1, header_version=header["version"].native)


def _sequence(content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return b"\x30" + bytes([n]) + content
    size = (n.bit_length() + 7) // 8
    return b"\x30" + bytes([0x80 | size]) + n.to_bytes(size, "big") + content


def maker_signature(der: bytes, *, rule: str | None = None) -> MakerSignature:
    """The bytes the maker signed, as stored, and the signature.  `rule` None means the rule of
    the structure's standard; RULE_GMT0031 on a v4 seal cuts out what yinxin 0.1 signed."""
    data = parse_seal(der)
    parts = children(bytes(der))
    if data.version == 4:
        info, cert, alg = parts[0], parts[1], parts[2]
        rule = rule or RULE_GBT38540
    else:
        info = parts[0]
        cert, alg, _sig = children(parts[1])
        rule = rule or RULE_GMT0031
    to_sign = info if rule == RULE_GBT38540 else _sequence(info + cert + alg)
    return MakerSignature(rule, to_sign, data.signed_value, data.sign_alg_oid, data.maker_cert)


def sm2_signature_der(signature: bytes) -> bytes:
    """An SM2 signature as DER (r, s): some producers store the raw 64 octets r ‖ s."""
    if len(signature) == 64 and not (signature[0] == 0x30 and signature[1] in (0x44, 0x45, 0x46)):
        from pki.sm2.core import encode_signature
        return encode_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    return signature


def check_signature_value(public_key: PublicKey, algorithm_oid: str, signature: bytes, data: bytes, *,
                          distid: bytes | None) -> None:
    """Verify `signature` over `data` with `public_key` under the algorithm `algorithm_oid`:
    UnknownAlgorithm for an OID no key here can use, InvalidSignature when it does not verify."""
    family = SIGNATURE_OIDS.get(algorithm_oid)
    if family is None:
        raise UnknownAlgorithm(f"unknown signature algorithm OID {algorithm_oid}", algorithm=algorithm_oid)
    key_family = "sm2" if public_key.algorithm == "sm2" else (
        "rsa" if public_key.algorithm.startswith("rsa") else "ecdsa")
    expected = public_key.signature_algorithm()["algorithm"].dotted
    if family != key_family or (family != "sm2" and expected != algorithm_oid):
        raise InvalidSignature(f"the signature algorithm {algorithm_oid} does not match the "
                               f"{public_key.algorithm} key")
    try:
        if family == "sm2":
            public_key.verify(sm2_signature_der(signature), data, distid=distid)
        else:
            public_key.verify(signature, data)
    except InvalidSignature:
        raise
    except (ValueError, TypeError) as exc:       # a malformed signature value
        raise InvalidSignature(f"the signature value is malformed ({exc})") from None


def maker_rule(der: bytes, maker_public_key: PublicKey, *, distid: bytes | None) -> str | None:
    """Which rule the maker's signature verifies under (RULE_GBT38540 / RULE_GMT0031), or None."""
    data = parse_seal(der)
    rules = (RULE_GBT38540, RULE_GMT0031) if data.version == 4 else (RULE_GMT0031,)
    for rule in rules:
        signed = maker_signature(der, rule=rule)
        try:
            check_signature_value(maker_public_key, signed.algorithm_oid, signed.signature, signed.to_sign,
                                  distid=distid)
            return rule
        except InvalidSignature:
            continue
    return None


def verify_seal(der: bytes, maker_public_key: PublicKey, *, distid: bytes | None,
                accept_legacy: bool = False) -> SealData:
    """Check the seal maker's signature by the rule of the seal's standard (v4: over SES_SealInfo;
    v1: over SEQUENCE{SES_SealInfo, cert, algorithm}).  InvalidSignature when it does not verify —
    naming a v4 seal signed by the GM/T 0031 rule, which `accept_legacy` lets pass (only for
    yinxin's own records awaiting re-signing).  UnknownAlgorithm for an algorithm OID no key uses."""
    data = parse_seal(der)
    try:
        alg = maker_public_key.signature_algorithm()["algorithm"].dotted
    except Exception:  # pragma: no cover - every PublicKey has one
        alg = ""
    if data.sign_alg_oid not in SIGNATURE_OIDS:
        raise UnknownAlgorithm(f"unknown seal signature algorithm OID {data.sign_alg_oid}",
                               algorithm=data.sign_alg_oid, es_id=data.es_id)
    if alg != data.sign_alg_oid and not (maker_public_key.algorithm == "sm2" and
                                         SIGNATURE_OIDS[data.sign_alg_oid] == "sm2"):
        raise InvalidSignature("the seal's signature algorithm does not match the maker's key", es_id=data.es_id)
    rule = maker_rule(der, maker_public_key, distid=distid)
    if rule == (RULE_GBT38540 if data.version == 4 else RULE_GMT0031):
        return data
    if rule == RULE_GMT0031 and data.version == 4:
        if accept_legacy:
            return data
        raise InvalidSignature("the seal maker signed SEQUENCE{SES_SealInfo, cert, signAlgID} (the GM/T 0031 "
                               "rule) instead of SES_SealInfo as GB/T 38540 requires: v4 verifiers reject "
                               "this seal; its maker must re-sign it", es_id=data.es_id, rule=RULE_GMT0031)
    raise InvalidSignature("the seal maker's signature over the SES_Seal does not verify "
                           "(the seal was altered or made by someone else)", es_id=data.es_id)

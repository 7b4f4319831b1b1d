"""GB/T 38540-2020 electronic seal data (SES_Seal, version 4), declared with asn1crypto.

    SESeal ::= SEQUENCE { eSealInfo SES_SealInfo, cert OCTET STRING,
                          signAlgID OBJECT IDENTIFIER, signedValue BIT STRING }
    SES_SealInfo ::= SEQUENCE { header SES_Header, esID IA5String, property SES_ESPropertyInfo,
                                picture SES_ESPictrueInfo, extDatas ExtensionDatas OPTIONAL }
    SES_Header ::= SEQUENCE { id IA5String ("ES"), version INTEGER (4), vid IA5String }
    SES_ESPropertyInfo ::= SEQUENCE { type INTEGER (1 organisation, 2 personal), name UTF8String,
        certListType INTEGER (1 certificates, 2 digests), certList SES_CertList,
        createDate GeneralizedTime, validStart GeneralizedTime, validEnd GeneralizedTime }
    SES_CertList ::= CHOICE { certs SEQUENCE OF OCTET STRING, certDigestList SEQUENCE OF CertDigestObj }
    SES_ESPictrueInfo ::= SEQUENCE { type IA5String, data OCTET STRING, width INTEGER, height INTEGER }

The CHOICE in SES_CertList is untagged and both branches are SEQUENCE OF, so
certListType says which one it is; yinxin always writes certificates (type 1).
The seal maker (制章者, here the CA that issued the seal certificate) signs the
DER of SEQUENCE { eSealInfo, cert, signAlgID }.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from asn1crypto import core

from pki.algorithms import PrivateKey, PublicKey
from pki.errors import InvalidSignature

from .errors import SealError

ORGANISATION_SEAL, PERSONAL_SEAL = 1, 2
HEADER_ID, HEADER_VERSION = "ES", 4


class SESHeader(core.Sequence):
    _fields = [("id", core.IA5String), ("version", core.Integer), ("vid", core.IA5String)]


class CertInfoList(core.SequenceOf):
    _child_spec = core.OctetString


class SESPropertyInfo(core.Sequence):
    _fields = [("type", core.Integer), ("name", core.UTF8String), ("cert_list_type", core.Integer),
               ("cert_list", CertInfoList), ("create_date", core.GeneralizedTime),
               ("valid_start", core.GeneralizedTime), ("valid_end", core.GeneralizedTime)]


class SESPictureInfo(core.Sequence):
    _fields = [("type", core.IA5String), ("data", core.OctetString), ("width", core.Integer),
               ("height", core.Integer)]


class ExtData(core.Sequence):
    _fields = [("extn_id", core.ObjectIdentifier), ("critical", core.Boolean, {"default": False}),
               ("extn_value", core.OctetString)]


class ExtensionDatas(core.SequenceOf):
    _child_spec = ExtData


class SESSealInfo(core.Sequence):
    _fields = [("header", SESHeader), ("es_id", core.IA5String), ("property", SESPropertyInfo),
               ("picture", SESPictureInfo), ("ext_datas", ExtensionDatas, {"optional": True})]


class SESSignedPart(core.Sequence):
    """What the seal maker signs."""
    _fields = [("e_seal_info", SESSealInfo), ("cert", core.OctetString), ("sign_alg_id", core.ObjectIdentifier)]


class SESeal(core.Sequence):
    _fields = [("e_seal_info", SESSealInfo), ("cert", core.OctetString),
               ("sign_alg_id", core.ObjectIdentifier), ("signed_value", core.OctetBitString)]


@dataclass(frozen=True)
class SealData:
    """The content of an SES_Seal, decoded."""
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


def build_seal_info(*, es_id: str, vendor: str, seal_type: int, name: str, certificates: tuple[bytes, ...],
                    created: datetime, valid_start: datetime, valid_end: datetime, picture_type: str,
                    picture: bytes, width_mm: int, height_mm: int) -> SESSealInfo:
    if seal_type not in (ORGANISATION_SEAL, PERSONAL_SEAL):
        raise ValueError("SES seal type is 1 (organisation) or 2 (personal)")
    return SESSealInfo({
        "header": {"id": HEADER_ID, "version": HEADER_VERSION, "vid": vendor},
        "es_id": es_id,
        "property": {"type": seal_type, "name": name, "cert_list_type": 1, "cert_list": list(certificates),
                     "create_date": created, "valid_start": valid_start, "valid_end": valid_end},
        "picture": {"type": picture_type, "data": picture, "width": width_mm, "height": height_mm},
    })


def sign_seal(info: SESSealInfo, *, maker_key: PrivateKey, maker_cert_der: bytes,
              distid: bytes | None) -> bytes:
    """DER SES_Seal signed by the seal maker."""
    alg_oid = maker_key.public_key().signature_algorithm()["algorithm"].dotted
    to_sign = SESSignedPart({"e_seal_info": info, "cert": maker_cert_der, "sign_alg_id": alg_oid}).dump()
    signature = maker_key.sign(to_sign, distid=distid if maker_key.algorithm == "sm2" else None)
    return SESeal({"e_seal_info": info, "cert": maker_cert_der, "sign_alg_id": alg_oid,
                   "signed_value": signature}).dump()


def parse_seal(der: bytes) -> SealData:
    """Decode an SES_Seal; SealError for anything that is not one."""
    try:
        seal = SESeal.load(der, strict=True)
        info = seal["e_seal_info"]
        header, prop, pic = info["header"], info["property"], info["picture"]
        if header["id"].native != HEADER_ID:
            raise SealError(f"not an SES_Seal (header id {header['id'].native!r})")
        if header["version"].native != HEADER_VERSION:
            raise SealError(f"SES_Seal version {header['version'].native} is not supported "
                            f"(GB/T 38540-2020 is version {HEADER_VERSION})")
        if prop["cert_list_type"].native != 1:
            raise SealError("SES_Seal with certificate digests (certListType 2) is not supported")
        return SealData(
            es_id=info["es_id"].native, vendor=header["vid"].native, seal_type=prop["type"].native,
            name=prop["name"].native, certificates=tuple(c.native for c in prop["cert_list"]),
            created=prop["create_date"].native, valid_start=prop["valid_start"].native,
            valid_end=prop["valid_end"].native, picture_type=pic["type"].native, picture=pic["data"].native,
            width_mm=pic["width"].native, height_mm=pic["height"].native, maker_cert=seal["cert"].native,
            sign_alg_oid=seal["sign_alg_id"].dotted, signed_value=seal["signed_value"].native)
    except SealError:
        raise
    except Exception as exc:
        raise SealError("not a valid GB/T 38540 SES_Seal encoding") from exc


def verify_seal(der: bytes, maker_public_key: PublicKey, *, distid: bytes | None) -> SealData:
    """Check the seal maker's signature over the seal; InvalidSignature when it does not verify."""
    data = parse_seal(der)
    seal = SESeal.load(der)
    to_sign = SESSignedPart({"e_seal_info": seal["e_seal_info"], "cert": seal["cert"],
                             "sign_alg_id": seal["sign_alg_id"]}).dump()
    if maker_public_key.signature_algorithm()["algorithm"].dotted != data.sign_alg_oid:
        raise InvalidSignature("the seal's signature algorithm does not match the maker's key")
    try:
        maker_public_key.verify(data.signed_value, to_sign,
                                distid=distid if maker_public_key.algorithm == "sm2" else None)
    except InvalidSignature:
        raise InvalidSignature("the seal maker's signature over the SES_Seal does not verify "
                               "(the seal was altered or made by someone else)", es_id=data.es_id) from None
    return data

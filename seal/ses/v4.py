"""GB/T 38540-2020 (SES version 4), declared with asn1crypto.

    SES_Signature ::= SEQUENCE { toSign TBS_Sign, cert OCTET STRING, signatureAlgID OBJECT IDENTIFIER,
                                 signature BIT STRING, timeStamp [0] EXPLICIT BIT STRING OPTIONAL }
    TBS_Sign ::= SEQUENCE { version INTEGER (4), eseal SESeal, timeInfo GeneralizedTime,
                            dataHash BIT STRING, propertyInfo IA5String,
                            extDatas [0] EXPLICIT ExtensionDatas OPTIONAL }
    SESeal ::= SEQUENCE { eSealInfo SES_SealInfo, cert OCTET STRING,
                          signAlgID OBJECT IDENTIFIER, signedValue BIT STRING }
    SES_SealInfo ::= SEQUENCE { header SES_Header, esID IA5String, property SES_ESPropertyInfo,
                                picture SES_ESPictrueInfo, extDatas ExtensionDatas OPTIONAL }
    SES_Header ::= SEQUENCE { id IA5String ("ES"), version INTEGER (4), vid IA5String }
    SES_ESPropertyInfo ::= SEQUENCE { type INTEGER, name UTF8String,
        certListType INTEGER (1 certificates, 2 digests), certList SES_CertList,
        createDate GeneralizedTime, validStart GeneralizedTime, validEnd GeneralizedTime }
    SES_CertList ::= CHOICE { certs SEQUENCE OF OCTET STRING, certDigestList SEQUENCE OF CertDigestObj }
    CertDigestObj ::= SEQUENCE { type PrintableString, value OCTET STRING }
    SES_ESPictrueInfo ::= SEQUENCE { type IA5String, data OCTET STRING, width INTEGER, height INTEGER }

The CHOICE in SES_CertList is untagged and both branches are SEQUENCE OF, so it is declared
`Any` here and read by certListType.  The seal maker signs the DER of SES_SealInfo; the
signer signs the DER of TBS_Sign, both as stored.
"""
from __future__ import annotations

from asn1crypto import core

import pki  # noqa: F401  (registers the SM2/SM3 OIDs with asn1crypto)

VERSION = 4


class SESHeader(core.Sequence):
    _fields = [("id", core.IA5String), ("version", core.Integer), ("vid", core.IA5String)]


class CertInfoList(core.SequenceOf):
    _child_spec = core.OctetString


class CertDigestObj(core.Sequence):
    _fields = [("type", core.PrintableString), ("value", core.OctetString)]


class CertDigestList(core.SequenceOf):
    _child_spec = CertDigestObj


class SESPropertyInfo(core.Sequence):
    _fields = [("type", core.Integer), ("name", core.UTF8String), ("cert_list_type", core.Integer),
               ("cert_list", core.Any), ("create_date", core.GeneralizedTime),
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


class SESeal(core.Sequence):
    _fields = [("e_seal_info", SESSealInfo), ("cert", core.OctetString),
               ("sign_alg_id", core.ObjectIdentifier), ("signed_value", core.OctetBitString)]


class TBSSign(core.Sequence):
    _fields = [("version", core.Integer), ("eseal", SESeal), ("time_info", core.GeneralizedTime),
               ("data_hash", core.OctetBitString), ("property_info", core.IA5String),
               ("ext_datas", ExtensionDatas, {"explicit": 0, "optional": True})]


class SESSignature(core.Sequence):
    _fields = [("to_sign", TBSSign), ("cert", core.OctetString),
               ("signature_alg_id", core.ObjectIdentifier), ("signature", core.OctetBitString),
               ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True})]

"""GM/T 0031-2014 (the SES structures before GB/T 38540, "version 1"), declared with asn1crypto.

    SES_Signature ::= SEQUENCE { toSign TBS_Sign, signature BIT STRING }
    TBS_Sign ::= SEQUENCE { version INTEGER, eseal SESeal, timeInfo BIT STRING, dataHash BIT STRING,
                            propertyInfo IA5String, cert OCTET STRING, signatureAlgorithm OBJECT IDENTIFIER }
    SESeal ::= SEQUENCE { esealInfo SES_SealInfo, signInfo SES_SignInfo }
    SES_SignInfo ::= SEQUENCE { cert OCTET STRING, signatureAlgorithm OBJECT IDENTIFIER, signData BIT STRING }
    SES_SealInfo ::= SEQUENCE { header SES_Header, esID IA5String, property SES_ESPropertyInfo,
                                picture SES_ESPictrueInfo, extDatas ExtensionDatas OPTIONAL }
    SES_ESPropertyInfo ::= SEQUENCE { type INTEGER, name UTF8String, certList SEQUENCE OF OCTET STRING,
                                      createDate UTCTime, validStart UTCTime, validEnd UTCTime }

The seal maker signs the DER of SEQUENCE { esealInfo, cert, signatureAlgorithm }; timeInfo is a
time string in a BIT STRING.
"""
from __future__ import annotations

from asn1crypto import core

import pki  # noqa: F401  (registers the SM2/SM3 OIDs with asn1crypto)

from .v4 import CertInfoList, ExtensionDatas, SESHeader, SESPictureInfo


class SESPropertyInfo(core.Sequence):
    _fields = [("type", core.Integer), ("name", core.UTF8String), ("cert_list", CertInfoList),
               ("create_date", core.UTCTime), ("valid_start", core.UTCTime), ("valid_end", core.UTCTime)]


class SESSealInfo(core.Sequence):
    _fields = [("header", SESHeader), ("es_id", core.IA5String), ("property", SESPropertyInfo),
               ("picture", SESPictureInfo), ("ext_datas", ExtensionDatas, {"optional": True})]


class SESSignInfo(core.Sequence):
    _fields = [("cert", core.OctetString), ("signature_algorithm", core.ObjectIdentifier),
               ("sign_data", core.OctetBitString)]


class SESeal(core.Sequence):
    _fields = [("eseal_info", SESSealInfo), ("sign_info", SESSignInfo)]


class MakerSignedPart(core.Sequence):
    """What a GM/T 0031 seal maker signs."""
    _fields = [("eseal_info", SESSealInfo), ("cert", core.OctetString),
               ("signature_algorithm", core.ObjectIdentifier)]


class TBSSign(core.Sequence):
    _fields = [("version", core.Integer), ("eseal", SESeal), ("time_info", core.OctetBitString),
               ("data_hash", core.OctetBitString), ("property_info", core.IA5String),
               ("cert", core.OctetString), ("signature_algorithm", core.ObjectIdentifier)]


class SESSignature(core.Sequence):
    _fields = [("to_sign", TBSSign), ("signature", core.OctetBitString)]

"""GB/T 38540-2020 (SES v4) and GM/T 0031-2014 (v1) electronic-seal structures, with asn1crypto.

    parse_seal / verify_seal / sign_seal / build_seal_info   SES_Seal (the seal, signed by its maker)
    parse_signature / build_signature / verify_signer         SES_Signature (a seal on a document)
"""
from .errors import SesError, SesFormatError
from .seal import (ORGANISATION_SEAL, PERSONAL_SEAL, RULE_GBT38540, RULE_GMT0031, MakerSignature,
                   SealData, build_seal_info, check_signature_value, maker_rule, maker_signature,
                   parse_seal, sign_seal, sm2_signature_der, verify_seal)
from .signature import SignatureData, build_signature, parse_signature, signer_public_key, verify_signer

__all__ = ["SesError", "SesFormatError", "ORGANISATION_SEAL", "PERSONAL_SEAL", "RULE_GBT38540",
           "RULE_GMT0031", "MakerSignature", "SealData", "build_seal_info", "check_signature_value",
           "maker_rule", "maker_signature", "parse_seal", "sign_seal", "sm2_signature_der", "verify_seal",
           "SignatureData", "build_signature", "parse_signature", "signer_public_key", "verify_signer"]

"""yinxin's electronic seals: seal records, key protection, appearance, PDF and OFD sealing
(GB/T 38540), verification with verdicts.

Public API (imported on first use, so that `import seal` stays light)::

    from seal import SealRegistry, SealService, AtPosition, AnchorText, ExistingField
    from seal.ofd import stamp_ofd, verify_ofd          # OFD (GB/T 33190 / GB/T 38540)
    from seal.ses import parse_signature, parse_seal    # SES structures, v4 and v1
"""
from __future__ import annotations

from pki.lazy import lazy_exports

_LAZY = {
    "SealRegistry": "records", "SealRecord": "records", "TYPE_LABELS": "records",
    "SealService": "service", "StampOutcome": "service", "SealVerification": "service",
    "SignatureCheck": "service",
    "AtPosition": "pdf_placement", "AnchorText": "pdf_placement", "ExistingField": "pdf_placement",
    "Placement": "pdf_placement",
    "stamp_pdf": "pdf_sign", "stamp_batch": "pdf_sign", "StampResult": "pdf_sign", "BatchItem": "pdf_sign",
    "verify_pdf": "pdf_verify", "VerificationReport": "pdf_verify", "SignatureReport": "pdf_verify",
    "DocumentTimestampReport": "pdf_verify", "Proof": "pdf_verify", "VERDICTS": "pdf_verify",
    "verify_offline": "service", "extend_pdf": "pdf_timestamps", "ExtendResult": "pdf_timestamps",
    "PyhankoTimestamper": "pdf_timestamps", "ValidationDataMissing": "errors",
    "make_signer": "cms_signer", "RevocationData": "pdf_validation",
    "SealSpec": "appearance", "draw_seal": "appearance", "drawing_from_png": "appearance",
    "SEAL_TYPES": "appearance", "PasswordPolicy": "passwords", "load_password_policy": "passwords",
    "parse_seal": "ses", "verify_seal": "ses", "SealData": "ses", "parse_signature": "ses",
    "SignatureData": "ses", "CheckResult": "verdicts", "VALID": "verdicts", "INVALID": "verdicts",
    "INDETERMINATE": "verdicts", "detect_format": "formats", "UnknownFormat": "formats",
    "ReadLimits": "limits", "riding_groups": "riding", "PdfTooLarge": "pdf_bounds",
    "SealError": "errors", "SealNotFound": "errors", "SealPasswordError": "errors", "SealLocked": "errors",
    "PasswordPolicyError": "errors", "SealStateError": "errors",
    "PdfSealError": "pdf_errors", "NotAPdf": "pdf_errors", "EncryptedPdf": "pdf_errors",
    "PlacementError": "pdf_errors", "AnchorNotFound": "pdf_errors", "FieldError": "pdf_errors",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)

"""OFD (GB/T 33190) as far as sealing needs: reading a package within bounds, sealing it with a
GB/T 38540 SES_Signature, verifying the seals of any producer.

    from seal.ofd import OfdPackage, stamp_ofd, verify_ofd
"""
from __future__ import annotations

from pki.lazy import lazy_exports

_LAZY = {
    "OfdPackage": "package", "DocBody": "package", "is_ofd_bytes": "package",
    "Page": "document", "pages_of": "document", "find_text": "document",
    "stamp_ofd": "sign", "stamp_ofd_bytes": "sign", "OfdStampResult": "sign",
    "sealing_changes": "compare", "text_ofd": "sample",
    "verify_ofd": "verify", "list_signatures": "verify", "OfdSignatureInfo": "verify",
    "OfdError": "errors", "NotAnOfd": "errors", "OfdTooLarge": "errors", "OfdStructureError": "errors",
    "UnsafeXml": "errors", "OfdSealError": "errors",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)

"""Errors of OFD sealing and verification, under the seal package's branch."""
from __future__ import annotations

from ..errors import SealError

__all__ = ["OfdError", "NotAnOfd", "OfdTooLarge", "OfdStructureError", "UnsafeXml", "OfdSealError"]


class OfdError(SealError):
    """An OFD cannot be read, sealed or verified as asked."""


class NotAnOfd(OfdError):
    """Not a zip, or a zip without OFD.xml / a document to seal."""


class OfdTooLarge(OfdError):
    """The package exceeds a reading bound (entries, inflated bytes, XML size, pages): refused
    before it is inflated, so a decompression bomb costs neither memory nor time."""


class OfdStructureError(OfdError):
    """A reference that is missing, points outside the package or loops; XML that does not parse."""


class UnsafeXml(OfdStructureError):
    """XML with a DOCTYPE (entities, external references): refused, never resolved (no XXE)."""


class OfdSealError(OfdError):
    """The seal cannot go on this OFD (e.g. not an SM2 seal: GB/T 38540 is SM2 with SM3)."""

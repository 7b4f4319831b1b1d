"""Errors of PDF sealing and verification.

They derive from the seal package's `SealError`, so the CLI maps them to a
one-line message and an exit code like every other yinxin error.
"""
from __future__ import annotations

from .errors import SealError

__all__ = ["PdfSealError", "NotAPdf", "EncryptedPdf", "PlacementError", "AnchorNotFound",
           "FieldError"]


class PdfSealError(SealError):
    """A PDF cannot be sealed or verified as asked."""


class NotAPdf(PdfSealError):
    """The input is not a PDF, or is too broken to update safely."""


class EncryptedPdf(PdfSealError):
    """The PDF is encrypted; yinxin seals only unencrypted documents."""


class PlacementError(PdfSealError):
    """The seal cannot be placed where asked (page out of range, off the page)."""


class AnchorNotFound(PlacementError):
    """The anchor text does not occur in the document's text."""


class FieldError(PlacementError):
    """The named signature field is missing, not a signature field, or already signed."""

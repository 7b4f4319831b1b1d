"""Errors of the GB/T 38540 / GM/T 0031 structures: under the seal package's branch."""
from __future__ import annotations

from ..errors import SealError

__all__ = ["SesError", "SesFormatError"]


class SesError(SealError):
    """An SES_Seal or SES_Signature cannot be used as asked."""


class SesFormatError(SesError):
    """Bytes that do not parse as the SES structure they should be."""

"""The one error type of the appearance package."""
from __future__ import annotations

from seal.errors import SealError


class AppearanceError(SealError):
    """A seal picture cannot be drawn: bad spec, no usable font, missing glyphs, bad PNG."""

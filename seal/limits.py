"""Reading bounds for documents from anyone: decompression bombs are refused, not inflated.

The same bounds serve PDF and OFD (placement, anchors, rendering, verification).  A document
is measured before its content is decompressed for good: an OFD by the sizes its zip declares
(zipfile never inflates an entry beyond its declared size), a PDF by inflating its Flate
streams once, in bounded steps, counting and discarding the bytes.  Defaults keep the peak
memory of any yinxin command on such input under 500 MB.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ReadLimits", "DEFAULT_LIMITS", "MiB"]

MiB = 1 << 20


@dataclass(frozen=True)
class ReadLimits:
    """What a document may inflate to before yinxin refuses to read it."""

    max_total_bytes: int = 1024 * MiB      # all entries / streams together, inflated
    max_entry_bytes: int = 256 * MiB       # one zip entry or one PDF stream, inflated
    max_xml_bytes: int = 64 * MiB          # one XML file parsed (OFD.xml, Document.xml, a page)
    max_entries: int = 20_000              # zip entries / PDF objects with streams
    max_pages: int = 10_000
    max_image_pixels: int = 50_000_000     # an image decoded to draw or check a seal picture

    def __post_init__(self) -> None:
        for name in ("max_total_bytes", "max_entry_bytes", "max_xml_bytes", "max_entries", "max_pages",
                     "max_image_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")


DEFAULT_LIMITS = ReadLimits()

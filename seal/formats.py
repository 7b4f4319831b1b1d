"""Which kind of document a file is, told by its content (never by its name)."""
from __future__ import annotations

import os
from pathlib import Path

from .pdf_errors import NotAPdf

__all__ = ["PDF", "OFD", "UnknownFormat", "detect_format"]

PDF, OFD = "pdf", "ofd"


class UnknownFormat(NotAPdf):
    """The input is neither a PDF nor an OFD."""


def detect_format(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> str:
    """"pdf" (a %PDF- header in the first KiB) or "ofd" (a zip); UnknownFormat otherwise."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:1024])
    else:
        path = Path(source)
        if not path.is_file():
            raise UnknownFormat(f"no such file: {str(path)!r}", path=str(path))
        with open(path, "rb") as fh:
            head = fh.read(1024)
    if head.startswith(b"PK\x03\x04"):
        return OFD
    if b"%PDF-" in head:
        return PDF
    if not head:
        raise UnknownFormat("the input is empty: not a PDF and not an OFD")
    raise UnknownFormat("the input is not a PDF (no %PDF- header) and not an OFD (not a zip file)")

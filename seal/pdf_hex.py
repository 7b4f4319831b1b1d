"""pyHanko's reader of PDF hex strings, read a block at a time instead of a byte at a time.

A seal's signature is a hex string (/Contents) of ~10,000 digits, most of them the zeros of the room
reserved for the CMS.  pyHanko reads it one byte per `stream.read(1)` through a generator
(`pyhanko.pdf_utils.generic.read_hex_string_from_stream`): ~28 ms for every PDF whose signatures are
looked at, and the document flow looks twice per verification, twice per document.  `install()`
puts in its place a reader with the same result and the same errors that takes the digits in
blocks (~0.1 ms); a hex string with a comment in it (a '%', legal there) is handed to pyHanko's
own reader.  A test compares the two on many strings.
"""
from __future__ import annotations

import binascii
import os
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PDF_WHITESPACE, PdfStreamError

_ORIGINAL = generic.read_hex_string_from_stream
_BLOCK = 1 << 14
_HEX = b"0123456789abcdefABCDEF"


def read_hex_string_from_stream(stream: Any) -> Any:
    """What pyHanko's reader returns (a ByteStringObject or TextStringObject), read in blocks."""
    start = stream.tell()
    stream.read(1)                                   # the opening '<'
    chunks = []
    while True:
        block = stream.read(_BLOCK)
        if not block:
            raise PdfStreamError("Stream ended prematurely")
        end = block.find(b">")
        chunk = block if end < 0 else block[:end]
        if b"%" in chunk:                            # a comment inside: pyHanko's reader knows those
            stream.seek(start)
            return _ORIGINAL(stream)
        chunks.append(chunk)
        if end >= 0:
            stream.seek(end + 1 - len(block), os.SEEK_CUR)
            break
    digits = b"".join(chunks).translate(None, PDF_WHITESPACE)
    bad = digits.translate(None, _HEX)
    if bad:
        raise PdfStreamError("Unexpected token in hex string: " + repr(bad[:1]))
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(binascii.unhexlify(digits))


def install() -> None:
    """Use the block reader in pyHanko's object parser (idempotent)."""
    generic.read_hex_string_from_stream = read_hex_string_from_stream


def original() -> Any:
    return _ORIGINAL


install()

"""Cutting DER apart without re-encoding: what a signature covers is the bytes as stored.

asn1crypto re-encodes what it is asked to dump when anything was touched, and a producer's
DER may not be canonical; signatures are checked over the octets exactly as they sit in the
file, so the signed parts are sliced out here (definite lengths only: BER's indefinite form
is refused).
"""
from __future__ import annotations

from .errors import SesFormatError

__all__ = ["header", "children", "element_at", "bit_string_bytes"]

#: nesting the SES structures never exceed; deeper input is not an SES structure
MAX_ELEMENTS = 10_000


def header(data: bytes | memoryview, offset: int = 0) -> tuple[int, int, int]:
    """(tag byte, header length, content length) of the DER element at `offset`."""
    end = len(data)
    if offset + 2 > end:
        raise SesFormatError("truncated DER element")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise SesFormatError("multi-byte DER tags do not occur in SES structures")
    first = data[offset + 1]
    if first < 0x80:
        return tag, 2, first
    count = first & 0x7F
    if count == 0:
        raise SesFormatError("indefinite length (BER) is not DER")
    if count > 4 or offset + 2 + count > end:
        raise SesFormatError("DER length out of range")
    length = int.from_bytes(bytes(data[offset + 2:offset + 2 + count]), "big")
    if offset + 2 + count + length > end:
        raise SesFormatError("DER element runs past the end of its container")
    return tag, 2 + count, length


def element_at(data: bytes, offset: int = 0) -> bytes:
    """The whole encoded element (tag, length, content) at `offset`."""
    _tag, hl, length = header(data, offset)
    return bytes(data[offset:offset + hl + length])


def children(der: bytes, *, expect_tag: int | None = 0x30) -> list[bytes]:
    """The encoded elements inside a constructed element (by default a SEQUENCE), which must
    span `der` exactly."""
    tag, hl, length = header(der, 0)
    if expect_tag is not None and tag != expect_tag:
        raise SesFormatError(f"expected DER tag {expect_tag:#04x}, found {tag:#04x}")
    if hl + length != len(der):
        raise SesFormatError("trailing bytes after the DER element")
    out: list[bytes] = []
    pos = hl
    while pos < len(der):
        if len(out) >= MAX_ELEMENTS:
            raise SesFormatError("too many DER elements")
        _t, h, n = header(der, pos)
        out.append(bytes(der[pos:pos + h + n]))
        pos += h + n
    return out


def bit_string_bytes(der: bytes) -> bytes:
    """The octets of a DER BIT STRING with no unused bits (how SES stores signatures and digests)."""
    tag, hl, length = header(der, 0)
    if tag != 0x03 or length < 1:
        raise SesFormatError("expected a BIT STRING")
    if der[hl] != 0:
        raise SesFormatError("a signature or digest BIT STRING with unused bits")
    return bytes(der[hl + 1:hl + length])

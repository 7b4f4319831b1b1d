"""DER pieces for the hot paths that put many small structures together from parts encoded once
(timestamp tokens, OCSP answers signed on demand).  Everything else declares its ASN.1 with
asn1crypto; the tests compare what is built here with asn1crypto's encoding."""
from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["length", "tlv", "integer", "generalized_time", "element"]


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, body: bytes) -> bytes:
    """One DER element: a one-octet `tag` around `body`, definite length."""
    return bytes((tag,)) + length(len(body)) + body


def integer(value: int) -> bytes:
    """A DER INTEGER, minimal two's complement."""
    octets = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)
    while len(octets) > 1 and ((octets[0] == 0 and octets[1] < 0x80) or (octets[0] == 0xFF and octets[1] >= 0x80)):
        octets = octets[1:]
    return tlv(0x02, octets)


def generalized_time(at: datetime, *, millis: bool = False) -> bytes:
    """GeneralizedTime in UTC; with `millis` a fraction to the millisecond without trailing zeros
    (RFC 3161 §2.4.2), else whole seconds (RFC 5280, RFC 6960)."""
    at = at.astimezone(timezone.utc)
    text = at.strftime("%Y%m%d%H%M%S")
    if millis and at.microsecond // 1000:
        text += f".{at.microsecond // 1000:03d}".rstrip("0")
    return tlv(0x18, (text + "Z").encode())


def element(der: bytes, pos: int) -> tuple[int, int, int] | None:
    """(tag, start of contents, end) of the element at `pos`, if it is there with a definite length
    in DER's shortest form (one-octet tags, lengths up to 65535); None otherwise."""
    if pos + 2 > len(der):
        return None
    tag, first = der[pos], der[pos + 1]
    if first < 0x80:
        start, size = pos + 2, first
    else:
        n = first & 0x7F
        if n == 0 or n > 2 or pos + 2 + n > len(der):
            return None
        size = int.from_bytes(der[pos + 2:pos + 2 + n], "big")
        if size < 0x80 or (n == 2 and size < 0x100):
            return None                            # not the shortest form: not DER
        start = pos + 2 + n
    end = start + size
    return (tag, start, end) if end <= len(der) else None

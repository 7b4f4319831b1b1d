"""asn1crypto's comparison of X.509 names, remembered for the last pairs compared.

pyHanko finds a signature's certificate by comparing the issuer the signer names with the issuer of
every certificate the CMS carries (`pyhanko.sign.general.match_issuer_serial`), several times per
signature; where the encodings differ it asks asn1crypto's `Name.__eq__` (RFC 5280, 7.1), which
prepares every value of both names (RFC 4518 string preparation, pure Python, ~0.4 ms a pair) on
every call.  That was ~5 ms of every document in the document flow, which verifies each sealed file
twice.  The comparison depends only on the two encodings, so `install()` puts in front of it a memo
of the last results, keyed by the exact DER of both names.  An error (a value the string
preparation refuses) is raised again each time, never remembered.  tests/test_name_match.py
compares it with asn1crypto's own comparison on many pairs.
"""
from __future__ import annotations

from typing import Any

from asn1crypto import x509

from .memo import BytesMemo

_ORIGINAL = x509.Name.__eq__
_RESULTS = BytesMemo(256)


def names_equal(name: x509.Name, other: Any) -> bool:
    """`name == other` as asn1crypto decides it (RFC 5280's comparison), remembered per pair of encodings."""
    if not isinstance(other, x509.Name):
        return False
    return _RESULTS.get((name.dump(), other.dump()), lambda: bool(_ORIGINAL(name, other)))


def install() -> None:
    """Compare `asn1crypto.x509.Name`s through the memo (idempotent)."""
    x509.Name.__eq__ = names_equal  # type: ignore[method-assign]


def original() -> Any:
    """asn1crypto's own comparison."""
    return _ORIGINAL


install()

"""asn1crypto's comparison of X.509 names, remembered for the last pairs compared (and each name's
comparable form, `Name.hashable`, for the last names).

pyHanko finds a signature's certificate by comparing the issuer the signer names with the issuer of
every certificate the CMS carries (`pyhanko.sign.general.match_issuer_serial`), several times per
signature; where the encodings differ it asks asn1crypto's `Name.__eq__` (RFC 5280, 7.1), which
prepares every value of both names (RFC 4518 string preparation, pure Python, ~0.4 ms a pair) on
every call.  That was ~5 ms of every document in the document flow, which verifies each sealed file
twice.  pyHanko's certificate registries index every certificate by `Name.hashable`, the same
preparation again (~2.5 ms a document).  Both depend only on the encodings, so `install()` puts in
front of each a memo of the last results, keyed by the exact DER of the names.  An error (a value
the string preparation refuses) is raised again each time, never remembered.
tests/test_name_match.py compares them with asn1crypto's own on many names.
"""
from __future__ import annotations

from typing import Any

from asn1crypto import x509

from .memo import BytesMemo

_ORIGINAL = x509.Name.__eq__
_ORIGINAL_HASHABLE = x509.Name.hashable          # a property
_RESULTS = BytesMemo(256)
_HASHABLES = BytesMemo(256)


def names_equal(name: x509.Name, other: Any) -> bool:
    """`name == other` as asn1crypto decides it (RFC 5280's comparison), remembered per pair of encodings."""
    if not isinstance(other, x509.Name):
        return False
    return _RESULTS.get((name.dump(), other.dump()), lambda: bool(_ORIGINAL(name, other)))


def name_hashable(name: x509.Name) -> str:
    """`name.hashable` as asn1crypto makes it, remembered per encoding."""
    return _HASHABLES.get(name.dump(), lambda: _ORIGINAL_HASHABLE.fget(name))


def install() -> None:
    """Compare `asn1crypto.x509.Name`s, and make their `hashable`, through the memos (idempotent)."""
    x509.Name.__eq__ = names_equal  # type: ignore[method-assign]
    x509.Name.hashable = property(name_hashable)  # type: ignore[method-assign,assignment]


def original() -> Any:
    """asn1crypto's own comparison."""
    return _ORIGINAL


def original_hashable(name: x509.Name) -> str:
    """asn1crypto's own `hashable` of a name."""
    return _ORIGINAL_HASHABLE.fget(name)


install()

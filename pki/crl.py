"""Certificate revocation lists (RFC 5280 section 5): full and delta, numbered.

A CRL is a small envelope around a possibly enormous list.  The envelope —
version, signature algorithm, issuer, times, extensions — is declared with
asn1crypto.  The list of revoked certificates is one fixed structure
repeated up to millions of times::

    SEQUENCE { userCertificate INTEGER, revocationDate Time,
               crlEntryExtensions SEQUENCE { reasonCode extension } OPTIONAL }

Building an asn1crypto object per entry costs tens of microseconds, so the
entries are DER-encoded here directly (`_encode_entries`) and the TBS is
assembled by concatenation.  The tests check the result byte for byte
against asn1crypto's own encoding and parse it with ``openssl crl``.  Every
CRL, small or large, goes through this one path: `build_tbs_crl` simply
wraps `encode_tbs_crl_der` in a lazily parsed asn1crypto object.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Iterator, Sequence

from asn1crypto import algos, pem
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509

from . import oids  # noqa: F401  (registers the SM2 OIDs before anything parses)
from .algorithms import PrivateKey, PublicKey
from .errors import CertificateError, InvalidSignature
from .x509 import (MAX_SERIAL_BITS, _check_algorithm_fits_key, _der_blocks, _sign, _utc,
                   verify_signed_data)

__all__ = [
    "REASONS", "EncodedEntries", "RevokedEntry", "build_tbs_crl", "crl_delta_base", "crl_entries", "crl_number",
    "crl_to_pem", "encode_tbs_crl_der", "load_crl", "sign_crl", "sign_crl_der",
    "verify_crl_signature",
]

#: asn1crypto CRLReason names, RFC 5280 5.3.1 (7 is unused)
REASONS = tuple(asn1_crl.CRLReason._map.values())
_REASON_CODES = {name: code for code, name in asn1_crl.CRLReason._map.items()}
_UTC = timezone.utc


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate as a CRL lists it."""

    serial: int
    revoked_at: datetime
    reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.serial, int) or isinstance(self.serial, bool):
            raise TypeError("serial must be an int")
        if self.serial <= 0 or self.serial.bit_length() > MAX_SERIAL_BITS:
            raise ValueError(f"serial {self.serial} is not a positive number of at most 20 octets")
        object.__setattr__(self, "revoked_at", _utc(self.revoked_at, "revoked_at"))
        if self.reason is not None and self.reason not in _REASON_CODES:
            raise ValueError(f"unknown revocation reason {self.reason!r} (one of {', '.join(REASONS)})")


@dataclass(frozen=True)
class EncodedEntries:
    """revokedCertificates already DER-encoded by the caller: the content octets (the entries,
    without the outer SEQUENCE header) and how many entries they hold.  For sources that can
    produce entry DER faster than `RevokedEntry` objects (`pki.crl_source` reads a million rows
    from the database this way); the caller answers for their validity and uniqueness."""

    content: bytes | bytearray
    count: int

    def __post_init__(self) -> None:
        if not isinstance(self.content, (bytes, bytearray)):
            raise TypeError("content must be bytes")
        if self.count < 0 or (self.count == 0) != (len(self.content) == 0):
            raise ValueError("count must be the number of entries in content")

    def __len__(self) -> int:
        return self.count


# --------------------------------------------------------------------------- DER by hand

def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(tag: int, content: bytes | bytearray) -> bytes:
    return bytes((tag,)) + _der_length(len(content)) + content


_TWO_DIGITS = [f"{i:02d}" for i in range(100)]


def _der_time(value: datetime) -> bytes:
    """RFC 5280 Time TLV: UTCTime for 1950–2049, GeneralizedTime otherwise; `value` is UTC."""
    d = _TWO_DIGITS
    rest = d[value.month] + d[value.day] + d[value.hour] + d[value.minute] + d[value.second] + "Z"
    year = value.year
    if 1950 <= year < 2050:
        return b"\x17\x0d" + (d[year % 100] + rest).encode()
    return b"\x18\x0f" + (f"{year:04d}" + rest).encode()


def _reason_extensions(code: int) -> bytes:
    """crlEntryExtensions holding only reasonCode (2.5.29.21, non-critical, ENUMERATED)."""
    extension = _tlv(0x30, b"\x06\x03\x55\x1d\x15" + _tlv(0x04, b"\x0a\x01" + bytes((code,))))
    return _tlv(0x30, extension)


# RFC 5280 5.3.1: "the reason code CRL entry extension SHOULD be absent instead of using the
# unspecified (0) reasonCode value", so 'unspecified' encodes like no reason at all.
_REASON_DER: dict[str | None, bytes] = {None: b"", "unspecified": b""}
_REASON_DER.update({name: _reason_extensions(code) for name, code in _REASON_CODES.items()
                    if name != "unspecified"})
_SEQUENCE_HEADERS = [b"\x30" + bytes((n,)) for n in range(128)]
_INTEGER_HEADERS = [b"\x02" + bytes((n,)) for n in range(128)]
_REMOVE_FROM_CRL = _REASON_DER["remove_from_crl"]


def _encode_entries(entries: Iterable[RevokedEntry | tuple[int, datetime, str | None]],
                    *, delta: bool) -> tuple[bytearray, int]:
    """The content octets of revokedCertificates, and how many entries there were.

    The hot loop of a million-entry CRL: every entry is at most 2 + 23 + 17 +
    14 = 56 octets, so all its lengths fit the one-octet short form.
    """
    out = bytearray()
    seen: set[int] = set()
    reason_der = _REASON_DER
    seq_headers, int_headers, two = _SEQUENCE_HEADERS, _INTEGER_HEADERS, _TWO_DIGITS
    utc = _UTC
    for entry in entries:
        if isinstance(entry, RevokedEntry):
            serial, at, reason = entry.serial, entry.revoked_at, entry.reason
        else:
            serial, at, reason = entry
        if type(serial) is not int or serial <= 0 or serial.bit_length() > MAX_SERIAL_BITS:
            raise ValueError(f"serial {serial!r} is not a positive number of at most 20 octets")
        if serial in seen:
            raise ValueError(f"serial {serial} is listed twice")
        seen.add(serial)
        if at.tzinfo is not utc:
            at = _utc(at, "revoked_at")
        year = at.year
        if 1950 <= year < 2050:
            time_der = b"\x17\x0d" + (two[year % 100] + two[at.month] + two[at.day] + two[at.hour]
                                      + two[at.minute] + two[at.second] + "Z").encode()
        else:
            time_der = _der_time(at)
        extensions = reason_der.get(reason)
        if extensions is None:
            raise ValueError(f"unknown revocation reason {reason!r}")
        if extensions is _REMOVE_FROM_CRL and not delta:
            raise ValueError(f"serial {serial}: removeFromCRL belongs in delta CRLs only")
        serial_der = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
        out += (seq_headers[2 + len(serial_der) + len(time_der) + len(extensions)]
                + int_headers[len(serial_der)] + serial_der + time_der + extensions)
    return out, len(seen)


def _crl_extensions(*, crl_number: int, authority_key_identifier: bytes, delta_base: int | None,
                    freshest_crl_urls: Sequence[str]) -> bytes:
    extensions: list[dict[str, object]] = [
        {"extn_id": "authority_key_identifier", "critical": False,
         "extn_value": {"key_identifier": authority_key_identifier}},
        {"extn_id": "crl_number", "critical": False, "extn_value": crl_number},
    ]
    if delta_base is not None:
        # RFC 5280 5.2.4: the delta CRL indicator is critical
        extensions.append({"extn_id": "delta_crl_indicator", "critical": True, "extn_value": delta_base})
    if freshest_crl_urls:
        extensions.append({"extn_id": "freshest_crl", "critical": False, "extn_value": [
            {"distribution_point": {"full_name": [
                asn1_x509.GeneralName(name="uniform_resource_identifier", value=url)
                for url in freshest_crl_urls]}}]})
    return asn1_crl.TBSCertListExtensions(extensions).dump()


def _check_crl_number(value: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an int")
    if value < 0 or value.bit_length() > MAX_SERIAL_BITS:
        raise ValueError(f"{what} must be non-negative and at most 20 octets (RFC 5280 5.2.3)")


def encode_tbs_crl_der(*, issuer: asn1_x509.Name, this_update: datetime, next_update: datetime,
                       crl_number: int,
                       entries: Iterable[RevokedEntry | tuple[int, datetime, str | None]] | EncodedEntries,
                       authority_key_identifier: bytes,
                       signature_algorithm: algos.SignedDigestAlgorithm,
                       delta_base: int | None = None,
                       freshest_crl_urls: Sequence[str] = ()) -> bytes:
    """DER TBSCertList (v2).  `entries` are `RevokedEntry`s or plain (serial, revoked_at, reason) tuples,
    or `EncodedEntries` encoded by the caller.

    `delta_base` set makes a delta CRL (critical Delta CRL Indicator naming the
    base CRL number); only delta CRLs may carry removeFromCRL entries.
    `freshest_crl_urls` (full CRLs only) tells relying parties where the deltas are.
    Entries keep the caller's order; a reason of 'unspecified' is encoded as no reason.
    """
    if not isinstance(issuer, asn1_x509.Name) or len(issuer) == 0:
        raise ValueError("a CRL needs a non-empty issuer name (RFC 5280 5.1.2.3)")
    this_update = _utc(this_update, "this_update")
    next_update = _utc(next_update, "next_update")
    if next_update <= this_update:
        raise ValueError("next_update must be later than this_update")
    _check_crl_number(crl_number, "crl_number")
    if delta_base is not None:
        _check_crl_number(delta_base, "delta_base")
        if delta_base >= crl_number:
            raise ValueError("a delta CRL's base CRL number must be lower than its own number")
        if freshest_crl_urls:
            raise ValueError("a delta CRL must not carry a Freshest CRL extension (RFC 5280 5.2.6)")
    if not isinstance(authority_key_identifier, bytes) or not authority_key_identifier:
        raise ValueError("authority_key_identifier must be non-empty bytes")

    if isinstance(entries, EncodedEntries):
        revoked, count = entries.content, entries.count
    else:
        revoked, count = _encode_entries(entries, delta=delta_base is not None)
    extensions = _crl_extensions(crl_number=crl_number, authority_key_identifier=authority_key_identifier,
                                 delta_base=delta_base, freshest_crl_urls=tuple(freshest_crl_urls))
    head = (b"\x02\x01\x01"  # version v2
            + signature_algorithm.dump() + issuer.dump()
            + _der_time(this_update) + _der_time(next_update))
    # RFC 5280 5.1.2.6: with no revoked certificates the list is absent, not empty
    revoked_tlv = (b"\x30" + _der_length(len(revoked))) if count else b""
    tail = _tlv(0xA0, extensions)
    body_length = len(head) + len(revoked_tlv) + len(revoked) + len(tail)
    # one copy of the (possibly 50 MB) entry list into the result
    return b"".join((b"\x30" + _der_length(body_length), head, revoked_tlv, revoked, tail))


def build_tbs_crl(*, issuer: asn1_x509.Name, this_update: datetime, next_update: datetime,
                  crl_number: int, entries: Iterable[RevokedEntry | tuple[int, datetime, str | None]],
                  authority_key_identifier: bytes, signature_algorithm: algos.SignedDigestAlgorithm,
                  delta_base: int | None = None,
                  freshest_crl_urls: Sequence[str] = ()) -> asn1_crl.TbsCertList:
    """`encode_tbs_crl_der`, as a (lazily parsed) asn1crypto TbsCertList."""
    return asn1_crl.TbsCertList.load(encode_tbs_crl_der(
        issuer=issuer, this_update=this_update, next_update=next_update, crl_number=crl_number,
        entries=entries, authority_key_identifier=authority_key_identifier,
        signature_algorithm=signature_algorithm, delta_base=delta_base,
        freshest_crl_urls=freshest_crl_urls))


def _read_header(der: bytes | memoryview, offset: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER TLV at `offset`."""
    if offset + 2 > len(der):
        raise ValueError("truncated DER")
    tag, first = der[offset], der[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 8 or start + count > len(der):
            raise ValueError("bad DER length")
        length = int.from_bytes(der[start:start + count], "big")
        start += count
    if start + length > len(der):
        raise ValueError("truncated DER")
    return tag, start, start + length


def sign_crl_der(tbs_der: bytes, key: PrivateKey, distid: bytes | None = None) -> bytes:
    """DER CertificateList: `tbs_der` signed by the CA key (SM2: with `distid`, default GM/T).

    Reads only the TBS's first fields (to match the signature algorithm) and
    checks the signature with the public key before returning it.
    """
    algorithm = key.public_key().signature_algorithm()
    algorithm_der = algorithm.dump()
    view = memoryview(tbs_der)
    tag, start, end = _read_header(view, 0)
    if tag != 0x30 or end != len(tbs_der):
        raise ValueError("tbs_der is not one DER SEQUENCE")
    tag, _, field_end = _read_header(view, start)
    algorithm_start = field_end if tag == 0x02 else start  # skip the version (absent in v1)
    _, _, algorithm_end = _read_header(view, algorithm_start)
    inner = algos.SignedDigestAlgorithm.load(bytes(view[algorithm_start:algorithm_end]))
    _check_algorithm_fits_key(inner, key, "the TBSCertList")
    signature = _sign(key, tbs_der, distid)
    verify_signed_data(key.public_key(), inner, signature, tbs_der, distid=distid)
    bit_string = _tlv(0x03, b"\x00" + signature)
    header = b"\x30" + _der_length(len(tbs_der) + len(algorithm_der) + len(bit_string))
    return b"".join((header, tbs_der, algorithm_der, bit_string))


def sign_crl(tbs: asn1_crl.TbsCertList, key: PrivateKey, *,
             distid: bytes | None = None) -> asn1_crl.CertificateList:
    return asn1_crl.CertificateList.load(sign_crl_der(tbs.dump(), key, distid))


# --------------------------------------------------------------------------- reading

def load_crl(data: bytes) -> asn1_crl.CertificateList:
    """A CRL, PEM or DER.  The envelope is checked now; entries are parsed when read."""
    blocks = _der_blocks(data, ("X509 CRL",), "CRL", "crl")
    if len(blocks) != 1:
        raise CertificateError(f"expected one CRL, found {len(blocks)}", field="crl")
    try:
        crl_ = asn1_crl.CertificateList.load(blocks[0], strict=True)
        tbs = crl_["tbs_cert_list"]
        for name in ("version", "signature", "issuer", "this_update", "next_update", "crl_extensions"):
            tbs[name].native
        crl_["signature_algorithm"].native
        crl_["signature"].native
        if tbs["revoked_certificates"].contents and tbs["revoked_certificates"].contents[0] != 0x30:
            raise ValueError("revokedCertificates holds something other than entries")
    except Exception as exc:  # asn1crypto raises several types for junk
        raise CertificateError("not a DER X.509 CRL", field="crl") from exc
    return crl_


def crl_to_pem(crl_: asn1_crl.CertificateList) -> bytes:
    return pem.armor("X509 CRL", crl_.dump())


def verify_crl_signature(crl_: asn1_crl.CertificateList, issuer_public_key: PublicKey, *,
                         distid: bytes | None = None) -> None:
    """Raise `InvalidSignature` unless `issuer_public_key` signed the CRL (SM2: with `distid`)."""
    outer = crl_["signature_algorithm"]
    if outer.dump() != crl_["tbs_cert_list"]["signature"].dump():
        raise InvalidSignature("CRL signature algorithm differs from the one in its TBS")
    verify_signed_data(issuer_public_key, outer, crl_["signature"].native,
                       crl_["tbs_cert_list"].dump(), distid=distid)


def crl_entries(crl_: asn1_crl.CertificateList | asn1_crl.TbsCertList) -> Iterator[RevokedEntry]:
    """The CRL's entries, parsed one by one (reason None when the entry has no reasonCode)."""
    tbs = crl_["tbs_cert_list"] if isinstance(crl_, asn1_crl.CertificateList) else crl_
    for revoked in tbs["revoked_certificates"]:
        reason = None
        for extension in revoked["crl_entry_extensions"]:
            if extension["extn_id"].native == "crl_reason":
                reason = extension["extn_value"].native
        yield RevokedEntry(revoked["user_certificate"].native, revoked["revocation_date"].native, reason)


def _crl_extension(crl_: asn1_crl.CertificateList | asn1_crl.TbsCertList, name: str) -> object:
    tbs = crl_["tbs_cert_list"] if isinstance(crl_, asn1_crl.CertificateList) else crl_
    for extension in tbs["crl_extensions"]:
        if extension["extn_id"].native == name:
            return extension["extn_value"].native
    return None


def crl_number(crl_: asn1_crl.CertificateList | asn1_crl.TbsCertList) -> int | None:
    return _crl_extension(crl_, "crl_number")  # type: ignore[return-value]


def crl_delta_base(crl_: asn1_crl.CertificateList | asn1_crl.TbsCertList) -> int | None:
    """The base CRL number of a delta CRL; None for a full CRL."""
    return _crl_extension(crl_, "delta_crl_indicator")  # type: ignore[return-value]

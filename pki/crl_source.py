"""A CA's CRL entries read from the store and encoded straight into DER.

A CRL of a million entries is one loop over a million rows, so what each row
costs is what the CRL costs.  Measured on 10^6 revoked entries (SQLite, see
bench/bench_crl_scale.py), the straightforward path — SQLAlchemy rows with
datetime result processing, one `RevokedEntry` (validated, timezone-normalised)
per row, then `pki.crl`'s encoder — spent about 15 s, all of it in Python
per-row work; signing the 47 MB TBS takes a tenth of a second.  So on SQLite:

* the rows come from the DBAPI cursor as the stored text (the hex serial, the
  ``YYYY-MM-DD HH:MM:SS.ffffff`` time SQLAlchemy writes, the reason name),
  with no Row or datetime object per row;
* a covering index (``ix_certificates_crl``: CA, status, notAfter, serial,
  revocation time and reason) lets SQLite answer from the index alone instead
  of visiting each table row;
* each entry's DER is a handful of slices and one ``bytes.fromhex``, appended
  to one buffer that `pki.crl.encode_tbs_crl_der` takes as `EncodedEntries`.

Other engines go through `pki.crl`'s own encoder with (serial, time, reason)
tuples.  Both paths give the same octets (tests/test_crl_scale_*.py compare
them, and with asn1crypto).  Correctness rests on the store's rules: serials
are unique per CA (a constraint) and stored as lowercase hex without leading
zeros; anything else in a row makes the CRL fail rather than come out wrong.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import sqlalchemy as sa
from asn1crypto import crl as asn1_crl

from .crl import EncodedEntries
from .store import certificates, register_migration

__all__ = ["delta_entries", "delta_entries_portable", "full_entries", "full_entries_portable"]

#: revokedCertificates is read from this index alone (SQLite: a covering index scan)
CRL_INDEX = sa.Index("ix_certificates_crl", certificates.c.ca_id, certificates.c.status,
                     certificates.c.not_after, certificates.c.serial, certificates.c.revoked_at,
                     certificates.c.revocation_reason)
#: delta CRLs and the status service's change watch read recent status changes through this one
CHANGED_INDEX = sa.Index("ix_certificates_changed", certificates.c.ca_id, certificates.c.status_changed_at)
# register_migration creates each object with .create(conn, checkfirst=True): indexes have it too
register_migration(300, "status: CRL covering index, status-change index",
                   (CRL_INDEX, CHANGED_INDEX))  # type: ignore[arg-type]

_REASON_CODES = {name: code for code, name in asn1_crl.CRLReason._map.items()}


def _reason_extensions(name: str) -> bytes:
    """crlEntryExtensions holding only reasonCode (non-critical), declared with asn1crypto once."""
    return asn1_crl.CRLEntryExtensions([{"extn_id": "crl_reason", "critical": False,
                                         "extn_value": name}]).dump()


# RFC 5280 5.3.1: 'unspecified' is written as no reasonCode at all, as pki.crl does
_FULL_REASONS: dict[str | None, bytes] = {None: b"", "unspecified": b""}
_FULL_REASONS.update({name: _reason_extensions(name) for name in _REASON_CODES
                      if name not in ("unspecified", "remove_from_crl")})
_DELTA_REASONS = dict(_FULL_REASONS, remove_from_crl=_reason_extensions("remove_from_crl"))
_SEQUENCE = [bytes((0x30, n)) for n in range(128)]
_INTEGER = [bytes((0x02, n)) for n in range(128)]

_FULL_SQL = ("SELECT serial, revoked_at, revocation_reason FROM certificates "
             "WHERE ca_id = ? AND status IN ('revoked', 'held') AND not_after > ?")
# a delta lists new revocations and holds, and released holds as removeFromCRL at their release
_DELTA_SQL = ("SELECT serial, "
              "CASE WHEN status = 'issued' THEN released_at ELSE revoked_at END, "
              "CASE WHEN status = 'issued' THEN 'remove_from_crl' ELSE revocation_reason END "
              "FROM certificates WHERE ca_id = ? AND status_changed_at >= ? AND not_after > ? "
              "AND (status IN ('revoked', 'held') OR (status = 'issued' AND released_at IS NOT NULL))")


def _encode_stored_rows(rows: Iterable[tuple[str, str, str | None]],
                        reasons: dict[str | None, bytes]) -> EncodedEntries:
    """Entry DER from (hex serial, stored 'YYYY-MM-DD HH:MM:SS[.ffffff]' UTC time, reason name) rows.

    Every entry is at most 2 + 22 + 17 + 16 octets, so all its lengths take the short form;
    the part before the serial and the reason part depend only on the serial's length and the
    reason, and are made once per such pair.  Entries are gathered in a list and joined in
    blocks: fewer temporary objects per row than appending each piece to one buffer.
    """
    out = bytearray()
    parts: list[bytes] = []
    append = parts.append
    fromhex = bytes.fromhex
    framing: dict[tuple[int, str | None, bool], tuple[bytes, bytes, bytes]] = {}
    count = 0
    for serial, at, reason in rows:
        if len(serial) & 1:
            serial = "0" + serial
        if serial[0] >= "8":          # keep the INTEGER positive
            serial = "00" + serial
        utc_time = "1950" <= at < "2050"   # RFC 5280 4.1.2.5: UTCTime through 2049
        key = (len(serial), reason, utc_time)
        frame = framing.get(key)
        if frame is None:
            frame = framing[key] = _framing(serial, reason, utc_time, reasons)
        digits = (at[2:19] if utc_time else at[:19]).encode().translate(None, b"- :")
        if len(digits) != (12 if utc_time else 14):
            raise ValueError(f"certificate {serial}: stored time {at!r} is not in the store's form")
        append(frame[0] + fromhex(serial) + frame[1] + digits + frame[2])
        count += 1
        if len(parts) == 65536:
            out += b"".join(parts)
            parts.clear()
    out += b"".join(parts)
    return EncodedEntries(out, count)


def _framing(serial_hex: str, reason: str | None, utc_time: bool,
             reasons: dict[str | None, bytes]) -> tuple[bytes, bytes, bytes]:
    """The fixed octets of one entry: before the serial's value, between it and the time's
    digits, and after them."""
    try:
        extensions = reasons[reason]
    except KeyError:
        raise ValueError(f"certificate {serial_hex}: revocation reason {reason!r} cannot be listed") from None
    serial_length = len(serial_hex) // 2
    if serial_length > 20:      # RFC 5280 4.1.2.2, as pki.crl checks
        raise ValueError(f"certificate {serial_hex}: serial longer than 20 octets")
    time_header = b"\x17\x0d" if utc_time else b"\x18\x0f"
    time_length = 15 if utc_time else 17
    entry_length = 2 + serial_length + time_length + len(extensions)
    return _SEQUENCE[entry_length] + _INTEGER[serial_length], time_header, b"Z" + extensions


def _stored_time(conn: Any, value: datetime) -> Any:
    """`value` as the store writes it into a DateTime column (SQLite: text that sorts by time)."""
    return certificates.c.not_after.type.bind_processor(conn.dialect)(value)


def _raw_cursor(conn: Any) -> Any:
    # the DBAPI connection under the caller's transaction (same snapshot, same lock)
    return conn.connection.driver_connection.cursor()


def full_entries(conn: Any, ca_id: int, *, min_not_after: datetime) -> EncodedEntries | list[tuple[int, datetime, str | None]]:
    """revokedCertificates of a full CRL: revoked and held certificates whose notAfter is later
    than `min_not_after` (expired ones leave the CRL after the grace the caller allows)."""
    if conn.dialect.name == "sqlite":
        cursor = _raw_cursor(conn)
        try:
            cursor.execute(_FULL_SQL, (ca_id, _stored_time(conn, min_not_after)))
            return _encode_stored_rows(cursor, _FULL_REASONS)
        finally:
            cursor.close()
    return full_entries_portable(conn, ca_id, min_not_after=min_not_after)


def full_entries_portable(conn: Any, ca_id: int, *, min_not_after: datetime) -> list[tuple[int, datetime, str | None]]:
    """`full_entries` for any engine, as (serial, time, reason) tuples for `pki.crl`'s encoder."""
    c = certificates.c
    rows = conn.execute(sa.select(c.serial, c.revoked_at, c.revocation_reason)
                        .where(c.ca_id == ca_id, c.status.in_(("revoked", "held")), c.not_after > min_not_after))
    return [(int(serial, 16), at, reason) for serial, at, reason in rows]


def delta_entries(conn: Any, ca_id: int, *, since: datetime,
                  min_not_after: datetime) -> EncodedEntries | list[tuple[int, datetime, str | None]]:
    """revokedCertificates of a delta CRL: what changed at or after `since` (the base CRL's
    thisUpdate; times are whole seconds, so a change in that very second is listed — twice is
    harmless, never is not): new revocations and holds, and released holds as removeFromCRL."""
    if conn.dialect.name == "sqlite":
        cursor = _raw_cursor(conn)
        try:
            cursor.execute(_DELTA_SQL, (ca_id, _stored_time(conn, since), _stored_time(conn, min_not_after)))
            return _encode_stored_rows(cursor, _DELTA_REASONS)
        finally:
            cursor.close()
    return delta_entries_portable(conn, ca_id, since=since, min_not_after=min_not_after)


def delta_entries_portable(conn: Any, ca_id: int, *, since: datetime,
                           min_not_after: datetime) -> list[tuple[int, datetime, str | None]]:
    """`delta_entries` for any engine, as (serial, time, reason) tuples for `pki.crl`'s encoder."""
    c = certificates.c
    rows = conn.execute(sa.select(c.serial, c.status, c.revoked_at, c.revocation_reason, c.released_at)
                        .where(c.ca_id == ca_id, c.status_changed_at >= since, c.not_after > min_not_after))
    out: list[tuple[int, datetime, str | None]] = []
    for serial, status, revoked_at, reason, released_at in rows:
        if status in ("revoked", "held"):
            out.append((int(serial, 16), revoked_at, reason))
        elif status == "issued" and released_at is not None:
            out.append((int(serial, 16), released_at, "remove_from_crl"))
    return out

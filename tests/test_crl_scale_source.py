"""CRL entries read from the database and encoded row by row (pki.crl_source): the same entries, octet for
octet, as pki.crl's own encoder and asn1crypto; expired entries leave after the grace; delta CRLs with
removeFromCRL; a malformed stored row stops the CRL instead of corrupting it.  `openssl crl` judges."""
from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from asn1crypto import crl as asn1_crl

from pki import crl_source
from pki.crl import EncodedEntries, encode_tbs_crl_der
from pki.status import EXPIRED_ENTRY_GRACE, generate_crl
from pki.store import certificates

from ca_helpers import World, openssl, sql, wall_clock

UTC = timezone.utc
REASONS = [None, "unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
           "cessation_of_operation", "certificate_hold", "privilege_withdrawn", "aa_compromise"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("crls") / "home", tmp_path_factory.mktemp("crls-files"), wall_clock())
    w.init_ca("rsa", "rsa2048")
    w.init_ca("other", "ecdsa-p256")
    return w


def _serials(rng: random.Random, count: int) -> list[int]:
    """Serials of every length and both top-bit states, some with odd hex length."""
    out: set[int] = set()
    while len(out) < count:
        bits = rng.choice([1, 7, 8, 9, 15, 16, 63, 64, 65, 127, 128, 152, 159])
        value = rng.getrandbits(bits) | (1 << (bits - 1))
        out.add(value)
    return sorted(out)


def _times(rng: random.Random) -> datetime:
    # both sides of the UTCTime/GeneralizedTime boundaries (1950, 2050), with microseconds
    year = rng.choice([1949, 1950, 1999, 2024, 2049, 2050, 2100])
    return datetime(year, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
                    rng.randint(0, 59), rng.randint(0, 999_999), tzinfo=UTC)


def _insert(world: World, ca: str, rows: list[dict[str, object]]) -> None:
    ca_id = world.authority.get(ca).id
    now = world.clock.now()
    with world.home.store.transaction() as conn:
        conn.execute(sa.insert(certificates), [dict(
            ca_id=ca_id, profile="person", subject="CN=x", public_key_fp="0" * 64, not_before=now,
            tbs_der=b"", retention_years=5, created_at=now,
            **{"revoked_at": None, "revocation_reason": None, "released_at": None, **row}) for row in rows])


def _entry_multiset(der: bytes) -> Counter[bytes]:
    tbs = asn1_crl.TbsCertList.load(der)
    entries = [entry.dump(force=True) for entry in tbs["revoked_certificates"]]
    # DER as asn1crypto writes it, from the parsed values
    assert [e.dump() for e in tbs["revoked_certificates"]] == entries
    return Counter(entries)


def _tbs(world: World, entries: object, *, delta_base: int | None = None) -> bytes:
    ca = world.authority.get("rsa")
    now = world.clock.now()
    return encode_tbs_crl_der(issuer=ca.certificate.subject, this_update=now, next_update=now + timedelta(days=1),
                              crl_number=9, entries=entries,  # type: ignore[arg-type]
                              authority_key_identifier=b"k" * 20,
                              signature_algorithm=world.key("rsa").public_key().signature_algorithm(),
                              delta_base=delta_base)


def test_fast_path_equals_portable_path_and_asn1crypto(world: World) -> None:
    rng = random.Random(20240601)
    serials = _serials(rng, 600)
    now = world.clock.now()
    rows = []
    for i, serial in enumerate(serials):
        reason = REASONS[i % len(REASONS)]
        status = "held" if reason == "certificate_hold" else "revoked"
        rows.append(dict(serial=f"{serial:x}", status=status, revoked_at=_times(rng), revocation_reason=reason,
                         not_after=now + timedelta(days=30), status_changed_at=now))
    # valid and never-revoked certificates are not listed
    rows += [dict(serial=f"{s:x}", status="issued", not_after=now + timedelta(days=30), status_changed_at=now)
             for s in _serials(random.Random(7), 50) if s not in set(serials)]
    _insert(world, "rsa", rows)
    ca_id = world.authority.get("rsa").id
    with world.home.store.read() as conn:
        fast = crl_source.full_entries(conn, ca_id, min_not_after=now)
        portable = crl_source.full_entries_portable(conn, ca_id, min_not_after=now)
    assert isinstance(fast, EncodedEntries) and fast.count == len(portable) == len(serials)
    assert _entry_multiset(_tbs(world, fast)) == _entry_multiset(_tbs(world, portable))
    # and the values are the stored ones (time to the second; 'unspecified' written as no reason)
    listed = {e["user_certificate"].native: (e["revocation_date"].native,
                                             e["crl_entry_extensions"].native and
                                             e["crl_entry_extensions"][0]["extn_value"].native)
              for e in asn1_crl.TbsCertList.load(_tbs(world, fast))["revoked_certificates"]}
    for row in rows[:len(serials)]:
        at, reason = listed[int(str(row["serial"]), 16)]
        assert at == row["revoked_at"].replace(microsecond=0)  # type: ignore[union-attr]
        assert reason == (None if row["revocation_reason"] in (None, "unspecified") else row["revocation_reason"])


def test_generated_crl_verifies_with_openssl_and_lists_the_database(world: World) -> None:
    result = generate_crl(world.authority, world.authority.get("rsa"), world.key("rsa"), actor=world.op)
    path = world.files / "scale-full.crl"
    path.write_bytes(result.der)
    proc = openssl("crl", "-inform", "DER", "-in", path, "-CAfile", world.ca_pem("rsa"), "-noout", "-text")
    text = (proc.stdout + proc.stderr).decode()
    assert "verify OK" in text
    listed = sql(world.db_path(), "SELECT count(*) FROM certificates WHERE ca_id = ? AND status IN "
                                  "('revoked', 'held')", (world.authority.get("rsa").id,))[0][0]
    assert result.entries == listed == text.count("Serial Number:")


def test_expired_entries_leave_after_the_grace(world: World) -> None:
    now = world.clock.now()
    just_inside = now - EXPIRED_ENTRY_GRACE + timedelta(hours=1)
    outside = now - EXPIRED_ENTRY_GRACE - timedelta(hours=1)
    _insert(world, "other", [
        dict(serial="abc001", status="revoked", revoked_at=now - timedelta(days=30), revocation_reason="superseded",
             not_after=just_inside, status_changed_at=now),
        dict(serial="abc002", status="revoked", revoked_at=now - timedelta(days=30), revocation_reason="superseded",
             not_after=outside, status_changed_at=now)])
    result = generate_crl(world.authority, world.authority.get("other"), world.key("other"), actor=world.op)
    path = world.files / "grace.crl"
    path.write_bytes(result.der)
    text = openssl("crl", "-inform", "DER", "-in", path, "-CAfile", world.ca_pem("other"), "-noout",
                   "-text").stdout.decode()
    assert "ABC001" in text and "ABC002" not in text


def test_delta_lists_changes_and_released_holds_as_remove_from_crl(world: World) -> None:
    ca = world.authority.get("other")
    generate_crl(world.authority, ca, world.key("other"), actor=world.op)            # the base
    world.clock.advance(timedelta(seconds=5))
    now = world.clock.now()
    _insert(world, "other", [
        dict(serial="def001", status="revoked", revoked_at=now, revocation_reason="key_compromise",
             not_after=now + timedelta(days=9), status_changed_at=now),
        dict(serial="def002", status="issued", released_at=now, not_after=now + timedelta(days=9),
             status_changed_at=now)])
    with world.home.store.read() as conn:
        since = now - timedelta(seconds=1)
        fast = crl_source.delta_entries(conn, ca.id, since=since, min_not_after=now)
        portable = crl_source.delta_entries_portable(conn, ca.id, since=since, min_not_after=now)
    assert _entry_multiset(_tbs(world, fast, delta_base=1)) == _entry_multiset(_tbs(world, portable, delta_base=1))
    result = generate_crl(world.authority, ca, world.key("other"), delta=True, actor=world.op)
    path = world.files / "scale-delta.crl"
    path.write_bytes(result.der)
    text = openssl("crl", "-inform", "DER", "-in", path, "-CAfile", world.ca_pem("other"), "-noout",
                   "-text").stdout.decode()
    assert "Delta CRL Indicator" in text and "DEF001" in text and "Key Compromise" in text
    assert "DEF002" in text and "Remove From CRL" in text


def test_a_malformed_stored_time_stops_the_crl(world: World) -> None:
    ca = world.authority.get("rsa")
    before = sql(world.db_path(), "SELECT count(*) FROM crls")[0][0]
    sql(world.db_path(), "UPDATE certificates SET revoked_at = '2024-01-01T00:00:00' "
                         "WHERE ca_id = ? AND status = 'revoked' AND rowid = (SELECT min(rowid) FROM certificates "
                         "WHERE ca_id = ? AND status = 'revoked')", (ca.id, ca.id))
    with pytest.raises(ValueError, match="store's form"):
        generate_crl(world.authority, ca, world.key("rsa"), actor=world.op)
    assert sql(world.db_path(), "SELECT count(*) FROM crls")[0][0] == before

"""Retention: `purge` removes only records past retention — 5 years after a certificate stops being
valid (expiry, or revocation if earlier), 10 for government and seal profiles — and says what it removed."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from pki.ca import purge
from pki.clock import FixedClock, SystemClock
from pki.errors import NotFound

from ca_helpers import World, apply_and_issue, sql, yinxin, session_env


def years_after(at: datetime, years: int) -> datetime:
    """The same date `years` later; 29 February rolls to 1 March, never earlier (nothing is purged early)."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, month=3, day=1)


class Records:
    def __init__(self, world: World) -> None:
        self.world = world
        w = world
        evidence = w.files / "营业执照.pdf"
        evidence.write_bytes(b"%PDF-1.7 business licence")
        shared = w.files / "shared.pdf"
        shared.write_bytes(b"%PDF-1.7 shared evidence")

        def issue(name: str, profile: str, subject: str, **kw):  # type: ignore[no-untyped-def]
            return apply_and_issue(w, ca="ec", profile=profile, subject=subject,
                                   generate_key_out=w.files / f"{name}.key", **kw).record

        self.person = issue("person", "person", "/CN=张三", id_number="110101199001011234",
                            evidence=[evidence, shared])
        self.organization = issue("org", "organization", "/O=某公司/CN=某公司", evidence=[shared])
        self.revoked = issue("revoked", "organization", "/O=某公司/CN=已吊销")
        self.seal = issue("seal", "seal", "/O=某市政府/CN=某市政府公章")
        self.government = issue("gov", "government", "/O=某市政府/CN=某市政府")
        w.clock.advance(timedelta(days=10))
        w.authority.revoke(self.revoked.serial, reason="cessationOfOperation", actor=w.op)
        self.revoked = w.authority.show(self.revoked.serial)

    def present(self) -> set[str]:
        return {serial for (serial,) in sql(self.world.db_path(), "SELECT serial FROM certificates")}


@pytest.fixture
def records(tmp_path: Path) -> Records:
    # mid-June: no validity period here ends on a 29 February (whose anniversaries are a matter of taste)
    world = World(tmp_path / "home", tmp_path / "files", FixedClock(datetime(2030, 6, 15, 8, tzinfo=timezone.utc)))
    world.init_ca("ec", "ecdsa-p256", days=3650 * 3)
    world.init_ca("sub", "ecdsa-p256", parent="ec", days=400)   # a sub-CA certificate: never purged
    return Records(world)


def test_nothing_is_purged_before_retention_ends(records: Records) -> None:
    w = records.world
    everything = records.present()
    w.clock.set(years_after(records.revoked.revoked_at, 5) - timedelta(seconds=1))
    assert purge(w.authority, actor=w.op) == []
    assert records.present() == everything


def test_retention_five_and_ten_years(records: Records) -> None:
    w = records.world
    r = records
    ca_cert_serial = w.authority.get("sub").serial

    # 5 years after the revocation: the revoked record goes, nothing else
    w.clock.set(years_after(r.revoked.revoked_at, 5))
    removed = purge(w.authority, actor=w.officer("archivist"))
    assert [(p.serial, p.retention_years, p.ended) for p in removed] == [(r.revoked.serial, 5, r.revoked.revoked_at)]
    assert r.revoked.serial not in r.present()
    with pytest.raises(NotFound):
        w.authority.show(r.revoked.serial)

    # 5 years after expiry: person and organization go, with their applications and evidence
    w.clock.set(years_after(r.person.not_after, 5) + timedelta(seconds=1))
    person_app = r.person.application_id
    digests = [d for (d,) in sql(w.db_path(), "SELECT sha256 FROM evidence WHERE application_id=?", (person_app,))]
    assert len(digests) == 2
    removed = {p.serial for p in purge(w.authority, actor=w.op)}
    assert removed == {r.person.serial, r.organization.serial}
    assert sql(w.db_path(), "SELECT count(*) FROM applications WHERE id=?", (person_app,)) == [(0,)]
    assert sql(w.db_path(), "SELECT count(*) FROM evidence") == [(0,)]
    for digest in digests:
        assert not (w.home_dir / "evidence" / digest).exists()
    assert r.present() >= {r.seal.serial, r.government.serial, ca_cert_serial}

    # 10-year profiles stay until their own 10 years are over
    w.clock.set(years_after(r.government.not_after, 10) - timedelta(seconds=1))
    assert purge(w.authority, actor=w.op) == []
    w.clock.set(years_after(r.government.not_after, 10))
    assert [p.serial for p in purge(w.authority, actor=w.op)] == [r.government.serial]
    w.clock.set(years_after(r.seal.not_after, 10))
    assert [p.serial for p in purge(w.authority, actor=w.op)] == [r.seal.serial]

    # the sub-CA's certificate record, the CAs and the whole audit log remain
    assert ca_cert_serial in r.present()
    assert len(w.authority.cas()) == 2
    purges = sql(w.db_path(), "SELECT actor, details FROM audit_events WHERE action='records.purge' ORDER BY seq")
    assert purges[0][0] == "archivist" and r.revoked.serial.upper() in purges[0][1]
    assert sql(w.db_path(), "SELECT min(seq), count(*) FROM audit_events")[0] == (1, sql(
        w.db_path(), "SELECT max(seq) FROM audit_events")[0][0])


def test_shared_evidence_stays_while_referenced(records: Records) -> None:
    """Evidence is stored by digest: a file two applications share goes with the last of them."""
    w = records.world
    digest = {name: d for name, d in sql(w.db_path(), "SELECT filename, sha256 FROM evidence")}
    w.authority.revoke(records.person.serial, reason="affiliationChanged", actor=w.op)
    w.clock.set(years_after(w.clock.now(), 5))
    removed = {p.serial for p in purge(w.authority, actor=w.op)}
    assert removed == {records.person.serial, records.revoked.serial}
    assert not (w.home_dir / "evidence" / digest["营业执照.pdf"]).exists()
    assert (w.home_dir / "evidence" / digest["shared.pdf"]).exists()      # the organization still uses it
    w.clock.set(years_after(records.organization.not_after, 5))
    assert records.organization.serial in {p.serial for p in purge(w.authority, actor=w.op)}
    assert not (w.home_dir / "evidence" / digest["shared.pdf"]).exists()


def test_dry_run_removes_nothing(records: Records) -> None:
    w = records.world
    w.clock.set(years_after(records.seal.not_after, 11))
    before = records.present()
    would = purge(w.authority, dry_run=True, actor=w.op)
    assert len(would) == 5 and records.present() == before


def test_cli_purge_says_what_it_removed(tmp_path: Path) -> None:
    """Records made 12½ years ago (by a clock set back); the CLI purges with the real clock."""
    long_ago = SystemClock().now() - timedelta(days=365 * 12 + 180)
    world = World(tmp_path / "home", tmp_path / "files", FixedClock(long_ago))
    world.init_ca("old", "ecdsa-p256", days=365 * 20)
    person = apply_and_issue(world, ca="old", profile="person", subject="/CN=王五", id_number="110101198001011234",
                             generate_key_out=tmp_path / "p.key").record
    government = apply_and_issue(world, ca="old", profile="government", subject="/O=某局/CN=某局",
                                 generate_key_out=tmp_path / "g.key").record
    seal = apply_and_issue(world, ca="old", profile="seal", subject="/O=某局/CN=某局公章",
                           generate_key_out=tmp_path / "s.key").record
    dry = yinxin(world.home_dir, "ca", "purge", "--dry-run", env=session_env(world.home_dir))
    assert dry.code == 0 and dry.out.splitlines()[0] == "would remove 2 certificate record(s)"
    assert sql(world.db_path(), "SELECT count(*) FROM certificates") == [(3,)]
    result = yinxin(world.home_dir, "ca", "purge", "--json", env=session_env(world.home_dir, "archivist",
                                                                             "ca_operator"))
    assert result.code == 0, result
    data = result.json()
    assert data["dry_run"] is False
    assert {(r["serial"], r["retention_years"]) for r in data["removed"]} == {
        (person.serial.upper(), 5), (government.serial.upper(), 10)}
    assert [s for (s,) in sql(world.db_path(), "SELECT serial FROM certificates")] == [seal.serial]
    again = yinxin(world.home_dir, "ca", "purge", env=session_env(world.home_dir))
    assert again.code == 0 and again.out.strip() == "removed 0 certificate record(s)"
    assert yinxin(world.home_dir, "audit", "verify").code == 0


def test_retention_from_29_february_ends_no_earlier_than_1_march(tmp_path: Path) -> None:
    world = World(tmp_path / "home", tmp_path / "files", FixedClock(datetime(2030, 3, 1, 8, tzinfo=timezone.utc)))
    world.init_ca("ec", "ecdsa-p256")
    record = apply_and_issue(world, ca="ec", profile="organization", subject="/O=x/CN=leap",
                             generate_key_out=tmp_path / "k.pem").record
    assert (record.not_after.month, record.not_after.day) == (2, 29)          # 730 days from 1 March 2030
    world.clock.set(datetime(2037, 2, 28, 23, 59, 59, tzinfo=timezone.utc))
    assert purge(world.authority, actor=world.op) == []
    world.clock.set(datetime(2037, 3, 1, 8, tzinfo=timezone.utc))
    assert [p.serial for p in purge(world.authority, actor=world.op)] == [record.serial]

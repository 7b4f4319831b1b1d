"""The light read path of `yinxin ca list` / `yinxin ca cas` (pki.listing: sqlite3 opened read-only,
no SQLAlchemy) gives what the library path (`CertificateAuthority.list` / `.cas` through SQLAlchemy)
gives, on the same home: every filter, every status (reserved, issued, held, revoked, expired),
subjects with CJK, `%`, `_` and `/` (which the library escapes in LIKE), the same errors; and it
steps aside — the library path lists — for PostgreSQL, an old schema (migrated as before), a
configured database or policy directory, a config.yaml only YAML can read.

The home is made through the library at two times: certificates issued three years ago have
expired by now (the CLI's clock is the system clock), the others are current.  The CLI is compared
with itself: `--database sqlite:///HOME/yinxin.db` names the same file and so takes the library path.
With YINXIN_TEST_DATABASE=postgresql the home is on PostgreSQL and every listing goes through the
library: the tests then check that it still lists what the library lists."""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from ca_helpers import (KEY_PASSWORD, DyingKey, PowerFailure, World, apply_and_issue, assert_one_line_error, sql,
                        yinxin)
from pg_fixture import backend, backend_name, prepare_home_database  # noqa: F401 - fixture
from pki import listing
from pki.ca import CertificateAuthority
from pki.clock import FixedClock, SystemClock
from pki.home import Home
from pki.records import SCHEMA_VERSION
from pki.x509 import name_to_text, parse_name

SUBJECTS = ("/C=CN/O=印信测试/CN=100%_张三 Alpha", "/C=CN/O=印信测试/CN=100 张三", "/C=CN/O=印信_测试/CN=李四",
            "/C=CN/O=Yinxin/CN=alpha beta", "CN=王五/办公室,O=北京市测试局,C=CN")
RESERVED = "/C=CN/O=印信测试/CN=中断_50%"
#: filters: none, CJK, LIKE's own characters (literal here), the escape character, ASCII case
SUBJECT_FILTERS = (None, "", "张三", "100%", "%", "_", "0%_", "印信_", "/", "//", "CN=", "ALPHA", "Alpha", "李四",
                   "no such subject")
STATUSES = (None, "reserved", "issued", "held", "revoked", "expired")


@dataclass
class Listed:
    home: Path
    sqlite: bool           # the home's database is its own SQLite file (the light path applies)


def _issue(world: World, ca: str, subject: str, tag: str) -> str:
    issued = apply_and_issue(world, ca=ca, profile="organization", subject=subject,
                             generate_key_out=world.files / f"{tag}.key.pem")
    return issued.record.serial


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> Listed:
    base = tmp_path_factory.mktemp("fast-list")
    now = SystemClock().now()
    clock = FixedClock(now - timedelta(days=3 * 365))
    world = World(base / "home", base / "files", clock)
    world.init_ca("root", "ecdsa-p256", subject="/C=CN/O=印信测试/CN=根CA", days=7300)
    world.init_ca("sub", "ecdsa-p256", subject="/C=CN/O=印信测试/CN=业务CA", parent="root", days=7000)
    # three years ago: valid for two, so expired now (one held, one revoked before it expired)
    old = [_issue(world, ca, subject, f"old-{i}") for i, (ca, subject) in
           enumerate(zip(("sub", "root", "sub"), SUBJECTS[:3]))]
    world.authority.hold(old[1], actor=world.officer("bob"))
    world.authority.revoke(old[2], reason="superseded", actor=world.officer("bob"))
    clock.set(now - timedelta(minutes=1))
    new = [_issue(world, ca, subject, f"new-{i}") for i, (ca, subject) in
           enumerate(zip(("sub", "sub", "root", "sub", "root"), SUBJECTS))]
    world.authority.hold(new[0], actor=world.officer("bob"))
    world.authority.hold(new[1], actor=world.officer("bob"))
    world.authority.release(new[1], actor=world.officer("bob"))
    world.authority.revoke(new[2], reason="keyCompromise", actor=world.officer("bob"))
    # a reservation left by an interrupted issuance (signed or not, nobody knows)
    app = world.ra.apply(ca="sub", profile="organization", subject=RESERVED,
                         actor=world.person("alice"), generate_key_out=world.files / "reserved.key.pem",
                         key_password=KEY_PASSWORD)
    world.ra.approve(app.id, actor=world.officer("bob"))
    with pytest.raises(PowerFailure):
        world.authority._issue(world.authority.get("sub"), DyingKey(world.key("sub")), world.ra.get(app.id),
                               world.home.profiles.get("organization"), "operator")
    world.home.store.dispose()
    return Listed(world.home_dir, backend() == "sqlite")


def _library(home: Path, clock: FixedClock | None = None, **filters: Any) -> list[Any]:
    opened = Home.open(home, clock=clock or SystemClock())
    try:
        return CertificateAuthority(opened).list(**filters)
    finally:
        opened.store.dispose()


def test_the_home_has_every_status(listed: Listed) -> None:
    statuses = {r.status for r in _library(listed.home)}
    assert statuses == {"reserved", "issued", "held", "revoked"}
    assert _library(listed.home, status="expired") and _library(listed.home, status="reserved")[0].cert_der is None


def test_the_light_path_gives_the_librarys_records_for_every_filter(listed: Listed) -> None:
    clock = FixedClock(SystemClock().now())
    opened = Home.open(listed.home, clock=clock)
    authority = CertificateAuthority(opened)
    try:
        for status, subject, ca in itertools.product(STATUSES, SUBJECT_FILTERS, (None, "root", "sub")):
            light = listing.list_certificates(listed.home, status=status, subject=subject, ca=ca, clock=clock)
            if not listed.sqlite:
                assert light is None          # PostgreSQL: the library path, always
                continue
            assert light == authority.list(status=status, subject=subject, ca=ca), (status, subject, ca)
        assert (listing.list_cas(listed.home) == authority.cas()) if listed.sqlite else \
            listing.list_cas(listed.home) is None
    finally:
        opened.store.dispose()


def test_the_filters_find_what_they_name(listed: Listed) -> None:
    """Not only the same on both paths: right. LIKE's characters are literal, ASCII case is not."""
    def subjects(**filters: Any) -> list[str]:
        return [r.subject for r in _library(listed.home, **filters)]
    stored = [name_to_text(parse_name(subject)) for subject in SUBJECTS]      # as the RA records them
    reserved = name_to_text(parse_name(RESERVED))
    assert subjects(subject="100%") == [stored[0], stored[0]]
    assert subjects(subject="%") == [stored[0], stored[0], reserved]
    assert subjects(subject="印信_") == [stored[2], stored[2]]
    assert subjects(subject="/") == [stored[4]]
    assert subjects(subject="CN=") == subjects()
    assert subjects(subject="//") == []
    if listed.sqlite:                          # SQLite's LIKE ignores ASCII case; PostgreSQL's does not
        assert subjects(subject="ALPHA") == [stored[0], stored[0], stored[3]]
    light = listing.list_certificates(listed.home, subject="100%")
    assert light is None or [r.subject for r in light] == [stored[0], stored[0]]


def test_expired_means_not_after_at_or_before_the_clock(listed: Listed) -> None:
    records = _library(listed.home)
    boundary = min(r.not_after for r in records if r.not_after > SystemClock().now() - timedelta(days=400))
    for at, included in ((boundary - timedelta(seconds=1), False), (boundary, True)):
        clock = FixedClock(at)
        library = _library(listed.home, clock, status="expired")
        assert any(r.not_after == boundary for r in library) is included
        if listed.sqlite:
            assert listing.list_certificates(listed.home, status="expired", clock=clock) == library


def _cli(home: Path, *args: str, library: bool = False):  # type: ignore[no-untyped-def]
    """`yinxin ca …` on the light path, or (library=True) forced onto the library path by naming the
    same SQLite file as a database URL."""
    forced = ("--database", f"sqlite:///{home.resolve() / 'yinxin.db'}") if library else ()
    return yinxin(home, *forced, "ca", *args)


CLI_CASES = [("list",), ("list", "--json"), ("list", "--status", "expired"), ("list", "--status", "held", "--json"),
             ("list", "--status", "reserved"), ("list", "--status", "revoked", "--ca", "sub"),
             ("list", "--subject", "100%"), ("list", "--subject", "_", "--json"),
             ("list", "--subject", "张三", "--ca", "sub"),
             ("list", "--ca", "root", "--json"), ("cas",), ("cas", "--json")]
CLI_ERRORS = [("list", "--ca", "nowhere"), ("list", "--ca", "nowhere", "--json"), ("list", "--status", "lost"),
              ("list", "--status", "lost", "--json"), ("list", "--status", "expired", "--ca", "")]


@pytest.mark.parametrize("args", CLI_CASES + CLI_ERRORS, ids=" ".join)
def test_the_command_prints_the_same_bytes_on_both_paths(listed: Listed, args: tuple[str, ...]) -> None:
    if not listed.sqlite:
        pytest.skip("PostgreSQL home: both runs take the library path (see the next test)")
    light, library = _cli(listed.home, *args), _cli(listed.home, *args, library=True)
    assert (light.code, light.out, light.err) == (library.code, library.out, library.err)
    if args in CLI_ERRORS:
        assert light.code == 2
        assert_one_line_error(light, "no CA named" if "--ca" in args else "unknown status")
    else:
        assert light.code == 0 and light.out


def test_the_command_lists_what_the_library_lists(listed: Listed) -> None:
    """On either engine (PostgreSQL: the library path through config.yaml's database URL)."""
    result = _cli(listed.home, "list", "--json")
    assert result.code == 0, result
    assert result.json()["certificates"] == [r.to_dict() for r in _library(listed.home)]
    held = _cli(listed.home, "list", "--status", "held")
    lines = held.out.splitlines()
    assert held.code == 0 and len(lines) == 2 and all(" held " in line for line in lines)


def test_a_postgresql_or_configured_home_lists_through_the_library(backend_name: str,  # noqa: F811
                                                                   tmp_path: Path) -> None:
    """A home whose config.yaml names its database (PostgreSQL, or a SQLite URL): the light path
    steps aside and the command lists what the library lists."""
    home = tmp_path / "configured-home"
    database = prepare_home_database(home, backend_name=backend_name)
    assert listing.sqlite_database(home) is None
    world = World(home, tmp_path / "files", FixedClock(SystemClock().now()))
    world.init_ca("root", "ecdsa-p256")
    serial = _issue(world, "root", "/C=CN/O=印信测试/CN=张三_100%", "configured")
    world.home.store.dispose()
    assert listing.list_certificates(home) is None and listing.list_cas(home) is None
    result = yinxin(home, "ca", "list", "--json", "--subject", "_100%")
    assert result.code == 0, result
    assert result.json()["certificates"] == [r.to_dict() for r in _library(home)]
    assert [c["serial"] for c in result.json()["certificates"]] == [serial.upper()]
    assert yinxin(home, "ca", "cas").out.split()[:2] == ["root", "ecdsa-p256"]
    if not isinstance(database, Path):
        assert sql(database, "SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_a_database_given_on_the_command_line_takes_the_library_path(listed: Listed) -> None:
    assert listing.sqlite_database(listed.home, database="sqlite:///elsewhere.db") is None
    assert listing.list_certificates(listed.home, database="postgresql://nowhere/x") is None


@pytest.mark.parametrize("config, light", [
    ("", True), ("# nothing here\n\n", True), ("default_ca: sub\n", True), ("default_ca: sub  # the usual\n", True),
    ("tsa: https://tsa.example/stamp\ndefault_ca: root\n", True), ("tsa: 本局TSA\n", True), ("default_ca:\n", True),
    ("database: sqlite:///x.db\n", False), ("database:\n", False), ("policy_dir: /nowhere\n", False),
    ('"database": x\n', False), ("{database: x}\n", False), ("? database\n: x\n", False),
    ("default_ca: [unclosed\n", False), ("default_ca: a: b\n", False), ("default_ca: |\n  root\n", False),
    ("default_ca: root\n  database: x\n", False), ("- a\n", False), ("---\ndefault_ca: root\n", False),
    ("default_ca: &a root\n", False), ("default_ca: 'root'\n", False), ("default_ca: root\r\n", False),
    ("plain text\n", False), ("default_ca: 'unclosed\n", False), ("default_ca: *nowhere\n", False),
])
def test_config_yaml_the_light_path_reads_is_what_yaml_reads(tmp_path: Path, config: str, light: bool) -> None:
    """A config.yaml the light path accepts is one YAML reads as the same keys (PyYAML judges);
    anything else, and any database or policy directory, is left to the library path."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "yinxin.db").write_bytes(b"")
    (home / "config.yaml").write_text(config, encoding="utf-8")
    assert (listing.sqlite_database(home) is not None) is light
    keys = listing._config_keys(config)
    if keys is not None:
        assert keys == set(yaml.safe_load(config) or {})


def test_an_environment_database_or_policy_directory_takes_the_library_path(listed: Listed,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    if not listed.sqlite:
        pytest.skip("PostgreSQL home")
    assert listing.sqlite_database(listed.home) == listed.home / "yinxin.db"
    monkeypatch.setenv("YINXIN_DATABASE", f"sqlite:///{listed.home / 'yinxin.db'}")
    assert listing.list_certificates(listed.home) is None
    monkeypatch.delenv("YINXIN_DATABASE")
    monkeypatch.setenv("YINXIN_POLICY_DIR", str(listed.home))
    assert listing.list_cas(listed.home) is None


def test_an_old_schema_is_migrated_by_the_library_path(tmp_path: Path) -> None:
    """A home whose schema lacks the newest migration: the light path steps aside, the library path
    migrates it while listing, and the next listing is light again."""
    home = tmp_path / "old-home"
    database = prepare_home_database(home)
    world = World(home, tmp_path / "files", FixedClock(SystemClock().now()))
    world.init_ca("root", "ecdsa-p256")
    serial = _issue(world, "root", "/C=CN/O=印信测试/CN=旧库", "old")
    world.home.store.dispose()
    sql(database, "DELETE FROM schema_version WHERE version = ?", (SCHEMA_VERSION,))
    sql(database, "DROP TABLE api_tokens")
    assert sql(database, "SELECT max(version) FROM schema_version")[0][0] < SCHEMA_VERSION
    assert listing.list_certificates(home) is None
    result = yinxin(home, "ca", "list", "--json")
    assert result.code == 0, result
    assert [c["serial"] for c in result.json()["certificates"]] == [serial.upper()]
    assert sql(database, "SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)]
    assert sql(database, "SELECT count(*) FROM api_tokens") == [(0,)]
    if isinstance(database, Path):
        assert [r.serial for r in listing.list_certificates(home) or []] == [serial]


def test_stored_times_are_read_and_written_as_sqlalchemy_does() -> None:
    """The light path's text of a time is the SQLite DateTime type's own (SQLAlchemy judges)."""
    from sqlalchemy.dialects import sqlite

    from pki.store import UtcDateTime
    dialect = sqlite.dialect()
    column = UtcDateTime()
    bind = column.dialect_impl(dialect).bind_processor(dialect)             # UtcDateTime, then DateTime
    result = column.dialect_impl(dialect).result_processor(dialect, None)
    for at in (datetime(2030, 3, 1, 8, 0, tzinfo=timezone.utc), datetime(1999, 12, 31, 23, 59, 59, 123456,
                                                                            tzinfo=timezone(timedelta(hours=8))),
               datetime(9999, 1, 2, 3, 4, 5, tzinfo=timezone.utc), datetime(5, 1, 1, tzinfo=timezone.utc)):
        text = listing.stored_time_text(at)
        assert text == bind(at)
        assert listing.stored_time(text) == result(text) == at
    assert listing.stored_time(None) is None
    with pytest.raises(ValueError, match="naive"):
        listing.stored_time_text(datetime(2030, 1, 1))


def test_the_json_output_is_json(listed: Listed) -> None:
    result = _cli(listed.home, "cas", "--json")
    assert result.code == 0
    assert [c["name"] for c in json.loads(result.out)["cas"]] == ["root", "sub"]

"""The archive with trusted time: `archive` makes the archived file PAdES B-LTA when the home has a TSA
(or config.yaml names one), `renew_archives` / `yinxin doc archive-renew` renew archive timestamps
before their certificate's end — each renewal a new append-only row.

Judges: the offline verifier on the archived bytes at nine years on (nothing of the home used), pyHanko's
reader for the document timestamps, SQLite itself for the append-only triggers, the real console script."""
from __future__ import annotations

import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from ca_helpers import assert_one_line_error, yinxin
from docflow import NotAllowed
from docflow_support import ORG, OTHER, SEAL_PASSWORD, Bureau, tables, template_keys
from ltv_support import doc_timestamp_tokens
from pki.accounts.testing import actor_for_tests
from pki.ca import CertificateAuthority
from pki.clock import FixedClock, SystemClock
from pki.home import Home
from pki.status import generate_crl
from pki.tsa import HttpTimestamper, LocalTimestamper, TimestampAuthority
from seal.service import verify_offline
from test_cli_doc import Sessions
from test_docflow_seal import INCOMING_ROUTE, ready_to_send, template  # noqa: F401  (template: a fixture)
from docflow import DocumentFlow

TSA_PASSWORD = b"Tsa-Password-2026!"
CA_PASSWORD = b"Ca-Password-2026!"


def _ca_admin(home: Home):  # type: ignore[no-untyped-def]
    return actor_for_tests(home, "ca-admin", roles=("ca_operator",))


@pytest.fixture
def b(template: Path, tmp_path: Path) -> Bureau:   # `template` comes from test_docflow_seal
    path = tmp_path / "home"
    shutil.copytree(template, path)
    clock = FixedClock(SystemClock().now().replace(microsecond=0))
    home = Home.open(path, clock=clock)
    authority = CertificateAuthority(home)
    for name in ("root", "issuing"):
        info = authority.get(name)
        key = authority.load_key(info, CA_PASSWORD)
        generate_crl(authority, info, key, actor=_ca_admin(authority.home))
        generate_crl(authority, info, key, delta=True, actor=_ca_admin(authority.home))
    TimestampAuthority(home).init("archive-tsa", ca="issuing", ca_password=CA_PASSWORD, password=TSA_PASSWORD,
                                  actor=_ca_admin(home),
                                  approver=actor_for_tests(home, "ra-gu", roles=("ra_officer",)))
    return Bureau(home=home, flow=DocumentFlow(home), clock=clock, path=path,
                  seals={ORG: "official-sm2", OTHER: "tianjin-sm2"}, keys=template_keys())


def _received(b: Bureau) -> int:
    doc = ready_to_send(b)
    b.tick()
    b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER])
    b.tick()
    b.flow.receive(doc.id, actor=b.actor("t_liu"))
    b.tick()
    return doc.id


def _stamper(b: Bureau) -> LocalTimestamper:
    return LocalTimestamper(TimestampAuthority(b.home).load("archive-tsa", TSA_PASSWORD))


def test_archive_with_a_tsa_is_b_lta_and_verifies_offline_years_later(b: Bureau) -> None:
    doc_id = _received(b)
    sealed = b.flow.pdf(doc_id)
    record = b.flow.archive(doc_id, actor=b.actor("liu"), timestamper=_stamper(b))
    lta = record.record["archive_timestamp"]
    assert lta is not None and lta["tsa"].startswith("Common Name: archive-tsa")
    assert record.record["sealed_sha256"] != record.digests.sha256
    assert [r["purpose"] for r in record.reports] == ["seal", "send", "receive", "archive", "archive-lta"]
    _, data = b.flow.archived(doc_id)
    assert data.startswith(sealed) and len(doc_timestamp_tokens_bytes(data)) == 1
    root = CertificateAuthority(b.home).get("root").certificate
    later = b.clock.now() + timedelta(days=9 * 365)
    report = verify_offline(data, trust=[root], at=later)
    assert report.verdict == "valid", report.problems
    assert report.signatures[0].report.proof is not None
    # the same sealed file without the archive timestamp cannot be decided then
    assert verify_offline(sealed, trust=[root], at=later).verdict == "indeterminate"


def test_renewal_appends_and_the_archive_row_stays(b: Bureau) -> None:
    doc_id = _received(b)
    b.flow.archive(doc_id, actor=b.actor("liu"), timestamper=_stamper(b))
    before = tables(b, audit=False)["doc_archive"]
    fresh = b.flow.renew_archives(actor=b.actor("liu"), timestamper=_stamper(b), within_days=365)
    assert [(r.doc_id, r.renewed) for r in fresh] == [(doc_id, False)] and "holds until" in fresh[0].detail
    b.tick(60 * 24 * 30)
    for name in ("root", "issuing"):                    # the CAs keep publishing (yinxin serve does it hourly)
        authority = CertificateAuthority(b.home)
        info = authority.get(name)
        key = authority.load_key(info, CA_PASSWORD)
        generate_crl(authority, info, key, actor=_ca_admin(authority.home))
        generate_crl(authority, info, key, delta=True, actor=_ca_admin(authority.home))
    renewed = b.flow.renew_archives(actor=b.actor("liu"), timestamper=_stamper(b), within_days=20 * 365)
    assert [(r.doc_id, r.renewed) for r in renewed] == [(doc_id, True)]
    record, data = b.flow.archived(doc_id)
    assert [r["seq"] for r in record.record["renewals"]] == [1]
    assert len(doc_timestamp_tokens_bytes(data)) == 2
    assert tables(b, audit=False)["doc_archive"] == before            # the archive row is never rewritten
    assert b.flow.home.store is not None and _verify_home(b, data) == "valid"
    actions = [a.action for a in b.flow.log(doc_id)]
    assert actions[-2:] == ["archive", "archive-renew"]
    conn = sqlite3.connect(b.db())
    try:
        for statement in ("UPDATE doc_archive_renewals SET renewed_by = 'mallory'", "DELETE FROM doc_archive_renewals"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
    finally:
        conn.close()
    log = b.flow.log(doc_id)
    assert log[-1].actor == "liu" and log[-1].decision_seq is not None   # the secretary's signed decision
    assert b.flow.verify_log(doc_id).ok
    before = tables(b)
    with pytest.raises(NotAllowed, match="not a secretary"):
        b.flow.renew_archives(actor=b.actor("sun"), timestamper=_stamper(b), doc_ids=[doc_id])
    assert tables(b) == before


def test_a_tsa_that_cannot_answer_refuses_the_archive_and_changes_nothing(b: Bureau) -> None:
    doc_id = _received(b)
    before = tables(b)
    from pki.tsa import TimestampUnavailable
    with pytest.raises(TimestampUnavailable, match="cannot be reached"):
        b.flow.archive(doc_id, actor=b.actor("liu"), timestamper=HttpTimestamper("http://127.0.0.1:9/tsa/none", timeout=2))
    assert tables(b) == before
    assert b.flow.show(doc_id).state == "sent"


def test_the_cli_archives_with_the_homes_tsa_and_renews(b: Bureau, tmp_path: Path) -> None:
    doc_id = _received(b)
    incoming = b.flow.show(doc_id).deliveries[0].incoming_doc_id
    for user, action, to in INCOMING_ROUTE:
        b.tick()
        b.flow.act(incoming, actor=b.actor(user), action=action, opinion="阅", to=to)
    b.home.store.dispose()
    sessions = Sessions(b.path, tmp_path / "sessions")
    pw = tmp_path / "tsa.pw"
    pw.write_bytes(TSA_PASSWORD + b"\n")
    no_password = yinxin(b.path, "doc", "archive", str(doc_id), "--session", sessions["liu"])
    assert_one_line_error(no_password, "YINXIN_TSA_PASSWORD")
    archived = yinxin(b.path, "doc", "archive", str(doc_id), "--session", sessions["liu"], "--tsa-password-file", pw, "--json")
    assert archived.code == 0, archived
    assert archived.json()["record"]["archive_timestamp"]["tsa"].startswith("Common Name: archive-tsa")
    # config.yaml names the archive's TSA: a URL nobody answers refuses the recipient's archive
    (b.path / "config.yaml").write_text("tsa: http://127.0.0.1:9/tsa/nobody\n")
    refused = yinxin(b.path, "doc", "archive", str(incoming), "--session", sessions["t_liu"])
    assert_one_line_error(refused, "cannot be reached")
    (b.path / "config.yaml").write_text("tsa: archive-tsa\n")
    assert yinxin(b.path, "doc", "archive", str(incoming), "--session", sessions["t_liu"], "--tsa-password-file", pw).code == 0
    renew = yinxin(b.path, "doc", "archive-renew", "--session", sessions["liu"], "--within-days", "100000",
                   "--tsa-password-file", pw, "--json")
    assert renew.code == 0, renew
    assert renew.json()["renewed"] == 1 and renew.json()["documents"][0]["doc"] == doc_id


def doc_timestamp_tokens_bytes(data: bytes) -> list:
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".pdf") as fh:
        fh.write(data)
        fh.flush()
        return doc_timestamp_tokens(Path(fh.name))


def _verify_home(b: Bureau, data: bytes) -> str:
    from seal.service import SealService
    return SealService(b.home).verify(data).verdict

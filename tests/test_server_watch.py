"""The change watch and the per-worker answer cache, without HTTP: which committed changes are seen and
when.  Responses are read back with asn1crypto; OpenSSL judges the served ones in test_server_ocsp.py."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from asn1crypto import ocsp as asn1_ocsp

from ca_helpers import World, apply_and_issue, openssl_csr, sql, wall_clock
from pki.ocsp import OcspCertId, build_ocsp_request, issuer_hashes
from pki.presign import OcspPolicy, Presigner, load_signer
from pki.server import ChangeWatch, Endpoint, StatusService, read_engine
from pki.status import generate_crl
from pki.store import certificates


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def world(tmp_path) -> World:
    w = World(tmp_path / "home", tmp_path / "files", wall_clock())
    w.init_ca("ec", "ecdsa-p256")
    return w


def issue(world: World, name: str) -> str:
    _, csr = openssl_csr(world.files, "ecdsa-p256", f"/O=印信测试/CN={name}", stem=name)
    return apply_and_issue(world, ca="ec", profile="organization", subject=f"/O=印信测试/CN={name}",
                           csr=csr.read_bytes()).record.serial


def test_watch_sees_changes_out_of_order_and_without_a_new_timestamp(world: World) -> None:
    a, b, c = issue(world, "a"), issue(world, "b"), issue(world, "c")
    ca_id = world.authority.get("ec").id
    watch = ChangeWatch(read_engine(world.home.store.engine.url), [ca_id])
    assert not watch.poll()                                   # nobody committed
    world.clock.advance(timedelta(seconds=10))
    world.authority.revoke(a, reason="keyCompromise", actor=world.op)
    assert watch.poll().serials == {(ca_id, a)}
    assert not watch.poll()
    # a writer that took its time before a later one committed: older timestamp, within the margin
    world.clock.advance(timedelta(seconds=-5))
    world.authority.hold(b, actor=world.op)
    assert watch.poll().serials == {(ca_id, b)}
    # a status change that keeps its timestamp (as issuance turns reserved into issued)
    sql(world.db_path(), "UPDATE certificates SET status = 'reserved' WHERE serial = ?", (c,))
    assert watch.poll().serials == {(ca_id, c)}
    # a new CRL is reported too
    generate_crl(world.authority, world.authority.get("ec"), world.key("ec"), actor=world.op)
    assert watch.poll().crls == {ca_id}


def test_watch_reports_everything_when_too_much_changed(world: World) -> None:
    ca_id = world.authority.get("ec").id
    watch = ChangeWatch(read_engine(world.home.store.engine.url), [ca_id], limit=10)
    now = world.clock.now()
    with world.home.store.transaction() as conn:
        conn.execute(sa.insert(certificates), [dict(
            ca_id=ca_id, serial=f"{0xabc000 + i:x}", profile="person", subject="CN=x", public_key_fp="0" * 64,
            not_before=now, not_after=now + timedelta(days=1), status="revoked", tbs_der=b"", revoked_at=now,
            revocation_reason="superseded", status_changed_at=now, retention_years=5, created_at=now)
            for i in range(11)])
    changes = watch.poll()
    assert changes.everything


def _request(world: World, serial: str) -> bytes:
    name_hash, key_hash = issuer_hashes(world.authority.get("ec").certificate, "sha1")
    return build_ocsp_request([OcspCertId("sha1", name_hash, key_hash, int(serial, 16))])


def _status(der: bytes) -> str:
    response = asn1_ocsp.OCSPResponse.load(der)
    return response.basic_ocsp_response["tbs_response_data"]["responses"][0]["cert_status"].name


def test_cached_answers_follow_changes_and_are_revalidated(world: World) -> None:
    serial = issue(world, "cached")
    ca = world.authority.get("ec")
    signer = load_signer(world.authority, ca, ca_password=b"ca-password-1")
    Presigner(world.authority, ca, signer).refresh()
    ticker = Ticker()
    service = StatusService({"ec": Endpoint(ca, signer)}, read_engine(world.home.store.engine.url),
                            clock=world.clock, policy=OcspPolicy(), poll_interval=0.1, revalidate_after=30,
                            monotonic=ticker)
    request = _request(world, serial)
    first = service.ocsp("ec", request)
    assert _status(first.der) == "good" and not first.signed_now   # the pre-signed response
    assert service.ocsp("ec", request) is first                      # from memory
    world.authority.revoke(serial, reason="superseded", actor=world.op)
    assert service.ocsp("ec", request) is first                      # the poll interval has not passed
    ticker.now += 0.1
    answer = service.ocsp("ec", request)
    assert _status(answer.der) == "revoked" and answer.signed_now    # seen, and signed at once
    # a change the watch cannot see (timestamp far behind the newest): revalidation finds it
    world.clock.advance(timedelta(minutes=5))
    other = issue(world, "newest")
    world.authority.hold(other, actor=world.op)
    ticker.now += 0.1
    service.ocsp("ec", request)
    sql(world.db_path(), "UPDATE certificates SET status = 'issued', revoked_at = NULL, revocation_reason = NULL "
                         "WHERE serial = ?", (serial,))
    ticker.now += 0.1
    assert _status(service.ocsp("ec", request).der) == "revoked"
    ticker.now += 30
    assert _status(service.ocsp("ec", request).der) == "good"


def test_nonce_requests_are_signed_each_time_and_not_cached(world: World) -> None:
    serial = issue(world, "nonce")
    ca = world.authority.get("ec")
    signer = load_signer(world.authority, ca, ca_password=b"ca-password-1")
    service = StatusService({"ec": Endpoint(ca, signer)}, read_engine(world.home.store.engine.url),
                            clock=world.clock)
    name_hash, key_hash = issuer_hashes(ca.certificate, "sha1")
    request = build_ocsp_request([OcspCertId("sha1", name_hash, key_hash, int(serial, 16))], nonce=b"n" * 16)
    answers = [service.ocsp("ec", request) for _ in range(2)]
    assert all(a.signed_now and not a.cacheable for a in answers)
    assert answers[0] is not answers[1]
    assert asn1_ocsp.OCSPResponse.load(answers[1].der).nonce_value.native == b"n" * 16

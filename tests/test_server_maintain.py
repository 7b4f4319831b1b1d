"""The status service's maintainer, step by step with a fixed clock: first CRLs, re-signing on a status change,
a debounced delta CRL, the full CRL once the last one is old enough, scheduled CRLs, and the pre-signing sweep.
CRLs are read back with pki.crl and checked with `openssl crl -CAfile`."""
from __future__ import annotations

from datetime import timedelta

import pytest
from asn1crypto import ocsp as asn1_ocsp

from ca_helpers import PASSWORD, World, apply_and_issue, openssl, openssl_csr, wall_clock
from pki.crl import crl_delta_base, crl_entries, load_crl
from pki.presign import load_signer
from pki.server import CrlPolicy, Maintainer, ServedCa, read_engine
from pki.status import latest_crl
from server_support import crl_numbers, presigned


class Ticker:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def world(tmp_path) -> World:
    w = World(tmp_path / "home", tmp_path / "files", wall_clock())
    w.init_ca("rsa", "rsa2048")
    return w


def issue(world: World, name: str) -> str:
    _, csr = openssl_csr(world.files, "ecdsa-p256", f"/O=印信测试/CN={name}", stem=name)
    return apply_and_issue(world, ca="rsa", profile="organization", subject=f"/O=印信测试/CN={name}",
                           csr=csr.read_bytes()).record.serial


def listed(world: World, *, delta: bool) -> set[int]:
    der = latest_crl(world.authority, world.authority.get("rsa"), delta=delta)
    assert der is not None
    path = world.files / "check.crl"
    path.write_bytes(der)
    assert "verify OK" in openssl("crl", "-inform", "DER", "-in", path, "-CAfile", world.ca_pem("rsa"),
                                  "-noout").stderr.decode()
    crl = load_crl(der)
    assert (crl_delta_base(crl) is not None) == delta
    return {entry.serial for entry in crl_entries(crl)}


def stored_status(world: World, serial: str) -> str:
    der = presigned(world.db_path())[("rsa", serial)]
    return asn1_ocsp.OCSPResponse.load(der).basic_ocsp_response["tbs_response_data"]["responses"][0][
        "cert_status"].name


def test_presigning_and_crl_publication(world: World) -> None:
    serials = [issue(world, f"leaf{i}") for i in range(3)]
    ca = world.authority.get("rsa")
    signer = load_signer(world.authority, ca, ca_password=PASSWORD)
    ticker = Ticker()
    maintainer = Maintainer(world.authority, [ServedCa(ca, signer, signer.key)],
                            read_engine(world.home.store.engine.url),
                            crl_policy=CrlPolicy(interval=timedelta(hours=1), debounce=timedelta(seconds=5),
                                                 max_delay=timedelta(seconds=60), full_min_age=timedelta(minutes=5)),
                            sweep_interval=300, sweep_chunk=2, monotonic=ticker)
    db = world.db_path()
    while maintainer.step():       # the first sweep, in chunks of two
        pass
    assert {s for (_, s) in presigned(db)} >= set(serials)
    assert [d is None for _, d in crl_numbers(db, "rsa")] == [True, False]   # a full CRL, then a delta
    assert maintainer.step() is False and len(crl_numbers(db, "rsa")) == 2

    world.authority.revoke(serials[0], reason="keyCompromise", actor=world.op)
    maintainer.step()
    assert stored_status(world, serials[0]) == "revoked"          # re-signed at once
    assert len(crl_numbers(db, "rsa")) == 2                      # CRLs wait for quiet (debounce)
    ticker.now += 2
    world.authority.hold(serials[1], actor=world.op)
    maintainer.step()
    ticker.now += 4
    maintainer.step()
    assert len(crl_numbers(db, "rsa")) == 2                      # 4 s after the last change: not yet
    ticker.now += 1
    maintainer.step()
    assert len(crl_numbers(db, "rsa")) == 3                      # one delta for both changes
    wanted = {int(serials[0], 16), int(serials[1], 16)}
    assert listed(world, delta=True) == wanted
    assert not listed(world, delta=False) & wanted                # the full CRL is too young to redo
    world.clock.advance(timedelta(minutes=5))
    maintainer.step()
    assert listed(world, delta=False) == wanted                   # now it follows
    count = len(crl_numbers(db, "rsa"))
    world.clock.advance(timedelta(minutes=59))
    maintainer.step()
    assert len(crl_numbers(db, "rsa")) == count
    world.clock.advance(timedelta(minutes=2))
    maintainer.step()
    assert len(crl_numbers(db, "rsa")) == count + 2               # scheduled: full and delta


def test_responses_near_next_update_are_signed_again(world: World) -> None:
    serial = issue(world, "refresh")
    ca = world.authority.get("rsa")
    signer = load_signer(world.authority, ca, ca_password=PASSWORD)
    ticker = Ticker()
    maintainer = Maintainer(world.authority, [ServedCa(ca, signer, None)], read_engine(world.home.store.engine.url),
                            sweep_interval=300, monotonic=ticker)
    maintainer.step()
    first = presigned(world.db_path())[("rsa", serial)]
    assert crl_numbers(world.db_path(), "rsa") == []               # no CA key given: no CRLs
    world.clock.advance(timedelta(hours=11))
    ticker.now += 301
    maintainer.step()
    assert presigned(world.db_path())[("rsa", serial)] == first     # 13 h left: kept
    world.clock.advance(timedelta(hours=2))
    ticker.now += 301
    maintainer.step()
    assert presigned(world.db_path())[("rsa", serial)] != first     # 11 h left (< 12 h): signed again

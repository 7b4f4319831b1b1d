"""The SM2 backends agree: each verifies every other's signatures and derives the same public
keys; the choice can be forced; the fastest that loads is the default."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import pki
from pki.sm2 import available_backends, backend_by_name, default_backend
from pki.sm2.core import CURVE, on_curve

BACKENDS = list(available_backends())
PAIRS = [(a, b) for a in BACKENDS for b in BACKENDS if a != b]
needs_native = pytest.mark.skipif("native" not in BACKENDS,
                                  reason="the tongsuopy wheel does not install on this platform")
needs_botan = pytest.mark.skipif("botan" not in BACKENDS, reason="Debian's libbotan-2-19 is not installed")


def test_this_machine_has_every_backend() -> None:
    """The test command installs libbotan-2 and the tongsuopy wheel: on the machines it supports,
    a missing backend is a broken set-up, not a reason to skip the cross-checks below."""
    import platform
    if platform.machine() in ("x86_64", "AMD64"):
        assert BACKENDS == ["botan", "native", "gmssl"]


@pytest.mark.parametrize("signer_name,verifier_name", PAIRS)
@pytest.mark.parametrize("distid", [None, b"", b"alice@yinxin.example"], ids=["default", "empty", "custom"])
def test_each_backend_verifies_the_others_signatures(signer_name, verifier_name, distid) -> None:
    key = pki.generate_key("sm2", sm2_backend=backend_by_name(signer_name))
    assert isinstance(key, pki.SM2PrivateKey) and key.backend_name == signer_name
    verifier = key.public_key().with_backend(backend_by_name(verifier_name))
    for message in (b"", b"x", bytes(range(256)) * 40):
        sig = key.sign(message, distid=distid)
        verifier.verify(sig, message, distid=distid)
        with pytest.raises(pki.InvalidSignature):
            verifier.verify(sig, message + b"\0", distid=distid)


@pytest.mark.parametrize("generator_name,other_name", PAIRS)
def test_backends_derive_the_same_public_key(generator_name: str, other_name: str) -> None:
    d, x, y = backend_by_name(generator_name).generate(pki.SYSTEM_RANDOM)
    assert on_curve(x, y) and 0 < d < CURVE.n
    assert backend_by_name(other_name).public_point(d) == (x, y)


def test_backends_agree_on_malformed_signatures() -> None:
    key = pki.generate_key("sm2")
    sig = key.sign(b"m")
    for broken in (sig[:-1], sig + b"\0", b"", b"\x30\x00", bytes(72)):
        for name in BACKENDS:
            with pytest.raises(pki.InvalidSignature):
                key.public_key().with_backend(backend_by_name(name)).verify(broken, b"m")


def test_a_point_off_the_curve_is_refused() -> None:
    """A public key (x, y+1) is not on sm2p256v1: refused as a key, and by the compiled backends'
    own handles too (they are given raw coordinates)."""
    d, x, y = default_backend().generate(pki.SYSTEM_RANDOM)
    assert on_curve(x, y) and not on_curve(x, (y + 1) % CURVE.p) and not on_curve(x, y + CURVE.p)
    with pytest.raises(pki.KeyFileError, match="not a point on the curve"):
        pki.SM2PublicKey(x, (y + 1) % CURVE.p)
    for name in set(BACKENDS) & {"botan", "native"}:
        with pytest.raises(ValueError, match="not an SM2 public key"):
            backend_by_name(name).public_handle(x, (y + 1) % CURVE.p)


@needs_botan
def test_botan_signature_is_checked_by_tongsuo_on_the_same_digest() -> None:
    """The binding hands Botan the digest e with the hash "Raw": were Botan to hash it again or add a
    Z of its own, the other backends (which also sign e itself) would refuse every signature."""
    import os
    botan, others = backend_by_name("botan"), [backend_by_name(n) for n in BACKENDS if n != "botan"]
    d, x, y = botan.generate(pki.SYSTEM_RANDOM)
    signer = botan.private_handle(d, x, y)
    for _ in range(20):
        e = os.urandom(32)
        signature = signer.sign_digest(e, pki.SYSTEM_RANDOM)
        for other in others:
            assert other.public_handle(x, y).verify_digest(signature, e)
            assert not other.public_handle(x, y).verify_digest(signature, bytes(32))
        # a fresh nonce every time
        assert signer.sign_digest(e, pki.SYSTEM_RANDOM) != signature


@pytest.mark.parametrize("name", list(available_backends()))
def test_environment_variable_forces_the_backend(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YINXIN_SM2_BACKEND", name)
    assert default_backend().name == name
    key = pki.generate_key("sm2")
    assert isinstance(key, pki.SM2PrivateKey) and key.backend_name == name
    loaded = pki.load_private_key(key.to_pem())
    assert isinstance(loaded, pki.SM2PrivateKey) and loaded.backend_name == name


def test_unknown_backend_name_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YINXIN_SM2_BACKEND", "openssl")
    with pytest.raises(pki.PkiError, match="botan, native, gmssl, not 'openssl'"):
        default_backend()


def test_the_fastest_backend_is_chosen_when_nothing_is_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YINXIN_SM2_BACKEND", raising=False)
    assert default_backend().name == BACKENDS[0]
    assert BACKENDS[-1] == "gmssl"


def test_cli_signs_with_one_backend_and_verifies_with_the_other(tmp_path: Path, run_cli) -> None:
    key, pub, msg, sig = (tmp_path / n for n in ("k.pem", "pub.pem", "msg", "sig"))
    msg.write_bytes(b"cross-backend through the console script")
    code, out, err = run_cli(["key", "generate", "-a", "sm2", "--no-password", "--out", key, "--pub-out", pub],
                             env={"YINXIN_SM2_BACKEND": "gmssl"})
    assert code == 0, err
    for signer, verifier in PAIRS:
        code, _, err = run_cli(["key", "sign", "--key", key, "--in", msg, "--out", sig, "--force"],
                               env={"YINXIN_SM2_BACKEND": signer})
        assert code == 0, err
        code, out, err = run_cli(["--json", "key", "verify", "--key", pub, "--in", msg, "--sig", sig],
                                 env={"YINXIN_SM2_BACKEND": verifier})
        assert code == 0, err
        assert json.loads(out)["valid"] is True
        code, out, _ = run_cli(["--json", "doctor"], env={"YINXIN_SM2_BACKEND": verifier})
        assert code == 0 and json.loads(out)["sm2_backend"]["in_use"] == verifier

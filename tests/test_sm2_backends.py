"""The two SM2 backends agree: each verifies the other's signatures; the choice can be forced."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import pki
from pki.sm2 import available_backends, backend_by_name, default_backend

needs_native = pytest.mark.skipif("native" not in available_backends(),
                                  reason="the tongsuopy wheel does not install on this platform")


@needs_native
@pytest.mark.parametrize("signer_name,verifier_name", [("native", "gmssl"), ("gmssl", "native")])
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


@needs_native
def test_backends_derive_the_same_public_key() -> None:
    native, gmssl = backend_by_name("native"), backend_by_name("gmssl")
    d, x, y = native.generate(pki.SYSTEM_RANDOM)
    assert gmssl.public_point(d) == (x, y)
    d, x, y = gmssl.generate(pki.SYSTEM_RANDOM)
    assert native.public_point(d) == (x, y)


@needs_native
def test_backends_agree_on_malformed_signatures() -> None:
    key = pki.generate_key("sm2")
    sig = key.sign(b"m")
    for broken in (sig[:-1], sig + b"\0", b"", b"\x30\x00", bytes(72)):
        for name in ("native", "gmssl"):
            with pytest.raises(pki.InvalidSignature):
                key.public_key().with_backend(backend_by_name(name)).verify(broken, b"m")


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
    with pytest.raises(pki.PkiError, match="native' or 'gmssl'"):
        default_backend()


@needs_native
def test_native_is_chosen_when_nothing_is_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YINXIN_SM2_BACKEND", raising=False)
    assert default_backend().name == "native"


@needs_native
def test_cli_signs_with_one_backend_and_verifies_with_the_other(tmp_path: Path, run_cli) -> None:
    key, pub, msg, sig = (tmp_path / n for n in ("k.pem", "pub.pem", "msg", "sig"))
    msg.write_bytes(b"cross-backend through the console script")
    code, out, err = run_cli(["key", "generate", "-a", "sm2", "--no-password", "--out", key, "--pub-out", pub],
                             env={"YINXIN_SM2_BACKEND": "gmssl"})
    assert code == 0, err
    for signer, verifier in (("gmssl", "native"), ("native", "gmssl")):
        code, _, err = run_cli(["key", "sign", "--key", key, "--in", msg, "--out", sig, "--force"],
                               env={"YINXIN_SM2_BACKEND": signer})
        assert code == 0, err
        code, out, err = run_cli(["--json", "key", "verify", "--key", pub, "--in", msg, "--sig", sig],
                                 env={"YINXIN_SM2_BACKEND": verifier})
        assert code == 0, err
        assert json.loads(out)["valid"] is True
        code, out, _ = run_cli(["--json", "doctor"], env={"YINXIN_SM2_BACKEND": verifier})
        assert code == 0 and json.loads(out)["sm2_backend"]["in_use"] == verifier

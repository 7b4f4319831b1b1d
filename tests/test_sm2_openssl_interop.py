"""Live SM2 interoperability with OpenSSL's command line, in both directions.

OpenSSL 3's `pkeyutl -rawin -digest sm3` computes e = SM3(Z ‖ M) with the ID given by
`-pkeyopt distid:…`, and with the empty ID when none is given (also `distid:` with an
empty value).  We sign with each backend and each kind of ID and let OpenSSL judge.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import pki
from pki.sm2 import available_backends, backend_by_name

BACKENDS = list(available_backends())
MESSAGE = "yinxin ↔ OpenSSL: 电子印章 SM2/SM3 互通测试\n".encode()
#: (test id, ID for pki, pkeyopt arguments for openssl)
IDS = [
    ("default-id", pki.DEFAULT_DISTID, ["-pkeyopt", "distid:1234567812345678"]),
    ("custom-id", b"seal-admin@yinxin.example", ["-pkeyopt", "distid:seal-admin@yinxin.example"]),
    ("empty-id-explicit", b"", ["-pkeyopt", "distid:"]),
    ("empty-id-openssl-default", b"", []),
]


def _verify_cmd(pub: Path, msg: Path, sig: Path, idopts: list[str]) -> list[object]:
    return ["pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3", *idopts,
            "-in", msg, "-sigfile", sig]


@pytest.fixture(scope="module")
def sm2_key() -> pki.SM2PrivateKey:
    key = pki.generate_key("sm2")
    assert isinstance(key, pki.SM2PrivateKey)
    return key


@pytest.fixture
def files(tmp_path: Path, sm2_key: pki.SM2PrivateKey) -> dict[str, Path]:
    paths = {"pub": tmp_path / "pub.pem", "key": tmp_path / "key.pem", "msg": tmp_path / "msg",
             "sig": tmp_path / "sig"}
    paths["pub"].write_bytes(sm2_key.public_key().to_pem())
    paths["key"].write_bytes(sm2_key.to_pem())
    paths["msg"].write_bytes(MESSAGE)
    return paths


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", IDS, ids=[c[0] for c in IDS])
def test_openssl_verifies_our_signature(case, backend: str, sm2_key, files, openssl) -> None:
    _, distid, idopts = case
    signer = sm2_key.with_backend(backend_by_name(backend))
    files["sig"].write_bytes(signer.sign(MESSAGE, distid=distid))
    result = openssl(*_verify_cmd(files["pub"], files["msg"], files["sig"], idopts), check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert b"Signature Verified Successfully" in result.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_openssl_rejects_our_signature_under_another_id(backend: str, sm2_key, files, openssl) -> None:
    signer = sm2_key.with_backend(backend_by_name(backend))
    files["sig"].write_bytes(signer.sign(MESSAGE))  # default ID
    for idopts in ([], ["-pkeyopt", "distid:1234567812345679"]):
        result = openssl(*_verify_cmd(files["pub"], files["msg"], files["sig"], idopts), check=False)
        assert result.returncode != 0
        assert b"Verification Failure" in result.stdout + result.stderr


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", IDS, ids=[c[0] for c in IDS])
def test_we_verify_openssl_signature(case, backend: str, sm2_key, files, openssl) -> None:
    _, distid, idopts = case
    openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", files["key"], *idopts,
            "-in", files["msg"], "-out", files["sig"])
    verifier = sm2_key.public_key().with_backend(backend_by_name(backend))
    verifier.verify(files["sig"].read_bytes(), MESSAGE, distid=distid)
    wrong = b"1234567812345678" if distid == b"" else b""
    with pytest.raises(pki.InvalidSignature):
        verifier.verify(files["sig"].read_bytes(), MESSAGE, distid=wrong)


def test_openssl_generated_key_signs_for_openssl(tmp_path: Path, openssl) -> None:
    openssl("genpkey", "-algorithm", "SM2", "-out", tmp_path / "k.pem")
    key = pki.load_private_key((tmp_path / "k.pem").read_bytes())
    openssl("pkey", "-in", tmp_path / "k.pem", "-pubout", "-out", tmp_path / "pub.pem")
    assert key.public_key() == pki.load_public_key((tmp_path / "pub.pem").read_bytes())
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "sig").write_bytes(key.sign(MESSAGE))
    openssl(*_verify_cmd(tmp_path / "pub.pem", tmp_path / "msg", tmp_path / "sig",
                         ["-pkeyopt", "distid:1234567812345678"]))


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "aes256"])
def test_our_sm2_key_file_opens_in_openssl(encrypted: bool, sm2_key, tmp_path: Path, openssl) -> None:
    path = tmp_path / "ours.pem"
    path.write_bytes(sm2_key.to_pem(b"pass word" if encrypted else None))
    args = ["-passin", "pass:pass word"] if encrypted else []
    pub = openssl("pkey", "-in", path, *args, "-pubout").stdout
    assert pki.load_public_key(pub) == sm2_key.public_key()
    text = openssl("pkey", "-in", path, *args, "-noout", "-text").stdout.decode()
    assert "SM2" in text

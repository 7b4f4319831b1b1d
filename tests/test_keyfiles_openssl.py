"""Encrypted key files in both PBES2 schemes, judged by OpenSSL's command line.

* aes256 (PBKDF2-HMAC-SHA256 + AES-256-CBC): what OpenSSL writes; `openssl pkey` opens ours.
* sm4 (PBKDF2-HMAC-SM3 + SM4-CBC): what GmSSL writes.  OpenSSL cannot open such a file in one
  step, so we take ours apart with `openssl asn1parse`, derive the key with `openssl kdf`,
  decrypt with `openssl enc -sm4-cbc` and read the result with `openssl pkey`; and we build
  such files with those same tools (tests/vectors/keyfiles/make_sm2_sm4_pbes2.sh) and load them.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import pki

VECTORS = Path(__file__).parent / "vectors" / "keyfiles"
MAKE_SM4 = VECTORS / "make_sm2_sm4_pbes2.sh"
ALGS = ["rsa2048", "ecdsa-p256", "ecdsa-p384", "sm2"]  # rsa3072/4096 share rsa2048's code path
PASSWORD = "s3cret 印信".encode()


def _password(name: str) -> bytes:
    return (VECTORS / f"{name}.password").read_bytes().splitlines()[0]


@pytest.fixture(scope="module")
def keys_by_alg() -> dict[str, pki.PrivateKey]:
    return {alg: pki.generate_key(alg) for alg in ALGS}


# --------------------------------------------------------------------------- stored vectors

PEM_VECTORS = sorted(p.stem for p in VECTORS.glob("*.pem")
                     if not p.name.endswith((".pub.pem", ".cert.pem")))


def test_vector_set_is_complete() -> None:
    assert {"sm2_sm4_pbes2", "rsa2048_openssl_aes256", "ecdsa-p256_openssl_aes256",
            "ecdsa-p384_openssl_aes256", "rsa2048_legacy_pem", "yinxin_sm2_sm4",
            "yinxin_sm2_aes256"} <= set(PEM_VECTORS)


@pytest.mark.parametrize("name", PEM_VECTORS)
def test_vector_loads_to_its_public_key(name: str) -> None:
    key = pki.load_private_key((VECTORS / f"{name}.pem").read_bytes(), _password(name))
    assert key.public_key() == pki.load_public_key((VECTORS / f"{name}.pub.pem").read_bytes())
    assert key.public_key().algorithm in pki.ALGORITHMS


@pytest.mark.parametrize("name", PEM_VECTORS)
def test_vector_refuses_wrong_and_missing_password(name: str) -> None:
    data = (VECTORS / f"{name}.pem").read_bytes()
    with pytest.raises(pki.WrongPassword):
        pki.load_private_key(data, _password(name) + b"x")
    with pytest.raises(pki.WrongPassword):
        pki.load_private_key(data, None)


@pytest.mark.parametrize("name", [n for n in PEM_VECTORS if n.startswith("yinxin_") and n.endswith("_aes256")
                                  or "openssl_aes256" in n])
def test_aes256_vectors_open_in_openssl(name: str, openssl) -> None:
    pub = openssl("pkey", "-in", VECTORS / f"{name}.pem", "-passin", f"file:{VECTORS / name}.password",
                  "-pubout").stdout
    assert pki.load_public_key(pub) == pki.load_public_key((VECTORS / f"{name}.pub.pem").read_bytes())


# --------------------------------------------------------------------------- aes256: ours -> openssl

@pytest.mark.parametrize("alg", ALGS)
def test_our_aes256_file_opens_in_openssl(alg: str, keys_by_alg, tmp_path: Path, openssl) -> None:
    key = keys_by_alg[alg]
    path = tmp_path / "key.pem"
    path.write_bytes(key.to_pem(PASSWORD, scheme="aes256"))
    (tmp_path / "pw").write_bytes(PASSWORD + b"\n")
    pub = openssl("pkey", "-in", path, "-passin", f"file:{tmp_path / 'pw'}", "-pubout").stdout
    assert pki.load_public_key(pub) == key.public_key()
    bad = openssl("pkey", "-in", path, "-passin", "pass:wrong", "-pubout", check=False)
    assert bad.returncode != 0
    assert pki.load_private_key(path.read_bytes(), PASSWORD).public_key() == key.public_key()


# --------------------------------------------------------------------------- sm4: ours -> openssl tools

_LINE = re.compile(r"^\s*\d+:d=(\d+)\s+hl=\d+\s+l=\s*\d+\s+(?:prim|cons):\s+(.*)$")


def _asn1parse(openssl, path: Path) -> list[tuple[int, str, str]]:
    """(depth, type, value) for every element, from `openssl asn1parse`'s text."""
    rows = []
    for line in openssl("asn1parse", "-in", path).stdout.decode().splitlines():
        m = _LINE.match(line)
        assert m, line
        kind, _, value = m.group(2).partition(":")
        kind = kind.strip().removesuffix("[HEX DUMP]").strip()
        rows.append((int(m.group(1)), kind, value.strip()))
    return rows


def _take_apart(openssl, path: Path) -> dict[str, object]:
    rows = _asn1parse(openssl, path)
    objects = [v for _, t, v in rows if t == "OBJECT"]
    integers = [int(v, 16) for _, t, v in rows if t == "INTEGER"]
    octets = [(d, v) for d, t, v in rows if t == "OCTET STRING"]
    assert objects == ["PBES2", "PBKDF2", "1.2.156.10197.1.401.2", "sm4-cbc"], objects
    (salt_depth, salt), (iv_depth, iv), (body_depth, body) = octets
    assert (salt_depth, iv_depth, body_depth) == (5, 4, 1)
    iterations, key_length = integers
    assert key_length == 16
    return {"salt": salt, "iv": iv, "body": bytes.fromhex(body), "iterations": iterations}


def _openssl_sm4_decrypt(openssl, parts: dict[str, object], password: bytes, workdir: Path) -> bytes:
    dk = openssl("kdf", "-keylen", "16", "-kdfopt", "digest:SM3", "-kdfopt", f"hexpass:{password.hex()}",
                 "-kdfopt", f"hexsalt:{parts['salt']}", "-kdfopt", f"iter:{parts['iterations']}",
                 "PBKDF2").stdout.decode().strip().replace(":", "")
    (workdir / "body.bin").write_bytes(parts["body"])  # type: ignore[arg-type]
    result = openssl("enc", "-d", "-sm4-cbc", "-K", dk, "-iv", parts["iv"], "-in", workdir / "body.bin",
                     "-out", workdir / "plain.der", check=False)
    assert result.returncode == 0, result.stderr
    return (workdir / "plain.der").read_bytes()


@pytest.mark.parametrize("alg", ALGS)
def test_our_sm4_file_decrypts_with_openssl_tools(alg: str, keys_by_alg, tmp_path: Path, openssl) -> None:
    key = keys_by_alg[alg]
    path = tmp_path / "key.pem"
    path.write_bytes(key.to_pem(PASSWORD, scheme="sm4"))
    parts = _take_apart(openssl, path)
    _openssl_sm4_decrypt(openssl, parts, PASSWORD, tmp_path)
    pub = openssl("pkey", "-inform", "DER", "-in", tmp_path / "plain.der", "-pubout").stdout
    assert pki.load_public_key(pub) == key.public_key()


def test_our_sm4_file_does_not_decrypt_with_another_password(keys_by_alg, tmp_path: Path, openssl) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(keys_by_alg["sm2"].to_pem(PASSWORD, scheme="sm4"))
    parts = _take_apart(openssl, path)
    dk = openssl("kdf", "-keylen", "16", "-kdfopt", "digest:SM3", "-kdfopt", "pass:wrong",
                 "-kdfopt", f"hexsalt:{parts['salt']}", "-kdfopt", f"iter:{parts['iterations']}",
                 "PBKDF2").stdout.decode().strip().replace(":", "")
    (tmp_path / "body.bin").write_bytes(parts["body"])  # type: ignore[arg-type]
    result = openssl("enc", "-d", "-sm4-cbc", "-K", dk, "-iv", parts["iv"], "-in", tmp_path / "body.bin",
                     "-out", tmp_path / "plain.der", check=False)
    if result.returncode == 0:  # padding happened to look right: the content cannot be a key
        assert openssl("pkey", "-inform", "DER", "-in", tmp_path / "plain.der", check=False).returncode != 0


# --------------------------------------------------------------------------- sm4: openssl tools -> ours

@pytest.mark.parametrize("genpkey_args", [["-algorithm", "SM2"],
                                          ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]],
                         ids=["sm2", "ecdsa-p256"])
def test_openssl_built_sm4_file_loads(genpkey_args: list[str], tmp_path: Path, openssl) -> None:
    openssl("genpkey", *genpkey_args, "-out", tmp_path / "src.pem")
    (tmp_path / "pw").write_bytes(PASSWORD + b"\n")
    subprocess.run(["bash", str(MAKE_SM4), str(tmp_path / "src.pem"), str(tmp_path / "pw"),
                    str(tmp_path / "enc.pem"), "3000"], check=True, capture_output=True)
    data = (tmp_path / "enc.pem").read_bytes()
    key = pki.load_private_key(data, PASSWORD)
    expected = pki.load_public_key(openssl("pkey", "-in", tmp_path / "src.pem", "-pubout").stdout)
    assert key.public_key() == expected
    with pytest.raises(pki.WrongPassword):
        pki.load_private_key(data, b"wrong")


# --------------------------------------------------------------------------- every format, wrong password

@pytest.mark.parametrize("scheme", sorted(pki.SCHEMES))
@pytest.mark.parametrize("alg", ALGS)
def test_our_files_round_trip_and_refuse_wrong_password(alg: str, scheme: str, keys_by_alg) -> None:
    key = keys_by_alg[alg]
    pem_data = key.to_pem(PASSWORD, scheme=scheme)
    assert pki.load_private_key(pem_data, PASSWORD).public_key() == key.public_key()
    der_data = pki.encrypt_pkcs8(key.to_pkcs8_der(), PASSWORD, scheme=scheme, iterations=1000)
    assert pki.load_private_key(der_data, PASSWORD).public_key() == key.public_key()
    for data in (pem_data, der_data):
        with pytest.raises(pki.WrongPassword):
            pki.load_private_key(data, b"wrong")
        with pytest.raises(pki.WrongPassword):
            pki.load_private_key(data, None)


def test_openssl_der_encrypted_pkcs8_loads(tmp_path: Path, openssl) -> None:
    openssl("genpkey", "-algorithm", "SM2", "-out", tmp_path / "k.pem")
    openssl("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", tmp_path / "k.pem", "-outform", "DER",
            "-passout", "pass:der pass", "-out", tmp_path / "k.der")
    data = (tmp_path / "k.der").read_bytes()
    expected = pki.load_private_key((tmp_path / "k.pem").read_bytes()).public_key()
    assert pki.load_private_key(data, b"der pass").public_key() == expected
    with pytest.raises(pki.WrongPassword):
        pki.load_private_key(data, b"der pas")


# --------------------------------------------------------------------------- PKCS#12

P12_VECTORS = ["rsa2048_p12", "ecdsa-p256_p12"]


@pytest.mark.parametrize("name", P12_VECTORS)
def test_stored_pkcs12_imports(name: str) -> None:
    from asn1crypto import pem
    key, cert, chain = pki.load_pkcs12((VECTORS / f"{name}.p12").read_bytes(), _password(name))
    assert cert == pem.unarmor((VECTORS / f"{name}.cert.pem").read_bytes())[2]
    assert chain == []
    from asn1crypto import x509
    spki = x509.Certificate.load(cert)["tbs_certificate"]["subject_public_key_info"]
    assert key.public_key() == pki.public_key_from_spki(spki)
    assert key.algorithm == name.removesuffix("_p12")
    with pytest.raises(pki.WrongPassword):
        pki.load_pkcs12((VECTORS / f"{name}.p12").read_bytes(), b"wrong")


@pytest.mark.parametrize("alg,genpkey_args", [
    ("rsa2048", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
    ("ecdsa-p384", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]),
])
def test_live_openssl_pkcs12_imports(alg: str, genpkey_args: list[str], tmp_path: Path, openssl) -> None:
    openssl("genpkey", *genpkey_args, "-out", tmp_path / "k.pem")
    openssl("req", "-new", "-x509", "-key", tmp_path / "k.pem", "-subj", "/CN=p12 test", "-days", "30",
            "-out", tmp_path / "c.pem")
    openssl("pkcs12", "-export", "-inkey", tmp_path / "k.pem", "-in", tmp_path / "c.pem",
            "-passout", "pass:p12 pass", "-out", tmp_path / "k.p12")
    key, cert, _ = pki.load_pkcs12((tmp_path / "k.p12").read_bytes(), b"p12 pass")
    assert key.algorithm == alg
    assert key.public_key() == pki.load_private_key((tmp_path / "k.pem").read_bytes()).public_key()
    assert cert is not None
    with pytest.raises(pki.WrongPassword):
        pki.load_pkcs12((tmp_path / "k.p12").read_bytes(), b"p12 pas")

"""`yinxin key …` and `yinxin doctor` through the real console script, judged by OpenSSL."""
from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

import pki

VECTORS = Path(__file__).parent / "vectors"
PASSWORD = "口令 for tests"


@pytest.fixture
def work(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    (d / "pw").write_text(PASSWORD + "\n", encoding="utf-8")
    (d / "msg").write_bytes("公文正文 — the document to sign\n".encode())
    return d


def ok(run_cli, args, **kw) -> str:
    code, out, err = run_cli(args, **kw)
    assert code == 0, f"exit {code}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err
    return out


def ok_json(run_cli, args, **kw) -> dict:
    return json.loads(ok(run_cli, ["--json", *args], **kw))


def fails(run_cli, args, code: int = 2, **kw) -> str:
    """The command fails with `code` and one 'yinxin: error: …' line, and no traceback."""
    got, out, err = run_cli(args, **kw)
    assert got == code, f"expected exit {code}, got {got}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("yinxin: error: "), err
    return lines[0]


def files_in(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


def openssl_fingerprint(openssl, path: Path, *extra: str) -> str:
    der = openssl("pkey", "-in", path, *extra, "-pubout", "-outform", "DER").stdout
    return "sha256:" + hashlib.sha256(der).hexdigest()


# --------------------------------------------------------------------------- generate / inspect

@pytest.mark.parametrize("alg", pki.ALGORITHMS)
def test_generate_encrypted_inspect_sign_verify(alg: str, work: Path, run_cli, openssl) -> None:
    key, pub, sig = work / "key.pem", work / "pub.pem", work / "sig"
    made = ok_json(run_cli, ["key", "generate", "--algorithm", alg, "--out", key, "--password-file",
                             work / "pw", "--pub-out", pub])
    assert made["algorithm"] == alg and made["encrypted"] is True and made["scheme"] == "aes256"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    # OpenSSL opens the file and computes the same SPKI fingerprint
    fingerprint = openssl_fingerprint(openssl, key, "-passin", f"file:{work / 'pw'}")
    assert made["fingerprint"] == fingerprint

    info = ok_json(run_cli, ["key", "inspect", key, "--password-file", work / "pw"])
    assert (info["kind"], info["algorithm"], info["fingerprint"]) == ("private key", alg, fingerprint)
    assert info["encrypted"] is True and info["encryption"]["scheme"] == "aes256"
    assert info["key_size"] == {"rsa2048": 2048, "rsa3072": 3072, "rsa4096": 4096, "ecdsa-p256": 256,
                                "ecdsa-p384": 384, "sm2": 256}[alg]
    if alg.startswith("ecdsa") or alg == "sm2":
        assert info["curve"].startswith({"ecdsa-p256": "secp256r1", "ecdsa-p384": "secp384r1",
                                         "sm2": "sm2p256v1"}[alg])
    text = ok(run_cli, ["key", "inspect", pub])
    assert alg in text and fingerprint in text

    ok(run_cli, ["key", "sign", "--key", key, "--password-file", work / "pw", "--in", work / "msg",
                 "--out", sig])
    assert ok_json(run_cli, ["key", "verify", "--key", pub, "--in", work / "msg", "--sig", sig])["valid"]
    # the independent judge
    if alg == "sm2":
        verify = ["pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
                  "-pkeyopt", "distid:1234567812345678", "-in", work / "msg", "-sigfile", sig]
    else:
        digest = "-sha384" if alg == "ecdsa-p384" else "-sha256"
        verify = ["dgst", digest, "-verify", pub, "-signature", sig, work / "msg"]
    said = openssl(*verify).stdout
    assert b"Verified OK" in said or b"Signature Verified Successfully" in said


@pytest.mark.parametrize("scheme", ["aes256", "sm4"])
def test_generate_with_password_from_environment(scheme: str, work: Path, run_cli) -> None:
    key = work / "k.pem"
    ok(run_cli, ["key", "generate", "-a", "sm2", "-o", key, "--scheme", scheme],
       env={"YINXIN_PASSWORD": "from the environment"})
    info = ok_json(run_cli, ["key", "inspect", key], env={"YINXIN_PASSWORD": "from the environment"})
    assert info["algorithm"] == "sm2" and info["encryption"]["scheme"] == scheme
    assert pki.load_private_key(key.read_bytes(), b"from the environment").algorithm == "sm2"


def test_generate_refuses_without_a_password(work: Path, run_cli) -> None:
    line = fails(run_cli, ["key", "generate", "-a", "ecdsa-p256", "-o", work / "k.pem"])
    assert "--no-password" in line and "YINXIN_PASSWORD" in line
    assert not (work / "k.pem").exists()


def test_generate_plain_with_no_password(work: Path, run_cli, openssl) -> None:
    key = work / "k.pem"
    made = ok_json(run_cli, ["key", "generate", "-a", "ecdsa-p384", "-o", key, "--no-password"])
    assert made["encrypted"] is False and made["scheme"] is None
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert openssl_fingerprint(openssl, key) == made["fingerprint"]
    info = ok_json(run_cli, ["key", "inspect", key])
    assert info["encrypted"] is False and info["algorithm"] == "ecdsa-p384"
    fails(run_cli, ["key", "generate", "-a", "sm2", "-o", work / "x.pem", "--no-password",
                    "--password-file", work / "pw"])
    assert not (work / "x.pem").exists()


def test_generate_refuses_to_overwrite_without_force(work: Path, run_cli) -> None:
    key = work / "k.pem"
    key.write_bytes(b"precious")
    line = fails(run_cli, ["key", "generate", "-a", "sm2", "-o", key, "--no-password"])
    assert "--force" in line and key.read_bytes() == b"precious"
    ok(run_cli, ["key", "generate", "-a", "sm2", "-o", key, "--no-password", "--force"])
    assert pki.load_private_key(key.read_bytes()).algorithm == "sm2"


def test_generate_sm4_scheme_is_the_gmssl_format(work: Path, run_cli, openssl) -> None:
    key = work / "k.pem"
    ok(run_cli, ["key", "generate", "-a", "sm2", "-o", key, "--scheme", "sm4", "--password-file", work / "pw"])
    dump = openssl("asn1parse", "-in", key).stdout.decode()
    assert "1.2.156.10197.1.401.2" in dump and "sm4-cbc" in dump
    info = ok_json(run_cli, ["key", "inspect", key, "--password-file", work / "pw"])
    assert info["encryption"] == {"scheme": "sm4", "prf": "hmac-sm3", "cipher": "sm4_cbc",
                                  "iterations": info["encryption"]["iterations"]}


def test_inspect_encrypted_key_without_password_reports_the_encryption(work: Path, run_cli) -> None:
    key = work / "k.pem"
    ok(run_cli, ["key", "generate", "-a", "sm2", "-o", key, "--scheme", "sm4", "--password-file", work / "pw"])
    info = ok_json(run_cli, ["key", "inspect", key])
    assert info["encrypted"] is True and info["algorithm"] is None
    assert info["encryption"]["scheme"] == "sm4"


def test_inspect_openssl_made_files(work: Path, run_cli, openssl) -> None:
    sm2 = VECTORS / "sm2"
    info = ok_json(run_cli, ["key", "inspect", sm2 / "openssl_sm2_aes256.pem", "--password-file",
                             sm2 / "openssl_sm2_aes256.password"])
    expected = openssl_fingerprint(openssl, sm2 / "openssl_sm2.pem")
    assert (info["algorithm"], info["fingerprint"]) == ("sm2", expected)
    assert info["encryption"]["scheme"] == "aes256" and info["encryption"]["iterations"] == 2048
    # DER forms: SEC 1 private key as `openssl pkey -outform DER` writes, SPKI public key
    openssl("pkey", "-in", sm2 / "openssl_sm2.pem", "-outform", "DER", "-out", work / "k.der")
    openssl("pkey", "-in", sm2 / "openssl_sm2.pem", "-pubout", "-outform", "DER", "-out", work / "p.der")
    for path, kind in ((work / "k.der", "private key"), (work / "p.der", "public key")):
        info = ok_json(run_cli, ["key", "inspect", path])
        assert (info["kind"], info["format"], info["fingerprint"]) == (kind, "DER", expected)
    legacy = VECTORS / "keyfiles" / "rsa2048_legacy_pem"
    info = ok_json(run_cli, ["key", "inspect", f"{legacy}.pem", "--password-file", f"{legacy}.password"])
    assert info["algorithm"] == "rsa2048" and info["encryption"]["scheme"] == "legacy-pem"


@pytest.mark.parametrize("alg,req_args", [
    ("sm2", ["-sm3", "-sigopt", "distid:1234567812345678"]),
    ("ecdsa-p256", ["-sha256"]),
])
def test_inspect_and_verify_with_a_certificate(alg: str, req_args: list[str], work: Path, run_cli,
                                               openssl) -> None:
    key, cert, sig = work / "k.pem", work / "c.pem", work / "sig"
    ok(run_cli, ["key", "generate", "-a", alg, "-o", key, "--no-password"])
    openssl("req", "-x509", "-new", "-key", key, *req_args, "-subj", "/CN=yinxin cert test", "-days", "30",
            "-out", cert)
    openssl("x509", "-in", cert, "-outform", "DER", "-out", work / "c.der")
    for path, fmt in ((cert, "PEM"), (work / "c.der", "DER")):
        info = ok_json(run_cli, ["key", "inspect", path])
        assert (info["kind"], info["format"], info["algorithm"]) == ("certificate", fmt, alg)
        assert info["fingerprint"] == openssl_fingerprint(openssl, key)
        assert "yinxin cert test" in info["subject"]
    ok(run_cli, ["key", "sign", "-k", key, "--in", work / "msg", "-o", sig])
    ok(run_cli, ["key", "verify", "--cert", cert, "--in", work / "msg", "--sig", sig])
    ok(run_cli, ["key", "verify", "--cert", work / "c.der", "--in", work / "msg", "--sig", sig])
    fails(run_cli, ["key", "verify", "--cert", key, "--in", work / "msg", "--sig", sig])


def test_public_command_writes_the_public_key(work: Path, run_cli, openssl) -> None:
    key = work / "k.pem"
    ok(run_cli, ["key", "generate", "-a", "rsa2048", "-o", key, "--password-file", work / "pw"])
    ok(run_cli, ["key", "public", key, "--password-file", work / "pw", "--out", work / "pub.pem"])
    assert openssl("pkey", "-pubin", "-in", work / "pub.pem", "-noout").returncode == 0
    assert "sha256:" + pki.load_public_key((work / "pub.pem").read_bytes()).fingerprint() == \
        openssl_fingerprint(openssl, key, "-passin", f"file:{work / 'pw'}")


# --------------------------------------------------------------------------- SM2 distinguishing IDs

@pytest.mark.parametrize("distid,pkeyopt", [
    (None, ["-pkeyopt", "distid:1234567812345678"]),
    ("alice@yinxin.example", ["-pkeyopt", "distid:alice@yinxin.example"]),
    ("", []),  # OpenSSL's own default is the empty ID
], ids=["default", "custom", "empty"])
def test_sm2_distid_through_the_cli(distid: str | None, pkeyopt: list[str], work: Path, run_cli,
                                    openssl) -> None:
    key, pub, sig = work / "k.pem", work / "pub.pem", work / "sig"
    ok(run_cli, ["key", "generate", "-a", "sm2", "-o", key, "--no-password", "--pub-out", pub])
    id_args = [] if distid is None else ["--distid", distid]
    signed = ok_json(run_cli, ["key", "sign", "-k", key, *id_args, "--in", work / "msg", "-o", sig])
    assert signed["distid"] == ("1234567812345678" if distid is None else distid)
    openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3", *pkeyopt,
            "-in", work / "msg", "-sigfile", sig)
    ok(run_cli, ["key", "verify", "-k", pub, *id_args, "--in", work / "msg", "--sig", sig])
    other = ["--distid", "someone-else"] if distid is not None else ["--distid", ""]
    fails(run_cli, ["key", "verify", "-k", pub, *other, "--in", work / "msg", "--sig", sig], code=1)
    # and OpenSSL's signature, made with that ID, verifies through the CLI
    openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", key, *pkeyopt, "-in", work / "msg",
            "-out", work / "osig")
    ok(run_cli, ["key", "verify", "-k", pub, *id_args, "--in", work / "msg", "--sig", work / "osig"])


def test_verify_the_stored_openssl_vectors(run_cli) -> None:
    sm2 = VECTORS / "sm2"
    custom = (sm2 / "custom_id.txt").read_text()
    for sig, id_args in (("message.sig.default_id.der", []), ("message.sig.empty_id.der", ["--distid", ""]),
                         ("message.sig.custom_id.der", ["--distid", custom])):
        ok(run_cli, ["key", "verify", "-k", sm2 / "openssl_sm2.pub.pem", *id_args, "--in", sm2 / "message.txt",
                     "--sig", sm2 / sig])
        # a private key (here: the encrypted one) verifies too
        ok(run_cli, ["key", "verify", "-k", sm2 / "openssl_sm2_aes256.pem", "--password-file",
                     sm2 / "openssl_sm2_aes256.password", *id_args, "--in", sm2 / "message.txt", "--sig", sm2 / sig])


def test_distid_is_refused_for_other_algorithms(work: Path, run_cli) -> None:
    key = work / "k.pem"
    ok(run_cli, ["key", "generate", "-a", "ecdsa-p256", "-o", key, "--no-password", "--pub-out", work / "p.pem"])
    line = fails(run_cli, ["key", "sign", "-k", key, "--distid", "x", "--in", work / "msg", "-o", work / "sig"])
    assert "SM2" in line and "ecdsa-p256" in line
    assert not (work / "sig").exists()
    ok(run_cli, ["key", "sign", "-k", key, "--in", work / "msg", "-o", work / "sig"])
    fails(run_cli, ["key", "verify", "-k", work / "p.pem", "--distid", "", "--in", work / "msg",
                    "--sig", work / "sig"])


# --------------------------------------------------------------------------- invalid signatures: exit 1

@pytest.mark.parametrize("alg", ["rsa2048", "ecdsa-p256", "sm2"])
def test_invalid_signatures_exit_1(alg: str, work: Path, run_cli) -> None:
    key, pub, sig = work / "k.pem", work / "p.pem", work / "sig"
    ok(run_cli, ["key", "generate", "-a", alg, "-o", key, "--no-password", "--pub-out", pub])
    ok(run_cli, ["key", "sign", "-k", key, "--in", work / "msg", "-o", sig])
    good = sig.read_bytes()
    altered = bytearray(good)
    altered[len(altered) // 2] ^= 0x01
    cases = {"altered": bytes(altered), "truncated": good[:-3], "extended": good + b"\0", "empty": b""}
    for name, data in cases.items():
        (work / name).write_bytes(data)
        fails(run_cli, ["key", "verify", "-k", pub, "--in", work / "msg", "--sig", work / name], code=1)
    (work / "msg2").write_bytes(work.joinpath("msg").read_bytes() + b".")
    fails(run_cli, ["key", "verify", "-k", pub, "--in", work / "msg2", "--sig", sig], code=1)
    code, out, err = run_cli(["--json", "key", "verify", "-k", pub, "--in", work / "msg2", "--sig", sig])
    assert code == 1 and json.loads(out)["error"] == "InvalidSignature" and "Traceback" not in err


# --------------------------------------------------------------------------- bad input: exit 2

def test_bad_input_is_one_line_nonzero_and_writes_nothing(work: Path, run_cli) -> None:
    key, pub = work / "k.pem", work / "p.pem"
    ok(run_cli, ["key", "generate", "-a", "sm2", "-o", key, "--password-file", work / "pw", "--pub-out", pub])
    (work / "wrongpw").write_text("not the password\n")
    (work / "emptypw").write_text("")
    (work / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    (work / "broken.pem").write_text("-----BEGIN PRIVATE KEY-----\n!!!!\n")
    (work / "junk.der").write_bytes(b"\x30\x03\x02\x01")
    (work / "csr.pem").write_text("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n")
    before = files_in(work)
    out = ["--out", work / "out"]
    cases = {
        "unknown algorithm": ["key", "generate", "-a", "ed25519", *out, "--no-password"],
        "wrong password": ["key", "sign", "-k", key, "--password-file", work / "wrongpw", "--in", work / "msg", *out],
        "empty password file": ["key", "sign", "-k", key, "--password-file", work / "emptypw", "--in",
                                work / "msg", *out],
        "missing password file": ["key", "sign", "-k", key, "--password-file", work / "nope", "--in",
                                  work / "msg", *out],
        "encrypted key, no password": ["key", "sign", "-k", key, "--in", work / "msg", *out],
        "missing key": ["key", "sign", "-k", work / "nope.pem", "--in", work / "msg", *out],
        "missing input": ["key", "sign", "-k", key, "--password-file", work / "pw", "--in", work / "nope", *out],
        "junk PEM": ["key", "sign", "-k", work / "junk.pem", "--in", work / "msg", *out],
        "broken PEM": ["key", "sign", "-k", work / "broken.pem", "--in", work / "msg", *out],
        "junk DER": ["key", "sign", "-k", work / "junk.der", "--in", work / "msg", *out],
        "not a key": ["key", "sign", "-k", work / "msg", "--in", work / "msg", *out],
        "CSR as key": ["key", "inspect", work / "csr.pem"],
        "inspect junk": ["key", "inspect", work / "junk.der"],
        "inspect missing": ["key", "inspect", work / "nope"],
        "inspect wrong password": ["key", "inspect", key, "--password-file", work / "wrongpw"],
        "inspect a directory": ["key", "inspect", work],
        "public of junk": ["key", "public", work / "junk.pem", *out],
        "missing signature": ["key", "verify", "-k", pub, "--in", work / "msg", "--sig", work / "nope"],
        "verify junk key": ["key", "verify", "-k", work / "junk.der", "--in", work / "msg", "--sig", work / "msg"],
        "key and cert": ["key", "verify", "-k", pub, "--cert", pub, "--in", work / "msg", "--sig", work / "msg"],
        "neither key nor cert": ["key", "verify", "--in", work / "msg", "--sig", work / "msg"],
        "p12 junk": ["key", "import-p12", work / "junk.der", *out, "--p12-password-file", work / "pw",
                     "--no-password"],
        "bad backend": ["key", "generate", "-a", "sm2", *out, "--no-password"],
    }
    for name, args in cases.items():
        env = {"YINXIN_SM2_BACKEND": "nonsense"} if name == "bad backend" else None
        line = fails(run_cli, args, env=env)
        assert len(line) > len("yinxin: error: ") + 5, name
        assert files_in(work) == before, f"{name}: a file was written"
    assert "wrong password" in fails(run_cli, cases["wrong password"])
    assert "unknown algorithm" in fails(run_cli, cases["unknown algorithm"])


def test_json_errors_are_json(work: Path, run_cli) -> None:
    code, out, err = run_cli(["--json", "key", "generate", "-a", "dsa", "-o", work / "x", "--no-password"])
    assert code == 2 and json.loads(out) == {"error": "UnknownAlgorithm", "message": json.loads(out)["message"],
                                             "algorithm": "dsa"}


# --------------------------------------------------------------------------- PKCS#12

@pytest.mark.parametrize("name", ["rsa2048_p12", "ecdsa-p256_p12"])
def test_import_p12(name: str, work: Path, run_cli, openssl) -> None:
    p12 = VECTORS / "keyfiles" / name
    key, cert = work / "k.pem", work / "c.pem"
    result = ok_json(run_cli, ["key", "import-p12", f"{p12}.p12", "--out", key, "--cert-out", cert,
                               "--p12-password-file", f"{p12}.password", "--password-file", work / "pw",
                               "--scheme", "sm4"])
    assert result["algorithm"] == name.removesuffix("_p12") and result["certificates"] == 1
    assert result["scheme"] == "sm4" and result["encrypted"] is True
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # the key is the certificate's, by OpenSSL's reading of the certificate
    spki = openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
    spki_der = openssl("pkey", "-pubin", "-outform", "DER", input=spki).stdout
    assert result["fingerprint"] == "sha256:" + hashlib.sha256(spki_der).hexdigest()
    assert pki.load_private_key(key.read_bytes(), PASSWORD.encode()).public_key().fingerprint() == \
        hashlib.sha256(spki_der).hexdigest()


def test_import_p12_with_a_wrong_password_writes_nothing(work: Path, run_cli) -> None:
    p12 = VECTORS / "keyfiles" / "rsa2048_p12"
    before = files_in(work)
    line = fails(run_cli, ["key", "import-p12", f"{p12}.p12", "--out", work / "k.pem", "--cert-out", work / "c.pem",
                           "--p12-password-file", work / "pw", "--no-password"])
    assert "password" in line
    assert files_in(work) == before
    ok(run_cli, ["key", "import-p12", f"{p12}.p12", "--out", work / "k.pem", "--no-password"],
       env={"YINXIN_P12_PASSWORD": "p12-rsa2048"})
    assert pki.load_private_key((work / "k.pem").read_bytes()).algorithm == "rsa2048"


# --------------------------------------------------------------------------- doctor

def test_doctor_reports_backend_libraries_tools_and_home(run_cli, home: Path, openssl) -> None:
    report = ok_json(run_cli, ["doctor"])
    assert report["sm2_backend"]["in_use"] in report["sm2_backend"]["available"]
    assert "gmssl" in report["sm2_backend"]["available"]
    if "botan" in report["sm2_backend"]["available"]:
        assert report["sm2_backend"]["botan_library"].startswith("Botan 2.")
    for lib in ("cryptography", "asn1crypto", "pyhanko", "pyhanko-certvalidator", "gmssl", "pikepdf",
                "sqlalchemy", "click"):
        assert report["libraries"][lib], lib
    assert set(report["tools"]) >= {"openssl", "pdfsig", "qpdf", "pdftoppm", "fc-match", "psql", "postgres", "wrk"}
    assert report["tools"]["openssl"]["version"] == openssl("version").stdout.decode().strip()
    assert report["home"] == {"path": str(home), "exists": True}
    text = ok(run_cli, ["doctor"])
    assert "SM2 backend:" in text and "openssl" in text and str(home) in text and "libbotan-2 (SM2):" in text
    forced = ok_json(run_cli, ["doctor"], env={"YINXIN_SM2_BACKEND": "gmssl"})
    assert forced["sm2_backend"]["in_use"] == "gmssl" and forced["sm2_backend"]["forced_by_env"] == "gmssl"


def test_doctor_follows_home_option(run_cli, tmp_path: Path) -> None:
    report = ok_json(run_cli, ["--home", tmp_path / "elsewhere", "doctor"])
    assert report["home"] == {"path": str(tmp_path / "elsewhere"), "exists": False}

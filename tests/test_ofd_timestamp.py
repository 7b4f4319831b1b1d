"""A timeStamp in an OFD seal (SES_Signature.timeStamp, [0] EXPLICIT BIT STRING holding a DER
TimeStampToken over the signature value, as ofdrw writes it) is checked: its imprint, its
signature, its TSA's chain; then its time is the signing time.  The tokens here are made by
`openssl ts -reply` (an RSA TSA: OpenSSL cannot sign SM2 tokens) over the signature value that
the independent checker cut out of our SignedValue.dat."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ca_helpers import openssl
from ofd_checker import bit_string_bytes, cut, der, elements
from seal.ofd.sample import text_ofd
from seal_support import ORG, CliWorld, sm2_cli_world

TS_CNF = """[tsa]
default_tsa = tsa1
[tsa1]
serial = {dir}/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256
accuracy = secs:1
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@pytest.fixture(scope="module")
def tsa(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tsa")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d / "tsa.key", "-out", d / "tsa.pem",
            "-days", "30", "-subj", "/CN=Test TSA", "-addext", "extendedKeyUsage=critical,timeStamping",
            "-addext", "keyUsage=critical,digitalSignature,nonRepudiation")
    (d / "serial").write_text("01\n")
    (d / "ts.cnf").write_text(TS_CNF.format(dir=d))
    return d


def token(tsa: Path, data: bytes, name: str) -> bytes:
    (tsa / f"{name}.bin").write_bytes(data)
    openssl("ts", "-query", "-data", tsa / f"{name}.bin", "-sha256", "-cert", "-no_nonce", "-out", tsa / f"{name}.tsq")
    openssl("ts", "-reply", "-queryfile", tsa / f"{name}.tsq", "-signer", tsa / "tsa.pem", "-inkey", tsa / "tsa.key",
            "-config", tsa / "ts.cnf", "-token_out", "-out", tsa / f"{name}.tst")
    return (tsa / f"{name}.tst").read_bytes()


def with_timestamp(sealed: Path, out: Path, tsa: Path, *, over: bytes | None = None) -> Path:
    with zipfile.ZipFile(sealed) as z:
        files = {n: z.read(n) for n in z.namelist()}
    name = next(n for n in files if n.endswith("SignedValue.dat"))
    value = out.with_suffix(".dat")
    value.write_bytes(files[name])
    parts = elements(value)
    signature = bit_string_bytes(value, parts[3])
    raw = value.read_bytes()
    content = raw[parts[0]["offset"]:]
    stamp = token(tsa, over if over is not None else signature, out.stem)
    files[name] = der(0x30, content + der(0xA0, der(0x03, b"\x00" + stamp)))
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in files.items():
            z.writestr(n, data)
    return out


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> CliWorld:
    base = tmp_path_factory.mktemp("cli-ofd-ts")
    return sm2_cli_world(base, "bj-ofd")


def checks_of(cli: CliWorld, path: Path, *extra) -> tuple[int, dict]:
    result = cli.run("seal", "verify", path, "--json", *extra)
    report = result.json()
    return result.code, {c["check"]: c for c in report["signatures"][0]["checks"]}


def test_a_timestamp_over_the_signature_value_is_checked_and_its_time_used(cli, tsa, tmp_path):
    doc = cli.write("ts.ofd", text_ofd([[ORG]]))
    sealed = cli.files / "ts-sealed.ofd"
    assert cli.stamp(doc, sealed, "bj-ofd", "--anchor", ORG).code == 0
    stamped = with_timestamp(sealed, tmp_path / "stamped.ofd", tsa)
    code, checks = checks_of(cli, stamped, "--trust", tsa / "tsa.pem")
    assert checks["timestamp"]["verdict"] == "valid" and "Test TSA" in checks["timestamp"]["detail"]
    assert checks["signature"]["verdict"] == "valid" and code == 0
    # the TSA not trusted: the timestamp's time is not used, and the verdict says so
    code, checks = checks_of(cli, stamped)
    assert checks["timestamp"]["verdict"] == "indeterminate" and "not trusted" in checks["timestamp"]["detail"]
    assert code == 3
    # a token over other bytes than the signature value
    wrong = with_timestamp(sealed, tmp_path / "wrong.ofd", tsa, over=b"another signature value")
    code, checks = checks_of(cli, wrong, "--trust", tsa / "tsa.pem")
    assert code == 1 and checks["timestamp"]["verdict"] == "invalid"
    assert "imprint is not the digest of the signature value" in checks["timestamp"]["detail"]


# --------------------------------------------------------------------------- sealing with a timestamp

TSA_PASSWORD = b"Tsa-Password-2026!"


@pytest.fixture(scope="module")
def tsa_cli(tmp_path_factory) -> CliWorld:
    """A home with an SM2 seal, an SM2 TSA under the SM2 root and an RSA TSA under an RSA root."""
    world = sm2_cli_world(tmp_path_factory.mktemp("cli-ofd-tsa"), "bj-ofd")
    world.tsa_pw = world.secret("tsa.pw", TSA_PASSWORD)          # type: ignore[attr-defined]
    world.ok("ca", "init", "--name", "rsa-root", "--subject", "/C=CN/O=印信测试/CN=RSA Root", "--algorithm", "rsa2048",
             "--session", world.session("ca-admin"))
    for name, ca in (("sm2-tsa", "sm2-root"), ("rsa-tsa", "rsa-root")):
        world.ok("tsa", "init", name, "--ca", ca, "--tsa-password-file", world.tsa_pw,
                 "--session", world.session("ca-admin"), "--approver-session", world.session("boss"))
        world.ok("tsa", "cert", name, "--out", world.files / f"{name}.pem")
    return world


def _token_of(sealed: Path, workdir: Path) -> tuple[Path, Path]:
    """(the TimeStampToken, the signature value it should date), cut out of SignedValue.dat with
    openssl asn1parse (tests/ofd_checker.py), not with yinxin's parser."""
    workdir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(sealed) as z:
        name = next(n for n in z.namelist() if n.endswith("SignedValue.dat"))
        value = workdir / "SignedValue.dat"
        value.write_bytes(z.read(name))
    top = elements(value)
    assert len(top) == 5 and top[4]["type"] == "cont [ 0 ]", top       # timeStamp [0] EXPLICIT BIT STRING
    signature = workdir / "signature.bin"
    signature.write_bytes(bit_string_bytes(value, top[3]))
    token = cut(value, top[4]["offset"] + top[4]["hl"], workdir / "token.der")   # the BIT STRING's content
    return token, signature


def test_stamping_with_this_homes_sm2_tsa_puts_a_token_over_the_signature_value(tsa_cli, tmp_path):
    from asn1crypto import cms, tsp

    from ca_helpers import db_snapshot
    from ofd_checker import check_ofd
    from seal_support import audit_events
    from tsa_support import sm2_token_verify
    cli = tsa_cli
    doc = cli.write("to-date.ofd", text_ofd([["关于试点的通知", (ORG, 130, 250, 5)]]))
    sealed = cli.files / "dated.ofd"
    result = cli.stamp(doc, sealed, "bj-ofd", "--anchor", ORG, "--tsa", "sm2-tsa", "--tsa-password-file",
                       cli.tsa_pw, "--json")
    assert result.code == 0, result
    stamped_at = result.json()["timestamp"]
    # the independent checker: references, dataHash, the signer's and the maker's SM2 signatures
    (checked,) = check_ofd(sealed, tmp_path / "check")
    assert checked["bad_references"] == [] and checked["data_hash_ok"] and checked["signer_ok"] and checked["maker_ok"]
    # the token: OpenSSL checks the TSA's SM2 signature over the signed attributes (with the ID) and
    # the SM3 of the TSTInfo; its imprint is openssl's SM3 of the signature value
    token, signature = _token_of(sealed, tmp_path / "token")
    info = cms.ContentInfo.load(token.read_bytes())
    verdict, tst_sm3 = sm2_token_verify(info, cli.files / "sm2-tsa.pem", tmp_path / "sm2")
    assert "Signature Verified Successfully" in verdict, verdict
    signed_attrs = info["content"]["signer_infos"][0]["signed_attrs"]
    assert next(a["values"][0].native for a in signed_attrs if a["type"].native == "message_digest").hex() == tst_sm3
    tst = tsp.TSTInfo.load(info["content"]["encap_content_info"]["content"].parsed.dump())
    assert tst["message_imprint"]["hash_algorithm"]["algorithm"].native == "sm3"
    imprint = openssl("dgst", "-sm3", "-binary", signature).stdout
    assert tst["message_imprint"]["hashed_message"].native == imprint
    assert tst["gen_time"].native.isoformat() == stamped_at
    # yinxin's verifier uses the timestamp's time (its TSA chains to the home's SM2 root)
    code, checks = checks_of(cli, sealed)
    assert code == 0 and checks["timestamp"]["verdict"] == "valid" and "sm2-tsa" in checks["timestamp"]["detail"]
    (event,) = [e for e in audit_events(cli.db, "seal.stamp", "seal:bj-ofd") if e["details"].get("timestamp")]
    assert event["details"]["timestamp"] == stamped_at and event["details"]["format"] == "ofd"
    # a TSA that refuses SM3 (RSA), an unreachable one, a PDF-only option: one line, nothing written
    before = db_snapshot(cli.db)
    for extra, needle in ((("--tsa", "rsa-tsa", "--tsa-password-file", cli.tsa_pw), "does not accept sm3"),
                          (("--timestamp-url", "http://127.0.0.1:9/tsa/none"), "cannot be reached"),
                          (("--tsa", "sm2-tsa", "--tsa-password-file", cli.tsa_pw, "--archive-timestamp"), "for PDF")):
        out = tmp_path / "never.ofd"
        refused = cli.stamp(doc, out, "bj-ofd", "--anchor", ORG, *extra)
        assert refused.code == 2 and needle in refused.err and "Traceback" not in refused.err, refused
        assert not out.exists() and not list(tmp_path.glob("never*"))
    assert db_snapshot(cli.db) == before


def test_a_timestamp_from_yinxin_serve_over_http(tsa_cli, tmp_path):
    from server_support import LiveServer
    cli = tsa_cli
    doc = cli.write("http.ofd", text_ofd([[ORG]]))
    live = LiveServer(cli.home, args=("--workers", "1", "--signers", "1"),
                      env={"YINXIN_CA_PASSWORD": "Ca-Password-2026!", "YINXIN_TSA_PASSWORD": TSA_PASSWORD.decode()}
                      ).start()
    try:
        sealed = tmp_path / "http-dated.ofd"
        result = cli.stamp(doc, sealed, "bj-ofd", "--anchor", ORG, "--timestamp-url", f"{live.url}/tsa/sm2-tsa",
                           "--json")
        assert result.code == 0, result
        code, checks = checks_of(cli, sealed)
        assert code == 0 and checks["timestamp"]["verdict"] == "valid"
        found = cli.ok("tsa", "stats", "sm2-tsa", "--json").json()["tsas"]["sm2-tsa"]
        assert found["by_hash"]["sm3"] >= 1
    finally:
        assert live.stop() == 0, live.errors()

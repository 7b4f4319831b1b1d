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
from ofd_checker import bit_string_bytes, der, elements
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

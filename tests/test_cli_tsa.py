"""`yinxin tsa …` through the real console script; tokens judged by `openssl ts`.

Bad input: an unknown CA, a wrong CA password, an invalid policy OID, a name taken, an unknown
TSA name, a garbage or truncated query, an unknown hash OID — one line, exit 2, no file
written, the database exactly as it was."""
from __future__ import annotations

import pytest

from ca_helpers import assert_one_line_error, db_snapshot, openssl
from seal_support import CA_PASSWORD, CliWorld
from tsa_support import TSA_PASSWORD, openssl_query, openssl_ts_verify, reply_text


def _operator(world: CliWorld) -> tuple:
    """tsa init's two people: the CA operator's session and the approving RA officer's."""
    return ("--session", world.session("ca-admin"), "--approver-session", world.session("boss"))


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> CliWorld:
    base = tmp_path_factory.mktemp("cli-tsa")
    world = CliWorld(base / "home", base / "files")
    world.tsa_pw = world.secret("tsa.pw", TSA_PASSWORD)          # type: ignore[attr-defined]
    world.ok("ca", "init", "--name", "rsa-root", "--subject", "/C=CN/O=印信测试/CN=rsa-root", "--algorithm",
             "rsa2048", "--days", "7300", "--session", world.session("ca-admin"))
    world.ok("ca", "init", "--name", "sm2-root", "--subject", "/C=CN/O=印信测试/CN=sm2-root", "--algorithm",
             "sm2", "--days", "7300", "--session", world.session("ca-admin"))
    world.ok("tsa", "init", "rsa-tsa", "--ca", "rsa-root", "--tsa-password-file", world.tsa_pw,
             "--accuracy-ms", "250", *_operator(world))
    world.ok("tsa", "init", "sm2-tsa", "--ca", "sm2-root", "--tsa-password-file", world.tsa_pw,
             "--policy", "1.2.156.1.2.3", *_operator(world))
    (world.files / "data.txt").write_bytes(b"the data\n" * 100)
    return world


def test_init_list_cert(cli):
    listed = cli.ok("tsa", "list", "--json").json()["tsas"]
    by_name = {t["name"]: t for t in listed}
    assert by_name["rsa-tsa"]["algorithm"] == "rsa2048" and by_name["rsa-tsa"]["accuracy_ms"] == 250
    assert by_name["sm2-tsa"]["hashes"] == ["sha256", "sha384", "sha512", "sm3"]
    assert by_name["sm2-tsa"]["policy"] == "1.2.156.1.2.3" and by_name["sm2-tsa"]["sm2_id"] == "1234567812345678"
    out = cli.files / "rsa-tsa.pem"
    cli.ok("tsa", "cert", "rsa-tsa", "--out", out)
    text = openssl("x509", "-in", out, "-noout", "-text").stdout.decode()
    assert "X509v3 Extended Key Usage: critical" in text and "Time Stamping" in text
    eku = text.split("X509v3 Extended Key Usage: critical")[1].splitlines()[1].strip()
    assert eku == "Time Stamping"                                         # timeStamping only
    assert "Digital Signature, Non Repudiation" in text
    # the certificate is one the CA issued and records
    serial = by_name["rsa-tsa"]["certificate_serial"]
    shown = cli.ok("ca", "show", serial, "--ca", "rsa-root", "--json").json()
    assert shown["profile"] == "tsa" and shown["status"] == "issued"


def test_stamp_a_query_offline_and_find_it(cli):
    query = openssl_query(cli.files, cli.files / "data.txt", "sha384", stem="q1")
    reply = cli.files / "r1.tsr"
    result = cli.ok("tsa", "stamp", "rsa-tsa", "--query", query, "--out", reply, "--tsa-password-file", cli.tsa_pw,
                    "--session", cli.session("ca-admin"), "--json").json()
    assert "Verification: OK" in openssl_ts_verify(query, reply, cli.ca_pem("rsa-root"), cli.files / "rsa-tsa.pem")
    assert "Accuracy: unspecified seconds, 0xFA millis" in reply_text(reply)
    found = cli.ok("tsa", "find", result["serial"], "--json").json()
    assert found["tsa"] == "rsa-tsa" and found["hash_algorithm"] == "sha384" and found["client"] == "cli:ca-admin"
    stats = cli.ok("tsa", "stats", "--json").json()["tsas"]
    assert stats["rsa-tsa"]["tokens"] >= 1 and stats["rsa-tsa"]["by_hash"]["sha384"] >= 1
    # yinxin's own check, with exit codes
    ok = cli.run("tsa", "verify", reply, "--data", cli.files / "data.txt", "--trust", cli.ca_pem("rsa-root"))
    assert ok.code == 0 and ok.out.startswith("VALID")
    other = cli.write("other.txt", b"other data")
    bad = cli.run("tsa", "verify", reply, "--data", other, "--trust", cli.ca_pem("rsa-root"))
    assert bad.code == 1 and "other data" in bad.out
    from datetime import datetime, timedelta, timezone
    twelve_years = (datetime.now(timezone.utc) + timedelta(days=365 * 12)).strftime("%Y-%m-%d")
    late = cli.run("tsa", "verify", reply, "--data", cli.files / "data.txt", "--trust", cli.ca_pem("rsa-root"),
                   "--at", twelve_years)                     # the TSA certificate (11 years) has ended
    assert late.code == 3 and late.out.startswith("INDETERMINATE")
    untrusted = cli.run("tsa", "verify", reply, "--data", cli.files / "data.txt", "--trust", cli.ca_pem("sm2-root"))
    assert untrusted.code == 3 and "TSA certificate" in untrusted.out     # no trusted chain: indeterminate
    junk = cli.write("junk.tsr", b"\x30\x03\x02\x01\x00")
    assert_one_line_error(cli.run("tsa", "verify", junk, "--data", cli.files / "data.txt", "--trust",
                                  cli.ca_pem("rsa-root")), "not")


def test_sm2_tsa_stamps_sm3(cli):
    query = openssl_query(cli.files, cli.files / "data.txt", "sm3", stem="q-sm3")
    reply = cli.files / "r-sm3.tsr"
    cli.ok("tsa", "stamp", "sm2-tsa", "--query", query, "--out", reply, "--tsa-password-file", cli.tsa_pw,
           "--session", cli.session("ca-admin"))
    text = reply_text(reply)
    assert "Status: Granted." in text and "Hash Algorithm: sm3" in text and "Policy OID: 1.2.156.1.2.3" in text
    ok = cli.run("tsa", "verify", reply, "--data", cli.files / "data.txt", "--trust", cli.ca_pem("sm2-root"), "--json")
    assert ok.code == 0 and ok.json()["verdict"] == "valid"


def _unchanged(cli, args, *needles, out=None, env=None):
    before = db_snapshot(cli.db)
    result = cli.run(*args, env=env)
    assert result.code == 2
    assert_one_line_error(result, *needles)
    if out is not None:
        assert not out.exists()
    assert db_snapshot(cli.db) == before
    return result


def test_bad_input_is_refused_without_output(cli):
    pw = ("--tsa-password-file", cli.tsa_pw, *_operator(cli))
    _unchanged(cli, ("tsa", "init", "t2", "--ca", "nope", *pw), "no CA named 'nope'")
    # only a CA operator sets a TSA up, and never approves its certificate too; no session, no act
    _unchanged(cli, ("tsa", "init", "t2", "--ca", "rsa-root", "--tsa-password-file", cli.tsa_pw,
                     "--approver-session", cli.session("boss")), "ca_operator")          # wang: a seal admin
    _unchanged(cli, ("tsa", "init", "t2", "--ca", "rsa-root", "--tsa-password-file", cli.tsa_pw,
                     "--session", cli.session("admin"), "--approver-session", cli.session("admin")),
               "cannot also approve")
    _unchanged(cli, ("tsa", "init", "t2", "--ca", "rsa-root", "--tsa-password-file", cli.tsa_pw,
                     "--approver-session", cli.session("boss")), "log in first", env={"YINXIN_SESSION": None})
    wrong = cli.secret("wrong-ca.pw", b"not the password")
    _unchanged(cli, ("tsa", "init", "t2", "--ca", "rsa-root", "--ca-password-file", wrong, *pw), "wrong password")
    assert not (cli.home / "tsas" / "t2").exists()
    _unchanged(cli, ("tsa", "init", "t2", "--ca", "rsa-root", "--policy", "not.an.oid", *pw), "not an OID")
    _unchanged(cli, ("tsa", "init", "rsa-tsa", "--ca", "rsa-root", *pw), "exists already")
    query = openssl_query(cli.files, cli.files / "data.txt", stem="ok")
    out = cli.files / "never.tsr"
    _unchanged(cli, ("tsa", "stamp", "rsa-tsa", "--query", query, "--out", out, "--tsa-password-file", cli.tsa_pw),
               "ca_operator", out=out)                                                # wang: no CA operator
    pw = ("--tsa-password-file", cli.tsa_pw, "--session", cli.session("ca-admin"))
    _unchanged(cli, ("tsa", "stamp", "no-such", "--query", query, "--out", out, *pw), "no TSA named", out=out)
    garbage = cli.write("garbage.tsq", b"\x30\x82\x01\x00garbage")
    _unchanged(cli, ("tsa", "stamp", "rsa-tsa", "--query", garbage, "--out", out, *pw), "badDataFormat", out=out)
    truncated = cli.write("truncated.tsq", query.read_bytes()[:-3])
    _unchanged(cli, ("tsa", "stamp", "rsa-tsa", "--query", truncated, "--out", out, *pw), "badDataFormat", out=out)
    md5 = cli.write("md5.tsq", openssl("ts", "-query", "-data", cli.files / "data.txt", "-md5").stdout)
    _unchanged(cli, ("tsa", "stamp", "rsa-tsa", "--query", md5, "--out", out, *pw), "badAlg", out=out)
    sm3 = openssl_query(cli.files, cli.files / "data.txt", "sm3", stem="sm3-to-rsa")
    _unchanged(cli, ("tsa", "stamp", "rsa-tsa", "--query", sm3, "--out", out, *pw), "badAlg", out=out)
    _unchanged(cli, ("tsa", "stamp", "rsa-tsa", "--query", query, "--out", out, "--tsa-password-file", wrong,
                     "--session", cli.session("ca-admin")),
               "wrong password", out=out)

"""`yinxin seal stamp --tsa/--timestamp-url --with-validation-info --archive-timestamp`, `seal extend`
and `seal verify --at/--offline/--trust` through the real console script.

Ten years on for real: the whole system clock is moved with `faketime` (Debian's libfaketime) and a
fresh, empty home verifies `--offline --trust root.pem`: a B-LTA seal of each algorithm is still
valid (exit 0), the same seal without a timestamp is indeterminate (exit 3).  Bad input: one line,
exit 2, no file written, the database unchanged."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from ca_helpers import assert_one_line_error, cli_environment, console_script, db_snapshot
from seal_support import ORG, CliWorld, document_pdf
from server_support import LiveServer
from tsa_support import TSA_PASSWORD

CAS = {"rsa": "rsa2048", "ec": "ecdsa-p256", "sm2": "sm2"}


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> CliWorld:
    base = tmp_path_factory.mktemp("cli-ltv")
    world = CliWorld(base / "home", base / "files")
    world.tsa_pw = world.secret("tsa.pw", TSA_PASSWORD)          # type: ignore[attr-defined]
    for name, alg in CAS.items():
        world.ok("ca", "init", "--name", name, "--subject", f"/C=CN/O=印信测试/CN={name}", "--algorithm", alg,
                 "--days", "7300", "--base-url", "http://pki.yinxin.test", "--session", world.session("ca-admin"))
        world.ok("ca", "crl", "--ca", name, "--out", world.files / f"{name}.crl", "--session", world.session("ca-admin"))
        world.ok("ca", "crl", "--ca", name, "--delta", "--out", world.files / f"{name}-delta.crl",
                 "--session", world.session("ca-admin"))
        world.ok("tsa", "init", f"{name}-tsa", "--ca", name, "--tsa-password-file", world.tsa_pw,
                 "--session", world.session("ca-admin"), "--approver-session", world.session("boss"))
        world.create_seal(f"{name}-seal", ca=name)
    world.doc = world.write("doc.pdf", document_pdf())          # type: ignore[attr-defined]
    return world


def _stamp(cli, name, out, *extra):
    return cli.stamp(cli.doc, out, f"{name}-seal", "--anchor", ORG, *extra)


def _faketime_verify(cli, tmp_path, pdf, root, days=3653):
    faketime = shutil.which("faketime")
    assert faketime, "faketime is not installed (scripts/bootstrap.sh installs it)"
    fresh = tmp_path / "fresh-home"
    fresh.mkdir(exist_ok=True)
    proc = subprocess.run([faketime, "-f", f"+{days}d", console_script(), "seal", "verify", str(pdf), "--offline",
                           "--trust", str(root), "--json"], capture_output=True, env=cli_environment(fresh), timeout=300)
    return proc


@pytest.mark.parametrize("name", list(CAS))
def test_ten_years_on_offline_with_a_fresh_home(cli, name, tmp_path):
    lta = cli.files / f"{name}-lta.pdf"
    bare = cli.files / f"{name}-lt-no-ts.pdf"
    pw = ("--tsa-password-file", cli.tsa_pw)
    result = _stamp(cli, name, lta, "--tsa", f"{name}-tsa", *pw, "--with-validation-info", "--archive-timestamp",
                    "--json")
    assert result.code == 0 and result.err == "", result
    assert _stamp(cli, name, bare, "--with-validation-info").code == 0
    root = cli.ca_pem(name)
    now = cli.run("seal", "verify", lta, "--json")
    assert now.code == 0 and now.json()["signatures"][0]["proven_by"]["kind"] == "signature timestamp"
    later = _faketime_verify(cli, tmp_path, lta, root)
    assert later.returncode == 0, later.stdout.decode() + later.stderr.decode()
    report = __import__("json").loads(later.stdout)
    assert report["verdict"] == "valid" and report["offline"] and report["at"].startswith("203")
    (sig,) = report["signatures"]
    assert sig["proven_time"] < report["at"] and sig["proven_by"]["kind"] == "signature timestamp"
    assert [t["verdict"] for t in report["document_timestamps"]] == ["valid"]
    nothing = _faketime_verify(cli, tmp_path, bare, root)
    assert nothing.returncode == 3, nothing.stdout.decode() + nothing.stderr.decode()
    assert not (tmp_path / "fresh-home" / "yinxin.db").exists()            # offline never opened a home


def test_verify_at_a_time_and_offline(cli, tmp_path):
    lta = cli.files / "rsa-at.pdf"
    assert _stamp(cli, "rsa", lta, "--tsa", "rsa-tsa", "--tsa-password-file", cli.tsa_pw,
                  "--with-validation-info", "--archive-timestamp").code == 0
    plain = cli.files / "rsa-plain.pdf"
    assert _stamp(cli, "rsa", plain).code == 0
    from datetime import datetime, timedelta, timezone
    nine, fourteen = ((datetime.now(timezone.utc) + timedelta(days=365 * n)).strftime("%Y-%m-%dT%H:%M:%SZ")
                      for n in (9, 14))
    later = cli.run("seal", "verify", lta, "--at", nine)
    assert later.code == 0 and "proven " in later.out and "signature timestamp" in later.out
    # after the TSA certificate's end (eleven years) only a renewed archive timestamp would prove it
    unrenewed = cli.run("seal", "verify", lta, "--at", fourteen)
    assert unrenewed.code == 3
    expired = cli.run("seal", "verify", plain, "--at", nine[:10])
    assert expired.code == 3 and "document: INDETERMINATE" in expired.out
    assert "no timestamp proves" in expired.out
    offline = cli.run("seal", "verify", lta, "--offline", "--trust", cli.ca_pem("rsa"))
    assert offline.code == 0 and "document: VALID (offline)" in offline.out
    untrusted = cli.run("seal", "verify", lta, "--offline", "--trust", cli.ca_pem("sm2"))
    assert untrusted.code == 3 and "no chain to a trusted root" in untrusted.out   # seal.verdicts' meaning
    assert_one_line_error(cli.run("seal", "verify", lta, "--offline"), "--trust")
    assert_one_line_error(cli.run("seal", "verify", lta, "--at", "next tuesday"), "ISO 8601")


def test_a_changed_revision_under_the_archive_timestamp_is_invalid(cli, tmp_path):
    import re
    lta = cli.files / "ec-changed-source.pdf"
    assert _stamp(cli, "ec", lta, "--tsa", "ec-tsa", "--tsa-password-file", cli.tsa_pw, "--with-validation-info",
                  "--archive-timestamp").code == 0
    data = lta.read_bytes()
    ranges = [tuple(map(int, r)) for r in re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]",
                                                       data)]
    seal_end, hole = ranges[0][2] + ranges[0][3], ranges[-1][1]
    stream = next(m for m in re.finditer(rb"stream\r?\n", data[seal_end:hole])
                  if data.index(b"endstream", seal_end + m.end()) - (seal_end + m.end()) > 100)
    start = seal_end + stream.end()
    changed = bytearray(data)
    changed[(start + data.index(b"endstream", start)) // 2] ^= 0x01
    path = cli.write("ec-changed.pdf", bytes(changed))
    for extra in ((), ("--offline", "--trust", cli.ca_pem("ec"))):
        result = cli.run("seal", "verify", path, *extra)
        assert result.code == 1 and "changed after it was timestamped" in result.out, result


def test_timestamps_over_http_from_yinxin_serve(cli, tmp_path):
    live = LiveServer(cli.home, args=("--workers", "1", "--signers", "1"),
                      env={"YINXIN_CA_PASSWORD": "Ca-Password-2026!", "YINXIN_TSA_PASSWORD": TSA_PASSWORD.decode()}
                      ).start()
    try:
        out = tmp_path / "http.pdf"
        result = _stamp(cli, "sm2", out, "--timestamp-url", f"{live.url}/tsa/sm2-tsa", "--with-validation-info",
                        "--archive-timestamp", "--json")
        assert result.code == 0, result
        report = cli.run("seal", "verify", out, "--json").json()
        assert report["verdict"] == "valid"
        assert report["signatures"][0]["proven_by"]["tsa"].startswith("Common Name: sm2-tsa")
        wrong = tmp_path / "wrong.pdf"
        # an SM2 seal asks for an SM3 imprint: the RSA TSA refuses it, and nothing is written
        refused = _stamp(cli, "sm2", wrong, "--timestamp-url", f"{live.url}/tsa/rsa-tsa")
        assert_one_line_error(refused, "badAlg")
        assert not wrong.exists()
    finally:
        assert live.stop() == 0, live.errors()


def test_extend_then_verify(cli, tmp_path):
    sealed = cli.files / "ec-plain.pdf"
    assert _stamp(cli, "ec", sealed).code == 0
    out = tmp_path / "extended.pdf"
    result = cli.run("seal", "extend", sealed, "--out", out, "--tsa", "ec-tsa", "--tsa-password-file", cli.tsa_pw,
                     "--session", cli.session("li"), "--json")          # any account; li has no role
    assert result.code == 0, result
    assert out.read_bytes()[:sealed.stat().st_size] == sealed.read_bytes()
    report = cli.run("seal", "verify", out, "--json").json()
    assert report["verdict"] == "valid"
    assert report["signatures"][0]["proven_by"]["kind"] == "document timestamp"


def test_bad_input_writes_nothing(cli, tmp_path):
    out = tmp_path / "never.pdf"
    pw = ("--tsa-password-file", cli.tsa_pw)
    before = db_snapshot(cli.db)
    cases = [
        (("seal", "stamp", cli.doc, out, "--seal", "rsa-seal", "--password-file", cli.password, "--anchor", ORG,
          "--archive-timestamp"), "needs a TSA"),
        (("seal", "stamp", cli.doc, out, "--seal", "rsa-seal", "--password-file", cli.password, "--anchor", ORG,
          "--tsa", "no-such-tsa", *pw), "no TSA named"),
        (("seal", "stamp", cli.doc, out, "--seal", "rsa-seal", "--password-file", cli.password, "--anchor", ORG,
          "--timestamp-url", "http://127.0.0.1:9/tsa/x"), "cannot be reached"),
        (("seal", "stamp", cli.doc, out, "--seal", "rsa-seal", "--password-file", cli.password, "--anchor", ORG,
          "--tsa", "rsa-tsa", "--tsa-password-file", cli.password), "wrong password"),
        (("seal", "extend", cli.doc, "--out", out, "--tsa", "rsa-tsa", *pw), "carries no seal"),
        (("seal", "extend", cli.files / "ec-plain.pdf", "--out", out), "--tsa"),
        (("seal", "extend", cli.write("junk.pdf", b"not a pdf"), "--out", out, "--tsa", "rsa-tsa", *pw), "not a PDF"),
    ]
    for args, needle in cases:
        result = cli.run(*args)
        assert result.code == 2, (args, result)
        assert_one_line_error(result, needle)
        assert not out.exists()
    assert db_snapshot(cli.db) == before

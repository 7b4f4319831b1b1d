"""`yinxin ca …` and `yinxin audit verify` through the real console script: a walk-through with
--json everywhere (OpenSSL judging what comes out), and bad input — one line on stderr, a non-zero
exit, no traceback, and the database and home directory unchanged."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pki.clock import SystemClock

from ca_helpers import (BASE_URL, PASSWORD, VECTORS, CliResult, World, apply_and_issue, assert_one_line_error,
                        cert_text, corrupt_csr_signature, db_snapshot, openssl, openssl_csr, openssl_out, sql,
                        write_session, yinxin)
from pg_fixture import database_of, prepare_home_database


class Cli:
    """One home, driven only through the command line."""

    def __init__(self, home: Path, work: Path) -> None:
        self.home, self.work = home, work
        prepare_home_database(home)   # SQLite, or PostgreSQL with YINXIN_TEST_DATABASE (tests/pg_fixture.py)
        self.pw = work / "ca-password"
        self.pw.write_bytes(PASSWORD + b"\n")
        self.key_pw = work / "key-password"
        self.key_pw.write_text("key horse\n")
        self._world: World | None = None
        # who acts: sessions made up front (a test compares the database before and after a command);
        # operator-1 is a CA operator and RA officer, bob an RA officer, alice a person and RA officer,
        # zhou a person without a role
        self.sessions = {name: write_session(self.lib.home, work / f"{name}.session", name, *roles)
                         for name, roles in (("operator-1", ("ca_operator", "ra_officer")), ("bob", ("ra_officer",)),
                                             ("alice", ("ra_officer",)), ("zhou", ()))}
        self.env = {"YINXIN_CA_PASSWORD": PASSWORD.decode(), "YINXIN_SESSION": str(self.sessions["operator-1"])}

    @property
    def lib(self) -> World:
        """The same home through the library, for setting up what a test then does through the CLI
        (each CLI call costs a Python start-up).  Real time, like the CLI."""
        if self._world is None:
            self._world = World(self.home, self.work, SystemClock())
        return self._world

    def lib_issue(self, profile: str, subject: str, stem: str, *, ca: str = "sub",
                  id_number: str | None = None) -> str:
        """A certificate issued through the library; its PEM and chain written beside the others."""
        csr = self.csr("ecdsa-p256", subject, stem)
        issued = apply_and_issue(self.lib, ca=ca, profile=profile, subject=subject, csr=csr.read_bytes(),
                                 id_number=id_number)
        (self.work / f"{stem}.pem").write_bytes(issued.pem())
        (self.work / f"{stem}.chain.pem").write_bytes(issued.chain_pem())
        return issued.record.serial.upper()

    def run(self, *args: str | Path, env: dict[str, str | None] | None = None) -> CliResult:
        return yinxin(self.home, *args, env={**self.env, **(env or {})})

    def ok(self, *args: str | Path, env: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
        """Run with --json; the command must succeed and print one JSON document."""
        result = self.run(*args, "--json", env=env)
        assert result.code == 0, result
        assert "Traceback" not in result.err
        return json.loads(result.out)

    def ca_pem(self, name: str) -> Path:
        return self.home / "cas" / name / "ca.pem"

    def csr(self, algorithm: str, subject: str, stem: str, san: str | None = None) -> Path:
        return openssl_csr(self.work, algorithm, subject, stem=stem, san=san)[1]

    def issue_csr(self, profile: str, subject: str, stem: str, *, ca: str = "sub", algorithm: str = "ecdsa-p256",
                  extra: tuple[str, ...] = ()) -> dict:
        csr = self.csr(algorithm, subject, stem)
        app = self.ok("ca", "apply", "--ca", ca, "--profile", profile, "--subject", subject, "--session",
                      self.sessions["alice"], "--csr", csr, *extra)
        self.ok("ca", "approve", str(app["id"]), "--session", self.sessions["bob"])
        return self.ok("ca", "issue", str(app["id"]), "--out", self.work / f"{stem}.pem",
                       "--chain-out", self.work / f"{stem}.chain.pem")

    def state(self) -> tuple[dict, list[str]]:
        """The database's rows and the home's files (the WAL files aside)."""
        files = sorted(str(p.relative_to(self.home)) for p in self.home.rglob("*")
                       if p.is_file() and not p.name.startswith("yinxin.db"))
        return db_snapshot(database_of(self.home)), files


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    c = Cli(tmp_path_factory.mktemp("cli") / "home", tmp_path_factory.mktemp("cli-work"))
    root = c.ok("ca", "init", "--name", "root", "--subject", "/C=CN/O=印信测试/CN=印信根CA", "--algorithm", "rsa2048",
                "--days", "3650", "--base-url", BASE_URL, "--ca-password-file", c.pw, env={"YINXIN_CA_PASSWORD": None})
    assert root["name"] == "root" and root["parent"] is None and root["urls"]["ocsp"] == f"{BASE_URL}/ocsp/root"
    sub = c.ok("ca", "init", "--name", "sub", "--subject", "/C=CN/O=印信测试/CN=印信业务CA", "--algorithm",
               "ecdsa-p256", "--parent", "root", "--parent-password-file", c.pw, "--base-url", BASE_URL)
    assert sub["parent"] == "root" and sub["algorithm"] == "ecdsa-p256"
    sm2 = c.ok("ca", "init", "--name", "sm2", "--subject", "/C=CN/O=印信测试/CN=SM2根CA", "--algorithm", "sm2",
               "--sm2-id", "1234567812345678")
    assert sm2["sm2_id"] == "1234567812345678"
    return c


def test_cas_and_ca_certificates(cli: Cli) -> None:
    listed = cli.ok("ca", "cas")["cas"]
    assert [(c["name"], c["parent"]) for c in listed] == [("root", None), ("sub", "root"), ("sm2", None)]
    chain = cli.work / "sub-chain.pem"
    out = cli.ok("ca", "cert", "--ca", "sub", "--out", chain, "--chain")
    assert out["out"] == str(chain)
    assert chain.read_bytes() == cli.ca_pem("sub").read_bytes() + cli.ca_pem("root").read_bytes()
    assert f"{cli.ca_pem('sub')}: OK" in openssl_out("verify", "-CAfile", cli.ca_pem("root"), cli.ca_pem("sub"))
    single = cli.work / "root.pem"
    cli.ok("ca", "cert", "--ca", "root", "--out", single)
    assert single.read_bytes() == cli.ca_pem("root").read_bytes()


def test_walkthrough_csr_to_certificate(cli: Cli) -> None:
    subject = "/C=CN/O=印信测试/CN=www.yinxin.test"
    csr = cli.csr("ecdsa-p256", subject, "www", san="DNS:www.yinxin.test")
    app = cli.ok("ca", "apply", "--ca", "sub", "--profile", "server", "--subject", subject, "--session",
                 cli.sessions["alice"], "--csr", csr)
    assert app["state"] == "submitted" and app["subject_alt_names"] == ["dns:www.yinxin.test"]
    assert app["applicant"] == "alice" and app["submitted_by"] is None
    plain = cli.run("ca", "apply", "--ca", "sub", "--profile", "server", "--subject", subject, "--applicant",
                    "alice", "--csr", csr)                           # filed for alice by operator-1, an RA officer
    assert plain.code == 0 and plain.out.strip().isdigit()           # prints the application id
    decided = cli.ok("ca", "approve", str(app["id"]), "--session", cli.sessions["bob"], "--comment", "checked")
    assert decided["state"] == "approved" and decided["decided_by"] == "bob"
    rejected = cli.ok("ca", "reject", plain.out.strip(), "--session", cli.sessions["bob"], "--reason", "duplicate")
    assert rejected["state"] == "rejected" and rejected["comment"] == "duplicate"
    leaf, chain = cli.work / "www.pem", cli.work / "www.chain.pem"
    issued = cli.ok("ca", "issue", str(app["id"]), "--out", leaf, "--chain-out", chain)
    assert issued["status"] == "issued" and issued["certificate"] == str(leaf) and issued["application"] == app["id"]
    assert f"{leaf}: OK" in openssl_out("verify", "-CAfile", cli.ca_pem("root"), "-untrusted", chain,
                                        "-purpose", "sslserver", leaf)
    text = cert_text(leaf)
    assert f"URI:{BASE_URL}/crl/sub.crl" in text and f"OCSP - URI:{BASE_URL}/ocsp/sub" in text
    serial = issued["serial"]
    assert openssl_out("x509", "-in", leaf, "-noout", "-serial").strip() == f"serial={serial.zfill(len(serial) + len(serial) % 2)}"
    shown = cli.ok("ca", "show", serial)
    assert shown["subject"] == "CN=www.yinxin.test,O=印信测试,C=CN" and shown["ca"] == "sub"
    listed = cli.ok("ca", "list", "--subject", "www.yinxin")["certificates"]
    assert [c["serial"] for c in listed] == [serial]
    stats = cli.ok("ca", "stats")
    assert stats["cas"]["sub"]["issued"] >= 1 and stats["applications"]["rejected"] >= 1
    # the human-readable form works too
    assert serial in cli.run("ca", "list", "--ca", "sub").out


def test_generated_key_with_evidence(cli: Cli) -> None:
    evidence = [cli.work / "身份证.jpg", cli.work / "申请表.pdf"]
    evidence[0].write_bytes(b"\xff\xd8\xff ID card")
    evidence[1].write_bytes(b"%PDF-1.7 form")
    key = cli.work / "zhang.key"
    app = cli.ok("ca", "apply", "--ca", "sm2", "--profile", "person", "--subject", "/C=CN/CN=张三", "--applicant",
                 "zhang", "--id-number", "110101199001011234", "--generate-key", "--key-out", key,
                 "--key-password-file", cli.key_pw, "--evidence", evidence[0], "--evidence", evidence[1])
    import hashlib
    assert [e["sha256"] for e in app["evidence"]] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in evidence]
    assert app["key_generated"] is True
    cli.ok("ca", "approve", str(app["id"]), "--session", cli.sessions["bob"])
    issued = cli.ok("ca", "issue", str(app["id"]), "--out", cli.work / "zhang.pem")
    public = openssl_out("pkey", "-in", key, "-passin", f"file:{cli.key_pw}", "-pubout")
    assert public == openssl_out("x509", "-in", cli.work / "zhang.pem", "-noout", "-pubkey")
    assert f"{cli.work / 'zhang.pem'}: OK" in openssl_out("verify", "-vfyopt", "distid:1234567812345678", "-CAfile",
                                                          cli.ca_pem("sm2"), cli.work / "zhang.pem")
    # one person, one certificate: a second application names the existing serial
    again = cli.run("ca", "apply", "--ca", "sm2", "--profile", "person", "--subject", "/C=CN/CN=张三",
                    "--applicant", "zhang", "--id-number", "110101199001011234", "--generate-key", "--key-out",
                    cli.work / "zhang2.key", "--key-password-file", cli.key_pw)
    assert_one_line_error(again, f"serial {issued['serial']}")
    assert not (cli.work / "zhang2.key").exists()


def test_hold_release_revoke_crl(cli: Cli) -> None:
    a = cli.lib_issue("organization", "/O=印信测试/CN=crl a", "crl-a")
    cli.lib_issue("organization", "/O=印信测试/CN=crl b", "crl-b")
    full = cli.ok("ca", "crl", "--ca", "sub", "--out", cli.work / "sub-1.crl")
    assert full["delta_base"] is None and full["entries"] == 0
    assert cli.ok("ca", "hold", a)["status"] == "held"
    assert cli.ok("ca", "release", a)["status"] == "issued"
    assert cli.ok("ca", "hold", a)["status"] == "held"
    revoked = cli.ok("ca", "revoke", a, "--reason", "keyCompromise")
    assert (revoked["status"], revoked["revocation_reason"]) == ("revoked", "key_compromise")
    delta = cli.ok("ca", "crl", "--ca", "sub", "--out", cli.work / "sub-2.crl", "--delta")
    assert delta["delta_base"] == full["number"] and delta["number"] == full["number"] + 1 and delta["entries"] == 1
    full2 = cli.ok("ca", "crl", "--ca", "sub", "--out", cli.work / "sub-3.crl.pem", "--pem",
                   "--ca-password-file", cli.pw, env={"YINXIN_CA_PASSWORD": None})
    assert full2["number"] == delta["number"] + 1 and full2["entries"] == 1
    assert (cli.work / "sub-3.crl.pem").read_text().startswith("-----BEGIN X509 CRL-----")
    for crl, form in ((cli.work / "sub-1.crl", "DER"), (cli.work / "sub-2.crl", "DER"), (cli.work / "sub-3.crl.pem", "PEM")):
        proc = openssl("crl", "-in", crl, "-inform", form, "-CAfile", cli.ca_pem("sub"), "-noout")
        assert "verify OK" in (proc.stdout + proc.stderr).decode()
    chain = cli.work / "crl-a.chain.pem"
    proc = openssl("verify", "-crl_check", "-CRLfile", cli.work / "sub-3.crl.pem", "-CAfile", cli.ca_pem("root"),
                   "-untrusted", chain, cli.work / "crl-a.pem", check=False)
    assert "certificate revoked" in (proc.stdout + proc.stderr).decode()
    proc = openssl("verify", "-crl_check", "-CRLfile", cli.work / "sub-3.crl.pem", "-CAfile", cli.ca_pem("root"),
                   "-untrusted", chain, cli.work / "crl-b.pem", check=False)
    assert proc.returncode == 0, proc
    assert cli.ok("ca", "list", "--status", "revoked", "--ca", "sub")["certificates"][0]["serial"] == a


def test_ocsp_and_check(cli: Cli) -> None:
    cli.lib_issue("organization", "/O=印信测试/CN=ocsp cli", "ocsp-cli")
    leaf = cli.work / "ocsp-cli.pem"
    req, resp = cli.work / "cli.req", cli.work / "cli.resp"
    openssl("ocsp", "-issuer", cli.ca_pem("sub"), "-cert", leaf, "-reqout", req)
    out = cli.ok("ca", "ocsp", "--ca", "sub", "--reqin", req, "--respout", resp)
    assert out == {"ca": "sub", "response_status": "successful", "out": str(resp)}
    proc = openssl("ocsp", "-respin", resp, "-reqin", req, "-VAfile", cli.ca_pem("sub"), check=False)
    assert "Response verify OK" in (proc.stdout + proc.stderr).decode()
    text = openssl("ocsp", "-respin", resp, "-issuer", cli.ca_pem("sub"), "-VAfile", cli.ca_pem("sub"),
                   "-cert", leaf, "-no_nonce").stdout.decode()
    assert f"{leaf}: good" in text
    assert cli.ok("ca", "check")["reserved"] == []


def test_rekey_and_renewal_window_via_cli(cli: Cli) -> None:
    serial = cli.lib_issue("organization", "/O=印信测试/CN=rekey cli", "rekey-cli")
    before = cli.state()
    outside = cli.run("ca", "renew", serial, "--out", cli.work / "renewed.pem")
    assert_one_line_error(outside, "can be renewed from", "renewal window 60 days")
    assert cli.state() == before and not (cli.work / "renewed.pem").exists()
    new_csr = cli.csr("ecdsa-p256", "/O=印信测试/CN=rekey cli", "rekey-cli-new")
    rekeyed = cli.ok("ca", "renew", serial, "--csr", new_csr, "--out", cli.work / "rekeyed.pem",
                     "--chain-out", cli.work / "rekeyed.chain.pem")
    assert rekeyed["predecessor"] == serial and rekeyed["serial"] != serial
    assert cli.ok("ca", "show", serial)["revocation_reason"] == "superseded"
    assert f"{cli.work / 'rekeyed.pem'}: OK" in openssl_out(
        "verify", "-CAfile", cli.ca_pem("root"), "-untrusted", cli.work / "rekeyed.chain.pem", cli.work / "rekeyed.pem")


def test_renew_same_key_via_cli(tmp_path: Path) -> None:
    """With a policy whose renewal window is longer than the validity, renewal is possible right away."""
    policies = tmp_path / "policies"
    shutil.copytree(Path(__file__).resolve().parent.parent / "policies" / "profiles", policies / "profiles")
    org = policies / "profiles" / "organization.yaml"
    org.write_text(org.read_text(encoding="utf-8").replace("renewal_window_days: 60", "renewal_window_days: 800"),
                   encoding="utf-8")
    (tmp_path / "work").mkdir()
    c = Cli(tmp_path / "home", tmp_path / "work")
    c.env["YINXIN_POLICY_DIR"] = str(policies)
    c.ok("ca", "init", "--name", "sub", "--subject", "/CN=Renewal CA", "--algorithm", "ecdsa-p256")
    old = c.issue_csr("organization", "/O=印信测试/CN=renew cli", "renew-cli")
    new = c.ok("ca", "renew", old["serial"], "--out", c.work / "renewed.pem")
    assert new["public_key_sha256"] == old["public_key_sha256"] and new["predecessor"] == old["serial"]
    assert openssl_out("x509", "-in", c.work / "renewed.pem", "-noout", "-pubkey") == \
        openssl_out("x509", "-in", c.work / "renew-cli.pem", "-noout", "-pubkey")
    assert c.ok("audit", "verify")["ok"] is True


def test_audit_verify_after_the_session(cli: Cli) -> None:
    report = cli.ok("audit", "verify")
    assert report["ok"] and report["problems"] == [] and report["events"] > 20
    operators = {a for (a,) in sql(database_of(cli.home), "SELECT DISTINCT actor FROM audit_events")}
    assert {"operator-1", "bob", "alice"} <= operators


# --------------------------------------------------------------------------- bad input

@pytest.fixture(scope="module")
def fixtures(cli: Cli) -> dict[str, str]:
    """Objects in known states for the bad-input cases (set up through the library)."""
    lib = cli.lib
    pending_csr = cli.csr("ecdsa-p256", "/O=x/CN=pending", "pending")
    submitted = lib.ra.apply(ca="sub", profile="organization", subject="/O=x/CN=pending", actor=lib.person("alice"),
                             csr=pending_csr.read_bytes())
    approved = lib.ra.apply(ca="sub", profile="organization", subject="/O=x/CN=approved", actor=lib.person("alice"),
                            csr=cli.csr("ecdsa-p256", "/O=x/CN=approved", "approved").read_bytes())
    lib.ra.approve(approved.id, actor=lib.officer("bob"))
    revoked = cli.lib_issue("organization", "/O=x/CN=revoked", "revoked")
    lib.authority.revoke(revoked, reason="superseded", actor=lib.op)
    person = cli.lib_issue("person", "/CN=李四", "lisi", id_number="110101199202022222")
    (cli.work / "wrong-password").write_text("wrong horse\n")
    return {"submitted": str(submitted.id), "approved": str(approved.id), "revoked": revoked,
            "person": person, "csr": str(pending_csr), "sub": lib.authority.get("sub").serial.upper()}


def bad_cases(f: dict[str, str], cli: Cli) -> dict[str, tuple[list, str, dict]]:
    out = str(cli.work / "never.pem")
    apply = ["ca", "apply", "--ca", "sub", "--applicant", "alice"]
    return {
        "malformed CSR": ([*apply, "--profile", "organization", "--subject", "/O=x/CN=y", "--csr",
                           VECTORS / "csr" / "malformed-truncated.pem"], "certification request", {}),
        "CSR with a broken signature": ([*apply, "--profile", "organization", "--subject", "/O=x/CN=y", "--csr",
                                         cli.work / "broken.csr"], "CSR signature does not verify", {}),
        "missing CSR file": ([*apply, "--profile", "organization", "--subject", "/O=x/CN=y", "--csr",
                              cli.work / "nope.csr"], "cannot read CSR", {}),
        "mismatched subject": ([*apply, "--profile", "organization", "--subject", "/O=x/CN=other", "--csr",
                                f["csr"]], "differs from the application's subject", {}),
        "invalid SAN": ([*apply, "--profile", "server", "--subject", "/O=x/CN=pending", "--csr", f["csr"],
                         "--san", "dns:not a host!"], "invalid dns subject alternative name", {}),
        "unknown profile": ([*apply, "--profile", "wizard", "--subject", "/O=x/CN=y", "--csr", f["csr"]],
                            "unknown profile 'wizard'", {}),
        "unknown CA": (["ca", "apply", "--ca", "nope", "--applicant", "a", "--profile", "organization",
                        "--subject", "/O=x/CN=pending", "--csr", f["csr"]], "no CA named 'nope'", {}),
        "approver is the applicant": (["ca", "approve", f["submitted"], "--session", cli.sessions["alice"]],
                                      "separation of duties", {}),
        "operator is not the session's account": (["ca", "approve", f["submitted"], "--operator", "bob"],
                                                  "is not the session's account operator-1", {}),
        "a person without the role": (["ca", "revoke", f["person"], "--reason", "superseded", "--session",
                                       cli.sessions["zhou"]], "zhou does not hold the role", {}),
        "no session": (["ca", "revoke", f["person"], "--reason", "superseded"], "log in first",
                       {"YINXIN_SESSION": None}),
        "issue unapproved": (["ca", "issue", f["submitted"], "--out", out], "only an approved application", {}),
        "unknown application": (["ca", "approve", "424242", "--session", cli.sessions["bob"]],
                                "no application 424242", {}),
        "release revoked": (["ca", "release", f["revoked"]], "cannot release it", {}),
        "re-key a CA certificate": (["ca", "renew", f["sub"], "--ca", "root", "--csr", f["csr"], "--out", out],
                                    "is for CA certificates", {}),
        "renew revoked": (["ca", "renew", f["revoked"], "--out", out], "only a valid certificate is renewed", {}),
        "unknown serial": (["ca", "revoke", "0123456789ABCDEF01", "--reason", "superseded"],
                           "no certificate with serial 123456789ABCDEF01", {}),
        "unknown reason": (["ca", "revoke", f["person"], "--reason", "lost"], "unknown revocation reason", {}),
        "duplicate person": (["ca", "apply", "--ca", "sub", "--profile", "person", "--subject", "/CN=李四",
                              "--applicant", "lisi", "--id-number", "110101199202022222", "--csr",
                              cli.work / "lisi.csr"], f"serial {f['person']}", {}),
        "duplicate CA name": (["ca", "init", "--name", "sub", "--subject", "/CN=again", "--algorithm", "ecdsa-p256"],
                              "exists already", {}),
        "unknown algorithm": (["ca", "init", "--name", "dsa", "--subject", "/CN=dsa", "--algorithm", "dsa1024"],
                              "unknown algorithm 'dsa1024'", {}),
        "sm2 id on rsa": (["ca", "init", "--name", "r2", "--subject", "/CN=r", "--algorithm", "rsa2048",
                           "--sm2-id", "x"], "--sm2-id applies to SM2 CAs only", {}),
        "wrong CA password (env)": (["ca", "issue", f["approved"], "--out", out], "wrong password for the key of CA sub",
                                    {"YINXIN_CA_PASSWORD": "wrong horse"}),
        "wrong CA password (file)": (["ca", "crl", "--ca", "sub", "--out", out, "--ca-password-file",
                                      cli.work / "wrong-password"], "wrong password", {"YINXIN_CA_PASSWORD": None}),
        "no CA password": (["ca", "crl", "--ca", "sub", "--out", out], "a password is needed",
                           {"YINXIN_CA_PASSWORD": None}),
        "wrong parent password": (["ca", "init", "--name", "sub2", "--subject", "/CN=sub2", "--algorithm",
                                   "ecdsa-p256", "--parent", "root"], "wrong password for the key of CA root",
                                  {"YINXIN_PARENT_CA_PASSWORD": "wrong horse"}),
        "delta before a full CRL": (["ca", "crl", "--ca", "sm2", "--delta", "--out", out], "no full CRL yet", {}),
        "missing option": (["ca", "revoke", f["person"]], "Missing option '--reason'", {}),
    }


def test_bad_input_is_one_line_and_changes_nothing(cli: Cli, fixtures: dict[str, str]) -> None:
    (cli.work / "broken.csr").write_bytes(corrupt_csr_signature((cli.work / "pending.csr").read_bytes()))
    before = cli.state()
    for name, (args, needle, env) in bad_cases(fixtures, cli).items():
        result = cli.run(*args, env=env)
        assert_one_line_error(result, needle)
        assert cli.state() == before, f"{name}: the database or the home changed"
        assert not (cli.work / "never.pem").exists(), name


def test_errors_with_json_are_json(cli: Cli, fixtures: dict[str, str]) -> None:
    result = cli.run("ca", "release", fixtures["revoked"], "--json")
    assert result.code == 2
    error = json.loads(result.out)
    assert error["error"] == "StateError" and error["serial"] == fixtures["revoked"] and error["status"] == "revoked"
    assert_one_line_error(result, "cannot release it")
    usage = cli.run("--json", "ca", "revoke", fixtures["person"])
    assert usage.code == 2 and json.loads(usage.out)["error"] == "UsageError"


def test_help_lists_the_commands(cli: Cli) -> None:
    result = cli.run("ca", "--help")
    for command in ("init", "apply", "approve", "reject", "issue", "renew", "hold", "release", "revoke", "crl",
                    "ocsp", "show", "list", "stats", "cert", "purge", "check", "cas"):
        assert f"  {command} " in result.out, command
    assert "verify" in cli.run("audit", "--help").out

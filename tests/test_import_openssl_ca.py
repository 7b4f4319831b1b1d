"""`yinxin ca import-openssl`: an index.txt written by a real `openssl ca` (run with the yinxin CA's own key and
certificate) with valid, revoked (keyCompromise, superseded), held (certificateHold, holdInstruction) and
keyTime lines, imported with its certificates; idempotent; later revocations applied; bad lines reported by
number with nothing imported; certificates of another issuer refused.  OpenSSL judges the resulting CRL."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ca_helpers import (PASSWORD, World, assert_one_line_error, db_snapshot, openssl, openssl_csr, wall_clock,
                        yinxin, session_env)
from pki.openssl_import import import_openssl_index, parse_index

UTC = timezone.utc
ENV = {"YINXIN_CA_PASSWORD": PASSWORD.decode()}


class OpensslCa:
    """An `openssl ca` database whose CA key and certificate are the yinxin CA's."""

    def __init__(self, world: World, ca: str, directory: Path) -> None:
        self.world, self.dir = world, directory
        (directory / "newcerts").mkdir(parents=True)
        (directory / "index.txt").write_text("")
        (directory / "serial").write_text("1000\n")
        self.config = directory / "openssl.cnf"
        self.config.write_text(f"""\
[ ca ]
default_ca = test

[ test ]
dir = {directory}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
certificate = {world.ca_pem(ca)}
private_key = {world.home_dir / 'cas' / ca / 'ca.key.pem'}
default_md = sha256
default_days = 365
policy = anything
x509_extensions = leaf
unique_subject = no
utf8 = yes

[ anything ]
commonName = supplied
organizationName = optional

[ leaf ]
basicConstraints = CA:FALSE
authorityKeyIdentifier = keyid
""")

    def run(self, *args: str) -> None:
        openssl("ca", "-batch", "-config", self.config, "-passin", f"pass:{PASSWORD.decode()}", *args)

    def issue(self, name: str) -> tuple[Path, str]:
        _, csr = openssl_csr(self.dir, "ecdsa-p256", f"/O=印信测试/CN={name}", stem=name)
        cert = self.dir / f"{name}.pem"
        self.run("-notext", "-in", str(csr), "-out", str(cert))
        serial = openssl("x509", "-in", cert, "-noout", "-serial").stdout.decode().strip().split("=")[1]
        return cert, serial

    @property
    def index(self) -> Path:
        return self.dir / "index.txt"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("imp") / "home", tmp_path_factory.mktemp("imp-files"), wall_clock())
    w.init_ca("rsa", "rsa2048")
    w.init_ca("other", "ecdsa-p256")
    return w


@pytest.fixture(scope="module")
def legacy(world: World) -> tuple[OpensslCa, dict[str, tuple[Path, str]]]:
    ca = OpensslCa(world, "rsa", world.files / "openssl-ca")
    certs = {name: ca.issue(name) for name in ("valid", "compromised", "held", "keytime", "instructed",
                                               "superseded", "later")}
    ca.run("-revoke", str(certs["compromised"][0]), "-crl_reason", "keyCompromise")
    ca.run("-revoke", str(certs["held"][0]), "-crl_reason", "certificateHold")
    ca.run("-revoke", str(certs["keytime"][0]), "-crl_compromise", "20240102030405Z")
    ca.run("-revoke", str(certs["instructed"][0]), "-crl_hold", "1.2.840.10040.2.2")
    ca.run("-revoke", str(certs["superseded"][0]), "-crl_reason", "superseded")
    return ca, certs


def show(world: World, serial: str) -> dict[str, object]:
    result = yinxin(world.home_dir, "ca", "show", serial, "--ca", "rsa", "--json")
    assert result.code == 0, result
    return result.json()


def test_import_with_certificates_then_crl_and_ocsp(world: World, legacy) -> None:  # type: ignore[no-untyped-def]
    ca, certs = legacy
    text = ca.index.read_text()
    assert "keyTime" in text and "holdInstruction" in text and "certificateHold" in text  # what openssl wrote
    result = yinxin(world.home_dir, "ca", "import-openssl", "--ca", "rsa", "--index", ca.index,
                    "--certs", ca.dir / "newcerts", "--json", env=session_env(world.home_dir))
    assert result.code == 0, result
    data = result.json()
    assert (data["added"], data["updated"], data["unchanged"]) == (7, 0, 0)
    assert data["certificates_checked"] == 7 and data["by_status"] == {"issued": 2, "revoked": 3, "held": 2}
    assert data["compromise_times_not_kept"] == 2
    expected = {"valid": ("issued", None), "compromised": ("revoked", "key_compromise"),
                "held": ("held", "certificate_hold"), "keytime": ("revoked", "key_compromise"),
                "instructed": ("held", "certificate_hold"), "superseded": ("revoked", "superseded")}
    for name, (status, reason) in expected.items():
        record = show(world, certs[name][1])
        assert (record["status"], record["revocation_reason"]) == (status, reason), name
        # openssl ca puts the RDNs in its policy's order: CN first, so it is last in RFC 4514 text
        assert record["subject"] == f"O=印信测试,CN={name}" and record["profile"] == "imported"
    # the imported record holds the certificate itself
    assert yinxin(world.home_dir, "ca", "list", "--status", "revoked", "--ca", "rsa").code == 0
    # our CRL, verified by openssl, lists what openssl had revoked
    crl = world.files / "after-import.crl"
    assert yinxin(world.home_dir, "ca", "crl", "--ca", "rsa", "--out", crl,
                  env={**ENV, **session_env(world.home_dir)}).code == 0
    out = openssl("crl", "-inform", "DER", "-in", crl, "-CAfile", world.ca_pem("rsa"), "-noout", "-text")
    crl_text = (out.stdout + out.stderr).decode()
    assert "verify OK" in crl_text
    for name in ("compromised", "held", "keytime", "instructed", "superseded"):
        assert certs[name][1] in crl_text, name
    assert certs["valid"][1] not in crl_text and "Certificate Hold" in crl_text
    # and OCSP answers for an imported certificate
    req, resp = world.files / "imp.req", world.files / "imp.resp"
    openssl("ocsp", "-issuer", world.ca_pem("rsa"), "-cert", certs["compromised"][0], "-reqout", req)
    assert yinxin(world.home_dir, "ca", "ocsp", "--ca", "rsa", "--reqin", req, "--respout", resp, env=ENV).code == 0
    status = openssl("ocsp", "-respin", resp, "-issuer", world.ca_pem("rsa"), "-cert", certs["compromised"][0],
                     "-VAfile", world.ca_pem("rsa"), "-no_nonce", check=False)
    assert "revoked" in status.stdout.decode() and "keyCompromise" in status.stdout.decode()


def test_importing_twice_changes_nothing(world: World, legacy) -> None:  # type: ignore[no-untyped-def]
    ca, _ = legacy
    before = db_snapshot(world.db_path())
    result = yinxin(world.home_dir, "ca", "import-openssl", "--ca", "rsa", "--index", ca.index,
                    "--certs", ca.dir / "newcerts", "--json", env=session_env(world.home_dir))
    assert result.code == 0, result
    assert (result.json()["added"], result.json()["updated"], result.json()["unchanged"]) == (0, 0, 7)
    assert db_snapshot(world.db_path()) == before


def test_a_later_revocation_is_applied_on_reimport(world: World, legacy) -> None:  # type: ignore[no-untyped-def]
    ca, certs = legacy
    ca.run("-revoke", str(certs["later"][0]), "-crl_reason", "cessationOfOperation")
    result = yinxin(world.home_dir, "ca", "import-openssl", "--ca", "rsa", "--index", ca.index, "--json",
                    env=session_env(world.home_dir))
    assert result.code == 0, result
    assert (result.json()["added"], result.json()["updated"]) == (0, 1)
    record = show(world, certs["later"][1])
    assert (record["status"], record["revocation_reason"]) == ("revoked", "cessation_of_operation")


def test_a_contradiction_is_a_bad_line_and_nothing_changes(world: World, legacy) -> None:  # type: ignore[no-untyped-def]
    ca, certs = legacy
    lines = ca.index.read_text().splitlines()
    number = next(i for i, line in enumerate(lines, 1) if certs["compromised"][1] in line)
    fields = lines[number - 1].split("\t")
    lines[number - 1] = "\t".join(["V", fields[1], "", *fields[3:]])
    edited = world.files / "contradiction.txt"
    edited.write_text("\n".join(lines) + "\n")
    before = db_snapshot(world.db_path())
    result = yinxin(world.home_dir, "ca", "import-openssl", "--ca", "rsa", "--index", edited,
                    env=session_env(world.home_dir))
    assert_one_line_error(result, f"line {number}", "is revoked (key_compromise", "the index says issued",
                          "nothing imported")
    assert db_snapshot(world.db_path()) == before


BAD_INDEX = """\
V\t300101000000Z\t\t0A01\tunknown\t/CN=fine one
V\t300101000000Z\t\t0A02\tunknown
R\t300101000000Z\t\t0A03\tunknown\t/CN=revoked without date
R\t300101000000Z\t240101000000Z,noSuchReason\t0A04\tunknown\t/CN=bad reason
V\t301301000000Z\t\t0A05\tunknown\t/CN=month 13
X\t300101000000Z\t\t0A06\tunknown\t/CN=bad status
V\t300101000000Z\t\tZZ\tunknown\t/CN=bad serial
V\t300101000000Z\t\t0A01\tunknown\t/CN=duplicate of line 1
V\t300101000000Z\t240101000000Z\t0A08\tunknown\t/CN=valid with a revocation
R\t300101000000Z\t240101000000Z,keyTime\t0A09\tunknown\t/CN=keyTime without time
R\t20300101000000Z\t20240101000000Z,superseded\t0A0A\tunknown\t/CN=generalized times are fine
"""


def test_bad_lines_are_reported_by_number_and_nothing_is_imported(world: World) -> None:
    index = world.files / "bad-index.txt"
    index.write_text(BAD_INDEX)
    before = db_snapshot(world.db_path())
    result = yinxin(world.home_dir, "ca", "import-openssl", "--ca", "other", "--index", index,
                    env=session_env(world.home_dir))
    line = assert_one_line_error(result, "9 bad line(s)", "nothing imported")
    for number in (2, 3, 4, 5, 6, 7, 8, 9, 10):
        assert f"line {number}:" in line, (number, line)
    assert "line 1:" not in line and "line 11:" not in line
    assert db_snapshot(world.db_path()) == before
    as_json = yinxin(world.home_dir, "ca", "import-openssl", "--ca", "other", "--index", index, "--json",
                     env=session_env(world.home_dir))
    assert as_json.code != 0
    assert [b["line"] for b in json.loads(as_json.out)["bad_lines"]] == [2, 3, 4, 5, 6, 7, 8, 9, 10]


def test_certificates_of_another_issuer_are_refused(world: World, legacy) -> None:  # type: ignore[no-untyped-def]
    ca, _ = legacy
    before = db_snapshot(world.db_path())
    result = yinxin(world.home_dir, "ca", "import-openssl", "--ca", "other", "--index", ca.index,
                    "--certs", ca.dir / "newcerts", env=session_env(world.home_dir))
    assert_one_line_error(result, "line 1:", "not CA other", "nothing imported")
    assert db_snapshot(world.db_path()) == before


def test_a_missing_certificate_file_is_a_bad_line(world: World, legacy) -> None:  # type: ignore[no-untyped-def]
    ca, certs = legacy
    partial = world.files / "partial-newcerts"
    shutil.copytree(ca.dir / "newcerts", partial)
    serial = certs["superseded"][1]
    (partial / f"{serial}.pem").unlink()
    number = next(i for i, line in enumerate(ca.index.read_text().splitlines(), 1) if serial in line)
    result = yinxin(world.home_dir, "ca", "import-openssl", "--ca", "rsa", "--index", ca.index, "--certs", partial,
                    env=session_env(world.home_dir))
    assert_one_line_error(result, f"line {number}:", "no certificate with serial")


def test_parse_time_forms_reasons_and_escaped_subjects() -> None:
    text = ("R\t491231235959Z\t20240102030405Z,KEYCOMPROMISE\t00FF\tunknown\t"
            "/C=CN/O=\\xE5\\x8D\\xB0\\xE4\\xBF\\xA1/CN=A\n"
            "E\t20500101000000Z\t\t01\tunknown\t/CN=B\n"
            "R\t491231235959Z\t240101000000Z,CAkeyTime,20231231000000Z\t02\tunknown\t/CN=C\n"
            "R\t491231235959Z\t240101000000Z,removeFromCRL\t03\tunknown\t/CN=D\n")
    entries, bad = parse_index(text)
    assert bad == []
    first, second, third, fourth = entries
    assert first.serial == "ff" and first.reason == "key_compromise" and first.subject == "CN=A,O=印信,C=CN"
    assert first.revoked_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert first.not_after == datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert second.not_after == datetime(2050, 1, 1, tzinfo=UTC) and second.target["status"] == "issued"
    assert third.reason == "ca_compromise" and third.compromised_at == datetime(2023, 12, 31, tzinfo=UTC)
    assert fourth.target == {"status": "issued", "revoked_at": None, "revocation_reason": None,
                             "released_at": datetime(2024, 1, 1, tzinfo=UTC)}


@pytest.mark.parametrize("subject", [
    "/C=CN/ST=北京/L=海淀/O=印信测试/OU=信息中心/CN=张三", "/CN=a b/emailAddress=a@example.cn/serialNumber=110",
    "/O=Comma, Inc./CN=x", "/CN= leading space", "/CN=#hash", "/CN=a+b", "/DC=cn/DC=gov/CN=x",
    "/CN=semi;colon", "/CN=trailing ", "/CN=quote\"d", "/CN=back\\slash", "/CN=eq=ual"])
def test_fast_subject_conversion_agrees_with_the_name_parser(subject: str) -> None:
    from pki.openssl_import import _subject_text
    from pki.x509 import name_to_text, parse_name
    assert _subject_text(subject) == name_to_text(parse_name(subject))


def test_library_reports_progress_and_dry_run_writes_nothing(world: World) -> None:
    index = ("V\t300101000000Z\t\t0B01\tunknown\t/CN=progress one\n"
             "R\t300101000000Z\t240101000000Z,superseded\t0B02\tunknown\t/CN=progress two\n").encode()
    phases: list[str] = []
    before = db_snapshot(world.db_path())
    dry = import_openssl_index(world.authority, "other", index, dry_run=True,
                               progress=lambda phase, done, total: phases.append(phase), actor=world.op)
    assert dry.added == 2 and db_snapshot(world.db_path()) == before
    assert "read" in phases and "compare" in phases
    phases.clear()
    done = import_openssl_index(world.authority, "other", index,
                                progress=lambda phase, done, total: phases.append(phase), actor=world.op)
    assert done.added == 2 and "write" in phases

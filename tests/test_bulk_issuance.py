"""Bulk issuance (`yinxin ca bulk`, pki.bulk): many rows, bad rows alone, OpenSSL judging the results.

* The fast parts are checked against the slow ones they replace: TbsTemplate against
  pki.x509.build_tbs_certificate, SubjectCache against parse_name / name_to_text, the SPKI key
  identifier against PublicKey.key_identifier().
* The CLI run is judged by OpenSSL: every certificate verifies against the CA (SM2 with the
  distinguishing ID), every generated key file is encrypted and matches its certificate.
* Bad rows fail with their line numbers, the others are issued, the audit chain verifies, no
  reservation is left behind, and the database holds exactly the issued rows.
"""
from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest

from pki.algorithms import generate_key
from pki.bulk import BulkRow, SubjectCache, TbsTemplate, issue_bulk, read_rows, san_extension_der, spki_key_identifier
from pki.errors import Conflict, PolicyError, YinxinError
from pki.ra import subject_attributes
from pki.x509 import build_tbs_certificate, name_to_text, parse_name

from ca_helpers import (DISTID, KEY_PASSWORD, PASSWORD, World, apply_and_issue, assert_one_line_error, fixed_clock,
                        openssl, openssl_csr, openssl_out, sql, wall_clock, yinxin, session_env)
from pg_fixture import backend_name, prepare_home_database  # noqa: F401 - fixture

NAMES = [
    "/C=CN/O=T/CN=User 1",
    "/C=CN/ST=北京/L=海淀/O=印信测试局/OU=办公室/CN=张三",
    "CN=Li Si,OU=Dept\\, Two,O=T,C=CN",
    "CN=a\\+b,O=x\\=y,C=CN",
    "/C=CN/O=T/CN=User 2/serialNumber=110101199001011234",
    "/C=CN/O=T/CN=  spaced  ",
    "CN=x+serialNumber=42,O=T",                  # multi-valued RDN: parse_name's own path
    "/C=CN/O=T/CN=mail/emailAddress=a@b.example",  # IA5 attribute: parse_name's own path
    "CN=\\#hash\\, comma,O=T",
    "CN=\\ lead and trail\\ ,O=T",
]
BAD_NAMES = ["", "CN=#6869,O=T", "/C=China/CN=x", "/XX=1", "CN=x,O", "/C=CN/CN=" + "x" * 65, "CN=ctl\x01,O=T"]


@pytest.mark.parametrize("text", NAMES)
def test_subject_cache_agrees_with_parse_name(text: str) -> None:
    cache = SubjectCache()
    for _ in range(2):                                  # the second time from the cache
        fast = cache.subject(text)
        name = parse_name(text)
        assert fast.der == name.dump()
        assert fast.text == name_to_text(name)
        assert fast.labels == subject_attributes(name)


@pytest.mark.parametrize("text", BAD_NAMES)
def test_subject_cache_refuses_what_parse_name_refuses(text: str) -> None:
    with pytest.raises(YinxinError) as slow:
        parse_name(text)
    with pytest.raises(YinxinError) as fast:
        SubjectCache().subject(text)
    assert fast.value.message == slow.value.message


@pytest.mark.parametrize("algorithm", ["rsa2048", "ecdsa-p256", "ecdsa-p384", "sm2"])
def test_spki_key_identifier(algorithm: str) -> None:
    key = generate_key(algorithm).public_key()
    assert spki_key_identifier(key.to_der()) == key.key_identifier()


@pytest.fixture(scope="module")
def template_world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("tpl") / "home", tmp_path_factory.mktemp("tpl-files"), fixed_clock())
    w.init_ca("rsa", "rsa2048")
    w.init_ca("sm2", "sm2")
    w.init_ca("ec", "ecdsa-p384", base_url=None)
    return w


@pytest.mark.parametrize("ca", ["rsa", "sm2", "ec"])
@pytest.mark.parametrize("profile,sans", [("person", ()), ("server", (("dns", "a.example"), ("ip", "10.0.0.1"))),
                                          ("seal", ()), ("ocsp", ()),
                                          ("organization", (("email", "x@y.example"), ("uri", "https://y.example/")))])
def test_template_builds_what_build_tbs_certificate_builds(template_world: World, ca: str, profile: str,
                                                          sans: tuple) -> None:
    w = template_world
    info = w.authority.get(ca)
    ca_key = w.key(ca)
    prof = w.home.profiles.get(profile)
    now = w.clock.now()
    not_after = now + timedelta(days=prof.validity_days)
    cache = SubjectCache()
    for index, (text, leaf) in enumerate(zip(NAMES[:6] * 2, ["rsa2048", "ecdsa-p256", "sm2", "ecdsa-p384"] * 3)):
        text = text.replace("/serialNumber=110101199001011234", "") + ("/O=Org" if "O=" not in text else "")
        subject = cache.subject(text)
        public = generate_key(leaf).public_key()
        template = TbsTemplate.make(ca=info, ca_key_public=ca_key.public_key(), profile=prof, not_before=now,
                                    not_after=not_after, sample_subject=parse_name(text), sample_key=public)
        serial = (1 << 126) + index * 7919 + (255 if index % 2 else 0)
        fast = template.tbs(serial, subject.der, public.to_der(), spki_key_identifier(public.to_der()),
                            san_extension_der(sans))
        slow = build_tbs_certificate(template.spec(serial, parse_name(text), public, sans),
                                     ca_key.public_key().signature_algorithm()).dump()
        assert fast == slow, (ca, profile, text, leaf)


# --------------------------------------------------------------------------- CSV reading

def test_read_rows_header_and_field_counts(tmp_path: Path) -> None:
    data = ("\ufeffSubject, ID_Number ,csr\n"
            "/CN=a,1,\n"
            "\n"
            "/CN=b,2\n"
            "\"/CN=c, with comma\",,x.csr\n").encode()
    rows = read_rows(data)
    assert [(r.line, r.subject, r.id_number, r.csr, r.problem) for r in rows] == [
        (2, "/CN=a", "1", None, None),
        (4, "/CN=b", None, None, "2 fields, but the header names 3"),
        (5, "/CN=c, with comma", None, "x.csr", None)]
    with pytest.raises(PolicyError, match="unknown column 'idnumber'"):
        read_rows(b"subject,idnumber\n/CN=a,1\n")
    with pytest.raises(PolicyError, match="no 'subject' column"):
        read_rows(b"csr,id_number\n")
    with pytest.raises(PolicyError, match="empty"):
        read_rows(b"\n\n")
    with pytest.raises(PolicyError, match="not UTF-8"):
        read_rows(b"subject\n\xff\xfe/CN=x\n")


# --------------------------------------------------------------------------- the command line

def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _csr_broken_signature(directory: Path) -> Path:
    from ca_helpers import corrupt_csr_signature
    _, good = openssl_csr(directory, "ecdsa-p256", "/C=CN/O=T/CN=Broken", stem="broken")
    path = directory / "broken-signature.csr"
    path.write_bytes(corrupt_csr_signature(good.read_bytes()))
    return path


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("bulk") / "home"
    work = tmp_path_factory.mktemp("bulk-work")
    World(home, work, wall_clock()).init_ca("sm2root", "sm2")
    return home, work


def test_bulk_cli_issues_good_rows_and_reports_bad_ones(cli_home: tuple[Path, Path]) -> None:
    home, work = cli_home
    csrs = work / "csrs"
    csrs.mkdir()
    _, sm2_csr = openssl_csr(csrs, "sm2", "/C=CN/O=T/CN=Sm2 User", stem="sm2user")
    _, ec_csr = openssl_csr(csrs, "ecdsa-p256", "/C=CN/O=T/CN=Ec User", stem="ecuser")
    _, rsa_csr = openssl_csr(csrs, "rsa2048", "/C=CN/O=T/CN=Rsa User", stem="rsauser")
    _, other_csr = openssl_csr(csrs, "ecdsa-p256", "/C=CN/O=T/CN=Somebody Else", stem="other")
    _csr_broken_signature(csrs)                  # csrs/broken-signature.csr
    # someone already holds a person certificate for ID 900
    existing = apply_and_issue(World(home, work, wall_clock()), ca="sm2root", profile="person",
                               subject="/C=CN/O=T/CN=Existing", id_number="900",
                               generate_key_out=work / "existing.key")
    sheet = _write_csv(work / "dept.csv", ["subject", "id_number", "csr", "applicant"], [
        ["/C=CN/O=T/CN=Sm2 User", "101", "csrs/sm2user.csr", ""],                 # 2 ok (SM2 CSR, relative)
        ["/C=CN/O=T/CN=Ec User", "102", str(ec_csr), ""],                        # 3 ok (absolute path)
        ["/C=CN/O=T/CN=Rsa User", "103", "csrs/rsauser.csr", "hr-office"],        # 4 ok, applicant column
        ["/C=CN/O=T/OU=办公室/CN=王五", "104", "", ""],                           # 5 ok, key generated (SM2)
        ["/C=CN/O=T/CN=Gen Ec", "105", "", ""],                                  # 6 ok, key generated
        ["/C=CN/O=T/CN=Dup", "101", "", ""],                                     # 7 duplicate ID in the file
        ["/C=CN/O=T/CN=Held", "900", "", ""],                                    # 8 ID already has a certificate
        ["/C=CN/O=T/CN=Broken", "106", "csrs/broken-signature.csr", ""],          # 9 CSR signature broken
        ["/C=CN/O=T/CN=Missing", "107", "csrs/nope.csr", ""],                     # 10 CSR file missing
        ["/C=CN/O=T/CN=Mismatch", "108", "csrs/other.csr", ""],                   # 11 CSR subject differs
        ["/C=CN/O=T/Nope=1", "109", "", ""],                                     # 12 bad subject
        ["/C=CN/O=T/CN=No Id", "", "", ""],                                      # 13 person needs an ID
        ["/C=CN/O=T/CN=boss", "110", "", ""],                                    # 14 applicant == approver
    ])
    (work / "dept.csv").write_text((work / "dept.csv").read_text(encoding="utf-8")
                                   + "/C=CN/O=T/CN=Short,111\n", encoding="utf-8")  # 15 field count
    key_pw = work / "key-pw"
    key_pw.write_bytes(KEY_PASSWORD + b"\n")
    before = sql(_db(home), "SELECT count(*) FROM certificates")[0][0]
    result = yinxin(home, "--json", "ca", "bulk", "--ca", "sm2root", "--profile", "person", "--from", sheet,
                    "--out-dir", work / "out", "--session", _boss(home), "--key-password-file", key_pw,
                    "--threads", "1", env={"YINXIN_CA_PASSWORD": PASSWORD.decode()})
    assert result.code == 1, result
    assert "Traceback" not in result.err
    report = result.json()
    by_line = {r["line"]: r for r in report["results"]}
    assert sorted(by_line) == list(range(2, 16))
    assert [line for line, r in by_line.items() if r["status"] == "issued"] == [2, 3, 4, 5, 6]
    expected_errors = {7: "is on line 2 too", 8: f"serial {existing.record.serial.upper()}",
                       9: "CSR signature does not verify", 10: "cannot read CSR", 11: "differs from",
                       12: "unknown attribute", 13: "requires an identity number", 14: "separation of duties",
                       15: "2 fields"}
    for line, needle in expected_errors.items():
        assert needle in by_line[line]["error"], (line, by_line[line])
        assert f"yinxin: line {line}: " in result.err
    assert report["issued"] == 5 and report["failed"] == 9
    # OpenSSL judges every certificate, and every generated key is encrypted and fits
    ca_pem = home / "cas" / "sm2root" / "ca.pem"
    for line in (2, 3, 4, 5, 6):
        row = by_line[line]
        cert = Path(row["certificate_file"])
        out = openssl_out("verify", "-vfyopt", f"distid:{DISTID}", "-CAfile", ca_pem, cert)
        assert f"{cert}: OK" in out
        text = openssl_out("x509", "-in", cert, "-noout", "-serial", "-subject", "-nameopt", "utf8")
        assert row["serial"].lstrip("0") in text.upper()
        if line in (5, 6):
            key = Path(row["key_file"])
            assert key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
            assert oct(key.stat().st_mode & 0o777) == "0o600"
            pub_from_key = openssl("pkey", "-in", key, "-passin", f"pass:{KEY_PASSWORD.decode()}", "-pubout").stdout
            pub_from_cert = openssl("x509", "-in", cert, "-noout", "-pubkey").stdout
            assert pub_from_key == pub_from_cert
        else:
            assert row["key_file"] is None
    assert "王五" in openssl_out("x509", "-in", by_line[5]["certificate_file"], "-noout", "-subject",
                                 "-nameopt", "utf8")
    # no key file for a failed row, no stray files
    names = sorted(p.name for p in (work / "out").iterdir())
    assert names == sorted([Path(by_line[line]["certificate_file"]).name for line in (2, 3, 4, 5, 6)]
                           + [Path(by_line[line]["key_file"]).name for line in (5, 6)] + [".yinxin-bulk.lock"])
    # the database: exactly the issued rows, no reservation left, the audit chain intact
    assert sql(_db(home), "SELECT count(*) FROM certificates")[0][0] == before + 5
    check = yinxin(home, "--json", "ca", "check")
    assert check.json()["reserved"] == []
    verify = yinxin(home, "audit", "verify")
    assert verify.code == 0 and "OK" in verify.out, verify
    # who did what: the operator filed it for the row's applicant, the approver approved, the operator issued
    serial = by_line[4]["serial"].lower().lstrip("0")
    app = by_line[4]["application"]
    actors = sql(_db(home), "SELECT action, actor FROM audit_events WHERE target IN (?, ?) ORDER BY seq",
                 (f"application:{app}", f"sm2root:{serial}"))
    assert actors == [("application.submit", "boss"), ("application.approve", "boss"),
                      ("certificate.signing", "boss"), ("certificate.signed", "boss"),
                      ("certificate.issued", "boss")]
    assert sql(_db(home), "SELECT applicant FROM applications WHERE id=?", (by_line[2]["application"],)) == \
        [("Sm2 User",)]
    assert sql(_db(home), "SELECT applicant, submitted_by FROM applications WHERE id=?", (app,)) == \
        [("hr-office", "boss")]


def test_bulk_rerun_refuses_to_overwrite_and_changes_nothing(cli_home: tuple[Path, Path]) -> None:
    """The same sheet again: every row fails (files exist / one person one certificate), nothing new."""
    home, work = cli_home
    sheet = work / "again.csv"
    _write_csv(sheet, ["subject", "id_number", "csr"], [["/C=CN/O=T/CN=Sm2 User", "201", "csrs/sm2user.csr"],
                                                         ["/C=CN/O=T/OU=办公室/CN=王五", "104", ""]])
    out = work / "out"
    before = sql(_db(home), "SELECT count(*) FROM audit_events")[0][0]
    result = yinxin(home, "ca", "bulk", "--profile", "person", "--from", sheet, "--out-dir", out,
                    "--session", _boss(home), env={"YINXIN_CA_PASSWORD": PASSWORD.decode(),
                                               "YINXIN_KEY_PASSWORD": "k"})
    assert result.code == 1
    assert "yinxin: line 2: " in result.err and "00002-Sm2_User.pem exists; not overwriting" in result.err
    assert "yinxin: line 3: identity number 104 already has an active person certificate" in result.err
    assert sql(_db(home), "SELECT count(*) FROM audit_events")[0][0] == before


def test_bulk_cli_bad_invocation_is_one_line(cli_home: tuple[Path, Path]) -> None:
    home, work = cli_home
    sheet = _write_csv(work / "one.csv", ["subject", "id_number"], [["/C=CN/O=T/CN=X", "1"]])
    env = {"YINXIN_CA_PASSWORD": PASSWORD.decode(), "YINXIN_KEY_PASSWORD": "k"}
    assert_one_line_error(yinxin(home, "ca", "bulk", "--profile", "nope", "--from", sheet, "--out-dir",
                                 work / "o2", "--session", _boss(home), env=env), "nope")
    assert_one_line_error(yinxin(home, "ca", "bulk", "--ca", "nope", "--profile", "person", "--from", sheet,
                                 "--out-dir", work / "o2", "--session", _boss(home), env=env), "nope")
    bad = work / "bad.csv"
    bad.write_text("subjekt\n/CN=x\n")
    assert_one_line_error(yinxin(home, "ca", "bulk", "--profile", "person", "--from", bad, "--out-dir",
                                 work / "o2", "--session", _boss(home), env=env), "unknown column")
    assert_one_line_error(yinxin(home, "ca", "bulk", "--profile", "person", "--from", sheet, "--out-dir",
                                 work / "o2", "--session", _boss(home),
                                 env={**env, "YINXIN_CA_PASSWORD": "wrong"}), "wrong password")
    assert not (work / "o2" / "00002-X.pem").exists()


def _boss(home: Path) -> str:
    """The session of boss, CA operator and RA officer, who runs and approves the bulk issuance."""
    return session_env(home, "boss", "ca_operator", "ra_officer")["YINXIN_SESSION"]


def _db(home: Path):  # type: ignore[no-untyped-def]
    from pg_fixture import database_of
    return database_of(home)


# --------------------------------------------------------------------------- library, both engines

@pytest.mark.parametrize("threads,processes", [(0, 0), (2, 0), (0, 2)])
def test_bulk_library_on_each_engine(backend_name: str, tmp_path: Path, threads: int,  # noqa: F811
                                     processes: int) -> None:
    """Many rows in several batches, with the batch transaction failing on purpose part-way (an
    identity number taken by another writer after the pre-check is impossible to arrange without a
    race, so a second CA's certificate takes a slot the file also names): rows then go one by one."""
    home_dir = tmp_path / "home"
    prepare_home_database(home_dir, backend_name=backend_name)
    w = World(home_dir, tmp_path / "files", fixed_clock())
    w.init_ca("ec", "ecdsa-p256")
    keys = [generate_key("ecdsa-p256") for _ in range(3)]
    rows = []
    csr_dir = tmp_path / "csr"
    csr_dir.mkdir()
    from pki.x509 import build_csr, csr_to_pem
    for i in range(40):
        path = csr_dir / f"{i}.csr"
        path.write_bytes(csr_to_pem(build_csr(parse_name(f"/C=CN/O=T/CN=P{i}"), keys[i % 3])))
        rows.append(BulkRow(line=i + 2, subject=f"/C=CN/O=T/CN=P{i}", id_number=f"N{i}", csr=str(path)))
    rows.append(BulkRow(line=50, subject="/C=CN/O=T/CN=Gen", id_number="G1"))   # no key password: fails
    seen = []
    report = issue_bulk(w.authority, rows, ca="ec", profile="person", out_dir=tmp_path / "out", actor=w.officer("op"),
                        approver=w.officer("boss"), ca_password=PASSWORD, batch_size=16, progress=seen.append,
                        crypto_threads=threads, crypto_processes=processes)
    assert len(report.issued) == 40 and [r.line for r in report.failed] == [50]
    assert "key password" in report.failed[0].error
    assert sorted(r.line for r in seen) == [r.line for r in rows]
    serials = {r.serial for r in report.issued}
    assert len(serials) == 40
    db = w.db_path()
    assert sql(db, "SELECT count(*) FROM certificates WHERE status='issued' AND cert_der IS NOT NULL")[0][0] == 40
    assert sql(db, "SELECT count(*) FROM applications WHERE state='issued'")[0][0] == 40
    assert sql(db, "SELECT count(*) FROM certificates WHERE active_key IS NOT NULL")[0][0] == 40
    from pki import audit
    infos = {i.name: i for i in w.authority.cas()}
    assert audit.verify(w.home.store, lambda n: (infos[n].public_key(), infos[n].distid)).ok
    assert w.authority.check() == []
    for result in report.issued[:3]:
        record = w.authority.show(result.serial)
        assert record.status == "issued" and record.application_id == result.application


def test_bulk_removes_stale_temp_files_and_locks_its_directory(tmp_path: Path) -> None:
    from pki.bulk import _DirectoryLock
    w = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    w.init_ca("ec", "ecdsa-p256")
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".00002-X.key.pem.1a2b3c4d.tmp", out / ".00003-Y.pem.deadbeef.tmp"]
    for path in stale:
        path.write_bytes(b"half")
    keep = out / "notes.txt"
    keep.write_text("mine")
    rows = [BulkRow(line=2, subject="/C=CN/O=T/CN=Gen", id_number="G2")]
    with _DirectoryLock(out):
        with pytest.raises(Conflict, match="another bulk run"):
            issue_bulk(w.authority, rows, ca="ec", profile="person", out_dir=out, actor=w.officer("op"),
                       approver=w.officer("boss"), ca_password=PASSWORD, key_password=KEY_PASSWORD)
    assert all(p.exists() for p in stale)
    report = issue_bulk(w.authority, rows, ca="ec", profile="person", out_dir=out, actor=w.officer("op"),
                        approver=w.officer("boss"), ca_password=PASSWORD, key_password=KEY_PASSWORD)
    assert len(report.issued) == 1
    assert sorted(report.removed_temp_files) == sorted(str(p) for p in stale)
    assert not any(p.exists() for p in stale) and keep.exists()

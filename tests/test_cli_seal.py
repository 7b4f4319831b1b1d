"""`yinxin seal …` end to end through the real console script: SM2, RSA and ECDSA CAs made by
`yinxin ca init`, seals made by `yinxin seal create`, passwords from files and the environment.
Judged by openssl (certificates, SES_Seal, SM2 signed attributes), pdfsig, qpdf --check,
pyHanko's validator, pdftoppm renderings and pdftotext's word boxes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ca_helpers import assert_one_line_error
from pdf_fixtures import pdfsig, qpdf_check, red_box, render
from seal_support import (A4_H, A4_W, CA_PASSWORD, MM, ORG, OTHER_ORG, ROOT, SEAL_INITIAL, SEAL_PASSWORD, CliWorld,
                          add_empty_field, anchor_box, append_annotation, audit_events, cert_text, db_rows,
                          document_pdf, files_containing, flip_byte_in_signed_range, foreign_signed,
                          load_pem_cert, openssl_verify_ses, page_count, pyhanko_statuses, signatures_of,
                          sm2_attrs_verify)
from ca_helpers import openssl

LOCKOUT_AFTER = 2          # the lockout test runs under its own policy directory
FIRST_USE = "bj-finance"   # the seal whose initial password is changed in a test

# name: (CA, type, organisation, label, expected diameter in mm; None: square)
SEALS = {
    "bj-official": ("sm2-root", "official", ORG, None, 42.0),
    "bj-contract": ("rsa-root", "contract", ORG, None, 40.0),
    "bj-finance": ("ec-root", "finance", ORG, None, 40.0),
    "bj-archive": ("sm2-root", "special", ORG, "档案专用章", 40.0),
    "zhang": ("sm2-root", "personal", ORG, "张三", None),
    "tj-official": ("rsa-root", "official", OTHER_ORG, None, 42.0),
}


#: each organisation's seal custodian: only they stamp with its seals
CUSTODIANS = {ORG: "wang", OTHER_ORG: "li"}


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> CliWorld:
    base = tmp_path_factory.mktemp("cli-seal")
    world = CliWorld(base / "home", base / "files")
    for name, alg in (("sm2-root", "sm2"), ("rsa-root", "rsa2048"), ("ec-root", "ecdsa-p256")):
        world.ok("ca", "init", "--name", name, "--subject", f"/C=CN/O=印信测试/CN={name}", "--algorithm", alg,
                 "--session", world.session("ca-admin"))
    world.created = {}                          # type: ignore[attr-defined]
    for name, (ca, seal_type, org, label, _) in SEALS.items():
        world.created[name] = world.create_seal(name, ca=ca, seal_type=seal_type, org=org, label=label,
                                                ready=name != FIRST_USE, custodian=CUSTODIANS[org])
    return world


@pytest.fixture(scope="module")
def doc(cli) -> Path:
    return cli.write("notice.pdf", document_pdf())


@pytest.fixture(scope="module")
def sm2_sealed(cli, doc) -> Path:
    out = cli.files / "sm2-anchor.pdf"
    result = cli.stamp(doc, out, "bj-official", "--anchor", ORG)
    assert result.code == 0 and "sealed with bj-official on page 1" in result.out, result
    return out


@pytest.fixture(scope="module")
def rsa_sealed(cli, doc) -> Path:
    out = cli.files / "rsa-at.pdf"
    result = cli.stamp(doc, out, "bj-contract", "--page", "1", "--at", "150,60", "--json")
    assert result.code == 0, result
    assert result.json()["signature_algorithm"] == "sha256_rsa"
    return out


def verify(cli, pdf: Path, *extra: str) -> tuple[int, dict]:
    result = cli.run("seal", "verify", pdf, "--json", *extra)
    assert result.code in (0, 1), result
    return result.code, result.json()


def added_red(path: Path, original: Path, page: int = 1):
    """A mask of the red that stamping added to `page` (the document's own red 版头 left out)."""
    from PIL import ImageChops
    from pdf_fixtures import red_mask
    return ImageChops.subtract(red_mask(render(path, page)), red_mask(render(original, page)))


def red_centre(path: Path, original: Path, page: int = 1) -> tuple[float, float, tuple[int, int, int, int]]:
    """Centre and box of the red that stamping added to `page`."""
    box = added_red(path, original, page).getbbox()
    assert box is not None, f"no red added on page {page}"
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box


# --------------------------------------------------------------------------- records

def test_every_seal_type_is_created_through_the_cli(cli):
    listed = {s["name"]: s for s in cli.ok("seal", "list", "--json").json()["seals"]}
    for name, (ca, seal_type, org, label, diameter) in SEALS.items():
        created, now = cli.created[name], listed[name]
        assert (now["type"], now["organisation"], now["ca"], now["custodian"]) == (seal_type, org, ca, CUSTODIANS[org])
        assert created["must_change_password"] is True
        if name != FIRST_USE:                              # its change is the first-use test's business
            assert now["must_change_password"] is False
        assert not now["locked"] and now["picture"] == "vector"
        width, height = now["size_mm"]
        if diameter is None:
            assert width == pytest.approx(height) and width < 40
        else:
            assert (width, height) == (pytest.approx(diameter), pytest.approx(diameter))
        assert now["valid_from"] < now["valid_to"]
    assert listed["zhang"]["label"] == "张三" and listed["bj-archive"]["label"] == "档案专用章"
    assert listed["bj-contract"]["label"] == "合同专用章"
    show = cli.ok("seal", "show", "zhang", "--json").json()
    assert show["certificate_serial"] == cli.created["zhang"]["certificate_serial"]
    assert "key_pem" not in show


def test_seal_certificates_come_from_the_seal_profile(cli):
    for name, cert_der, serial in db_rows(cli.db, "SELECT name, cert_der, cert_serial FROM seals"):
        text = cert_text(cert_der)
        assert "Digital Signature, Non Repudiation" in text, name
        assert "CA:TRUE" not in text and "Certificate Sign" not in text
        assert f"CN = {SEALS[name][0]}" in text.split("Subject:")[0]           # issued by the seal's CA
        assert int(serial, 16) == int(cli.created[name]["certificate_serial"], 16)


def test_export_is_ses_seal_der_that_openssl_parses_and_show_reads_back(cli):
    out = cli.files / "bj-official.ses"
    cli.ok("seal", "export", "bj-official", "--out", out)
    parsed = openssl("asn1parse", "-inform", "DER", "-in", out).stdout.decode()
    lines = parsed.splitlines()
    assert "IA5STRING         :ES" in lines[3] and "INTEGER           :04" in lines[4], parsed
    assert "SM2-with-SM3" in parsed
    maker = load_pem_cert(cli.ca_pem("sm2-root")).dump()
    assert "Signature Verified Successfully" in openssl_verify_ses(out.read_bytes(), maker, cli.files / "ses-check")
    shown = cli.ok("seal", "show", "--file", out, "--json").json()
    assert (shown["maker_signature"], shown["maker_ca"], shown["name"], shown["certificates"]) == (
        "valid", "sm2-root", ORG, 1)
    data = bytearray(out.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped = cli.write("flipped.ses", bytes(data))
    short = cli.write("short.ses", bytes(data[:100]))
    bad_flip, bad_short = cli.run_all(("seal", "show", "--file", flipped), ("seal", "show", "--file", short))
    assert_one_line_error(bad_flip, "does not verify")
    assert bad_flip.code == 1
    assert_one_line_error(bad_short, "not a valid GB/T 38540 SES_Seal")


def test_keys_are_stored_only_encrypted(cli):
    assert files_containing(cli.home, b"BEGIN PRIVATE KEY") == []
    for name, key_pem, algorithm, cert_der in db_rows(cli.db, "SELECT name, key_pem, algorithm, cert_der FROM seals"):
        assert key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"), name
        parsed = openssl("asn1parse", input=key_pem).stdout.decode()
        assert ":PBES2" in parsed and (("sm4-cbc" in parsed) if algorithm == "sm2" else ("aes-256-cbc" in parsed))
    (key_pem, cert_der), = db_rows(cli.db, "SELECT key_pem, cert_der FROM seals WHERE name = 'bj-contract'")
    pub = openssl("pkey", "-passin", f"pass:{SEAL_PASSWORD.decode()}", "-pubout", input=key_pem).stdout
    assert pub == openssl("x509", "-inform", "DER", "-noout", "-pubkey", input=cert_der).stdout


def test_seal_image_preview(cli):
    out = cli.files / "zhang.png"
    cli.ok("seal", "image", "zhang", "--out", out)
    from PIL import Image
    with Image.open(out) as image:
        assert red_box(image.convert("RGB")) is not None


# --------------------------------------------------------------------------- passwords

def _counts(cli) -> tuple[int, int]:
    return (db_rows(cli.db, "SELECT COUNT(*) FROM seals")[0][0],
            db_rows(cli.db, "SELECT COUNT(*) FROM certificates")[0][0])


def test_weak_initial_passwords_are_refused(cli):
    before = _counts(cli)
    cases = [("123\n", "weak-a", "at least 10 characters"), ("Password1!\n", "weak-b", "default, trivial"),
             ("alllowercaseletters\n", "weak-c", "needs 3 of"), ("Weak-d-Seal-2026!\n", "weak-d", "seal's name")]
    calls = []
    for text, name, _ in cases:
        pw = cli.secret(f"{name}.pw", text.strip().encode())
        calls.append(("seal", "create", name, "--org", ORG, "--type", "official", "--custodian", "wang",
                      "--approver-session", cli.session("boss"), "--ca", "sm2-root", "--password-file", pw,
                      "--session", cli.session("admin")))
    for result, (_, _, needle) in zip(cli.run_all(*calls), cases):
        assert_one_line_error(result, needle)
    assert _counts(cli) == before                                    # no seal, no certificate issued


def test_first_use_requires_a_password_change_then_an_ecdsa_seal_goes_into_a_field(cli, tmp_path):
    source = cli.write("with-field.pdf", add_empty_field(document_pdf(), "Approval", box=(350, 150, 470, 270)))
    out = tmp_path / "ecdsa-field.pdf"
    refused = cli.stamp(source, out, FIRST_USE, "--field", "Approval", password=cli.initial)
    assert_one_line_error(refused, "initial password", "seal passwd")
    assert not out.exists()
    weak = cli.secret("weak-new.pw", b"password")
    assert_one_line_error(cli.run("seal", "passwd", FIRST_USE, "--password-file", cli.initial,
                                  "--new-password-file", weak), "at least 10")
    cli.ok("seal", "passwd", FIRST_USE, "--password-file", cli.initial, "--new-password-file", cli.password,
           "--session", cli.session("wang"))
    assert audit_events(cli.db, "seal.passwd", f"seal:{FIRST_USE}")[0]["actor"] == "wang"
    # the password from the environment this time
    result = cli.run("seal", "stamp", source, out, "--seal", FIRST_USE, "--field", "Approval", "--session",
                     cli.session("wang"),
                     "--json", env={"YINXIN_SEAL_PASSWORD": SEAL_PASSWORD.decode()})
    assert result.code == 0 and result.json()["field"] == "Approval", result
    text = pdfsig(out)
    assert "Signature is Valid." in text and "Approval" in text, text
    qpdf_check(out)
    (status,) = pyhanko_statuses(out, [load_pem_cert(cli.ca_pem("ec-root"))])
    assert status.bottom_line, status.pretty_print_details()
    cx, cy, _ = red_centre(out, source)
    assert (cx, cy) == (pytest.approx(410, abs=3), pytest.approx(A4_H - 210, abs=3))   # the field's centre


def test_wrong_passwords_lock_the_seal_until_another_administrator_unlocks(cli, doc, tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    policy = yaml.safe_load((policies / "passwords.yaml").read_text(encoding="utf-8"))
    policy["max_failures"] = LOCKOUT_AFTER
    (policies / "passwords.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    env = {"YINXIN_POLICY_DIR": str(policies)}
    out = tmp_path / "out.pdf"
    for n in range(1, LOCKOUT_AFTER + 1):
        result = cli.run("seal", "stamp", doc, out, "--seal", "zhang", "--password-file", cli.wrong,
                         "--anchor", ORG, "--session", cli.session("wang"), env=env)
        assert_one_line_error(result, "wrong password for seal zhang")
        assert (f"failure {n} of {LOCKOUT_AFTER}" if n < LOCKOUT_AFTER else "now locked") in result.err
        assert not out.exists()
    right = cli.run("seal", "stamp", doc, out, "--seal", "zhang", "--password-file", cli.password, "--anchor", ORG,
                    env=env)
    assert_one_line_error(right, "is locked", "seal unlock")
    assert not out.exists()
    own = cli.run("seal", "unlock", "zhang", "--session", cli.session("wang"), env=env)
    assert_one_line_error(own, "custodian")
    cli.ok("seal", "unlock", "zhang", "--session", cli.session("admin2"), env=env)
    ok = cli.run("seal", "stamp", doc, out, "--seal", "zhang", "--password-file", cli.password, "--anchor", ORG,
                 "--session", cli.session("wang"), env=env)
    assert ok.code == 0 and out.is_file(), ok
    failures = audit_events(cli.db, "seal.password_failure", "seal:zhang")
    assert [e["details"]["failures"] for e in failures] == list(range(1, LOCKOUT_AFTER + 1))
    assert failures[-1]["details"]["locked"] is True
    (unlock,) = audit_events(cli.db, "seal.unlock", "seal:zhang")
    assert unlock["actor"] == "admin2"
    audit = cli.ok("audit", "verify", "--json").json()
    assert audit["ok"] is True and audit["problems"] == []


# --------------------------------------------------------------------------- stamping

def test_sm2_seal_over_the_anchor(cli, sm2_sealed, doc):
    assert sm2_sealed.read_bytes().startswith(doc.read_bytes())       # an incremental update
    qpdf_check(sm2_sealed)
    (sig,) = signatures_of(sm2_sealed)
    assert (sig["signature_algorithm"], sig["digest_algorithm"]) == ("1.2.156.10197.1.501", "1.2.156.10197.1.401")
    assert "Signature Verified Successfully" in sm2_attrs_verify(sm2_sealed, cli.files / "sm2-attrs")
    x0, top, x1, bottom = anchor_box(sm2_sealed, ORG)
    cx, cy, (left, upper, right, lower) = red_centre(sm2_sealed, doc)
    assert left < x0 and x1 < right and upper < top and bottom < lower      # the seal presses the name
    assert abs(cx - (x0 + x1) / 2) < 3
    assert 0 < (top + bottom) / 2 - cy < (lower - upper) / 4                # the text slightly below the centre
    code, report = verify(cli, sm2_sealed)
    assert code == 0 and report["valid"] is True
    (s,) = report["signatures"]
    assert (s["seal"], s["organisation"], s["algorithm"], s["digest"]) == ("bj-official", ORG, "sm3_sm2", "sm3")
    assert s["intact"] and s["signature_valid"] and s["coverage"] == "ENTIRE_FILE" and s["chain"]["trusted"]
    assert s["certificate_status"] == "issued" and s["problems"] == [] and s["valid"]
    assert s["serial"] == cli.created["bj-official"]["certificate_serial"]
    assert "sm2-root" in s["seal_maker"]


def test_rsa_seal_at_a_position(cli, rsa_sealed, doc):
    text = pdfsig(rsa_sealed)
    assert "Signature is Valid." in text and "Total document signed" in text, text
    qpdf_check(rsa_sealed)
    (status,) = pyhanko_statuses(rsa_sealed, [load_pem_cert(cli.ca_pem("rsa-root"))])
    assert status.bottom_line, status.pretty_print_details()
    cx, cy, _ = red_centre(rsa_sealed, doc)
    assert (cx, cy) == (pytest.approx(150 * MM, abs=3), pytest.approx(A4_H - 60 * MM, abs=3))
    result = cli.run("seal", "verify", rsa_sealed)
    assert result.code == 0 and "document: VALID" in result.out and "seal=bj-contract" in result.out, result


def test_riding_seal_on_every_page(cli):
    source = cli.write("three-pages.pdf", document_pdf(paragraphs=10))
    pages = page_count(source)
    assert pages == 3
    out = cli.files / "riding.pdf"
    result = cli.stamp(source, out, "bj-official", "--anchor", ORG, "--riding", "--json")
    assert result.code == 0 and result.json()["riding_pages"] == pages, result
    for page in range(1, pages + 1):
        mask = added_red(out, source, page)
        strip = mask.crop((mask.width - 130, 0, mask.width, mask.height)).getbbox()
        assert strip is not None and strip[2] >= 128, f"no riding slice at the right edge of page {page}"
        if page < pages:                                    # nothing but the slice on the other pages
            assert mask.getbbox()[0] >= mask.width - 130
    assert "Signature Verified Successfully" in sm2_attrs_verify(out, cli.files / "riding-attrs")
    code, report = verify(cli, out)
    assert code == 0 and report["signatures"][0]["page"] == pages


def test_two_organisations_seal_in_turn(cli, sm2_sealed):
    joint = cli.files / "joint.pdf"
    result = cli.run("seal", "stamp", sm2_sealed, joint, "--seal", "tj-official", "--password-file", cli.password,
                     "--page", "1", "--at", "60,60", "--session", cli.session("li"))
    assert result.code == 0, result
    code, report = verify(cli, joint)
    assert code == 0 and report["valid"], report
    assert [(s["seal"], s["organisation"], s["valid"]) for s in report["signatures"]] == [
        ("bj-official", ORG, True), ("tj-official", OTHER_ORG, True)]
    assert report["signatures"][0]["coverage"] == "ENTIRE_REVISION"
    assert "Signature is Valid." in pdfsig(joint)
    assert "Signature Verified Successfully" in sm2_attrs_verify(joint, cli.files / "joint-attrs", index=0)
    qpdf_check(joint)


def test_stamp_batch(cli, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        (src / f"doc{i}.pdf").write_bytes(document_pdf())
    good = cli.run("seal", "stamp-batch", src, "--out-dir", tmp_path / "out", "--seal", "bj-contract",
                   "--password-file", cli.password, "--anchor", ORG, "--json")
    assert good.code == 0, good
    assert json.loads(good.out) == {"sealed": 3, "failed": [], "out_dir": str(tmp_path / "out")}
    assert good.err == ""                    # no progress bar off a terminal
    for i in range(3):
        assert "Signature is Valid." in pdfsig(tmp_path / "out" / f"doc{i}.pdf")
    (src / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog\n")
    bad = cli.run("seal", "stamp-batch", src, "--out-dir", tmp_path / "out2", "--seal", "bj-contract",
                  "--password-file", cli.password, "--anchor", ORG, "--json")
    assert bad.code == 1, bad
    summary = json.loads(bad.out)
    assert summary["sealed"] == 3 and [Path(f["file"]).name for f in summary["failed"]] == ["corrupt.pdf"]
    assert summary["failed"][0]["error"]
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["doc0.pdf", "doc1.pdf", "doc2.pdf"]
    (src / "corrupt.pdf").unlink()
    verbose = cli.run("seal", "stamp-batch", src, "--out-dir", tmp_path / "out3", "--seal", "bj-contract",
                      "--password-file", cli.password, "--anchor", ORG, "--verbose")
    assert verbose.code == 0 and verbose.out.count("  sealed: ") == 3 and "sealed 3 of 3" in verbose.out, verbose
    quiet = cli.run("seal", "verify", tmp_path / "out3" / "doc0.pdf", "--quiet")
    assert (quiet.code, quiet.out, quiet.err) == (0, "document: VALID\n", ""), quiet
    detailed = cli.run("seal", "verify", tmp_path / "out3" / "doc0.pdf", "--verbose")
    assert detailed.code == 0 and "chain: " in detailed.out and "document: VALID" in detailed.out, detailed


def test_stamp_batch_shows_progress_on_a_terminal(cli, tmp_path):
    """Run under a pseudo-terminal: the bar shows on stderr there, and --quiet hides it."""
    import pty
    import subprocess
    from ca_helpers import cli_environment, console_script
    src = tmp_path / "in"
    src.mkdir()
    (src / "doc.pdf").write_bytes(document_pdf())

    def on_terminal(*extra):
        import fcntl
        import struct
        import termios
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))   # a terminal's size
        proc = subprocess.run([console_script(), "seal", "stamp-batch", str(src), "--out-dir",
                               str(tmp_path / f"out{len(extra)}"), "--seal", "bj-contract", "--password-file",
                               str(cli.password), "--anchor", ORG, *extra],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower,
                              env=cli_environment(cli.home, {"YINXIN_SESSION": str(cli.session("wang"))}),
                              timeout=300)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        return proc.returncode, b"".join(chunks).decode(errors="replace")

    code, err = on_terminal()
    assert code == 0 and "sealing" in err and "1/1" in err, err
    code, err = on_terminal("--quiet")
    assert code == 0 and "sealing" not in err, err


# --------------------------------------------------------------------------- verification

def test_a_changed_byte_is_reported(cli, sm2_sealed, rsa_sealed):
    flipped_sm2 = cli.write("flipped-sm2.pdf", flip_byte_in_signed_range(sm2_sealed.read_bytes()))
    flipped_rsa = cli.write("flipped-rsa.pdf", flip_byte_in_signed_range(rsa_sealed.read_bytes()))
    assert "Digest Mismatch." in pdfsig(flipped_rsa)
    text, as_json = cli.run_all(("seal", "verify", flipped_sm2), ("seal", "verify", flipped_rsa, "--json"))
    assert text.code == 1 and "intact=False" in text.out and "document: INVALID" in text.out, text
    assert as_json.code == 1
    (s,) = as_json.json()["signatures"]
    assert s["intact"] is False and not s["valid"]
    assert any("do not match the signed digest" in p for p in s["problems"])


def test_an_update_after_the_seal_is_reported(cli, sm2_sealed):
    updated = cli.write("updated.pdf", append_annotation(sm2_sealed.read_bytes()))
    code, report = verify(cli, updated)
    assert code == 1 and report["modified_after_last_signature"] is True
    assert any("modified after" in p for p in report["problems"])
    assert report["signatures"][0]["modified_after"] == ["revision 3: unsigned update"]


def test_held_then_revoked_seal_certificate(cli, doc, tmp_path):
    serial = cli.created["bj-archive"]["certificate_serial"]      # as `seal show --json` gives it
    sealed = tmp_path / "archive.pdf"
    assert cli.stamp(doc, sealed, "bj-archive", "--anchor", ORG).code == 0
    cli.ok("ca", "hold", serial, "--ca", "sm2-root", "--session", cli.session("boss"))
    refused = tmp_path / "refused.pdf"
    held_verify = cli.run("seal", "verify", sealed, "--json")
    assert held_verify.code == 3                  # indeterminate: a hold may be released
    (s,) = held_verify.json()["signatures"]
    assert s["certificate_status"] == "held" and not s["valid"] and s["verdict"] == "indeterminate"
    assert any("is held" in p for p in s["problems"])
    cli.ok("ca", "revoke", serial, "--ca", "sm2-root", "--reason", "keyCompromise", "--session", cli.session("boss"))
    revoked_verify, revoked_stamp = cli.run_all(("seal", "verify", sealed),
                                                ("seal", "stamp", doc, refused, "--seal", "bj-archive",
                                                 "--password-file", cli.password, "--anchor", ORG))
    assert revoked_verify.code == 1 and "certificate=revoked" in revoked_verify.out
    assert "is revoked (key_compromise)" in revoked_verify.out
    assert_one_line_error(revoked_stamp, "is revoked")
    assert not refused.exists()


def test_a_foreign_signature_is_no_seal_of_this_home(cli):
    signed, foreign_root = foreign_signed(document_pdf())
    path = cli.write("foreign.pdf", signed)
    assert "Signature is Valid." in pdfsig(path)                      # a good signature …
    plain, trusted = cli.run_all(("seal", "verify", path, "--json"),
                                 ("seal", "verify", path, "--json", "--trust", foreign_root))
    assert plain.code == 1 and trusted.code == 1                      # … but no seal of this home
    (p,) = plain.json()["signatures"]
    assert p["seal"] is None and p["chain"]["trusted"] is False
    (t,) = trusted.json()["signatures"]
    assert t["chain"]["trusted"] is True and t["intact"] and t["signature_valid"]
    assert t["seal"] is None and not t["valid"]
    assert any("belongs to no seal of this home" in x for x in t["problems"])


# --------------------------------------------------------------------------- bad input: one line, no output

def test_bad_input_is_refused_without_output(cli, doc, tmp_path):
    encrypted = tmp_path / "encrypted.pdf"
    subprocess.run(["qpdf", "--encrypt", "user-pw", "owner-pw", "256", "--", str(doc), str(encrypted)], check=True)
    broken = cli.write("broken.pdf", doc.read_bytes()[:3000])
    not_pdf = cli.write("not-pdf.pdf", b"GIF89a not a PDF at all\n")
    out = tmp_path / "out"
    out.mkdir()
    cases = [
        ((encrypted, "--anchor", ORG), "encrypted"),
        ((broken, "--anchor", ORG), "damaged"),
        ((not_pdf, "--anchor", ORG), "not a PDF"),
        ((doc, "--page", "7", "--at", "100,100"), "page 7 is out of range"),
        ((doc, "--anchor", "本文不存在的文字"), "does not occur"),
    ]
    calls = [("seal", "stamp", source, out / f"case{i}.pdf", "--seal", "bj-contract", "--password-file",
              cli.password, *placement) for i, ((source, *placement), _) in enumerate(cases)]
    calls.append(("seal", "stamp", doc, doc, "--seal", "bj-contract", "--password-file", cli.password,
                  "--anchor", ORG))
    calls.append(("seal", "verify", not_pdf))
    results = cli.run_all(*calls)
    for result, (_, needle) in zip(results, cases):
        assert_one_line_error(result, needle)
    assert_one_line_error(results[-2], "must not be INPUT")
    assert_one_line_error(results[-1], "not a PDF")
    assert results[-1].code == 2
    assert list(out.iterdir()) == []
    assert doc.read_bytes() == document_pdf()

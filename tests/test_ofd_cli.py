"""GB/T 38540 seals on OFD through the real `yinxin` command, judged by the independent openssl
checker (tests/ofd_checker.py, no yinxin code), by reading the package with zipfile, and by
`yinxin seal verify` on other producers' files (tests/vectors/ofd, verdicts from README.md)."""
from __future__ import annotations

import io
import json
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from ca_helpers import assert_one_line_error
from ofd_checker import NS, check_ofd
from seal.ofd.sample import text_ofd
from seal_support import ORG, CliWorld, audit_events, db_rows

VECTORS = Path(__file__).parent / "vectors" / "ofd"
PLAIN = VECTORS / "plain"
DATE = "2026年5月8日"


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> CliWorld:
    base = tmp_path_factory.mktemp("cli-ofd")
    world = CliWorld(base / "home", base / "files")
    for name, alg in (("sm2-root", "sm2"), ("rsa-root", "rsa2048")):
        world.ok("ca", "init", "--name", name, "--subject", f"/C=CN/O=印信测试/CN={name}", "--algorithm", alg,
                 "--session", world.session("ca-admin"))
    world.create_seal("bj-ofd", ca="sm2-root")
    world.create_seal("tj-ofd", ca="sm2-root", org="天津市测试局")
    world.create_seal("bj-rsa", ca="rsa-root", seal_type="contract")
    return world


@pytest.fixture(scope="module")
def notice(cli) -> Path:
    return cli.write("notice.ofd", text_ofd([["关于开展电子印章试点工作的通知", "为推进电子政务建设，经研究，决定试点。",
                                              (ORG, 130, 250, 5), (DATE, 130, 260, 5)]]))


def entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist() if not n.endswith("/")}


def verify(cli: CliWorld, path: Path, *extra: str):
    result = cli.run("seal", "verify", path, "--json", *extra)
    assert result.code in (0, 1, 3), result
    return result.code, result.json()


def page_ids(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as z:
        doc = ET.fromstring(z.read("Doc_0/Document.xml"))
    return [p.get("ID") for p in doc.iter(f"{NS}Page")]


# --------------------------------------------------------------------------- sealing, judged by openssl

def test_at_position_seal_is_accepted_by_the_independent_checker(cli, tmp_path):
    out = cli.files / "page5-at.ofd"
    result = cli.stamp(PLAIN / "ofdrw-layout-Page5.ofd", out, "bj-ofd", "--page", "2", "--at", "100,60", "--json")
    assert result.code == 0, result
    data = result.json()
    assert data["format"] == "ofd" and data["page"] == 2 and data["signature_algorithm"] == "sm3_sm2"
    (sig,) = check_ofd(out, tmp_path / "chk")
    assert sig["check_method"] == "1.2.156.10197.1.401" and sig["bad_references"] == []
    assert sig["data_hash_ok"] and sig["signer_ok"] and sig["maker_ok"] and sig["seal_file_ok"]
    # every file at signing time is protected except the signatures list and this signature's own two files
    sign_dir = sig["signature"].rsplit("/", 1)[0]
    assert set(sig["unreferenced"]) == {"Doc_0/Signs/Signatures.xml", f"{sign_dir}/Signature.xml",
                                        f"{sign_dir}/SignedValue.dat"}
    (stamp,) = sig["stamps"]
    assert stamp["PageRef"] == page_ids(out)[1]
    # 100 mm from the left, 60 mm from the bottom of an A4 page = OFD's (100, 237) from the top left
    x, y, w, h = (float(v) for v in stamp["Boundary"].split())
    assert (x + w / 2, y + h / 2) == pytest.approx((100, 297 - 60)) and w == h == 42
    # the original files are byte for byte the same; OFD.xml gained only the Signatures reference
    before, after = entries(PLAIN / "ofdrw-layout-Page5.ofd"), entries(out)
    assert all(after[n] == before[n] for n in before if n != "OFD.xml")
    assert b"<ofd:Signatures>/Doc_0/Signs/Signatures.xml</ofd:Signatures>" in after["OFD.xml"]
    code, report = verify(cli, out)
    assert code == 0 and report["verdict"] == "valid" and report["format"] == "ofd"
    (checked,) = report["signatures"]
    assert checked["seal"] == "bj-ofd" and checked["verdict"] == "valid"
    assert {c["check"]: c["verdict"] for c in checked["checks"]} == {
        "references": "valid", "added_files": "valid", "data_hash": "valid", "property_info": "valid",
        "signature": "valid", "seal_file": "valid", "seal_maker": "valid", "cert_in_seal": "valid", "chain": "valid",
        "revocation": "valid", "maker_chain": "valid", "seal_validity": "valid", "timestamp": "skipped",
        "picture": "valid"}


def _text_positions(path: Path, text: str) -> list[tuple[int, float, float]]:
    """(page index, x, baseline) of each TextCode holding `text`, read with xml.etree."""
    out = []
    with zipfile.ZipFile(path) as z:
        doc = ET.fromstring(z.read("Doc_0/Document.xml"))
        for i, page in enumerate(doc.iter(f"{NS}Page")):
            content = ET.fromstring(z.read("Doc_0/" + page.get("BaseLoc")))
            for obj in content.iter(f"{NS}TextObject"):
                bx, by, _, _ = (float(v) for v in obj.get("Boundary").split())
                for code in obj.iter(f"{NS}TextCode"):
                    if text in (code.text or ""):
                        out.append((i, bx + float(code.get("X")), by + float(code.get("Y"))))
    return out


def test_anchor_seal_presses_the_last_occurrence_of_the_text(cli, notice, tmp_path):
    doc = cli.write("two-orgs.ofd", text_ofd([[(ORG, 30, 40, 5), "正文。"], ["正文。", (ORG, 130, 250, 5),
                                                                              (DATE, 130, 260, 5)]]))
    out = cli.files / "anchor.ofd"
    result = cli.stamp(doc, out, "bj-ofd", "--anchor", ORG, "--json")
    assert result.code == 0 and result.json()["page"] == 2, result
    (sig,) = check_ofd(out, tmp_path / "chk")
    assert sig["signer_ok"] and sig["maker_ok"] and not sig["bad_references"]
    page, x, baseline = _text_positions(doc, ORG)[-1]
    bx, by, bw, bh = (float(v) for v in sig["stamps"][0]["Boundary"].split())
    assert sig["stamps"][0]["PageRef"] == page_ids(doc)[page]
    assert bx < x and x + 5 * len(ORG) < bx + bw                 # the seal spans the organisation's name
    assert by < baseline - 5 < baseline < by + bh and by + bh / 2 < baseline   # the text below the centre


def test_a_second_seal_keeps_the_first_valid_and_changes_only_signatures_xml(cli, notice, tmp_path):
    first, second = cli.files / "joint-1.ofd", cli.files / "joint-2.ofd"
    assert cli.stamp(notice, first, "bj-ofd", "--anchor", ORG).code == 0
    assert cli.stamp(first, second, "tj-ofd", "--page", "1", "--at", "60,60").code == 0
    before, after = entries(first), entries(second)
    changed = {n for n in before if before[n] != after.get(n)}
    assert changed == {"Doc_0/Signs/Signatures.xml"}
    sigs = check_ofd(second, tmp_path / "chk")
    assert [s["id"] for s in sigs] == ["1", "3"]
    assert all(s["signer_ok"] and s["maker_ok"] and s["data_hash_ok"] and not s["bad_references"] for s in sigs)
    code, report = verify(cli, second)
    assert code == 0 and [s["seal"] for s in report["signatures"]] == ["bj-ofd", "tj-ofd"]


def test_riding_seal_on_ofd_shows_a_slice_of_at_least_4_mm_at_one_height(cli, tmp_path):
    doc = cli.write("long.ofd", text_ofd([[f"第{i + 1}页"] for i in range(23)]))
    out = cli.files / "long-riding.ofd"
    result = cli.stamp(doc, out, "bj-ofd", "--page", "1", "--at", "100,60", "--riding", "--json")
    assert result.code == 0 and result.json()["riding_pages"] == 23, result
    (sig,) = check_ofd(out, tmp_path / "chk")
    assert sig["signer_ok"] and not sig["bad_references"]
    riding = [s for s in sig["stamps"] if "Clip" in s]
    ids = page_ids(doc)
    assert [s["PageRef"] for s in riding] == ids                 # one slice on every page, in order
    heights = set()
    for s in riding:
        bx, by, bw, bh = (float(v) for v in s["Boundary"].split())
        cx, cy, cw, ch = (float(v) for v in s["Clip"].split())
        assert cw >= 4.0 and ch == bh                            # at least 4 mm of the seal shows
        assert bx + cx + cw == pytest.approx(210)                # at the page's right edge
        heights.add(by)
    assert len(heights) == 1
    # 23 pages, a 42 mm seal, 4 mm at least: ≤ 10 pages per seal → 3 groups of 8, 8, 7, each a whole seal
    widths = [float(s["Clip"].split()[2]) for s in riding]
    assert widths == pytest.approx([42 / 8] * 16 + [42 / 7] * 7)
    assert cli.run("seal", "verify", out).code == 0


def test_rsa_seal_cannot_make_a_gbt38540_seal(cli, notice):
    out = cli.files / "rsa.ofd"
    before = audit_events(cli.db)
    result = cli.stamp(notice, out, "bj-rsa", "--anchor", ORG)
    assert_one_line_error(result, "SM2")
    assert result.code == 2 and not out.exists()
    assert audit_events(cli.db) == before


# --------------------------------------------------------------------------- bad input

def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _edit(path: Path, **changes: bytes | None) -> bytes:
    files = entries(path)
    for name, data in changes.items():
        name = name.replace("__", "/").replace("_xml", ".xml")
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    return _zip(files)


XXE = (b'<?xml version="1.0"?>\n<!DOCTYPE ofd:OFD [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
       b'<ofd:OFD xmlns:ofd="http://www.ofdspec.org/2016"><ofd:DocBody><ofd:DocInfo><ofd:DocID>&x;</ofd:DocID>'
       b'</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>')


def bad_inputs(notice: Path) -> list[tuple[str, bytes, list[str], str]]:
    plain = notice.read_bytes()
    loop = plain.replace(b"", b"")
    return [
        ("not-a-zip", b"GIF89a this is no document", ["--anchor", ORG], "not a PDF"),
        ("no-ofd-xml", _zip({"Doc_0/Document.xml": b"<x/>"}), ["--anchor", ORG], "no OFD.xml"),
        ("missing-page", _edit(notice, Doc_0__Pages__Page_0__Content_xml=None), ["--anchor", ORG],
         "Content.xml, which the package lacks"),
        ("loop", _edit(notice, OFD_xml=entries(notice)["OFD.xml"].replace(b"Doc_0/Document.xml", b"OFD.xml")),
         ["--anchor", ORG], "is not a Document"),
        ("no-page-9", loop, ["--page", "9", "--at", "100,100"], "page 9 is out of range"),
        ("anchor-missing", plain, ["--anchor", "不存在的文字"], "does not occur"),
        ("xxe", _edit(notice, OFD_xml=XXE), ["--anchor", ORG], "DOCTYPE"),
        ("field", plain, ["--field", "Sig1"], "no signature fields"),
    ]


def test_bad_input_is_one_line_no_output_and_no_database_change(cli, notice):
    cases = bad_inputs(notice)
    rows_before = db_rows(cli.db, "SELECT count(*) FROM audit_events")
    calls = []
    for name, data, args, _ in cases:
        source = cli.write(f"bad-{name}.ofd", data)
        calls.append(("seal", "stamp", source, cli.files / f"bad-{name}-out.ofd", "--seal", "bj-ofd",
                      "--password-file", cli.password, "--session", cli.session("wang"), *args))
    for (name, _, _, needle), result in zip(cases, cli.run_all(*calls)):
        assert_one_line_error(result, needle)
        assert result.code == 2, (name, result)
        assert not (cli.files / f"bad-{name}-out.ofd").exists(), name
        assert "etc/passwd" not in result.err and "root:" not in result.err
    assert db_rows(cli.db, "SELECT count(*) FROM audit_events") == rows_before


def test_xxe_is_refused_by_verify_too(cli, notice):
    result = cli.run("seal", "verify", cli.write("xxe-verify.ofd", _edit(notice, OFD_xml=XXE)))
    assert_one_line_error(result, "DOCTYPE")
    assert result.code == 2


def _tamper_signed_value(path: Path, change) -> bytes:
    files = entries(path)
    name = next(n for n in files if n.endswith("SignedValue.dat"))
    files[name] = change(files[name])
    return _zip(files)


def test_signature_problems_are_invalid_verdicts_naming_the_reason(cli, notice):
    sealed = cli.files / "for-tamper.ofd"
    assert cli.stamp(notice, sealed, "bj-ofd", "--anchor", ORG).code == 0
    sm2_oid = bytes.fromhex("06082a811ccf55018375")         # 1.2.156.10197.1.501
    other_oid = bytes.fromhex("06082a811ccf55018376")       # 1.2.156.10197.1.502: no such signature here
    cases = {
        "garbage-signed-value": (_tamper_signed_value(sealed, lambda d: b"\x30\x03\x02\x01\x04"), "structure",
                                 "does not parse"),
        "unknown-oid": (_tamper_signed_value(sealed, lambda d: d[:d.rindex(sm2_oid)] + other_oid + d[d.rindex(sm2_oid) + 10:]),
                        "signature", "unknown signature algorithm OID 1.2.156.10197.1.502"),
        "page-changed": (_edit(sealed, Doc_0__Pages__Page_0__Content_xml=entries(sealed)[
            "Doc_0/Pages/Page_0/Content.xml"].replace("试点".encode(), "取消".encode())),
            "references", "changed after signing: Doc_0/Pages/Page_0/Content.xml"),
        "file-added": (_edit(sealed, Doc_0__Pages__Page_9__Content_xml=b"<x/>"), "added_files",
                       "Doc_0/Pages/Page_9/Content.xml"),
    }
    for name, (data, check, needle) in cases.items():
        result = cli.run("seal", "verify", cli.write(f"tampered-{name}.ofd", data), "--json")
        assert result.code == 1, (name, result)
        report = result.json()
        assert report["verdict"] == "invalid", name
        (sig,) = report["signatures"]
        failed = {c["check"]: c["detail"] for c in sig["checks"] if c["verdict"] == "invalid"}
        assert needle in failed.get(check, ""), (name, failed)


def test_held_seal_certificate_is_indeterminate_and_revoked_is_invalid(cli, notice):
    """The same rule as for PDF: a hold may be released, so it cannot be decided now (3); a
    revocation can (1)."""
    serial = cli.create_seal("bj-ofd-hold", ca="sm2-root")["certificate_serial"]
    sealed = cli.files / "for-hold.ofd"
    assert cli.stamp(notice, sealed, "bj-ofd-hold", "--anchor", ORG).code == 0
    cli.ok("ca", "hold", serial, "--ca", "sm2-root", "--session", cli.session("boss"))
    code, report = verify(cli, sealed)
    assert code == 3 and report["verdict"] == "indeterminate"
    checks = {c["check"]: c for c in report["signatures"][0]["checks"]}
    assert checks["revocation"]["verdict"] == "indeterminate" and checks["revocation"]["detail"].startswith("held")
    cli.ok("ca", "revoke", serial, "--ca", "sm2-root", "--reason", "keyCompromise", "--session", cli.session("boss"))
    code, report = verify(cli, sealed)
    assert code == 1 and report["verdict"] == "invalid"


# --------------------------------------------------------------------------- other producers

#: the verdicts of tests/vectors/ofd/README.md, as yinxin states them.  "valid" there is the independent
#: SM2/SM3 checker's: every integrity and seal check passes.  No root of those producers is trusted here
#: (and their certificates have expired, with no timestamp), so the chain check — and only it — makes
#: yinxin's verdict "indeterminate" (exit 3).
SAMPLES = {
    "1.ofd": ("indeterminate", {}),
    "999.ofd": ("indeterminate", {}),
    "ofdsharp-test1.ofd": ("indeterminate", {}),
    "allprotected.ofd": ("indeterminate", {}),
    "V4RideRight.ofd": ("indeterminate", {}),
    "h.ofd": ("indeterminate", {}),
    "zsbk.ofd": ("invalid", {"references": "changed after signing"}),
}
CRYPTO = ("references", "added_files", "data_hash", "property_info", "signature", "seal_maker", "cert_in_seal",
          "seal_validity", "picture")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_other_producers_samples_get_the_readme_verdict(cli, name):
    verdict, failures = SAMPLES[name]
    code, report = verify(cli, VECTORS / name)
    assert report["verdict"] == verdict and code == {"indeterminate": 3, "invalid": 1}[verdict]
    for sig in report["signatures"]:
        checks = {c["check"]: c for c in sig["checks"]}
        if failures:
            for check, needle in failures.items():
                assert checks[check]["verdict"] == "invalid" and needle in checks[check]["detail"]
            assert "Content.xml" in checks["references"]["detail"]
        else:
            assert all(checks[c]["verdict"] == "valid" for c in CRYPTO), checks
            assert checks["chain"]["verdict"] == "indeterminate" and sig["verdict"] == "indeterminate"
    if name == "h.ofd":
        first = {c["check"]: c for c in report["signatures"][0]["checks"]}
        assert "changed only because a later seal (s007)" in first["references"]["detail"]
        assert any("later seal" in n for n in report["notes"])
    if name == "999.ofd":
        added = {c["check"]: c for c in report["signatures"][0]["checks"]}["added_files"]
        assert "OFD.xml is not protected" in added["detail"]


def test_text_report_names_each_check(cli):
    result = cli.run("seal", "verify", VECTORS / "zsbk.ofd")
    assert result.code == 1
    assert "invalid       references: changed after signing" in result.out
    assert "document: INVALID" in result.out


def test_stamp_batch_seals_ofds_and_pdfs_by_content(cli, notice, tmp_path):
    from seal_support import document_pdf
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    for i in range(3):
        shutil.copy(notice, src / f"n{i}.ofd")
    (src / "p.pdf").write_bytes(document_pdf())
    result = cli.run("seal", "stamp-batch", src, "--out-dir", out, "--seal", "bj-ofd", "--password-file", cli.password,
                     "--session", cli.session("wang"), "--anchor", ORG, "--json")
    assert result.code == 0 and result.json()["sealed"] == 4, result
    for i in range(3):
        (sig,) = check_ofd(out / f"n{i}.ofd", tmp_path / f"chk{i}")
        assert sig["signer_ok"] and sig["maker_ok"] and not sig["bad_references"]
    assert out.joinpath("p.pdf").read_bytes().startswith(b"%PDF-")
    assert cli.run("seal", "verify", out / "p.pdf").code == 0


# --------------------------------------------------------------------------- GM/T 0031 and raw r‖s (made by openssl)

@pytest.mark.parametrize("name, method", [("v1-gmt0031.ofd", "sm3"), ("v4-raw-rs.ofd", "1.2.156.10197.1.401.2")])
def test_openssl_made_v1_and_raw_signature_seals(cli, name, method):
    trust = ["--trust", VECTORS / "v1-root.pem"]
    code, report = verify(cli, VECTORS / name)
    assert code == 3 and report["verdict"] == "indeterminate"
    code, report = verify(cli, VECTORS / name, *trust, "--crl", VECTORS / "v1-root.crl")
    assert code == 0 and report["verdict"] == "valid", report
    checks = {c["check"]: c for c in report["signatures"][0]["checks"]}
    assert f"({method})" in checks["references"]["detail"] and checks["seal_file"]["verdict"] == "skipped"
    rule = "GM/T 0031" if name.startswith("v1") else "GB/T 38540"
    assert rule in checks["seal_maker"]["detail"]
    code, report = verify(cli, VECTORS / name, *trust, "--crl", VECTORS / "v1-root-revoked.crl")
    assert code == 1 and report["verdict"] == "invalid"
    checks = {c["check"]: c for c in report["signatures"][0]["checks"]}
    assert checks["chain"]["verdict"] == "invalid" and "revoked" in checks["chain"]["detail"]

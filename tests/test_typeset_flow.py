"""Typesetting in the document flow: the registry's typeset version, the check at sealing, the seal on the
reserved place, and the bad input of the issue (each refused with a clear error and no version written)."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from docflow import IntegrityFailure
from docflow.typeset import (BodyError, FitError, MissingGlyphs, TemplateError, TypesetMismatch, default_template_dir,
                             typeset)

from ca_helpers import write_session
from pki.accounts.testing import TEST_PIN

from docflow_support import (ORG, SEAL_PASSWORD, UPWARD_TO_SEAL, bureau, example_org, tables, tamper_version, walk,
                             with_seals)
from typeset_support import VECTORS, words

BODY = (VECTORS / "request.txt").read_text(encoding="utf-8")


def refused(b, error, match, call):
    before = tables(b)
    with pytest.raises(error, match=match) as info:
        call()
    assert tables(b) == before, "a refused operation changed the database"
    return info.value


def template_dir(tmp_path: Path, **changes) -> Path:
    d = tmp_path / "tpl"
    shutil.copytree(default_template_dir(), d)
    data = yaml.safe_load((d / "template.yaml").read_text(encoding="utf-8"))
    for key, value in changes.items():
        node = data
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        node[last] = value
    (d / "template.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return d


def test_the_registry_typesets_and_the_seal_lands_on_the_reserved_place(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    with_seals(b, (ORG, "official-sm2", "wang"))
    doc = b.flow.new_document(kind="upward", body=BODY, actor=b.actor("sun"))
    assert doc.elements.title == "关于开展电子印章应用试点工作的请示"
    assert doc.elements.main_recipients == ("北京市示范区管理委员会",)
    doc = walk(b, doc.id, UPWARD_TO_SEAL)
    assert [v.purpose for v in doc.versions] == ["draft", "typeset"] and doc.signed_off_version == 1
    draft, registered = tmp_path / "v1.pdf", tmp_path / "v2.pdf"
    draft.write_bytes(b.flow.pdf(doc.id, 1))
    registered.write_bytes(b.flow.pdf(doc.id, 2))
    text1 = subprocess.run(["pdftotext", str(draft), "-"], capture_output=True, text=True).stdout
    text2 = subprocess.run(["pdftotext", str(registered), "-"], capture_output=True, text=True).stdout
    number, date = doc.elements.doc_number, doc.elements.date
    for value in (number, "签发人：吴局长", f"{date}印发"):
        assert value in text2 and value not in text1
    assert text2.count("北京市示范区管理委员会") == 1, "主送 once"
    b.tick()
    doc = b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD)
    from pyhanko.pdf_utils.reader import PdfFileReader
    sealed = b.flow.pdf(doc.id)
    sig = PdfFileReader(io.BytesIO(sealed)).embedded_signatures[0]
    rect = [float(v) for v in sig.sig_field["/Kids"][0]["/Rect"]] if "/Kids" in sig.sig_field else \
        [float(v) for v in sig.sig_field["/Rect"]]
    import sqlite3
    layout = json.loads(sqlite3.connect(b.db()).execute(
        "SELECT layout FROM doc_typeset WHERE version = 2").fetchone()[0])
    place = layout["seal_places"][0]
    mm = 72 / 25.4
    assert abs((rect[0] + rect[2]) / 2 / mm - place["x_mm"]) < 0.5
    assert abs((rect[1] + rect[3]) / 2 / mm - place["y_mm"]) < 0.5
    sealed_path = tmp_path / "sealed.pdf"
    sealed_path.write_bytes(sealed)
    ws = words(sealed_path, page=place["page"])
    name = next(w for w in ws if w[0] == ORG)
    assert abs((name[1] + name[3]) / 2 - place["x_mm"]) < 1, "the seal centred over the signing organisation"


def test_sealing_refuses_a_typeset_version_that_is_not_signed_off_content_plus_fields(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    with_seals(b, (ORG, "official-sm2", "wang"))
    doc = walk(b, b.flow.new_document(kind="upward", body=BODY, actor=b.actor("sun")).id, UPWARD_TO_SEAL)
    from docflow.typeset import Fields, manuscript, parse_body, default_template
    m, _ = manuscript(parse_body(BODY.replace("严禁空白用印", "可以空白用印")), issuers=[ORG], kind="upward")
    e = doc.elements
    forged = typeset(default_template(), m, Fields(doc_number=e.doc_number, signers=(e.signer,), date=e.date,
                                                   printed_on=e.printed_on)).pdf
    tamper_version(b, doc.id, 2, forged, fix_digests=True)
    error = refused(b, TypesetMismatch, "text outside the registry's fields differs",
                    lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD))
    assert error.exit_code == 1
    # a typeset version with another number than the one registered
    other = typeset(default_template(), m.with_(blocks=manuscript(parse_body(BODY), issuers=[ORG])[0].blocks),
                    Fields(doc_number="京测〔2026〕99号", signers=(e.signer,), date=e.date, printed_on=e.printed_on)).pdf
    tamper_version(b, doc.id, 2, other, fix_digests=True)
    refused(b, TypesetMismatch, "doc_number field reads",
            lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD))
    tamper_version(b, doc.id, 2, b"%PDF-1.7 changed", fix_digests=False)
    refused(b, IntegrityFailure, "no longer matches",
            lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD))


def test_a_body_with_an_unknown_element_is_refused(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    for body, match in ((BODY + "\n##### 第五层\n", "line .*unknown element"),
                        (BODY + "\n@表格 预算\n", r"unknown element @表格"),
                        (BODY.replace("行文: 上行文", "行文: 上行文\n签名: 张三"), "unknown element '签名'"),
                        (BODY + "\n- 列表项\n", "unknown element"),
                        (BODY + "\n# 一、重复编号\n", "without its number"),
                        (BODY.replace("行文: 上行文", "行文: 上行文\n发文字号: 京测〔2026〕5号"), "filled by the document flow")):
        error = refused(b, BodyError, match, lambda: b.flow.new_document(kind="upward", body=body, actor=b.actor("sun")))
        assert error.exit_code == 2
    assert b.flow.todo("chen") == []


def test_a_body_with_characters_the_fonts_lack_names_them(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    error = refused(b, MissingGlyphs, r"😀 \(U\+1F600\).*ᚠ \(U\+16A0\)",
                    lambda: b.flow.new_document(kind="upward", body=BODY.replace("妥否", "妥否😀ᚠ"), actor=b.actor("sun")))
    assert error.data["characters"] == "😀ᚠ"


def test_a_template_without_the_fonts_it_names_is_refused(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    d = template_dir(tmp_path, **{"fonts.fangsong": ["方正仿宋_GBK不存在", "NoSuchFangSong"]})
    org = example_org() | {"template": str(d)}
    error = refused(b, TemplateError, "no font for 仿宋.*NoSuchFangSong",
                    lambda: b.flow.load_organisation_data(org, actor=b.admin()))
    assert error.data["field"] == "fonts.fangsong"
    d2 = template_dir(tmp_path / "b", **{"fonts.heiti": ["file:/nonexistent/simhei.ttf"]})
    refused(b, TemplateError, "no font for 黑体",
            lambda: b.flow.load_organisation_data(example_org() | {"template": str(d2)}, actor=b.admin()))


def test_text_that_does_not_fit_the_header_is_refused(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    d = template_dir(tmp_path, **{"variants.file.header.size_pt": 72})
    b.flow.load_organisation_data(example_org() | {"template": str(d)}, actor=b.admin())
    error = refused(b, FitError, "发文机关标志 '北京市测试局文件' is .* mm wide at 72 pt, more than the 156 mm",
                    lambda: b.flow.new_document(kind="upward", body=BODY, actor=b.actor("sun")))
    assert error.data["limit_mm"] == 156


def test_unknown_template_fields_and_variants_are_refused(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    for change, match in (({"watermark": "机密"}, "unknown field"), ({"variants.command": {"header": {"text": "令"}}},
                                                                     "unknown variant 'command'")):
        d = template_dir(tmp_path / str(len(match)), **change)
        refused(b, TemplateError, match, lambda: b.flow.load_organisation_data(
            example_org() | {"template": str(d)}, actor=b.admin()))


def test_cli_template_check_and_a_bad_body(tmp_path: Path) -> None:
    home = tmp_path / "home"
    b = bureau(tmp_path, path=home)         # the example organisation's people hold their certificates
    sessions = {person: write_session(b.home, tmp_path / "sessions" / f"{person}.session", person, *roles, pin=pin)
                for person, roles, pin in (("admin", ("admin",), None), ("sun", (), TEST_PIN))}
    b.home.store.dispose()
    env = {"YINXIN_HOME": str(home), "PATH": "/usr/bin:/bin"}
    yinxin = [str(Path(sys.executable).parent / "yinxin")]
    org = tmp_path / "org.yaml"
    shutil.copytree(default_template_dir(), tmp_path / "templates" / "bj")
    org.write_text(yaml.safe_dump(example_org() | {"template": "templates/bj"}, allow_unicode=True), encoding="utf-8")
    run = subprocess.run(yinxin + ["org", "load", str(org), "--session", str(sessions["admin"])], capture_output=True,
                         text=True, env=env, cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stderr
    assert "updated" in run.stdout            # the template is now the organisation's
    out = tmp_path / "specimens"
    run = subprocess.run(yinxin + ["org", "template", ORG, "--check", "--out", str(out)], capture_output=True,
                         text=True, env=env, cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["file.pdf", "letter.pdf", "minutes.pdf"]
    assert "fall-back for FangSong" in run.stdout or "FangSong" in run.stdout
    bad = tmp_path / "bad.txt"
    bad.write_text(BODY + "\n@表格 x\n", encoding="utf-8")
    run = subprocess.run(yinxin + ["doc", "new", "--kind", "upward", "--body", str(bad), "--session",
                                   str(sessions["sun"])],
                         capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent)
    assert run.returncode == 2 and run.stderr.startswith("yinxin: error: ") and "@表格" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    run = subprocess.run(yinxin + ["doc", "new", "--kind", "upward", "--body", str(VECTORS / "request.txt"),
                                   "--session", str(sessions["sun"])], capture_output=True, text=True, env=env,
                         cwd=Path(__file__).parent.parent)
    assert run.returncode == 0 and run.stdout.strip() == "1", run.stderr


def _embedded_glyphs(pdf: bytes) -> int:
    """Glyphs in every embedded TrueType program of a PDF."""
    import pikepdf
    from fontTools.ttLib import TTFont
    count = 0
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        for obj in doc.objects:
            if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/FontDescriptor" and "/FontFile2" in obj:
                count += TTFont(io.BytesIO(obj.FontFile2.read_bytes()))["maxp"].numGlyphs
    return count


def test_number_blocks_of_successive_documents_share_their_font_subsets() -> None:
    """The registry's number changes with each document; its font subsets hold every digit, so they
    are made (and registered with reportlab) once: documents whose numbers differ embed the same
    font programs."""
    from docflow.sample import make_document_pdf
    from docflow.typeset import default_template
    from docflow.typeset.body import Fields
    from docflow.typeset.fonts import subset_ttf
    from docflow.typeset.stamp import stamp_number_block

    org = "北京市测试局"
    body = make_document_pdf("关于试点工作的请示", org, "2026年5月8日", ["北京市示范区管理委员会：", "妥否，请批示。"],
                             main_recipient="北京市示范区管理委员会")

    def stamp(number: str) -> bytes:
        return stamp_number_block(body, default_template(), organisation=org, upward=True,
                                  fields=Fields(doc_number=number, signers=("吴明",))).pdf

    stamp("京测〔2026〕3号")
    made = subset_ttf.cache_info().misses
    five, fifty_eight = stamp("京测〔2027〕5号"), stamp("京测〔2027〕58号")
    assert subset_ttf.cache_info().misses == made          # no new subset for another number and year
    assert _embedded_glyphs(fifty_eight) == _embedded_glyphs(five) > 0

"""docflow.sample.make_document_pdf: a GB/T 9704-like page, judged by poppler (pdftotext -bbox), qpdf."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from docflow import ElementError
from docflow.sample import LEFT, MM, PAGE_H, PAGE_W, TEXT_W, make_document_pdf

ORG = "北京市测试局"
DATE = "2026年5月8日"


def _words(path: Path) -> list[tuple[str, float, float, float, float, int]]:
    """(text, xMin, yMin, xMax, yMax, page) of every word poppler finds."""
    out = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True, check=True).stdout
    words, page = [], 0
    for line in out.splitlines():
        if "<page " in line:
            page += 1
        m = re.search(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]+)<', line)
        if m:
            words.append((m.group(5), *(float(m.group(i)) for i in range(1, 5)), page))
    return words


def test_a_notice_with_header_number_title_body_and_signature(tmp_path: Path) -> None:
    pdf = make_document_pdf("关于开展电子印章试点工作的通知", ORG, DATE,
                            ["为推进电子政务建设，经研究，决定在全局开展电子印章试点工作。", "特此通知。"],
                            doc_number="京测〔2026〕3号", main_recipient="各处室", attachments=["试点方案"])
    path = tmp_path / "notice.pdf"
    path.write_bytes(pdf)
    check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0 and "No syntax or stream encoding errors" in check.stdout
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True).stdout
    for expected in (f"{ORG}文件", "京测〔2026〕3号", "关于开展电子印章试点工作的通知", "各处室：", "特此通知。",
                     "附件：试点方案", DATE):
        assert expected in text.replace(" ", ""), expected
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
    assert re.search(r"595\.2\d* x 841\.89 pts \(A4\)", info) and re.search(r"^Pages:\s+[12]$", info, re.M)
    words = _words(path)
    org = [w for w in words if w[0] == ORG][-1]
    date = next(w for w in words if w[0] == DATE)
    right_edge = LEFT + TEXT_W
    # GB/T 9704 §7.3.5.1: the date four characters (16 pt each) in from the right; the name centred over it
    assert date[3] == pytest.approx(right_edge - 4 * 16, abs=1.5)
    assert (org[1] + org[3]) / 2 == pytest.approx((date[1] + date[3]) / 2, abs=1.5)
    assert org[4] < date[2]                                   # the name above the date


def test_long_bodies_flow_onto_more_pages_and_keep_the_signature_with_text(tmp_path: Path) -> None:
    body = [f"第{i}段：为推进电子政务建设，经研究，决定在全局开展电子印章试点工作，请各单位认真贯彻执行。" for i in range(1, 30)]
    path = tmp_path / "long.pdf"
    path.write_bytes(make_document_pdf("关于试点工作的通知", ORG, DATE, body))
    words = _words(path)
    pages = max(w[5] for w in words)
    assert pages >= 3
    date = next(w for w in words if w[0] == DATE)
    assert date[5] == pages
    # GB/T 9704: no page with the signature alone: body text stands above the seal's place
    body_on_last = [w for w in words if w[5] == pages and w[0] not in (ORG, DATE)
                    and not re.fullmatch(r"[—\d]+", w[0]) and w[4] < date[2]]
    assert body_on_last, "the signature page carries no body text"
    assert all(0 < w[1] and w[3] < PAGE_W and w[4] < PAGE_H for w in words)
    assert LEFT == pytest.approx(28 * MM)


def test_output_is_deterministic_and_inputs_are_checked() -> None:
    args = ("关于试点的请示", ORG, DATE, ["妥否，请批示。"])
    assert make_document_pdf(*args) == make_document_pdf(*args)
    with pytest.raises(ElementError):
        make_document_pdf("  ", ORG, DATE, [])


def test_documents_made_one_after_another_keep_all_their_text(tmp_path: Path) -> None:
    """Each document gets its own font subset: a second document with new characters loses none."""
    texts = []
    for n, (title, body) in enumerate([("关于甲事项的请示", "妥否，请批示。"), ("关于乙事项的通知", "特此通知，请遵照执行。")]):
        path = tmp_path / f"{n}.pdf"
        path.write_bytes(make_document_pdf(title, ORG, DATE, [body]))
        texts.append(subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout)
    assert "关于乙事项的通知" in texts[1] and "特此通知，请遵照执行。" in texts[1]

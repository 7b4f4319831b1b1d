"""Riding seals on long PDFs show on every page: pdftoppm renders the 100-page document and each
page has a red slice at least 4 mm wide at its right edge, every slice at the same height; the
slices of each page group make up one whole seal.  pdfsig and pyHanko accept the one signature."""
from __future__ import annotations

from pathlib import Path

import pikepdf
import pytest

from pdf_fixtures import ORG, identity, pdfsig, qpdf_check, red_box, render
from seal.appearance import SealSpec, draw_seal
from seal.cms_signer import make_signer
from seal.pdf_placement import MM, AtPosition
from seal.pdf_sign import stamp_pdf
from seal.riding import riding_groups

from pdf_fixtures import CLOCK, clock_follows_the_run  # noqa: F401  (autouse)

PAGES = 100
DPI = 72


def long_pdf(path: Path, pages: int) -> Path:
    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    for i in range(pages):
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=[0, 0, 595.28, 841.89],
            Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
            Contents=pikepdf.Stream(pdf, f"BT /F1 12 Tf 72 770 Td (Page {i + 1}) Tj ET".encode()))
        pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)
    return path


def test_groups_keep_every_slice_at_least_the_minimum():
    for pages in range(1, 250):
        groups = riding_groups(pages, 42.0, 4.0)
        assert sum(len(g) for g in groups) == pages and [g.start for g in groups] == sorted(g.start for g in groups)
        assert all(42.0 / len(g) >= 4.0 for g in groups)
        assert max(len(g) for g in groups) - min(len(g) for g in groups) <= 1
    assert [len(g) for g in riding_groups(100, 42.0, 4.0)] == [10] * 10
    assert [len(g) for g in riding_groups(100, 42.0, 1.0)] == [34, 33, 33]
    with pytest.raises(ValueError):
        riding_groups(3, 42.0, 0)


def test_riding_seal_over_100_pages_shows_a_slice_of_at_least_4_mm_on_every_page(tmp_path):
    drawing = draw_seal(SealSpec("official", ORG))
    ident = identity("p256")
    signer = make_signer(ident.key, ident.cert, [ident.root])
    source = long_pdf(tmp_path / "long.pdf", PAGES)
    out = tmp_path / "long-riding.pdf"
    result = stamp_pdf(source, out, signer=signer, drawing=drawing, placement=AtPosition(1, 100, 100),
                       riding=True, clock=CLOCK)
    assert result.riding_pages == PAGES
    widths = []
    for page in range(1, PAGES + 1):
        image = render(out, page, dpi=DPI)
        strip = image.crop((image.width - int(drawing.width_pt) - 2, 0, image.width, image.height))
        box = red_box(strip)
        assert box is not None, f"no riding slice on page {page}"
        left, top, right, bottom = box
        assert right >= strip.width - 2, f"page {page}: the slice does not reach the right edge"
        width_mm = (right - left) / DPI * 25.4
        assert width_mm >= 4.0 - 0.4, f"page {page}: a slice of {width_mm:.1f} mm"
        widths.append(right - left)
    # one height on every page: the slices' widget rectangles, read with pikepdf (qpdf)
    with pikepdf.open(out) as pdf:
        rects = [[float(v) for v in annot.Rect] for page in pdf.pages for annot in page.get("/Annots", [])
                 if annot.get("/Subtype") == "/Widget" and float(annot.Rect[2]) >= 595.0]
    assert len(rects) == PAGES and len({(round(r[1], 3), round(r[3], 3)) for r in rects}) == 1
    # 10 groups of 10 pages, each group's slices side by side one whole seal
    for g in range(10):
        assert sum(widths[g * 10:(g + 1) * 10]) == pytest.approx(drawing.width_pt, abs=12)
    report = pdfsig(out)
    assert report.count("Signature is Valid.") == 1 and "not signed" not in report, report
    qpdf_check(out)
    assert result.rect[0] == pytest.approx(100 * MM - drawing.width_pt / 2, abs=0.01)   # the main seal as asked

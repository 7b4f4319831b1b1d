"""Seal pictures judged by independent tools: qpdf checks the PDF, poppler renders it,
librsvg renders the SVG, and the pixels are measured against the seal's geometry."""
from __future__ import annotations

import io
import math
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pikepdf
import pytest
from appearance_support import (
    DPI,
    MM,
    PX_PER_MM,
    Probe,
    all_pixels,
    bbox,
    iou,
    needs_poppler,
    needs_qpdf,
    page_pdf,
    pdftoppm,
    qpdf_check,
    red_mask_rgb,
    red_mask_rgba,
)
from PIL import Image

from seal.appearance import SealSpec, draw_seal, write_preview

ORG = "北京某某科技发展有限公司"
PAGE_MM = (80.0, 70.0)
OFFSET_MM = (17.0, 11.0)  # where the seal's box sits on the test page


@pytest.fixture(scope="module")
def official():
    return draw_seal(SealSpec("official", ORG, "合同专用章", code="1101080012345"))


@pytest.fixture(scope="module")
def official_plain():
    return draw_seal(SealSpec("official", "某某市人民政府"))


@pytest.fixture(scope="module")
def special():
    return draw_seal(SealSpec("special", ORG, "电子公文专用章"))


def render_on_page(drawing, tmp_path, name="seal"):
    """Put the drawing's content on a larger page, check it with qpdf, render it."""
    pdf = page_pdf(drawing.pdf_content(), PAGE_MM[0] * MM, PAGE_MM[1] * MM,
                   (OFFSET_MM[0] * MM, OFFSET_MM[1] * MM))
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf)
    qpdf_check(path)
    image = pdftoppm(path)
    centre = ((OFFSET_MM[0] + drawing.width_mm / 2) * PX_PER_MM,
              (PAGE_MM[1] - OFFSET_MM[1] - drawing.height_mm / 2) * PX_PER_MM)
    return image, Probe(red_mask_rgb(image), centre)


def test_content_stream_is_paths_only(official):
    content = official.pdf_content()
    owner = pikepdf.new()
    ops = [str(op) for _, op in pikepdf.parse_content_stream(pikepdf.Stream(owner, content))]
    assert ops[0] == "q" and ops[-1] == "Q"
    assert ops.count("q") == ops.count("Q") == 1
    assert set(ops) <= {"q", "Q", "rg", "m", "l", "c", "h", "f", "f*"}
    assert ops[1] == "rg"
    assert "f*" in ops and "f" in ops  # ring even-odd, glyphs non-zero


@needs_qpdf
@needs_poppler
@pytest.mark.parametrize("which, diameter", [("official", 42.0), ("special", 40.0)])
def test_rendered_geometry(which, diameter, request, tmp_path):
    drawing = request.getfixturevalue(which)
    assert drawing.width_pt == pytest.approx(diameter * MM)
    assert drawing.height_pt == pytest.approx(diameter * MM)
    image, probe = render_on_page(drawing, tmp_path, which)
    k = diameter / 42
    radius = diameter / 2

    # red where drawn: every inked pixel is red over white, never another colour
    pixels = all_pixels(image)
    inked = [p for p in pixels if min(p) < 245]
    assert inked and all(r >= g and r >= b for r, g, b in inked)
    solid = [p for p in pixels if p[1] < 64]
    assert sum(p[0] for p in solid) / len(solid) > 200

    # the diameter from the ink's bounding box
    x0, y0, x1, y1 = bbox(probe.mask)
    assert (x1 - x0 + 1) / PX_PER_MM == pytest.approx(diameter, abs=0.5)
    assert (y1 - y0 + 1) / PX_PER_MM == pytest.approx(diameter, abs=0.5)

    # the ring: solid in the middle of its 1.2 mm width, nothing outside, a clear gap inside
    assert probe.circle_fraction(radius - 0.6 * k) == 1.0
    assert probe.circle_fraction(radius + 0.4) == 0.0
    assert probe.circle_fraction(radius - 1.2 * k - 0.25 * k) < 0.05

    # the star: solid core, five points with the first one straight up, gaps between them
    assert probe.red(0, 0)
    assert probe.circle_fraction(2.0 * k) == 1.0
    for i in range(5):
        assert probe.polar(5.0 * k, 72 * i), f"star point {i}"
        assert not probe.polar(5.0 * k, 72 * i + 36), f"between star points {i}"
    assert probe.red(0, 6.6 * k) and not probe.red(0, 7.6 * k)  # the top point's tip

    # organisation name along the top arc, seal name below the star
    upper = probe.annulus_fraction(12.5 * k, 19.0 * k, -100, 100)
    assert 0.15 < upper < 0.75
    assert probe.rect_fraction(-10 * k, -12 * k, 10 * k, -7.5 * k) > 0.10


@needs_qpdf
@needs_poppler
def test_optional_parts_absent(official, official_plain, tmp_path):
    _, with_parts = render_on_page(official, tmp_path, "with")
    _, plain = render_on_page(official_plain, tmp_path, "plain")
    # seal name below the star
    assert with_parts.rect_fraction(-10, -12, 10, -7.5) > 0.10
    assert plain.rect_fraction(-10, -12, 10, -7.5) == 0.0
    # code along the bottom arc
    assert with_parts.annulus_fraction(16.5, 19.4, 155, 205) > 0.08
    assert plain.annulus_fraction(16.5, 19.4, 155, 205) == 0.0
    # and the rest is still there
    assert plain.circle_fraction(20.4) == 1.0
    assert 0.15 < plain.annulus_fraction(12.5, 19.0, -100, 100) < 0.75


@needs_qpdf
@needs_poppler
@pytest.mark.parametrize("spec", [
    SealSpec("official", ORG, "合同专用章", code="1101080012345"),
    SealSpec("finance", "中华人民共和国国家发展和改革委员会办公厅", "财务专用章"),
    SealSpec("personal", "", "欧阳修"),
], ids=["official", "finance-long-name", "personal"])
def test_png_matches_poppler(spec, tmp_path):
    drawing = draw_seal(spec)
    path = tmp_path / "seal.pdf"
    write_preview(drawing, path)  # a page exactly the seal's size
    qpdf_check(path)
    with pikepdf.open(path) as pdf:
        box = [float(v) for v in pdf.pages[0].MediaBox]
    assert box == pytest.approx([0, 0, drawing.width_pt, drawing.height_pt], abs=1e-3)
    poppler = red_mask_rgb(pdftoppm(path))
    own_image = Image.open(io.BytesIO(drawing.png(DPI)))
    assert own_image.mode == "RGBA"
    assert own_image.getchannel("A").getextrema() == (0, 255)  # transparent background
    assert iou(poppler, red_mask_rgba(own_image)) >= 0.9


@pytest.mark.skipif(shutil.which("rsvg-convert") is None, reason="rsvg-convert missing")
@needs_poppler
def test_svg_matches_poppler(official, tmp_path):
    svg = official.svg()
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.get("width") == "42mm" and root.get("viewBox").startswith("0 0 119.055")
    svg_path = tmp_path / "seal.svg"
    svg_path.write_text(svg, encoding="utf-8")
    png_path = tmp_path / "seal-svg.png"
    subprocess.run(["rsvg-convert", "-d", str(DPI), "-p", str(DPI), "-o", str(png_path),
                    str(svg_path)], check=True, capture_output=True)
    from_svg = red_mask_rgba(Image.open(png_path).convert("RGBA"))
    pdf_path = tmp_path / "seal.pdf"
    write_preview(official, pdf_path)
    assert iou(red_mask_rgb(pdftoppm(pdf_path)), from_svg) >= 0.9


@needs_poppler
def test_glyph_counters_stay_open(tmp_path):
    # 口 has one counter: its centre must be paper, its strokes ink, in both renderers
    drawing = draw_seal(SealSpec("personal", "", "口口"))  # 口口之印, 口 in the right column
    path = tmp_path / "kou.pdf"
    write_preview(drawing, path)
    poppler = red_mask_rgb(pdftoppm(path))
    own = red_mask_rgba(Image.open(io.BytesIO(drawing.png(DPI))))
    # right column cells: centres at x = +4.2 mm, y = ±4.2 mm from the seal's centre
    for mask in (poppler, own):
        probe = Probe(mask, (10 * PX_PER_MM, 10 * PX_PER_MM))
        for y in (4.2, -4.2):
            assert not probe.red(4.2, y), "counter of 口 filled"
            row = [probe.red(4.2 + dx / 10, y) for dx in range(-40, 41)]
            assert any(row[:30]) and any(row[-30:]), "口's side strokes missing"


@needs_poppler
def test_personal_seal_reads_in_columns_right_to_left(tmp_path):
    def cells(name):
        drawing = draw_seal(SealSpec("personal", "", name))
        assert drawing.width_mm == pytest.approx(20) and drawing.height_mm == pytest.approx(20)
        path = tmp_path / f"{name}.pdf"
        write_preview(drawing, path)
        image = pdftoppm(path)
        half = image.width // 2
        return {"right-top": image.crop((half, 0, image.width, half)).tobytes(),
                "right-bottom": image.crop((half, half, image.width, image.width)).tobytes(),
                "left-top": image.crop((0, 0, half, half)).tobytes(),
                "left-bottom": image.crop((0, half, half, image.width)).tobytes()}

    zhang_san, zhang_si = cells("张三"), cells("张四")
    assert zhang_san["right-top"] == zhang_si["right-top"]            # 张
    assert zhang_san["right-bottom"] != zhang_si["right-bottom"]      # 三 / 四
    assert zhang_san["left-top"] == zhang_si["left-top"]              # 之
    assert zhang_san["left-bottom"] == zhang_si["left-bottom"]        # 印
    assert draw_seal(SealSpec("personal", "", "张三")).pdf_content() == \
        draw_seal(SealSpec("personal", "", "张三之印")).pdf_content()


@needs_qpdf
@needs_poppler
def test_personal_seal_square(tmp_path):
    drawing = draw_seal(SealSpec("personal", "某某公司", "司马相如"))
    _, probe = render_on_page(drawing, tmp_path, "personal")
    x0, y0, x1, y1 = bbox(probe.mask)
    assert (x1 - x0 + 1) / PX_PER_MM == pytest.approx(20, abs=0.5)
    assert (y1 - y0 + 1) / PX_PER_MM == pytest.approx(20, abs=0.5)
    # the 1 mm border is solid all round, and the characters fill the inside
    for t in range(-95, 96, 5):
        for x, y in ((t / 10, 9.5), (t / 10, -9.5), (9.5, t / 10), (-9.5, t / 10)):
            assert probe.red(x, y), (x, y)
    inside = probe.rect_fraction(-8.5, -8.5, 8.5, 8.5)
    assert 0.2 < inside < 0.7


def test_png_size_and_dpi(official):
    image = Image.open(io.BytesIO(official.png(300)))
    assert image.size == (round(42 / 25.4 * 300),) * 2
    assert image.info["dpi"] == pytest.approx((300, 300), abs=0.1)
    with pytest.raises(ValueError):
        official.png(0)


def test_colour_is_configurable():
    drawing = draw_seal(SealSpec("official", "某某市人民政府", color=(200, 16, 46)))
    assert b"0.784 0.063 0.18 rg" in drawing.pdf_content()
    assert 'fill="#c8102e"' in drawing.svg()
    image = Image.open(io.BytesIO(drawing.png(72)))
    solid = [p for p in all_pixels(image) if p[3] == 255]
    assert solid and all(p[:3] == (200, 16, 46) for p in solid)


def test_organisation_arc_spans_by_length():
    # the first and last glyphs' centres span about 210° minus one step for a short name,
    # about 240° minus one step for a long one
    for name, span in (("某某市人民政府", 210.0), ("中华人民共和国国家发展和改革委员会办公厅", 240.0)):
        drawing = draw_seal(SealSpec("official", name))
        glyphs = [s for s in drawing.shapes if s.role == "organisation"]
        assert len(glyphs) == len(name)
        centre = drawing.width_pt / 2
        angles = []
        for shape in glyphs:
            xs = [v for _, args in shape.ops for v in args[0::2]]
            ys = [v for _, args in shape.ops for v in args[1::2]]
            gx, gy = (min(xs) + max(xs)) / 2 - centre, (min(ys) + max(ys)) / 2 - centre
            angles.append(math.degrees(math.atan2(gx, gy)))
        assert angles == sorted(angles)  # left to right, clockwise
        step = span / len(name)
        assert angles[-1] - angles[0] == pytest.approx(span - step, abs=8)

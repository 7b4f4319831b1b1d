"""Administrator PNG seals, and previews written as PNG, SVG and PDF."""
from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET

import pikepdf
import pytest
from appearance_support import (
    MM,
    iou,
    needs_poppler,
    needs_qpdf,
    pdftoppm,
    qpdf_check,
    red_mask_rgb,
    red_mask_rgba,
)
from PIL import Image, ImageDraw

from seal.appearance import (
    AppearanceError,
    ImageSeal,
    SealSpec,
    draw_seal,
    drawing_from_png,
    write_preview,
)


def png_bytes(image: Image.Image, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", **params)
    return out.getvalue()


def red_disc(size=(300, 300), mode="RGBA") -> Image.Image:
    image = Image.new("RGBA", size, (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, size[0] - 10, size[1] - 10), outline=(230, 0, 18, 255), width=12)
    draw.rectangle((size[0] // 3, size[1] // 3, 2 * size[0] // 3, 2 * size[1] // 3),
                   fill=(230, 0, 18, 255))
    return image if mode == "RGBA" else image.convert(mode)


def test_png_seal_dimensions_and_pieces():
    seal = drawing_from_png(png_bytes(red_disc((400, 300))), 40)
    assert isinstance(seal, ImageSeal)
    assert seal.width_pt == pytest.approx(40 * MM)          # the longer side
    assert seal.height_pt == pytest.approx(30 * MM)
    piece = seal.pdf_image()
    assert (piece.width, piece.height) == (400, 300)
    assert len(piece.rgb) == 400 * 300 * 3 and len(piece.alpha) == 400 * 300
    assert piece.alpha[0] == 0                               # transparent corner
    centre = 150 * 400 + 200
    assert piece.alpha[centre] == 255
    assert piece.rgb[3 * centre:3 * centre + 3] == bytes((230, 0, 18))
    width, height, rgb, alpha = piece                        # unpacks like a tuple
    assert (width, height, rgb, alpha) == tuple(piece)
    again = Image.open(io.BytesIO(seal.png()))
    assert again.format == "PNG" and again.mode == "RGBA" and again.size == (400, 300)


def test_palette_png_with_transparency_is_accepted():
    image = red_disc().convert("P")  # RGBA -> P keeps the transparent index as tRNS
    data = png_bytes(image)
    assert Image.open(io.BytesIO(data)).info.get("transparency") is not None
    seal = drawing_from_png(data, 42)
    assert seal.pdf_image().alpha[0] == 0


@pytest.mark.parametrize("make, message", [
    (lambda: b"GIF89a" + b"\0" * 40, "not a PNG"),
    (lambda: png_bytes(red_disc()).replace(b"PNG", b"JPG", 1), "not a PNG"),
    (lambda: png_bytes(red_disc(mode="RGB")), "no transparency"),
    (lambda: png_bytes(red_disc(mode="L")), "no transparency"),
    (lambda: png_bytes(Image.new("RGBA", (50, 50), (230, 0, 18, 255))), "no transparent pixel"),
    (lambda: png_bytes(Image.new("RGBA", (50, 50), (0, 0, 0, 0))), "fully transparent"),
    (lambda: png_bytes(red_disc())[:200], "not a readable PNG"),
])
def test_bad_pngs(make, message):
    with pytest.raises(AppearanceError, match=message) as err:
        drawing_from_png(make(), 42)
    assert err.value.data["field"] == "png"


def test_jpeg_is_refused():
    out = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(out, format="JPEG")
    with pytest.raises(AppearanceError, match="not a PNG"):
        drawing_from_png(out.getvalue(), 42)


def test_bad_sizes():
    data = png_bytes(red_disc())
    for size in (0, 5, 101, -42):
        with pytest.raises(AppearanceError, match="seal size"):
            drawing_from_png(data, size)
    with pytest.raises(TypeError):
        drawing_from_png(data, "42")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        drawing_from_png("not bytes", 42)  # type: ignore[arg-type]


@needs_qpdf
@needs_poppler
def test_png_seal_pdf_preview_renders_with_its_soft_mask(tmp_path):
    source = red_disc()
    seal = drawing_from_png(png_bytes(source), 42)
    path = tmp_path / "image-seal.pdf"
    write_preview(seal, path)
    qpdf_check(path)
    with pikepdf.open(path) as pdf:
        assert pdf.pdf_version >= "1.4"
        xobject = pdf.pages[0].Resources.XObject.Seal
        assert xobject.SMask.Width == 300 and xobject.ColorSpace == "/DeviceRGB"
    rendered = red_mask_rgb(pdftoppm(path, dpi=round(300 / 42 * 25.4)))
    assert iou(rendered, red_mask_rgba(source)) >= 0.9
    # the transparent parts show the white page, not black or the PNG's colour
    assert pdftoppm(path).getpixel((60, 60))[:3] == (255, 255, 255)


def test_previews_by_suffix(tmp_path):
    drawing = draw_seal(SealSpec("official", "某某市人民政府", "合同专用章"))
    png, svg, pdf = (write_preview(drawing, tmp_path / f"seal.{ext}")
                     for ext in ("png", "svg", "pdf"))
    image = Image.open(png)
    assert image.format == "PNG" and image.mode == "RGBA" and image.size == (496, 496)
    assert ET.parse(svg).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    with pikepdf.open(pdf) as doc:
        assert len(doc.pages) == 1
        assert [float(v) for v in doc.pages[0].MediaBox] == pytest.approx(
            [0, 0, 119.055, 119.055], abs=1e-3)
    image_seal = drawing_from_png(drawing.png(150), 42)
    svg_path = write_preview(image_seal, tmp_path / "image.svg")
    root = ET.parse(svg_path).getroot()
    assert root.find("{http://www.w3.org/2000/svg}image") is not None


def test_unknown_preview_suffix_writes_nothing(tmp_path):
    drawing = draw_seal(SealSpec("personal", "", "张三"))
    target = tmp_path / "seal.jpg"
    with pytest.raises(AppearanceError, match="preview format"):
        write_preview(drawing, target)
    assert os.listdir(tmp_path) == []

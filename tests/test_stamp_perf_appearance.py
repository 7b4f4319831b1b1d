"""The seal picture's compressed streams are made once and reused for every document sealed with
the same picture: the reuse must not change what is drawn (pdftoppm) or signed (pdfsig, qpdf)."""
from __future__ import annotations

import gc
import io

import pikepdf
import pytest
from PIL import Image, ImageDraw

from pdf_fixtures import ORG, document, identity, pdfsig, qpdf_check, red_box, render
from seal import pdf_sign
from seal.appearance import SealSpec, draw_seal, drawing_from_png
from seal.cms_signer import make_signer
from seal.pdf_placement import MM, AtPosition
from seal.pdf_sign import stamp_pdf

from pdf_fixtures import CLOCK, clock_follows_the_run  # noqa: E402,F401  (autouse)

A4_H = 841.89


def png_seal():
    image = Image.new("RGBA", (200, 200), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, 192, 192), outline=(230, 0, 18, 255), width=14)
    draw.rectangle((70, 70, 130, 130), fill=(230, 0, 18, 255))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return drawing_from_png(out.getvalue(), 40)


def appearance_streams(path):
    with pikepdf.open(path) as pdf:
        (widget,) = [a for a in pdf.pages[0].get("/Annots", []) if a.get("/Subtype") == "/Widget"]
        form = widget.AP.N
        images = {name: (x.read_bytes(), x.SMask.read_bytes())
                  for name, x in form.Resources.get("/XObject", {}).items()}
        return form.read_bytes(), images


@pytest.mark.parametrize("kind", ["vector", "png"])
def test_second_document_gets_the_same_picture(tmp_path, kind):
    drawing = draw_seal(SealSpec("official", ORG)) if kind == "vector" else png_seal()
    signer = make_signer(identity("p256").key, identity("p256").cert, [identity("p256").root])
    outputs = []
    for n, (page, x, y) in enumerate([(1, 100, 100), (2, 60, 200)]):
        out = tmp_path / f"sealed-{n}.pdf"
        stamp_pdf(document(3), out, signer=signer, drawing=drawing,
                  placement=AtPosition(page, x, y), clock=CLOCK)
        assert "Signature is Valid." in pdfsig(out)
        qpdf_check(out)
        left, top, right, bottom = red_box(render(out, page))
        assert (left + right) / 2 == pytest.approx(x * MM, abs=3)
        assert (top + bottom) / 2 == pytest.approx(A4_H - y * MM, abs=3)
        outputs.append(out)
    first, second = appearance_streams(outputs[0]), None
    with pikepdf.open(outputs[1]) as pdf:
        (widget,) = [a for a in pdf.pages[1].get("/Annots", []) if a.get("/Subtype") == "/Widget"]
        second = widget.AP.N.read_bytes()
    assert first[0] == second                       # same decoded drawing both times
    if kind == "png":
        ((rgb, alpha),) = first[1].values()
        assert len(rgb) == 3 * len(alpha) > 0


def test_cache_entry_goes_with_the_picture():
    drawing = draw_seal(SealSpec("official", ORG))
    pdf_sign._encoded(drawing)
    key = id(drawing)
    assert pdf_sign._ENCODED[key][0]() is drawing
    del drawing
    gc.collect()
    assert key not in pdf_sign._ENCODED

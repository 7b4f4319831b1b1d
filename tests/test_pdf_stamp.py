"""Stamping PDFs: judged by pdfsig, qpdf, pyHanko's validator and pdftoppm renderings."""
from __future__ import annotations

import io
from pathlib import Path

import pikepdf
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from pdf_fixtures import (DATE, ORG, document, flip_signed_byte, identity, make_document, pdfsig,
                          qpdf_check,
                          red_box, render, workdir)
from seal.appearance import SealSpec, draw_seal
from seal.cms_signer import make_signer
from seal.pdf_errors import (AnchorNotFound, EncryptedPdf, FieldError, NotAPdf, PdfSealError,
                             PlacementError)
from seal.pdf_placement import MM, AnchorText, AtPosition, ExistingField
from seal.pdf_sign import stamp_pdf

# a little after "now": the certificates are made later in the session than this import
from pdf_fixtures import CLOCK, clock_follows_the_run  # noqa: E402,F401  (autouse)
A4_W, A4_H = 595.28, 841.89


@pytest.fixture(scope="module")
def drawing():
    return draw_seal(SealSpec("official", ORG))


@pytest.fixture(scope="module")
def signers():
    return {n: make_signer(identity(n).key, identity(n).cert, [identity(n).root])
            for n in ("rsa", "p256", "sm2")}


def stamp(tmp_path: Path, signer, drawing, placement, *, source=None, name="out.pdf", **kw):
    out = tmp_path / name
    result = stamp_pdf(document(3) if source is None else source, out, signer=signer,
                       drawing=drawing, placement=placement, clock=CLOCK, **kw)
    assert result.output == out and out.is_file()
    return result


def pyhanko_status(path: Path, root):
    with open(path, "rb") as fh:
        reader = PdfFileReader(fh)
        return [validate_pdf_signature(s, ValidationContext(trust_roots=[root]))
                for s in reader.embedded_signatures]


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- signatures

@pytest.mark.parametrize("alg", ["rsa", "p256"])
def test_pdfsig_accepts_seal_and_detects_a_flipped_byte(tmp_path, signers, drawing, alg):
    result = stamp(tmp_path, signers[alg], drawing, AnchorText(ORG))
    report = pdfsig(result.output)
    assert report.count("Signature is Valid.") == 1, report
    assert "Total document signed" in report
    assert "ETSI.CAdES.detached" in report
    qpdf_check(result.output)

    flipped = tmp_path / "flipped.pdf"
    flipped.write_bytes(flip_signed_byte(result.output.read_bytes()))
    assert "Digest Mismatch." in pdfsig(flipped)


@pytest.mark.parametrize("alg", ["rsa", "p256"])
def test_pyhanko_validator_accepts_seal(tmp_path, signers, drawing, alg):
    result = stamp(tmp_path, signers[alg], drawing, AtPosition(-1, 150, 80), riding=True)
    (status,) = pyhanko_status(result.output, identity(alg).root)
    assert status.bottom_line, status.pretty_print_details()
    assert status.coverage.name == "ENTIRE_FILE"
    assert status.md_algorithm == "sha256"
    qpdf_check(result.output)


def test_result_describes_the_seal(tmp_path, signers, drawing):
    result = stamp(tmp_path, signers["sm2"], drawing, AtPosition(2, 100, 120))
    assert result.field_name == "Seal1"
    assert result.page == 2
    assert result.signature_algorithm == "sm3_sm2" and result.digest_algorithm == "sm3"
    assert result.signing_time == CLOCK.now()
    assert result.size == result.output.stat().st_size
    x0, y0, x1, y1 = result.rect
    assert (x0 + x1) / 2 == pytest.approx(100 * MM, abs=0.01)
    assert (y0 + y1) / 2 == pytest.approx(120 * MM, abs=0.01)
    assert x1 - x0 == pytest.approx(drawing.width_pt, abs=0.01)
    qpdf_check(result.output)


def test_stamping_is_an_incremental_update(tmp_path, signers, drawing):
    original = document(3)
    result = stamp(tmp_path, signers["p256"], drawing, AtPosition(1, 100, 100))
    sealed = result.output.read_bytes()
    assert sealed.startswith(original)
    with pikepdf.open(result.output) as pdf:
        # nothing was drawn into page content: the pages' /Contents are the original ones
        with pikepdf.open(io.BytesIO(original)) as before:
            for p_new, p_old in zip(pdf.pages, before.pages):
                assert p_new.obj.Contents.objgen == p_old.obj.Contents.objgen
        field = pdf.Root.AcroForm.Fields[0]
        assert field.FT == "/Sig"
        assert field.AP.N.Subtype == "/Form"
        assert int(field.F) & 128  # locked


# --------------------------------------------------------------------------- placement

def test_at_position_puts_red_where_asked(tmp_path, signers, drawing):
    result = stamp(tmp_path, signers["rsa"], drawing, AtPosition(2, 70, 200))
    image = render(result.output, 2)
    left, top, right, bottom = red_box(image)
    # 72 dpi: one pixel per point, origin top-left
    assert (left + right) / 2 == pytest.approx(70 * MM, abs=3)
    assert (top + bottom) / 2 == pytest.approx(A4_H - 200 * MM, abs=3)
    assert right - left == pytest.approx(drawing.width_pt, abs=4)
    for page in (1, 3):
        assert red_box(render(result.output, page)) is None


@pytest.mark.parametrize("cid", [True, False], ids=["cid-font", "simple-truetype"])
def test_anchor_text_centres_seal_over_the_last_occurrence(tmp_path, signers, drawing, cid):
    source = make_document(workdir() / f"anchor-{cid}.pdf", pages=3, cid_fonts=cid)
    result = stamp(tmp_path, signers["p256"], drawing, AnchorText(ORG), source=source.read_bytes())
    assert result.page == 3            # the organisation's name also occurs on page 1
    image = render(result.output, 3)
    left, top, right, bottom = red_box(image)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    # make_document right-aligns the name at x = W - 120 with baseline y = 260 (16 pt)
    width_16pt = 16 * len(ORG)
    text_cx, text_cy = A4_W - 120 - width_16pt / 2, A4_H - (260 + 16 * 0.35)
    assert cx == pytest.approx(text_cx, abs=4)
    # the text sits slightly below the seal's centre (a tenth of its height)
    assert text_cy - cy == pytest.approx(drawing.height_pt * 0.1, abs=4)
    # and the date, one line lower, is still under the seal
    assert bottom > A4_H - 230 + 4


def test_anchor_text_prefers_the_line_that_is_the_name_alone(tmp_path, signers, drawing):
    """The 版记's "<org>办公室 … 印发" comes after the signature line; the seal still presses the
    signature line (the last line reading the organisation's name alone)."""
    source = make_document(workdir() / "anchor-imprint.pdf", pages=2, imprint=True)
    result = stamp(tmp_path, signers["p256"], drawing, AnchorText(ORG), source=source.read_bytes())
    assert result.page == 2
    left, top, right, bottom = red_box(render(result.output, 2))
    text_cy = A4_H - (260 + 16 * 0.35)
    assert (top + bottom) / 2 == pytest.approx(text_cy - drawing.height_pt * 0.1, abs=4)
    # without a line of the name alone, the last occurrence anywhere is taken (the 版记 here)
    inside = stamp(tmp_path, signers["p256"], drawing, AnchorText(ORG + "办公室"), source=source.read_bytes(),
                   name="inside.pdf")
    left, top, right, bottom = red_box(render(inside.output, 2))
    assert (top + bottom) / 2 == pytest.approx(A4_H - (120 + 12 * 0.35) - drawing.height_pt * 0.1, abs=4)


def test_anchor_text_first_and_numbered_occurrence(tmp_path, signers, drawing):
    first = stamp(tmp_path, signers["sm2"], drawing, AnchorText(ORG, occurrence="first"),
                  name="first.pdf")
    assert first.page == 1
    second = stamp(tmp_path, signers["sm2"], drawing, AnchorText(ORG, occurrence=2),
                   name="second.pdf")
    assert second.page == 3
    with pytest.raises(AnchorNotFound):
        stamp(tmp_path, signers["sm2"], drawing, AnchorText(ORG, occurrence=3), name="third.pdf")


def test_anchor_text_matches_across_spaces(tmp_path, signers, drawing):
    result = stamp(tmp_path, signers["sm2"], drawing, AnchorText("2024 年 5 月 8 日"))
    assert result.page == 3


def test_riding_seal_slices_on_every_page(tmp_path, signers, drawing):
    source = make_document(workdir() / "riding-4.pdf", pages=4).read_bytes()
    result = stamp(tmp_path, signers["p256"], drawing, AnchorText(DATE), riding=True, source=source)
    assert result.riding_pages == 4
    slice_w = drawing.width_pt / 4
    for page in range(1, 5):
        image = render(result.output, page)
        right_strip = image.crop((int(A4_W - 2 * slice_w), 0, image.width, image.height))
        box = red_box(right_strip)
        assert box is not None, f"no riding slice on page {page}"
        left, top, right, bottom = box
        assert right >= right_strip.width - 2                     # touches the right edge
        assert right - left == pytest.approx(slice_w, abs=3)      # one slice wide
        assert (top + bottom) / 2 == pytest.approx(A4_H / 2, abs=drawing.height_pt / 2)
    report = pdfsig(result.output)
    assert report.count("Signature is Valid.") == 1, report
    assert "not signed" not in report
    qpdf_check(result.output)


def test_riding_slices_join_into_the_seal(tmp_path, signers, drawing):
    """The n slices, put side by side, are the seal: together as wide as it."""
    result = stamp(tmp_path, signers["rsa"], drawing, AtPosition(1, 100, 100), riding=True)
    widths = []
    for page in range(1, 4):
        image = render(result.output, page, dpi=144)
        strip = image.crop((image.width - int(drawing.width_pt * 2), 0, image.width, image.height))
        left, _, right, _ = red_box(strip)
        widths.append((right - left) / 2)
    assert sum(widths) == pytest.approx(drawing.width_pt, abs=4)


def test_existing_empty_field_keeps_seal_size_centred(tmp_path, signers, drawing):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field

    buf = io.BytesIO(document(3))
    w = IncrementalPdfFileWriter(buf)
    append_signature_field(w, SigFieldSpec("Approver", on_page=1, box=(100, 300, 300, 340)))
    w.write_in_place()
    result = stamp(tmp_path, signers["rsa"], drawing, ExistingField("Approver"),
                   source=buf.getvalue())
    assert result.field_name == "Approver" and result.page == 2
    x0, y0, x1, y1 = result.rect
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((200, 320), abs=0.01)
    assert x1 - x0 == pytest.approx(drawing.width_pt, abs=0.01)
    report = pdfsig(result.output)
    assert "Signature is Valid." in report and "Approver" in report
    qpdf_check(result.output)
    with pytest.raises(FieldError, match="already signed"):
        stamp(tmp_path, signers["rsa"], drawing, ExistingField("Approver"),
              source=result.output.read_bytes(), name="again.pdf")


def test_existing_field_with_riding_seal(tmp_path, signers, drawing):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field

    buf = io.BytesIO(document(3))
    w = IncrementalPdfFileWriter(buf)
    append_signature_field(w, SigFieldSpec("Approver", on_page=2, box=(300, 200, 420, 320)))
    w.write_in_place()
    result = stamp(tmp_path, signers["p256"], drawing, ExistingField("Approver"), riding=True,
                   source=buf.getvalue())
    assert result.riding_pages == 3
    report = pdfsig(result.output)
    assert report.count("Signature is Valid.") == 1 and "not signed" not in report, report
    (status,) = pyhanko_status(result.output, identity("p256").root)
    assert status.bottom_line
    qpdf_check(result.output)


def test_rotated_page_shows_the_seal_upright_where_asked(tmp_path, signers, drawing):
    upright = document(3)
    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(upright)) as pdf:
        pdf.pages[0].obj.Rotate = 90
        pdf.save(buf)
    rotated = buf.getvalue()
    # the rotated page is displayed landscape: 841.89 wide, 595.28 high; both spots are blank
    a = stamp(tmp_path, signers["rsa"], drawing, AtPosition(1, 100, 100), source=upright, name="a.pdf")
    b = stamp(tmp_path, signers["rsa"], drawing, AtPosition(1, 100, 100), source=rotated, name="b.pdf")
    img_a, img_b = render(a.output, 1), render(b.output, 1)
    assert img_b.size[0] > img_b.size[1]
    box_a, box_b = red_box(img_a), red_box(img_b)
    assert ((box_b[0] + box_b[2]) / 2) == pytest.approx(100 * MM, abs=3)
    assert ((box_b[1] + box_b[3]) / 2) == pytest.approx(img_b.height - 100 * MM, abs=3)
    # the same picture on both pages, upright: turning one by 90° makes them differ
    from PIL import ImageChops
    from pdf_fixtures import red_mask
    crop_a = red_mask(img_a.crop(box_a))
    crop_b = red_mask(img_b.crop(box_b)).resize(crop_a.size)

    def differing(angle: int) -> int:
        diff = ImageChops.difference(crop_a, crop_b.rotate(angle))
        return sum(1 for v in diff.get_flattened_data() if v > 128)

    assert differing(0) < 0.06 * crop_a.width * crop_a.height   # anti-aliasing at 72 dpi
    assert differing(0) * 3 < min(differing(90), differing(180), differing(270))


def test_crop_box_origin_is_respected(tmp_path, signers, drawing):
    src = io.BytesIO()
    with pikepdf.open(io.BytesIO(document(3))) as pdf:
        for page in pdf.pages:
            page.obj.CropBox = pikepdf.Array([50, 100, 545, 800])
        pdf.save(src)
    result = stamp(tmp_path, signers["sm2"], drawing, AtPosition(1, 40, 40), source=src.getvalue())
    x0, y0, x1, y1 = result.rect
    assert ((x0 + x1) / 2, (y0 + y1) / 2) == pytest.approx((50 + 40 * MM, 100 + 40 * MM), abs=0.01)
    image = render(result.output, 1, cropbox=True)
    assert image.size == (495, 700)
    left, top, right, bottom = red_box(image)
    assert ((left + right) / 2, (top + bottom) / 2) == pytest.approx((40 * MM, 700 - 40 * MM), abs=3)


def test_png_seal(tmp_path, signers):
    from PIL import Image, ImageDraw
    from seal.appearance import drawing_from_png

    img = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(img).ellipse((10, 10, 190, 190), outline=(230, 0, 0, 255), width=12)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    picture = drawing_from_png(buf.getvalue(), 40)
    result = stamp(tmp_path, signers["rsa"], picture, AtPosition(1, 100, 100))
    assert pdfsig(result.output).count("Signature is Valid.") == 1
    qpdf_check(result.output)
    left, top, right, bottom = red_box(render(result.output, 1))
    assert (left + right) / 2 == pytest.approx(100 * MM, abs=3)


# --------------------------------------------------------------------------- several seals

def test_second_seal_keeps_the_first_valid(tmp_path, signers, drawing):
    first = stamp(tmp_path, signers["rsa"], drawing, AtPosition(-1, 60, 60), riding=True,
                  name="one.pdf")
    second = stamp(tmp_path, signers["p256"], drawing, AtPosition(-1, 150, 60), riding=True,
                   source=first.output, name="two.pdf")
    assert second.field_name == "Seal2"
    assert second.output.read_bytes().startswith(first.output.read_bytes())
    report = pdfsig(second.output)
    assert report.count("Signature is Valid.") == 2, report
    with open(second.output, "rb") as fh:
        reader = PdfFileReader(fh)
        s1, s2 = reader.embedded_signatures
        st1 = validate_pdf_signature(s1, ValidationContext(trust_roots=[identity("rsa").root]))
        st2 = validate_pdf_signature(s2, ValidationContext(trust_roots=[identity("p256").root]))
    assert st1.bottom_line and st2.bottom_line
    assert st1.coverage.name == "ENTIRE_REVISION" and st1.modification_level.name == "FORM_FILLING"
    assert st2.coverage.name == "ENTIRE_FILE"
    qpdf_check(second.output)


# --------------------------------------------------------------------------- errors

def _assert_no_output(tmp_path: Path) -> None:
    assert not (tmp_path / "out.pdf").exists()
    assert no_temp_files(tmp_path)


def test_not_a_pdf(tmp_path, signers, drawing):
    with pytest.raises(NotAPdf, match="not a PDF"):
        stamp(tmp_path, signers["rsa"], drawing, AtPosition(1, 50, 50), source=b"hello, world\n")
    _assert_no_output(tmp_path)


def test_broken_pdf(tmp_path, signers, drawing):
    broken = document(3)[:2000] + b"\n%%EOF\n"
    with pytest.raises(NotAPdf, match="damaged"):
        stamp(tmp_path, signers["rsa"], drawing, AtPosition(1, 50, 50), source=broken)
    _assert_no_output(tmp_path)


def test_encrypted_pdf(tmp_path, signers, drawing):
    buf = io.BytesIO()
    with pikepdf.open(io.BytesIO(document(3))) as pdf:
        pdf.save(buf, encryption=pikepdf.Encryption(user="", owner="secret"))
    with pytest.raises(EncryptedPdf):
        stamp(tmp_path, signers["rsa"], drawing, AtPosition(1, 50, 50), source=buf.getvalue())
    _assert_no_output(tmp_path)


@pytest.mark.parametrize("page", [4, -4])
def test_page_out_of_range(tmp_path, signers, drawing, page):
    with pytest.raises(PlacementError, match="out of range"):
        stamp(tmp_path, signers["rsa"], drawing, AtPosition(page, 50, 50))
    _assert_no_output(tmp_path)


def test_position_off_the_page(tmp_path, signers, drawing):
    with pytest.raises(PlacementError, match="off the page"):
        stamp(tmp_path, signers["rsa"], drawing, AtPosition(1, 250, 50))
    _assert_no_output(tmp_path)


def test_anchor_not_found(tmp_path, signers, drawing):
    with pytest.raises(AnchorNotFound, match="does not occur"):
        stamp(tmp_path, signers["rsa"], drawing, AnchorText("上海市不存在局"))
    _assert_no_output(tmp_path)


def test_field_missing(tmp_path, signers, drawing):
    with pytest.raises(FieldError, match="no signature field"):
        stamp(tmp_path, signers["rsa"], drawing, ExistingField("Nope"))
    _assert_no_output(tmp_path)


def test_new_field_name_must_be_free(tmp_path, signers, drawing):
    first = stamp(tmp_path, signers["rsa"], drawing, AtPosition(1, 50, 50), field_name="Org",
                  name="first.pdf")
    with pytest.raises(FieldError, match="already exists"):
        stamp(tmp_path, signers["rsa"], drawing, AtPosition(1, 150, 50), field_name="Org",
              source=first.output.read_bytes())
    _assert_no_output(tmp_path)


def test_existing_output_is_untouched_on_error(tmp_path, signers, drawing):
    out = tmp_path / "out.pdf"
    out.write_bytes(b"previous content")
    with pytest.raises(PdfSealError):
        stamp(tmp_path, signers["rsa"], drawing, AtPosition(9, 50, 50))
    assert out.read_bytes() == b"previous content"
    assert no_temp_files(tmp_path)


def test_placement_values_are_checked():
    with pytest.raises(ValueError):
        AtPosition(0, 10, 10)
    with pytest.raises(ValueError):
        AtPosition(1, float("nan"), 10)
    with pytest.raises(ValueError):
        AnchorText("  ")
    with pytest.raises(ValueError):
        AnchorText("x", occurrence=0)
    with pytest.raises(ValueError):
        ExistingField("")

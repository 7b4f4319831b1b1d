"""Fonts: fontconfig discovery, collections, TrueType (quadratic) and CFF (cubic) outlines,
configured fonts, and the errors for missing glyphs and unreadable files."""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from appearance_support import (
    DPI,
    iou,
    make_truetype_subset,
    needs_poppler,
    pdftoppm,
    red_mask_rgb,
    red_mask_rgba,
)
from fontTools.pens.recordingPen import RecordingPen
from fontTools.ttLib import TTFont
from PIL import Image

from seal.appearance import (
    AppearanceError,
    SealSpec,
    draw_seal,
    find_cjk_face,
    find_cjk_font,
    write_preview,
)
from seal.appearance.fonts import PROBE_TEXT, load_face

pytestmark = pytest.mark.skipif(shutil.which("fc-match") is None, reason="no fontconfig")

ORG = "北京某科技发展有限公司"
NAME = "合同专用章"
TEXT = PROBE_TEXT + ORG + NAME + "口"


@pytest.fixture(scope="module")
def system_face():
    return find_cjk_face()


@pytest.fixture(scope="module")
def truetype_font(tmp_path_factory, system_face):
    """A glyf (quadratic) CJK font made from the system's CFF font by fontTools."""
    path, index = system_face
    out = tmp_path_factory.mktemp("ttf") / "SealTest-Regular.ttf"
    return make_truetype_subset(path, index, TEXT, out)


def latin_only_font() -> str:
    """fontconfig's ordinary sans font (DejaVu on Debian), if it has no CJK glyphs."""
    path = subprocess.run(["fc-match", "-f", "%{file}", "sans"], capture_output=True,
                          text=True, check=False).stdout
    if not path.lower().endswith((".ttf", ".otf")) or not Path(path).is_file():
        pytest.skip("no single-face Latin font from fontconfig")
    if ord("公") in TTFont(path, lazy=True).getBestCmap():
        pytest.skip("fontconfig's sans font has CJK glyphs")
    return path


def test_find_cjk_font_has_the_characters(system_face):
    path, index = system_face
    assert find_cjk_font() == path
    font = TTFont(path, fontNumber=index, lazy=True)
    cmap = font.getBestCmap()
    assert all(ord(ch) in cmap for ch in PROBE_TEXT)
    # fontconfig itself agrees this face covers Chinese
    query = subprocess.run(["fc-query", "-i", str(index), "-f", "%{lang}", path],
                           capture_output=True, text=True, check=True).stdout
    assert "zh-cn" in query.split("|")


def test_collection_face_is_simplified_chinese(system_face):
    path, _ = system_face
    if not path.lower().endswith((".ttc", ".otc")):
        pytest.skip("the system CJK font is not a collection")
    # fontconfig's own view of the collection: which faces are Simplified Chinese
    listing = subprocess.run(["fc-query", "-f", "%{index}|%{family[0]}\n", path],
                             capture_output=True, text=True, check=True).stdout
    sc_faces = {int(i) for i, fam in (ln.split("|", 1) for ln in listing.splitlines())
                if fam.endswith(" SC") and "Mono" not in fam}
    assert sc_faces, listing
    face = load_face(path)  # no index: our choice
    assert face.index in sc_faces
    assert draw_seal(SealSpec("official", ORG, font_path=path)).font_index in sc_faces


def test_configured_font_overrides_fontconfig(truetype_font, system_face):
    default = draw_seal(SealSpec("official", ORG, NAME))
    configured = draw_seal(SealSpec("official", ORG, NAME, font_path=str(truetype_font)))
    assert default.font_path == system_face[0]
    assert configured.font_path == str(truetype_font)
    assert configured.pdf_content() != default.pdf_content()


def test_truetype_glyphs_are_quadratic_and_become_cubic(truetype_font):
    font = TTFont(str(truetype_font))
    assert "glyf" in font and "CFF " not in font
    glyph_name = font.getBestCmap()[ord("发")]
    recorded = RecordingPen()
    font.getGlyphSet()[glyph_name].draw(recorded)
    assert any(op == "qCurveTo" for op, _ in recorded.value)

    face = load_face(truetype_font)
    ops, advance = face.outline("发")
    assert {op for op, _ in ops} <= {"m", "l", "c", "h"}
    assert any(op == "c" for op, _ in ops)
    assert advance == font["hmtx"][glyph_name][0]
    # each cubic is the exact degree elevation of a quadratic: the control points satisfy
    # c1 = p0 + 2/3 (q - p0) and c2 = p3 + 2/3 (q - p3) for one q
    current = None
    checked = 0
    for op, args in ops:
        if op == "c":
            x0, y0 = current
            x1, y1, x2, y2, x3, y3 = args
            qx1, qy1 = x0 + 1.5 * (x1 - x0), y0 + 1.5 * (y1 - y0)
            qx2, qy2 = x3 + 1.5 * (x2 - x3), y3 + 1.5 * (y2 - y3)
            assert (qx1, qy1) == pytest.approx((qx2, qy2), abs=1e-6)
            checked += 1
        if op in ("m", "l", "c"):
            current = args[-2:]
    assert checked > 3


@needs_poppler
def test_truetype_and_cff_outlines_draw_the_same_seal(truetype_font, tmp_path):
    cff = draw_seal(SealSpec("official", ORG, NAME))
    ttf = draw_seal(SealSpec("official", ORG, NAME, font_path=str(truetype_font)))
    masks = []
    for name, drawing in (("cff", cff), ("ttf", ttf)):
        path = tmp_path / f"{name}.pdf"
        write_preview(drawing, path)
        masks.append(red_mask_rgb(pdftoppm(path)))
    assert iou(*masks) >= 0.97
    # and the pure-Python rasteriser fills TrueType contours (opposite winding) the same way
    own = red_mask_rgba(Image.open(io.BytesIO(ttf.png(DPI))))
    assert iou(masks[1], own) >= 0.9


def test_fontconfig_finds_any_cjk_font(truetype_font, tmp_path, monkeypatch):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    shutil.copy(truetype_font, fonts / truetype_font.name)
    latin = latin_only_font()
    shutil.copy(latin, fonts / Path(latin).name)
    conf = tmp_path / "fonts.conf"
    conf.write_text(f"""<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig><dir>{fonts}</dir><cachedir>{tmp_path / "cache"}</cachedir></fontconfig>
""")
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    path, index = find_cjk_face()
    assert Path(path) == fonts / truetype_font.name and index == 0
    drawing = draw_seal(SealSpec("official", ORG, NAME))
    assert Path(drawing.font_path) == fonts / truetype_font.name


def test_no_cjk_font_is_a_clear_error(tmp_path, monkeypatch):
    fonts = tmp_path / "fonts"
    fonts.mkdir()
    latin = latin_only_font()
    shutil.copy(latin, fonts / Path(latin).name)
    conf = tmp_path / "fonts.conf"
    conf.write_text(f"""<?xml version="1.0"?>
<fontconfig><dir>{fonts}</dir><cachedir>{tmp_path / "cache"}</cachedir></fontconfig>
""")
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    with pytest.raises(AppearanceError, match="no CJK font found by fontconfig") as err:
        find_cjk_font()
    assert "\n" not in str(err.value)
    with pytest.raises(AppearanceError, match="no CJK font"):
        draw_seal(SealSpec("official", ORG))


def test_without_fontconfig_tools(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no fc-match on this PATH
    with pytest.raises(AppearanceError, match="fc-match is not installed"):
        find_cjk_font()


def test_missing_glyph_is_named():
    with pytest.raises(AppearanceError) as err:
        draw_seal(SealSpec("official", "某某\U00020000有限公司", NAME))
    assert "U+20000" in str(err.value) and "\U00020000" in str(err.value)
    assert err.value.data["characters"] == "\U00020000"


def test_latin_font_lists_every_missing_character():
    latin = latin_only_font()
    with pytest.raises(AppearanceError) as err:
        draw_seal(SealSpec("official", "某某公司", "合同专用章", font_path=latin))
    assert err.value.data["characters"] == "某公司合同专用章"
    for ch in "某公司合同专用章":
        assert f"{ch} (U+{ord(ch):04X})" in str(err.value)


def test_unreadable_font_paths(tmp_path):
    with pytest.raises(AppearanceError, match="cannot read font .*No such file"):
        draw_seal(SealSpec("official", ORG, font_path=str(tmp_path / "absent.ttf")))
    text_file = tmp_path / "notes.ttf"
    text_file.write_text("not a font\n")
    with pytest.raises(AppearanceError, match="not a usable TrueType/OpenType font"):
        draw_seal(SealSpec("official", ORG, font_path=str(text_file)))
    truncated = tmp_path / "truncated.ttc"
    truncated.write_bytes(b"ttcf\x00\x01\x00\x00\x00\x00\x00\x05")
    with pytest.raises(AppearanceError, match="cannot read font"):
        draw_seal(SealSpec("official", ORG, font_path=str(truncated)))
    with pytest.raises(AppearanceError, match="cannot read font"):
        draw_seal(SealSpec("official", ORG, font_path=str(tmp_path)))


def test_face_index_out_of_range(system_face):
    path, _ = system_face
    with pytest.raises(AppearanceError, match="cannot read font"):
        draw_seal(SealSpec("official", ORG, font_path=path, font_index=99))

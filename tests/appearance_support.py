"""Helpers for the appearance tests: real PDFs, real renderers, pixel measurements."""
from __future__ import annotations

import io
import math
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

DPI = 150
PX_PER_MM = DPI / 25.4
MM = 72 / 25.4

needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm missing")
needs_qpdf = pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf missing")


def page_pdf(content: bytes, page_w_pt: float, page_h_pt: float,
             offset_pt: tuple[float, float] = (0.0, 0.0)) -> bytes:
    """One page whose only content is `content`, moved by `offset_pt`."""
    pdf = pikepdf.new()
    stream = (f"q 1 0 0 1 {offset_pt[0]:.3f} {offset_pt[1]:.3f} cm\n".encode() + content
              + b"Q\n")
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page,
                              MediaBox=[0, 0, round(page_w_pt, 3), round(page_h_pt, 3)],
                              Resources=pikepdf.Dictionary(),
                              Contents=pikepdf.Stream(pdf, stream))
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def qpdf_check(path: Path) -> str:
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr
    return result.stdout


def pdftoppm(path: Path, dpi: int = DPI) -> Image.Image:
    prefix = path.with_suffix("")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", str(path), str(prefix)],
                   check=True, capture_output=True)
    image = Image.open(prefix.with_suffix(".png"))
    image.load()
    return image.convert("RGB")


def all_pixels(image: Image.Image) -> list[tuple[int, ...]]:
    px = image.load()
    return [px[x, y] for y in range(image.height) for x in range(image.width)]


def red_mask_rgb(image: Image.Image) -> list[list[bool]]:
    """Pixels at least half covered by seal red on a white page (green channel below half)."""
    w, h = image.size
    px = image.load()
    return [[px[x, y][1] < 128 for x in range(w)] for y in range(h)]


def red_mask_rgba(image: Image.Image) -> list[list[bool]]:
    w, h = image.size
    alpha = image.getchannel("A").load()
    return [[alpha[x, y] >= 128 for x in range(w)] for y in range(h)]


def iou(a: list[list[bool]], b: list[list[bool]]) -> float:
    h = min(len(a), len(b))
    w = min(len(a[0]), len(b[0]))
    inter = union = 0
    for y in range(h):
        ra, rb = a[y], b[y]
        for x in range(w):
            if ra[x] or rb[x]:
                union += 1
                if ra[x] and rb[x]:
                    inter += 1
    # ink outside the common area counts against the match
    for mask in (a, b):
        union += sum(row[x] for row in mask[:h] for x in range(w, len(row)))
        union += sum(sum(row) for row in mask[h:])
    return inter / union if union else 1.0


def bbox(mask: list[list[bool]]) -> tuple[int, int, int, int] | None:
    ys = [y for y, row in enumerate(mask) if any(row)]
    if not ys:
        return None
    xs = [x for row in mask for x, v in enumerate(row) if v]
    return min(xs), min(ys), max(xs), max(ys)


class Probe:
    """Reads a rendered mask in millimetres around a centre, y up."""

    def __init__(self, mask: list[list[bool]], centre_px: tuple[float, float]) -> None:
        self.mask = mask
        self.cx, self.cy = centre_px

    def red(self, x_mm: float, y_mm: float) -> bool:
        x = int(self.cx + x_mm * PX_PER_MM)
        y = int(self.cy - y_mm * PX_PER_MM)
        if 0 <= y < len(self.mask) and 0 <= x < len(self.mask[0]):
            return self.mask[y][x]
        return False

    def polar(self, r_mm: float, deg_from_top: float) -> bool:
        t = math.radians(deg_from_top)
        return self.red(r_mm * math.sin(t), r_mm * math.cos(t))

    def circle_fraction(self, r_mm: float, samples: int = 720) -> float:
        return sum(self.polar(r_mm, 360 * i / samples) for i in range(samples)) / samples

    def annulus_fraction(self, r0: float, r1: float, deg0: float, deg1: float) -> float:
        hits = total = 0
        steps_r = max(2, int((r1 - r0) * PX_PER_MM))
        for i in range(steps_r + 1):
            r = r0 + (r1 - r0) * i / steps_r
            steps_a = max(8, int(abs(math.radians(deg1 - deg0)) * r * PX_PER_MM))
            for j in range(steps_a + 1):
                total += 1
                hits += self.polar(r, deg0 + (deg1 - deg0) * j / steps_a)
        return hits / total

    def rect_fraction(self, x0: float, y0: float, x1: float, y1: float) -> float:
        hits = total = 0
        step = 1 / PX_PER_MM
        y = y0
        while y <= y1:
            x = x0
            while x <= x1:
                total += 1
                hits += self.red(x, y)
                x += step
            y += step
        return hits / total


def make_truetype_subset(source: str, index: int, text: str, out: Path) -> Path:
    """A real TrueType (glyf, quadratic) font with `text`, converted from a CFF CJK font.

    This is fontTools' otf2ttf recipe: each cubic outline is approximated by quadratic
    splines (cu2qu, max error 1 font unit) and stored in glyf/loca.
    """
    from fontTools import subset
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    font = TTFont(source, fontNumber=index)
    options = subset.Options()
    options.layout_features = []
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)

    glyph_order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = newTable("glyf")
    glyf.glyphOrder = glyph_order
    glyf.glyphs = {}
    for name in glyph_order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["loca"] = newTable("loca")
    font["glyf"] = glyf
    del font["CFF "]
    if "VORG" in font:
        del font["VORG"]
    font["head"].glyphDataFormat = 0
    font["maxp"] = maxp = newTable("maxp")
    maxp.tableVersion = 0x00010000
    for attr in ("maxZones", "maxTwilightPoints", "maxStorage", "maxFunctionDefs",
                 "maxInstructionDefs", "maxStackElements", "maxSizeOfInstructions",
                 "maxComponentElements", "maxPoints", "maxContours", "maxCompositePoints",
                 "maxCompositeContours", "maxComponentDepth"):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = glyph_order
    font.sfntVersion = "\x00\x01\x00\x00"
    font.save(str(out))
    font.close()
    return out

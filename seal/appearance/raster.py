"""A small anti-aliased rasteriser for filled paths, in Pillow only (no poppler, no numpy).

Pillow fills single polygons but has no fill rules for compound paths, so each shape is
rasterised contour by contour into a winding-number image: a contour adds +1 or -1
(its orientation) to the pixels it encloses, counted from a base of 128.  The non-zero
rule then keeps pixels whose count differs from 128, the even-odd rule those whose count
is odd; glyph counters (holes) thus stay open whatever the font's contour directions or
overlaps.  Supersampling and a box filter give the anti-aliasing.
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence

from PIL import Image, ImageChops, ImageDraw

from .geometry import PathOps, flatten, signed_area

#: supersampling factor per axis, lowered for very large images to bound memory
MAX_SUPERSAMPLE = 8
_MAX_CANVAS = 8192
_BASE = 128
_NONZERO_LUT = [0 if v == _BASE else 255 for v in range(256)]
_EVENODD_LUT = [255 if (v - _BASE) % 2 else 0 for v in range(256)]


def rasterise(shapes: Sequence[tuple[PathOps, bool]], width_pt: float, height_pt: float,
              color: tuple[int, int, int], dpi: int) -> Image.Image:
    """RGBA image of the filled shapes ((path, even_odd) pairs in PDF points, y up)."""
    width_px = max(1, round(width_pt / 72 * dpi))
    height_px = max(1, round(height_pt / 72 * dpi))
    supersample = max(1, min(MAX_SUPERSAMPLE, _MAX_CANVAS // max(width_px, height_px)))
    ss_w, ss_h = width_px * supersample, height_px * supersample
    sx = ss_w / width_pt
    sy = ss_h / height_pt
    coverage = Image.new("L", (ss_w, ss_h), 0)
    for ops, even_odd in shapes:
        contours = [[(x * sx, (height_pt - y) * sy) for x, y in contour]
                    for contour in flatten(ops, tolerance=0.2 / sx)]
        _fill_shape(coverage, contours, even_odd)
    alpha = coverage.reduce(supersample) if supersample > 1 else coverage
    image = Image.new("RGBA", (width_px, height_px), (*color, 0))
    image.putalpha(alpha)
    return image


def _fill_shape(coverage: Image.Image, contours: list[list[tuple[float, float]]],
                even_odd: bool) -> None:
    if not contours:
        return
    xs = [x for c in contours for x, _ in c]
    ys = [y for c in contours for _, y in c]
    left = max(0, math.floor(min(xs)) - 1)
    top = max(0, math.floor(min(ys)) - 1)
    right = min(coverage.width, math.ceil(max(xs)) + 2)
    bottom = min(coverage.height, math.ceil(max(ys)) + 2)
    if right <= left or bottom <= top:
        return
    size = (right - left, bottom - top)
    winding = Image.new("L", size, _BASE)
    for contour in contours:
        area = signed_area(contour)
        if area == 0:
            continue
        mask = Image.new("L", size, 0)
        ImageDraw.Draw(mask).polygon([(x - left, y - top) for x, y in contour], fill=1)
        # y points down here, so a positive area is a clockwise contour on the page
        if area > 0:
            winding = ImageChops.add(winding, mask)
        else:
            winding = ImageChops.subtract(winding, mask)
    filled = winding.point(_EVENODD_LUT if even_odd else _NONZERO_LUT)
    box = (left, top, right, bottom)
    coverage.paste(ImageChops.lighter(coverage.crop(box), filled), box)


def png_bytes(image: Image.Image, dpi: int) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", dpi=(dpi, dpi), optimize=True)
    return out.getvalue()

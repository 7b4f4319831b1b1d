"""A seal picture supplied by an administrator as a PNG with transparency."""
from __future__ import annotations

import base64
import io
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

from PIL import Image, UnidentifiedImageError

from .drawing import MM
from .errors import AppearanceError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PIXELS = 25_000_000        # a 5000 × 5000 seal scan is more than enough
MIN_SIZE_MM, MAX_SIZE_MM = 10.0, 100.0


class PdfImage(NamedTuple):
    """The pieces of a PDF image XObject with a soft mask: 8 bits per component,
    `rgb` for /DeviceRGB (width·height·3 bytes), `alpha` for the /SMask in /DeviceGray
    (width·height bytes), rows top to bottom.  Colours are not premultiplied."""

    width: int
    height: int
    rgb: bytes
    alpha: bytes


@dataclass(frozen=True)
class ImageSeal:
    """An immutable PNG seal, `width_pt` × `height_pt` on the page."""

    width_pt: float
    height_pt: float
    pixel_width: int
    pixel_height: int
    _png: bytes = field(repr=False)

    def png(self) -> bytes:
        """The picture re-encoded as 8-bit RGBA PNG (ancillary chunks dropped)."""
        return self._png

    def pdf_image(self) -> PdfImage:
        image = Image.open(io.BytesIO(self._png))
        image.load()
        r, g, b, a = image.split()
        return PdfImage(image.width, image.height,
                        Image.merge("RGB", (r, g, b)).tobytes(), a.tobytes())

    def svg(self) -> str:
        data = base64.b64encode(self._png).decode("ascii")
        w, h = round(self.width_pt, 3), round(self.height_pt, 3)
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<svg xmlns="http://www.w3.org/2000/svg" '
                f'xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1" '
                f'width="{round(w / MM, 3)}mm" height="{round(h / MM, 3)}mm" '
                f'viewBox="0 0 {w} {h}">\n'
                f'<image width="{w}" height="{h}" preserveAspectRatio="none" '
                f'xlink:href="data:image/png;base64,{data}"/>\n</svg>\n')


def drawing_from_png(png: bytes, diameter_mm: float) -> ImageSeal:
    """Check and take an administrator's seal PNG; its longer side becomes `diameter_mm`.

    The PNG must have transparency (an alpha channel or a tRNS chunk) with at least one
    transparent and one visible pixel: an opaque picture would blank out the text under
    the seal, which is exactly what a seal must not do.
    """
    if not isinstance(png, (bytes, bytearray, memoryview)):
        raise TypeError("png must be bytes")
    png = bytes(png)
    if isinstance(diameter_mm, bool) or not isinstance(diameter_mm, (int, float)):
        raise TypeError("diameter_mm must be a number")
    if not MIN_SIZE_MM <= diameter_mm <= MAX_SIZE_MM:
        raise AppearanceError(f"seal size must be {MIN_SIZE_MM:g} to {MAX_SIZE_MM:g} mm",
                              field="diameter_mm", value=diameter_mm)
    if not png.startswith(PNG_SIGNATURE):
        raise AppearanceError("the seal picture is not a PNG file", field="png")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(png))
            if image.format != "PNG":
                raise AppearanceError("the seal picture is not a PNG file", field="png")
            if image.width * image.height > MAX_PIXELS:
                raise AppearanceError(
                    f"the seal picture is too large: {image.width}×{image.height} pixels",
                    field="png")
            image.load()
    except AppearanceError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise AppearanceError(f"the seal picture is not a readable PNG: {exc}",
                              field="png") from exc
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if not has_alpha:
        raise AppearanceError("the seal PNG has no transparency (no alpha channel); "
                              "export it with a transparent background", field="png")
    rgba = image.convert("RGBA")
    low, high = rgba.getchannel("A").getextrema()
    if high == 0:
        raise AppearanceError("the seal PNG is fully transparent", field="png")
    if low == 255:
        raise AppearanceError("the seal PNG has an alpha channel but no transparent pixel; "
                              "its background must be transparent", field="png")
    scale = diameter_mm * MM / max(rgba.width, rgba.height)
    out = io.BytesIO()
    rgba.save(out, format="PNG", optimize=True)
    return ImageSeal(width_pt=rgba.width * scale, height_pt=rgba.height * scale,
                     pixel_width=rgba.width, pixel_height=rgba.height, _png=out.getvalue())

"""Where a seal goes on a PDF page: placement values and page geometry.

Three placements (frozen values, checked on construction):

* `AtPosition(page, x_mm, y_mm)` — the seal's centre, in millimetres from the
  lower-left corner of the page *as displayed*: the visible box (CropBox,
  clipped to the MediaBox) wherever its origin lies, after the page's
  /Rotate.  A rotated page is handled by mapping the displayed point back to
  user space and by rotating the appearance with its form /Matrix, so the
  seal stands upright on screen and on paper whatever /Rotate says.
* `AnchorText(text, occurrence="last")` — centred over an occurrence of
  `text` in the document's text (for the last, a line that is the text alone wins) (found with PDFium, which reads CID fonts
  through their ToUnicode maps), placed so the text sits `below_centre_mm`
  below the seal's centre, as GB/T 9704 §7.3.5.1 wants the organisation's
  name and the date: pressed by the seal, slightly below its centre.
* `ExistingField(name)` — an existing empty signature field: the seal keeps
  its size and is centred on the field's widget rectangle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Union

from .pdf_errors import AnchorNotFound, PlacementError

__all__ = ["MM", "AtPosition", "AnchorText", "ExistingField", "Placement", "PageGeometry",
           "find_text"]

MM = 72 / 25.4  #: PDF points per millimetre


def _finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")


@dataclass(frozen=True)
class AtPosition:
    """The seal's centre at (x_mm, y_mm) from the displayed page's lower-left corner.

    `page` is 1-based; negative numbers count from the end (-1 = last page).
    """

    page: int
    x_mm: float
    y_mm: float

    def __post_init__(self) -> None:
        if isinstance(self.page, bool) or not isinstance(self.page, int) or self.page == 0:
            raise ValueError(f"page must be a non-zero integer (1-based, negative from the end), "
                             f"not {self.page!r}")
        _finite("x_mm", self.x_mm)
        _finite("y_mm", self.y_mm)


@dataclass(frozen=True)
class AnchorText:
    """Centre the seal over an occurrence of `text` in the document.

    `occurrence` is "last" (default: the signature line is at the end),
    "first", or a 1-based occurrence number.  Whitespace is ignored when
    matching, so text laid out with spaces between characters still matches.
    `below_centre_mm` is how far the text's centre sits below the seal's
    centre; None means a tenth of the seal's height (4.2 mm for a 42 mm seal).
    """

    text: str
    occurrence: Literal["last", "first"] | int = "last"
    below_centre_mm: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not "".join(self.text.split()):
            raise ValueError("anchor text must be a non-empty string")
        occ = self.occurrence
        if not (occ in ("last", "first") or
                (isinstance(occ, int) and not isinstance(occ, bool) and occ >= 1)):
            raise ValueError(f"occurrence must be 'last', 'first' or a number ≥ 1, not {occ!r}")
        if self.below_centre_mm is not None:
            _finite("below_centre_mm", self.below_centre_mm)


@dataclass(frozen=True)
class ExistingField:
    """Seal into the existing, empty signature field `name` (fully qualified)."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("field name must be a non-empty string")


Placement = Union[AtPosition, AnchorText, ExistingField]


# --------------------------------------------------------------------------- geometry

@dataclass(frozen=True)
class PageGeometry:
    """A page's visible box (user space) and rotation, and the maps between
    displayed coordinates (origin at the displayed lower-left corner) and
    user space."""

    llx: float
    lly: float
    urx: float
    ury: float
    rotate: int  # 0, 90, 180 or 270, clockwise as displayed

    @classmethod
    def from_boxes(cls, media_box, crop_box, rotate) -> "PageGeometry":
        mx0, my0, mx1, my1 = _normalise(media_box)
        if crop_box is not None:
            cx0, cy0, cx1, cy1 = _normalise(crop_box)
            mx0, my0, mx1, my1 = max(mx0, cx0), max(my0, cy0), min(mx1, cx1), min(my1, cy1)
        if mx1 <= mx0 or my1 <= my0:
            raise PlacementError("the page's visible box is empty")
        rot = int(rotate or 0) % 360
        if rot % 90:
            raise PlacementError(f"page rotation {rotate} is not a multiple of 90")
        return cls(mx0, my0, mx1, my1, rot)

    @property
    def display_size(self) -> tuple[float, float]:
        w, h = self.urx - self.llx, self.ury - self.lly
        return (h, w) if self.rotate in (90, 270) else (w, h)

    def to_user(self, xd: float, yd: float) -> tuple[float, float]:
        r = self.rotate
        if r == 0:
            return self.llx + xd, self.lly + yd
        if r == 90:
            return self.urx - yd, self.lly + xd
        if r == 180:
            return self.urx - xd, self.ury - yd
        return self.llx + yd, self.ury - xd

    def to_display(self, xu: float, yu: float) -> tuple[float, float]:
        r = self.rotate
        if r == 0:
            return xu - self.llx, yu - self.lly
        if r == 90:
            return yu - self.lly, self.urx - xu
        if r == 180:
            return self.urx - xu, self.ury - yu
        return self.ury - yu, xu - self.llx

    def display_rect_to_user(self, x0: float, y0: float, x1: float, y1: float
                             ) -> tuple[float, float, float, float]:
        (ax, ay), (bx, by) = self.to_user(x0, y0), self.to_user(x1, y1)
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)

    def user_rect_to_display(self, x0: float, y0: float, x1: float, y1: float
                             ) -> tuple[float, float, float, float]:
        (ax, ay), (bx, by) = self.to_display(x0, y0), self.to_display(x1, y1)
        return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)

    def appearance_matrix(self) -> tuple[float, float, float, float, float, float]:
        """Form /Matrix that turns an upright picture against the page's /Rotate,
        so it is upright when displayed (rotation by `rotate` degrees
        counter-clockwise in user space)."""
        return {0: (1, 0, 0, 1, 0, 0), 90: (0, 1, -1, 0, 0, 0),
                180: (-1, 0, 0, -1, 0, 0), 270: (0, -1, 1, 0, 0, 0)}[self.rotate]


def _normalise(box) -> tuple[float, float, float, float]:
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError) as exc:
        raise PlacementError("the page has a malformed MediaBox/CropBox") from exc
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


# --------------------------------------------------------------------------- text search

@dataclass(frozen=True)
class TextMatch:
    page_index: int                         # 0-based
    box: tuple[float, float, float, float]  # user space, union of the matched characters


def find_text(pdf: bytes | str, anchor: AnchorText) -> TextMatch:
    """The requested occurrence of the anchor text (whitespace ignored) in reading order.

    For "last", a line that reads exactly the anchor text wins over the text inside a longer line:
    the seal presses the organisation's signature line (发文机关署名), which is the name alone, not
    the 版记's "北京市测试局办公室 … 印发" after it.  Only when no line is the text alone is the last
    occurrence anywhere taken.  "first" and a numbered occurrence count every occurrence."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    wanted = "".join(anchor.text.split())
    matches: list[tuple[TextMatch, bool]] = []        # (match, whole line)
    stop_after = anchor.occurrence if isinstance(anchor.occurrence, int) else \
        (1 if anchor.occurrence == "first" else None)
    try:
        doc = pdfium.PdfDocument(pdf)
    except pdfium.PdfiumError as exc:
        raise PlacementError(f"cannot read the document's text: {exc}") from exc
    try:
        for page_index in range(len(doc)):
            page = doc[page_index]
            textpage = page.get_textpage()
            try:
                n = textpage.count_chars()
                kept: list[int] = []
                chars: list[str] = []
                line_of: list[int] = []               # the line of each kept character
                line = 0
                for i in range(n):
                    code = pdfium_c.FPDFText_GetUnicode(textpage.raw, i)
                    ch = chr(code) if 0 < code < 0x110000 else ""
                    if ch in ("\r", "\n"):
                        line += 1
                    elif ch and not ch.isspace():
                        kept.append(i)
                        chars.append(ch)
                        line_of.append(line)
                text = "".join(chars)
                start = text.find(wanted)
                while start >= 0:
                    end = start + len(wanted)
                    idx = kept[start:end]
                    boxes = [textpage.get_charbox(i) for i in idx]
                    whole = (line_of[start] == line_of[end - 1]
                             and (start == 0 or line_of[start - 1] != line_of[start])
                             and (end == len(text) or line_of[end] != line_of[end - 1]))
                    matches.append((TextMatch(page_index, (
                        min(b[0] for b in boxes), min(b[1] for b in boxes),
                        max(b[2] for b in boxes), max(b[3] for b in boxes))), whole))
                    if stop_after is not None and len(matches) >= stop_after:
                        return matches[stop_after - 1][0]
                    start = text.find(wanted, end)
            finally:
                textpage.close()
                page.close()
    finally:
        doc.close()
    if not matches or stop_after is not None:
        which = "" if anchor.occurrence in ("last", "first") else f" {anchor.occurrence} times"
        raise AnchorNotFound(f"the text {anchor.text!r} does not occur in the document{which}",
                             text=anchor.text, found=len(matches))
    lines = [m for m, whole in matches if whole] or [m for m, _ in matches]
    return lines[-1]

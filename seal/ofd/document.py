"""The parts of an OFD document that sealing needs: its pages (ID, content file, physical box)
and the text of its pages' TextObjects (for `--anchor`).

Coordinates are OFD's: millimetres, origin at the page's top-left, y downwards.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from . import xmlsafe
from .errors import OfdStructureError, OfdTooLarge
from .package import OfdPackage

__all__ = ["Page", "Box", "pages_of", "find_text", "TextMatch", "parse_box"]

Box = tuple[float, float, float, float]     # x, y, width, height (mm)
_A4: Box = (0.0, 0.0, 210.0, 297.0)


@dataclass(frozen=True)
class Page:
    index: int          # 0-based
    id: str             # the Page@ID that StampAnnot@PageRef names
    content: str        # package path of its Content.xml
    box: Box            # PhysicalBox


def parse_box(text: str | None) -> Box | None:
    if not text:
        return None
    try:
        values = [float(v) for v in text.split()]
    except ValueError:
        return None
    if len(values) != 4 or not all(math.isfinite(v) for v in values) or values[2] <= 0 or values[3] <= 0:
        return None
    return values[0], values[1], values[2], values[3]


def _area_box(element) -> Box | None:  # an ofd:PageArea / ofd:Area element
    if element is None:
        return None
    return parse_box((xmlsafe.find(element, "PhysicalBox").text if xmlsafe.find(element, "PhysicalBox")
                      is not None else None))


_AREA = re.compile(rb"<(?:\w+:)?Area\b.*?</(?:\w+:)?Area>", re.DOTALL)


def pages_of(package: OfdPackage, document: str) -> list[Page]:
    """The pages of the document whose Document.xml is at `document`, in order."""
    root = package.xml(document)
    if xmlsafe.local(root) != "Document":
        raise OfdStructureError(f"{document} is not a Document (its root is {xmlsafe.local(root) or 'nothing'}: "
                                "the reference loops or points at the wrong file)", file=document)
    common = xmlsafe.find(root, "CommonData")
    default = _area_box(xmlsafe.find(common, "PageArea")) if common is not None else None
    pages_el = xmlsafe.find(root, "Pages")
    entries = xmlsafe.findall(pages_el, "Page") if pages_el is not None else []
    if len(entries) > package.limits.max_pages:
        raise OfdTooLarge(f"the OFD has {len(entries)} pages (at most {package.limits.max_pages} are read)",
                          pages=len(entries))
    pages = []
    for index, entry in enumerate(entries):
        page_id = (entry.get("ID") or "").strip()
        loc = entry.get("BaseLoc")
        if not page_id or not loc:
            raise OfdStructureError(f"page {index + 1} of {document} has no ID or BaseLoc", file=document)
        content = package.resolve(loc, document)
        if not package.exists(content):
            raise OfdStructureError(f"page {index + 1} names {content}, which the package lacks", file=content)
        box = None
        # a page may set its own Area; read only its head (the Area comes first), never the whole page
        with package.open(content) as fh:
            head = fh.read(65536)
        match = _AREA.search(head)
        if match is not None:
            box = parse_box(_physical(match.group(0)))
        pages.append(Page(index, page_id, content, box or default or _A4))
    return pages


def _physical(area: bytes) -> str | None:
    m = re.search(rb"<(?:\w+:)?PhysicalBox>([^<]*)</", area)
    return m.group(1).decode("ascii", "replace") if m else None


# --------------------------------------------------------------------------- text

@dataclass(frozen=True)
class TextMatch:
    page_index: int
    box: Box            # union of the matched characters, page coordinates (mm, top-left origin)


def _deltas(text: str | None) -> list[float]:
    """DeltaX/DeltaY: numbers, where "g N v" stands for N times v."""
    if not text:
        return []
    tokens = text.split()
    out: list[float] = []
    i = 0
    while i < len(tokens) and len(out) < 100_000:
        if tokens[i] == "g" and i + 2 < len(tokens):
            try:
                count, value = int(float(tokens[i + 1])), float(tokens[i + 2])
            except ValueError:
                return out
            out.extend([value] * max(0, min(count, 100_000)))
            i += 3
            continue
        try:
            out.append(float(tokens[i]))
        except ValueError:
            return out
        i += 1
    return out


def _ctm(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        values = tuple(float(v) for v in text.split())
    except ValueError:
        return None
    return values if len(values) == 6 else None


def _page_chars(package: OfdPackage, page: Page) -> list[tuple[str, Box]]:
    """(character, box) of every TextObject of a page, in document order."""
    info = package.info(package.lookup(page.content) or page.content)
    if info.file_size > package.limits.max_xml_bytes:
        raise OfdTooLarge(f"the page content {page.content} is {info.file_size} bytes inflated (at most "
                          f"{package.limits.max_xml_bytes} are parsed): refused", file=page.content)
    chars: list[tuple[str, Box]] = []
    with package.open(page.content) as fh:
        for obj in xmlsafe.iterparse(fh, page.content, "TextObject"):
            boundary = parse_box(obj.get("Boundary")) or (0.0, 0.0, 0.0, 0.0)
            try:
                size = float(obj.get("Size") or 3.5)
            except ValueError:
                size = 3.5
            ctm = _ctm(obj.get("CTM"))
            x = y = 0.0
            for code in xmlsafe.findall(obj, "TextCode"):
                text = code.text or ""
                try:
                    x = float(code.get("X")) if code.get("X") is not None else x
                    y = float(code.get("Y")) if code.get("Y") is not None else y
                except ValueError:
                    continue
                dx, dy = _deltas(code.get("DeltaX")), _deltas(code.get("DeltaY"))
                cx, cy = x, y
                for i, ch in enumerate(text):
                    w = dx[i] if i < len(dx) else size
                    corners = [(cx, cy - size), (cx + w, cy)]
                    if ctm is not None:
                        a, b, c, d, e, f = ctm
                        corners = [(a * px + c * py + e, b * px + d * py + f) for px, py in corners]
                    (x0, y0), (x1, y1) = corners
                    chars.append((ch, (boundary[0] + min(x0, x1), boundary[1] + min(y0, y1),
                                       abs(x1 - x0), abs(y1 - y0))))
                    if i < len(text) - 1:
                        cx += dx[i] if i < len(dx) else size
                        cy += dy[i] if i < len(dy) else 0.0
                x, y = cx + (dx[len(text) - 1] if 0 < len(text) <= len(dx) else size), cy
    return chars


def find_text(package: OfdPackage, pages: list[Page], text: str, occurrence: str | int = "last") -> TextMatch | None:
    """The requested occurrence of `text` (whitespace ignored) in the pages' TextObjects."""
    wanted = "".join(text.split())
    found: list[TextMatch] = []
    stop = occurrence if isinstance(occurrence, int) else (1 if occurrence == "first" else None)
    for page in pages:
        chars = [(c, b) for c, b in _page_chars(package, page) if not c.isspace()]
        joined = "".join(c for c, _ in chars)
        start = joined.find(wanted)
        while start >= 0:
            boxes = [b for _, b in chars[start:start + len(wanted)]]
            x0 = min(b[0] for b in boxes)
            y0 = min(b[1] for b in boxes)
            x1 = max(b[0] + b[2] for b in boxes)
            y1 = max(b[1] + b[3] for b in boxes)
            found.append(TextMatch(page.index, (x0, y0, x1 - x0, y1 - y0)))
            if stop is not None and len(found) >= stop:
                return found[stop - 1]
            start = joined.find(wanted, start + len(wanted))
    if not found or stop is not None:
        return None
    return found[-1]

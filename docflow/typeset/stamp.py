"""Stamping a finished PDF with the number block (发文字号, and 签发人 for 上行文).

A body that arrives as a finished PDF is not laid out again: the registry's fields are
drawn, on page 1, exactly where the template's 文件式 layout puts them (two blank lines
below the 发文机关标志, see `layout`), as an overlay in the page's own content — the page
must be A4 portrait and that place empty (checked with PDFium).  The 成文日期 of such a
document is the drafter's.
"""
from __future__ import annotations

import io

from . import geometry as g
from .body import Fields, Manuscript
from .check import page_chars
from .errors import FitError, TypesetError
from .layout import Layout, SealPlace, Typeset, _Engine, _render
from .template import Template


def stamp_number_block(pdf: bytes, template: Template, *, organisation: str, fields: Fields,
                       upward: bool) -> Typeset:
    import pikepdf
    engine = _Engine(template, Manuscript(title="-", issuers=(organisation,), upward=upward), fields)
    header_bottom = engine.header_block(g.TOP + g.HEADER_BELOW_BLOCK_TOP, g.BLOCK_W)
    engine.pages = [[]]
    top = header_bottom + 2 * g.PITCH
    engine.number_block(top)
    engine.check_glyphs()
    rows = max(1, (len(fields.signers) + 1) // 2) if upward else 1
    try:
        pages = page_chars(pdf)
    except Exception as exc:  # PDFium's errors
        raise TypesetError(f"the body PDF cannot be read ({exc})") from None
    (w, h), chars = pages[0]
    if abs(w - g.PAGE_W) > 2 or abs(h - g.PAGE_H) > 2:
        raise FitError(f"page 1 of the body is {w / g.MM:.0f} × {h / g.MM:.0f} mm: the number block is stamped on "
                       "A4 portrait pages (210 × 297 mm) laid out per GB/T 9704", page=1)
    y_top, y_bottom = g.PAGE_H - top, g.PAGE_H - (top + rows * g.PITCH)
    taken = "".join(ch for ch, x, y in chars if g.LEFT <= x <= g.RIGHT and y_bottom <= y <= y_top)
    if taken:
        raise FitError(f"the number block's place on page 1 ({(top / g.MM):.0f}–{(top + rows * g.PITCH) / g.MM:.0f} "
                       f"mm from the top) already holds text ({taken[:20]!r}): leave the line below the "
                       "发文机关标志 empty for the registry", page=1, text=taken[:40])
    # the subsets hold every digit: the number (and year) changes with each document, and so its
    # subsets and their reportlab fonts are made once per organisation and signers, not once per
    # document (4 ms of a 20 ms registration; reportlab keeps every font it registered).  The
    # digits not drawn add about 1.4 KB to the registered PDF.
    for chars in engine.used.values():
        chars.update(dict.fromkeys("0123456789"))
    overlay = _render(engine, None)
    with pikepdf.open(io.BytesIO(pdf)) as doc, pikepdf.open(io.BytesIO(overlay)) as over:
        doc.pages[0].add_overlay(over.pages[0], pikepdf.Rectangle(0, 0, g.PAGE_W, g.PAGE_H))
        out = io.BytesIO()
        doc.save(out, deterministic_id=True)
        count = len(doc.pages)
    place = find_signature(pages, organisation)
    layout = Layout(pages=count, variant="file", seal_places=(place,) if place else (),
                    fields={k: tuple(v) for k, v in engine.boxes.items()},
                    fonts={r: f.to_dict() for r, f in engine.fonts.items()})
    return Typeset(out.getvalue(), layout)


def find_signature(pages: list, organisation: str) -> SealPlace | None:
    """The seal's place over the signature of a finished PDF: the last line that reads exactly the
    organisation's name (not the 版记's 印发机关, which only contains it), with the seal centred on it
    and the name and the date below the seal's centre as the typeset layout puts them."""
    target = "".join(organisation.split())
    for number in range(len(pages), 0, -1):
        _, chars = pages[number - 1]
        lines: dict[int, list[tuple[str, float, float]]] = {}
        for ch, x, y in chars:
            lines.setdefault(round(y / 3), []).append((ch, x, y))
        for key in sorted(lines):              # lowest line first: the last on the page
            row = sorted(lines[key], key=lambda c: c[1])
            if "".join(c[0] for c in row) == target:
                x = (row[0][1] + row[-1][1]) / 2
                y = sum(c[2] for c in row) / len(row)
                centre_y = y + g.NAME_BELOW_CENTRE
                return SealPlace(organisation, number, x / g.MM, centre_y / g.MM, g.SEAL_DIAMETER / g.MM)
    return None

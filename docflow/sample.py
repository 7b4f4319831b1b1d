"""A simple official-document PDF (GB/T 9704-like) with Chinese text, for demos and tests.

`make_document_pdf` lays out an A4 page set with the red 版头 (the organisation's
name + 文件), the 发文字号 when given, a red separator line, the title, 主送机关,
the body in 16 pt (3号) type, and — right-aligned as GB/T 9704 §7.3.5.1 wants —
the organisation's name centred above the 成文日期, which stands four characters
in from the right edge of the text block.  That is where a seal belongs: the
document flow's default placement anchors on the organisation's name.

The text is real text (not outlines): an embedded TrueType subset with a
ToUnicode map, so PDF readers and the seal's anchor search find it.  The CJK
font comes from fontconfig (a Song/serif face first); its glyphs are converted
to TrueType outlines with fontTools (reportlab embeds TrueType only).
Output is deterministic for the same input.
"""
from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
from functools import lru_cache
from typing import Sequence

from .errors import ElementError

MM = 72 / 25.4
PAGE_W, PAGE_H = 595.28, 841.89               # A4
LEFT, TEXT_W = 28 * MM, 156 * MM              # GB/T 9704 §5.2.1: 156 mm × 225 mm text block
TOP, TEXT_H = 37 * MM, 225 * MM
BODY_PT, LINE = 16.0, 28.9                    # 3号 type, 22 lines per page
CHARS_PER_LINE = 28
RED = (0.86, 0.08, 0.08)
_PROBE = "国文件局号日"


def _fc(pattern: str) -> list[tuple[str, int]]:
    if shutil.which("fc-match") is None:
        return []
    result = subprocess.run(["fc-match", "-s", "-f", "%{file}|%{index}\n", pattern], capture_output=True,
                            text=True, timeout=30, check=False)
    out = []
    for line in result.stdout.splitlines()[:8]:
        path, _, index = line.partition("|")
        if path and index.isdigit():
            out.append((path, int(index)))
    return out


@lru_cache(maxsize=1)
def _font_face() -> tuple[str, int]:
    """A CJK face (Song/serif first) that has the probe characters."""
    from fontTools.ttLib import TTFont
    for pattern in ("serif:lang=zh-cn", ":lang=zh-cn"):
        for path, index in _fc(pattern):
            try:
                font = TTFont(path, fontNumber=index, lazy=True)
            except Exception:  # not a font fontTools reads: try the next
                continue
            cmap = font.getBestCmap() or {}
            if all(ord(ch) in cmap for ch in _PROBE):
                return path, index
    from seal.appearance.fonts import find_cjk_face
    return find_cjk_face()


@lru_cache(maxsize=32)
def _subset_ttf(chars: str) -> bytes:
    """A TrueType-outline font with just `chars` (CFF outlines converted to quadratics)."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont

    path, index = _font_face()
    source = TTFont(path, fontNumber=index, lazy=True)
    cmap = source.getBestCmap() or {}
    glyph_set = source.getGlyphSet()
    upem = source["head"].unitsPerEm
    scale = 1000 / upem
    order, char_map, glyphs, advances = [".notdef"], {}, {".notdef": TTGlyphPen(None).glyph()}, {".notdef": 1000}
    missing = [ch for ch in chars if ord(ch) not in cmap and not ch.isspace()]
    if missing:
        raise ElementError(f"the document font has no glyph for {''.join(missing)!r}", characters="".join(missing))
    from fontTools.pens.transformPen import TransformPen
    for ch in chars:
        name = cmap.get(ord(ch))
        if name is None:
            continue
        if name not in glyphs:
            pen = TTGlyphPen(None)
            glyph_set[name].draw(TransformPen(Cu2QuPen(pen, max_err=1.0, reverse_direction=True),
                                              (scale, 0, 0, scale, 0, 0)))
            glyphs[name] = pen.glyph()
            order.append(name)
            advances[name] = round(source["hmtx"][name][0] * scale)
        char_map[ord(ch)] = name
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap(char_map)
    fb.setupGlyf(glyphs)
    glyf = fb.font["glyf"]
    fb.setupHorizontalMetrics({g: (advances[g], getattr(glyf[g], "xMin", 0)) for g in order})
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    # a family name per subset: reportlab keeps glyph assignments per PostScript name, so two subsets
    # sharing one name would lose the glyphs the first one did not have
    family = "YinxinDoc" + hashlib.sha256(chars.encode()).hexdigest()[:12]
    fb.setupNameTable({"familyName": family, "styleName": "Regular", "psName": f"{family}-Regular"})
    fb.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    fb.setupPost()
    out = io.BytesIO()
    fb.save(out)
    return out.getvalue()


def _wrap(text: str, width: int, indent: int = 0) -> list[str]:
    """Break a paragraph into lines of `width` characters; the first line indented `indent` characters."""
    text = text.strip()
    if not text:
        return [""]
    lines, first = [], True
    while text:
        room = width - (indent if first else 0)
        lines.append(("\u3000" * indent if first else "") + text[:room])
        text, first = text[room:], False
    return lines


def make_document_pdf(title: str, organisation: str, date: str, body_lines: Sequence[str], *,
                      doc_number: str | None = None, main_recipient: str | None = None,
                      attachments: Sequence[str] = ()) -> bytes:
    """A GB/T 9704-like official document: 版头, title, 主送, body paragraphs, 附件说明, and the
    organisation's name above the date at the bottom right of the last page.  Returns PDF bytes."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    if not title.strip() or not organisation.strip() or not date.strip():
        raise ElementError("a document needs a title, an organisation and a date")
    header = f"{organisation}文件"
    paragraphs = [p for p in body_lines]
    if len(attachments) == 1:
        attachment_lines = [f"\u3000\u3000附件：{attachments[0]}"]
    else:
        attachment_lines = [("\u3000\u3000附件：" if i == 1 else "\u3000" * 5) + f"{i}. {name}"
                            for i, name in enumerate(attachments, 1)]
    text = header + title + date + organisation + "".join(paragraphs) + (doc_number or "") + \
        (main_recipient or "") + "".join(attachment_lines) + "：—0123456789 \u3000"
    chars = "".join(sorted(set(text)))
    font_name = "YinxinDoc" + hashlib.sha256(chars.encode()).hexdigest()[:12]
    if font_name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(font_name, io.BytesIO(_subset_ttf(chars))))

    rows: list[str] = []
    if main_recipient:
        rows.append(f"{main_recipient}：")
    for p in paragraphs:
        rows.extend(_wrap(p, CHARS_PER_LINE, indent=2))
    if attachment_lines:
        rows.append("")
        rows.extend(attachment_lines)

    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=(PAGE_W, PAGE_H), invariant=1)
    c.setTitle(title)
    c.setAuthor(organisation)
    c.setCreator("yinxin docflow.sample")
    right = LEFT + TEXT_W
    top = PAGE_H - TOP
    bottom = top - TEXT_H
    page = 1

    def footer() -> None:
        c.setFillColorRGB(0, 0, 0)
        c.setFont(font_name, 14)
        c.drawCentredString(PAGE_W / 2, bottom - 14 * MM, f"— {page} —")

    # page 1: the red 版头, the 发文字号, the red line, the title
    c.setFillColorRGB(*RED)
    size = min(36.0, TEXT_W / max(len(header), 1))
    c.setFont(font_name, size)
    y = top - size
    c.drawCentredString(PAGE_W / 2, y, header)
    y -= 2 * LINE
    c.setFillColorRGB(0, 0, 0)
    if doc_number:
        c.setFont(font_name, BODY_PT)
        c.drawCentredString(PAGE_W / 2, y, doc_number)
    y -= 12
    c.setStrokeColorRGB(*RED)
    c.setLineWidth(1.2)
    c.line(LEFT, y, right, y)
    y -= 2 * LINE
    c.setFont(font_name, 22)
    for line in _wrap(title, 20):
        c.drawCentredString(PAGE_W / 2, y, line)
        y -= 36
    y -= LINE - 36 + 8
    # the signature block: org name centred over the date, the date four characters in from the right;
    # it needs 3 free lines above (the seal's top within one line of the body) and 2 for itself
    signature_space = 5 * LINE
    c.setFont(font_name, BODY_PT)
    for i, row in enumerate(rows):
        rows_left = len(rows) - i
        need = LINE + (signature_space if rows_left == 1 else 0)
        if y - need < bottom:
            footer()
            c.showPage()
            page += 1
            c.setFont(font_name, BODY_PT)
            y = top - BODY_PT
        c.drawString(LEFT, y, row)
        y -= LINE
    if not rows and y - signature_space < bottom:
        footer()
        c.showPage()
        page += 1
        y = top - BODY_PT
    y -= 2 * LINE
    c.setFont(font_name, BODY_PT)
    date_right = right - 4 * BODY_PT
    date_width = pdfmetrics.stringWidth(date, font_name, BODY_PT)
    centre = date_right - date_width / 2
    c.drawCentredString(centre, y, organisation)
    c.drawRightString(date_right, y - LINE, date)
    footer()
    c.showPage()
    c.save()
    return out.getvalue()

"""The GB/T 9704-2012 layout engine: a manuscript and the registry's fields, on the template's red header.

`typeset(template, manuscript, fields)` returns the PDF (PDF/A-2b, see `pdfa`) and the
`Layout`: how many pages, where each seal goes (§7.3.5.1: centred over the signing
organisation's name and the date, both slightly below its centre, its top within one
line of the body; joint documents one place per organisation in a row, the last over
the date), and the boxes of the registry's fields (发文字号, 签发人, 成文日期, 印发日期)
— which the sealing check uses to tell them from the signed-off text.

Placement, per element (depths from the page's top; cells are the 22 line cells of
`geometry`):

* 份号, 紧急程度 — block lines 1, 2 at the left edge (§7.2.1–7.2.3).
* 发文机关标志 — centred, its top 35 mm below the block's top (§7.2.4); joint documents
  stack the names with 文件 on their right, centred on them.
* 发文字号 — two blank lines below the header, centred; 上行文: one character in from
  the left, on the line of the (last) 签发人, who stands one character in from the right
  (§7.2.5–7.2.6).  The line is reserved while the fields are still empty.
* the red separator — 4 mm below the number, as wide as the block (§7.2.7).
* 标题 — 2号 小标宋, two blank lines below the separator, centred, broken into a
  trapezoid or diamond at word boundaries (§7.3.1).
* 主送 — one blank line below the title, flush left, ending in a full-width colon
  (§7.3.2); moved to the 版记 when it would leave no body line on the first page.
* 正文 — 3号 仿宋, paragraphs indented two characters, justified to the block; headings
  一、 in 黑体, （一） in 楷体, 1. and （1） in 仿宋 (§7.3.3); no line starts with closing
  punctuation or ends with opening punctuation.
* 附件说明 — one blank line below the body, indented two characters (§7.3.4).
* 署名, 成文日期 and the seal's place — two blank lines below the body, the date four
  characters in from the right, the name centred over it (§7.3.5.1); at least one body
  line stays on the signature's page.  附注 on the next line, indented two (§7.3.6).
* 附件 pages — each on a new page: 附件N in 黑体 on line 1, its title on line 3 (§7.3.7).
* 版记 — at the foot of the last page: 抄送 and 印发机关/印发日期 in 4号 仿宋 between
  thick first and last lines (the last on the block's bottom edge) with a thin line
  between (§7.4).
* page numbers — "— N —" in 4号 宋体, the dash 7 mm below the block, odd pages one
  character in from the right, even pages from the left (§7.5).
* 信函式 (§10.1): the header 30 mm from the page's top, red double lines 170 mm long 4 mm
  below it and 20 mm above the page's bottom, 发文字号 at the right under the first line,
  no page number on the first page, a 版记 of 抄送 only.  纪要式 (§10.3): the header
  XXX纪要, 出席/请假/列席 after the body.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from . import geometry as g
from .body import Block, Fields, Manuscript
from .errors import FitError, TypesetError
from .fonts import ROLE_NAMES, ResolvedFont, load_face, register, require_glyphs
from .template import Header, Template

NO_START = set("，。、；：？！）》」』】〕〉”’…—·%‰℃,.;:?!)]}")
NO_END = set("（《「『【〔〈“‘([{")
BLACK = (0.0, 0.0, 0.0)
CN_DIGITS = "零一二三四五六七八九"
WENZHONG = ("请示", "报告", "通知", "通报", "批复", "意见", "决定", "决议", "公告", "通告", "议案", "命令", "公报",
            "纪要", "函")


def chinese_number(n: int) -> str:
    if n < 10:
        return CN_DIGITS[n]
    if n < 20:
        return "十" + (CN_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return CN_DIGITS[n // 10] + "十" + (CN_DIGITS[n % 10] if n % 10 else "")
    raise TypesetError(f"more than 99 headings of one level ({n})")


# --------------------------------------------------------------------------- results

@dataclass(frozen=True)
class Box:
    """A rectangle on a page, in millimetres from the page's lower-left corner."""

    page: int
    x0: float
    y0: float
    x1: float
    y1: float

    def to_dict(self) -> dict[str, Any]:
        return {"page": self.page, "x0": round(self.x0, 3), "y0": round(self.y0, 3), "x1": round(self.x1, 3),
                "y1": round(self.y1, 3)}


@dataclass(frozen=True)
class SealPlace:
    """Where a seal goes: its centre in millimetres from the page's lower-left corner."""

    organisation: str
    page: int
    x_mm: float
    y_mm: float
    diameter_mm: float = 42.0

    def to_dict(self) -> dict[str, Any]:
        return {"organisation": self.organisation, "page": self.page, "x_mm": round(self.x_mm, 3),
                "y_mm": round(self.y_mm, 3), "diameter_mm": self.diameter_mm}


@dataclass(frozen=True)
class Layout:
    pages: int
    variant: str
    seal_places: tuple[SealPlace, ...]
    fields: Mapping[str, tuple[Box, ...]]          # doc_number | signers | date | printed_on
    fonts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def seal_place(self, organisation: str) -> SealPlace | None:
        return next((s for s in self.seal_places if s.organisation == organisation), None)

    def to_dict(self) -> dict[str, Any]:
        return {"pages": self.pages, "variant": self.variant,
                "seal_places": [s.to_dict() for s in self.seal_places],
                "fields": {k: [b.to_dict() for b in v] for k, v in self.fields.items()},
                "fonts": {k: dict(v) for k, v in self.fonts.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Layout":
        return cls(pages=data["pages"], variant=data["variant"],
                   seal_places=tuple(SealPlace(**s) for s in data["seal_places"]),
                   fields={k: tuple(Box(**b) for b in v) for k, v in data["fields"].items()},
                   fonts=data.get("fonts", {}))


@dataclass(frozen=True)
class Typeset:
    pdf: bytes
    layout: Layout


# --------------------------------------------------------------------------- drawing operations

@dataclass
class _Text:
    x: float
    depth: float            # baseline
    role: str
    size: float
    text: str
    cs: float = 0.0         # character spacing
    colour: tuple[float, float, float] = BLACK
    scale: float = 1.0      # horizontal


@dataclass
class _Rule:
    x0: float
    x1: float
    depth: float            # centre of the stroke
    width: float
    colour: tuple[float, float, float]


@dataclass
class _Image:
    name: str
    x: float
    depth: float            # top edge
    w: float
    h: float


Seg = tuple[str, str]       # (role, text)


@dataclass
class _Line:
    """One cell of flowing text: segments placed at x, all of one size."""

    parts: list[tuple[float, Sequence[Seg], float]] = field(default_factory=list)   # (x, runs, char spacing)
    size: float = g.BODY
    blank: bool = False
    field_name: str | None = None


@dataclass
class _Group:
    """Cells kept on one page with the line before them (the signature block)."""

    cells: int
    draw: Callable[[int, float], None]     # (page index, depth of the first cell's top)


class _Engine:
    def __init__(self, template: Template, m: Manuscript, f: Fields) -> None:
        self.t, self.m, self.f = template, m, f
        self.fonts: dict[str, ResolvedFont] = template.resolve_fonts()
        self.faces = {r: load_face(rf.path, rf.index) for r, rf in self.fonts.items()}
        self.pages: list[list[Any]] = [[]]
        self.boxes: dict[str, list[Box]] = {}
        self.seals: list[SealPlace] = []
        self.header: Header = template.header(m.variant)
        self.red = template.colour

    # ---- measuring
    def w(self, role: str, ch: str, size: float) -> float:
        return self.faces[role].advance(ch) * size / 1000.0

    def width(self, runs: Sequence[Seg], size: float, cs: float = 0.0) -> float:
        n = sum(len(t) for _, t in runs)
        return sum(self.w(r, ch, size) for r, t in runs for ch in t) + cs * max(n - 1, 0)

    # ---- drawing helpers
    def text(self, page: int, x: float, depth: float, role: str, size: float, text: str, cs: float = 0.0,
             colour=BLACK, scale: float = 1.0) -> None:
        if text:
            self.pages[page].append(_Text(x, depth, role, size, text, cs, colour, scale))

    def runs_at(self, page: int, x: float, depth: float, runs: Sequence[Seg], size: float, cs: float) -> float:
        for role, t in runs:
            self.text(page, x, depth, role, size, t, cs)
            x += sum(self.w(role, ch, size) for ch in t) + cs * len(t)
        return x

    def box(self, name: str, page: int, x0: float, x1: float, cell_top: float, size: float) -> None:
        top = cell_top + (g.PITCH - size) / 2
        pad = 0.6 * g.MM
        self.boxes.setdefault(name, []).append(Box(page + 1, (x0 - pad) / g.MM, (g.PAGE_H - top - size - pad) / g.MM,
                                                   (x1 + pad) / g.MM, (g.PAGE_H - top + pad) / g.MM))

    # ---- breaking text into lines
    def break_lines(self, chars: Sequence[tuple[str, str]], size: float, tracking: float, avail_first: float,
                    avail: float, justify: bool = True) -> list[tuple[list[tuple[str, str]], float, bool]]:
        """[(chars of the line, character spacing, last line?)]"""
        out = []
        i, n, first = 0, len(chars), True
        while i < n:
            room = avail_first if first else avail
            j, width = i, 0.0
            while j < n:
                new = width + self.w(chars[j][0], chars[j][1], size) + (tracking if j > i else 0.0)
                if new > room + 0.01:
                    break
                width, j = new, j + 1
            if j == i:
                j = i + 1
            if j < n:
                k = j
                while k > i + 1 and (chars[k][1] in NO_START or chars[k - 1][1] in NO_END
                                     or (chars[k][1].isascii() and chars[k][1].isalnum()
                                         and chars[k - 1][1].isascii() and chars[k - 1][1].isalnum())):
                    k -= 1
                if k > i:
                    j = k
            line = list(chars[i:j])
            last = j >= n
            if justify and not last and len(line) > 1:
                natural = sum(self.w(r, ch, size) for r, ch in line)
                cs = (room - natural) / (len(line) - 1)
            else:
                cs = tracking
            out.append((line, cs, last))
            i, first = j, False
        return out

    @staticmethod
    def runs(chars: Sequence[tuple[str, str]]) -> list[Seg]:
        out: list[Seg] = []
        for role, ch in chars:
            if out and out[-1][0] == role:
                out[-1] = (role, out[-1][1] + ch)
            else:
                out.append((role, ch))
        return out

    def paragraph(self, chars: Sequence[tuple[str, str]], *, indent: float = 2 * g.CHAR, hang: float = 0.0,
                  size: float = g.BODY, tracking: float = g.TRACKING, left: float = g.LEFT,
                  right: float = g.RIGHT, justify: bool = True) -> list[_Line]:
        width = right - left
        lines = []
        for k, (line, cs, _) in enumerate(self.break_lines(chars, size, tracking, width - indent, width - hang,
                                                          justify)):
            lines.append(_Line([(left + (indent if k == 0 else hang), self.runs(line), cs)], size))
        return lines

    # ---- page 1 of 文件式 and 纪要式: header, number block, red line
    def header_block(self, top: float, width_limit: float) -> float:
        """Draw the 发文机关标志 with its top edge at `top`; returns the depth of its bottom edge."""
        h = self.header
        if h.image:
            return self.header_image(top)
        text = h.text or "{organisation}"
        size = h.size_pt
        issuers = self.m.issuers
        if len(issuers) == 1 or "{organisation}" not in text:
            line = text.replace("{organisation}", issuers[0])
            wd = self.width([("xiaobiaosong", line)], size) * h.scale
            if wd > width_limit + 0.01:
                raise FitError(f"the 发文机关标志 {line!r} is {wd / g.MM:.1f} mm wide at {size:g} pt, more than the "
                               f"{width_limit / g.MM:.0f} mm the page allows: shorten it, or give the template a "
                               "smaller size_pt or a scale below 1", width_mm=round(wd / g.MM, 1),
                               limit_mm=round(width_limit / g.MM))
            x = (g.PAGE_W - wd) / 2
            self.text(0, x, top + g.ASCENT * size, "xiaobiaosong", size, line, 0.0, self.red, h.scale)
            return top + size
        # joint documents: the names stacked, the suffix (文件) on their right, centred on them
        prefix, _, suffix = text.partition("{organisation}")
        names = [prefix + n for n in issuers]
        widths = [self.width([("xiaobiaosong", n)], size) * h.scale for n in names]
        name_w = max(widths)
        suffix_w = self.width([("xiaobiaosong", suffix)], size) * h.scale
        gap = size * 0.5 if suffix else 0.0
        total = name_w + gap + suffix_w
        if total > width_limit + 0.01:
            raise FitError(f"the joint 发文机关标志 is {total / g.MM:.1f} mm wide at {size:g} pt, more than the "
                           f"{width_limit / g.MM:.0f} mm the page allows", width_mm=round(total / g.MM, 1))
        x = (g.PAGE_W - total) / 2
        pitch = size * 1.2
        for k, (name, wd) in enumerate(zip(names, widths)):
            cs = (name_w - wd) / (len(name) - 1) / h.scale if len(name) > 1 else 0.0
            self.text(0, x, top + k * pitch + g.ASCENT * size, "xiaobiaosong", size, name, cs, self.red, h.scale)
        bottom = top + (len(names) - 1) * pitch + size
        if suffix:
            mid = (top + bottom) / 2
            self.text(0, x + name_w + gap, mid - size / 2 + g.ASCENT * size, "xiaobiaosong", size, suffix, 0.0,
                      self.red, h.scale)
        return bottom

    def header_image(self, top: float) -> float:
        h = self.header
        data = self.t.files[h.image]  # type: ignore[index]
        w_pt, h_pt = _image_size(h.image, data)  # type: ignore[arg-type]
        if h.width_mm and h.height_mm:
            w, hh = h.width_mm * g.MM, h.height_mm * g.MM
        elif h.width_mm:
            w = h.width_mm * g.MM
            hh = w * h_pt / w_pt
        else:
            hh = (h.height_mm or 20) * g.MM
            w = hh * w_pt / h_pt
        limit = g.LETTER_LINE_LENGTH if self.m.variant == "letter" else g.BLOCK_W
        if w > limit + 0.01:
            raise FitError(f"the header image {h.image} is {w / g.MM:.1f} mm wide, more than the {limit / g.MM:.0f} mm "
                           "the page allows", width_mm=round(w / g.MM, 1))
        self.pages[0].append(_Image(h.image, (g.PAGE_W - w) / 2, top, w, hh))  # type: ignore[arg-type]
        return top + hh

    def left_marks(self) -> list[tuple[str, str]]:
        """份号 and 紧急程度 (密级 is always 无: classified documents never enter), top to bottom."""
        marks = []
        if self.m.copy_number:
            marks.append(("fangsong", self.m.copy_number.zfill(6)))
        if self.m.urgency:
            marks.append(("heiti", self.m.urgency))
        return marks

    def number_block(self, cell_top: float) -> float:
        """发文字号 (and 签发人 for 上行文) on the line(s) from `cell_top`; returns the em bottom of the last."""
        f, size = self.f, g.BODY
        upward = self.m.upward and self.m.variant == "file"
        if upward and f.signers:
            pairs = [f.signers[i:i + 2] for i in range(0, len(f.signers), 2)]
            label = "签发人："
            label_w = self.width([("fangsong", label)], size, g.TRACKING) + g.TRACKING
            name_w = max(self.width([("kaiti", n)], size, g.TRACKING) for n in f.signers)
            gap = g.CHAR
            line_w = label_w + len(pairs[0]) * name_w + (len(pairs[0]) - 1) * gap
            x0 = g.RIGHT - g.CHAR - line_w
            for k, pair in enumerate(pairs):
                top = cell_top + k * g.PITCH
                base = g.baseline(top, size)
                if k == 0:
                    self.text(0, x0, base, "fangsong", size, label, g.TRACKING)
                for j, name in enumerate(pair):
                    self.text(0, x0 + label_w + j * (name_w + gap), base, "kaiti", size, name, g.TRACKING)
                self.box("signers", 0, x0, g.RIGHT - g.CHAR, top, size)
            cell_top += (len(pairs) - 1) * g.PITCH
        if f.doc_number:
            wd = self.width([("fangsong", f.doc_number)], size, g.TRACKING)
            x = g.LEFT + g.CHAR if upward else (g.PAGE_W - wd) / 2
            self.text(0, x, g.baseline(cell_top, size), "fangsong", size, f.doc_number, g.TRACKING)
            self.box("doc_number", 0, x, x + wd, cell_top, size)
        return cell_top + (g.PITCH + size) / 2

    def title_lines(self, title: str, size: float, limit: float) -> list[str]:
        role = "xiaobiaosong"
        total = self.width([(role, title)], size)
        if total <= limit:
            return [title]
        n = 2
        while total / n > limit and n < 6:
            n += 1
        best: tuple[float, list[str]] | None = None
        for cut in _cuts(len(title), n):
            parts = [title[a:b] for a, b in zip((0,) + cut, cut + (len(title),))]
            widths = [self.width([(role, p)], size) for p in parts]
            if max(widths) > limit + 0.01:
                continue
            score = _title_score(title, cut, widths, size)
            if best is None or score < best[0]:
                best = (score, parts)
        if best is None:
            raise FitError(f"the title does not break into {n} lines of at most {limit / g.MM:.0f} mm", field="title")
        return best[1]

    # ---- flowing text
    def body_lines(self, blocks: Sequence[Block]) -> list[_Line]:
        counters = [0, 0, 0, 0]
        out: list[_Line] = []
        for b in blocks:
            if b.kind == "p":
                out += self.paragraph([("fangsong", ch) for ch in b.text])
                continue
            level = int(b.kind[1])
            counters[level - 1] += 1
            for k in range(level, 4):
                counters[k] = 0
            n = counters[level - 1]
            number = {1: f"{chinese_number(n)}、", 2: f"（{chinese_number(n)}）", 3: f"{n}.", 4: f"（{n}）"}[level]
            role = {1: "heiti", 2: "kaiti"}.get(level, "fangsong")
            text = number + b.text
            head, sep, rest = text.partition("。")
            if sep and rest:
                chars = [(role, ch) for ch in head + sep] + [("fangsong", ch) for ch in rest]
            else:
                chars = [(role, ch) for ch in text]
            out += self.paragraph(chars)
        return out

    def hanging(self, label: Sequence[Seg], items: Sequence[str], *, size: float = g.BODY,
                tracking: float = g.TRACKING, left: float = g.LEFT, right: float = g.RIGHT, indent: float = 0.0,
                sep: str = "，", end: str = "") -> list[_Line]:
        """`label` then the items joined, continuation lines aligned after the label."""
        label_w = self.width(label, size, tracking) + tracking
        chars = [("fangsong", ch) for ch in sep.join(items) + end]
        width = right - left - indent - label_w
        lines = []
        for k, (line, cs, _) in enumerate(self.break_lines(chars, size, tracking, width, width, justify=True)):
            parts: list[tuple[float, Sequence[Seg], float]] = []
            if k == 0:
                parts.append((left + indent, list(label), tracking))
            parts.append((left + indent + label_w, self.runs(line), cs))
            lines.append(_Line(parts, size))
        return lines

    def attachment_note(self) -> list[_Line]:
        names = self.m.declared()
        if not names:
            return []
        label = [("fangsong", "附件：")]
        x = g.LEFT + 2 * g.CHAR
        label_w = self.width(label, g.BODY, g.TRACKING) + g.TRACKING
        if len(names) == 1:
            return self.hanging(label, names, indent=2 * g.CHAR)
        out = []
        for k, name in enumerate(names, 1):
            num = f"{k}."
            num_w = self.width([("fangsong", num)], g.BODY, g.TRACKING) + g.TRACKING
            body = self.break_lines([("fangsong", ch) for ch in name], g.BODY, g.TRACKING,
                                    g.RIGHT - x - label_w - num_w, g.RIGHT - x - label_w - num_w)
            for j, (line, cs, _) in enumerate(body):
                parts: list[tuple[float, Sequence[Seg], float]] = []
                if k == 1 and j == 0:
                    parts.append((x, label, g.TRACKING))
                if j == 0:
                    parts.append((x + label_w, [("fangsong", num)], g.TRACKING))
                parts.append((x + label_w + num_w, self.runs(line), cs))
                out.append(_Line(parts, g.BODY))
        return out

    def attendance(self) -> list[_Line]:
        out: list[_Line] = []
        for label, names in (("出席", self.m.present), ("请假", self.m.absent), ("列席", self.m.attending)):
            if names:
                out += self.hanging([("heiti", label + "："), ], names, indent=2 * g.CHAR)
        return out

    # ---- the signature block (§7.3.5.1) and 附注
    def signature(self) -> _Group:
        issuers = self.m.issuers
        size = g.BODY
        date = self.f.date
        note_lines = []
        if self.m.note:
            note = self.m.note if self.m.note.startswith(("（", "(")) else f"（{self.m.note}）"
            note_lines = self.paragraph([("fangsong", ch) for ch in note])
        cells = 2 + 2 + max(1, len(note_lines))
        date_w = self.width([("fangsong", date or "0000年00月00日")], size, g.TRACKING)
        date_right = g.RIGHT - 4 * g.CHAR
        centre = date_right - date_w / 2
        spacing = g.SEAL_DIAMETER + g.SEAL_GAP
        centres = [centre - (len(issuers) - 1 - k) * spacing for k in range(len(issuers))]
        if centres[0] - g.SEAL_DIAMETER / 2 < g.LEFT - 0.01:
            raise FitError(f"{len(issuers)} joint organisations' seals do not fit in one row of the text block "
                           "(at most 3)", issuers=list(issuers))

        def draw(page: int, top: float) -> None:
            name_top = top + 2 * g.PITCH
            boundary = name_top + g.PITCH
            for org, cx in zip(issuers, centres):
                wd = self.width([("fangsong", org)], size, g.TRACKING)
                self.text(page, cx - wd / 2, g.baseline(name_top, size), "fangsong", size, org, g.TRACKING)
                cy = name_top + g.PITCH / 2 + g.NAME_BELOW_CENTRE
                self.seals.append(SealPlace(org, page + 1, cx / g.MM, (g.PAGE_H - cy) / g.MM,
                                            round(g.SEAL_DIAMETER / g.MM, 3)))
            if date:
                self.text(page, date_right - date_w, g.baseline(boundary, size), "fangsong", size, date, g.TRACKING)
                self.box("date", page, date_right - date_w, date_right, boundary, size)
            for k, line in enumerate(note_lines):
                self.place(line, page, boundary + (1 + k) * g.PITCH)

        return _Group(cells, draw)

    def place(self, line: _Line, page: int, cell_top: float) -> None:
        base = g.baseline(cell_top, line.size)
        for x, runs, cs in line.parts:
            self.runs_at(page, x, base, runs, line.size, cs)

    # ---- pagination
    def flow(self, items: list[Any], page: int, top: float, limit: Callable[[int], float]) -> tuple[int, float]:
        """Place lines (and at most one group, kept with the line before it) from (page, top)."""
        placed: list[tuple[int, float, _Line]] = []
        for item in items:
            if isinstance(item, _Group):
                need = item.cells * g.PITCH
                if top + need > limit(page) + 0.01:
                    # move the last body line with the group to the next page
                    while placed and placed[-1][2].blank:
                        placed.pop()
                    page, top = self.new_page()
                    if placed:
                        _, _, last = placed.pop()
                        placed.append((page, top, last))
                        top += g.PITCH
                for pg, tp, ln in placed:
                    self.place(ln, pg, tp)
                placed = []
                item.draw(page, top)
                top += need
                continue
            if item.blank and top <= self.page_top(page) + 0.01:
                continue            # no blank line at the head of a page
            if top + g.PITCH > limit(page) + 0.01:
                page, top = self.new_page()
                if item.blank:
                    continue
            placed.append((page, top, item))
            top += g.PITCH
        for pg, tp, ln in placed:
            if not ln.blank:
                self.place(ln, pg, tp)
        return page, top

    def page_top(self, page: int) -> float:
        return self._first_top if page == 0 else g.TOP

    def new_page(self) -> tuple[int, float]:
        self.pages.append([])
        return len(self.pages) - 1, g.TOP

    # ---- the whole document
    def run(self) -> None:
        m = self.m
        letter = m.variant == "letter"
        if letter:
            flow_top = self.letter_first_page()
        else:
            for k, (role, mark) in enumerate(self.left_marks()):
                self.text(0, g.LEFT, g.baseline(g.TOP + k * g.PITCH, g.BODY), role, g.BODY, mark, g.TRACKING)
            header_bottom = self.header_block(g.TOP + g.HEADER_BELOW_BLOCK_TOP, g.BLOCK_W)
            number_top = header_bottom + 2 * g.PITCH
            number_bottom = self.number_block(number_top)
            rule = number_bottom + g.RED_LINE_BELOW_NUMBER
            self.pages[0].append(_Rule(g.LEFT, g.RIGHT, rule, self.t.separator_mm * g.MM, self.red))
            flow_top = rule + 2 * g.PITCH
        # the title
        tlines = self.title_lines(m.title, g.TITLE, g.BLOCK_W)
        for k, tl in enumerate(tlines):
            wd = self.width([("xiaobiaosong", tl)], g.TITLE)
            self.text(0, (g.PAGE_W - wd) / 2, g.baseline(flow_top + k * g.PITCH, g.TITLE), "xiaobiaosong", g.TITLE, tl)
        top = flow_top + (len(tlines) + 1) * g.PITCH
        self._first_top = top
        limit = self.limit
        items: list[Any] = []
        main_to = list(m.main_recipients)
        main_lines = self.paragraph([("fangsong", ch) for ch in "、".join(main_to) + "："], indent=0.0) if main_to \
            else []
        to_record = False
        if main_lines and top + (len(main_lines) + 1) * g.PITCH > limit(0) + 0.01:
            main_lines, to_record = [], True        # §7.3.2: too many to leave a body line: into the 版记
        items += main_lines
        body = self.body_lines(m.blocks)
        if not body:
            raise TypesetError("the body (正文) is empty: GB/T 9704 wants it on the first page", field="body")
        items += body
        note = self.attachment_note()
        if note:
            items += [_Line(blank=True)] + note
        att = self.attendance()
        if att:
            items += [_Line(blank=True)] + att
        items.append(self.signature())
        page, top = self.flow(items, 0, top, limit)
        end_bottom = top + 0.0
        seal_bottom = max((g.PAGE_H - s.y_mm * g.MM + s.diameter_mm * g.MM / 2 for s in self.seals
                           if s.page == page + 1), default=0.0)
        end_bottom = max(end_bottom, seal_bottom)
        # attachment pages
        declared = m.declared()
        for att_page in m.inline:
            page, _ = self.new_page()
            number = declared.index(att_page.name) + 1
            label = "附件" if len(declared) == 1 else f"附件{number}"
            self.text(page, g.LEFT, g.baseline(g.TOP, g.BODY), "heiti", g.BODY, label, g.TRACKING)
            t_lines = self.title_lines(att_page.name, g.TITLE, g.BLOCK_W)
            for k, tl in enumerate(t_lines):
                wd = self.width([("xiaobiaosong", tl)], g.TITLE)
                self.text(page, (g.PAGE_W - wd) / 2, g.baseline(g.TOP + (2 + k) * g.PITCH, g.TITLE), "xiaobiaosong",
                          g.TITLE, tl)
            start = g.TOP + (3 + len(t_lines) + 1) * g.PITCH
            lines = self.body_lines(att_page.blocks)
            page, end_bottom = self.flow(lines, page, start, limit)
        self.record(end_bottom, main_to if to_record else [])
        self.page_numbers()

    def letter_first_page(self) -> float:
        h = self.header
        header_bottom = self.header_block(g.LETTER_HEADER_TOP, g.LETTER_LINE_LENGTH)
        x0 = (g.PAGE_W - g.LETTER_LINE_LENGTH) / 2
        x1 = x0 + g.LETTER_LINE_LENGTH
        thick, thin, gap = 2.0, 0.75, 1.5
        y = header_bottom + 4 * g.MM
        self.pages[0].append(_Rule(x0, x1, y + thick / 2, thick, self.red))
        self.pages[0].append(_Rule(x0, x1, y + thick + gap + thin / 2, thin, self.red))
        line_bottom = y + thick + gap + thin
        yb = g.PAGE_H - g.LETTER_BOTTOM_LINE
        self.pages[0].append(_Rule(x0, x1, yb - thick - gap - thin / 2, thin, self.red))
        self.pages[0].append(_Rule(x0, x1, yb - thick / 2, thick, self.red))
        self._letter_limit = yb - thick - gap - thin - 7 / 8 * g.BODY + (g.PITCH - g.BODY) / 2
        first_em = line_bottom + 7 / 8 * g.BODY
        cell0 = first_em - (g.PITCH - g.BODY) / 2
        marks = self.left_marks()
        for k, (role, mark) in enumerate(marks):
            self.text(0, g.LEFT, g.baseline(cell0 + k * g.PITCH, g.BODY), role, g.BODY, mark, g.TRACKING)
        last_cell = cell0 + max(len(marks) - 1, 0) * g.PITCH
        if self.f.doc_number:
            wd = self.width([("fangsong", self.f.doc_number)], g.BODY, g.TRACKING)
            self.text(0, g.RIGHT - wd, g.baseline(last_cell, g.BODY), "fangsong", g.BODY, self.f.doc_number,
                      g.TRACKING)
            self.box("doc_number", 0, g.RIGHT - wd, g.RIGHT, last_cell, g.BODY)
        del h
        return last_cell + 3 * g.PITCH

    def limit(self, page: int) -> float:
        if page == 0 and self.m.variant == "letter":
            return self._letter_limit
        return g.BOTTOM

    def record(self, content_bottom: float, main_to: Sequence[str]) -> None:
        """The 版记 at the foot of the last page (a new page if the content reaches too low)."""
        size = g.SMALL
        left, right = g.LEFT + size, g.RIGHT - size
        rows: list[_Line] = []
        if main_to:
            rows += self.hanging([("fangsong", "主送：")], main_to, size=size, tracking=0.0, left=left, right=right,
                                 sep="，", end="。")
        if self.m.copy_to:
            rows += self.hanging([("fangsong", "抄送：")], self.m.copy_to, size=size, tracking=0.0, left=left,
                                 right=right, sep="，", end="。")
        letter = self.m.variant == "letter"
        copy_rows = len(rows)
        if not letter:
            rows.append(_Line([], size))       # 印发机关 and 印发日期, drawn below
        if not rows:
            return
        need = len(rows) * g.PITCH
        page = len(self.pages) - 1
        bottom = self.limit(page) if letter and page == 0 else g.BOTTOM
        if content_bottom > bottom - need - 0.01:
            page, _ = self.new_page()
            bottom = g.BOTTOM
        top = bottom - need
        for k, row in enumerate(rows):
            self.place(row, page, top + k * g.PITCH)
        if letter:
            return
        office = (self.m.printing_office or self.t.printing_office).replace("{organisation}", self.m.issuers[0])
        cell = top + copy_rows * g.PITCH
        base = g.baseline(cell, size)
        self.text(page, left, base, "fangsong", size, office)
        if self.f.printed_on:
            text = f"{self.f.printed_on}印发"
            wd = self.width([("fangsong", text)], size)
            self.text(page, right - wd, base, "fangsong", size, text)
            self.box("printed_on", page, right - wd, right, cell, size)
        thick, thin = 0.35 * g.MM, 0.25 * g.MM
        self.pages[page].append(_Rule(g.LEFT, g.RIGHT, top + thick / 2, thick, BLACK))
        if copy_rows:
            self.pages[page].append(_Rule(g.LEFT, g.RIGHT, cell, thin, BLACK))
        self.pages[page].append(_Rule(g.LEFT, g.RIGHT, bottom - thick / 2, thick, BLACK))

    def page_numbers(self) -> None:
        size = g.SMALL
        for k in range(len(self.pages)):
            if k == 0 and self.m.variant == "letter":
                continue
            text = f"— {k + 1} —"
            wd = self.width([("songti", text)], size)
            x = g.RIGHT - size - wd if k % 2 == 0 else g.LEFT + size
            centre = g.BOTTOM + g.PAGE_NUMBER_BELOW_BLOCK
            self.text(k, x, centre - size / 2 + g.ASCENT * size, "songti", size, text)

    # ---- checks before drawing
    def check_glyphs(self) -> None:
        used: dict[str, dict[str, None]] = {}         # characters per role, in order of appearance
        for page in self.pages:
            for op in page:
                if isinstance(op, _Text):
                    used.setdefault(op.role, {}).update(dict.fromkeys(op.text))
        for role, chars in used.items():
            require_glyphs(self.faces[role], role, list(chars), f"text set in {ROLE_NAMES.get(role, role)}")
        self.used = used


def _cuts(length: int, n: int) -> list[tuple[int, ...]]:
    if n == 2:
        return [(a,) for a in range(1, length)]
    if n == 3:
        return [(a, b) for a in range(1, length - 1) for b in range(a + 1, length)]
    # more lines: cut into nearly equal parts only
    step = length / n
    return [tuple(round(step * k) for k in range(1, n))]


def _title_score(title: str, cut: tuple[int, ...], widths: list[float], size: float) -> float:
    """Lower is better: word integrity first, then a trapezoid (lines growing) or a diamond."""
    score = 0.0
    for c in cut:
        before, after = title[:c], title[c:]
        if after[:1] in NO_START or before[-1:] in NO_END:
            score += 1000
        if before.endswith("关于") or before.endswith("的") or before[-1:] in "、，和与及":
            score -= 2 * size
        elif any(after == w for w in WENZHONG) or any(after.startswith(w) and len(after) == len(w) + 1
                                                     for w in ("的",)):
            score -= 1 * size
        if any(w in title[max(0, c - len(w) + 1):c + len(w) - 1] and not (before.endswith(w) or after.startswith(w))
               for w in WENZHONG + ("关于",)):
            score += 50 * size
        if before[-1:].isascii() and after[:1].isascii() and before[-1:].isalnum() and after[:1].isalnum():
            score += 1000
    trapezoid = sum(max(0.0, widths[i] - widths[i + 1]) for i in range(len(widths) - 1))
    diamond = (sum(max(0.0, widths[0] - widths[1]), ) + max(0.0, widths[-1] - widths[-2])) if len(widths) == 3 \
        else trapezoid
    score += min(trapezoid, diamond) * 2 + (max(widths) - min(widths)) * 0.5
    return score


def _image_size(name: str, data: bytes) -> tuple[float, float]:
    if name.lower().endswith(".pdf"):
        import pikepdf
        try:
            with pikepdf.open(io.BytesIO(data)) as pdf:
                box = [float(v) for v in pdf.pages[0].mediabox]
        except Exception as exc:  # pikepdf raises several kinds
            raise TypesetError(f"the header file {name} is not a readable PDF ({exc})", file=name) from None
        return box[2] - box[0], box[3] - box[1]
    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            return float(im.width), float(im.height)
    except Exception as exc:  # Pillow raises several kinds
        raise TypesetError(f"the header file {name} is not a readable image ({exc})", file=name) from None


# --------------------------------------------------------------------------- drawing

def typeset(template: Template, manuscript: Manuscript, fields: Fields = Fields(), *,
            created: datetime | None = None) -> Typeset:
    """Lay the manuscript out on the template (PDF/A-2b) and report the layout."""
    if not isinstance(manuscript, Manuscript):
        raise TypeError("manuscript must be a docflow.typeset.Manuscript")
    engine = _Engine(template, manuscript, fields)
    engine.run()
    engine.check_glyphs()
    pdf = _render(engine, created)
    from .pdfa import finish
    pdf = finish(pdf, template, engine, manuscript, created)
    layout = Layout(pages=len(engine.pages), variant=manuscript.variant, seal_places=tuple(engine.seals),
                    fields={k: tuple(v) for k, v in engine.boxes.items()},
                    fonts={r: f.to_dict() for r, f in engine.fonts.items()})
    return Typeset(pdf, layout)


def _render(engine: _Engine, created: datetime | None) -> bytes:
    from reportlab.pdfgen import canvas
    names = {role: register(engine.fonts[role].path, engine.fonts[role].index, "".join(sorted(chars)))
             for role, chars in engine.used.items()}
    out = io.BytesIO()
    # the initial font is one of ours: reportlab names it on every page, and an unembedded
    # Helvetica there would break PDF/A
    c = canvas.Canvas(out, pagesize=(g.PAGE_W, g.PAGE_H), invariant=1, pageCompression=1,
                      initialFontName=names.get("fangsong") or next(iter(names.values())), initialFontSize=g.BODY)
    c.setTitle(engine.m.title)
    c.setAuthor("、".join(engine.m.issuers))
    c.setCreator("yinxin docflow.typeset (GB/T 9704-2012)")
    c.setSubject(engine.f.doc_number or "")
    for ops in engine.pages:
        for op in ops:
            if isinstance(op, _Text):
                t = c.beginText(op.x, g.y_pdf(op.depth))
                t.setFont(names[op.role], op.size)
                t.setCharSpace(op.cs)
                if op.scale != 1.0:
                    t.setHorizScale(op.scale * 100)
                t.setFillColorRGB(*op.colour)
                t.textOut(op.text)
                c.drawText(t)
            elif isinstance(op, _Rule):
                c.setStrokeColorRGB(*op.colour)
                c.setLineWidth(op.width)
                c.line(op.x0, g.y_pdf(op.depth), op.x1, g.y_pdf(op.depth))
            elif isinstance(op, _Image) and not op.name.lower().endswith(".pdf"):
                from reportlab.lib.utils import ImageReader
                c.drawImage(ImageReader(io.BytesIO(engine.t.files[op.name])), op.x, g.y_pdf(op.depth + op.h),
                            op.w, op.h, mask="auto")
        c.showPage()
    c.save()
    return out.getvalue()

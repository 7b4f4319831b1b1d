"""The structured body format (正文的结构化文本) and the manuscript it describes.

A body is UTF-8 text: an optional YAML front matter between two ``---`` lines, then
paragraphs separated by blank lines::

    ---
    标题: 关于开展电子印章应用试点工作的请示
    主送: 北京市示范区管理委员会
    抄送: [北京市财政局]
    附注: （联系人：孙拟稿，电话：010-12345678）
    ---
    为推进电子政务建设，……特此请示。

    # 总体要求                   → 一、总体要求        (黑体)
    ## 工作目标。本次试点……      → （一）工作目标。本次试点……  (楷体 up to the first 。)
    ### 试点范围。               → 1.试点范围。        (仿宋)
    #### 首批单位。               → （1）首批单位。      (仿宋)

    @附件 试点单位名单            → an attachment page (另面编排) with its own paragraphs

    妥否，请批示。

Lines of one paragraph are joined (no space between Chinese characters).  Headings are
written without their numbers: the engine numbers them 一、（一）1.（1） per level and
refuses a heading that already starts with a number.  Anything else that looks like
markup (a fifth heading level, ``@`` other than ``@附件``, lists, quotes, tables, code,
HTML) is refused as an unknown element, with its line number.

Front-matter fields (Chinese or English names): 标题 title, 发文机关 issuers (joint
documents: a list), 格式 variant (文件式/信函式/纪要式), 行文 kind (上行文 shows 签发人),
主送 main_to, 抄送 cc, 附注 note, 紧急程度 urgency, 密级 classification (only 无),
份号 copy_number (up to 6 digits), 附件 attachments (names in 附件说明 besides the ``@附件``
pages), 印发机关 printing_office, 出席/请假/列席 present/absent/attending (纪要式), and the
registry's fields 发文字号 doc_number, 签发人 signers, 成文日期 date, 印发日期 printed_on —
which the document flow fills and refuses in a drafter's body.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import yaml

from .errors import BodyError
from .template import VARIANT_ALIASES

FRONT_FIELDS = {
    "标题": "title", "title": "title", "发文机关": "issuers", "issuers": "issuers", "格式": "variant",
    "variant": "variant", "行文": "kind", "kind": "kind", "主送": "main_to", "main_to": "main_to",
    "抄送": "cc", "cc": "cc", "附注": "note", "note": "note", "紧急程度": "urgency", "urgency": "urgency",
    "密级": "classification", "classification": "classification", "份号": "copy_number",
    "copy_number": "copy_number", "附件": "attachments", "attachments": "attachments",
    "印发机关": "printing_office", "printing_office": "printing_office", "出席": "present", "present": "present",
    "请假": "absent", "absent": "absent", "列席": "attending", "attending": "attending",
    "发文字号": "doc_number", "doc_number": "doc_number", "签发人": "signers", "signers": "signers",
    "成文日期": "date", "date": "date", "印发日期": "printed_on", "printed_on": "printed_on",
}
REGISTRY_FIELDS = ("doc_number", "signers", "date", "printed_on")
KINDS = {"上行文": "upward", "下行文": "downward", "平行文": "parallel", "upward": "upward",
         "downward": "downward", "parallel": "parallel"}
_NUMBERED = re.compile(r"^(?:[一二三四五六七八九十百]+、|[（(][一二三四五六七八九十百]+[）)]|\d+[.．、]|[（(]\d+[）)])")
_MARKUP = re.compile(r"^(?:#{5,}|[-*+]\s|>|\||```|~~~|<[A-Za-z/!]|!\[|\d+\)\s)")


@dataclass(frozen=True)
class Block:
    kind: str          # p | h1 | h2 | h3 | h4
    text: str
    line: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("p", "h1", "h2", "h3", "h4"):
            raise ValueError(f"unknown block kind {self.kind!r}")


@dataclass(frozen=True)
class InlineAttachment:
    name: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Fields:
    """What the registry adds: 发文字号, 签发人, 成文日期 (from the sign-off), 印发日期."""

    doc_number: str | None = None
    signers: tuple[str, ...] = ()
    date: str | None = None
    printed_on: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"doc_number": self.doc_number, "signers": list(self.signers), "date": self.date,
                "printed_on": self.printed_on}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Fields":
        return cls(doc_number=data.get("doc_number"), signers=tuple(data.get("signers") or ()),
                   date=data.get("date"), printed_on=data.get("printed_on"))

    @property
    def empty(self) -> bool:
        return self == Fields()


@dataclass(frozen=True)
class Manuscript:
    """Everything the drafter writes: the elements of GB/T 9704 other than the registry's fields."""

    title: str
    issuers: tuple[str, ...]
    blocks: tuple[Block, ...] = ()
    variant: str = "file"
    upward: bool = False
    main_recipients: tuple[str, ...] = ()
    copy_to: tuple[str, ...] = ()
    note: str | None = None
    urgency: str | None = None
    copy_number: str | None = None
    attachments: tuple[str, ...] = ()
    inline: tuple[InlineAttachment, ...] = ()
    printing_office: str | None = None
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    attending: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.title or not self.title.strip():
            raise BodyError("标题 (title) is required", field="title")
        if not self.issuers or any(not i.strip() for i in self.issuers):
            raise BodyError("发文机关 (the issuing organisation) is required", field="issuers")
        if self.variant not in ("file", "letter", "minutes"):
            raise BodyError(f"格式 {self.variant!r}: one of 文件式 file, 信函式 letter, 纪要式 minutes",
                            field="variant")
        if self.copy_number is not None and not re.fullmatch(r"\d{1,6}", self.copy_number):
            raise BodyError(f"份号 {self.copy_number!r}: up to six digits", field="copy_number")
        if (self.present or self.absent or self.attending) and self.variant != "minutes":
            raise BodyError("出席/请假/列席 belong to 纪要式 (格式: 纪要式)", field="present")

    def with_(self, **changes: Any) -> "Manuscript":
        return replace(self, **changes)

    def declared(self) -> tuple[str, ...]:
        """The names 附件说明 lists: the attachment pages first, then the attached files."""
        names = [a.name for a in self.inline]
        return tuple(names + [n for n in self.attachments if n not in names])

    def text(self) -> str:
        """Every character the manuscript prints (for the glyph check)."""
        parts = [self.title, *self.issuers, *self.main_recipients, *self.copy_to, self.note or "",
                 self.urgency or "", self.copy_number or "", *self.declared(), self.printing_office or "",
                 *self.present, *self.absent, *self.attending]
        parts += [b.text for b in self.blocks]
        for a in self.inline:
            parts += [a.name] + [b.text for b in a.blocks]
        return "".join(parts)


@dataclass(frozen=True)
class ParsedBody:
    front: Mapping[str, Any]
    blocks: tuple[Block, ...]
    inline: tuple[InlineAttachment, ...] = ()
    source: str = field(default="", repr=False)


def _names(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) and str(v).strip() for v in value):
        raise BodyError(f"{name} is a name or a list of names", field=name)
    return tuple(str(v).strip() for v in value)


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int)) or not str(value).strip():
        raise BodyError(f"{name} is text", field=name)
    return str(value).strip()


def parse_body(text: str, *, source: str = "the body") -> ParsedBody:
    """Parse the structured body; BodyError names the line of an unknown element."""
    if not isinstance(text, str):
        raise TypeError("a body is text (str)")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    front: dict[str, Any] = {}
    start = 0
    if lines and lines[0].strip() == "---":
        try:
            end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
        except StopIteration:
            raise BodyError(f"{source}: the front matter opened on line 1 is never closed with ---",
                            line=1) from None
        try:
            data = yaml.safe_load("\n".join(lines[1:end])) or {}
        except yaml.YAMLError as exc:
            raise BodyError(f"{source}: the front matter is not valid YAML ({exc.__class__.__name__})") from None
        if not isinstance(data, Mapping):
            raise BodyError(f"{source}: the front matter is a mapping of fields")
        for key, value in data.items():
            name = FRONT_FIELDS.get(str(key))
            if name is None:
                raise BodyError(f"{source}: unknown element {key!r} in the front matter (known: "
                                f"{', '.join(k for k in FRONT_FIELDS if not k.isascii())})", element=str(key))
            if name in front:
                raise BodyError(f"{source}: {key} is given twice", element=str(key))
            front[name] = value
        start = end + 1
    blocks: list[Block] = []
    inline: list[tuple[str, list[Block]]] = []
    current: list[Block] = blocks
    pending: list[str] = []
    pending_line = 0

    def flush() -> None:
        nonlocal pending
        if pending:
            joined = pending[0]
            for nxt in pending[1:]:
                joined += (" " if joined[-1:].isascii() and nxt[:1].isascii() else "") + nxt
            current.append(Block("p", joined, pending_line))
            pending = []

    for n in range(start, len(lines)):
        raw = lines[n]
        line = raw.strip()
        number = n + 1
        if not line:
            flush()
            continue
        if line.startswith("@"):
            flush()
            word, _, rest = line[1:].partition(" ")
            if word != "附件":
                raise BodyError(f"{source}, line {number}: unknown element @{word} (only @附件 NAME starts an "
                                "attachment page)", line=number, element=f"@{word}")
            if not rest.strip():
                raise BodyError(f"{source}, line {number}: @附件 needs the attachment's name", line=number)
            current = []
            inline.append((rest.strip(), current))
            continue
        m = re.match(r"^(#{1,4})\s+(.*)$", line)
        if m:
            flush()
            heading = m.group(2).strip()
            if not heading:
                raise BodyError(f"{source}, line {number}: an empty heading", line=number)
            if _NUMBERED.match(heading):
                raise BodyError(f"{source}, line {number}: write the heading without its number "
                                f"({heading[:12]}…): the engine numbers headings 一、（一）1.（1）", line=number)
            current.append(Block(f"h{len(m.group(1))}", heading, number))
            continue
        if _MARKUP.match(line) or re.match(r"^#+\S", line):
            raise BodyError(f"{source}, line {number}: unknown element {line[:16]!r} (a body has paragraphs, "
                            "headings # to ####, and @附件 pages)", line=number, element=line[:16])
        if not pending:
            pending_line = number
        pending.append(line)
    flush()
    return ParsedBody(front=front, blocks=tuple(blocks),
                      inline=tuple(InlineAttachment(name, tuple(b)) for name, b in inline), source=text)


def manuscript(parsed: ParsedBody, *, allow_registry_fields: bool = True,
               **given: Any) -> tuple[Manuscript, Fields]:
    """The manuscript (and the registry's fields) of a parsed body; `given` (title, issuers, kind,
    main_to, cc, note, urgency, attachments, variant) comes from elsewhere (the document flow) and
    must agree with the front matter where both say something."""
    front = dict(parsed.front)
    merged: dict[str, Any] = {}
    for key in set(front) | {k for k, v in given.items() if v not in (None, (), [])}:
        mine = front.get(key)
        theirs = given.get(key)
        if mine is not None and theirs not in (None, (), []):
            a = _names(mine, key) if key in ("issuers", "main_to", "cc", "attachments") else _text(mine, key)
            b = tuple(theirs) if isinstance(theirs, (list, tuple)) else _text(theirs, key)
            if key == "kind":
                a, b = KINDS.get(str(a), a), KINDS.get(str(b), b)
            if key == "variant":
                a, b = VARIANT_ALIASES.get(str(a), a), VARIANT_ALIASES.get(str(b), b)
            if a != b:
                raise BodyError(f"the body's front matter says {key} = {a!r} but the document says {b!r}",
                                field=key)
        merged[key] = mine if mine is not None else theirs
    if not allow_registry_fields:
        bad = [k for k in REGISTRY_FIELDS if front.get(k) is not None]
        if bad:
            raise BodyError(f"the body sets {', '.join(bad)}: 发文字号, 签发人, 成文日期 and 印发日期 are filled by "
                            "the document flow (sign-off and registration), not written by the drafter", field=bad[0])
    from ..elements import check_classification, check_urgency
    check_classification(_text(merged.get("classification"), "classification"))
    kind = _text(merged.get("kind"), "kind")
    if kind is not None and kind not in KINDS:
        raise BodyError(f"行文 {kind!r}: one of 上行文, 下行文, 平行文", field="kind")
    variant = _text(merged.get("variant"), "variant") or "file"
    if variant not in VARIANT_ALIASES:
        raise BodyError(f"格式 {variant!r}: one of 文件式, 信函式, 纪要式", field="variant")
    title = _text(merged.get("title"), "title")
    if title is None:
        raise BodyError("标题 (title) is required", field="title")
    copy_number = merged.get("copy_number")
    m = Manuscript(
        title=title, issuers=_names(merged.get("issuers"), "issuers"), blocks=parsed.blocks,
        variant=VARIANT_ALIASES[variant], upward=KINDS.get(kind or "", "") == "upward",
        main_recipients=_names(merged.get("main_to"), "main_to"), copy_to=_names(merged.get("cc"), "cc"),
        note=_text(merged.get("note"), "note"), urgency=check_urgency(_text(merged.get("urgency"), "urgency")),
        copy_number=None if copy_number is None else str(copy_number).strip(),
        attachments=_names(merged.get("attachments"), "attachments"), inline=parsed.inline,
        printing_office=_text(merged.get("printing_office"), "printing_office"),
        present=_names(merged.get("present"), "present"), absent=_names(merged.get("absent"), "absent"),
        attending=_names(merged.get("attending"), "attending"))
    fields = Fields(doc_number=_text(front.get("doc_number"), "doc_number"),
                    signers=_names(front.get("signers"), "signers"), date=_text(front.get("date"), "date"),
                    printed_on=_text(front.get("printed_on"), "printed_on"))
    return m, fields

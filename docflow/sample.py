"""A GB/T 9704 official-document PDF from plain arguments, for demos and tests — on the typesetting engine.

`make_document_pdf` is a thin front of `docflow.typeset`: the default red-header template,
文件式, the paragraphs as the body, 主送 once, 附件说明, and the organisation's name centred
over the 成文日期 (four characters in from the right, GB/T 9704 §7.3.5.1), with the 发文字号
when given.  Output is PDF/A-2b, its text real text in embedded TrueType subsets, and
deterministic for the same input.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

from .errors import ElementError
from .typeset import geometry as _g

MM = _g.MM
PAGE_W, PAGE_H = _g.PAGE_W, _g.PAGE_H
LEFT, TEXT_W = _g.LEFT, _g.BLOCK_W
TOP, TEXT_H = _g.TOP, _g.BLOCK_H
BODY_PT, LINE = _g.BODY, _g.PITCH
CHARS_PER_LINE = _g.CHARS
_CREATED = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_document_pdf(title: str, organisation: str, date: str, body_lines: Sequence[str], *,
                      doc_number: str | None = None, main_recipient: str | None = None,
                      attachments: Sequence[str] = ()) -> bytes:
    """A GB/T 9704 official document (文件式): 版头, title, 主送, body paragraphs, 附件说明, and the
    organisation's name above the date.  Returns PDF bytes."""
    from .typeset import Block, Fields, Manuscript, default_template, typeset
    if not title.strip() or not organisation.strip() or not date.strip():
        raise ElementError("a document needs a title, an organisation and a date")
    blocks = tuple(Block("p", p.strip()) for p in body_lines if p.strip())
    if not blocks:
        blocks = (Block("p", "（正文）"),)
    m = Manuscript(title=title.strip(), issuers=(organisation.strip(),), blocks=blocks,
                   main_recipients=(main_recipient,) if main_recipient else (), attachments=tuple(attachments))
    return typeset(default_template(), m, Fields(doc_number=doc_number, date=date), created=_CREATED).pdf

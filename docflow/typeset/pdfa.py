"""PDF/A-2b finishing of a typeset document, with pikepdf.

What PDF/A-2b asks of our output, and how it is met: every font embedded (reportlab embeds
our TrueType subsets, with ToUnicode maps); device colour only under an output intent (an
sRGB ICC profile made by LittleCMS through Pillow, as the document's /OutputIntents,
GTS_PDFA1); XMP metadata in the catalogue with ``pdfaid:part 2``, ``pdfaid:conformance B``
and the document information dictionary repeated (title, author, producer, dates); a file
identifier in the trailer; no encryption, no JavaScript, no external content.  A vector
header from the printing house (a PDF) is placed as a form XObject.

veraPDF, the reference validator, is a Java program published neither on PyPI nor on npm;
the tests check these points with qpdf, pdffonts and the XMP packet instead.
"""
from __future__ import annotations

import io
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from . import geometry as g


@lru_cache(maxsize=1)
def srgb_profile() -> bytes:
    from PIL import ImageCms
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def pdf_date(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("D:%Y%m%d%H%M%S+00'00'")


def finish(pdf: bytes, template: Any, engine: Any, manuscript: Any, created: datetime | None) -> bytes:
    import pikepdf
    when = created or datetime(2000, 1, 1, tzinfo=timezone.utc)
    with pikepdf.open(io.BytesIO(pdf)) as doc:
        from .layout import _Image
        for n, ops in enumerate(engine.pages):
            for op in ops:
                if isinstance(op, _Image) and op.name.lower().endswith(".pdf"):
                    with pikepdf.open(io.BytesIO(template.files[op.name])) as header:
                        rect = pikepdf.Rectangle(op.x, g.y_pdf(op.depth + op.h), op.x + op.w, g.y_pdf(op.depth))
                        doc.pages[n].add_overlay(header.pages[0], rect)
        make_pdfa(doc, title=manuscript.title, author="、".join(manuscript.issuers), when=when,
                  subject=engine.f.doc_number or "")
        out = io.BytesIO()
        doc.save(out, deterministic_id=True, min_version="1.7")
    return out.getvalue()


def make_pdfa(doc: Any, *, title: str, author: str, when: datetime, subject: str = "") -> None:
    """Output intent, XMP metadata and a synchronised document information dictionary."""
    import pikepdf
    profile = pikepdf.Stream(doc, srgb_profile())
    profile["/N"] = 3
    intent = pikepdf.Dictionary(Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFA1,
                                OutputConditionIdentifier=pikepdf.String("sRGB IEC61966-2.1"),
                                Info=pikepdf.String("sRGB IEC61966-2.1"),
                                DestOutputProfile=doc.make_indirect(profile))
    doc.Root.OutputIntents = pikepdf.Array([doc.make_indirect(intent)])
    info = doc.docinfo
    for key in list(info.keys()):
        del info[key]
    info["/Title"] = pikepdf.String(title)
    info["/Author"] = pikepdf.String(author)
    info["/Creator"] = pikepdf.String("yinxin docflow.typeset (GB/T 9704-2012)")
    info["/Producer"] = pikepdf.String("yinxin with ReportLab and pikepdf")
    if subject:
        info["/Subject"] = pikepdf.String(subject)
    info["/CreationDate"] = pikepdf.String(pdf_date(when))
    info["/ModDate"] = pikepdf.String(pdf_date(when))
    with doc.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta.load_from_docinfo(info, delete_missing=True)
        meta["pdfaid:part"] = "2"
        meta["pdfaid:conformance"] = "B"

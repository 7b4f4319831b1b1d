"""The check that a typeset version is the signed-off content plus the registry's fields.

Stated: *the registered version has as many pages as the signed-off one, each of the same
size; on every page, its text as PDFium extracts it (whitespace aside), without the
characters inside the boxes the layout reported for 发文字号, 签发人, 成文日期 and 印发日期,
is exactly the signed-off page's text, in the same order; and inside those boxes stands
exactly the value of each field — nothing else.*  For a structured body the flow also
compares the recorded sources (identical) and the recorded fields (the signed-off version
had none).  The text is read by PDFium, not by the engine that wrote it.
"""
from __future__ import annotations

from typing import Any, Sequence

from pki.memo import BytesMemo, bytes_key

from . import geometry as g
from .body import Fields
from .layout import Box, Layout


PageChars = tuple[tuple[tuple[float, float], tuple[tuple[str, float, float], ...]], ...]

#: what PDFium read of the last few files: the flow compares the same signed-off and registered
#: versions at registration, at 盖章 and at 发送
_READ = BytesMemo(16)


def page_chars(pdf: bytes) -> PageChars:
    """Per page: (size in points, ((character, centre x, centre y) in points, …)).

    A pure function of the bytes: what was read of the same bytes (same SHA-256 and length) before
    in this process is given again (immutable) instead of being read again (`pki.memo`)."""
    data = bytes(pdf)
    return _READ.get(bytes_key(data), lambda: _read_chars(data))


def _read_chars(pdf: bytes) -> PageChars:
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw
    doc = pdfium.PdfDocument(pdf)
    out = []
    try:
        for page in doc:
            size = page.get_size()
            tp = page.get_textpage()
            chars = []
            for i in range(tp.count_chars()):
                if raw.FPDFText_IsGenerated(tp.raw, i):
                    continue
                code = raw.FPDFText_GetUnicode(tp.raw, i)
                if code == 0:
                    continue
                ch = chr(code)
                if ch.isspace() or ch == "\ufffe":
                    continue
                x0, y0, x1, y1 = tp.get_charbox(i)
                chars.append((ch, (x0 + x1) / 2, (y0 + y1) / 2))
            out.append(((size[0], size[1]), tuple(chars)))
            tp.close()
            page.close()
    finally:
        doc.close()
    return tuple(out)


def expected_fields(fields: Fields) -> dict[str, str]:
    values = {"doc_number": fields.doc_number, "date": fields.date,
              "signers": ("签发人：" + "".join(fields.signers)) if fields.signers else None,
              "printed_on": f"{fields.printed_on}印发" if fields.printed_on else None}
    return {k: v for k, v in values.items() if v}


def _inside(box: Box, x: float, y: float) -> bool:
    return box.x0 * g.MM <= x <= box.x1 * g.MM and box.y0 * g.MM <= y <= box.y1 * g.MM


def check_typeset(signed_off: bytes, typeset: bytes, layout: Layout, fields: Fields) -> list[str]:
    """Every difference between the typeset version and (signed-off version + fields); [] when none."""
    problems: list[str] = []
    try:
        before, after = page_chars(signed_off), page_chars(typeset)
    except Exception as exc:  # PDFium raises its own error types for unreadable files
        return [f"the versions cannot be read to compare them ({exc})"]
    if len(before) != len(after):
        problems.append(f"the typeset version has {len(after)} pages, the signed-off one {len(before)}")
        return problems
    expected = expected_fields(fields)
    for name in layout.fields:
        if name not in expected:
            problems.append(f"the layout reports a {name} field the document does not have")
    found: dict[str, str] = {k: "" for k in layout.fields}
    for n, ((size_b, chars_b), (size_a, chars_a)) in enumerate(zip(before, after), 1):
        if abs(size_b[0] - size_a[0]) > 0.5 or abs(size_b[1] - size_a[1]) > 0.5:
            problems.append(f"page {n} changed size")
        rest = []
        for ch, x, y in chars_a:
            owner = next((k for k, boxes in layout.fields.items() for b in boxes if b.page == n and _inside(b, x, y)),
                         None)
            if owner is None:
                rest.append(ch)
            else:
                found[owner] += ch
        if "".join(rest) != "".join(ch for ch, _, _ in chars_b):
            problems.append(f"page {n}: the text outside the registry's fields differs from the signed-off "
                            f"version ({_first_difference(''.join(ch for ch, _, _ in chars_b), ''.join(rest))})")
    for name, text in found.items():
        want = "".join(expected.get(name, "").split())
        if text != want:
            problems.append(f"the {name} field reads {text!r}, not {want!r}")
    return problems


def _first_difference(a: str, b: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"signed off …{a[max(0, i - 8):i + 8]}… / typeset …{b[max(0, i - 8):i + 8]}…"


def sources_match(signed_off: Any, registered: Any) -> Sequence[str]:
    """The recorded rows: the same structured source, and no fields in the signed-off version."""
    problems = []
    if signed_off is None:
        return problems
    if signed_off["source"] != registered["source"]:
        problems.append("the registered version was typeset from a body other than the signed-off one")
    if not Fields.from_dict(__import__("json").loads(signed_off["fields"])).empty:
        problems.append("the signed-off version already carried registry fields")
    return problems

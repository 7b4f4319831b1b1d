"""Decompression bombs in PDFs: the streams a reader will inflate are measured first, in
bounded steps (1 MiB of output at a time, counted and dropped), and the document is refused
beyond `seal.limits.ReadLimits`.

Measured before any other work: the object streams (pyHanko and qpdf inflate one whole to
reach any object inside it) — always; and for placement by anchor text or for rendering, what
PDFium inflates to read a page: its content streams, the form XObjects they use (recursively),
the fonts' programs and ToUnicode maps.  A 1.5 MB PDF whose page content inflates to 1.5 GB of
spaces is refused after inflating just past the per-stream bound, in a fraction of a second.
"""
from __future__ import annotations

import zlib
from typing import Any

from pyhanko.pdf_utils import generic

from .limits import DEFAULT_LIMITS, MiB, ReadLimits
from .pdf_errors import PdfSealError

__all__ = ["PdfTooLarge", "check_pdf_bounds"]

#: how much an output byte count may exceed its compressed size for filters not measured exactly
_WORST_RATIO = {"/RunLengthDecode": 128, "/LZWDecode": 4096, "/ASCIIHexDecode": 1, "/ASCII85Decode": 1}
_IMAGE_CODECS = {"/DCTDecode", "/JPXDecode", "/JBIG2Decode", "/CCITTFaxDecode"}


class PdfTooLarge(PdfSealError):
    """A stream or the document inflates beyond the reading bounds: refused, not read."""


class _Budget:
    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self.total = 0
        self.seen: set[Any] = set()

    def add(self, n: int, what: str) -> None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            raise PdfTooLarge(f"the PDF inflates to more than {self.limits.max_total_bytes} bytes "
                              f"(reached at {what}): refused as a decompression bomb",
                              limit=self.limits.max_total_bytes)


def _filters(stream: generic.StreamObject) -> list[str]:
    value = stream.get("/Filter")
    if value is None:
        return []
    value = value.get_object() if isinstance(value, generic.IndirectObject) else value
    if isinstance(value, generic.ArrayObject):
        return [str(v.get_object() if isinstance(v, generic.IndirectObject) else v) for v in value]
    return [str(value)]


def _flate_size(data: bytes, cap: int) -> int:
    """Bytes `data` inflates to, counted in 1 MiB steps; stops once past `cap`."""
    inflater = zlib.decompressobj()
    size = 0
    pending = data
    while True:
        try:
            out = inflater.decompress(pending, MiB)
        except zlib.error:
            return size               # damaged: what was inflated so far (the readers stop there too)
        size += len(out)
        if size > cap:
            return size
        pending = inflater.unconsumed_tail
        if not pending and (not out or inflater.eof):
            return size


def _measure(stream: Any, what: str, budget: _Budget) -> None:
    key = id(stream) if not isinstance(stream, generic.IndirectObject) else (stream.idnum, stream.generation)
    if key in budget.seen:
        return
    budget.seen.add(key)
    stream = stream.get_object() if isinstance(stream, generic.IndirectObject) else stream
    if not isinstance(stream, generic.StreamObject):
        return
    raw = stream.encoded_data if stream.encoded_data is not None else stream.data
    filters = _filters(stream)
    cap = budget.limits.max_entry_bytes
    if not filters:
        size = len(raw)
    elif filters[0] == "/FlateDecode":
        size = _flate_size(raw, cap)
    elif filters[0] in _IMAGE_CODECS:
        size = len(raw)               # images: bounded by their dimensions where they are drawn
    else:
        size = len(raw) * _WORST_RATIO.get(filters[0], 4096)
    if size > cap:
        raise PdfTooLarge(f"{what} inflates to more than {cap} bytes: refused as a decompression bomb",
                          limit=cap)
    budget.add(size, what)


def _walk_resources(resources: Any, what: str, budget: _Budget, depth: int) -> None:
    if depth > 12 or resources is None:
        return
    resources = resources.get_object()
    if not isinstance(resources, generic.DictionaryObject):
        return
    xobjects = resources.get("/XObject")
    if isinstance(xobjects, (generic.DictionaryObject, generic.IndirectObject)):
        xobjects = xobjects.get_object()
        for name in list(xobjects.keys())[:10_000]:
            ref = xobjects.raw_get(name)
            obj = ref.get_object()
            if isinstance(obj, generic.StreamObject) and obj.get("/Subtype") == "/Form":
                key = (ref.idnum, ref.generation) if isinstance(ref, generic.IndirectObject) else id(obj)
                if key in budget.seen:
                    continue
                _measure(ref, f"{what}, form {name}", budget)
                _walk_resources(obj.get("/Resources"), what, budget, depth + 1)
    fonts = resources.get("/Font")
    if isinstance(fonts, (generic.DictionaryObject, generic.IndirectObject)):
        fonts = fonts.get_object()
        for name in list(fonts.keys())[:10_000]:
            font = fonts[name]
            if not isinstance(font, generic.DictionaryObject):
                continue
            if "/ToUnicode" in font:
                _measure(font.raw_get("/ToUnicode"), f"{what}, font {name} ToUnicode", budget)
            descendants = font.get("/DescendantFonts")
            candidates = [font] + ([d.get_object() for d in descendants] if isinstance(descendants, generic.ArrayObject)
                                   else [])
            for candidate in candidates:
                descriptor = candidate.get("/FontDescriptor") if isinstance(candidate, generic.DictionaryObject) else None
                if isinstance(descriptor, generic.DictionaryObject):
                    for key in ("/FontFile", "/FontFile2", "/FontFile3"):
                        if key in descriptor:
                            _measure(descriptor.raw_get(key), f"{what}, font {name} program", budget)


def check_pdf_bounds(reader: Any, *, limits: ReadLimits = DEFAULT_LIMITS, page_content: bool = False) -> None:
    """Refuse (PdfTooLarge) a PDF whose object streams — and with `page_content` the content its
    pages draw (contents, forms, fonts) — inflate beyond `limits` (see the module docstring)."""
    budget = _Budget(limits)
    xrefs = reader.xrefs
    for revision in range(xrefs.total_revisions):
        for ref in xrefs.object_streams_used_in(revision):
            _measure(generic.IndirectObject(ref.idnum, ref.generation, reader), "an object stream", budget)
    if not page_content:
        return
    root = reader.root
    try:
        count = int(root["/Pages"]["/Count"])
    except (KeyError, TypeError, ValueError):
        return
    if count > limits.max_pages:
        raise PdfTooLarge(f"the PDF has {count} pages (at most {limits.max_pages} are read)", pages=count)
    stack = [root.raw_get("/Pages")]
    visited: set[Any] = set()
    page_no = 0
    while stack:
        ref = stack.pop()
        key = (ref.idnum, ref.generation) if isinstance(ref, generic.IndirectObject) else id(ref)
        if key in visited or len(visited) > limits.max_pages * 2:
            continue
        visited.add(key)
        node = ref.get_object()
        if not isinstance(node, generic.DictionaryObject):
            continue
        if "/Kids" in node:
            kids = node["/Kids"]
            stack.extend(kids.raw_get(i) for i in reversed(range(len(kids))))
            continue
        page_no += 1
        what = f"page {page_no}"
        contents = node.raw_get("/Contents") if "/Contents" in node else None
        target = contents.get_object() if contents is not None else None
        if isinstance(target, generic.ArrayObject):
            for i in range(len(target)):
                _measure(target.raw_get(i), f"{what} content", budget)
        elif contents is not None:
            _measure(contents, f"{what} content", budget)
        resources = node.get("/Resources")
        if resources is None:
            parent = node.get("/Parent")
            while resources is None and isinstance(parent, generic.DictionaryObject):
                resources = parent.get("/Resources")
                parent = parent.get("/Parent")
        _walk_resources(resources, what, budget, 0)

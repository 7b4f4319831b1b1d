"""Stamping = signing: a seal on a PDF is a PAdES signature whose widget shows the seal.

`stamp_pdf` appends one incremental update to the document (pyHanko's
`IncrementalPdfFileWriter`) that holds, all in the same revision:

1. the signature field and its widget annotation, whose normal appearance
   stream *is* the seal picture (a form XObject made from the picture's
   content operators, turned against the page's /Rotate so it stands upright);
2. with ``riding=True`` a riding seal (骑缝章): further widget annotations of
   the *same* signature field, one on every page at the right edge, page i of a
   group of n showing the i-th vertical slice of the seal (left to right).  Each
   slice is at least `riding_min_mm` wide (4 mm by default): over more pages
   than one seal allows, the seal is repeated over consecutive groups of pages
   (seal.riding), and every slice lies at the same distance from the top of its
   page (the seal centred on the first page's height).  The field lists all its widgets in /Kids.  The widgets carry no
   /Parent entry — pyHanko writes its own single kid that way, and poppler
   before 23.x (Debian 12's pdfsig) takes a kid *with* /Parent for a child
   field and then reports it unsigned; PDF 2.0 asks for /Parent when a field
   has several widgets, so a strict checker (veraPDF) may remark on it.
   pyHanko's difference analysis lets a later seal add such a field with
   widgets on many pages at the "form filling" level, so earlier seals stay
   valid;
3. the signature dictionary, whose /ByteRange covers the whole file except
   its own /Contents.

Nothing is drawn into page content, and nothing is written after the
signature: the appearance is part of the bytes the signature covers, and the
first thing any later change would have to do is break that coverage.

A document can be stamped again (joint documents, one seal per organisation
in turn): each seal is one more incremental revision and earlier signatures
keep verifying.

Files are never half-written: the input is copied (by the kernel) into a
temporary file beside the output, signed there in place with pyHanko
streaming from and to disk, fsynced and renamed over the output.  Memory use
does not grow with the document's size.
"""
from __future__ import annotations

import asyncio
import os
import io
import shutil
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from asn1crypto import x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields as sig_fields
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko.stamp.base import BaseStamp, BaseStampStyle

import pki
from pki.keyfiles import atomic_output, write_file_atomic

from .aio import run as run_coroutine
from . import pdf_hex  # noqa: F401  (pyHanko reads the signatures' hex strings in blocks)
from .cms_signer import KeySigner, signature_placeholder_size
from .pdf_io import BackgroundCopy, SplicedFile
from .pdf_errors import EncryptedPdf, FieldError, NotAPdf, PdfSealError, PlacementError
from .pdf_placement import (MM, AnchorText, AtPosition, ExistingField, PageGeometry, Placement,
                            find_text)
from .pdf_validation import RevocationData, validation_context
from .pdf_bounds import check_pdf_bounds
from .riding import DEFAULT_MIN_SLICE_MM, check_min_slice, riding_groups

__all__ = ["SealPicture", "StampResult", "BatchItem", "stamp_pdf", "stamp_batch"]

#: bytes per read/hash step when streaming the document
CHUNK_SIZE = 1 << 20
#: inputs from this size on are copied in the background while being hashed (seal.pdf_io)
PARALLEL_COPY_BYTES = 8 << 20
#: widget annotation flags: Print (4) | Locked (128) — printed, not movable in viewers
WIDGET_FLAGS = 4 | 128


@runtime_checkable
class SealPicture(Protocol):
    """What `stamp_pdf` needs of a seal picture (seal.appearance.SealDrawing).

    `pdf_content()` draws the picture inside [0, 0, width_pt, height_pt] with
    paths only, no resources, its colour set inside.  An `ImageSeal` (PNG) has
    `pdf_image()` instead and is embedded as an image with a soft mask.
    """

    width_pt: float
    height_pt: float


@dataclass(frozen=True)
class StampResult:
    """What one stamping did."""

    output: Path
    field_name: str
    page: int                                  # 1-based page of the seal
    rect: tuple[float, float, float, float]    # the seal widget's /Rect, user space
    riding_pages: int                          # pages carrying a riding slice (0: none)
    signature_algorithm: str                   # sha256_rsa, sha256_ecdsa, sha384_ecdsa, sm3_sm2
    digest_algorithm: str                      # sha256, sha384, sm3
    signing_time: datetime
    size: int                                  # bytes of the sealed file


# --------------------------------------------------------------------------- appearance

def _num(value: float) -> str:
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _numbers(values: Iterable[float]) -> generic.ArrayObject:
    return generic.ArrayObject(generic.FloatObject(round(v, 4)) if v != int(v)
                               else generic.NumberObject(int(v)) for v in values)


class _EncodedPicture:
    """What stays the same for every document sealed with one picture: its content
    operators, and each form body and image already Flate-compressed (compressing the
    ~9 KB of seal paths is a quarter of a millisecond a seal)."""

    def __init__(self, picture: Any) -> None:
        self.content = bytes(picture.pdf_content()) if hasattr(picture, "pdf_content") else None
        self.bodies: dict[tuple[int, int], bytes] = {}
        self.images: tuple[int, int, bytes, bytes] | None = None  # width, height, RGB, alpha (compressed)


#: id(picture) -> (weak reference to it, its encoded parts); the reference tells a live
#: picture from a new object that reuses a freed one's id
_ENCODED: dict[int, tuple[weakref.ref, _EncodedPicture]] = {}


def _encoded(picture: Any) -> _EncodedPicture:
    entry = _ENCODED.get(id(picture))
    if entry is not None and entry[0]() is picture:
        return entry[1]
    encoded = _EncodedPicture(picture)
    try:
        ref = weakref.ref(picture, lambda _r, key=id(picture): _ENCODED.pop(key, None))
    except TypeError:          # not weakly referenceable: no reuse across documents
        return encoded
    _ENCODED[id(picture)] = (ref, encoded)
    return encoded


def _flate_stream(entries: dict, data: bytes) -> generic.StreamObject:
    entries = dict(entries)
    entries[pdf_name("/Filter")] = pdf_name("/FlateDecode")
    return generic.StreamObject(entries, encoded_data=data)


class _PictureForms:
    """Form XObjects of one seal picture for one writer: the whole seal, or a slice."""

    def __init__(self, picture: Any) -> None:
        w, h = float(picture.width_pt), float(picture.height_pt)
        if not (w > 0 and h > 0):
            raise ValueError("the seal picture has no size")
        self.width, self.height = w, h
        self._picture = picture
        self._encoded = _encoded(picture)
        self._image_ref: generic.IndirectObject | None = None

    def _body(self, writer) -> tuple[bytes, generic.DictionaryObject]:
        """The picture with the Multiply blend mode: like stamp ink, the red darkens what is
        under it instead of hiding it, so the organisation's name and the date stay legible."""
        content, resources = self._picture_body(writer)
        resources = generic.DictionaryObject(dict(resources))
        resources[pdf_name("/ExtGState")] = generic.DictionaryObject({pdf_name("/SealInk"): generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/ExtGState"), pdf_name("/BM"): pdf_name("/Multiply")})})
        return b"q /SealInk gs\n" + content + b"\nQ", resources

    def _picture_body(self, writer) -> tuple[bytes, generic.DictionaryObject]:
        pic = self._picture
        if self._encoded.content is not None:
            return self._encoded.content, generic.DictionaryObject()
        if not hasattr(pic, "pdf_image"):
            raise TypeError("a seal picture needs pdf_content() or pdf_image()")
        if self._image_ref is None:
            if self._encoded.images is None:
                img = pic.pdf_image()
                self._encoded.images = (img.width, img.height, zlib.compress(img.rgb),
                                        zlib.compress(img.alpha))
            width, height, rgb, alpha = self._encoded.images
            img_size = {pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Image"),
                        pdf_name("/Width"): generic.NumberObject(width),
                        pdf_name("/Height"): generic.NumberObject(height),
                        pdf_name("/BitsPerComponent"): generic.NumberObject(8)}
            smask = _flate_stream({**img_size, pdf_name("/ColorSpace"): pdf_name("/DeviceGray")}, alpha)
            image = _flate_stream({**img_size, pdf_name("/ColorSpace"): pdf_name("/DeviceRGB"),
                                   pdf_name("/SMask"): writer.add_object(smask)}, rgb)
            self._image_ref = writer.add_object(image)
        content = f"q {_num(self.width)} 0 0 {_num(self.height)} 0 0 cm /SealImage Do Q".encode()
        resources = generic.DictionaryObject({pdf_name("/XObject"): generic.DictionaryObject(
            {pdf_name("/SealImage"): self._image_ref})})
        return content, resources

    def form(self, writer, geometry: PageGeometry, *, slice_index: int = 0,
             slices: int = 1) -> generic.StreamObject:
        """The seal (or its vertical slice `slice_index` of `slices`) as a form XObject
        whose /Matrix turns it upright on a page with `geometry.rotate`."""
        body, resources = self._body(writer)
        slice_w = self.width / slices
        key = (slice_index, slices)
        encoded = self._encoded.bodies.get(key)
        if encoded is None:
            if slices > 1:
                body = (f"q 0 0 {_num(slice_w)} {_num(self.height)} re W n "
                        f"1 0 0 1 {_num(-slice_index * slice_w)} 0 cm\n").encode() + body + b"\nQ"
            encoded = zlib.compress(body)
            if slices == 1:          # riding slices differ per page count: not worth keeping
                self._encoded.bodies[key] = encoded
        return _flate_stream({
            pdf_name("/Type"): pdf_name("/XObject"), pdf_name("/Subtype"): pdf_name("/Form"),
            pdf_name("/BBox"): _numbers((0, 0, slice_w, self.height)),
            pdf_name("/Matrix"): _numbers(geometry.appearance_matrix()),
            pdf_name("/Resources"): resources}, encoded)


class _SealStamp(BaseStamp):
    def __init__(self, writer, style: "_SealStampStyle", box) -> None:
        super().__init__(writer=writer, style=style, box=box)

    def render(self) -> bytes:
        """The seal's content stream (pyHanko calls as_form_xobject, which carries the resources)."""
        return self.as_form_xobject().data

    def as_form_xobject(self) -> generic.StreamObject:
        return self.style.forms.form(self.writer, self.style.geometry)


@dataclass(frozen=True)
class _SealStampStyle(BaseStampStyle):
    """pyHanko stamp style whose stamp is the seal picture, no border, no text."""

    forms: Any = None
    geometry: Any = None
    border_width: int = 0

    def create_stamp(self, writer, box, text_params) -> _SealStamp:
        return _SealStamp(writer, self, box)


# --------------------------------------------------------------------------- PDF access

def _page_attr(page: generic.DictionaryObject, key: str):
    node = page
    for _ in range(64):  # inherited attributes (MediaBox, CropBox, Rotate) up the page tree
        if key in node:
            return node[key]
        parent = node.get("/Parent")
        if parent is None:
            return None
        node = parent.get_object()
    return None


def _geometry(page: generic.DictionaryObject) -> PageGeometry:
    media = _page_attr(page, "/MediaBox")
    if media is None:
        raise NotAPdf("a page has no MediaBox")
    return PageGeometry.from_boxes(media, _page_attr(page, "/CropBox"),
                                   _page_attr(page, "/Rotate") or 0)


def _page_count(reader: PdfFileReader) -> int:
    return int(reader.root["/Pages"]["/Count"])


class _Pages:
    """The document's page references, looked up lazily: a seal on one page costs one
    page-tree lookup; iterating (riding seals, field lookups) walks the tree once."""

    def __init__(self, writer: IncrementalPdfFileWriter, count: int) -> None:
        self._writer = writer
        self._count = count
        self._all: list[generic.IndirectObject] | None = None
        self._one: dict[int, generic.IndirectObject] = {}

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> generic.IndirectObject:
        if self._all is not None:
            return self._all[index]
        if index not in self._one:
            self._one[index] = self._writer.find_page_for_modification(index)[0]
        return self._one[index]

    def __iter__(self) -> Iterator[generic.IndirectObject]:
        if self._all is None:
            self._all = self._walk()
        return iter(self._all)

    def _walk(self) -> list[generic.IndirectObject]:
        pages: list[generic.IndirectObject] = []
        root = self._writer.root.raw_get("/Pages")
        stack, seen = [root], set()
        while stack:
            ref = stack.pop()
            key = ref.reference if isinstance(ref, generic.IndirectObject) else id(ref)
            if key in seen:
                raise NotAPdf("the page tree has a cycle")
            seen.add(key)
            node = ref.get_object()
            if node.get("/Type") == "/Pages" or "/Kids" in node:
                kids = node["/Kids"]
                stack.extend(kids.raw_get(i) for i in reversed(range(len(kids))))
            else:
                pages.append(ref)
        if len(pages) != self._count:
            raise NotAPdf(f"the page tree has {len(pages)} pages but says {self._count}")
        return pages


def _check_header(stream: IO[bytes]) -> None:
    stream.seek(0)
    head = stream.read(1024)
    stream.seek(0)
    if b"%PDF-" not in head:
        raise NotAPdf("the input is not a PDF file (no %PDF- header)")


def _open_reader(stream: IO[bytes]) -> PdfFileReader:
    _check_header(stream)
    try:
        reader = PdfFileReader(stream, strict=True)
        if reader.encrypted:
            raise EncryptedPdf("the PDF is encrypted; decrypt it before sealing")
        check_pdf_bounds(reader)          # object streams, before any object inside one is read
        reader.root["/Pages"]["/Count"]  # noqa: B018 - touch the page tree now
    except PdfSealError:
        raise
    except Exception as exc:  # pyHanko raises many kinds on broken files
        raise NotAPdf(f"the PDF is damaged and cannot be updated safely: {exc}") from None
    return reader


def _existing_field_names(writer) -> set[str]:
    """Fully qualified names of every form field (not only signature fields)."""
    names: set[str] = set()
    try:
        fields = writer.root["/AcroForm"]["/Fields"]
    except KeyError:
        return names
    stack = [(f, "") for f in fields]
    seen = 0
    while stack and seen < 100_000:   # bounded: a malicious form tree may loop
        seen += 1
        node, prefix = stack.pop()
        obj = node.get_object()
        if not isinstance(obj, generic.DictionaryObject):
            continue
        name = prefix
        if "/T" in obj:
            name = f"{prefix}.{obj['/T']}" if prefix else str(obj["/T"])
            names.add(name)
        if "/Kids" in obj:
            stack.extend((k, name) for k in obj["/Kids"])
    return names


def _new_field_name(writer) -> str:
    taken = _existing_field_names(writer)
    n = 1
    while f"Seal{n}" in taken:
        n += 1
    return f"Seal{n}"


def _find_sig_field(writer, name: str):
    matches = list(sig_fields.enumerate_sig_fields(writer, filled_status=None, with_name=name))
    if not matches:
        if name in _existing_field_names(writer):
            raise FieldError(f"field {name!r} is not a signature field", field=name)
        raise FieldError(f"the document has no signature field named {name!r}", field=name)
    _, value, field_ref = matches[0]
    if value is not None:
        raise FieldError(f"signature field {name!r} is already signed", field=name)
    return field_ref


def _widgets(field_obj: generic.DictionaryObject) -> list[generic.IndirectObject]:
    """The field's /Kids widget references (empty when the field is its own widget)."""
    if "/Kids" not in field_obj:
        return []
    return list(field_obj["/Kids"])  # iterating a pyHanko array yields the raw references


def _page_index_of_annot(writer, annot_ref, page_refs: _Pages) -> int | None:
    target = annot_ref.reference if isinstance(annot_ref, generic.IndirectObject) else None
    annot = annot_ref.get_object()
    p = annot.raw_get("/P") if "/P" in annot else None
    if isinstance(p, generic.IndirectObject):
        for i, ref in enumerate(page_refs):
            if ref.reference == p.reference:
                return i
    if target is None:
        return None
    for i, ref in enumerate(page_refs):
        annots = ref.get_object().get("/Annots")
        if annots is None:
            continue
        for a in annots.get_object():
            if isinstance(a, generic.IndirectObject) and a.reference == target:
                return i
    return None


# --------------------------------------------------------------------------- placement

@dataclass(frozen=True)
class _Resolved:
    page_index: int
    rect: tuple[float, float, float, float]   # user space
    geometry: PageGeometry
    field_ref: Any = None                      # existing field, if any
    widget_ref: Any = None


def _seal_rect(geometry: PageGeometry, cx: float, cy: float, w: float, h: float):
    return geometry.display_rect_to_user(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _resolve(placement: Placement, writer, reader, source, page_refs: _Pages, w: float,
             h: float) -> _Resolved:
    count = len(page_refs)
    if isinstance(placement, AtPosition):
        index = placement.page - 1 if placement.page > 0 else count + placement.page
        if not 0 <= index < count:
            raise PlacementError(f"page {placement.page} is out of range: the document has "
                                 f"{count} page{'s' if count != 1 else ''}",
                                 page=placement.page, pages=count)
        geometry = _geometry(page_refs[index].get_object())
        cx, cy = placement.x_mm * MM, placement.y_mm * MM
        dw, dh = geometry.display_size
        if not (0 <= cx <= dw and 0 <= cy <= dh):
            raise PlacementError(f"the seal's centre ({placement.x_mm:g} mm, {placement.y_mm:g} mm) "
                                 f"is off the page ({dw / MM:.1f} × {dh / MM:.1f} mm)",
                                 page=placement.page)
        return _Resolved(index, _seal_rect(geometry, cx, cy, w, h), geometry)
    if isinstance(placement, AnchorText):
        match = find_text(source, placement)
        geometry = _geometry(page_refs[match.page_index].get_object())
        x0, y0, x1, y1 = geometry.user_rect_to_display(*match.box)
        below = (0.1 * h) if placement.below_centre_mm is None else placement.below_centre_mm * MM
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + below
        return _Resolved(match.page_index, _seal_rect(geometry, cx, cy, w, h), geometry)
    if isinstance(placement, ExistingField):
        field_ref = _find_sig_field(writer, placement.name)
        field_obj = field_ref.get_object()
        kids = _widgets(field_obj)
        if len(kids) > 1:
            raise FieldError(f"signature field {placement.name!r} has {len(kids)} widgets; "
                             "yinxin seals fields with one", field=placement.name)
        widget_ref = kids[0] if kids else field_ref
        widget = widget_ref.get_object()
        index = _page_index_of_annot(writer, widget_ref, page_refs)
        if index is None:
            raise FieldError(f"signature field {placement.name!r} is on no page", field=placement.name)
        try:
            fx0, fy0, fx1, fy1 = (float(v) for v in widget["/Rect"])
        except (KeyError, TypeError, ValueError):
            raise FieldError(f"signature field {placement.name!r} has no rectangle",
                             field=placement.name) from None
        geometry = _geometry(page_refs[index].get_object())
        dx0, dy0, dx1, dy1 = geometry.user_rect_to_display(fx0, fy0, fx1, fy1)
        rect = _seal_rect(geometry, (dx0 + dx1) / 2, (dy0 + dy1) / 2, w, h)
        return _Resolved(index, rect, geometry, field_ref, widget_ref)
    raise TypeError(f"unknown placement {placement!r}")


# --------------------------------------------------------------------------- widgets

def _set_rect(writer, widget_ref, rect) -> None:
    widget = widget_ref.get_object()
    widget[pdf_name("/Rect")] = _numbers(rect)
    writer.mark_update(widget_ref)


def _separate_widget(writer, field_ref, page_ref) -> None:
    """Split a field merged with its widget into field + one /Kids widget (needed
    before more widgets can join the field)."""
    field_obj = field_ref.get_object()
    widget = generic.DictionaryObject()
    for key in ("/Type", "/Subtype", "/Rect", "/P", "/F", "/MK", "/AP", "/AS", "/Border",
                "/BS", "/StructParent", "/NM", "/M", "/C", "/OC"):
        if key in field_obj:
            widget[pdf_name(key)] = field_obj.raw_get(key)
            del field_obj[key]
    widget_ref = writer.add_object(widget)
    field_obj[pdf_name("/Kids")] = generic.ArrayObject([widget_ref])
    writer.mark_update(field_ref)
    page = page_ref.get_object()
    annots_raw = page.raw_get("/Annots")
    annots = annots_raw.get_object()
    for i, a in enumerate(annots):
        if isinstance(a, generic.IndirectObject) and a.reference == field_ref.reference:
            annots[i] = widget_ref
    writer.mark_update(annots_raw if isinstance(annots_raw, generic.IndirectObject) else page_ref)


def _add_riding_widgets(writer, field_ref, forms: _PictureForms, page_refs,
                        min_slice_mm: float = DEFAULT_MIN_SLICE_MM) -> int:
    field_obj = field_ref.get_object()
    kids_raw = field_obj.raw_get("/Kids")
    kids = kids_raw.get_object()
    pages = list(page_refs)
    first_h = _geometry(pages[0].get_object()).display_size[1]
    top = (first_h - forms.height) / 2          # the same distance from the top on every page
    slices: list[tuple[Any, int, int]] = []     # (page ref, slice index, slices in its group)
    for group in riding_groups(len(pages), forms.width / MM, min_slice_mm):
        slices += [(pages[index], j, len(group)) for j, index in enumerate(group)]
    for page_ref, i, n in slices:
        slice_w = forms.width / n
        geometry = _geometry(page_ref.get_object())
        dw, dh = geometry.display_size
        rect = geometry.display_rect_to_user(dw - slice_w, dh - top - forms.height, dw, dh - top)
        appearance = writer.add_object(forms.form(writer, geometry, slice_index=i, slices=n))
        widget = generic.DictionaryObject({
            pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name("/Widget"),
            pdf_name("/Rect"): _numbers(rect), pdf_name("/F"): generic.NumberObject(WIDGET_FLAGS),
            pdf_name("/P"): page_ref,
            pdf_name("/AP"): generic.DictionaryObject({pdf_name("/N"): appearance}),
        })
        widget_ref = writer.add_object(widget)
        kids.append(widget_ref)
        writer.register_annotation(page_ref, widget_ref)
    if isinstance(kids_raw, generic.IndirectObject):
        writer.mark_update(kids_raw)
    writer.mark_update(field_ref)
    return len(slices)


def _finish_widgets(writer, field_ref) -> None:
    """Print + Locked on every widget of the field."""
    field_obj = field_ref.get_object()
    for ref in _widgets(field_obj) or [field_ref]:
        widget = ref.get_object()
        widget[pdf_name("/F")] = generic.NumberObject(WIDGET_FLAGS)
        writer.mark_update(ref)


# --------------------------------------------------------------------------- stamping

def _copy_input(source: bytes | IO[bytes], out: IO[bytes]) -> None:
    if isinstance(source, (bytes, bytearray, memoryview)):
        out.write(source)
    else:
        _kernel_copy(source, out)
    out.flush()
    out.seek(0)


def _kernel_copy(src: IO[bytes], out: IO[bytes]) -> None:
    """Copy a whole file without passing it through Python (copy_file_range, which
    may share blocks on the same file system, or sendfile), else in chunks."""
    size = os.fstat(src.fileno()).st_size
    in_fd, out_fd = src.fileno(), out.fileno()
    out.flush()
    copied = 0
    for call in (getattr(os, "copy_file_range", None), getattr(os, "sendfile", None)):
        if call is None:
            continue
        try:
            while copied < size:
                if call is os.sendfile:
                    n = os.sendfile(out_fd, in_fd, copied, min(size - copied, 1 << 30))
                else:
                    n = call(in_fd, out_fd, min(size - copied, 1 << 30), copied, copied)
                if n == 0:
                    break
                copied += n
        except OSError:
            continue          # not supported between these files: try the next way
        if copied == size:
            out.seek(size)
            return
    src.seek(copied)
    out.seek(copied)
    shutil.copyfileobj(src, out, CHUNK_SIZE)


def _reserved_bytes(signer: Signer) -> int:
    """Room for the CMS in /Contents (hex digits), computed instead of estimated.

    pyHanko's estimate builds a whole dummy CMS (a few dozen milliseconds of
    asn1crypto work per seal); without a timestamp or embedded validation data
    the CMS is the certificates plus a signer info whose size is bounded by the
    issuer name, serial, algorithms, three signed attributes and the signature.
    The margin is generous: unused room is zeros inside the signed file.
    """
    cert = signer.signing_cert
    certs = sum(len(c.dump()) for c in signer.cert_registry) + len(cert.dump())
    bound = certs + 2 * len(cert.issuer.dump()) + signature_placeholder_size(cert) + 1024
    return 2 * (bound + 2048)


def stamp_pdf(input: bytes | str | os.PathLike[str], output: str | os.PathLike[str], *,
              signer: Signer, drawing: Any, placement: Placement, riding: bool = False,
              field_name: str | None = None, reason: str | None = None,
              location: str | None = None, contact: str | None = None,
              timestamp_url: str | None = None, embed_validation_info: bool = False,
              trust_roots: Sequence[x509.Certificate] = (),
              revocation: RevocationData | None = None,
              clock: pki.Clock = pki.SYSTEM_CLOCK, timestamper: Any = None,
              archive_timestamp: bool = False,
              riding_min_mm: float = DEFAULT_MIN_SLICE_MM) -> StampResult:
    """Seal a PDF: one incremental revision with the seal widget(s) and a PAdES signature.

    `signer` comes from `seal.cms_signer.make_signer` (or any pyHanko Signer
    with a fixed signature mechanism); `drawing` is the seal picture
    (`SealPicture`).  `timestamper` (a `pki.tsa.Timestamper`), or `timestamp_url`
    (an RFC 3161 TSA over HTTP), gives a signature timestamp over the signature
    value (PAdES B-T; an SM2 seal asks for an SM3 imprint).  `embed_validation_info`
    puts the chains and the revocation data (`trust_roots`, `revocation`, nothing
    fetched) of the signer and of the TSA into the document's DSS (B-LT);
    `archive_timestamp` then adds a document timestamp (B-LTA).
    Raises `NotAPdf`, `EncryptedPdf`, `PlacementError`/`AnchorNotFound`,
    `FieldError`, `pki.tsa.TimestampUnavailable`; on any error the output file is
    left untouched.
    """
    _check_arguments(signer, drawing, embed_validation_info, trust_roots, archive_timestamp,
                     timestamper is not None or bool(timestamp_url))
    out_path = Path(output)
    if not out_path.parent.is_dir():
        raise PdfSealError(f"the output directory {str(out_path.parent)!r} does not exist",
                           path=str(out_path))
    if not isinstance(input, (bytes, bytearray, memoryview)) and not Path(input).is_file():
        raise PdfSealError(f"no such file: {os.fspath(input)!r}", path=os.fspath(input))

    check_min_slice(riding_min_mm)
    options = dict(signer=signer, drawing=drawing, placement=placement, riding=riding,
                   field_name=field_name, reason=reason, location=location, contact=contact,
                   timestamp_url=timestamp_url, embed_validation_info=embed_validation_info,
                   trust_roots=trust_roots, revocation=revocation, clock=clock, timestamper=timestamper,
                   archive_timestamp=archive_timestamp, riding_min_mm=riding_min_mm)
    with atomic_output(out_path, mode=0o644) as (fh, _tmp_path):
        if isinstance(input, (bytes, bytearray, memoryview)):
            _copy_input(input, fh)
            return _stamp_stream(fh, input, out_path, **options)
        with open(input, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            if size < PARALLEL_COPY_BYTES:
                _copy_input(src, fh)
                return _stamp_stream(fh, input, out_path, **options)
            # a large file: the kernel copies it into fh and flushes it while pyHanko
            # parses and hashes the same bytes from the input (seal.pdf_io)
            with BackgroundCopy(src.fileno(), fh.fileno(), size):
                spliced = io.BufferedRandom(SplicedFile(src.fileno(), fh.fileno(), size))
                result = _stamp_stream(spliced, input, out_path, **options)
                spliced.flush()
            return result


def _check_arguments(signer, drawing, embed_validation_info, trust_roots, archive_timestamp=False,
                     timestamped=False) -> None:
    if not isinstance(signer, Signer):
        raise TypeError("signer must be a pyHanko Signer (see seal.cms_signer.make_signer)")
    if not (hasattr(drawing, "pdf_content") or hasattr(drawing, "pdf_image")):
        raise TypeError("drawing must have pdf_content() (SealDrawing) or pdf_image() (ImageSeal)")
    if embed_validation_info and not trust_roots:
        raise ValueError("embedding validation information needs the trust roots")
    if archive_timestamp and not (embed_validation_info and timestamped):
        raise ValueError("an archive timestamp (B-LTA) needs a timestamper and embedded validation information")


def _stamp_stream(fh: IO[bytes], input: bytes | str | os.PathLike[str], out_path: Path, *,
                  signer: Signer, drawing: Any, placement: Placement, riding: bool = False,
                  field_name: str | None = None, reason: str | None = None,
                  location: str | None = None, contact: str | None = None,
                  timestamp_url: str | None = None, embed_validation_info: bool = False,
                  trust_roots: Sequence[x509.Certificate] = (),
                  revocation: RevocationData | None = None,
                  clock: pki.Clock = pki.SYSTEM_CLOCK, timestamper: Any = None,
                  archive_timestamp: bool = False,
                  riding_min_mm: float = DEFAULT_MIN_SLICE_MM) -> StampResult:
    """Seal the document held by `fh` (read/write, positioned at 0) in place: the
    incremental update is appended to `fh`.  `input` is only read again to find anchor text."""
    forms = _PictureForms(drawing)
    reader = _open_reader(fh)
    writer = IncrementalPdfFileWriter(fh, prev=reader)
    page_refs = _Pages(writer, _page_count(reader))
    if not page_refs:
        raise NotAPdf("the PDF has no pages")
    anchor_source = bytes(input) if isinstance(input, (bytes, bytearray, memoryview)) \
        else os.fspath(input)
    if isinstance(placement, AnchorText):
        check_pdf_bounds(reader, page_content=True)   # what PDFium inflates to read the text
    resolved = _resolve(placement, writer, reader, anchor_source, page_refs,
                        forms.width, forms.height)

    if resolved.field_ref is not None:
        name = placement.name  # type: ignore[union-attr]
        if field_name is not None and field_name != name:
            raise ValueError("field_name and ExistingField name differ")
        field_ref = resolved.field_ref
        if riding and "/Kids" not in field_ref.get_object():
            _separate_widget(writer, field_ref, page_refs[resolved.page_index])
            resolved = _Resolved(resolved.page_index, resolved.rect, resolved.geometry,
                                 field_ref, _widgets(field_ref.get_object())[0])
        _set_rect(writer, resolved.widget_ref, resolved.rect)
        field_spec = None
    else:
        name = field_name or _new_field_name(writer)
        if name in _existing_field_names(writer):
            raise FieldError(f"a field named {name!r} already exists; use ExistingField "
                             "to seal into it", field=name)
        field_spec = sig_fields.SigFieldSpec(sig_field_name=name, on_page=resolved.page_index,
                                             box=resolved.rect, combine_annotation=not riding)

    vc = None
    if embed_validation_info:
        vc = validation_context(trust_roots, moment=clock.now(), revocation=revocation,
                                signer=signer.signing_cert)
    meta = PdfSignatureMetadata(
        field_name=name, md_algorithm=None, subfilter=sig_fields.SigSeedSubFilter.PADES,
        reason=reason, location=location, contact_info=contact,
        embed_validation_info=embed_validation_info, validation_context=vc,
        use_pades_lta=archive_timestamp, timestamp_field_name=f"{name}-ArchiveTimestamp")
    if timestamper is None and timestamp_url:
        from pki.tsa import HttpTimestamper
        timestamper = HttpTimestamper(timestamp_url)
    if timestamper is not None or embed_validation_info:
        from .pdf_timestamps import PyhankoTimestamper  # also quiets pyHanko's expected notices
        timestamper = PyhankoTimestamper(timestamper) if timestamper is not None else None
    pdf_signer = PdfSigner(meta, signer, timestamper=timestamper, new_field_spec=field_spec,
                           stamp_style=_SealStampStyle(forms=forms, geometry=resolved.geometry))
    signing_time = clock.now()
    riding_pages = 0

    async def sign() -> None:
        nonlocal riding_pages
        session = pdf_signer.init_signing_session(writer, existing_fields_only=field_spec is None)
        session.system_time = signing_time
        validation_info = await session.perform_presign_validation(writer)
        if timestamper is None and validation_info is None and \
                isinstance(signer, KeySigner):
            reserved = _reserved_bytes(signer)
        else:
            reserved = await session.estimate_signature_container_size(
                validation_info, tight=meta.tight_size_estimates)
        tbs = session.prepare_tbs_document(validation_info=validation_info,
                                           bytes_reserved=reserved)
        # The field now exists with its seal widget; everything added before
        # digest_tbs_document lands in the same, signed revision.
        sig_field_ref = _find_field_ref(writer, name)
        _finish_widgets(writer, sig_field_ref)
        if riding:
            riding_pages = _add_riding_widgets(writer, sig_field_ref, forms, page_refs, riding_min_mm)
        prepared, out = tbs.digest_tbs_document(in_place=True, chunk_size=CHUNK_SIZE)
        post = await tbs.perform_signature(
            document_digest=prepared.document_digest,
            pdf_cms_signed_attrs=PdfCMSSignedAttributes(
                signing_time=signing_time,
                adobe_revinfo_attr=(None if validation_info is None
                                    else validation_info.adobe_revinfo_attr),
                cades_signed_attrs=meta.cades_signed_attr_spec))
        await post.post_signature_processing(out, chunk_size=CHUNK_SIZE)

    try:
        run_coroutine(sign())
    except SigningError as exc:
        raise PdfSealError(f"cannot seal the document: {exc}") from exc
    finally:
        if vc is not None:
            _close_quietly(vc)
    size = fh.seek(0, os.SEEK_END)

    mech = signer.get_signature_mechanism_for_digest(None)
    from pyhanko.sign.general import get_cms_hash_algo_for_mechanism
    return StampResult(output=out_path, field_name=name, page=resolved.page_index + 1,
                       rect=tuple(round(v, 3) for v in resolved.rect),  # type: ignore[arg-type]
                       riding_pages=riding_pages, signature_algorithm=mech["algorithm"].native,
                       digest_algorithm=get_cms_hash_algo_for_mechanism(mech),
                       signing_time=signing_time, size=size)


def _find_field_ref(writer, name: str):
    for fq, _, ref in sig_fields.enumerate_sig_fields(writer, filled_status=None, with_name=name):
        return ref
    raise FieldError(f"signature field {name!r} vanished while signing", field=name)


def _close_quietly(vc) -> None:
    try:
        close = getattr(vc, "close", None)
        if close is not None:
            result = close()
            if asyncio.iscoroutine(result):
                asyncio.run(result)
    except Exception:  # pragma: no cover - nothing was fetched, nothing to release
        pass


# --------------------------------------------------------------------------- batches

#: documents up to this size are sealed in memory within a batch (then written with
#: `write_file_atomic`); larger ones are streamed through a temporary file by `stamp_pdf`
BATCH_IN_MEMORY_BYTES = 32 << 20
#: what starting and stopping the worker processes costs (fork, pool threads, joins),
#: measured at 30-40 ms on a 2-core VM; workers are only started when they save more
WORKER_START_SECONDS = 0.04


@dataclass(frozen=True)
class BatchItem:
    """One file of a batch: its result, or the one-line error that stopped it."""

    source: Path
    output: Path
    result: StampResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


_worker_signer: Signer | None = None
_worker_options: dict[str, Any] = {}


def _worker_init(signer_factory: Callable[[], Signer] | None, options: dict[str, Any]) -> None:
    """Load the signer (None: a forked worker keeps the one its parent prepared)."""
    global _worker_signer, _worker_options
    if signer_factory is not None:
        _worker_signer = signer_factory()   # the key is loaded once per process, not per file
        _worker_options = options
        _prepare(_worker_signer, options.get("drawing"))


def _worker_reset() -> None:
    global _worker_signer, _worker_options
    _worker_signer, _worker_options = None, {}


def _prepare(signer: Signer | None, drawing: Any) -> None:
    """Per-process work done once rather than with the first document: the compressed seal
    picture (forked workers inherit it, and the CMS template of the files sealed here)."""
    if drawing is not None and (hasattr(drawing, "pdf_content") or hasattr(drawing, "pdf_image")):
        _encoded(drawing)


def batch_jobs(files: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str], processes: int,
               error: type[PdfSealError] | Any = PdfSealError) -> list[tuple[str, str]]:
    """(input, output) of each file of a batch into `out_dir`/<its name>, after the checks every
    batch makes: the directory exists, no two outputs collide, no output overwrites its input."""
    sources = [Path(f) for f in files]
    target = Path(out_dir)
    if not target.is_dir():
        raise error(f"the output directory {str(target)!r} does not exist", path=str(target))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise error("two input files have the same name; their outputs would collide")
    jobs = []
    for s in sources:
        out = target / s.name
        if out.exists() and s.exists() and out.resolve() == s.resolve():
            raise error(f"the output would overwrite the input {str(s)!r}", path=str(s))
        jobs.append((os.fspath(s), os.fspath(out)))
    if processes < 1:
        raise ValueError("processes must be at least 1")
    return jobs


def failed_item(source: str, output: str, exc: BaseException) -> BatchItem:
    if isinstance(exc, OSError):
        message = f"{exc.strerror or exc}: {source}"
    else:
        message = str(exc)
    return BatchItem(Path(source), Path(output), error=message)


def _stamp_one(job: tuple[str, str]) -> BatchItem:
    """Seal one file of a batch: a small one in memory (no temporary file to read back), then
    written durably (temporary file, fsync, rename); a large one streamed by `stamp_pdf`."""
    source, output = job
    try:
        if os.stat(source).st_size > BATCH_IN_MEMORY_BYTES:
            result = stamp_pdf(source, output, signer=_worker_signer, **_worker_options)
        else:
            with open(source, "rb") as src:
                buffer = io.BytesIO(src.read())
            result = _stamp_stream(buffer, source, Path(output), signer=_worker_signer,
                                   **_worker_options)
            write_file_atomic(output, buffer.getbuffer(), mode=0o644)
        return BatchItem(Path(source), Path(output), result=result)
    except (pki.YinxinError, OSError) as exc:
        return failed_item(source, output, exc)


def stamp_batch(files: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str],
                signer_factory: Callable[[], Signer], *, drawing: Any, placement: Placement,
                processes: int = 2, progress: Callable[[int, int, BatchItem], None] | None = None,
                **options: Any) -> list[BatchItem]:
    """Seal many PDFs with one seal: each output is `out_dir`/<input name>.

    `signer_factory` is called once per process that seals (so a key is
    decrypted and loaded once, never per file): with the "fork" start method
    (Linux) once, here, and the workers inherit the loaded signer; elsewhere
    in each worker, so it must be picklable.  Other keyword options are those
    of `stamp_pdf`.

    Files up to `BATCH_IN_MEMORY_BYTES` are sealed in memory and written like
    every output (temporary file, fsync, rename: never half-written under its
    name); larger ones are streamed by `stamp_pdf`.  (Making a group durable
    with one syncfs was measured no faster than an fsync per file here, and
    syncfs also waits for every other writer on the file system.)
    The first files are sealed here; worker processes (at most `processes`)
    are started only if the rest, at the speed measured on those, takes long
    enough to repay starting them.  A file that fails is reported in its
    `BatchItem` and does not stop the others; `progress(done, total, item)` is
    called in the caller's process once each file is durable (or has failed).
    """
    jobs = batch_jobs(files, out_dir, processes)
    opts = dict(options, drawing=drawing, placement=placement)
    items: list[BatchItem] = []
    total = len(jobs)
    if not jobs:
        return items

    def report(item: BatchItem) -> None:
        items.append(item)
        if progress:
            progress(len(items), total, item)

    import multiprocessing

    fork = "fork" in multiprocessing.get_all_start_methods()
    try:
        _worker_init(signer_factory, opts)
        _check_arguments(_worker_signer, drawing, bool(opts.get("embed_validation_info")),
                         opts.get("trust_roots", ()))
        # the first two files here: the second one's time says whether workers pay
        head = min(2, total)
        for index in range(head):
            started = time.perf_counter()
            report(_stamp_one(jobs[index]))
        per_file = time.perf_counter() - started
        rest = jobs[head:]
        workers = min(processes, len(rest))
        if workers > 1 and len(rest) * per_file * (1 - 1 / workers) <= WORKER_START_SECONDS:
            workers = 1
        if workers <= 1:
            for job in rest:
                report(_stamp_one(job))
            return items
        ctx = multiprocessing.get_context("fork" if fork else None)
        init = (None, opts) if fork else (signer_factory, opts)
        chunk = max(1, min(8, len(rest) // (4 * workers)))
        with ctx.Pool(workers, initializer=_worker_init, initargs=init) as pool:
            for item in pool.imap(_stamp_one, rest, chunksize=chunk):
                report(item)
        return items
    finally:
        _worker_reset()

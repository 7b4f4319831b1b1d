"""Sealing an OFD (GB/T 33190 §18, GB/T 38540): one more signature, nothing else rewritten.

`stamp_ofd` adds, for the first DocBody of OFD.xml:

* `Signs/Sign_K/Seal.esl` — the seal's SES_Seal;
* `Signs/Sign_K/Signature.xml` — SignedInfo: Provider, SignatureMethod 1.2.156.10197.1.501,
  SignatureDateTime, References (CheckMethod 1.2.156.10197.1.401, base64 SM3 of every file of
  the package at signing time — Seal.esl included — except Signatures.xml, which later seals
  extend, and this signature's own Signature.xml and SignedValue.dat), StampAnnot(s) (PageRef,
  Boundary, and Clip for riding slices), Seal/BaseLoc; and SignedValue → SignedValue.dat;
* `Signs/Sign_K/SignedValue.dat` — a v4 SES_Signature: TBS_Sign {4, the SES_Seal, timeInfo,
  dataHash = SM3 of the exact Signature.xml bytes, propertyInfo = its path}, the signer's
  certificate, SM2-with-SM3 over the DER of TBS_Sign;

and the entry in Signatures.xml (found through OFD.xml's DocBody/Signatures, or created — the
one time OFD.xml itself changes, before anything in it is signed).  Every other file is copied
as stored, so earlier seals keep verifying and a second seal works the same way.

Coordinates: OFD's are millimetres from the page's top-left; `AtPosition` gives the seal's
centre from the lower-left, as for PDF, and is converted here.
"""
from __future__ import annotations

import base64
import functools
import os
import posixpath
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

import pki
from pki.algorithms import PrivateKey
from pki.keyfiles import atomic_output
from pki.sm2 import sm3
from pki.version import __version__

from ..limits import DEFAULT_LIMITS, ReadLimits
from ..pdf_errors import AnchorNotFound, PlacementError
from ..pdf_placement import AnchorText, AtPosition, ExistingField, Placement
from ..riding import DEFAULT_MIN_SLICE_MM, riding_groups
from ..ses import build_signature, parse_seal
from . import xmlsafe
from .document import Box, Page, find_text, pages_of
from .errors import NotAnOfd, OfdSealError
from .package import OfdPackage
from .zipwrite import rewrite

__all__ = ["OfdStampResult", "stamp_ofd", "SM2_WITH_SM3", "SM3_OID"]

SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM3_OID = "1.2.156.10197.1.401"


@dataclass(frozen=True)
class OfdStampResult:
    """What one OFD sealing did (the same names as `seal.pdf_sign.StampResult`)."""
    output: Path
    field_name: str                             # the Signature's ID in Signatures.xml
    signature_path: str                         # package path of its Signature.xml
    page: int                                   # 1-based page of the seal
    rect: tuple[float, float, float, float]     # StampAnnot Boundary: x, y, width, height (mm, top-left origin)
    riding_pages: int
    signing_time: datetime
    size: int
    signature_algorithm: str = "sm3_sm2"
    digest_algorithm: str = "sm3"
    format: str = "ofd"
    timestamp_time: datetime | None = None      # genTime of SES_Signature.timeStamp (SM3 imprint), when asked for


@dataclass(frozen=True)
class _Annot:
    page: Page
    boundary: Box
    clip: Box | None = None


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _box(box: Box) -> str:
    return " ".join(_num(v) for v in box)


# --------------------------------------------------------------------------- placement

def _place(package: OfdPackage, pages: list[Page], placement: Placement, w: float, h: float) -> _Annot:
    if isinstance(placement, AtPosition):
        count = len(pages)
        index = placement.page - 1 if placement.page > 0 else count + placement.page
        if not 0 <= index < count:
            raise PlacementError(f"page {placement.page} is out of range: the document has {count} "
                                 f"page{'s' if count != 1 else ''}", page=placement.page, pages=count)
        page = pages[index]
        bx, by, bw, bh = page.box
        if not (0 <= placement.x_mm <= bw and 0 <= placement.y_mm <= bh):
            raise PlacementError(f"the seal's centre ({placement.x_mm:g} mm, {placement.y_mm:g} mm) is off the "
                                 f"page ({bw:.1f} × {bh:.1f} mm)", page=placement.page)
        cx, cy = bx + placement.x_mm, by + bh - placement.y_mm      # lower-left → OFD's top-left
        return _Annot(page, (cx - w / 2, cy - h / 2, w, h))
    if isinstance(placement, AnchorText):
        match = find_text(package, pages, placement.text, placement.occurrence)
        if match is None:
            which = "" if placement.occurrence in ("last", "first") else f" {placement.occurrence} times"
            raise AnchorNotFound(f"the text {placement.text!r} does not occur in the document{which}",
                                 text=placement.text)
        x, y, mw, mh = match.box
        below = 0.1 * h if placement.below_centre_mm is None else placement.below_centre_mm
        cx, cy = x + mw / 2, y + mh / 2 - below
        return _Annot(pages[match.page_index], (cx - w / 2, cy - h / 2, w, h))
    if isinstance(placement, ExistingField):
        raise PlacementError("an OFD has no signature fields: place the seal with --at or --anchor",
                             field=placement.name)
    raise TypeError(f"unknown placement {placement!r}")


def _riding(pages: list[Page], w: float, h: float, min_slice_mm: float) -> list[_Annot]:
    top = (pages[0].box[3] - h) / 2
    annots = []
    for group in riding_groups(len(pages), w, min_slice_mm):
        n = len(group)
        slice_w = w / n
        for j, index in enumerate(group):
            bx, by, bw, _bh = pages[index].box
            annots.append(_Annot(pages[index], (bx + bw - (j + 1) * slice_w, by + top, w, h),
                                 (j * slice_w, 0.0, slice_w, h)))
    return annots


# --------------------------------------------------------------------------- signatures list

_ID = re.compile(r"^(.*?)(\d+)$")


class _Ids:
    """Signature and StampAnnot IDs after the document's MaxSignId (its prefix and width kept)."""

    def __init__(self, values: list[str]) -> None:
        best, prefix, width = 0, "", 0
        for value in values:
            m = _ID.match(value.strip())
            if m and int(m.group(2)) >= best:
                best, prefix, width = int(m.group(2)), m.group(1), len(m.group(2)) if m.group(2)[0] == "0" else 0
        self.n, self.prefix, self.width = best, prefix, width

    def next(self) -> str:
        self.n += 1
        return f"{self.prefix}{str(self.n).zfill(self.width)}"

    @property
    def last(self) -> str:
        return f"{self.prefix}{str(self.n).zfill(self.width)}"


def _signatures_xml(existing: bytes | None, what: str, sig_id: str, base_loc: str, ids: _Ids) -> bytes:
    if existing is None:
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Signatures xmlns:ofd="{xmlsafe.OFD_NS}">'
                f'<ofd:MaxSignId>{escape(ids.last)}</ofd:MaxSignId><ofd:Signature ID={quoteattr(sig_id)} '
                f'Type="Seal" BaseLoc={quoteattr(base_loc)}/></ofd:Signatures>').encode("utf-8")
    root = xmlsafe.parse(existing, what)
    max_ids = xmlsafe.findall(root, "MaxSignId")
    for element in max_ids:
        element.text = ids.last
    if not max_ids:
        element = etree.Element(xmlsafe.qname(root, "MaxSignId"))
        element.text = ids.last
        root.insert(0, element)
    entry = etree.SubElement(root, xmlsafe.qname(root, "Signature"))
    entry.set("ID", sig_id)
    entry.set("Type", "Seal")
    entry.set("BaseLoc", base_loc)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def _ofd_xml_with_signatures(data: bytes, body_index: int, signatures_loc: str) -> bytes:
    root = xmlsafe.parse(data, "OFD.xml")
    body = xmlsafe.findall(root, "DocBody")[body_index]
    element = etree.Element(xmlsafe.qname(body, "Signatures"))
    element.text = signatures_loc
    anchor = xmlsafe.find(body, "Versions") or xmlsafe.find(body, "DocRoot")
    anchor.addnext(element)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


# --------------------------------------------------------------------------- Signature.xml

def _signature_xml(*, when: datetime, references: list[tuple[str, bytes]], annots: list[tuple[str, _Annot]],
                   seal_loc: str, signed_value_loc: str) -> bytes:
    refs = "".join(f"<ofd:Reference FileRef={quoteattr(path)}><ofd:CheckValue>"
                   f"{base64.b64encode(digest).decode('ascii')}</ofd:CheckValue></ofd:Reference>"
                   for path, digest in references)
    stamps = "".join(
        f"<ofd:StampAnnot ID={quoteattr(annot_id)} PageRef={quoteattr(a.page.id)} Boundary=\"{_box(a.boundary)}\""
        + (f" Clip=\"{_box(a.clip)}\"" if a.clip is not None else "") + "/>"
        for annot_id, a in annots)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Signature xmlns:ofd="{xmlsafe.OFD_NS}">'
            f'<ofd:SignedInfo><ofd:Provider ProviderName="yinxin" Company="yinxin" Version="{__version__}"/>'
            f"<ofd:SignatureMethod>{SM2_WITH_SM3}</ofd:SignatureMethod>"
            f"<ofd:SignatureDateTime>{when:%Y%m%d%H%M%S}Z</ofd:SignatureDateTime>"
            f'<ofd:References CheckMethod="{SM3_OID}">{refs}</ofd:References>{stamps}'
            f"<ofd:Seal><ofd:BaseLoc>{escape(seal_loc)}</ofd:BaseLoc></ofd:Seal></ofd:SignedInfo>"
            f"<ofd:SignedValue>{escape(signed_value_loc)}</ofd:SignedValue></ofd:Signature>").encode("utf-8")


# --------------------------------------------------------------------------- sealing

@functools.lru_cache(maxsize=8)
def _seal_size(seal: bytes) -> tuple[float, float]:
    """The picture's size in mm from the SES_Seal (parsed once per seal in a batch)."""
    data = parse_seal(seal)
    w = float(data.width_mm) if data.width_mm > 0 else 40.0
    return w, float(data.height_mm) if data.height_mm > 0 else w


def _seal_into(package: OfdPackage, out, *, key: PrivateKey, certificate: bytes, seal: bytes,
               placement: Placement, riding: bool, riding_min_mm: float, when: datetime,
               distid: bytes | None, output: Path, timestamper: Any = None) -> OfdStampResult:
    if key.algorithm != "sm2":
        raise OfdSealError(f"a GB/T 38540 seal on an OFD is SM2 with SM3; this seal's key is {key.algorithm}: "
                           "use an SM2 seal", algorithm=key.algorithm)
    w, h = _seal_size(bytes(seal))
    body = package.doc_bodies()[0]
    pages = pages_of(package, body.doc_root)
    if not pages:
        raise NotAnOfd(f"{body.doc_root} has no pages: nothing to seal")
    main = _place(package, pages, placement, w, h)
    annots = [main] + (_riding(pages, w, h, riding_min_mm) if riding else [])

    doc_dir = posixpath.dirname(body.doc_root)
    signatures_path = body.signatures or posixpath.join(doc_dir, "Signs", "Signatures.xml").lstrip("/")
    existing = package.read(signatures_path) if package.exists(signatures_path) else None
    id_values: list[str] = []
    if existing is not None:
        listing = xmlsafe.parse(existing, signatures_path)
        id_values += [(e.text or "") for e in xmlsafe.findall(listing, "MaxSignId")]
        id_values += [e.get("ID") or "" for e in xmlsafe.findall(listing, "Signature")]
    ids = _Ids(id_values)
    signs_dir = posixpath.dirname(signatures_path)
    k = 0
    taken = {n.lower() for n in package.names}
    while any(n.startswith(f"{signs_dir}/sign_{k}/".lower()) for n in taken):
        k += 1
    sign_dir = f"{signs_dir}/Sign_{k}" if signs_dir else f"Sign_{k}"
    signature_path, value_path, seal_path = (f"{sign_dir}/{n}" for n in ("Signature.xml", "SignedValue.dat",
                                                                          "Seal.esl"))
    sig_id = ids.next()
    annot_ids = [(ids.next(), a) for a in annots]
    new_signatures = _signatures_xml(existing, signatures_path, sig_id, "/" + signature_path, ids)
    replace: dict[str, bytes] = {signatures_path: new_signatures}
    new_ofd_xml = None
    if body.signatures is None:
        new_ofd_xml = _ofd_xml_with_signatures(package.read("OFD.xml"), body.index, "/" + signatures_path)
        replace["OFD.xml"] = new_ofd_xml

    references: list[tuple[str, bytes]] = []
    for name in package.names:
        if name == signatures_path:
            continue
        digest = sm3(new_ofd_xml) if name == "OFD.xml" and new_ofd_xml is not None else package.digest(name)
        references.append(("/" + name, digest))
    references.append(("/" + seal_path, sm3(seal)))
    signature_xml = _signature_xml(when=when, references=references, annots=annot_ids, seal_loc="/" + seal_path,
                                   signed_value_loc="/" + value_path)
    stamped: dict[str, Any] = {}
    signed_value = build_signature(seal_der=seal, signing_time=when, data_hash=sm3(signature_xml),
                                   property_info="/" + signature_path, signer_key=key,
                                   signer_cert_der=certificate, distid=distid,
                                   timestamp_for=None if timestamper is None else
                                   lambda value: _token_over(timestamper, value, stamped))
    rewrite(package, out, replace=replace,
            add=[(seal_path, seal), (signature_path, signature_xml), (value_path, signed_value)], when=when)
    return OfdStampResult(output=output, field_name=sig_id, signature_path="/" + signature_path,
                          page=main.page.index + 1, rect=tuple(round(v, 3) for v in main.boundary),  # type: ignore[arg-type]
                          riding_pages=len(annots) - 1, signing_time=when, size=out.tell(),
                          timestamp_time=stamped.get("time"))


def _token_over(timestamper: Any, signature_value: bytes, stamped: dict[str, Any]) -> bytes:
    """SES_Signature.timeStamp: a token over the signature value from `timestamper` (a
    `pki.tsa.Timestamper`), with an SM3 imprint as for a PDF seal of an SM2 key (GM/T 0033: an SM2
    TSA; one that refuses SM3, such as an RSA TSA, stops the seal with its badAlg)."""
    from pki.tsa import parse_token
    token = timestamper.timestamp(signature_value, "sm3")
    stamped["time"] = parse_token(token).gen_time
    return token


def stamp_ofd(input: bytes | str | os.PathLike[str], output: str | os.PathLike[str], *, key: PrivateKey,
              certificate: bytes, seal: bytes, placement: Placement, riding: bool = False,
              riding_min_mm: float = DEFAULT_MIN_SLICE_MM, clock: pki.Clock = pki.SYSTEM_CLOCK,
              distid: bytes | None = None, limits: ReadLimits = DEFAULT_LIMITS,
              timestamper: Any = None) -> OfdStampResult:
    """Seal an OFD into `output` (written whole or not at all; see the module docstring).

    `key`/`certificate` are the seal's SM2 key and certificate, `seal` its SES_Seal (DER);
    `timestamper` (a `pki.tsa.Timestamper`) adds SES_Signature.timeStamp over the signature value
    (a TSA that cannot answer stops the seal: nothing is written).
    Raises NotAnOfd, OfdTooLarge, OfdStructureError/UnsafeXml, PlacementError/AnchorNotFound,
    OfdSealError (not SM2); on any error no output file is written."""
    out_path = Path(output)
    if not out_path.parent.is_dir():
        raise OfdSealError(f"the output directory {str(out_path.parent)!r} does not exist", path=str(out_path))
    when = clock.now().astimezone(timezone.utc).replace(microsecond=0)
    with OfdPackage(input, limits=limits) as package:
        with atomic_output(out_path, mode=0o644) as (fh, _tmp):
            return _seal_into(package, fh, key=key, certificate=certificate, seal=seal, placement=placement,
                              riding=riding, riding_min_mm=riding_min_mm, when=when, distid=distid,
                              output=out_path, timestamper=timestamper)


def stamp_ofd_bytes(data: bytes, *, key: PrivateKey, certificate: bytes, seal: bytes, placement: Placement,
                    riding: bool = False, riding_min_mm: float = DEFAULT_MIN_SLICE_MM,
                    clock: pki.Clock = pki.SYSTEM_CLOCK, distid: bytes | None = None,
                    limits: ReadLimits = DEFAULT_LIMITS, timestamper: Any = None) -> tuple[bytes, OfdStampResult]:
    """The sealed OFD as bytes (for documents held in memory, e.g. the document flow)."""
    import io
    when = clock.now().astimezone(timezone.utc).replace(microsecond=0)
    buffer = io.BytesIO()
    with OfdPackage(data, limits=limits) as package:
        result = _seal_into(package, buffer, key=key, certificate=certificate, seal=seal, placement=placement,
                            riding=riding, riding_min_mm=riding_min_mm, when=when, distid=distid,
                            output=Path("-"), timestamper=timestamper)
    return buffer.getvalue(), result


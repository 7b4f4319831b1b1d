"""The operations the pages and the HTTP API share: one place where the console calls the library
for an actor, so both faces act with the same rules (the library's), the same checks of object
access, and the same answers.

Nothing here decides a rule of the flow or of seals: who may see a document is
`docflow.listing`'s answer, every act is the library's guard.  What the console adds is the edge's
own duty — no object is touched that the actor may not see (answered 404, as for an id that does
not exist), placements and uploads are well-formed before the library sees them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from pki.errors import YinxinError

from .errors import ConsoleError, bad_request
from .render import PDFIUM_LOCK
from .web import Console, Who

#: actions of POST /api/v1/documents/{id}/actions and of the document page's forms
STEP_ACTIONS = ("approve", "return", "forward", "sign-off", "register")
ACTIONS = STEP_ACTIONS + ("revise", "seal", "send", "open", "recall", "receive", "archive")


# --------------------------------------------------------------------------- placements

def placement(page: Any, x_mm: Any, y_mm: Any, anchor: Any) -> Any:
    """`AtPosition(page, x_mm, y_mm)` or `AnchorText(anchor)` from request values (strings or
    numbers); 400 when neither or both are given, 422 when a value is not a number."""
    from seal.pdf_placement import AnchorText, AtPosition
    given = [v not in (None, "") for v in (page, x_mm, y_mm)]
    if anchor not in (None, ""):
        if any(given):
            raise bad_request("give either page, x_mm and y_mm, or anchor — not both")
        if not isinstance(anchor, str) or len(anchor) > 200:
            raise ConsoleError(422, "placement", "the anchor is a text of at most 200 characters")
        return AnchorText(anchor)
    if not all(given):
        raise bad_request("say where the seal goes: page, x_mm and y_mm (its centre, millimetres from the page's "
                          "lower-left corner), or anchor (a text on the page)")
    try:
        page_no = int(page)
        x, y = float(x_mm), float(y_mm)
    except (TypeError, ValueError):
        raise ConsoleError(422, "placement", "page is a whole number, x_mm and y_mm are numbers") from None
    if page_no < 1 or not (math.isfinite(x) and math.isfinite(y)):
        raise ConsoleError(422, "placement", "page counts from 1; x_mm and y_mm are finite numbers")
    return AtPosition(page_no, x, y)


def _locked_if_anchor(where: Any) -> Any:
    from seal.pdf_placement import AnchorText
    if isinstance(where, AnchorText):
        return PDFIUM_LOCK
    import contextlib
    return contextlib.nullcontext()


# --------------------------------------------------------------------------- signing keys

def unlock_with_pin(console: Console, who: Who, pin: bytes | None) -> None:
    """When a PIN comes with an act and the actor's key is not unlocked: unlock it — into the
    session for a console user (the cookie gets the new session key), for this request for a token."""
    if pin is None or who.actor.can_sign:
        return
    if who.token_text is not None:
        who.actor, _ = console.tokens.resume(who.token_text, pin=pin)
        return
    from pki.accounts.selfservice import unlock_key
    from .security import SessionCookie
    session_key, actor = unlock_key(console.accounts, who.actor, pin)
    assert who.cookie is not None
    who.new_cookie = SessionCookie(who.cookie.session_id, who.cookie.token, session_key)
    who.actor = actor


# --------------------------------------------------------------------------- documents

def visible_document(console: Console, who: Who, doc_id: int) -> Any:
    """The document, if the actor may see it; DocumentNotFound (404) otherwise."""
    from docflow.listing import require_visible
    require_visible(console.flow, doc_id, who.id)
    return console.flow.show(doc_id)


def document_data(console: Console, who: Who, doc_id: int) -> dict[str, Any]:
    """A document as the API shows it: the library's dictionary, what the route offers the actor now,
    and the signed decisions with their verification."""
    from docflow.listing import next_actions
    doc = visible_document(console, who, doc_id)
    data = doc.to_dict()
    data["actions"] = [a.to_dict() for a in next_actions(console.flow, doc_id, who.id)]
    data["decisions"] = decisions(console, doc_id)
    data["verifications"] = [{k: v for k, v in r.items() if k != "report"} for r in console.flow.verifications(doc_id)]
    return data


def decisions(console: Console, doc_id: int) -> dict[str, Any]:
    """The document's log checked against its chain of signed decisions (`DocumentFlow.verify_log`):
    each record's signature, certificate and link, and each log entry's record."""
    return console.flow.verify_log(doc_id).to_dict()


def new_document(console: Console, who: Who, *, kind: str, title: str, pdf: bytes,
                 attachments: Sequence[tuple[str, bytes]] = (), declared: Sequence[str] = (),
                 main_recipients: Sequence[str] = (), copy_to: Sequence[str] = (), urgency: str | None = None,
                 to: str | None = None, note: str | None = None, pin: bytes | None = None) -> Any:
    from docflow import Attachment
    from .web import check_pdf
    check_pdf(pdf, "the body")
    unlock_with_pin(console, who, pin)
    doc = console.flow.new_document(
        kind=kind, title=title, pdf=pdf, actor=who.actor,
        attachments=[Attachment(name, data) for name, data in attachments], declared_attachments=declared,
        main_recipients=main_recipients, copy_to=copy_to, urgency=urgency, note=note, to=to)
    console.prerender.documents([doc.id], force=True)       # page 1 drawn before anyone opens it
    return doc


@dataclass(frozen=True)
class ActResult:
    action: str
    document: Any = None          # docflow.Document after the act
    pdf: bytes | None = None      # `open`: the delivered bytes
    receipt: Any = None           # `receive`
    archive: Any = None           # `archive`

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action}
        if self.document is not None:
            out["document"] = self.document.to_dict()
        if self.receipt is not None:
            out["receipt"] = self.receipt.to_dict()
        if self.archive is not None:
            record = self.archive
            out["archive"] = {"doc_id": record.doc_id, "archived_at": record.archived_at.isoformat(),
                              "archived_by": record.archived_by, **record.digests.to_dict()}
        if self.pdf is not None:
            out["opened"] = True
        return out


def act(console: Console, who: Who, doc_id: int, action: str, *, opinion: str | None = None, to: str | None = None,
        recipients: Sequence[str] = (), seal_password: bytes | None = None, where: Any = None,
        pdf: bytes | None = None, pin: bytes | None = None, seen: str | None = None) -> ActResult:
    """One act on a document by the actor, with the CLI's rules: the library's guard decides.
    `seen` (the document's updated_at the form was made from) refuses an act on a document that
    changed since the person looked at it (409)."""
    from docflow.errors import ChangedMeanwhile
    if action not in ACTIONS:
        raise ConsoleError(422, "invalid", f"unknown action {action!r} (one of: {', '.join(ACTIONS)})", action=action)
    doc = visible_document(console, who, doc_id)
    if seen is not None and seen != doc.updated_at.isoformat():
        raise ChangedMeanwhile(f"document {doc_id} changed since you opened it: look at it again", doc=doc_id)
    unlock_with_pin(console, who, pin)
    result = _act(console, who, doc, action, opinion=opinion, to=to, recipients=recipients,
                  seal_password=seal_password, where=where, pdf=pdf)
    # a new version (revised, sealed) or a new document (received): its likely pages drawn ahead
    if action in ("revise", "seal"):
        console.prerender.documents([doc_id], force=True)
    elif action == "receive" and result.receipt is not None and result.receipt.incoming_doc_id is not None:
        console.prerender.documents([result.receipt.incoming_doc_id], force=True)
    return result


def _act(console: Console, who: Who, doc: Any, action: str, *, opinion: str | None, to: str | None,
         recipients: Sequence[str], seal_password: bytes | None, where: Any, pdf: bytes | None) -> ActResult:
    flow, actor, doc_id = console.flow, who.actor, doc.id
    if action in STEP_ACTIONS:
        return ActResult(action, document=flow.act(doc_id, actor=actor, action=action, opinion=opinion, to=to))
    if action == "revise":
        if pdf is None:
            raise bad_request("revise needs the new version's PDF (file)")
        from .web import check_pdf
        check_pdf(pdf, "the new version")
        return ActResult(action, document=flow.revise(doc_id, actor=actor, pdf=pdf, note=opinion))
    if action == "seal":
        if seal_password is None:
            raise bad_request("sealing needs the seal's password (password)")
        org = flow.organisation(doc.organisation)
        if not org.seal:
            raise ConsoleError(409, "state", f"{org.name} names no seal in its directory file")
        with _locked_if_anchor(where):
            sealed = flow.seal(doc_id, actor=actor, seal=org.seal, password=seal_password, placement=where)
        return ActResult(action, document=sealed)
    if action == "send":
        if not recipients:
            raise bad_request("send needs at least one recipient organisation (to)")
        return ActResult(action, document=flow.send(doc_id, actor=actor, to=list(recipients)))
    if action == "open":
        return ActResult(action, pdf=flow.open(doc_id, actor=actor))
    if action == "recall":
        return ActResult(action, document=flow.recall(doc_id, actor=actor))
    if action == "receive":
        return ActResult(action, receipt=flow.receive(doc_id, actor=actor))
    assert action == "archive"
    return ActResult(action, archive=flow.archive(doc_id, actor=actor))


def document_pdf(console: Console, who: Who, doc_id: int, version: int | None = None) -> tuple[bytes, Any]:
    """The PDF of a version the actor may see (checked against its digests) and the document."""
    doc = visible_document(console, who, doc_id)
    if version is not None and not any(v.number == version for v in doc.versions):
        raise ConsoleError(404, "not_found", f"document {doc_id} has no version {version}")
    return console.flow.pdf(doc_id, version), doc


# --------------------------------------------------------------------------- seals

def my_seals(console: Console, who: Who) -> list[Any]:
    """The seals whose custodian the actor is."""
    return [r for r in console.registry.list() if r.custodian == who.actor.account_id]


def custodian_seal(console: Console, who: Who, name: str) -> Any:
    """The seal, if the actor is its custodian (only the custodian stamps: 印章管理员); 404 for a seal
    the actor may not use, as for one that does not exist."""
    from seal.errors import SealNotFound
    try:
        record = console.registry.get(name)
    except SealNotFound:
        record = None
    if record is None or record.custodian != who.actor.account_id:
        raise SealNotFound(f"you hold no seal named {name!r}", seal=name)
    return record


def stamp(console: Console, who: Who, seal_name: str, password: bytes, pdf: bytes, where: Any) -> Any:
    """Seal an uploaded PDF with one of the actor's seals (the seal password checked and counted by
    the library); returns the StampOutcome."""
    from .web import check_pdf
    check_pdf(pdf)
    record = custodian_seal(console, who, seal_name)
    with _locked_if_anchor(where):
        return console.seals.stamp(record.name, password, pdf, placement=where, actor=who.actor,
                                   reason=f"{record.organisation}盖章")


def verify(console: Console, pdf: bytes) -> dict[str, Any]:
    """The verification report of an uploaded PDF (every signature, GB/T 38540's order)."""
    from .web import check_pdf
    check_pdf(pdf)
    report = console.seals.verify(pdf)
    data = report.to_dict()
    return data


def seal_picture(record: Any) -> tuple[bytes, str]:
    """The seal's picture as drawn on paper: SVG for a vector seal, the PNG an administrator gave."""
    if record.picture_kind == "png" and record.picture_png is not None:
        return bytes(record.picture_png), "image/png"
    return record.drawing().svg().encode("utf-8"), "image/svg+xml"


def anchor_point(console: Console, pdf: bytes, text: str, height_mm: float) -> dict[str, float] | None:
    """Where the seal's centre goes to press `text` (the organisation's name) as GB/T 9704 wants — the
    text slightly below the centre — as the page and millimetres; None when the text is not there."""
    from seal.pdf_errors import PlacementError
    from seal.pdf_placement import AnchorText, find_text
    import pypdfium2 as pdfium
    try:
        with PDFIUM_LOCK:
            match = find_text(pdf, AnchorText(text))
            doc = pdfium.PdfDocument(pdf)
            try:
                page = doc[match.page_index]
                width, height = page.get_size()
                rotation = page.get_rotation()
                box = page.get_cropbox()
                page.close()
            finally:
                doc.close()
    except (PlacementError, YinxinError, ValueError):
        return None
    from seal.pdf_placement import MM, PageGeometry
    geometry = PageGeometry.from_boxes(box, box, rotation)
    x0, y0, x1, y1 = geometry.user_rect_to_display(*match.box)
    return {"page": match.page_index + 1, "x_mm": round((x0 + x1) / 2 / MM, 2),
            "y_mm": round(((y0 + y1) / 2) / MM + 0.1 * height_mm, 2)}


__all__ = ["ACTIONS", "STEP_ACTIONS", "placement", "unlock_with_pin", "visible_document", "document_data",
           "decisions", "new_document", "act", "ActResult", "document_pdf", "my_seals", "custodian_seal", "stamp",
           "verify", "seal_picture", "anchor_point"]

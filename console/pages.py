"""The console's pages for the people of the flow: login, 待办/已办/发文/收文, a document, sealing by
dragging the seal, the standalone stamping page, verification.

Stable hooks the browser tests rely on (keep them): login fields ``username``, ``password``,
``new_password``; to-do rows ``data-testid="todo-item"`` with ``data-doc-id``; on a sealing page the
page image ``data-testid="page-image"``, the movable seal ``data-testid="seal-handle"``, the password
field ``seal_password`` and the button ``data-testid="seal-submit"``; on the verification page the file
input ``file`` and the result ``data-testid="verify-result"`` with ``data-valid``; ``/stamp`` with the
file input ``file``, the seal chooser ``seal``, the same sealing hooks and, after sealing, the link
``data-testid="download"``.
"""
from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from pki.errors import YinxinError

from . import ops
from .errors import ConsoleError, answer_for, bad_request
from .render import ZOOMS, PageSize, point_to_mm
from .security import LOGIN_COOKIE, SessionCookie, cookie_header, random_token
from .web import (Who, check_pdf, console_of, page, redirect, render, run, secret_field, set_session_cookie,
                  text_field, upload_field, with_headers)

LOG_LABELS = {"new": "拟稿", "approve": "同意", "sign-off": "签发", "register": "登记编号", "forward": "转交",
              "return": "退回", "revise": "修改", "seal": "盖章", "send": "发送", "open": "打开", "recall": "撤回",
              "receive": "签收", "receive_refused": "拒收退回", "archive": "归档"}
BOX_TITLES = {"todo": "待办公文", "done": "已办公文", "outgoing": "发文", "incoming": "收文"}
KIND_CHOICES = (("upward", "上行文"), ("downward", "下行文"), ("parallel", "平行文"))
DONE_MESSAGES = {"approve": "已同意并转下一步", "sign-off": "已签发", "register": "已登记编号", "forward": "已转交",
                 "return": "已退回拟稿人", "revise": "已上传新版本", "seal": "已盖章，盖章件已验证",
                 "send": "已发送", "recall": "已撤回", "receive": "已签收", "archive": "已归档", "new": "公文已提交",
                 "password": "口令已修改", "open": "已打开"}


def _int(value: Any, default: int | None = None, *, what: str = "number") -> int | None:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"{what} is a whole number") from None


def _zoom(request: Request) -> float:
    try:
        zoom = float(request.query_params.get("zoom", "1"))
    except ValueError:
        zoom = 1.0
    return zoom if zoom in ZOOMS else 1.0


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/todo"


# =========================================================================== login / logout / password

def _login_form(request: Request, context: dict[str, Any], *, status: int = 200) -> Response:
    console = console_of(request)
    value = request.cookies.get(LOGIN_COOKIE)
    if not value or len(value) > 64:
        value = random_token(console.home.rand)
    response = render(request, "login.html", {"login_csrf": value, **context}, status=status)
    response.headers.append("set-cookie", cookie_header(LOGIN_COOKIE, value, max_age=3600, secure=True))
    return response


@page(auth=False)
async def login_page(request: Request, who: None, form: None) -> Response:
    return _login_form(request, {"next": _safe_next(request.query_params.get("next")), "username": ""})


@page(auth=False)
async def login_submit(request: Request, who: None, form: FormData) -> Response:
    console = console_of(request)
    from pki.accounts.errors import PasswordChangeRequired
    expected = request.cookies.get(LOGIN_COOKIE)
    submitted = form.get("login_csrf")
    import hmac
    if not expected or not isinstance(submitted, str) or not hmac.compare_digest(expected, submitted):
        raise ConsoleError(403, "csrf", "the login form expired or came from elsewhere: reload the page and log in "
                                        "again")
    username = text_field(form, "username", required=True, max_length=64) or ""
    password = secret_field(form, "password", required=True) or b""
    new_password = secret_field(form, "new_password")
    confirm = secret_field(form, "new_password_confirm")
    pin = secret_field(form, "pin")
    next_url = _safe_next(text_field(form, "next"))
    context = {"next": next_url, "username": username}
    if new_password is not None and confirm is not None and new_password != confirm:
        return _login_form(request, context | {"change": True, "error": "两次输入的新口令不一致"}, status=422)
    try:
        session = await run(console.accounts.authenticate, username, password, new_password=new_password, pin=pin)
    except PasswordChangeRequired:
        return _login_form(request, context | {"change": True,
                                               "notice": "首次登录（或口令已过期）：请设置新口令后登录。"})
    except YinxinError as exc:
        answer = answer_for(exc)
        return _login_form(request, context | {"change": new_password is not None, "error": answer.message},
                           status=answer.status)
    cookie = SessionCookie(session.id, session.token, session.session_key)
    response = redirect(request, next_url)
    set_session_cookie(response, cookie)
    response.headers.append("set-cookie", cookie_header(LOGIN_COOKIE, "", max_age=0, secure=True))
    return response


@page
async def logout_submit(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    await run(console.accounts.logout, who.actor)
    response = redirect(request, "/login")
    set_session_cookie(response, None)
    return response


@page
async def password_page(request: Request, who: Who, form: None) -> Response:
    return render(request, "password.html", {"title": "修改口令"}, who=who)


@page
async def password_submit(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    from pki.accounts.selfservice import change_password
    current = secret_field(form, "password", required=True) or b""
    new = secret_field(form, "new_password", required=True) or b""
    if new != secret_field(form, "new_password_confirm"):
        return render(request, "password.html", {"title": "修改口令", "error": "两次输入的新口令不一致"},
                      status=422, who=who)
    await run(change_password, console.accounts, who.actor, current, new)
    return redirect(request, "/todo?done=password")


# =========================================================================== lists

@page
async def root_page(request: Request, who: Who, form: None) -> Response:
    return redirect(request, "/todo")


async def _list(request: Request, who: Who, box: str) -> Response:
    console = console_of(request)
    from docflow import DirectoryError
    from docflow.listing import STATE_LABELS, documents
    items: list[Any] = []
    notice = None
    if box == "todo":
        try:
            items = await run(console.flow.todo, who.id)
        except DirectoryError:
            notice = "您不在任何机构的人员名单中：没有待办公文。"
        # what is waiting is what will be opened: its first pages drawn meanwhile, in the background
        console.prerender.documents(dict.fromkeys(i.doc_id for i in items))
    else:
        items = await run(documents, console.flow, who.id, box)
    return render(request, "list.html", {"box": box, "title": BOX_TITLES[box], "items": items, "notice": notice,
                                         "states": STATE_LABELS, "done": DONE_MESSAGES.get(
                                             request.query_params.get("done", ""))}, who=who)


@page
async def todo_page(request: Request, who: Who, form: None) -> Response:
    return await _list(request, who, "todo")


@page
async def done_page(request: Request, who: Who, form: None) -> Response:
    return await _list(request, who, "done")


@page
async def outgoing_page(request: Request, who: Who, form: None) -> Response:
    return await _list(request, who, "outgoing")


@page
async def incoming_page(request: Request, who: Who, form: None) -> Response:
    return await _list(request, who, "incoming")


# =========================================================================== a new document

@page
async def new_document_page(request: Request, who: Who, form: None) -> Response:
    return render(request, "new.html", {"title": "拟稿", "kinds": KIND_CHOICES}, who=who)


@page
async def new_document_submit(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    kind = text_field(form, "kind", required=True, max_length=20) or ""
    title = text_field(form, "title", required=True, max_length=200) or ""
    pdf = await upload_field(form, "file") or b""
    lines = lambda name: [x.strip() for x in (text_field(form, name) or "").replace("，", ",").split(",") if x.strip()]
    from starlette.datastructures import UploadFile
    attachments = [(item.filename or "attachment", await item.read()) for item in form.getlist("attachment")
                   if isinstance(item, UploadFile) and item.filename]
    doc = await run(ops.new_document, console, who, kind=kind, title=title, pdf=pdf, attachments=attachments,
                    declared=lines("declare"), main_recipients=lines("main_to"), copy_to=lines("cc"), urgency=text_field(form, "urgency"),
                    to=text_field(form, "to"), note=text_field(form, "note"), pin=secret_field(form, "pin"))
    return redirect(request, f"/documents/{doc.id}?done=new", who=who)


# =========================================================================== a document

def _doc_id(request: Request) -> int:
    try:
        return int(request.path_params["doc_id"])
    except (KeyError, ValueError):
        raise ConsoleError(404, "not_found", "no such document") from None


def _version_of(doc: Any, request: Request) -> Any:
    number = _int(request.query_params.get("v"), doc.current_version, what="v")
    for version in doc.versions:
        if version.number == number:
            return version
    raise ConsoleError(404, "not_found", f"document {doc.id} has no version {number}")


def _sizes(console: Any, sha256: str, data: Any) -> list[PageSize]:
    return console.renderer.sizes(sha256, data)


@page
async def document_page(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    from docflow.elements import LABELS
    from docflow.listing import STATE_LABELS, next_actions
    from docflow.routes import KIND_TITLES
    doc_id = _doc_id(request)
    doc = await run(ops.visible_document, console, who, doc_id)
    version = _version_of(doc, request)
    sizes = await run(_sizes, console, version.digests.sha256, lambda: console.flow.pdf(doc_id, version.number))
    zoom = _zoom(request)
    actions = await run(next_actions, console.flow, doc_id, who.id)
    log = await run(console.flow.log, doc_id)
    decisions = await run(ops.decisions, console, doc_id)
    verifications = await run(console.flow.verifications, doc_id)
    org = await run(console.flow.organisation, doc.organisation)
    names = {p.id: p.name for p in org.people}
    return render(request, "document.html", {
        "title": doc.elements.title, "doc": doc, "version": version, "pages": sizes, "zoom": zoom, "zooms": ZOOMS,
        "actions": actions, "log": log, "decisions": decisions, "verifications": verifications,
        "entry_checks": {e["seq"]: e for e in decisions["entries"]}, "action_labels": LOG_LABELS,
        "labels": LABELS, "elements": doc.elements.to_dict(), "kind_title": KIND_TITLES.get(doc.kind, doc.kind),
        "state_title": STATE_LABELS.get(doc.state, doc.state), "names": names,
        "done": DONE_MESSAGES.get(request.query_params.get("done", ""))}, who=who)


@page
async def document_page_image(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    doc_id = _doc_id(request)
    doc = await run(ops.visible_document, console, who, doc_id)
    version = _version_of(doc, request)
    number = _int(request.path_params.get("page"), what="page") or 1
    try:
        png = await run(console.renderer.png, version.digests.sha256, lambda: console.flow.pdf(doc_id, version.number),
                        number, _zoom(request))
    except ValueError as exc:
        raise ConsoleError(404, "not_found", str(exc)) from None
    response = Response(png, media_type="image/png")
    with_headers(request, response)
    response.headers["cache-control"] = "private, max-age=3600"
    return response


@page
async def document_file(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    doc_id = _doc_id(request)
    version = _int(request.query_params.get("v"), what="v")
    data, doc = await run(ops.document_pdf, console, who, doc_id, version)
    name = f"document-{doc_id}-v{version or doc.current_version}.pdf"
    response = Response(data, media_type="application/pdf",
                        headers={"content-disposition": f'attachment; filename="{name}"'})
    return with_headers(request, response)


@page
async def document_attachment(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    doc_id = _doc_id(request)
    await run(ops.visible_document, console, who, doc_id)
    name, data = await run(console.flow.attachment, doc_id, int(request.path_params["position"]))
    from urllib.parse import quote
    response = Response(data, media_type="application/octet-stream",
                        headers={"content-disposition": f"attachment; filename*=UTF-8''{quote(name)}"})
    return with_headers(request, response)


def _recipients(form: FormData) -> list[str]:
    out = []
    for value in form.getlist("to"):
        if isinstance(value, str) and value.strip():
            out.append(value.strip())
    return out


@page
async def document_act(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    doc_id = _doc_id(request)
    action = text_field(form, "action", required=True, max_length=20) or ""
    recipients = _recipients(form)
    result = await run(ops.act, console, who, doc_id, action, opinion=text_field(form, "opinion", max_length=4000),
                       to=recipients[0] if len(recipients) == 1 and action != "send" else None,
                       recipients=recipients if action == "send" else (),
                       pdf=await upload_field(form, "file", required=False), pin=secret_field(form, "pin"),
                       seen=text_field(form, "seen"))
    if action == "open" and result.pdf is not None:
        response = Response(result.pdf, media_type="application/pdf",
                            headers={"content-disposition": f'attachment; filename="document-{doc_id}.pdf"'})
        return with_headers(request, response)
    if action == "receive" and result.receipt is not None:
        receipt = result.receipt
        if receipt.accepted and receipt.incoming_doc_id:
            return redirect(request, f"/documents/{receipt.incoming_doc_id}?done=receive", who=who)
        return render(request, "receipt.html", {"title": "签收", "receipt": receipt}, who=who, status=409)
    if action == "archive":
        return redirect(request, f"/documents/{doc_id}?done=archive", who=who)
    return redirect(request, f"/documents/{doc_id}?done={action}", who=who)


# =========================================================================== sealing

def _seal_context(console: Any, record: Any, sizes: list[PageSize], number: int, zoom: float,
                  snap: dict[str, float] | None) -> dict[str, Any]:
    size = sizes[number - 1]
    return {"record": record, "pages": sizes, "page_number": number, "page_size": size, "zoom": zoom,
            "zooms": ZOOMS, "snap": snap, "seal_w": round(record.width_mm, 3), "seal_h": round(record.height_mm, 3),
            "start_x": round(snap["x_mm"], 2) if snap and snap["page"] == number else round(size.width_mm / 2, 2),
            "start_y": round(snap["y_mm"], 2) if snap and snap["page"] == number else round(size.height_mm / 2, 2)}


def _doc_seal(console: Any, who: Who, doc_id: int) -> tuple[Any, Any, bytes]:
    """The document at its seal step for its organisation's seal, which the actor keeps."""
    doc = ops.visible_document(console, who, doc_id)
    org = console.flow.organisation(doc.organisation)
    if not org.seal:
        raise ConsoleError(409, "state", f"{org.name} names no seal in its directory file")
    record = ops.custodian_seal(console, who, org.seal)
    return doc, record, console.flow.pdf(doc_id)


@page
async def seal_page(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    doc_id = _doc_id(request)
    doc, record, pdf = await run(_doc_seal, console, who, doc_id)
    sha = doc.current.digests.sha256
    sizes = await run(_sizes, console, sha, lambda: pdf)
    snap = await run(ops.anchor_point, console, pdf, doc.organisation, record.height_mm)
    default = snap["page"] if snap else len(sizes)
    number = min(max(_int(request.query_params.get("page"), default, what="page") or 1, 1), len(sizes))
    context = _seal_context(console, record, sizes, number, _zoom(request), snap)
    return render(request, "seal.html", context | {
        "title": f"盖章：{doc.elements.title}", "doc": doc, "action_url": f"/documents/{doc_id}/seal",
        "image_url": f"/documents/{doc_id}/pages/{number}.png?v={doc.current_version}&zoom={context['zoom']}",
        "preview_url": f"/documents/{doc_id}/seal/preview.png", "page_url": f"/documents/{doc_id}/seal",
        "seen": doc.updated_at.isoformat()}, who=who)


def _position(form: FormData, sizes: list[PageSize]) -> Any:
    where = ops.placement(text_field(form, "page"), text_field(form, "x_mm"), text_field(form, "y_mm"),
                          text_field(form, "anchor"))
    from seal.pdf_placement import AtPosition
    if isinstance(where, AtPosition):
        if where.page > len(sizes):
            raise ConsoleError(422, "placement", f"page {where.page} is out of range: the document has "
                                                 f"{len(sizes)} pages")
        size = sizes[where.page - 1]
        if not (0 <= where.x_mm <= size.width_mm and 0 <= where.y_mm <= size.height_mm):
            raise ConsoleError(422, "placement", f"the drop point ({where.x_mm:g} mm, {where.y_mm:g} mm) is outside "
                                                 f"the page ({size.width_mm:.1f} × {size.height_mm:.1f} mm): "
                                                 "nothing was sealed")
    return where


@page
async def seal_submit(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    doc_id = _doc_id(request)
    doc, record, pdf = await run(_doc_seal, console, who, doc_id)
    sizes = await run(_sizes, console, doc.current.digests.sha256, lambda: pdf)
    where = _position(form, sizes)
    password = secret_field(form, "seal_password", required=True)
    await run(ops.act, console, who, doc_id, "seal", seal_password=password, where=where,
              pin=secret_field(form, "pin"), seen=text_field(form, "seen"))
    page_no = getattr(where, "page", None)
    return redirect(request, f"/documents/{doc_id}?done=seal" + (f"&page={page_no}#page-{page_no}" if page_no else ""),
                    who=who)


def _preview_png(console: Any, record: Any, page_png: bytes, size: PageSize, x_mm: float, y_mm: float) -> bytes:
    """The page picture with the seal laid over it at its true size, centred on the point."""
    from PIL import Image
    page_image = Image.open(io.BytesIO(page_png)).convert("RGBA")
    px_per_mm = page_image.width / size.width_mm
    drawing = record.drawing()
    if hasattr(drawing, "png") and record.picture_kind != "png":
        dpi = max(36, min(1200, round(px_per_mm * 25.4)))
        seal_image = Image.open(io.BytesIO(drawing.png(dpi=dpi))).convert("RGBA")
    else:
        seal_image = Image.open(io.BytesIO(bytes(record.picture_png))).convert("RGBA")
    seal_image = seal_image.resize((max(1, round(record.width_mm * px_per_mm)), max(1, round(record.height_mm * px_per_mm))))
    cx, cy = x_mm * px_per_mm, (size.height_mm - y_mm) * px_per_mm
    page_image.alpha_composite(seal_image, (round(cx - seal_image.width / 2), round(cy - seal_image.height / 2)))
    out = io.BytesIO()
    page_image.convert("RGB").save(out, format="PNG", compress_level=1)
    return out.getvalue()


def _query_point(request: Request, sizes: list[PageSize]) -> tuple[int, float, float]:
    q = request.query_params
    where = ops.placement(q.get("page"), q.get("x_mm"), q.get("y_mm"), None)
    number = where.page
    if number > len(sizes):
        raise ConsoleError(404, "not_found", f"no page {number}")
    return number, where.x_mm, where.y_mm


@page
async def seal_preview(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    doc_id = _doc_id(request)
    doc, record, pdf = await run(_doc_seal, console, who, doc_id)
    sha = doc.current.digests.sha256
    sizes = await run(_sizes, console, sha, lambda: pdf)
    number, x, y = _query_point(request, sizes)
    zoom = _zoom(request)
    page_png = await run(console.renderer.png, sha, lambda: pdf, number, zoom)
    png = await run(_preview_png, console, record, page_png, sizes[number - 1], x, y)
    return with_headers(request, Response(png, media_type="image/png"))


@page
async def seal_picture(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    record = await run(console.registry.get, request.path_params["name"])
    data, media = ops.seal_picture(record)
    response = Response(data, media_type=media)
    with_headers(request, response)
    response.headers["cache-control"] = "private, max-age=3600"
    return response


# =========================================================================== the standalone stamping page

def _session(who: Who) -> str:
    assert who.actor.session_id is not None
    return who.actor.session_id


@page
async def stamp_page(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    seals = await run(ops.my_seals, console, who)
    return render(request, "stamp.html", {"title": "盖章", "seals": seals}, who=who)


@page
async def stamp_upload(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    name = text_field(form, "seal", required=True, max_length=64) or ""
    await run(ops.custodian_seal, console, who, name)
    data = await upload_field(form, "file") or b""
    await run(check_pdf, data)
    upload_id = await run(console.uploads.put, _session(who), data, ".pdf")
    return redirect(request, f"/stamp/{upload_id}?seal={name}")


def _upload(console: Any, who: Who, upload_id: str) -> bytes:
    return console.uploads.get(_session(who), upload_id, ".pdf")


@page
async def stamp_place_page(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    upload_id = request.path_params["upload_id"]
    pdf = await run(_upload, console, who, upload_id)
    record = await run(ops.custodian_seal, console, who, request.query_params.get("seal", ""))
    import hashlib
    sha = hashlib.sha256(pdf).hexdigest()
    sizes = await run(_sizes, console, sha, lambda: pdf)
    snap = await run(ops.anchor_point, console, pdf, record.organisation, record.height_mm)
    default = snap["page"] if snap else 1
    number = min(max(_int(request.query_params.get("page"), default, what="page") or 1, 1), len(sizes))
    context = _seal_context(console, record, sizes, number, _zoom(request), snap)
    return render(request, "seal.html", context | {
        "title": "盖章", "doc": None, "action_url": f"/stamp/{upload_id}",
        "image_url": f"/stamp/{upload_id}/pages/{number}.png?zoom={context['zoom']}",
        "preview_url": f"/stamp/{upload_id}/preview.png?seal={record.name}",
        "page_url": f"/stamp/{upload_id}?seal={record.name}", "seen": None}, who=who)


@page
async def stamp_page_image(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    pdf = await run(_upload, console, who, request.path_params["upload_id"])
    import hashlib
    number = _int(request.path_params.get("page"), what="page") or 1
    try:
        png = await run(console.renderer.png, hashlib.sha256(pdf).hexdigest(), lambda: pdf, number, _zoom(request))
    except ValueError as exc:
        raise ConsoleError(404, "not_found", str(exc)) from None
    return with_headers(request, Response(png, media_type="image/png"))


@page
async def stamp_preview(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    pdf = await run(_upload, console, who, request.path_params["upload_id"])
    record = await run(ops.custodian_seal, console, who, request.query_params.get("seal", ""))
    import hashlib
    sha = hashlib.sha256(pdf).hexdigest()
    sizes = await run(_sizes, console, sha, lambda: pdf)
    number, x, y = _query_point(request, sizes)
    page_png = await run(console.renderer.png, sha, lambda: pdf, number, _zoom(request))
    png = await run(_preview_png, console, record, page_png, sizes[number - 1], x, y)
    return with_headers(request, Response(png, media_type="image/png"))


@page
async def stamp_submit(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    upload_id = request.path_params["upload_id"]
    pdf = await run(_upload, console, who, upload_id)
    name = text_field(form, "seal", required=True, max_length=64) or ""
    import hashlib
    sizes = await run(_sizes, console, hashlib.sha256(pdf).hexdigest(), lambda: pdf)
    where = _position(form, sizes)
    password = secret_field(form, "seal_password", required=True) or b""
    outcome = await run(ops.stamp, console, who, name, password, pdf, where)
    await run(console.uploads.write, _session(who), upload_id, ".sealed.pdf", outcome.pdf)
    report = await run(ops.verify, console, outcome.pdf)
    sealed_sha = hashlib.sha256(outcome.pdf).hexdigest()
    await run(_sizes, console, sealed_sha, lambda: outcome.pdf)
    return render(request, "stamped.html", {
        "title": "盖章完成", "upload_id": upload_id, "report": report, "page_number": getattr(where, "page", 1),
        "digest": outcome.digest}, who=who)


@page
async def stamp_sealed_file(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    upload_id = request.path_params["upload_id"]
    data = await run(console.uploads.get, _session(who), upload_id, ".sealed.pdf")
    response = Response(data, media_type="application/pdf",
                        headers={"content-disposition": f'attachment; filename="sealed-{upload_id[:8]}.pdf"'})
    return with_headers(request, response)


@page
async def stamp_sealed_image(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    upload_id = request.path_params["upload_id"]
    data = await run(console.uploads.get, _session(who), upload_id, ".sealed.pdf")
    import hashlib
    number = _int(request.path_params.get("page"), what="page") or 1
    try:
        png = await run(console.renderer.png, hashlib.sha256(data).hexdigest(), lambda: data, number, 1.0)
    except ValueError as exc:
        raise ConsoleError(404, "not_found", str(exc)) from None
    return with_headers(request, Response(png, media_type="image/png"))


# =========================================================================== verification

@page
async def verify_page(request: Request, who: Who, form: None) -> Response:
    return render(request, "verify.html", {"title": "验证", "report": None}, who=who)


@page
async def verify_submit(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    data = await upload_field(form, "file") or b""
    report = await run(ops.verify, console, data)
    text = json.dumps(report, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    report_id = await run(console.uploads.put, _session(who), text, ".json")
    return render(request, "verify.html", {"title": "验证结果", "report": report, "report_id": report_id}, who=who)


@page
async def verify_report(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    report_id = request.path_params["report_id"]
    data = await run(console.uploads.get, _session(who), report_id, ".json")
    response = Response(data, media_type="application/json",
                        headers={"content-disposition": f'attachment; filename="verification-{report_id[:8]}.json"'})
    return with_headers(request, response)


__all__ = [name for name in dir() if name.endswith(("_page", "_submit", "_image", "_file", "_preview", "_report",
                                                    "_act", "_picture"))]

"""The HTTP API under /api/v1/ for other systems: JSON in and out (multipart where a file travels),
an API token as ``Authorization: Bearer …`` acting as its account and no more, errors as
``{"error": CODE, "message": TEXT}``.  The operations are the pages' (`console.ops`): the same
library calls, rules and signed decisions as the CLI.  `openapi.json` beside this module describes
it (written as data; a test validates it and checks the answers against it).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from . import ops
from .errors import ConsoleError, bad_request
from .web import JsonResponse, Who, api, api_blocking, console_of, read_form, run, secret_field, text_field, upload_field, with_headers

OPENAPI = Path(__file__).resolve().parent / "openapi.json"


def _doc_id(request: Request) -> int:
    try:
        return int(request.path_params["doc_id"])
    except (KeyError, ValueError):
        raise ConsoleError(404, "not_found", "no such document") from None


async def openapi_document(request: Request) -> Response:
    response = Response(OPENAPI.read_bytes(), media_type="application/json")
    with_headers(request, response)
    response.headers["cache-control"] = "public, max-age=300"
    return response


@api
async def me(request: Request, who: Who) -> Response:
    data = who.actor.to_dict()
    data.pop("session", None)
    data["token"] = {"id": who.token.id, "name": who.token.name, "expires_at": who.token.expires_at.isoformat()}
    return JsonResponse(data)


@api_blocking
def todo(console: Any, who: Who, request: Request) -> Response:
    from docflow.errors import DirectoryError
    try:
        items = console.flow.todo(who.id)
    except DirectoryError:
        items = []
    return JsonResponse({"items": [i.to_dict() for i in items]})


@api
async def document_list(request: Request, who: Who) -> Response:
    console = console_of(request)
    from docflow.listing import documents
    box = request.query_params.get("box", "outgoing")
    if box not in ("done", "outgoing", "incoming"):
        raise ConsoleError(422, "invalid", "box is done, outgoing or incoming")
    items = await run(documents, console.flow, who.id, box)
    return JsonResponse({"box": box, "items": [i.to_dict() for i in items]})


def _list_field(form: FormData, name: str) -> list[str]:
    return [str(v).strip() for v in form.getlist(name) if not isinstance(v, UploadFile) and str(v).strip()]


@api
async def document_create(request: Request, who: Who) -> Response:
    console = console_of(request)
    form = await read_form(request)
    pdf = await upload_field(form, "file") or b""
    attachments = []
    for item in form.getlist("attachment"):
        if isinstance(item, UploadFile):
            attachments.append((item.filename or "attachment", await item.read()))
    doc = await run(ops.new_document, console, who, kind=text_field(form, "kind", required=True, max_length=20) or "",
                    title=text_field(form, "title", required=True, max_length=200) or "", pdf=pdf,
                    attachments=attachments, declared=_list_field(form, "declare"),
                    main_recipients=_list_field(form, "main_to"), copy_to=_list_field(form, "cc"),
                    urgency=text_field(form, "urgency"), note=text_field(form, "note"), to=text_field(form, "to"),
                    pin=secret_field(form, "pin"))
    data = await run(ops.document_data, console, who, doc.id)
    return JsonResponse(data, status_code=201, headers={"location": f"/api/v1/documents/{doc.id}"})


@api
async def document_show(request: Request, who: Who) -> Response:
    console = console_of(request)
    return JsonResponse(await run(ops.document_data, console, who, _doc_id(request)))


@api
async def document_file(request: Request, who: Who) -> Response:
    console = console_of(request)
    raw = request.query_params.get("version")
    try:
        version = int(raw) if raw else None
    except ValueError:
        raise bad_request("version is a whole number") from None
    data, doc = await run(ops.document_pdf, console, who, _doc_id(request), version)
    number = version or doc.current_version
    return Response(data, media_type="application/pdf",
                    headers={"content-disposition": f'attachment; filename="document-{doc.id}-v{number}.pdf"'})


async def _action_body(request: Request) -> tuple[dict[str, Any], bytes | None]:
    """The action's fields from JSON, or from a form (a revision carries its PDF as `file`)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise bad_request("the body is not JSON") from None
        if not isinstance(body, dict):
            raise bad_request("the body is a JSON object")
        return body, None
    form = await read_form(request)
    fields: dict[str, Any] = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
    fields["recipients"] = _list_field(form, "recipients")
    return fields, await upload_field(form, "file", required=False)


def _str(body: dict[str, Any], name: str, max_length: int = 4000) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and name in ("page", "x_mm", "y_mm"):
        return str(value)
    if not isinstance(value, str):
        raise ConsoleError(422, "invalid", f"{name} is a string", field=name)
    if len(value) > max_length:
        raise ConsoleError(422, "invalid", f"{name} is at most {max_length} characters", field=name)
    return value


@api
async def document_action(request: Request, who: Who) -> Response:
    console = console_of(request)
    doc_id = _doc_id(request)
    body, pdf = await _action_body(request)
    action = _str(body, "action", 20)
    if action is None:
        raise bad_request("the action is missing (one of: " + ", ".join(ops.ACTIONS) + ")")
    recipients = body.get("recipients") or []
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        raise ConsoleError(422, "invalid", "recipients is a list of organisation names", field="recipients")
    where = None
    password = None
    if action == "seal":
        where = ops.placement(_str(body, "page"), _str(body, "x_mm"), _str(body, "y_mm"), _str(body, "anchor", 200)) \
            if any(body.get(k) not in (None, "") for k in ("page", "x_mm", "y_mm", "anchor")) else None
        text = _str(body, "password", 1024)
        password = text.encode("utf-8") if text is not None else None
    pin_text = _str(body, "pin", 1024)
    result = await run(ops.act, console, who, doc_id, action, opinion=_str(body, "opinion"), to=_str(body, "to", 200),
                       recipients=recipients, seal_password=password, where=where, pdf=pdf,
                       pin=pin_text.encode("utf-8") if pin_text is not None else None)
    data = result.to_dict()
    if result.pdf is not None:
        data["file"] = f"/api/v1/documents/{doc_id}/file"
    return JsonResponse(data)


@api
async def seal_stamp(request: Request, who: Who) -> Response:
    console = console_of(request)
    form = await read_form(request)
    pdf = await upload_field(form, "file") or b""
    password = secret_field(form, "password", required=True) or b""
    where = ops.placement(text_field(form, "page"), text_field(form, "x_mm"), text_field(form, "y_mm"),
                          text_field(form, "anchor", max_length=200))
    outcome = await run(ops.stamp, console, who, request.path_params["name"], password, pdf, where)
    return Response(outcome.pdf, media_type="application/pdf",
                    headers={"x-yinxin-sha256": outcome.digest, "x-yinxin-field": outcome.field_name,
                             "content-disposition": 'attachment; filename="sealed.pdf"'})


@api
async def verify(request: Request, who: Who) -> Response:
    console = console_of(request)
    form = await read_form(request)
    pdf = await upload_field(form, "file") or b""
    return JsonResponse(await run(ops.verify, console, pdf))


async def not_found(request: Request) -> Response:
    from .web import json_error
    return json_error(request, ConsoleError(404, "not_found", f"no API route {request.method} {request.url.path}"))


__all__ = ["openapi_document", "me", "todo", "document_list", "document_create", "document_show", "document_file",
           "document_action", "seal_stamp", "verify", "not_found"]

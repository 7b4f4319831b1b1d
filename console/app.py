"""The console's ASGI application: pages, the HTTP API, static files, and the middleware around them.

`create_app(home, options)` makes one worker's application; `console.run.serve` starts several.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import admin, api, pages
from .limits import BodyLimit
from .options import ConsoleOptions
from .web import Console, with_headers

STATIC = Path(__file__).resolve().parent / "static"


class _Static(StaticFiles):
    """Vendored files with the security headers (and a day's caching)."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        with_headers(Request(scope), response)
        response.headers["cache-control"] = "public, max-age=86400"
        return response


async def healthz(request: Request) -> Response:
    return with_headers(request, PlainTextResponse("ok\n"))


def routes() -> list[Any]:
    p, a, d = pages, admin, api
    get, post = ["GET", "HEAD"], ["POST"]
    return [
        Route("/", p.root_page, methods=get),
        Route("/healthz", healthz, methods=get),
        Route("/login", p.login_page, methods=get),
        Route("/login", p.login_submit, methods=post),
        Route("/logout", p.logout_submit, methods=post),
        Route("/password", p.password_page, methods=get),
        Route("/password", p.password_submit, methods=post),
        Route("/todo", p.todo_page, methods=get),
        Route("/done", p.done_page, methods=get),
        Route("/outgoing", p.outgoing_page, methods=get),
        Route("/incoming", p.incoming_page, methods=get),
        Route("/documents/new", p.new_document_page, methods=get),
        Route("/documents/new", p.new_document_submit, methods=post),
        Route("/documents/{doc_id:int}", p.document_page, methods=get),
        Route("/documents/{doc_id:int}/pages/{page:int}.png", p.document_page_image, methods=get),
        Route("/documents/{doc_id:int}/file", p.document_file, methods=get),
        Route("/documents/{doc_id:int}/attachments/{position:int}", p.document_attachment, methods=get),
        Route("/documents/{doc_id:int}/act", p.document_act, methods=post),
        Route("/documents/{doc_id:int}/seal", p.seal_page, methods=get),
        Route("/documents/{doc_id:int}/seal", p.seal_submit, methods=post),
        Route("/documents/{doc_id:int}/seal/preview.png", p.seal_preview, methods=get),
        Route("/seals/{name}/picture", p.seal_picture, methods=get),
        Route("/stamp", p.stamp_page, methods=get),
        Route("/stamp", p.stamp_upload, methods=post),
        Route("/stamp/{upload_id}", p.stamp_place_page, methods=get),
        Route("/stamp/{upload_id}", p.stamp_submit, methods=post),
        Route("/stamp/{upload_id}/pages/{page:int}.png", p.stamp_page_image, methods=get),
        Route("/stamp/{upload_id}/preview.png", p.stamp_preview, methods=get),
        Route("/stamp/{upload_id}/sealed.pdf", p.stamp_sealed_file, methods=get),
        Route("/stamp/{upload_id}/sealed/{page:int}.png", p.stamp_sealed_image, methods=get),
        Route("/verify", p.verify_page, methods=get),
        Route("/verify", p.verify_submit, methods=post),
        Route("/verify/{report_id}.json", p.verify_report, methods=get),
        Route("/admin/accounts", a.accounts_page, methods=get),
        Route("/admin/accounts", a.accounts_create, methods=post),
        Route("/admin/accounts/{account_id}/{op}", a.accounts_act, methods=post),
        Route("/admin/seals", a.seals_page, methods=get),
        Route("/admin/seals/{name}/password", a.seal_password, methods=post),
        Route("/admin/seals/{name}/unlock", a.seal_unlock, methods=post),
        Route("/admin/organisations", a.organisations_page, methods=get),
        Route("/admin/organisations", a.organisations_load, methods=post),
        Route("/admin/audit", a.audit_page, methods=get),
        Route("/admin/audit.csv", a.audit_csv, methods=get),
        Route("/api/v1/openapi.json", d.openapi_document, methods=get),
        Route("/api/v1/me", d.me, methods=get),
        Route("/api/v1/todo", d.todo, methods=get),
        Route("/api/v1/documents", d.document_list, methods=get),
        Route("/api/v1/documents", d.document_create, methods=post),
        Route("/api/v1/documents/{doc_id:int}", d.document_show, methods=get),
        Route("/api/v1/documents/{doc_id:int}/file", d.document_file, methods=get),
        Route("/api/v1/documents/{doc_id:int}/actions", d.document_action, methods=post),
        Route("/api/v1/seals/{name}/stamp", d.seal_stamp, methods=post),
        Route("/api/v1/verify", d.verify, methods=post),
        Route("/api/{rest:path}", d.not_found),
        Mount("/static", app=_Static(directory=str(STATIC)), name="static"),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    from .errors import ConsoleError
    from .web import json_error, page_error
    status = getattr(exc, "status_code", 404)
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "bad_request")
    text = {404: "no such page", 405: f"{request.method} is not allowed here"}.get(status, "bad request")
    error = ConsoleError(status if status in (400, 404) else 400 if status != 405 else 405, code, text)
    if request.url.path.startswith("/api/"):
        return json_error(request, error)
    return page_error(request, error, None)


def create_app(home: Any, options: ConsoleOptions | None = None, *, warm: bool = False) -> Any:
    """One worker's ASGI application on `home` (a pki.home.Home); `warm`: do before returning what
    the first requests would otherwise wait for (`Console.warm`)."""
    options = options or ConsoleOptions()
    app = Starlette(routes=routes(), exception_handlers={404: _not_found, 405: _not_found})
    app.state.console = Console(home, options)
    if warm:
        app.state.console.warm()
    return BodyLimit(app, max_bytes=options.max_upload_bytes)


__all__ = ["create_app", "routes"]

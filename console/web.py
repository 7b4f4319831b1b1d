"""The console's plumbing shared by the pages and the HTTP API: the per-worker state, who is asking
(cookie session or bearer token), forms and uploads within bounds, errors, templates, audit context.

Every endpoint is wrapped by `page` (HTML, cookie session, CSRF on POST) or `api` (JSON, bearer
token): they resolve the actor — a refused one never reaches the library — run the handler, turn a
library error into its status and message (`errors.answer_for`), and restart the session's idle
timer only after a request that succeeded, so a refused act leaves the database as it was.
Library calls are blocking: handlers run them in the thread pool (`run`), inside the audit context
naming the client address.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from pki import audit
from pki.errors import YinxinError

from .errors import ConsoleError, answer_for, bad_request
from .options import ConsoleOptions
from .render import PageRenderer
from .security import (COOKIE, HSTS, LOGIN_COOKIE, SECURITY_HEADERS, SessionCookie, check_origin,
                       cookie_header)

log = logging.getLogger("yinxin.console")
HERE = Path(__file__).resolve().parent


# --------------------------------------------------------------------------- per-worker state

class Console:
    """What one worker serves from: the home and the library objects on it."""

    def __init__(self, home: Any, options: ConsoleOptions) -> None:
        from docflow import DocumentFlow
        from pki.accounts.accounts import Accounts
        from pki.accounts.tokens import ApiTokens
        from seal.keycache import KeyCache
        from seal.service import SealService
        self.home = home
        self.options = options
        # opened seal keys are kept for a while in this worker: each stamp still proves the password
        self.flow = DocumentFlow(home, seal_service=SealService(home, key_cache=KeyCache(home.rand)))
        self.accounts = Accounts.of(home)
        self.tokens = ApiTokens.of(home)
        cache = Path(options.cache_dir) if options.cache_dir else home.path / "cache"
        self.renderer = PageRenderer(cache / "pages")
        from .prerender import Prerenderer
        self.prerender = Prerenderer(self.renderer, self.flow)
        self.uploads = UploadStore(cache / "uploads", rand=home.rand)
        self.limiter = FailureLimiter(options.failures_per_minute)
        self.templates = Environment(loader=FileSystemLoader(str(HERE / "templates")),
                                     autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["fmt_time"] = _fmt_time
        self.templates.filters["jsontext"] = lambda value: __import__("json").dumps(
            value, ensure_ascii=False, sort_keys=True, default=str)

    def warm(self) -> None:
        """What a worker would otherwise do on its first requests, done before it takes any: import
        PDFium, Pillow, pikepdf and the flow's modules, compile the templates and the statements
        that every request runs (token lookup, 待办).  Checks nothing and changes nothing; a step
        that fails is only logged (the first request then does it, as without warming)."""
        def imports() -> None:
            import pikepdf  # noqa: F401
            import pypdfium2  # noqa: F401
            from PIL import Image, PngImagePlugin  # noqa: F401
            from docflow import listing, routes  # noqa: F401

        def templates() -> None:
            for name in self.templates.list_templates():
                if name.endswith(".html"):
                    self.templates.get_template(name)

        def statements() -> None:
            from docflow.errors import DirectoryError
            from pki.accounts.errors import SessionInvalid
            try:        # an unknown token: runs (and so compiles) the lookup, finds nothing
                self.tokens.resume("yx1_" + "0" * 16 + "_" + "A" * 43)
            except SessionInvalid:
                pass
            try:
                self.flow.todo("-warm-up-")
            except DirectoryError:
                pass

        for step in (imports, templates, statements):
            try:
                step()
            except Exception as exc:
                log.warning("warming the worker (%s): %s", step.__name__, exc)

    @property
    def seals(self) -> Any:
        return self.flow.seal_service

    @property
    def registry(self) -> Any:
        return self.flow.seal_service.registry


def _fmt_time(value: Any) -> str:
    from docflow import CHINA_TIME
    if value is None:
        return ""
    if isinstance(value, str):
        from datetime import datetime
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    return value.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


async def run(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking library call in the thread pool (the audit context goes with it)."""
    return await run_in_threadpool(functools.partial(func, *args, **kwargs))


class JsonResponse(JSONResponse):
    """JSON as UTF-8 text (Chinese as itself), dates and other values as their strings."""

    def render(self, content: Any) -> bytes:
        import json
        return json.dumps(content, ensure_ascii=False, default=str, separators=(",", ":")).encode("utf-8")


def console_of(request: Request) -> Console:
    return request.app.state.console


# --------------------------------------------------------------------------- who asks

@dataclass
class Who:
    """The authenticated actor of a request and how it came."""

    actor: Any
    cookie: SessionCookie | None = None
    token_text: str | None = None
    token: Any = None
    new_cookie: SessionCookie | None = None      # set when the PIN unlocked the key in this request

    @property
    def id(self) -> str:
        return self.actor.account_id

    @property
    def csrf(self) -> str:
        cookie = self.new_cookie or self.cookie
        return cookie.csrf_token() if cookie is not None else ""


async def session_actor(request: Request) -> Who:
    console = console_of(request)
    cookie = SessionCookie.decode(request.cookies.get(COOKIE))
    if cookie is None:
        raise ConsoleError(401, "unauthenticated", "please log in")
    from pki.accounts.errors import SessionInvalid
    actor = await run(console.accounts.resume, cookie.token, session_key=cookie.session_key, touch=False)
    if actor.session_id != cookie.session_id:
        raise SessionInvalid("the session cookie was edited")
    return Who(actor=actor, cookie=cookie)


def bearer_text(request: Request) -> str:
    """The bearer token's text (401 without one; 429 for a client past its failures)."""
    console = console_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, text = header.partition(" ")
    if scheme.lower() != "bearer" or not text.strip():
        raise ConsoleError(401, "unauthenticated", "send an API token: Authorization: Bearer <token> (yinxin account "
                                                   "token ID --name NAME makes one)")
    console.limiter.check(client_address(request))
    return text.strip()


def resume_token(console: Console, client: str, text: str, pin: bytes | None = None) -> Who:
    """The actor of a bearer token, checked now (blocking: run in the thread pool); a failure counts
    towards the client's limit."""
    try:
        actor, info = console.tokens.resume(text, pin=pin)
    except YinxinError as exc:
        if type(exc).__name__ in ("SessionInvalid", "PinError"):
            console.limiter.failed(client)
        raise
    return Who(actor=actor, token_text=text, token=info)


async def token_actor(request: Request, *, pin: bytes | None = None) -> Who:
    text = bearer_text(request)
    return await run(resume_token, console_of(request), client_address(request), text, pin)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class FailureLimiter:
    """Failed bearer tokens and PINs per client address, per worker: past the limit in a minute the
    client gets 429 until the minute has passed (nothing is checked meanwhile)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen[client]
        while times and now - times[0] > 60:
            times.popleft()
        return times

    def check(self, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            times = self._recent(client, now)
            if len(times) >= self.per_minute:
                wait = int(60 - (now - times[0])) + 1
                raise ConsoleError(429, "throttled", f"too many failed authentications from {client}: try again "
                                                     f"in {wait} s", retry_after=wait)

    def failed(self, client: str) -> None:
        with self._lock:
            self._recent(client, time.monotonic()).append(time.monotonic())


# --------------------------------------------------------------------------- forms and uploads

async def read_form(request: Request) -> FormData:
    """The request's form (urlencoded or multipart) within the upload bound; 400 when it is none."""
    console = console_of(request)
    ctype = request.headers.get("content-type", "")
    if not (ctype.startswith("application/x-www-form-urlencoded") or ctype.startswith("multipart/form-data")):
        raise bad_request("send a form (application/x-www-form-urlencoded or multipart/form-data)")
    try:
        return await request.form(max_files=8, max_fields=64, max_part_size=256 * 1024)
    except ConsoleError:
        raise
    except Exception as exc:   # python-multipart / starlette refusing a malformed body
        if isinstance(exc, YinxinError):
            raise
        raise bad_request(f"the form cannot be read: {' '.join(str(exc).split()) or type(exc).__name__}") from None


def text_field(form: FormData, name: str, *, required: bool = False, max_length: int = 2000) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        if required:
            raise bad_request(f"the field {name!r} is missing", field=name)
        return None
    value = str(value).strip()
    if len(value) > max_length:
        raise ConsoleError(422, "invalid", f"the field {name!r} is longer than {max_length} characters", field=name)
    if required and not value:
        raise bad_request(f"the field {name!r} is empty", field=name)
    return value or None


def secret_field(form: FormData, name: str, *, required: bool = False) -> bytes | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile) or value == "":
        if required:
            raise bad_request(f"the field {name!r} is missing", field=name)
        return None
    if len(value) > 1024:
        raise ConsoleError(422, "invalid", f"the field {name!r} is too long", field=name)
    return str(value).encode("utf-8")


async def upload_field(form: FormData, name: str, *, required: bool = True) -> bytes | None:
    value = form.get(name)
    if not isinstance(value, UploadFile):
        if required:
            raise bad_request(f"the file {name!r} is missing (multipart/form-data)", field=name)
        return None
    data = await value.read()
    if required and not data:
        raise ConsoleError(422, "not_pdf", f"the file {name!r} is empty", field=name)
    return data


def check_pdf(data: bytes, what: str = "the file") -> int:
    """The page count of a readable, unencrypted PDF; ConsoleError 422 otherwise (checked before any use)."""
    if not data[:1024].lstrip().startswith(b"%PDF-"):
        raise ConsoleError(422, "not_pdf", f"{what} is not a PDF file")
    import pikepdf
    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            pages = len(pdf.pages)
    except pikepdf.PasswordError:
        raise ConsoleError(422, "not_pdf", f"{what} is encrypted: only PDFs in the clear are sealed") from None
    except pikepdf.PdfError as exc:
        raise ConsoleError(422, "not_pdf", f"{what} is not a readable PDF ({' '.join(str(exc).split())[:200]})") \
            from None
    if pages < 1:
        raise ConsoleError(422, "not_pdf", f"{what} has no pages")
    return pages


class UploadStore:
    """Files a session uploaded for a later step (the stamping page, verification reports): under
    the session's own directory, named by a random id, removed after `max_age` seconds."""

    def __init__(self, directory: Path, *, rand: Any, max_age: int = 7200) -> None:
        self.directory = Path(directory)
        self.rand = rand
        self.max_age = max_age

    def _session_dir(self, session_id: str) -> Path:
        if not session_id or not all(c in "0123456789abcdef" for c in session_id):
            raise ValueError("a session id is hex")
        return self.directory / session_id

    def put(self, session_id: str, data: bytes, suffix: str) -> str:
        self.sweep()
        from .render import _atomic_write
        upload_id = self.rand.token_bytes(12).hex()
        path = self._session_dir(session_id) / f"{upload_id}{suffix}"
        _atomic_write(path, data)
        os.chmod(path, 0o600)
        return upload_id

    def path(self, session_id: str, upload_id: str, suffix: str) -> Path:
        if len(upload_id) != 24 or not all(c in "0123456789abcdef" for c in upload_id):
            raise ConsoleError(404, "not_found", "no such upload (they are kept two hours)")
        return self._session_dir(session_id) / f"{upload_id}{suffix}"

    def get(self, session_id: str, upload_id: str, suffix: str) -> bytes:
        try:
            return self.path(session_id, upload_id, suffix).read_bytes()
        except OSError:
            raise ConsoleError(404, "not_found", "no such upload (they are kept two hours)") from None

    def write(self, session_id: str, upload_id: str, suffix: str, data: bytes) -> None:
        from .render import _atomic_write
        _atomic_write(self.path(session_id, upload_id, suffix), data)

    def sweep(self) -> None:
        limit = time.time() - self.max_age
        if not self.directory.exists():
            return
        for path in self.directory.glob("*/*"):
            try:
                if path.stat().st_mtime < limit:
                    path.unlink()
            except OSError:
                pass


# --------------------------------------------------------------------------- answers

def _raw(headers: dict[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    return tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())


_RAW_HEADERS = _raw({**dict(SECURITY_HEADERS), "cache-control": "no-store"})
_RAW_HEADERS_TLS = _raw({**dict(SECURITY_HEADERS), "cache-control": "no-store", HSTS[0]: HSTS[1]})


def with_headers(request: Request, response: Response) -> Response:
    """The security headers (and no-store) on `response`, each unless the response set it already."""
    raw = _RAW_HEADERS_TLS if request.scope.get("scheme") in ("https", "wss") else _RAW_HEADERS
    present = {name for name, _ in response.raw_headers}
    response.raw_headers.extend(h for h in raw if h[0] not in present)
    return response


def set_session_cookie(response: Response, cookie: SessionCookie | None, *, max_age: int | None = None) -> None:
    if cookie is None:
        response.headers.append("set-cookie", cookie_header(COOKIE, "", max_age=0, secure=True))
    else:
        response.headers.append("set-cookie", cookie_header(COOKIE, cookie.encode(), max_age=max_age, secure=True))


def render(request: Request, name: str, context: dict[str, Any], *, status: int = 200,
           who: Who | None = None) -> HTMLResponse:
    console = console_of(request)
    template = console.templates.get_template(name)
    base = {"who": who, "actor": who.actor if who else None, "csrf": who.csrf if who else "",
            "path": request.url.path, "options": console.options}
    response = HTMLResponse(template.render(**base, **context), status_code=status)
    if who is not None and who.new_cookie is not None:
        set_session_cookie(response, who.new_cookie)
    return with_headers(request, response)


def redirect(request: Request, url: str, *, who: Who | None = None) -> Response:
    response = RedirectResponse(url, status_code=303)
    if who is not None and who.new_cookie is not None:
        set_session_cookie(response, who.new_cookie)
    return with_headers(request, response)


def json_error(request: Request, exc: BaseException) -> JSONResponse:
    answer = answer_for(exc)
    if answer.status >= 500:
        log.error("error answering %s %s", request.method, request.url.path, exc_info=exc)
    response = JsonResponse({"error": answer.code, "message": answer.message}, status_code=answer.status,
                            headers=dict(answer.headers))
    return with_headers(request, response)  # type: ignore[return-value]


def page_error(request: Request, exc: BaseException, who: Who | None) -> Response:
    answer = answer_for(exc)
    if answer.status >= 500:
        log.error("error answering %s %s", request.method, request.url.path, exc_info=exc)
    if answer.status == 401 and request.method == "GET":
        return redirect(request, "/login?next=" + quote(request.url.path, safe="/"))
    if answer.status == 401:
        response = render(request, "error.html", {"answer": answer, "login": True}, status=401)
        set_session_cookie(response, None)
        return response
    response = render(request, "error.html", {"answer": answer}, status=answer.status, who=who)
    for name, value in answer.headers:
        if name != "www-authenticate":
            response.headers[name] = value
    return response


#: refusals written to the audit log (ASVS 5.0 16.3.2, failed authorization attempts are logged):
#: what an authenticated actor was refused — not allowed (403: role, turn, CSRF, origin) or no such
#: object for them (404: another organisation's document).  Refusals before anyone is
#: authenticated are not written (they are counted per client, 429 past the limit): otherwise
#: anybody could fill the database.  Wrong seal passwords and PINs are audited by the library.
_AUDITED_REFUSALS = {(403, "forbidden"), (403, "csrf"), (404, "not_found")}


async def audit_refusal(request: Request, exc: BaseException, who: "Who | None") -> None:
    """Write the audit event of a refused request, if it is one of `_AUDITED_REFUSALS` (inside the
    request's audit context: the client address and the edge go with it)."""
    if who is None:
        return
    answer = answer_for(exc)
    if (answer.status, answer.code) not in _AUDITED_REFUSALS:
        return
    console = console_of(request)

    def write() -> None:
        with console.home.store.transaction() as conn:
            audit.append(conn, at=console.home.clock.now(), actor=who.id, action="console.refused",
                         target=f"{request.method} {request.url.path}",
                         details={"status": answer.status, "code": answer.code, "message": answer.message})
    try:
        await run(write)
    except Exception:  # the refusal is answered whatever happens to its record
        log.exception("auditing a refused request failed")


# --------------------------------------------------------------------------- endpoint wrappers

Handler = Callable[..., Awaitable[Response]]


def page(handler: Handler | None = None, *, auth: bool = True) -> Any:
    """An HTML endpoint: `handler(request, who, form)`; `who` from the session cookie (a GET without
    one is sent to the login page), `form` parsed and its CSRF token checked for POST."""
    if handler is None:
        return functools.partial(page, auth=auth)

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        console = console_of(request)
        who: Who | None = None
        with audit.context(client=client_address(request), via="console"):
            try:
                if auth:
                    who = await session_actor(request)
                form = None
                if request.method == "POST":
                    check_origin(request.headers, console.options.origins(request))
                    form = await read_form(request)
                    if auth:
                        assert who is not None and who.cookie is not None
                        who.cookie.check_csrf(form.get("csrf"))
                response = await handler(request, who, form)
                if who is not None and response.status_code < 400 and who.actor.session_id is not None:
                    await run(console.accounts.touch, who.actor)
                return response
            except Exception as exc:   # every error becomes its page; never a trace
                if not isinstance(exc, YinxinError):
                    log.error("error answering %s %s", request.method, request.url.path, exc_info=exc)
                await audit_refusal(request, exc, who)
                return page_error(request, exc, who)
    return endpoint


def api(handler: Handler) -> Any:
    """A JSON endpoint: `handler(request, who)` with `who` from the bearer token."""
    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        with audit.context(client=client_address(request), via="api"):
            who: Who | None = None
            try:
                who = await token_actor(request)
                with audit.context(token=who.token.id):
                    response = await handler(request, who)
                return with_headers(request, response)
            except Exception as exc:
                if who is not None:
                    with audit.context(token=who.token.id):
                        await audit_refusal(request, exc, who)
                return json_error(request, exc)
    return endpoint


def api_blocking(func: Callable[[Console, Who, Request], Response]) -> Any:
    """A JSON endpoint whose work is one blocking call `func(console, who, request)`: the bearer
    token is checked in the same pool thread, just before it (one hop to the thread pool instead of
    two: 待办 is asked for all the time).  Same checks and answers as `api`."""
    @functools.wraps(func)
    async def endpoint(request: Request) -> Response:
        console = console_of(request)
        client = client_address(request)
        with audit.context(client=client, via="api"):
            found: list[Who] = []
            try:
                text = bearer_text(request)

                def work() -> Response:
                    who = resume_token(console, client, text)
                    found.append(who)
                    with audit.context(token=who.token.id):
                        return func(console, who, request)
                return with_headers(request, await run(work))
            except Exception as exc:
                if found:
                    with audit.context(token=found[0].token.id):
                        await audit_refusal(request, exc, found[0])
                return json_error(request, exc)
    return endpoint


def login_cookie_value(request: Request) -> str:
    value = request.cookies.get(LOGIN_COOKIE)
    if value and 16 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
        return value
    return secrets.token_urlsafe(18)


__all__ = ["JsonResponse", "Console", "Who", "run", "console_of", "page", "api", "api_blocking", "render", "redirect", "read_form", "text_field",
           "secret_field", "upload_field", "check_pdf", "json_error", "set_session_cookie", "with_headers",
           "client_address", "login_cookie_value", "token_actor", "bearer_text", "resume_token", "UploadStore",
           "FailureLimiter", "audit_refusal"]

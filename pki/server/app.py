"""The HTTP face of the status service: a plain ASGI application.

Routes (the URLs `CaInfo.urls()` writes into issued certificates):

    GET  /ocsp/{ca}/{base64 request}   OCSP, RFC 5019 (the base64 may be URL-encoded)
    POST /ocsp/{ca}                    OCSP, RFC 6960 (body: DER OCSPRequest)
    GET  /crl/{ca}.crl                 latest full CRL (DER)
    GET  /crl/{ca}-delta.crl           latest delta CRL (DER)
    GET  /ca/{ca}.crt                  the CA certificate (DER)
    POST /tsa/{name}                   RFC 3161 timestamp (application/timestamp-query → -reply)
    GET  /healthz                      "ok"

OCSP answers carry RFC 5019 section 6 caching headers derived from the
response's thisUpdate/nextUpdate: ``Cache-Control: max-age=N, public,
no-transform, must-revalidate`` (N = seconds until nextUpdate, at most
`max_age`), ``Last-Modified`` (thisUpdate), ``Expires`` (nextUpdate), and an
``ETag``; ``If-None-Match`` / ``If-Modified-Since`` get 304.  Answers to
requests with a nonce, and OCSP error responses, are ``no-store``.  OCSP
errors travel as OCSP responses (malformedRequest, unauthorized,
internalError, tryLater) with HTTP 200; HTTP errors are for what is not an
OCSP request at all (404, 405, 413, 400).  No exception escapes a request.

Answers that need a fresh signature go through the worker's `SigningPool`
(when one is given): OCSP answers with a nonce, for unknown serials or
several CertIDs, and every timestamp token.  When the pool has no room for
the client, OCSP says tryLater and the TSA systemFailure, both with
``Retry-After: 1``; the client is identified by its address.
"""
from __future__ import annotations

import base64
import binascii
import logging
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable

from .service import INTERNAL_ERROR, MALFORMED, TRY_LATER, CrlDocument, OcspAnswer, SignJob, StatusService
from .signing import PoolFull, SigningPool

log = logging.getLogger("yinxin.server")

MAX_REQUEST_BYTES = 64 * 1024
_OCSP_TYPE = (b"content-type", b"application/ocsp-response")
_TSA_TYPE = (b"content-type", b"application/timestamp-reply")
_NO_STORE = (b"cache-control", b"no-store")
_RETRY = (b"retry-after", b"1")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BadRequest(Exception):
    def __init__(self, status: int, text: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.headers = status, text, headers or []


def _decode_get_request(encoded: str) -> bytes | None:
    """RFC 5019 section 5: base64 of the DER request, URL-encoded (already decoded by the server).
    Padding may be missing; the URL-safe alphabet is accepted too.  None when it is not base64."""
    text = encoded.strip().replace("-", "+").replace("_", "/").replace(" ", "+")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


class StatusApp:
    """ASGI callable serving one `StatusService`."""

    def __init__(self, service: StatusService, *, max_age: int = 3600, pool: SigningPool | None = None,
                 timestamps: Any = None) -> None:
        self.service = service
        self.max_age = max_age
        self.pool = pool
        self.timestamps = timestamps          # pki.server.tsa.TimestampService, when TSAs are served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets are not served
            return
        method = scope["method"]
        path: str = scope["path"]
        try:
            if path.startswith("/ocsp/"):
                await self._ocsp(scope, receive, send, method, path[6:])
            elif path.startswith("/tsa/"):
                await self._tsa(scope, receive, send, method, path[5:])
            elif method not in ("GET", "HEAD"):
                raise BadRequest(405, "method not allowed", [(b"allow", b"GET, HEAD")])
            elif path.startswith("/crl/") and path.endswith(".crl"):
                await self._crl(scope, send, path[5:-4])
            elif path.startswith("/ca/") and path.endswith(".crt"):
                await self._ca_cert(scope, send, path[4:-4])
            elif path == "/healthz":
                await _respond(send, 200, [(b"content-type", b"text/plain"), _NO_STORE], b"ok\n", method)
            else:
                raise BadRequest(404, "not found")
        except BadRequest as exc:
            await _respond(send, exc.status, [(b"content-type", b"text/plain; charset=utf-8"), *exc.headers],
                           exc.text.encode() + b"\n", method)
        except Exception:  # the service answers the next request whatever happened to this one
            log.exception("error answering %s %s", method, path)
            if path.startswith("/ocsp/"):
                body, headers = INTERNAL_ERROR, [_OCSP_TYPE, _NO_STORE]
            elif path.startswith("/tsa/"):
                from ..tsa.protocol import failure_response
                body, headers = failure_response("system_failure"), [_TSA_TYPE, _NO_STORE]
            else:
                body, headers = b"internal error\n", [(b"content-type", b"text/plain")]
            await _respond(send, 500, headers, body, method)

    # ------------------------------------------------------------------ OCSP

    async def _ocsp(self, scope: Scope, receive: Receive, send: Send, method: str, rest: str) -> None:
        ca_name, _, encoded = rest.partition("/")
        if method == "POST":
            if encoded:
                raise BadRequest(404, "POST OCSP requests to /ocsp/{ca}")
            request_der = await _read_body(receive)
        elif method in ("GET", "HEAD"):
            if not encoded:
                raise BadRequest(400, "GET /ocsp/{ca}/{base64 OCSP request} (RFC 5019) or POST /ocsp/{ca}")
            decoded = _decode_get_request(encoded)
            if decoded is None:
                self.service.stats["errors"] += 1
                await _respond(send, 200, [_OCSP_TYPE, _NO_STORE], MALFORMED, method)
                return
            request_der = decoded
        else:
            raise BadRequest(405, "method not allowed", [(b"allow", b"GET, HEAD, POST")])
        prepared = self.service.prepare(ca_name, request_der)
        if isinstance(prepared, SignJob):
            answer = await self._sign(scope, prepared)
            if answer.der == TRY_LATER:
                await _respond(send, 200, [_OCSP_TYPE, _NO_STORE, _RETRY], answer.der, method)
                return
        else:
            answer = prepared
        await self._send_answer(scope, send, answer, method)

    async def _sign(self, scope: Scope, job: SignJob) -> OcspAnswer:
        """Sign a job in the pool (or here when there is none); tryLater when the pool is full."""
        pool, index = self.pool, job.endpoint.key_index
        if pool is None or index is None:
            return self.service.complete(job, job.sign_here())
        client = _client(scope)
        if not pool.admits(client):          # refused before anything is encoded
            await pool.refuse()
            return self.service.try_later()
        try:
            signature = await pool.sign(client, index, job.tbs)
        except PoolFull:
            return self.service.try_later()
        except Exception as exc:  # a signer failed or timed out
            log.error("OCSP signing failed: %s", exc)
            return self.service.try_later()
        return self.service.complete(job, signature)

    # ------------------------------------------------------------------ timestamps

    async def _tsa(self, scope: Scope, receive: Receive, send: Send, method: str, name: str) -> None:
        if self.timestamps is None or not self.timestamps.knows(name):
            raise BadRequest(404, "no such TSA")
        if method != "POST":
            raise BadRequest(405, "POST a timestamp query (application/timestamp-query)", [(b"allow", b"POST")])
        query = await _read_body(receive)
        reply = await self.timestamps.answer(name, query, _client(scope))
        await _respond(send, reply.status, reply.headers, reply.body, method)

    async def _send_answer(self, scope: Scope, send: Send, answer: OcspAnswer, method: str) -> None:
        if not answer.cacheable or answer.next_update is None:
            await _respond(send, 200, [_OCSP_TYPE, _NO_STORE], answer.der, method)
            return
        headers = [_OCSP_TYPE, self._cache_control(answer.next_update),
                   (b"last-modified", answer.last_modified), (b"expires", answer.expires), (b"etag", answer.etag)]
        if _not_modified(scope, answer.etag, answer.this_update):
            await _respond(send, 304, headers, b"", "HEAD")
            return
        await _respond(send, 200, headers, answer.der, method)

    def _cache_control(self, next_update: float) -> tuple[bytes, bytes]:
        remaining = int(next_update - self.service.clock.now().timestamp())
        max_age = max(0, min(self.max_age, remaining))
        return (b"cache-control", b"max-age=%d, public, no-transform, must-revalidate" % max_age)

    # ------------------------------------------------------------------ CRLs and certificates

    async def _crl(self, scope: Scope, send: Send, name: str) -> None:
        endpoints = self.service.endpoints
        if name in endpoints:
            document = self.service.crl(name, delta=False)
        elif name.endswith("-delta") and name[:-6] in endpoints:
            document = self.service.crl(name[:-6], delta=True)
        else:
            raise BadRequest(404, "no such CA")
        if document is None:
            raise BadRequest(404, "no CRL published yet")
        await self._send_crl(scope, send, document, scope["method"])

    async def _send_crl(self, scope: Scope, send: Send, document: CrlDocument, method: str) -> None:
        headers = [(b"content-type", b"application/pkix-crl"), self._cache_control(document.next_update),
                   (b"last-modified", document.last_modified), (b"expires", document.expires),
                   (b"etag", document.etag)]
        if _not_modified(scope, document.etag, document.this_update):
            await _respond(send, 304, headers, b"", "HEAD")
            return
        await _respond(send, 200, headers, document.der, method)

    async def _ca_cert(self, scope: Scope, send: Send, name: str) -> None:
        endpoint = self.service.endpoints.get(name)
        if endpoint is None:
            raise BadRequest(404, "no such CA")
        headers = [(b"content-type", b"application/pkix-cert"), (b"cache-control", b"max-age=86400, public"),
                   (b"etag", endpoint.cert_etag)]
        if _not_modified(scope, endpoint.cert_etag, None):
            await _respond(send, 304, headers, b"", "HEAD")
            return
        await _respond(send, 200, headers, endpoint.ca.cert_der, scope["method"])


def _client(scope: Scope) -> str:
    """Who is asking, for the signing pool's shares: the peer address."""
    client = scope.get("client")
    return client[0] if client else "?"


def _not_modified(scope: Scope, etag: bytes, modified: float | None) -> bool:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return value.strip() == b"*" or etag in [v.strip() for v in value.split(b",")]
    if modified is None:
        return False
    for name, value in scope["headers"]:
        if name == b"if-modified-since":
            try:
                return parsedate_to_datetime(value.decode("latin-1")).timestamp() >= int(modified)
            except (TypeError, ValueError, IndexError, OverflowError):
                return False
    return False


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequest(400, "client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BYTES:
            raise BadRequest(413, f"an OCSP request is at most {MAX_REQUEST_BYTES} bytes here")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, method: str) -> None:
    headers = [*headers, (b"content-length", b"%d" % len(body))] if status != 304 else headers
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

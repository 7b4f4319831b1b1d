"""The console's security mechanics: the session cookie, CSRF tokens, response headers, uploads.

* **Session cookie** ``__Host-yinxin`` (Secure, HttpOnly, SameSite=Strict, Path=/, no Domain)
  carries what the CLI's session file carries — the session id, its 256-bit token and, once the PIN
  unlocked the person's signing key, the session key under which the key waits in the session's row —
  as ``v1.<session>.<token>[.<key>]``.  None of it works without the server's row: logout, an
  administrator disabling the account, a timeout delete or refuse it at once.  Browsers accept a
  ``__Host-``/Secure cookie over TLS and from loopback addresses (a secure context); serving plain
  HTTP on another address needs TLS in front (``--proxy-headers``).
* **CSRF**: a synchronizer token bound to the session — HMAC-SHA256 of the session id under the
  session token, which only the cookie's holder knows — in a hidden field of every state-changing
  form, checked in constant time; the login form (no session yet) uses a random pre-session cookie
  and the same value in the form.  Requests whose ``Origin`` is another site are refused as well.
  No state changes on GET.
* **Headers** on every answer: a Content-Security-Policy without inline script (``script-src
  'self'``), no framing, no sniffing, no referrer across sites, no caching of pages; HSTS over TLS.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from .errors import ConsoleError

COOKIE = "__Host-yinxin"
LOGIN_COOKIE = "__Host-yinxin-login"
_VERSION = "v1"
TOKEN_BYTES = 32
SESSION_KEY_BYTES = 16

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = (
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)
HSTS = ("strict-transport-security", "max-age=31536000")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str, length: int) -> bytes | None:
    if not text or len(text) > 2 * length + 4:
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if len(data) == length else None


@dataclass(frozen=True)
class SessionCookie:
    """What the browser keeps: the session id, token and (once unlocked) the session key."""

    session_id: str
    token: bytes
    session_key: bytes | None = None

    def __repr__(self) -> str:
        return f"SessionCookie({self.session_id!r})"

    def encode(self) -> str:
        parts = [_VERSION, self.session_id, _b64(self.token)]
        if self.session_key is not None:
            parts.append(_b64(self.session_key))
        return ".".join(parts)

    @classmethod
    def decode(cls, value: str | None) -> "SessionCookie | None":
        """None for anything that is not a well-formed cookie (the server row decides the rest)."""
        if not value or len(value) > 200:
            return None
        parts = value.split(".")
        if len(parts) not in (3, 4) or parts[0] != _VERSION:
            return None
        session_id = parts[1]
        if not (1 <= len(session_id) <= 32 and all(c in "0123456789abcdef" for c in session_id)):
            return None
        token = _unb64(parts[2], TOKEN_BYTES)
        key = _unb64(parts[3], SESSION_KEY_BYTES) if len(parts) == 4 else None
        if token is None or (len(parts) == 4 and key is None):
            return None
        return cls(session_id, token, key)

    def csrf_token(self) -> str:
        """The synchronizer token of this session's forms."""
        mac = hmac.new(self.token, b"yinxin-csrf|" + self.session_id.encode("ascii"), hashlib.sha256)
        return _b64(mac.digest())

    def check_csrf(self, submitted: Any) -> None:
        if not isinstance(submitted, str) or not hmac.compare_digest(submitted.encode(), self.csrf_token().encode()):
            raise ConsoleError(403, "csrf", "the form's security token is missing or wrong: reload the page and "
                                            "try again (nothing was changed)")


def cookie_header(name: str, value: str, *, max_age: int | None, secure: bool) -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Strict, Path=/, Secure when the browser is in a
    secure context (TLS, or the loopback address)."""
    parts = [f"{name}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def check_origin(headers: Any, expected: set[str]) -> None:
    """Refuse a state-changing request a browser sent from another site (`Origin`, else `Referer`)."""
    origin = headers.get("origin")
    if origin is None:
        referer = headers.get("referer")
        if referer:
            scheme, _, rest = referer.partition("://")
            origin = f"{scheme}://{rest.split('/', 1)[0]}"
    if origin is not None and origin != "null" and origin not in expected:
        raise ConsoleError(403, "csrf", "the request came from another site: refused (nothing was changed)")
    if origin == "null":
        raise ConsoleError(403, "csrf", "the request came from an opaque origin: refused (nothing was changed)")


def random_token(rand: Any, size: int = 18) -> str:
    return _b64(rand.token_bytes(size))


__all__ = ["COOKIE", "LOGIN_COOKIE", "CSP", "SECURITY_HEADERS", "HSTS", "SessionCookie", "cookie_header",
           "check_origin", "random_token"]

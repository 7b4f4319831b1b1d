"""Session tokens, session files, and the session key that guards an unlocked signing key.

A session is a random token of 256 bits; the server keeps only its SHA-256.  The session file (mode
0600, written by the CLI; the console will keep the same values in a cookie) holds the home's id, the
account, the token and — when the login unlocked the person's signing key with the PIN — a random
128-bit session key.  The private key is then stored in the session's row encrypted under that key
(SM4-GCM, bound to the session and account): the file alone cannot sign once the row is gone
(logout, timeout, a disabled account), and the database alone holds only the key encrypted under the
PIN and under a session key it never sees.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .actor import Actor
from .errors import SessionInvalid

FORMAT = "yinxin-session/1"
TOKEN_BYTES = 32          # 256 bits (ASVS: at least 128)
SESSION_KEY_BYTES = 16    # SM4
_NONCE_BYTES = 12
_FIELDS = {"format", "home", "account", "session", "token", "key", "expires"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def unb64(text: str, length: int, what: str) -> bytes:
    if not isinstance(text, str) or not text or len(text) > 2 * length + 4:
        raise SessionInvalid(f"the session file is damaged ({what})", field=what)
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SessionInvalid(f"the session file is damaged ({what})", field=what) from None
    if len(data) != length:
        raise SessionInvalid(f"the session file is damaged ({what})", field=what)
    return data


def token_hash(token: bytes) -> str:
    return hashlib.sha256(token).hexdigest()


@dataclass(frozen=True)
class Session:
    """A login: the actor, and what the client keeps (the token, the session key).  Never stored
    whole on the server."""

    actor: Actor
    token: bytes
    session_key: bytes | None
    home_id: str
    expires_at: datetime
    idle_seconds: int

    def __repr__(self) -> str:    # the token and key never appear in logs or tracebacks
        return (f"Session({self.actor.account_id!r}, id={self.actor.session_id!r}, "
                f"expires={self.expires_at:%Y-%m-%d %H:%M})")

    @property
    def id(self) -> str:
        assert self.actor.session_id is not None
        return self.actor.session_id

    def to_file(self) -> bytes:
        """The session file's bytes (JSON): write them with mode 0600."""
        data: dict[str, Any] = {"format": FORMAT, "home": self.home_id, "account": self.actor.account_id,
                                "session": self.id, "token": b64(self.token),
                                "expires": self.expires_at.isoformat()}
        if self.session_key is not None:
            data["key"] = b64(self.session_key)
        return (json.dumps(data, sort_keys=True, indent=1) + "\n").encode("ascii")


@dataclass(frozen=True)
class SessionFile:
    """A session file as read (not yet checked against the database)."""

    home: str
    account: str
    session: str
    token: bytes
    session_key: bytes | None

    def __repr__(self) -> str:
        return f"SessionFile({self.account!r}, session={self.session!r})"

    @classmethod
    def parse(cls, data: bytes) -> "SessionFile":
        try:
            value = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise SessionInvalid("not a yinxin session file (damaged or truncated)") from None
        if not isinstance(value, dict) or value.get("format") != FORMAT:
            raise SessionInvalid("not a yinxin session file")
        if set(value) - _FIELDS or not {"home", "account", "session", "token"} <= set(value):
            raise SessionInvalid("the session file is damaged (unexpected or missing fields)")
        for key in ("home", "account", "session"):
            if not isinstance(value[key], str) or not value[key] or len(value[key]) > 128:
                raise SessionInvalid(f"the session file is damaged ({key})", field=key)
        key = value.get("key")
        return cls(home=value["home"], account=value["account"], session=value["session"],
                   token=unb64(value["token"], TOKEN_BYTES, "token"),
                   session_key=unb64(key, SESSION_KEY_BYTES, "key") if key is not None else None)


def _aad(session_id: str, account_id: str, key_id: int) -> bytes:
    return f"yinxin-session-key|{session_id}|{account_id}|{key_id}".encode()


def wrap_key(pkcs8_der: bytes, session_key: bytes, nonce: bytes, *, session_id: str, account_id: str,
             key_id: int) -> bytes:
    """nonce ‖ ciphertext ‖ tag: the private key under the session key (SM4-GCM)."""
    enc = Cipher(algorithms.SM4(session_key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(_aad(session_id, account_id, key_id))
    body = enc.update(pkcs8_der) + enc.finalize()
    return nonce + body + enc.tag


def unwrap_key(wrapped: bytes, session_key: bytes, *, session_id: str, account_id: str, key_id: int) -> bytes:
    if len(wrapped) < _NONCE_BYTES + 16 + 1:
        raise SessionInvalid("the session's key record is damaged", session=session_id)
    nonce, body, tag = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:-16], wrapped[-16:]
    dec = Cipher(algorithms.SM4(session_key), modes.GCM(nonce, tag)).decryptor()
    dec.authenticate_additional_data(_aad(session_id, account_id, key_id))
    try:
        return dec.update(body) + dec.finalize()
    except InvalidTag:
        raise SessionInvalid("the session file's key does not open this session's signing key (the file "
                             "was edited)", session=session_id) from None

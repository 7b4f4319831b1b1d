"""Opened seal keys kept for a while by a long-running server (the console), so that each stamp still
proves the seal's password without paying the password-based key derivation (PBKDF2, tens of
milliseconds by design) every time.

An entry holds the opened key beside an HMAC of the password that opened it, under a random secret of
this process; a later request's password is compared with that HMAC in constant time.  A different
password never uses the entry (it goes through the key file, and a wrong one is counted as always);
an entry is used only for the same stored key file (a password change or a new key makes a new
one), and is forgotten after `ttl` seconds without use.  Every other rule — the custodian, the lock,
the validity window — is checked by `SealRegistry.open_key` on every request, before the cache is
asked.  The CLI never keeps keys: only an object that lives as long as a server process should.
"""
from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from typing import Any

from pki.algorithms import PrivateKey


class KeyCache:
    def __init__(self, rand: Any, *, ttl: float = 600.0, size: int = 32) -> None:
        self._secret = rand.token_bytes(32)
        self._ttl = ttl
        self._size = size
        self._entries: OrderedDict[str, tuple[bytes, bytes, PrivateKey, float]] = OrderedDict()
        self._lock = threading.Lock()

    def _mac(self, password: bytes) -> bytes:
        return hmac.new(self._secret, password, hashlib.sha256).digest()

    def get(self, name: str, key_file: bytes, password: bytes) -> PrivateKey | None:
        """The key opened before from this very key file with this password, if still kept."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                return None
            file_digest, mac, key, used = entry
            if now - used > self._ttl or file_digest != hashlib.sha256(key_file).digest():
                del self._entries[name]
                return None
            if not hmac.compare_digest(mac, self._mac(password)):
                return None
            self._entries[name] = (file_digest, mac, key, now)
            self._entries.move_to_end(name)
            return key

    def put(self, name: str, key_file: bytes, password: bytes, key: PrivateKey) -> None:
        with self._lock:
            self._entries[name] = (hashlib.sha256(key_file).digest(), self._mac(password), key, time.monotonic())
            self._entries.move_to_end(name)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, name: str) -> None:
        with self._lock:
            self._entries.pop(name, None)


__all__ = ["KeyCache"]

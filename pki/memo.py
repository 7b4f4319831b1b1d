"""A small in-process memo of pure functions of exact bytes.

Some checks read the same bytes again within one process — the document flow verifies a sealed
file at 盖章 and again at 发送, and compares a registered version with its signed-off one at
registration, at 盖章 and at 发送.  What depends only on the bytes (a parse, a signature over
stored bytes) is remembered here under the SHA-256 and length of the exact bytes, plus whatever
else the result depends on, for the last few inputs.  Only results are kept (never an error), and
only values that cannot be changed afterwards.  Nothing here ever depends on the time: checks that
do (validity, revocation, status) are never memoised.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")


def bytes_key(data: bytes) -> tuple[bytes, int]:
    """The key of exact bytes: their SHA-256 and length."""
    return hashlib.sha256(data).digest(), len(data)


class BytesMemo:
    """The last `keep` results of one pure function, keyed by `bytes_key` of its inputs and the rest of
    what it depends on; thread-safe (the function runs outside the lock)."""

    def __init__(self, keep: int = 16) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._keep:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

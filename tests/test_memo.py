"""pki.memo: results remembered by the exact bytes, never an error, the oldest forgotten first."""
from __future__ import annotations

import pytest

from pki.memo import BytesMemo, bytes_key


def test_results_are_keyed_by_the_exact_bytes_and_errors_are_not_remembered() -> None:
    memo, calls = BytesMemo(2), []

    def compute(data: bytes) -> int:
        calls.append(data)
        if data == b"bad":
            raise ValueError("unreadable")
        return len(data)

    assert memo.get(bytes_key(b"abc"), lambda: compute(b"abc")) == 3
    assert memo.get(bytes_key(b"abc"), lambda: compute(b"abc")) == 3
    assert memo.get(bytes_key(b"abd"), lambda: compute(b"abd")) == 3     # one byte differs: computed
    for _ in range(2):
        with pytest.raises(ValueError):
            memo.get(bytes_key(b"bad"), lambda: compute(b"bad"))         # tried again every time
    assert calls == [b"abc", b"abd", b"bad", b"bad"]
    memo.get(bytes_key(b"xyz"), lambda: compute(b"xyz"))                  # keeps 2: "abc" is forgotten
    memo.get(bytes_key(b"abc"), lambda: compute(b"abc"))
    assert calls[-2:] == [b"xyz", b"abc"]
    assert bytes_key(b"abc") != bytes_key(b"abc\x00")

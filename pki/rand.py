"""Injectable randomness.  Library code takes a `RandomSource`; the default
draws from the operating system's CSPRNG through `secrets`."""
from __future__ import annotations

import secrets
from typing import Protocol


class RandomSource(Protocol):
    def token_bytes(self, n: int) -> bytes: ...

    def randbelow(self, n: int) -> int: ...


class SystemRandom:
    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)

    def randbelow(self, n: int) -> int:
        return secrets.randbelow(n)


SYSTEM_RANDOM = SystemRandom()

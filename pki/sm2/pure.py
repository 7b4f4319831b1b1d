"""Portable SM2 through the pure-Python `gmssl` package (~30x slower than native).

Two traps in gmssl are avoided here: it draws nonces with `random` unless
given one (we always pass k from the injected CSPRNG source), and its
constructor strips every leading '0'/'4' of a public key that starts with
"04" (we set x ‖ y on the object after construction).
"""
from __future__ import annotations

from gmssl import sm2 as _gm

from ..rand import RandomSource
from .core import CURVE, decode_signature, encode_signature
from ..errors import InvalidSignature


def _crypt(d: int | None, x: int, y: int) -> _gm.CryptSM2:
    obj = _gm.CryptSM2(private_key=None if d is None else f"{d:064x}", public_key="")
    obj.public_key = f"{x:064x}{y:064x}"
    return obj


_G = f"{CURVE.gx:064x}{CURVE.gy:064x}"


class _PrivateHandle:
    def __init__(self, d: int, x: int, y: int) -> None:
        self._crypt = _crypt(d, x, y)

    def sign_digest(self, e: bytes, rand: RandomSource) -> bytes:
        while True:
            k = rand.randbelow(CURVE.n - 1) + 1
            rs = self._crypt.sign(e, f"{k:064x}")
            if rs is not None:  # gmssl returns None for the rare r=0 / r+k=n / s=0
                return encode_signature(int(rs[:64], 16), int(rs[64:], 16))


class _PublicHandle:
    def __init__(self, x: int, y: int) -> None:
        self._crypt = _crypt(None, x, y)

    def verify_digest(self, signature: bytes, e: bytes) -> bool:
        try:
            r, s = decode_signature(signature)
        except InvalidSignature:
            return False
        return bool(self._crypt.verify(f"{r:064x}{s:064x}", e))


class GmsslBackend:
    name = "gmssl"

    def generate(self, rand: RandomSource) -> tuple[int, int, int]:
        d = rand.randbelow(CURVE.n - 2) + 1  # d in [1, n-2] (GB/T 32918.1 6.1)
        x, y = self.public_point(d)
        return d, x, y

    def public_point(self, d: int) -> tuple[int, int]:
        point = _crypt(d, 0, 0)._kg(d, _G)
        return int(point[:64], 16), int(point[64:128], 16)

    def private_handle(self, d: int, x: int, y: int) -> _PrivateHandle:
        return _PrivateHandle(d, x, y)

    def public_handle(self, x: int, y: int) -> _PublicHandle:
        return _PublicHandle(x, y)

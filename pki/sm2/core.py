"""What an SM2 signature is, independent of who does the arithmetic.

GM/T 0009 fixes the default distinguishing ID; OpenSSL's command line uses
the empty ID unless told otherwise, so the ID is always an explicit
argument here and a per-CA setting above.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes

from ..errors import InvalidSignature, PkiError
from ..rand import RandomSource

DEFAULT_DISTID = b"1234567812345678"


@dataclass(frozen=True)
class Curve:
    p: int
    a: int
    b: int
    n: int
    gx: int
    gy: int


CURVE = Curve(
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)

_CURVE_PREFIX = b"".join(v.to_bytes(32, "big") for v in (CURVE.a, CURVE.b, CURVE.gx, CURVE.gy))


def sm3(data: bytes) -> bytes:
    """SM3 through cryptography (OpenSSL): documents are never hashed in pure Python."""
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def on_curve(x: int, y: int) -> bool:
    """Whether (x, y) is an affine point of sm2p256v1: y² = x³ + ax + b over F_p."""
    p = CURVE.p
    return 0 <= x < p and 0 <= y < p and (y * y - (x * x + CURVE.a) * x - CURVE.b) % p == 0


def compute_z(distid: bytes, x: int, y: int) -> bytes:
    """Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), ENTL the ID's length in bits (2 octets)."""
    bits = len(distid) * 8
    if bits > 0xFFFF:
        raise ValueError("SM2 distinguishing ID longer than 8191 octets")
    return sm3(bits.to_bytes(2, "big") + distid + _CURVE_PREFIX
               + x.to_bytes(32, "big") + y.to_bytes(32, "big"))


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")     # a leading 00 keeps it positive
    return b"\x02" + bytes((len(body),)) + body


def encode_signature(r: int, s: int) -> bytes:
    """DER SEQUENCE { INTEGER r, INTEGER s } for 0 < r, s < n — what asn1crypto's DSASignature
    gives (tests compare the two); by hand because every certificate checks two or three of these."""
    if not (0 < r < CURVE.n and 0 < s < CURVE.n):
        raise ValueError("SM2 r and s must be in [1, n-1]")
    body = _der_integer(r) + _der_integer(s)
    return b"\x30" + bytes((len(body),)) + body


def decode_signature(signature: bytes) -> tuple[int, int]:
    """Strict DER (r, s): anything else — truncated, trailing bytes, out of range — is invalid.

    The two integers are read by position, then the signature must be exactly the canonical
    encoding of what was read: that one comparison rejects every non-DER form."""
    try:
        r_length = signature[3]
        r = int.from_bytes(signature[4:4 + r_length], "big")
        s_length = signature[5 + r_length]
        s = int.from_bytes(signature[6 + r_length:6 + r_length + s_length], "big")
    except IndexError:
        raise InvalidSignature("signature is not a DER-encoded SM2 (r, s)") from None
    if not (0 < r < CURVE.n and 0 < s < CURVE.n) or encode_signature(r, s) != signature:
        raise InvalidSignature("signature is not a canonical SM2 (r, s)")
    return r, s


class PrivateHandle(Protocol):
    def sign_digest(self, e: bytes, rand: RandomSource) -> bytes:
        """DER (r, s) over the 32-byte digest e."""


class PublicHandle(Protocol):
    def verify_digest(self, signature: bytes, e: bytes) -> bool: ...


class SM2Backend(Protocol):
    name: str

    def generate(self, rand: RandomSource) -> tuple[int, int, int]:
        """A new key pair as (d, x, y)."""

    def public_point(self, d: int) -> tuple[int, int]: ...

    def private_handle(self, d: int, x: int, y: int) -> PrivateHandle: ...

    def public_handle(self, x: int, y: int) -> PublicHandle: ...


#: the backends in order of preference: the fastest first (README, "SM2 backends")
BACKEND_NAMES = ("botan", "native", "gmssl")


def available_backends() -> dict[str, SM2Backend]:
    """The backends that load on this machine, in order of preference: Botan (Debian's
    libbotan-2; signs 3× faster than OpenSSL here), Tongsuo (the tongsuopy wheel), pure Python."""
    found: dict[str, SM2Backend] = {}
    try:
        from .botan import BotanBackend
        found["botan"] = BotanBackend()
    except ImportError:
        pass
    try:
        from .native import NativeBackend
        found["native"] = NativeBackend()
    except ImportError:
        pass
    from .pure import GmsslBackend
    found["gmssl"] = GmsslBackend()
    return found


_cache: dict[str, SM2Backend] = {}


def backend_by_name(name: str) -> SM2Backend:
    if name not in _cache:
        found = available_backends()
        if name not in found:
            raise PkiError(f"SM2 backend {name!r} is not available here "
                           f"(available: {', '.join(found)})", backend=name)
        _cache.update(found)
    return _cache[name]


def default_backend() -> SM2Backend:
    """YINXIN_SM2_BACKEND=botan|native|gmssl forces a backend; otherwise the first that loads."""
    forced = os.environ.get("YINXIN_SM2_BACKEND", "").strip()
    if forced:
        if forced not in BACKEND_NAMES:
            raise PkiError(f"YINXIN_SM2_BACKEND must be one of {', '.join(BACKEND_NAMES)}, not {forced!r}",
                           backend=forced)
        return backend_by_name(forced)
    if not _cache:
        _cache.update(available_backends())
    return next(_cache[name] for name in BACKEND_NAMES if name in _cache)

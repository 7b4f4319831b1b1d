"""Native SM2 through the tongsuopy wheel (Tongsuo, an OpenSSL fork with SM2).

tongsuopy's own ``sign`` hashes with an ID it chooses; we compute
e = SM3(Z ‖ M) ourselves and ask Tongsuo only to sign/verify that digest
(EVP_PKEY_sign / EVP_PKEY_verify), so the distinguishing ID stays ours.
Nonces come from Tongsuo's DRBG (seeded from the OS), not from `rand`.
"""
from __future__ import annotations

import threading

from tongsuopy.backends.tongsuo.backend import backend as _tongsuo
from tongsuopy.crypto.asymciphers import ec as _ec

from ..rand import RandomSource

_lib = _tongsuo._lib
_ffi = _tongsuo._ffi


class _Contexts(threading.local):
    """One initialised EVP_PKEY_CTX per key and thread, used for every signature or verification
    that thread makes with the key.  Each call into Tongsuo lets go of Python's interpreter lock
    and takes it back; a fresh context per operation is two more such calls, which cost more than
    the work they do when other threads want the lock (bulk issuance signs in threads)."""

    ctx: object = None


def _context(evp_pkey: object, contexts: _Contexts, init: object, what: str) -> object:
    ctx = contexts.ctx
    if ctx is None:
        ctx = _ffi.gc(_lib.EVP_PKEY_CTX_new(evp_pkey, _ffi.NULL), _lib.EVP_PKEY_CTX_free)
        if ctx == _ffi.NULL or init(ctx) != 1:
            _tongsuo._consume_errors()
            raise RuntimeError(f"Tongsuo could not start an SM2 {what}")
        contexts.ctx = ctx
    return ctx


class _PrivateHandle:
    def __init__(self, key: _ec.EllipticCurvePrivateKey) -> None:
        self._key = key
        self._contexts = _Contexts()

    def sign_digest(self, e: bytes, rand: RandomSource) -> bytes:
        ctx = _context(self._key._evp_pkey, self._contexts, _lib.EVP_PKEY_sign_init, "signature")
        size = _ffi.new("size_t *", 80)
        buf = _ffi.new("unsigned char[]", 80)
        if _lib.EVP_PKEY_sign(ctx, buf, size, e, len(e)) != 1:
            _tongsuo._consume_errors()
            self._contexts.ctx = None       # start afresh after a failure
            raise RuntimeError("Tongsuo SM2 signing failed")
        return bytes(_ffi.buffer(buf)[: size[0]])


_GROUP: list[object] = []      # the sm2p256v1 EC_GROUP, made once; keys get their own copy of it


def _sm2_group() -> object:
    if not _GROUP:
        group = _lib.EC_GROUP_new_by_curve_name(_tongsuo._elliptic_curve_to_nid(_ec.SM2()))
        if group == _ffi.NULL:
            _tongsuo._consume_errors()
            raise RuntimeError("Tongsuo has no sm2p256v1 group")
        _GROUP.append(_ffi.gc(group, _lib.EC_GROUP_free))
    return _GROUP[0]


def _public_evp_pkey(point: bytes) -> object:
    """An SM2 EVP_PKEY for an uncompressed point, in the fewest calls into Tongsuo (bulk issuance
    makes one per CSR; tongsuopy's from_encoded_point takes 23 µs, mostly its own Python).
    EC_POINT_oct2point refuses a point off the curve."""
    group = _sm2_group()
    ec_key = _lib.EC_KEY_new()
    if ec_key == _ffi.NULL:
        raise MemoryError("EC_KEY_new")
    try:
        ec_point = _lib.EC_POINT_new(group)
        if ec_point == _ffi.NULL:
            raise MemoryError("EC_POINT_new")
        try:
            if _lib.EC_KEY_set_group(ec_key, group) != 1 \
                    or _lib.EC_POINT_oct2point(group, ec_point, point, len(point), _ffi.NULL) != 1 \
                    or _lib.EC_KEY_set_public_key(ec_key, ec_point) != 1:
                _tongsuo._consume_errors()
                raise ValueError("not an SM2 public key")
        finally:
            _lib.EC_POINT_free(ec_point)
        evp_pkey = _ffi.gc(_lib.EVP_PKEY_new(), _lib.EVP_PKEY_free)
        if evp_pkey == _ffi.NULL or _lib.EVP_PKEY_set1_EC_KEY(evp_pkey, ec_key) != 1 \
                or _lib.EVP_PKEY_set_alias_type(evp_pkey, _lib.EVP_PKEY_SM2) != 1:
            _tongsuo._consume_errors()
            raise RuntimeError("Tongsuo could not make an SM2 key")
        return evp_pkey
    finally:
        _lib.EC_KEY_free(ec_key)        # the EVP_PKEY holds its own reference


class _PublicHandle:
    def __init__(self, evp_pkey: object) -> None:
        self._evp_pkey = evp_pkey
        self._contexts = _Contexts()

    def verify_digest(self, signature: bytes, e: bytes) -> bool:
        ctx = _context(self._evp_pkey, self._contexts, _lib.EVP_PKEY_verify_init, "verification")
        ok = _lib.EVP_PKEY_verify(ctx, signature, len(signature), e, len(e))
        if ok != 1:
            _tongsuo._consume_errors()
            if ok < 0:                      # an error, not a mismatch: start afresh
                self._contexts.ctx = None
        return ok == 1


class NativeBackend:
    name = "native"

    def generate(self, rand: RandomSource) -> tuple[int, int, int]:
        key = _ec.generate_private_key(_ec.SM2(), _tongsuo)
        nums = key.private_numbers()
        return nums.private_value, nums.public_numbers.x, nums.public_numbers.y

    def public_point(self, d: int) -> tuple[int, int]:
        pub = _ec.derive_private_key(d, _ec.SM2(), _tongsuo).public_key().public_numbers()
        return pub.x, pub.y

    def private_handle(self, d: int, x: int, y: int) -> _PrivateHandle:
        return _PrivateHandle(_ec.derive_private_key(d, _ec.SM2(), _tongsuo))

    def public_handle(self, x: int, y: int) -> _PublicHandle:
        # from the encoded point: Tongsuo checks the point is on the curve; the public-numbers
        # route adds EC_KEY_check_key's n·Q = O, a full scalar multiplication (0.2 ms) that tells
        # nothing more on a curve of cofactor 1
        return _PublicHandle(_public_evp_pkey(b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")))

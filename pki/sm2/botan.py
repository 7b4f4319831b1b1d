"""SM2 through Botan 2's C interface (Debian's ``libbotan-2-19``), called with ctypes.

Why a third backend: on x86_64, OpenSSL/Tongsuo compute the signer's k·G with a generic
constant-time ladder (0.33 ms here), Botan with a blinded fixed-base table (0.10 ms); Botan also
verifies faster (0.24 against 0.28 ms).  Bulk issuance makes one signature and two verifications
per SM2 certificate.

As with the other backends, Botan only does the curve arithmetic on a digest e: the signer and
verifier are made with the hash "Raw", so Botan adds no Z of its own and the distinguishing ID
stays ours (`pki.sm2.core`).  Nonces and blinding come from Botan's "system" generator
(getrandom), which holds no state a fork could duplicate.

Debian's python3-botan only installs for Debian's own Python, so the few functions needed are
declared here; `tests/test_sm2_backends.py` checks this binding against Tongsuo, gmssl and the
OpenSSL command line.
"""
from __future__ import annotations

import ctypes
import threading
import weakref
from ctypes import POINTER, byref, c_char_p, c_int, c_size_t, c_uint32, c_void_p

from ..rand import RandomSource
from .core import on_curve

_SONAMES = ("libbotan-2.so.19", "libbotan-2.so")
_CURVE = b"sm2p256v1"
_RAW = b",Raw"           # "<user ID>,<hash>": the empty ID is never used, since e comes hashed
_DER = 1                 # BOTAN_PUBKEY_DER_FORMAT_SIGNATURE: (r, s) as a DER SEQUENCE
_INVALID_SIGNATURE = 1   # BOTAN_FFI_INVALID_VERIFIER


def _load() -> ctypes.CDLL:
    errors = []
    for name in _SONAMES:
        try:
            dll = ctypes.CDLL(name)
            break
        except OSError as exc:
            errors.append(str(exc))
    else:
        raise ImportError("Botan 2 is not installed (Debian: libbotan-2-19): " + "; ".join(errors))
    dll.botan_ffi_api_version.restype = c_uint32
    dll.botan_version_string.restype = c_char_p
    if dll.botan_ffi_api_version() < 20180713:          # the first with SM2 keys and "Raw"
        raise ImportError("Botan's C interface is too old for SM2")
    for name, args in {
        "botan_rng_init": [c_void_p, c_char_p],
        "botan_rng_destroy": [c_void_p],
        "botan_mp_init": [c_void_p],
        "botan_mp_destroy": [c_void_p],
        "botan_mp_from_bin": [c_void_p, c_char_p, c_size_t],
        "botan_mp_to_bin": [c_void_p, c_char_p],
        "botan_mp_num_bytes": [c_void_p, POINTER(c_size_t)],
        "botan_privkey_create": [c_void_p, c_char_p, c_char_p, c_void_p],
        "botan_privkey_load_sm2": [c_void_p, c_void_p, c_char_p],
        "botan_privkey_get_field": [c_void_p, c_void_p, c_char_p],
        "botan_privkey_destroy": [c_void_p],
        "botan_pubkey_load_sm2": [c_void_p, c_void_p, c_void_p, c_char_p],
        "botan_pubkey_destroy": [c_void_p],
        "botan_pk_op_sign_create": [c_void_p, c_void_p, c_char_p, c_uint32],
        "botan_pk_op_sign_update": [c_void_p, c_char_p, c_size_t],
        "botan_pk_op_sign_finish": [c_void_p, c_void_p, c_char_p, POINTER(c_size_t)],
        "botan_pk_op_sign_destroy": [c_void_p],
        "botan_pk_op_verify_create": [c_void_p, c_void_p, c_char_p, c_uint32],
        "botan_pk_op_verify_update": [c_void_p, c_char_p, c_size_t],
        "botan_pk_op_verify_finish": [c_void_p, c_char_p, c_size_t],
        "botan_pk_op_verify_destroy": [c_void_p],
    }.items():
        function = getattr(dll, name)
        function.argtypes = args
        function.restype = c_int
    return dll


_dll = _load()
#: e.g. "Botan 2.19.3 (release, dated 20221213, revision …, distribution Debian)", for `yinxin doctor`
LIBRARY_VERSION: str = _dll.botan_version_string().decode("ascii", "replace")


def _call(function: object, *args: object) -> None:
    code = function(*args)                                  # type: ignore[operator]
    if code != 0:
        raise RuntimeError(f"Botan {function.__name__} failed ({code})")   # type: ignore[attr-defined]


def _handle(make: object, *args: object, destroy: object) -> c_void_p:
    """A new Botan object, freed when the returned handle is collected."""
    handle = c_void_p()
    _call(make, byref(handle), *args)
    weakref.finalize(handle, destroy, handle.value)
    return handle


_RNG = _handle(_dll.botan_rng_init, b"system", destroy=_dll.botan_rng_destroy)


class _Number:
    """A botan_mp_t for the life of a `with` block."""

    def __init__(self, value: int = 0) -> None:
        self.handle = c_void_p()
        _call(_dll.botan_mp_init, byref(self.handle))
        if value:
            data = value.to_bytes((value.bit_length() + 7) // 8, "big")
            _call(_dll.botan_mp_from_bin, self.handle, data, len(data))

    def __enter__(self) -> "_Number":
        return self

    def __exit__(self, *exc: object) -> None:
        _dll.botan_mp_destroy(self.handle)

    def value(self) -> int:
        size = c_size_t()
        _call(_dll.botan_mp_num_bytes, self.handle, byref(size))
        data = ctypes.create_string_buffer(size.value)
        _call(_dll.botan_mp_to_bin, self.handle, data)
        return int.from_bytes(data.raw, "big")


def _private_key(d: int) -> c_void_p:
    with _Number(d) as scalar:
        return _handle(_dll.botan_privkey_load_sm2, scalar.handle, _CURVE, destroy=_dll.botan_privkey_destroy)


def _private_field(key: c_void_p, field: bytes) -> int:
    with _Number() as number:
        _call(_dll.botan_privkey_get_field, number.handle, key, field)
        return number.value()


class _Operations(threading.local):
    """Botan's signer and verifier objects are not safe to share between threads: one per thread
    and key, made on first use with `create` ("Raw" digests, DER signatures)."""

    op: c_void_p | None = None

    def __init__(self, key: c_void_p, create: object, destroy: object) -> None:
        self._key, self._create, self._destroy = key, create, destroy

    def get(self) -> c_void_p:
        if self.op is None:
            self.op = _handle(self._create, self._key, _RAW, _DER, destroy=self._destroy)
        return self.op


class _PrivateHandle:
    def __init__(self, key: c_void_p) -> None:
        self._key = key                     # kept alive as long as its operations
        self._ops = _Operations(key, _dll.botan_pk_op_sign_create, _dll.botan_pk_op_sign_destroy)

    def sign_digest(self, e: bytes, rand: RandomSource) -> bytes:
        op = self._ops.get()
        signature = ctypes.create_string_buffer(80)
        size = c_size_t(80)
        if _dll.botan_pk_op_sign_update(op, e, len(e)) != 0 \
                or _dll.botan_pk_op_sign_finish(op, _RNG, signature, byref(size)) != 0:
            self._ops.op = None                             # start afresh after a failure
            raise RuntimeError("Botan SM2 signing failed")
        return signature.raw[: size.value]


class _PublicHandle:
    def __init__(self, key: c_void_p) -> None:
        self._key = key
        self._ops = _Operations(key, _dll.botan_pk_op_verify_create, _dll.botan_pk_op_verify_destroy)

    def verify_digest(self, signature: bytes, e: bytes) -> bool:
        op = self._ops.get()
        if _dll.botan_pk_op_verify_update(op, e, len(e)) != 0:
            self._ops.op = None
            raise RuntimeError("Botan SM2 verification failed")
        code = _dll.botan_pk_op_verify_finish(op, signature, len(signature))
        if code not in (0, _INVALID_SIGNATURE):            # an error, not a mismatch: start afresh
            self._ops.op = None
        return code == 0


class BotanBackend:
    name = "botan"

    def generate(self, rand: RandomSource) -> tuple[int, int, int]:
        key = _handle(_dll.botan_privkey_create, b"SM2", _CURVE, _RNG, destroy=_dll.botan_privkey_destroy)
        return _private_field(key, b"x"), _private_field(key, b"public_x"), _private_field(key, b"public_y")

    def public_point(self, d: int) -> tuple[int, int]:
        key = _private_key(d)
        return _private_field(key, b"public_x"), _private_field(key, b"public_y")

    def private_handle(self, d: int, x: int, y: int) -> _PrivateHandle:
        return _PrivateHandle(_private_key(d))

    def public_handle(self, x: int, y: int) -> _PublicHandle:
        # Botan's own key check adds n·Q = O, a full scalar multiplication (0.33 ms) that tells
        # nothing more on a curve of cofactor 1; the curve equation is checked here instead
        if not on_curve(x, y):
            raise ValueError("not an SM2 public key")
        with _Number(x) as px, _Number(y) as py:
            return _PublicHandle(_handle(_dll.botan_pubkey_load_sm2, px.handle, py.handle, _CURVE,
                                         destroy=_dll.botan_pubkey_destroy))

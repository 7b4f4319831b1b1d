"""Property tests for SM2: random messages and random distinguishing IDs, across backends."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pki
from pki.sm2 import available_backends, backend_by_name
from pki.sm2.core import CURVE

BACKENDS = list(available_backends())
KEY = pki.generate_key("sm2")
assert isinstance(KEY, pki.SM2PrivateKey)
distids = st.one_of(st.none(), st.just(b""), st.binary(max_size=64))


@pytest.mark.parametrize("signer", BACKENDS)
@pytest.mark.parametrize("verifier", BACKENDS)
@settings(max_examples=15, deadline=None)
@given(message=st.binary(max_size=1024), distid=distids)
def test_round_trip_across_backends(signer: str, verifier: str, message: bytes, distid: bytes | None) -> None:
    sig = KEY.with_backend(backend_by_name(signer)).sign(message, distid=distid)
    KEY.public_key().with_backend(backend_by_name(verifier)).verify(sig, message, distid=distid)


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=256), distid=distids, other=distids)
def test_a_different_id_fails(message: bytes, distid: bytes | None, other: bytes | None) -> None:
    effective = lambda d: pki.DEFAULT_DISTID if d is None else d  # noqa: E731
    if effective(distid) == effective(other):
        return
    sig = KEY.sign(message, distid=distid)
    with pytest.raises(pki.InvalidSignature):
        KEY.public_key().verify(sig, message, distid=other)


@settings(max_examples=25, deadline=None)
@given(message=st.binary(max_size=256), distid=distids)
def test_sign_digest_equals_sign(message: bytes, distid: bytes | None) -> None:
    e = KEY.public_key().digest(message, distid)
    KEY.public_key().verify(KEY.sign_digest(e), message, distid=distid)
    KEY.public_key().verify_digest(KEY.sign(message, distid=distid), e)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=1, max_value=2**64))
def test_spki_encoding_equals_asn1crypto(seed: int) -> None:
    # the fixed-prefix SubjectPublicKeyInfo of pki.algorithms against asn1crypto's own encoding
    from pki.algorithms import _sm2_spki, _sm2_spki_asn1
    from pki.sm2.core import default_backend
    x, y = default_backend().public_point(seed)
    assert _sm2_spki(x, y) == _sm2_spki_asn1(x, y)
    assert pki.SM2PublicKey(x, y).to_der() == _sm2_spki_asn1(x, y)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_point_off_the_curve_is_refused(backend: str) -> None:
    public = KEY.public_key()
    with pytest.raises(pki.KeyFileError):
        pki.SM2PublicKey(public.x, public.y + 1, backend=backend_by_name(backend))


def _asn1crypto_decode(signature: bytes) -> tuple[int, int] | None:
    """The strict decoding of a DER (r, s) as asn1crypto does it: the reference for the hand-written one."""
    from asn1crypto import algos
    try:
        parsed = algos.DSASignature.load(signature, strict=True)
        r, s = parsed["r"].native, parsed["s"].native
        if parsed.dump(force=True) != signature or not (0 < r < CURVE.n and 0 < s < CURVE.n):
            return None
        return r, s
    except Exception:  # noqa: BLE001 - asn1crypto raises several types for junk
        return None


_scalars = st.integers(min_value=1, max_value=CURVE.n - 1)


@settings(max_examples=200, deadline=None)
@given(r=_scalars, s=_scalars)
def test_signature_encoding_equals_asn1crypto(r: int, s: int) -> None:
    from asn1crypto import algos
    from pki.sm2.core import decode_signature, encode_signature
    der = encode_signature(r, s)
    assert der == algos.DSASignature({"r": r, "s": s}).dump()
    assert decode_signature(der) == (r, s)


@settings(max_examples=400, deadline=None)
@given(r=_scalars, s=_scalars, at=st.integers(min_value=0, max_value=80), byte=st.integers(0, 255),
       cut=st.integers(min_value=0, max_value=3), extra=st.binary(max_size=3))
def test_signature_decoding_accepts_exactly_what_asn1crypto_does(r: int, s: int, at: int, byte: int, cut: int,
                                                                 extra: bytes) -> None:
    from pki.sm2.core import decode_signature, encode_signature
    der = bytearray(encode_signature(r, s))
    if at < len(der):
        der[at] = byte
    mutated = bytes(der[:len(der) - cut]) + extra
    expected = _asn1crypto_decode(mutated)
    if expected is None:
        with pytest.raises(pki.InvalidSignature):
            decode_signature(mutated)
    else:
        assert decode_signature(mutated) == expected

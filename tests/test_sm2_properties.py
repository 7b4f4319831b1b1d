"""Property tests for SM2: random messages and random distinguishing IDs, across backends."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pki
from pki.sm2 import available_backends, backend_by_name

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

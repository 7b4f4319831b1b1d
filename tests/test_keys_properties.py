"""Property tests: sign/verify and save/load round trips for every algorithm.

Keys are generated once per module (RSA-4096 generation takes about a second);
example counts stay modest because this runs on two cores.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pki

KEYS = {alg: pki.generate_key(alg) for alg in pki.ALGORITHMS}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
messages = st.binary(max_size=2048)


@pytest.mark.parametrize("alg", pki.ALGORITHMS)
@SETTINGS
@given(message=messages)
def test_sign_verify_round_trip(alg: str, message: bytes) -> None:
    key = KEYS[alg]
    key.public_key().verify(key.sign(message), message)


@pytest.mark.parametrize("alg", pki.ALGORITHMS)
@SETTINGS
@given(message=messages, position=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_altered_signature_fails(alg: str, message: bytes, position: int, bit: int) -> None:
    key = KEYS[alg]
    signature = bytearray(key.sign(message))  # ECDSA/SM2 lengths vary: position is taken modulo
    signature[position % len(signature)] ^= 1 << bit
    with pytest.raises(pki.InvalidSignature):
        key.public_key().verify(bytes(signature), message)


@pytest.mark.parametrize("alg", pki.ALGORITHMS)
@SETTINGS
@given(message=messages, keep=st.integers(0, 10**6), tail=st.binary(min_size=1, max_size=8))
def test_truncated_or_extended_signature_fails(alg: str, message: bytes, keep: int, tail: bytes) -> None:
    key = KEYS[alg]
    signature = key.sign(message)
    with pytest.raises(pki.InvalidSignature):
        key.public_key().verify(signature[:keep % len(signature)], message)
    with pytest.raises(pki.InvalidSignature):
        key.public_key().verify(signature + tail, message)


@pytest.mark.parametrize("alg", pki.ALGORITHMS)
@SETTINGS
@given(message=messages, other=messages)
def test_signature_does_not_cover_another_message(alg: str, message: bytes, other: bytes) -> None:
    if message == other:
        return
    key = KEYS[alg]
    with pytest.raises(pki.InvalidSignature):
        key.public_key().verify(key.sign(message), other)


@pytest.mark.parametrize("alg", pki.ALGORITHMS)
def test_signature_from_another_key_fails(alg: str) -> None:
    other = pki.generate_key(alg) if not alg.startswith("rsa") else KEYS["rsa2048" if alg != "rsa2048" else "rsa3072"]
    with pytest.raises(pki.InvalidSignature):
        KEYS[alg].public_key().verify(other.sign(b"m"), b"m")


@pytest.mark.parametrize("alg", pki.ALGORITHMS)
@settings(max_examples=5, deadline=None)
@given(password=st.binary(min_size=1, max_size=64).filter(lambda p: p.strip(b"\0")),
       scheme=st.sampled_from(sorted(pki.SCHEMES)))
def test_encrypted_pem_round_trip(alg: str, password: bytes, scheme: str) -> None:
    key = KEYS[alg]
    data = key.to_pem(password, scheme=scheme)
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = pki.load_private_key(data, password)
    assert loaded.algorithm == alg
    assert loaded.public_key() == key.public_key()
    assert loaded.to_pkcs8_der() == key.to_pkcs8_der()
    with pytest.raises(pki.WrongPassword):
        pki.load_private_key(data, password + b"!")


@pytest.mark.parametrize("alg", pki.ALGORITHMS)
def test_plain_pem_and_public_key_round_trip(alg: str) -> None:
    key = KEYS[alg]
    loaded = pki.load_private_key(key.to_pem())
    assert loaded.to_pkcs8_der() == key.to_pkcs8_der()
    assert pki.load_private_key(key.to_pkcs8_der()).public_key() == key.public_key()
    pub = key.public_key()
    assert pki.load_public_key(pub.to_pem()) == pub
    assert pki.load_public_key(pub.to_der()) == pub
    assert pki.public_key_from_spki(pub.spki()) == pub


@settings(max_examples=30, deadline=None)
@given(password=st.binary(min_size=1, max_size=40), salt_iv=st.binary(min_size=32, max_size=32),
       scheme=st.sampled_from(sorted(pki.SCHEMES)), iterations=st.integers(1, 50))
def test_pkcs8_encryption_round_trip_with_any_parameters(password: bytes, salt_iv: bytes, scheme: str,
                                                         iterations: int) -> None:
    class Fixed:
        def __init__(self) -> None:
            self.left = salt_iv

        def token_bytes(self, n: int) -> bytes:
            out, self.left = self.left[:n], self.left[n:]
            return out

        def randbelow(self, n: int) -> int:
            raise AssertionError("not used")

    info = KEYS["ecdsa-p256"].to_pkcs8_der()
    encrypted = pki.encrypt_pkcs8(info, password, scheme=scheme, iterations=iterations, rand=Fixed())
    assert pki.decrypt_pkcs8(encrypted, password) == info

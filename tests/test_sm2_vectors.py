"""SM2 vectors made elsewhere: GM/T 0003.5 Annex A and OpenSSL-made keys and signatures."""
from __future__ import annotations

from pathlib import Path

import pytest

import pki
from pki.sm2 import available_backends, backend_by_name
from pki.sm2.core import decode_signature, encode_signature

VECTORS = Path(__file__).parent / "vectors" / "sm2"
BACKENDS = list(available_backends())


def _annex() -> dict[str, str]:
    fields = {}
    for line in (VECTORS / "gmt0003_5_annex_a.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return fields


ANNEX = _annex()


def _h(name: str) -> int:
    return int(ANNEX[name], 16)


class _FixedNonce:
    """A RandomSource whose randbelow yields k-1, so the backend's k = randbelow(n-1)+1 is k."""

    def __init__(self, k: int) -> None:
        self.k = k

    def randbelow(self, n: int) -> int:
        assert self.k - 1 < n
        return self.k - 1

    def token_bytes(self, n: int) -> bytes:
        raise AssertionError("not used for signing")


@pytest.mark.parametrize("backend", BACKENDS)
def test_annex_public_key_derives_from_d(backend: str) -> None:
    key = pki.SM2PrivateKey(_h("d"), backend=backend_by_name(backend))
    assert (key.public_key().x, key.public_key().y) == (_h("xA"), _h("yA"))


def test_annex_z_and_e() -> None:
    pub = pki.SM2PublicKey(_h("xA"), _h("yA"))
    distid = ANNEX["id"].encode()
    assert pub.z(distid).hex().upper() == ANNEX["ZA"]
    assert pub.digest(ANNEX["message"].encode(), distid).hex().upper() == ANNEX["e"]
    assert pki.DEFAULT_DISTID == distid  # the example uses the GM/T 0009 default ID


@pytest.mark.parametrize("backend", BACKENDS)
def test_annex_signature_verifies(backend: str) -> None:
    pub = pki.SM2PublicKey(_h("xA"), _h("yA"), backend=backend_by_name(backend))
    sig = encode_signature(_h("r"), _h("s"))
    pub.verify(sig, ANNEX["message"].encode())  # default ID
    with pytest.raises(pki.InvalidSignature):
        pub.verify(sig, ANNEX["message"].encode(), distid=b"")
    with pytest.raises(pki.InvalidSignature):
        pub.verify(sig, b"message digesT")


def test_annex_gmssl_backend_reproduces_r_s_from_k() -> None:
    key = pki.SM2PrivateKey(_h("d"), backend=backend_by_name("gmssl"), rand=_FixedNonce(_h("k")))
    assert decode_signature(key.sign(ANNEX["message"].encode())) == (_h("r"), _h("s"))


def test_annex_signature_verifies_in_openssl(tmp_path: Path, openssl) -> None:
    key = pki.SM2PrivateKey(_h("d"))
    (tmp_path / "pub.pem").write_bytes(key.public_key().to_pem())
    (tmp_path / "msg").write_bytes(ANNEX["message"].encode())
    (tmp_path / "sig").write_bytes(encode_signature(_h("r"), _h("s")))
    ok = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-digest", "sm3",
                 "-pkeyopt", f"distid:{ANNEX['id']}", "-in", tmp_path / "msg", "-sigfile", tmp_path / "sig")
    assert b"Verified Successfully" in ok.stdout


# --------------------------------------------------------------------------- OpenSSL-made files

MESSAGE = (VECTORS / "message.txt").read_bytes()
CUSTOM_ID = (VECTORS / "custom_id.txt").read_bytes()
SIGNATURES = {  # file -> the distinguishing ID OpenSSL signed with
    "message.sig.default_id.der": pki.DEFAULT_DISTID,
    "message.sig.empty_id.der": b"",
    "message.sig.custom_id.der": CUSTOM_ID,
}


def _openssl_public() -> pki.SM2PublicKey:
    pub = pki.load_public_key((VECTORS / "openssl_sm2.pub.pem").read_bytes())
    assert isinstance(pub, pki.SM2PublicKey)
    return pub


def test_openssl_plain_and_encrypted_keys_load_to_the_same_key() -> None:
    plain = pki.load_private_key((VECTORS / "openssl_sm2.pem").read_bytes())
    password = (VECTORS / "openssl_sm2_aes256.password").read_bytes().splitlines()[0]
    encrypted = pki.load_private_key((VECTORS / "openssl_sm2_aes256.pem").read_bytes(), password)
    assert plain.algorithm == encrypted.algorithm == "sm2"
    assert plain.public_key() == encrypted.public_key() == _openssl_public()


def test_openssl_encrypted_key_refuses_a_wrong_password() -> None:
    with pytest.raises(pki.WrongPassword):
        pki.load_private_key((VECTORS / "openssl_sm2_aes256.pem").read_bytes(), b"not the password")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sig_file", sorted(SIGNATURES))
def test_openssl_signatures_verify_with_their_id_only(sig_file: str, backend: str) -> None:
    pub = _openssl_public().with_backend(backend_by_name(backend))
    sig = (VECTORS / sig_file).read_bytes()
    pub.verify(sig, MESSAGE, distid=SIGNATURES[sig_file])
    for other in {pki.DEFAULT_DISTID, b"", CUSTOM_ID} - {SIGNATURES[sig_file]}:
        with pytest.raises(pki.InvalidSignature):
            pub.verify(sig, MESSAGE, distid=other)
    with pytest.raises(pki.InvalidSignature):
        pub.verify(sig, MESSAGE + b"!", distid=SIGNATURES[sig_file])


def test_default_distid_is_used_when_none_is_given() -> None:
    _openssl_public().verify((VECTORS / "message.sig.default_id.der").read_bytes(), MESSAGE)

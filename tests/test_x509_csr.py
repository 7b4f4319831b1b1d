"""PKCS#10 requests: OpenSSL-made ones load and verify, ours pass `openssl req -verify`."""
from __future__ import annotations

from pathlib import Path

import pytest

from pki.algorithms import ALGORITHMS
from pki.errors import CertificateError
from pki.x509 import (build_csr, csr_subject, csr_subject_alt_names, csr_to_pem, load_csr,
                      name_to_text, parse_name, verify_csr)
from x509_support import DISTID_OPT, GMT_DISTID, key, openssl, pkeyutl_verify_sm2

VECTORS = Path(__file__).parent / "vectors" / "x509"


def _vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


@pytest.mark.parametrize("name, algorithm, subject, sans", [
    ("csr_openssl_rsa2048_san.pem", "rsa2048", "CN=张三,O=北京市测试局,C=CN",
     (("dns", "a.example"), ("ip", "127.0.0.1"), ("email", "zhangsan@example.cn"))),
    ("csr_openssl_ecdsa_p256.pem", "ecdsa-p256", "CN=李四,OU=信息中心,O=北京市测试局,C=CN", ()),
    ("csr_openssl_ecdsa_p384_sha256.pem", "ecdsa-p384", "CN=p384 sha256,O=Example,C=CN", ()),
    ("csr_openssl_sm2_gmt_distid.pem", "sm2",
     "serialNumber=110101199001011234,CN=王五,O=北京市测试局,L=海淀,ST=北京,C=CN",
     (("email", "wangwu@example.cn"),)),
])
def test_openssl_made_csrs_load_and_verify(name, algorithm, subject, sans):
    csr = load_csr(_vector(name))
    public_key = verify_csr(csr)
    assert public_key.algorithm == algorithm
    assert name_to_text(csr_subject(csr)) == subject
    assert csr_subject_alt_names(csr) == sans


def test_openssl_sm2_csr_made_without_sigopt_uses_the_empty_id():
    csr = load_csr(_vector("csr_openssl_sm2_empty_distid.pem"))
    with pytest.raises(CertificateError, match="CSR signature does not verify"):
        verify_csr(csr)  # the GM/T default ID
    assert verify_csr(csr, distid=b"").algorithm == "sm2"


@pytest.mark.parametrize("name", ["csr_openssl_flipped_sig_rsa2048_san.der",
                                  "csr_openssl_flipped_sig_ecdsa_p256.der",
                                  "csr_openssl_flipped_sig_sm2_gmt_distid.der"])
def test_a_flipped_signature_byte_is_refused(tmp_path, name):
    der = _vector(name)
    csr = load_csr(der)  # still well-formed
    with pytest.raises(CertificateError) as info:
        verify_csr(csr)
    assert info.value.message == "CSR signature does not verify"
    # OpenSSL agrees
    path = tmp_path / "bad.der"
    path.write_bytes(der)
    extra = ["-vfyopt", DISTID_OPT] if "sm2" in name else []
    result = openssl("req", "-inform", "DER", "-in", path, "-verify", "-noout", *extra, check=False)
    assert "verify failure" in result.out + result.err


def test_a_tampered_subject_is_refused():
    pem_data = _vector("csr_openssl_rsa2048_san.pem")
    csr = load_csr(pem_data)
    der = csr.dump()
    tampered = der.replace("张三".encode(), "李四".encode())
    assert tampered != der
    with pytest.raises(CertificateError, match="does not verify"):
        verify_csr(load_csr(tampered))


@pytest.mark.parametrize("junk", [b"", b"junk", b"\x30\x00", _vector("csr_openssl_rsa2048_san.pem")[:200],
                                  b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"])
def test_junk_csr_is_refused(junk):
    with pytest.raises(CertificateError) as info:
        load_csr(junk)
    assert info.value.data["field"] == "csr"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_csrs_we_build_pass_openssl(tmp_path, alg):
    subject = parse_name("/C=CN/O=北京市测试局/OU=办公室/CN=赵六")
    sans = (("email", "zhaoliu@example.cn"), ("dns", "zl.example.cn"))
    csr = build_csr(subject, key(alg), subject_alt_names=sans)
    assert verify_csr(csr) == key(alg).public_key()
    assert csr_subject_alt_names(csr) == sans
    path = tmp_path / "ours.csr"
    path.write_bytes(csr_to_pem(csr))
    extra = ["-vfyopt", DISTID_OPT] if alg == "sm2" else []
    result = openssl("req", "-in", path, "-verify", "-noout", *extra, check=False)
    assert "Certificate request self-signature verify OK" in result.out + result.err
    text = openssl("req", "-in", path, "-noout", "-text", "-nameopt", "utf8").out
    assert "Subject: C=CN, O=北京市测试局, OU=办公室, CN=赵六" in text
    assert "email:zhaoliu@example.cn, DNS:zl.example.cn" in text
    if alg == "sm2":
        info = csr["certification_request_info"].dump()
        signature = csr["signature"].native
        assert pkeyutl_verify_sm2(tmp_path, key(alg).public_key().to_pem(), info, signature)
        assert not pkeyutl_verify_sm2(tmp_path, key(alg).public_key().to_pem(), info, signature,
                                      distid="distid:")


def test_sm2_csr_with_a_custom_distid(tmp_path):
    csr = build_csr(parse_name("CN=custom id"), key("sm2"), distid=b"alice@example.cn")
    assert verify_csr(csr, distid=b"alice@example.cn").algorithm == "sm2"
    with pytest.raises(CertificateError):
        verify_csr(csr)
    path = tmp_path / "c.csr"
    path.write_bytes(csr_to_pem(csr))
    result = openssl("req", "-in", path, "-verify", "-noout", "-vfyopt", "distid:alice@example.cn")
    assert "verify OK" in result.out + result.err


def test_csr_without_sans_has_no_extension_request(tmp_path):
    csr = build_csr(parse_name("CN=plain"), key("ecdsa-p256"))
    assert csr_subject_alt_names(csr) == ()
    assert len(csr["certification_request_info"]["attributes"]) == 0
    path = tmp_path / "c.csr"
    path.write_bytes(csr_to_pem(csr))
    assert "verify OK" in openssl("req", "-in", path, "-verify", "-noout").err


def test_build_csr_refuses_bad_sans():
    with pytest.raises(CertificateError):
        build_csr(parse_name("CN=x"), key("ecdsa-p256"), subject_alt_names=(("dns", "not a host"),))


def test_openssl_made_key_csr_round_trip_with_our_verifier(tmp_path):
    """A CSR OpenSSL makes now from a fresh SM2 key with the GM/T ID verifies here (fresh, not a vector)."""
    keyfile = tmp_path / "k.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", keyfile)
    csr_pem = openssl("req", "-new", "-key", keyfile, "-sm3", "-sigopt", DISTID_OPT, "-subj", "/CN=fresh").stdout
    assert verify_csr(load_csr(csr_pem), distid=GMT_DISTID).algorithm == "sm2"

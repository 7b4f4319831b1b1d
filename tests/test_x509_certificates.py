"""Certificates for all six algorithms, judged by `openssl verify` / `openssl x509` and by
cryptography's strict DER parser."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import pem
from cryptography import x509 as crypto_x509

from pki.algorithms import ALGORITHMS
from pki.errors import CertificateError, InvalidSignature
from pki.x509 import (CertificateSpec, build_tbs_certificate, certificate_public_key,
                      certificate_to_pem, load_certificate, load_certificates, parse_name,
                      sign_certificate, verify_certificate_signature)
from x509_support import DISTID_OPT, GMT_DISTID, NOW, issue, key, openssl, pkeyutl_verify_sm2


def _vfy(alg: str) -> list[str]:
    return ["-vfyopt", DISTID_OPT] if alg == "sm2" else []


def _verify_ok(result) -> bool:
    return result.returncode == 0 and result.out.strip().endswith(": OK")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_root_and_leaf_verify_with_openssl(tmp_path, alg):
    root = issue(f"/C=CN/O=北京市测试局/CN=测试根 {alg}", key(alg), None, ca=True)
    leaf = issue("/C=CN/O=北京市测试局/CN=张三", key(alg, 1), root,
                 extended_key_usage=("client_auth", "email_protection"),
                 subject_alt_names=(("email", "zhangsan@example.cn"),))
    root_pem = root.write(tmp_path / "root.pem")
    leaf_pem = leaf.write(tmp_path / "leaf.pem")
    result = openssl("verify", *_vfy(alg), "-CAfile", root_pem, leaf_pem, check=False)
    assert _verify_ok(result), result.out + result.err
    # the root's self-signature too: -check_ss_sig makes openssl check the trust anchor
    if alg != "sm2":  # SM2: openssl checks a trust anchor with the empty ID, see test_sm2_* below
        assert _verify_ok(openssl("verify", "-check_ss_sig", "-CAfile", root_pem, root_pem, check=False))
    verify_certificate_signature(leaf.cert, root.key.public_key())
    verify_certificate_signature(root.cert, root.key.public_key())
    # strict DER: cryptography's (Rust) parser refuses BER and non-canonical encodings
    parsed = crypto_x509.load_der_x509_certificate(leaf.cert.dump())
    assert parsed.serial_number == leaf.cert.serial_number
    assert crypto_x509.load_der_x509_certificate(root.cert.dump()).extensions.get_extension_for_class(
        crypto_x509.BasicConstraints).value.ca
    assert certificate_public_key(leaf.cert) == key(alg, 1).public_key()


@pytest.mark.parametrize("alg", ["rsa2048", "ecdsa-p384"])
def test_chain_with_sub_ca_verifies_in_one_openssl_call(tmp_path, alg):
    root = issue(f"/C=CN/O=测试/CN=Root {alg}", key(alg), None, ca=True, path_length=1)
    sub = issue(f"/C=CN/O=测试/CN=Sub {alg}", key(alg, 1), root, ca=True, path_length=0)
    leaf = issue("/C=CN/O=测试/CN=leaf", key(alg, 2), sub,
                 extended_key_usage=("server_auth",), subject_alt_names=(("dns", "a.example"),))
    result = openssl("verify", "-CAfile", root.write(tmp_path / "root.pem"),
                     "-untrusted", sub.write(tmp_path / "sub.pem"), leaf.write(tmp_path / "leaf.pem"),
                     check=False)
    assert _verify_ok(result), result.out + result.err
    # and the purpose check passes for a TLS server certificate
    assert _verify_ok(openssl("verify", "-purpose", "sslserver", "-CAfile", tmp_path / "root.pem",
                              "-untrusted", tmp_path / "sub.pem", tmp_path / "leaf.pem", check=False))


@pytest.fixture(scope="module")
def sm2_chain():
    root = issue("/C=CN/O=测试/CN=SM2 Root", key("sm2"), None, ca=True, path_length=1)
    sub = issue("/C=CN/O=测试/CN=SM2 Sub", key("sm2", 1), root, ca=True, path_length=0)
    leaf = issue("/C=CN/O=测试/CN=SM2 Leaf", key("sm2", 2), sub)
    return root, sub, leaf


def test_sm2_chain_link_by_link_with_openssl(tmp_path, sm2_chain):
    """How OpenSSL 3.0 can check a GM/T chain: one `openssl verify` per link.

    `-vfyopt distid:` reaches only the end certificate's signature, so each link
    is verified as "end certificate + its issuer as trust anchor" (-partial_chain
    when that issuer is not self-signed), and the root's self-signature with pkeyutl.
    """
    root, sub, leaf = sm2_chain
    root_pem, sub_pem, leaf_pem = (c.write(tmp_path / f"{n}.pem") for c, n in
                                   zip(sm2_chain, ("root", "sub", "leaf")))
    assert _verify_ok(openssl("verify", "-vfyopt", DISTID_OPT, "-CAfile", root_pem, sub_pem, check=False))
    assert _verify_ok(openssl("verify", "-vfyopt", DISTID_OPT, "-partial_chain", "-CAfile", sub_pem,
                              leaf_pem, check=False))
    for cert, issuer in ((root, root), (sub, root), (leaf, sub)):
        assert pkeyutl_verify_sm2(tmp_path, issuer.key.public_key().to_pem(),
                                  cert.cert["tbs_certificate"].dump(), cert.cert["signature_value"].native)
    # the same links fail without the distinguishing ID: the checks can fail
    assert not _verify_ok(openssl("verify", "-partial_chain", "-CAfile", sub_pem, leaf_pem, check=False))
    assert not pkeyutl_verify_sm2(tmp_path, sub.key.public_key().to_pem(), leaf.cert["tbs_certificate"].dump(),
                                  leaf.cert["signature_value"].native, distid="distid:")


def test_sm2_full_chain_in_one_openssl_call_fails_with_gmt_id(tmp_path, sm2_chain):
    """Documents OpenSSL 3.0's limit: intermediates are checked with the empty ID.

    `openssl verify -vfyopt distid:1234567812345678 -CAfile root -untrusted sub leaf`
    fails at depth 1 (the sub-CA's signature by the root) although every
    signature in the chain is a valid GM/T one (see the link-by-link test).
    """
    root, sub, leaf = sm2_chain
    result = openssl("verify", "-vfyopt", DISTID_OPT, "-CAfile", root.write(tmp_path / "root.pem"),
                     "-untrusted", sub.write(tmp_path / "sub.pem"), leaf.write(tmp_path / "leaf.pem"),
                     check=False)
    assert not _verify_ok(result)
    assert "at 1 depth lookup: certificate signature failure" in result.out + result.err
    # the trust anchor's self-signature is likewise checked with the empty ID
    root_pem = tmp_path / "root.pem"
    ss = openssl("verify", "-check_ss_sig", "-vfyopt", DISTID_OPT, "-CAfile", root_pem, root_pem, check=False)
    assert not _verify_ok(ss)


def test_sm2_chain_signed_with_empty_id_verifies_in_one_openssl_call(tmp_path):
    """With the per-CA distid set to b"" (OpenSSL's default), plain `openssl verify` takes the chain."""
    root = issue("/CN=SM2 Root empty id", key("sm2"), None, ca=True, distid=b"")
    sub = issue("/CN=SM2 Sub empty id", key("sm2", 1), root, ca=True, distid=b"")
    leaf = issue("/CN=SM2 Leaf empty id", key("sm2", 2), sub, distid=b"")
    result = openssl("verify", "-check_ss_sig", "-CAfile", root.write(tmp_path / "root.pem"),
                     "-untrusted", sub.write(tmp_path / "sub.pem"), leaf.write(tmp_path / "leaf.pem"),
                     check=False)
    assert _verify_ok(result), result.out + result.err
    with pytest.raises(InvalidSignature):
        verify_certificate_signature(leaf.cert, sub.key.public_key())  # default GM/T ID
    verify_certificate_signature(leaf.cert, sub.key.public_key(), distid=b"")


def test_openssl_refuses_a_leaf_signed_by_another_key(tmp_path):
    root = issue("/CN=Root A", key("ecdsa-p256"), None, ca=True)
    other = issue("/CN=Root A", key("ecdsa-p256", 1), None, ca=True)  # same name, other key
    leaf = issue("/CN=leaf", key("ecdsa-p256", 2), other)
    result = openssl("verify", "-CAfile", root.write(tmp_path / "root.pem"),
                     leaf.write(tmp_path / "leaf.pem"), check=False)
    assert not _verify_ok(result)
    with pytest.raises(InvalidSignature):
        verify_certificate_signature(leaf.cert, root.key.public_key())


def test_openssl_text_shows_every_extension(tmp_path):
    root = issue("/C=CN/O=测试/CN=Ext Root", key("sm2"), None, ca=True, path_length=0)
    leaf = issue("/C=CN/O=北京市测试局/CN=张三", key("sm2", 1), root,
                 key_usage=frozenset({"digital_signature", "non_repudiation"}),
                 extended_key_usage=("client_auth", "email_protection", "1.2.156.10197.9.9"),
                 subject_alt_names=(("dns", "a.example"), ("ip", "127.0.0.1"), ("ip", "::1"),
                                    ("email", "zs@example.cn"), ("uri", "https://example.cn/zs")),
                 crl_urls=("http://127.0.0.1:8080/crl/full.crl",),
                 ocsp_urls=("http://127.0.0.1:8080/ocsp",), ca_issuers_urls=("http://127.0.0.1:8080/ca.crt",),
                 ocsp_no_check=True, policy_oids=("1.2.156.112562.1.1",))
    text = openssl("x509", "-in", leaf.write(tmp_path / "leaf.pem"), "-noout", "-text",
                   "-nameopt", "utf8").out
    for expected in ["Version: 3 (0x2)", "Signature Algorithm: SM2-with-SM3", "ASN1 OID: SM2",
                     "Subject: C=CN, O=北京市测试局, CN=张三", "Issuer: C=CN, O=测试, CN=Ext Root",
                     "X509v3 Basic Constraints: critical", "CA:FALSE",
                     "X509v3 Key Usage: critical", "Digital Signature, Non Repudiation",
                     "TLS Web Client Authentication, E-mail Protection, 1.2.156.10197.9.9",
                     "X509v3 Subject Key Identifier", "X509v3 Authority Key Identifier",
                     "DNS:a.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, "
                     "email:zs@example.cn, URI:https://example.cn/zs",
                     "URI:http://127.0.0.1:8080/crl/full.crl", "OCSP - URI:http://127.0.0.1:8080/ocsp",
                     "CA Issuers - URI:http://127.0.0.1:8080/ca.crt", "OCSP No Check",
                     "Policy: 1.2.156.112562.1.1"]:
        assert expected in text, expected
    root_text = openssl("x509", "-in", root.write(tmp_path / "root.pem"), "-noout", "-text").out
    assert "CA:TRUE, pathlen:0" in root_text and "Certificate Sign, CRL Sign" in root_text
    # SKI of the root = AKI of the leaf = SHA-1 of the root's key bits (RFC 5280 method 1)
    ski = root.key.public_key().key_identifier().hex(":").upper()
    assert ski in root_text and ski in text


def test_times_utc_until_2049_generalized_from_2050(tmp_path):
    issuer = issue("/CN=Time Root", key("ecdsa-p256"), None, ca=True)
    spec = CertificateSpec(subject=parse_name("/CN=long"), issuer=issuer.cert.subject, serial=77,
                           not_before=datetime(2049, 6, 1, 12, 0, 59, 999, tzinfo=timezone.utc),
                           not_after=datetime(2050, 1, 1, 7, 0, tzinfo=timezone(timedelta(hours=8))),
                           public_key=key("ecdsa-p256", 1).public_key(),
                           issuer_key_identifier=issuer.key.public_key().key_identifier())
    assert spec.not_before.microsecond == 0 and spec.not_after.tzinfo == timezone.utc
    cert = sign_certificate(build_tbs_certificate(spec, issuer.key.public_key().signature_algorithm()),
                            issuer.key)
    validity = cert["tbs_certificate"]["validity"]
    assert validity["not_before"].name == "utc_time"
    # 2050-01-01T07:00+08:00 is 2049-12-31T23:00Z: still UTCTime
    assert validity["not_after"].name == "utc_time"
    spec2 = CertificateSpec(**{**spec.__dict__, "not_after": datetime(2050, 1, 1, tzinfo=timezone.utc)})
    cert2 = sign_certificate(build_tbs_certificate(spec2, issuer.key.public_key().signature_algorithm()),
                             issuer.key)
    assert cert2["tbs_certificate"]["validity"]["not_after"].name == "general_time"
    path = tmp_path / "c.pem"
    path.write_bytes(certificate_to_pem(cert2))
    dates = openssl("x509", "-in", path, "-noout", "-startdate", "-enddate").out
    assert "notBefore=Jun  1 12:00:59 2049 GMT" in dates and "notAfter=Jan  1 00:00:00 2050 GMT" in dates


# ---------------------------------------------------------------- loading

def test_load_certificate_pem_der_bundle_and_junk():
    root = issue("/CN=Load Root", key("rsa2048"), None, ca=True)
    leaf = issue("/CN=Load Leaf", key("rsa2048", 1), root)
    der = root.cert.dump()
    assert load_certificate(der).dump() == der
    assert load_certificate(root.pem).dump() == der
    assert load_certificate(b"\n  " + root.pem).dump() == der
    bundle = root.pem + leaf.pem
    assert [c.dump() for c in load_certificates(bundle)] == [der, leaf.cert.dump()]
    assert [c.dump() for c in load_certificates(der)] == [der]
    with pytest.raises(CertificateError):
        load_certificate(bundle)  # two where one is asked for
    for junk in [b"", b"junk", der[:-1], der + b"\x00", b"\x30\x03\x02\x01\x01",
                 pem.armor("PUBLIC KEY", key("rsa2048").public_key().to_der()),
                 b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"]:
        with pytest.raises(CertificateError):
            load_certificate(junk)


def test_load_certificate_made_by_openssl(tmp_path):
    keyfile = tmp_path / "k.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2", "-out", keyfile)
    openssl("req", "-new", "-x509", "-key", keyfile, "-sm3", "-sigopt", DISTID_OPT, "-utf8",
            "-subj", "/C=CN/O=北京市测试局/CN=OpenSSL 根", "-days", "30", "-out", tmp_path / "c.pem")
    cert = load_certificate((tmp_path / "c.pem").read_bytes())
    assert cert.subject.native["common_name"] == "OpenSSL 根"
    verify_certificate_signature(cert, certificate_public_key(cert), distid=GMT_DISTID)
    with pytest.raises(InvalidSignature):
        verify_certificate_signature(cert, certificate_public_key(cert), distid=b"")


# ---------------------------------------------------------------- spec validation

def _spec(**overrides):
    base = dict(subject=parse_name("/CN=x"), issuer=parse_name("/CN=ca"), serial=1,
                not_before=NOW, not_after=NOW + timedelta(days=1), public_key=key("ecdsa-p256").public_key(),
                issuer_key_identifier=b"\x01" * 20)
    base.update(overrides)
    return CertificateSpec(**base)


@pytest.mark.parametrize("overrides, field", [
    ({"serial": 0}, "serial"),
    ({"serial": -5}, "serial"),
    ({"serial": 1 << 159}, "serial"),  # 21 octets
    ({"not_after": NOW}, "not_after"),
    ({"not_before": datetime(1949, 1, 1, tzinfo=timezone.utc)}, "not_before"),
    ({"key_usage": frozenset({"sign_everything"})}, "key_usage"),
    ({"key_usage": frozenset({"key_cert_sign"})}, "key_usage"),  # not a CA
    ({"extended_key_usage": ("world_domination",)}, "extended_key_usage"),
    ({"path_length": 0}, "path_length"),  # not a CA
    ({"ca": True, "path_length": -1}, "path_length"),
    ({"subject_alt_names": (("dns", "bad host"),)}, "subject_alt_names"),
    ({"subject_alt_names": (("ip", "300.1.1.1"),)}, "subject_alt_names"),
    ({"subject_alt_names": (("email", "nobody"),)}, "subject_alt_names"),
    ({"subject_alt_names": (("x400", "whatever"),)}, "subject_alt_names"),
    ({"crl_urls": ("not a url",)}, "crl_urls"),
    ({"policy_oids": ("1.2.x",)}, "policy_oids"),
    ({"subject": parse_name("/CN=x").__class__.load(b"\x30\x00")}, "subject"),  # empty, no SAN
])
def test_spec_refuses_bad_values(overrides, field):
    with pytest.raises(CertificateError) as info:
        _spec(**overrides)
    assert info.value.data["field"] == field


def test_spec_largest_serial_and_misuse():
    assert _spec(serial=(1 << 159) - 1).serial.bit_length() == 159
    with pytest.raises(ValueError):
        _spec(not_before=datetime(2025, 1, 1))  # naive
    with pytest.raises(TypeError):
        _spec(serial="1")


def test_empty_subject_makes_san_critical(tmp_path):
    issuer = issue("/CN=SAN Root", key("ecdsa-p256"), None, ca=True)
    spec = _spec(subject=parse_name("/CN=x").__class__.load(b"\x30\x00"),
                 subject_alt_names=(("dns", "only-san.example"),), issuer=issuer.cert.subject)
    cert = sign_certificate(build_tbs_certificate(spec, issuer.key.public_key().signature_algorithm()),
                            issuer.key)
    path = tmp_path / "c.pem"
    path.write_bytes(certificate_to_pem(cert))
    assert "X509v3 Subject Alternative Name: critical" in openssl("x509", "-in", path, "-noout", "-text").out


def test_sign_refuses_a_key_that_does_not_match_the_tbs_algorithm():
    spec = _spec()
    tbs = build_tbs_certificate(spec, key("rsa2048").public_key().signature_algorithm())
    with pytest.raises(ValueError):
        sign_certificate(tbs, key("ecdsa-p256"))

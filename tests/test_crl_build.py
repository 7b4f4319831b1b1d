"""CRLs judged by OpenSSL: `openssl crl` verifies and prints them, `openssl verify -crl_check`
uses them; SM2 CRLs are checked with `openssl pkeyutl` and the GM/T ID."""
from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import parser

from pki.crl import (RevokedEntry, build_tbs_crl, crl_delta_base, crl_entries, crl_number, crl_to_pem,
                     encode_tbs_crl_der, load_crl, sign_crl, sign_crl_der, verify_crl_signature)
from pki.errors import CertificateError, InvalidSignature
from pki.x509 import parse_name
from x509_support import NOW, issue, key, openssl, pkeyutl_verify_sm2

HOUR = timedelta(hours=1)


@functools.lru_cache(maxsize=None)
def _hierarchy(alg):
    ca = issue(f"/C=CN/O=北京市测试局/CN=CRL CA {alg}", key(alg), None, ca=True)
    revoked = issue("/C=CN/O=北京市测试局/CN=被撤销", key(alg, 1), ca)
    good = issue("/C=CN/O=北京市测试局/CN=正常", key(alg, 2), ca)
    return alg, ca, revoked, good


def _crl(ca, entries, *, number=1, delta_base=None, this_update=None, distid=None, **kw):
    this_update = this_update or NOW - HOUR
    tbs = build_tbs_crl(issuer=ca.cert.subject, this_update=this_update, next_update=this_update + timedelta(days=7),
                        crl_number=number, entries=entries,
                        authority_key_identifier=ca.key.public_key().key_identifier(),
                        signature_algorithm=ca.key.public_key().signature_algorithm(),
                        delta_base=delta_base, **kw)
    return sign_crl(tbs, ca.key, distid=distid)


def _entries_for(revoked):
    return [RevokedEntry(revoked.cert.serial_number, NOW - 2 * HOUR, "key_compromise"),
            RevokedEntry(0x7F, NOW - 3 * HOUR, "certificate_hold"),
            RevokedEntry(0x80, NOW - 4 * HOUR, None),
            RevokedEntry(0x0102030405060708090A0B0C0D0E0F1011121314, NOW - 5 * HOUR, "superseded")]


@pytest.mark.parametrize("alg", ["rsa2048", "ecdsa-p256", "ecdsa-p384", "sm2"])
def test_openssl_verifies_and_prints_the_crl(tmp_path, alg):
    alg, ca, revoked, _good = _hierarchy(alg)
    crl_ = _crl(ca, _entries_for(revoked), number=42)
    path = tmp_path / "x.crl"
    path.write_bytes(crl_to_pem(crl_))
    ca_pem = ca.write(tmp_path / "ca.pem")
    if alg != "sm2":
        result = openssl("crl", "-in", path, "-CAfile", ca_pem, "-noout")
        assert "verify OK" in result.err
    text = openssl("crl", "-in", path, "-noout", "-text", "-nameopt", "utf8").out
    assert "Version 2 (0x1)" in text
    assert f"Issuer: C=CN, O=北京市测试局, CN=CRL CA {alg}" in text
    assert re.search(r"X509v3 CRL Number: \n\s+42\n", text)
    assert "Delta CRL Indicator" not in text
    assert f"Serial Number: {revoked.cert.serial_number:02X}" in text
    assert "Serial Number: 7F" in text and "Serial Number: 80" in text
    assert "Serial Number: 0102030405060708090A0B0C0D0E0F1011121314" in text
    reasons = re.findall(r"X509v3 CRL Reason Code: \n\s+(.+)\n", text)
    assert reasons == ["Key Compromise", "Certificate Hold", "Superseded"]
    assert (NOW - 2 * HOUR).strftime("%b %e %H:%M:%S %Y GMT") in text
    assert ca.key.public_key().key_identifier().hex(":").upper() in text  # AKI


def test_sm2_crl_signature_checked_by_pkeyutl_with_gmt_id(tmp_path):
    _, ca, revoked, _good = _hierarchy("sm2")
    crl_ = _crl(ca, _entries_for(revoked))
    tbs_der = crl_["tbs_cert_list"].dump()
    signature = crl_["signature"].native
    pub = ca.key.public_key().to_pem()
    assert pkeyutl_verify_sm2(tmp_path, pub, tbs_der, signature)
    assert not pkeyutl_verify_sm2(tmp_path, pub, tbs_der, signature, distid="distid:")
    # `openssl crl -CAfile` has no -vfyopt and checks SM2 with the empty ID: it refuses a GM/T CRL
    path = tmp_path / "x.crl"
    path.write_bytes(crl_to_pem(crl_))
    result = openssl("crl", "-in", path, "-CAfile", ca.write(tmp_path / "ca.pem"), "-noout", check=False)
    assert "verify failure" in result.err
    # … and accepts one signed with the empty ID
    path.write_bytes(crl_to_pem(_crl(ca, _entries_for(revoked), distid=b"")))
    assert "verify OK" in openssl("crl", "-in", path, "-CAfile", tmp_path / "ca.pem", "-noout").err
    verify_crl_signature(crl_, ca.key.public_key())


# not SM2: openssl verify checks SM2 CRL signatures with the empty ID (see the pkeyutl test)
@pytest.mark.parametrize("alg", ["rsa2048", "ecdsa-p256", "ecdsa-p384"])
def test_openssl_verify_crl_check_reports_revoked_leaf(tmp_path, alg):
    _, ca, revoked, good = _hierarchy(alg)
    crl_path = tmp_path / "x.crl"
    crl_path.write_bytes(crl_to_pem(_crl(ca, _entries_for(revoked))))
    ca_pem = ca.write(tmp_path / "ca.pem")
    result = openssl("verify", "-crl_check", "-CAfile", ca_pem, "-CRLfile", crl_path,
                     revoked.write(tmp_path / "revoked.pem"), check=False)
    assert result.returncode != 0
    assert "certificate revoked" in result.out + result.err
    ok = openssl("verify", "-crl_check", "-CAfile", ca_pem, "-CRLfile", crl_path,
                 good.write(tmp_path / "good.pem"), check=False)
    assert ok.returncode == 0 and ok.out.strip().endswith(": OK"), ok.out + ok.err


def test_delta_crl_with_remove_from_crl(tmp_path):
    ca = issue("/C=CN/CN=Delta CA", key("rsa2048"), None, ca=True)
    held = issue("/CN=held then released", key("rsa2048", 1), ca)
    delta = _crl(ca, [RevokedEntry(held.cert.serial_number, NOW - HOUR, "remove_from_crl"),
                      RevokedEntry(99, NOW - HOUR, "cessation_of_operation")], number=8, delta_base=7)
    assert crl_number(delta) == 8 and crl_delta_base(delta) == 7
    path = tmp_path / "delta.crl"
    path.write_bytes(crl_to_pem(delta))
    result = openssl("crl", "-in", path, "-CAfile", ca.write(tmp_path / "ca.pem"), "-noout", "-text")
    assert "verify OK" in result.err
    assert re.search(r"X509v3 Delta CRL Indicator: critical\n\s+7\n", result.out)
    assert re.search(r"X509v3 CRL Number: \n\s+8\n", result.out)
    assert "Remove From CRL" in result.out and "Cessation Of Operation" in result.out


def test_full_crl_may_point_at_deltas(tmp_path):
    ca = issue("/CN=Freshest CA", key("ecdsa-p256"), None, ca=True)
    crl_ = _crl(ca, [], freshest_crl_urls=("http://127.0.0.1:8080/crl/delta.crl",))
    path = tmp_path / "x.crl"
    path.write_bytes(crl_to_pem(crl_))
    text = openssl("crl", "-in", path, "-noout", "-text").out
    assert "Freshest CRL" in text and "URI:http://127.0.0.1:8080/crl/delta.crl" in text


def test_empty_crl_has_no_revoked_list(tmp_path):
    ca = issue("/CN=Empty CA", key("ecdsa-p256"), None, ca=True)
    crl_ = _crl(ca, [])
    # RFC 5280 5.1.2.6: absent, not an empty SEQUENCE: the TBS holds six fields, the last [0]
    contents = parser.parse(crl_["tbs_cert_list"].dump())[4]
    tags, offset = [], 0
    while offset < len(contents):
        class_, _, tag, header, body, _ = parser.parse(contents[offset:])
        tags.append((class_, tag))
        offset += len(header) + len(body)
    assert tags == [(0, 2), (0, 16), (0, 16), (0, 23), (0, 23), (2, 0)]
    path = tmp_path / "x.crl"
    path.write_bytes(crl_to_pem(crl_))
    result = openssl("crl", "-in", path, "-CAfile", ca.write(tmp_path / "ca.pem"), "-noout", "-text")
    assert "verify OK" in result.err and "No Revoked Certificates." in result.out
    assert list(crl_entries(crl_)) == []


def test_many_entries_from_plain_tuples(tmp_path):
    ca = issue("/CN=Bulk CA", key("ecdsa-p256"), None, ca=True)
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    entries = [(1000 + i * 7919, base + timedelta(seconds=i * 61), (None, "superseded", "key_compromise")[i % 3])
               for i in range(20_000)]
    tbs = encode_tbs_crl_der(issuer=ca.cert.subject, this_update=NOW - HOUR, next_update=NOW + HOUR,
                             crl_number=5, entries=entries,
                             authority_key_identifier=ca.key.public_key().key_identifier(),
                             signature_algorithm=ca.key.public_key().signature_algorithm())
    der = sign_crl_der(tbs, ca.key)
    path = tmp_path / "bulk.crl"
    path.write_bytes(der)
    result = openssl("crl", "-inform", "DER", "-in", path, "-CAfile", ca.write(tmp_path / "ca.pem"),
                     "-noout", "-text")
    assert "verify OK" in result.err
    assert result.out.count("Serial Number:") == 20_000
    assert result.out.count("Superseded") == sum(1 for e in entries if e[2] == "superseded")
    parsed = list(crl_entries(load_crl(der)))
    assert [(e.serial, e.revoked_at, e.reason) for e in parsed] == entries


def test_load_crl_pem_der_and_junk():
    ca = issue("/CN=Load CA", key("ecdsa-p256"), None, ca=True)
    crl_ = _crl(ca, [RevokedEntry(5, NOW, None)])
    der = crl_.dump()
    assert load_crl(der).dump() == der
    assert load_crl(crl_to_pem(crl_)).dump() == der
    for junk in [b"", b"junk", der[:-3], der + b"\x00", ca.pem, b"\x30\x00"]:
        with pytest.raises(CertificateError):
            load_crl(junk)


def test_verify_crl_signature_refuses_other_key_and_tampering():
    ca = issue("/CN=Sig CA", key("sm2"), None, ca=True)
    crl_ = _crl(ca, [RevokedEntry(5, NOW, "key_compromise")])
    verify_crl_signature(crl_, ca.key.public_key())
    with pytest.raises(InvalidSignature):
        verify_crl_signature(crl_, key("sm2", 1).public_key())
    with pytest.raises(InvalidSignature):
        verify_crl_signature(crl_, ca.key.public_key(), distid=b"")
    tampered = bytearray(crl_.dump())
    index = tampered.index(b"\x0a\x01\x01")  # reasonCode keyCompromise
    tampered[index + 2] = 4                 # -> superseded
    with pytest.raises(InvalidSignature):
        verify_crl_signature(load_crl(bytes(tampered)), ca.key.public_key())


def test_sign_refuses_a_key_of_another_algorithm():
    ca = issue("/CN=Mismatch CA", key("rsa2048"), None, ca=True)
    tbs = build_tbs_crl(issuer=ca.cert.subject, this_update=NOW, next_update=NOW + HOUR, crl_number=1,
                        entries=[], authority_key_identifier=b"\x01" * 20,
                        signature_algorithm=ca.key.public_key().signature_algorithm())
    with pytest.raises(ValueError):
        sign_crl(tbs, key("sm2"))


_ISSUER = parse_name("/CN=x")


@pytest.mark.parametrize("change", [
    {"entries": [RevokedEntry(5, NOW, "remove_from_crl")]},                 # only in deltas
    {"entries": [(5, NOW, None), (5, NOW + HOUR, None)]},                    # duplicate serial
    {"entries": [(0, NOW, None)]},
    {"entries": [(1 << 159, NOW, None)]},
    {"entries": [(5, datetime(2025, 1, 1), None)]},                          # naive
    {"entries": [(5, NOW, "bored")]},
    {"next_update": NOW},
    {"crl_number": -1},
    {"crl_number": 3, "delta_base": 3},
    {"delta_base": 0, "crl_number": 1, "freshest_crl_urls": ("http://x/d.crl",)},
    {"issuer": parse_name("/CN=x").__class__.load(b"\x30\x00")},
    {"authority_key_identifier": b""},
])
def test_encoder_refuses_bad_input(change):
    args = dict(issuer=_ISSUER, this_update=NOW, next_update=NOW + HOUR, crl_number=2, entries=[],
                authority_key_identifier=b"\x01" * 20,
                signature_algorithm=key("ecdsa-p256").public_key().signature_algorithm())
    args.update(change)
    with pytest.raises(ValueError):
        encode_tbs_crl_der(**args)


def test_revoked_entry_validation():
    entry = RevokedEntry(5, datetime(2025, 1, 1, 8, 0, 0, 123, tzinfo=timezone(timedelta(hours=8))), None)
    assert entry.revoked_at == datetime(2025, 1, 1, tzinfo=timezone.utc)
    for bad in [(0, NOW, None), (5, NOW, "nope"), (1 << 160, NOW, None)]:
        with pytest.raises(ValueError):
            RevokedEntry(*bad)

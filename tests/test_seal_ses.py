"""GB/T 38540 SES_Seal (seal.ses): judged against seals OpenSSL encoded and signed
(tests/vectors/seal, see make_vectors.py there), against the seals of five other producers inside
the signed OFDs of tests/vectors/ofd, and our own seals judged by openssl.  The maker's signature
follows GB/T 38540 (over SES_SealInfo); the GM/T 0031 rule yinxin used before 0.2 (over
SEQUENCE{SES_SealInfo, cert, signAlgID}) is recognised and named, never accepted on a v4 seal."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ca_helpers import openssl
from pki.algorithms import generate_key
from pki.errors import InvalidSignature
from pki.keyfiles import load_private_key
from pki.x509 import certificate_public_key, load_certificate
from seal.errors import SealError
from seal.ses import (ORGANISATION_SEAL, PERSONAL_SEAL, RULE_GBT38540, RULE_GMT0031, build_seal_info, maker_rule,
                      parse_seal, sign_seal, signer_public_key, verify_seal)
from seal_support import VECTORS, children, openssl_verify_ses, signed_part

OFD_SAMPLES = Path(__file__).parent / "vectors" / "ofd"

EXPECTED = json.loads((VECTORS / "ses-openssl.json").read_text(encoding="utf-8"))
DISTID = EXPECTED["distid"].encode()


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


def maker_key(alg: str):
    return certificate_public_key(load_certificate(vector(f"ses-{alg}-openssl-maker.der")))


def _gentime(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=timezone.utc)


# --------------------------------------------------------------------------- OpenSSL-made seals

@pytest.mark.parametrize("alg, oid", [("sm2", "1.2.156.10197.1.501"), ("rsa", "1.2.840.113549.1.1.11")])
def test_openssl_made_seal_decodes_field_by_field(alg, oid):
    data = parse_seal(vector(f"ses-{alg}-openssl.der"))
    assert (data.es_id, data.vendor, data.seal_type, data.name) == (
        EXPECTED["es_id"], EXPECTED["vendor"], EXPECTED["seal_type"], EXPECTED["name"])
    assert data.certificates == (vector(f"ses-{alg}-openssl-seal-cert.der"),)
    assert (data.created, data.valid_start, data.valid_end) == (
        _gentime(EXPECTED["create"]), _gentime(EXPECTED["start"]), _gentime(EXPECTED["end"]))
    assert (data.picture_type, data.picture.hex(), data.width_mm, data.height_mm) == (
        "png", EXPECTED["picture_hex"], 42, 42)
    assert data.maker_cert == vector(f"ses-{alg}-openssl-maker.der")
    assert data.sign_alg_oid == oid


@pytest.mark.parametrize("alg", ["sm2", "rsa"])
def test_openssl_made_seal_verifies_with_the_makers_key(alg):
    data = verify_seal(vector(f"ses-{alg}-openssl.der"), maker_key(alg), distid=DISTID)
    assert data.name == EXPECTED["name"]


def test_the_sm2_distinguishing_id_is_part_of_the_makers_signature():
    with pytest.raises(InvalidSignature):
        verify_seal(vector("ses-sm2-openssl.der"), maker_key("sm2"), distid=b"0000000000000000")


def test_a_changed_name_breaks_the_makers_signature():
    der = vector("ses-sm2-openssl-tampered-name.der")
    assert parse_seal(der).name == "天津市测试局"          # decodes, but …
    with pytest.raises(InvalidSignature, match="seal maker's signature over the SES_Seal does not verify"):
        verify_seal(der, maker_key("sm2"), distid=DISTID)


def test_another_makers_key_is_refused():
    with pytest.raises(InvalidSignature, match="algorithm does not match"):
        verify_seal(vector("ses-sm2-openssl.der"), maker_key("rsa"), distid=None)
    with pytest.raises(InvalidSignature, match="does not verify"):
        verify_seal(vector("ses-sm2-openssl.der"), generate_key("sm2").public_key(), distid=DISTID)


def test_a_version_2_header_is_refused_by_name():
    with pytest.raises(SealError, match="version 2 is not supported"):
        parse_seal(vector("ses-sm2-openssl-version-2.der"))


def test_a_cert_list_of_digests_is_read_and_matches_the_certificate_by_sm3():
    data = verify_seal(vector("ses-sm2-openssl-cert-digests.der"), maker_key("sm2"), distid=DISTID)
    assert data.certificates == () and [a for a, _ in data.cert_digests] == ["SM3"]
    assert data.lists_certificate(vector("ses-sm2-openssl-seal-cert.der"))
    assert not data.lists_certificate(vector("ses-rsa-openssl-seal-cert.der"))


def test_the_gmt0031_rule_on_a_v4_seal_is_named_and_refused(tmp_path):
    der = vector("ses-sm2-openssl-gmt0031-rule.der")
    assert maker_rule(der, maker_key("sm2"), distid=DISTID) == RULE_GMT0031
    with pytest.raises(InvalidSignature, match="GM/T 0031 rule"):
        verify_seal(der, maker_key("sm2"), distid=DISTID)
    assert verify_seal(der, maker_key("sm2"), distid=DISTID, accept_legacy=True).name == EXPECTED["name"]
    # openssl agrees: only the old rule's bytes verify
    maker = vector("ses-sm2-openssl-maker.der")
    assert "Signature Verified Successfully" in openssl_verify_ses(der, maker, tmp_path / "a", rule="gmt0031")
    assert "Signature Verified Successfully" not in openssl_verify_ses(der, maker, tmp_path / "b")


def _sample_seals():
    """(file, SignedValue path, eseal DER, maker certificate DER) of every seal in the other producers' OFDs."""
    import zipfile
    out = []
    producers = ("1.ofd", "999.ofd", "ofdsharp-test1.ofd", "allprotected.ofd", "V4RideRight.ofd", "h.ofd", "zsbk.ofd")
    for path in (OFD_SAMPLES / name for name in producers):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith("SignedValue.dat"):
                    tbs = children(children(z.read(name))[0])
                    seal_der = tbs[1]
                    out.append((path.name, name, seal_der, children(seal_der)[1]))
    return out


@pytest.mark.parametrize("sample", _sample_seals(), ids=lambda s: f"{s[0]}:{s[1].split('/')[-2]}")
def test_other_producers_v4_seals_follow_the_gbt38540_rule(tmp_path, sample):
    """Both rules against the seals of GOMAIN, KingGrid, ofdrw …: openssl verifies the maker's
    signature over SES_SealInfo and not over the GM/T 0031 sequence; seal.ses agrees."""
    from asn1crypto import core
    _file, _name, seal_der, cert_field = sample
    maker = core.OctetString.load(cert_field).native
    assert "Signature Verified Successfully" in openssl_verify_ses(seal_der, maker, tmp_path / "v4")
    assert "Signature Verified Successfully" not in openssl_verify_ses(seal_der, maker, tmp_path / "v1",
                                                                      rule="gmt0031")
    key = signer_public_key(maker)
    assert maker_rule(seal_der, key, distid=DISTID) == RULE_GBT38540
    assert verify_seal(seal_der, key, distid=DISTID).version == 4


@pytest.mark.parametrize("mangle", [
    lambda d: b"",
    lambda d: b"not a seal at all",
    lambda d: d[:-10],                         # truncated
    lambda d: d + b"\x00",                     # trailing garbage
    lambda d: vector("ses-sm2-openssl-maker.der"),   # a certificate, not a seal
])
def test_what_is_no_seal_is_refused_with_one_message(mangle):
    with pytest.raises(SealError, match="not a valid GB/T 38540 SES_Seal encoding"):
        parse_seal(mangle(vector("ses-sm2-openssl.der")))


def test_a_header_id_other_than_ES_is_refused():
    der = bytearray(vector("ses-sm2-openssl.der"))
    at = der.index(b"\x16\x02ES")
    der[at + 2:at + 4] = b"XX"
    with pytest.raises(SealError, match="header id 'XX'"):
        parse_seal(bytes(der))


# --------------------------------------------------------------------------- our encoder, judged by OpenSSL

def _our_info(**overrides):
    fields = dict(es_id=EXPECTED["es_id"], vendor=EXPECTED["vendor"], seal_type=ORGANISATION_SEAL,
                  name=EXPECTED["name"], certificates=(vector("ses-rsa-openssl-seal-cert.der"),),
                  created=_gentime(EXPECTED["create"]), valid_start=_gentime(EXPECTED["start"]),
                  valid_end=_gentime(EXPECTED["end"]), picture_type="png",
                  picture=bytes.fromhex(EXPECTED["picture_hex"]), width_mm=42, height_mm=42)
    fields.update(overrides)
    return build_seal_info(**fields)


def test_our_rsa_seal_is_byte_for_byte_the_one_openssl_made():
    key = load_private_key(vector("ses-rsa-openssl-maker.key"), EXPECTED["rsa_maker_key_password"].encode())
    ours = sign_seal(_our_info(), maker_key=key, maker_cert_der=vector("ses-rsa-openssl-maker.der"), distid=None)
    assert ours == vector("ses-rsa-openssl.der")


def test_our_makers_signature_covers_seal_info_only():
    key = generate_key("sm2")
    der = sign_seal(_our_info(), maker_key=key, maker_cert_der=b"\x30\x00", distid=DISTID)
    assert maker_rule(der, key.public_key(), distid=DISTID) == RULE_GBT38540


def test_our_seal_info_encodes_as_openssl_encodes_it():
    info = _our_info(certificates=(vector("ses-sm2-openssl-seal-cert.der"),))
    assert info.dump() == children(vector("ses-sm2-openssl.der"))[0]


@pytest.mark.parametrize("alg", ["sm2", "ecdsa-p256", "rsa2048"])
def test_openssl_verifies_our_makers_signature(tmp_path, alg):
    key = generate_key(alg)
    der = sign_seal(_our_info(), maker_key=key, maker_cert_der=b"\x30\x00", distid=DISTID if alg == "sm2" else None)
    tbs, signature = signed_part(der)
    (tmp_path / "tbs.der").write_bytes(tbs)
    (tmp_path / "sig.bin").write_bytes(signature)
    (tmp_path / "pub.pem").write_bytes(key.public_key().to_pem())
    if alg == "sm2":
        out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-digest", "sm3",
                      "-pkeyopt", f"distid:{DISTID.decode()}", "-in", tmp_path / "tbs.der",
                      "-sigfile", tmp_path / "sig.bin").stdout
        assert b"Signature Verified Successfully" in out
    else:
        out = openssl("dgst", "-sha256", "-verify", tmp_path / "pub.pem", "-signature", tmp_path / "sig.bin",
                      tmp_path / "tbs.der").stdout
        assert b"Verified OK" in out
    assert verify_seal(der, key.public_key(), distid=DISTID).es_id == EXPECTED["es_id"]


def test_openssl_reads_our_header_and_version(tmp_path):
    key = generate_key("sm2")
    (tmp_path / "seal.der").write_bytes(sign_seal(_our_info(seal_type=PERSONAL_SEAL), maker_key=key,
                                                  maker_cert_der=b"\x30\x00", distid=DISTID))
    text = openssl("asn1parse", "-inform", "DER", "-in", tmp_path / "seal.der").stdout.decode()
    lines = [line.split(":", 3)[-1] for line in text.splitlines()[:6]]
    assert "ES" in lines[3] and "04" in lines[4] and EXPECTED["vendor"] in lines[5], text
    assert "SM2-with-SM3" in text and "BIT STRING" in text


def test_seal_type_is_organisation_or_personal():
    with pytest.raises(ValueError):
        _our_info(seal_type=3)

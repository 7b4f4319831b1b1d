"""OCSP: requests made by `openssl ocsp` are parsed, our responses are checked by `openssl ocsp`
(signature, nonce, statuses); SM2 responses by `openssl pkeyutl` with the GM/T ID."""
from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from asn1crypto import ocsp as asn1_ocsp

from pki.errors import InvalidSignature
from pki.ocsp import (MalformedOcspRequest, OcspCertId, SingleStatus, basic_response, build_ocsp_request,
                      build_ocsp_response, issuer_hashes, load_ocsp_response, ocsp_error_response,
                      parse_ocsp_request, verify_ocsp_response_signature)
from x509_support import NOW, issue, key, openssl, pkeyutl_verify_sm2

HOUR = timedelta(hours=1)
REVOKED_AT = (NOW - 5 * HOUR).replace(microsecond=0)


class Setup:
    def __init__(self, alg: str, tmp: Path) -> None:
        self.alg = alg
        self.tmp = tmp
        self.ca = issue(f"/C=CN/O=测试/CN=OCSP CA {alg}", key(alg), None, ca=True)
        self.good = issue("/CN=good", key(alg, 1), self.ca)
        self.revoked = issue("/CN=revoked", key(alg, 2), self.ca)
        self.unknown = issue("/CN=unknown", key(alg, 3), self.ca)
        for name in ("ca", "good", "revoked", "unknown"):
            getattr(self, name).write(tmp / f"{name}.pem")

    def request(self, *names: str, nonce: bool = True) -> bytes:
        args = ["ocsp", "-issuer", self.tmp / "ca.pem"]
        for name in names:
            args += ["-cert", self.tmp / f"{name}.pem"]
        args += ["-reqout", self.tmp / "req.der", "-nonce" if nonce else "-no_nonce"]
        openssl(*args)
        return (self.tmp / "req.der").read_bytes()

    def statuses(self, info) -> list[SingleStatus]:
        by_serial = {self.good.cert.serial_number: "good", self.revoked.cert.serial_number: "revoked"}
        out = []
        for cert_id in info.cert_ids:
            status = by_serial.get(cert_id.serial, "unknown")
            if status == "revoked":
                out.append(SingleStatus(cert_id, "revoked", NOW - HOUR, NOW + HOUR, revoked_at=REVOKED_AT,
                                        reason="key_compromise"))
            else:
                out.append(SingleStatus(cert_id, status, NOW - HOUR, NOW + HOUR))
        return out

    def respond(self, request_der: bytes, **kw) -> bytes:
        info = parse_ocsp_request(request_der)
        kw.setdefault("nonce", info.nonce)
        response = build_ocsp_response(statuses=self.statuses(info), responder_cert=kw.pop("responder_cert", self.ca.cert),
                                       responder_key=kw.pop("responder_key", self.ca.key), produced_at=NOW, **kw)
        (self.tmp / "resp.der").write_bytes(response)
        return response


@pytest.fixture(params=["rsa2048", "ecdsa-p256", "ecdsa-p384", "sm2"])
def setup(request, tmp_path):
    return Setup(request.param, tmp_path)


def _blocks(text: str) -> dict[str, str]:
    """'file.pem: status' blocks of `openssl ocsp` output, by file name."""
    out = {}
    for match in re.finditer(r"^(\S+\.pem): (\w+)\n((?:\t.*\n?)*)", text, re.M):
        out[Path(match.group(1)).stem] = match.group(2) + "\n" + match.group(3)
    return out


def test_openssl_request_to_statuses(setup):
    request_der = setup.request("good", "revoked", "unknown")
    info = parse_ocsp_request(request_der)
    assert [c.serial for c in info.cert_ids] == [setup.good.cert.serial_number, setup.revoked.cert.serial_number,
                                                 setup.unknown.cert.serial_number]
    assert info.raw == request_der and info.nonce is not None and len(info.nonce) == 16
    name_hash, key_hash = issuer_hashes(setup.ca.cert)
    assert all((c.hash_algorithm, c.issuer_name_hash, c.issuer_key_hash) == ("sha1", name_hash, key_hash)
               for c in info.cert_ids)
    setup.respond(request_der)
    t = setup.tmp
    verify = [] if setup.alg != "sm2" else ["-noverify"]
    result = openssl("ocsp", "-respin", t / "resp.der", "-issuer", t / "ca.pem", "-CAfile", t / "ca.pem",
                     "-cert", t / "good.pem", "-cert", t / "revoked.pem", "-cert", t / "unknown.pem",
                     "-no_nonce", *verify)
    if setup.alg != "sm2":
        assert "Response verify OK" in result.err
    blocks = _blocks(result.out)
    assert blocks["good"].startswith("good\n")
    assert blocks["unknown"].startswith("unknown\n")
    assert blocks["revoked"].startswith("revoked\n")
    assert "Reason: keyCompromise" in blocks["revoked"]
    assert "Revocation Time: " + REVOKED_AT.strftime("%b %e %H:%M:%S %Y GMT") in blocks["revoked"]
    assert "This Update: " + (NOW - HOUR).strftime("%b %e %H:%M:%S %Y GMT") in blocks["good"]
    assert "Next Update: " + (NOW + HOUR).strftime("%b %e %H:%M:%S %Y GMT") in blocks["good"]


# not SM2: openssl ocsp cannot verify GM/T SM2 responses; see test_sm2_response_*
@pytest.mark.parametrize("alg", ["rsa2048", "ecdsa-p256", "ecdsa-p384"])
def test_openssl_checks_the_echoed_nonce(tmp_path, alg):
    setup = Setup(alg, tmp_path)
    request_der = setup.request("good")
    t = setup.tmp
    setup.respond(request_der)
    ok = openssl("ocsp", "-reqin", t / "req.der", "-respin", t / "resp.der", "-CAfile", t / "ca.pem", check=False)
    assert ok.returncode == 0 and "Response verify OK" in ok.err and "Nonce" not in ok.err
    # the responder certificate trusted directly (-VAfile) instead of through a CA file
    va = openssl("ocsp", "-reqin", t / "req.der", "-respin", t / "resp.der", "-VAfile", t / "ca.pem", check=False)
    assert va.returncode == 0 and "Response verify OK" in va.err
    setup.respond(request_der, nonce=os.urandom(16))
    bad = openssl("ocsp", "-reqin", t / "req.der", "-respin", t / "resp.der", "-CAfile", t / "ca.pem", check=False)
    assert bad.returncode != 0 and "Nonce Verify error" in bad.err
    setup.respond(request_der, nonce=None)
    missing = openssl("ocsp", "-reqin", t / "req.der", "-respin", t / "resp.der", "-CAfile", t / "ca.pem")
    assert "WARNING: no nonce in response" in missing.err


def test_request_without_nonce(setup):
    info = parse_ocsp_request(setup.request("good", nonce=False))
    assert info.nonce is None


def test_sm2_response_signature_with_pkeyutl_and_openssl_limits(tmp_path):
    """`openssl ocsp` (3.0) has no -vfyopt for responses: it checks SM2 with the empty ID.

    So a response signed with the GM/T ID fails its check, one signed with the
    empty ID passes; the GM/T signature is confirmed with pkeyutl over the
    DER ResponseData, and -noverify still parses and prints the statuses
    (see test_openssl_request_to_statuses)."""
    s = Setup("sm2", tmp_path)
    request_der = s.request("good")
    response = load_ocsp_response(s.respond(request_der))
    basic = basic_response(response)
    tbs = basic["tbs_response_data"].dump()
    signature = basic["signature"].native
    assert basic["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"
    assert pkeyutl_verify_sm2(tmp_path, s.ca.key.public_key().to_pem(), tbs, signature)
    assert not pkeyutl_verify_sm2(tmp_path, s.ca.key.public_key().to_pem(), tbs, signature, distid="distid:")
    verify_ocsp_response_signature(response, s.ca.key.public_key())
    failed = openssl("ocsp", "-reqin", tmp_path / "req.der", "-respin", tmp_path / "resp.der",
                     "-CAfile", tmp_path / "ca.pem", check=False)
    assert "Response Verify Failure" in failed.err
    s.respond(request_der, distid=b"")
    passed = openssl("ocsp", "-reqin", tmp_path / "req.der", "-respin", tmp_path / "resp.der",
                     "-CAfile", tmp_path / "ca.pem")
    assert "Response verify OK" in passed.err


@pytest.mark.parametrize("alg", ["rsa2048", "sm2"])
def test_delegated_responder_by_name_with_chain(tmp_path, alg):
    s = Setup(alg, tmp_path)
    responder = issue("/C=CN/O=测试/CN=OCSP Responder", key(alg, 4), s.ca,
                      extended_key_usage=("ocsp_signing",), ocsp_no_check=True)
    response = s.respond(s.request("good", "revoked"), responder_cert=responder.cert, responder_key=responder.key,
                         responder_id_by_key=False, extra_certs=(s.ca.cert,),
                         distid=b"" if alg == "sm2" else None)
    basic = basic_response(load_ocsp_response(response))
    assert basic["tbs_response_data"]["responder_id"].name == "by_name"
    assert [c.dump() for c in basic["certs"]] == [responder.cert.dump(), s.ca.cert.dump()]
    verify_ocsp_response_signature(load_ocsp_response(response), responder.key.public_key(),
                                   distid=b"" if alg == "sm2" else None)
    if alg == "rsa2048":
        result = openssl("ocsp", "-reqin", tmp_path / "req.der", "-respin", tmp_path / "resp.der",
                         "-CAfile", tmp_path / "ca.pem")
        assert "Response verify OK" in result.err
        text = openssl("ocsp", "-respin", tmp_path / "resp.der", "-resp_text", "-noverify").out
        # openssl prints the name with UTF-8 octets escaped: 测试 = E6 B5 8B E8 AF 95
        assert "Responder Id: C = CN, O = \\E6\\B5\\8B\\E8\\AF\\95, CN = OCSP Responder" in text


def test_responder_id_by_key_is_sha1_of_key_bits(tmp_path):
    s = Setup("ecdsa-p256", tmp_path)
    response = s.respond(s.request("good"))
    responder_id = basic_response(load_ocsp_response(response))["tbs_response_data"]["responder_id"]
    assert responder_id.name == "by_key"
    assert responder_id.native == issuer_hashes(s.ca.cert, "sha1")[1]
    text = openssl("ocsp", "-respin", tmp_path / "resp.der", "-resp_text", "-noverify").out
    assert "Responder Id: " + responder_id.native.hex().upper() in text


@pytest.mark.parametrize("status", ["malformed_request", "internal_error", "try_later", "sig_required",
                                    "unauthorized"])
def test_error_responses(tmp_path, status):
    der = ocsp_error_response(status)
    path = tmp_path / "err.der"
    path.write_bytes(der)
    result = openssl("ocsp", "-respin", path, "-resp_text", "-noverify", check=False)
    expected = {"malformed_request": "malformedrequest (1)", "internal_error": "internalerror (2)",
                "try_later": "trylater (3)", "sig_required": "sigrequired (5)",
                "unauthorized": "unauthorized (6)"}[status]
    assert expected in result.out + result.err
    assert load_ocsp_response(der)["response_bytes"].native is None
    with pytest.raises(ValueError):
        ocsp_error_response("successful")


def test_sha256_certid_and_our_own_request_builder(tmp_path):
    s = Setup("rsa2048", tmp_path)
    name_hash, key_hash = issuer_hashes(s.ca.cert, "sha256")
    request_der = build_ocsp_request([OcspCertId("sha256", name_hash, key_hash, s.good.cert.serial_number)],
                                     nonce=b"0123456789abcdef")
    (tmp_path / "req.der").write_bytes(request_der)
    text = openssl("ocsp", "-reqin", tmp_path / "req.der", "-req_text").out
    assert "Hash Algorithm: sha256" in text and f"Serial Number: {s.good.cert.serial_number:04X}" in text
    s.respond(request_der)
    result = openssl("ocsp", "-reqin", tmp_path / "req.der", "-respin", tmp_path / "resp.der",
                     "-CAfile", tmp_path / "ca.pem")
    assert "Response verify OK" in result.err
    # sha256 CertIDs: openssl matches statuses by CertID with the same hash
    shown = openssl("ocsp", "-respin", tmp_path / "resp.der", "-issuer", tmp_path / "ca.pem", "-sha256",
                    "-cert", tmp_path / "good.pem", "-CAfile", tmp_path / "ca.pem", "-no_nonce")
    assert _blocks(shown.out)["good"].startswith("good\n")


def test_signed_request_from_openssl(tmp_path):
    s = Setup("rsa2048", tmp_path)
    signer = issue("/CN=requestor", key("rsa2048", 5), s.ca)
    signer.write(tmp_path / "signer.pem")
    (tmp_path / "signer.key").write_bytes(signer.key.to_pem())
    openssl("ocsp", "-issuer", tmp_path / "ca.pem", "-cert", tmp_path / "good.pem", "-signer",
            tmp_path / "signer.pem", "-signkey", tmp_path / "signer.key", "-reqout", tmp_path / "signed.der")
    signed = (tmp_path / "signed.der").read_bytes()
    info = parse_ocsp_request(signed)
    assert [c.serial for c in info.cert_ids] == [s.good.cert.serial_number]
    # flip one bit of the signature (the BIT STRING precedes the [0] certs in optionalSignature)
    request = asn1_ocsp.OCSPRequest.load(signed)
    signature = request["optional_signature"]["signature"].native
    index = signed.index(signature)
    broken = signed[:index + 10] + bytes([signed[index + 10] ^ 1]) + signed[index + 11:]
    with pytest.raises(MalformedOcspRequest) as err:
        parse_ocsp_request(broken)
    assert err.value.reason == "request signature does not verify"


def _mutate_tbs(request_der: bytes, **fields) -> bytes:
    request = asn1_ocsp.OCSPRequest.load(request_der)
    tbs = request["tbs_request"].native
    tbs.update(fields)
    return asn1_ocsp.OCSPRequest({"tbs_request": asn1_ocsp.TBSRequest(tbs)}).dump()


def test_malformed_requests(tmp_path):
    s = Setup("ecdsa-p256", tmp_path)
    good = s.request("good")
    cases = {
        "empty": b"",
        "random": os.urandom(200),
        "zeros": b"\x00" * 50,
        "truncated": good[:-7],
        "trailing": good + b"\x00",
        "certificate": s.good.cert.dump(),
        "empty list": _mutate_tbs(good, request_list=[]),
        "long nonce": _mutate_tbs(good, request_extensions=[
            {"extn_id": "nonce", "critical": False, "extn_value": b"n" * 33}]),
        "empty nonce": _mutate_tbs(good, request_extensions=[
            {"extn_id": "nonce", "critical": False, "extn_value": b""}]),
        "unknown critical extension": _mutate_tbs(good, request_extensions=[
            {"extn_id": "1.2.3.4", "critical": True, "extn_value": b"\x05\x00"}]),
        "signed without requestor": _sign_without_requestor(good),
    }
    cases["short hash"] = _mutate_tbs(good, request_list=[{"req_cert": {
        "hash_algorithm": {"algorithm": "sha1"}, "issuer_name_hash": b"a" * 19, "issuer_key_hash": b"b" * 20,
        "serial_number": 5}}])
    cases["unknown hash"] = _mutate_tbs(good, request_list=[{"req_cert": {
        "hash_algorithm": {"algorithm": "md5"}, "issuer_name_hash": b"a" * 16, "issuer_key_hash": b"b" * 16,
        "serial_number": 5}}])
    # BER, not DER: the same request with an indefinite length outer SEQUENCE
    header_length = 2 if good[1] < 0x80 else 2 + (good[1] & 0x7F)
    cases["ber indefinite length"] = b"\x30\x80" + good[header_length:] + b"\x00\x00"
    assert parse_ocsp_request(_mutate_tbs(good)).cert_ids  # the re-encoding itself is fine
    for name, der in cases.items():
        try:
            parse_ocsp_request(der)
        except MalformedOcspRequest:
            continue
        pytest.fail(f"{name}: accepted")
    # every truncation of a good request is refused
    for cut in range(len(good)):
        with pytest.raises(MalformedOcspRequest):
            parse_ocsp_request(good[:cut])


def _sign_without_requestor(request_der: bytes) -> bytes:
    request = asn1_ocsp.OCSPRequest.load(request_der)
    signer = key("ecdsa-p256", 6)
    tbs = asn1_ocsp.TBSRequest.load(request["tbs_request"].dump())
    return asn1_ocsp.OCSPRequest({
        "tbs_request": tbs,
        "optional_signature": {"signature_algorithm": signer.public_key().signature_algorithm(),
                               "signature": signer.sign(tbs.dump())},
    }).dump()


def test_status_and_response_validation(tmp_path):
    cert_id = OcspCertId("sha1", b"a" * 20, b"b" * 20, 5)
    with pytest.raises(ValueError):
        SingleStatus(cert_id, "revoked", NOW, NOW + HOUR)  # no revocation time
    with pytest.raises(ValueError):
        SingleStatus(cert_id, "good", NOW, NOW + HOUR, revoked_at=NOW)
    with pytest.raises(ValueError):
        SingleStatus(cert_id, "revoked", NOW, NOW + HOUR, revoked_at=NOW, reason="remove_from_crl")
    with pytest.raises(ValueError):
        SingleStatus(cert_id, "fine", NOW, None)
    with pytest.raises(ValueError):
        SingleStatus(cert_id, "good", NOW, NOW)
    with pytest.raises(ValueError):
        OcspCertId("sha1", b"a" * 19, b"b" * 20, 5)
    s = Setup("ecdsa-p256", tmp_path)
    with pytest.raises(ValueError):  # key and certificate do not belong together
        build_ocsp_response(statuses=[SingleStatus(cert_id, "good", NOW, None)], responder_cert=s.ca.cert,
                            responder_key=key("ecdsa-p256", 1), produced_at=NOW)
    response = build_ocsp_response(statuses=[SingleStatus(cert_id, "good", NOW, None)], responder_cert=s.ca.cert,
                                   responder_key=s.ca.key, produced_at=NOW)
    single = basic_response(load_ocsp_response(response))["tbs_response_data"]["responses"][0]
    assert single["next_update"].native is None and single["cert_status"].name == "good"
    with pytest.raises(InvalidSignature):
        verify_ocsp_response_signature(load_ocsp_response(response), key("ecdsa-p256", 1).public_key())


_REQUEST = build_ocsp_request([OcspCertId("sha1", b"n" * 20, b"k" * 20, 0x1234567890)], nonce=b"0123456789abcdef")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=0, max_value=len(_REQUEST) - 1), st.integers(1, 255)),
                min_size=1, max_size=4))
def test_corrupted_requests_parse_or_raise_malformed_only(flips):
    """Whatever octets arrive, the parser answers a request or MalformedOcspRequest, nothing else."""
    data = bytearray(_REQUEST)
    for index, mask in flips:
        data[index] ^= mask
    try:
        info = parse_ocsp_request(bytes(data))
    except MalformedOcspRequest:
        return
    assert info.cert_ids and info.raw == bytes(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_malformed_only(data):
    with pytest.raises(MalformedOcspRequest):
        parse_ocsp_request(b"\x30" + bytes([len(data)]) + data if len(data) < 128 else data)

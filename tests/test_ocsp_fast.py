"""The status service's hot path writes and reads OCSP from DER pieces (pki.ocsp_fast): what it
writes must be byte for byte what asn1crypto writes, and what it reads must be what the strict
asn1crypto reading gives — for every status, reason, hash, nonce and key type, and for generated
requests of every shape with bytes changed or cut (the fast reader then declines, and the strict
reading decides)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from asn1crypto import ocsp as asn1_ocsp
from hypothesis import given, settings
from hypothesis import strategies as st

import pki
from pki.ocsp import (HASH_ALGORITHMS, MalformedOcspRequest, OcspCertId, SingleStatus, asn1_assemble_ocsp_response,
                      asn1_parse_ocsp_request, asn1_response_tbs, assemble_ocsp_response, build_ocsp_request,
                      ocsp_response_tbs)
from pki.ocsp_fast import fast_request
from pki.x509 import CertificateSpec, build_tbs_certificate, parse_name, sign_certificate

NOW = datetime(2030, 5, 1, 8, 0, 0, tzinfo=timezone.utc)
REASONS = [None, "unspecified", "key_compromise", "ca_compromise", "affiliation_changed", "superseded",
           "cessation_of_operation", "certificate_hold", "privilege_withdrawn", "aa_compromise"]


@pytest.fixture(scope="module", params=["rsa2048", "ecdsa-p256", "sm2"])
def responder(request):
    key = pki.generate_key(request.param)
    name = parse_name(f"/CN=responder {request.param}")
    spec = CertificateSpec(subject=name, issuer=name, serial=1 << 70, not_before=NOW - timedelta(days=1),
                           not_after=NOW + timedelta(days=30), public_key=key.public_key(), issuer_key_identifier=None,
                           key_usage=frozenset({"digital_signature"}), extended_key_usage=("ocsp_signing",))
    cert = sign_certificate(build_tbs_certificate(spec, key.public_key().signature_algorithm()), key)
    return key, cert


def _cert_id(hash_algorithm: str, serial: int) -> OcspCertId:
    size = HASH_ALGORITHMS[hash_algorithm]
    return OcspCertId(hash_algorithm, bytes(range(size)), bytes(reversed(range(size))), serial)


@pytest.mark.parametrize("nonce", [None, b"\x01", b"0123456789abcdef" * 2])
def test_responses_are_asn1cryptos_byte_for_byte(responder, nonce):
    key, cert = responder
    statuses = [SingleStatus(_cert_id(h, serial), "good", NOW, NOW + timedelta(hours=24))
                for h, serial in (("sha1", 1), ("sha256", 1 << 126), ("sm3", 0x7F), ("sha512", 0x80))]
    statuses.append(SingleStatus(_cert_id("sha1", 5), "unknown", NOW, None))
    statuses += [SingleStatus(_cert_id("sha384", 10 + i), "revoked", NOW, NOW + timedelta(hours=1),
                              revoked_at=NOW - timedelta(days=i, seconds=7), reason=reason)
                 for i, reason in enumerate(REASONS)]
    for chosen in ([statuses[0]], [statuses[4]], [statuses[6]], statuses):
        fast = ocsp_response_tbs(statuses=chosen, responder_cert=cert, produced_at=NOW, nonce=nonce)
        assert fast == asn1_response_tbs(statuses=chosen, responder_cert=cert, produced_at=NOW, nonce=nonce)
        signature = key.sign(fast) if key.algorithm != "sm2" else key.sign(fast, distid=pki.DEFAULT_DISTID)
        algorithm = key.public_key().signature_algorithm()
        response = assemble_ocsp_response(fast, signature, responder_cert=cert, algorithm=algorithm,
                                          extra_certs=[cert])
        assert response == asn1_assemble_ocsp_response(fast, signature, responder_cert=cert, algorithm=algorithm,
                                                       extra_certs=[cert])
        assert asn1_ocsp.OCSPResponse.load(response).native["response_status"] == "successful"


@st.composite
def requests(draw) -> bytes:
    cert_ids = [OcspCertId(h, draw(st.binary(min_size=HASH_ALGORITHMS[h], max_size=HASH_ALGORITHMS[h])),
                           draw(st.binary(min_size=HASH_ALGORITHMS[h], max_size=HASH_ALGORITHMS[h])),
                           draw(st.integers(min_value=0, max_value=1 << 159)))
                for h in draw(st.lists(st.sampled_from(sorted(HASH_ALGORITHMS)), min_size=1, max_size=3))]
    nonce = draw(st.one_of(st.none(), st.binary(min_size=0, max_size=40)))
    shape = draw(st.integers(0, 5))
    tbs: dict = {"request_list": [{"req_cert": cid.to_asn1()} for cid in cert_ids]}
    extensions = []
    if nonce is not None:
        extensions.append({"extn_id": "nonce", "critical": shape == 1, "extn_value": nonce})
    if shape == 2:
        extensions.append({"extn_id": "1.2.3.4", "critical": False, "extn_value": b"x"})
    if extensions:
        tbs["request_extensions"] = extensions
    if shape == 3:
        tbs["version"] = "v1"
    if shape == 4:
        tbs["requestor_name"] = {"directory_name": parse_name("/CN=someone")}
    der = asn1_ocsp.OCSPRequest({"tbs_request": tbs}).dump()
    return der if shape != 5 else build_ocsp_request(cert_ids)


def _strict(der: bytes):
    try:
        return asn1_parse_ocsp_request(der)
    except MalformedOcspRequest as exc:
        return exc.reason


@settings(max_examples=400, deadline=None)
@given(requests(), st.integers(min_value=-1, max_value=600), st.integers(0, 255))
def test_the_fast_reader_agrees_with_the_strict_one(der, where, value):
    for data in (der, der[:where] if where >= 0 else der,
                 (der[:where] + bytes([value]) + der[where + 1:]) if 0 <= where < len(der) else der):
        fast = fast_request(data)
        if fast is None:
            continue
        strict = _strict(data)
        assert not isinstance(strict, str), (data.hex(), strict)
        cert_ids, nonce = fast
        assert [OcspCertId(*c) for c in cert_ids] == list(strict.cert_ids) and nonce == strict.nonce


def test_the_common_requests_take_the_fast_road():
    cert_ids = [_cert_id("sha1", 12345)]
    assert fast_request(build_ocsp_request(cert_ids)) is not None
    assert fast_request(build_ocsp_request(cert_ids, nonce=b"n" * 16))[1] == b"n" * 16
    assert fast_request(build_ocsp_request(cert_ids * 3)) is not None

"""The status service over HTTP, judged by OpenSSL: `openssl ocsp -url` (POST) and RFC 5019 GETs for good,
revoked with reason, held and unknown; pre-signed responses; nonces; caching headers; a revocation while the
server runs; malformed and foreign requests; CRLs fetched over HTTP and checked with `openssl crl -CAfile`."""
from __future__ import annotations

import re
import time
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from asn1crypto import ocsp as asn1_ocsp

from ca_helpers import DISTID, PASSWORD, World, apply_and_issue, openssl, openssl_csr, wall_clock, yinxin, session_env
from server_support import (LiveServer, crl_numbers, http_get, http_post, ocsp_url_get, presigned, wait_for)

CAS = {"rsa": "rsa2048", "ec": "ecdsa-p256", "sm2": "sm2"}
POLL_MS = 100
NAMES = ("good", "compromised", "held", "live")


class Setup:
    def __init__(self, world: World) -> None:
        self.world = world
        self.leaves: dict[tuple[str, str], tuple[str, Path]] = {}
        for ca, algorithm in CAS.items():
            world.init_ca(ca, algorithm)
            for name in NAMES:
                stem = f"{ca}-{name}"
                subject = f"/O=印信测试/CN={stem}"
                _, csr = openssl_csr(world.files, "sm2" if ca == "sm2" else "ecdsa-p256", subject, stem=stem)
                issued = apply_and_issue(world, ca=ca, profile="organization", subject=subject,
                                         csr=csr.read_bytes())
                self.leaves[(ca, name)] = (issued.record.serial, world.write_cert(issued, stem))
            world.authority.revoke(self.serial(ca, "compromised"), reason="keyCompromise", actor=world.op)
            world.authority.hold(self.serial(ca, "held"), actor=world.op)
        self.password_file = world.files / "ca-password"
        self.password_file.write_bytes(PASSWORD + b"\n")

    def serial(self, ca: str, name: str) -> str:
        return self.leaves[(ca, name)][0]

    def cert(self, ca: str, name: str) -> Path:
        return self.leaves[(ca, name)][1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    return Setup(World(tmp_path_factory.mktemp("srv") / "home", tmp_path_factory.mktemp("srv-files"),
                       wall_clock()))


@pytest.fixture(scope="module")
def server(setup: Setup):  # type: ignore[no-untyped-def]
    live = LiveServer(setup.world.home_dir, args=(
        "--workers", "2", "--ca-password-file", str(setup.password_file), "--poll-ms", str(POLL_MS),
        "--crl-debounce", "0.2", "--crl-full-min-age", "0")).start()
    # the maintainer pre-signs every certificate's response and publishes first CRLs
    expected = {(ca, serial) for (ca, _), (serial, _) in setup.leaves.items()}
    wait_for(lambda: expected <= set(presigned(setup.world.db_path())))
    wait_for(lambda: all(len(crl_numbers(setup.world.db_path(), ca)) >= 2 for ca in CAS))
    yield live
    assert live.stop() == 0, live.errors()
    assert "Traceback" not in live.errors(), live.errors()


def ocsp_via_url(setup: Setup, server: LiveServer, ca: str, *target: str, extra: tuple[str, ...] = ()) -> str:
    """`openssl ocsp -url` against the live server; the CA certificate is the trust anchor."""
    args = ["ocsp", "-url", f"{server.url}/ocsp/{ca}", "-issuer", setup.world.ca_pem(ca),
            "-CAfile", setup.world.ca_pem(ca), *extra]
    for item in target:
        args += ["-serial", item] if item.startswith("0x") else ["-cert", item]
    if ca == "sm2":  # openssl cannot pass the SM2 ID when it checks the response: status only
        args += ["-noverify"]
    proc = openssl(*args, check=False)
    return (proc.stdout + proc.stderr).decode()


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_openssl_ocsp_url_good_revoked_held_unknown(setup: Setup, server: LiveServer, ca: str) -> None:
    good = ocsp_via_url(setup, server, ca, str(setup.cert(ca, "good")))
    assert "Response verify OK" in good and f"{setup.cert(ca, 'good')}: good" in good, good
    assert "WARNING" not in good, good      # openssl sent a nonce and checked it came back
    revoked = ocsp_via_url(setup, server, ca, str(setup.cert(ca, "compromised")))
    assert "Response verify OK" in revoked and ": revoked" in revoked, revoked
    assert "Reason: keyCompromise" in revoked and "Revocation Time:" in revoked, revoked
    held = ocsp_via_url(setup, server, ca, str(setup.cert(ca, "held")))
    assert ": revoked" in held and "Reason: certificateHold" in held, held
    unknown = ocsp_via_url(setup, server, ca, "0x1234567890ABCDEF1234")
    assert "Response verify OK" in unknown and "0x1234567890ABCDEF1234: unknown" in unknown, unknown


def test_several_certificates_in_one_request(setup: Setup, server: LiveServer) -> None:
    out = ocsp_via_url(setup, server, "rsa", str(setup.cert("rsa", "good")), str(setup.cert("rsa", "compromised")),
                       "0x99")
    assert "Response verify OK" in out, out
    assert f"{setup.cert('rsa', 'good')}: good" in out and f"{setup.cert('rsa', 'compromised')}: revoked" in out
    assert "0x99: unknown" in out, out


def request_der(setup: Setup, ca: str, name: str, *, nonce: bool = False) -> bytes:
    path = setup.world.files / f"{ca}-{name}-{'n' if nonce else 'x'}.req"
    openssl("ocsp", "-issuer", setup.world.ca_pem(ca), "-cert", setup.cert(ca, name),
            *(() if nonce else ("-no_nonce",)), "-reqout", path)
    return path.read_bytes()


def response_times(der: bytes) -> tuple[datetime, datetime]:
    single = asn1_ocsp.OCSPResponse.load(der).basic_ocsp_response["tbs_response_data"]["responses"][0]
    return single["this_update"].native, single["next_update"].native


def test_get_is_the_presigned_response_with_rfc5019_headers(setup: Setup, server: LiveServer) -> None:
    der = request_der(setup, "rsa", "good")
    first = http_get(ocsp_url_get(server.url, "rsa", der))
    assert first.status == 200 and first.headers["content-type"] == "application/ocsp-response"
    # the answer is the response signed ahead and stored, not one signed for this request
    assert first.body == presigned(setup.world.db_path())[("rsa", setup.serial("rsa", "good"))]
    assert http_get(ocsp_url_get(server.url, "rsa", der)).body == first.body
    resp = setup.world.files / "get-good.resp"
    resp.write_bytes(first.body)
    out = openssl("ocsp", "-respin", resp, "-issuer", setup.world.ca_pem("rsa"), "-cert",
                  setup.cert("rsa", "good"), "-CAfile", setup.world.ca_pem("rsa"), "-no_nonce",
                  check=False)
    assert "Response verify OK" in (out.stdout + out.stderr).decode()
    assert ": good" in out.stdout.decode()
    this_update, next_update = response_times(first.body)
    cache_control = [part.strip() for part in first.headers["cache-control"].split(",")]
    assert {"public", "no-transform", "must-revalidate"} <= set(cache_control)
    max_age = int(next(p for p in cache_control if p.startswith("max-age=")).split("=")[1])
    assert 0 < max_age <= 3600 and max_age <= (next_update - this_update).total_seconds()
    assert parsedate_to_datetime(first.headers["last-modified"]) == this_update
    assert parsedate_to_datetime(first.headers["expires"]) == next_update
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert http_get(ocsp_url_get(server.url, "rsa", der), headers={"If-None-Match": etag}).status == 304
    assert http_get(ocsp_url_get(server.url, "rsa", der),
                    headers={"If-Modified-Since": first.headers["last-modified"]}).status == 304


def test_get_with_unescaped_and_unpadded_base64(setup: Setup, server: LiveServer) -> None:
    import base64
    der = request_der(setup, "ec", "compromised")
    text = base64.b64encode(der).decode()
    expected = presigned(setup.world.db_path())[("ec", setup.serial("ec", "compromised"))]
    for variant in (text, text.rstrip("="), text.replace("+", "-").replace("/", "_")):
        result = http_get(f"{server.url}/ocsp/ec/{variant.replace('+', '%2B')}")
        assert result.status == 200 and result.body == expected, variant


def test_nonce_is_answered_freshly_signed_and_echoed(setup: Setup, server: LiveServer) -> None:
    der = request_der(setup, "rsa", "good", nonce=True)
    nonce = asn1_ocsp.OCSPRequest.load(der).nonce_value.native
    answers = [http_post(f"{server.url}/ocsp/rsa", der) for _ in range(2)]
    for answer in answers:
        assert answer.status == 200 and answer.headers["cache-control"] == "no-store"
        response = asn1_ocsp.OCSPResponse.load(answer.body)
        assert response.nonce_value.native == nonce
    assert answers[0].body != presigned(setup.world.db_path())[("rsa", setup.serial("rsa", "good"))]


def test_sm2_get_answer_and_signature(setup: Setup, server: LiveServer) -> None:
    der = request_der(setup, "sm2", "compromised")
    result = http_get(ocsp_url_get(server.url, "sm2", der))
    assert result.status == 200
    resp = setup.world.files / "sm2-get.resp"
    resp.write_bytes(result.body)
    out = openssl("ocsp", "-respin", resp, "-issuer", setup.world.ca_pem("sm2"), "-cert",
                  setup.cert("sm2", "compromised"), "-noverify", "-no_nonce").stdout.decode()
    assert ": revoked" in out and "Reason: keyCompromise" in out, out
    basic = asn1_ocsp.OCSPResponse.load(result.body).basic_ocsp_response
    files = setup.world.files
    (files / "sm2-get.tbs").write_bytes(basic["tbs_response_data"].dump())
    (files / "sm2-get.sig").write_bytes(basic["signature"].native)
    (files / "sm2-ca.pub").write_bytes(openssl("x509", "-in", setup.world.ca_pem("sm2"), "-noout",
                                               "-pubkey").stdout)
    check = openssl("pkeyutl", "-verify", "-pubin", "-inkey", files / "sm2-ca.pub", "-rawin", "-digest", "sm3",
                    "-pkeyopt", f"distid:{DISTID}", "-in", files / "sm2-get.tbs", "-sigfile",
                    files / "sm2-get.sig", check=False)
    assert b"Signature Verified Successfully" in check.stdout, check


def _status_of(body: bytes) -> tuple[str, str | None]:
    single = asn1_ocsp.OCSPResponse.load(body).basic_ocsp_response["tbs_response_data"]["responses"][0]
    status = single["cert_status"]
    if status.name == "revoked":
        return "revoked", status.chosen["revocation_reason"].native
    return status.name, None


def test_revocation_while_running_is_served_within_the_bound(setup: Setup, server: LiveServer) -> None:
    """The bound: a change committed --poll-ms before a request is in its answer (checked in the
    request path, so this holds however busy the machine is)."""
    der = request_der(setup, "rsa", "live")
    url = ocsp_url_get(server.url, "rsa", der)
    for _ in range(3):   # cached in both workers
        assert _status_of(http_get(url).body) == ("good", None)
    env = {"YINXIN_CA_PASSWORD": None, **session_env(setup.world.home_dir)}
    serial = setup.serial("rsa", "live")
    assert yinxin(setup.world.home_dir, "ca", "hold", serial, env=env).code == 0
    time.sleep(3 * POLL_MS / 1000)
    for _ in range(4):
        assert _status_of(http_get(url).body) == ("revoked", "certificate_hold")
    assert yinxin(setup.world.home_dir, "ca", "release", serial, env=env).code == 0
    time.sleep(3 * POLL_MS / 1000)
    for _ in range(4):
        assert _status_of(http_get(url).body) == ("good", None)
    assert yinxin(setup.world.home_dir, "ca", "revoke", serial, "--reason", "superseded", env=env).code == 0
    time.sleep(3 * POLL_MS / 1000)
    for _ in range(4):
        assert _status_of(http_get(url).body) == ("revoked", "superseded")
    out = ocsp_via_url(setup, server, "rsa", str(setup.cert("rsa", "live")))
    assert ": revoked" in out and "Reason: superseded" in out, out
    # the maintainer re-signs the stored response too, and GETs are then served from it again
    wait_for(lambda: _status_of(presigned(setup.world.db_path())[("rsa", serial)]) == ("revoked", "superseded"))
    # and publishes a CRL listing it (debounced; --crl-full-min-age 0 lets the full CRL follow at
    # once, with a delta based on it), which openssl verifies
    wait_for(lambda: serial.upper() in _crl_text(setup, server, "rsa", delta=False))


def _malformed(body: bytes) -> bool:
    return asn1_ocsp.OCSPResponse.load(body)["response_status"].native == "malformed_request"


def test_malformed_requests_get_malformed_request_and_the_server_goes_on(setup: Setup, server: LiveServer) -> None:
    good = request_der(setup, "ec", "good")
    for body in (b"", b"garbage", good[:-3], good + b"\x00", b"\x30\x80" + good[2:]):
        result = http_post(f"{server.url}/ocsp/ec", body)
        assert result.status == 200 and _malformed(result.body), body[:8]
        answer = http_post(f"{server.url}/ocsp/ec", good)
        assert _status_of(answer.body) == ("good", None)
    bad_base64 = http_get(f"{server.url}/ocsp/ec/%25%25notbase64")
    assert bad_base64.status == 200 and _malformed(bad_base64.body)
    resp = setup.world.files / "malformed.resp"
    resp.write_bytes(http_post(f"{server.url}/ocsp/ec", b"garbage").body)
    out = openssl("ocsp", "-respin", resp, "-resp_text", check=False)
    assert "malformedrequest" in (out.stdout + out.stderr).decode().lower()


def test_unknown_issuer_is_unauthorized(setup: Setup, server: LiveServer) -> None:
    # a request naming the rsa CA's certificate, sent to the ec CA's URL, and to a CA not served here
    der = request_der(setup, "rsa", "good")
    for url in (f"{server.url}/ocsp/ec", f"{server.url}/ocsp/nosuchca"):
        result = http_post(url, der)
        assert result.status == 200
        assert asn1_ocsp.OCSPResponse.load(result.body)["response_status"].native == "unauthorized"


def test_http_errors_for_what_is_not_ocsp(setup: Setup, server: LiveServer) -> None:
    assert http_get(f"{server.url}/nothing-here").status == 404
    assert http_get(f"{server.url}/ocsp/rsa").status == 400
    assert http_post(f"{server.url}/crl/rsa.crl", b"x").status == 405
    assert http_post(f"{server.url}/ocsp/rsa", b"x", method="PUT").status == 405
    assert http_post(f"{server.url}/ocsp/rsa", b"\x30" * 70_000).status == 413
    assert http_get(f"{server.url}/crl/nosuchca.crl").status == 404
    assert http_get(f"{server.url}/healthz").status == 200


def _crl_text(setup: Setup, server: LiveServer, ca: str, *, delta: bool) -> str:
    result = http_get(f"{server.url}/crl/{ca}{'-delta' if delta else ''}.crl")
    assert result.status == 200 and result.headers["content-type"] == "application/pkix-crl"
    path = setup.world.files / f"{ca}-{'delta' if delta else 'full'}-{time.monotonic_ns()}.crl"
    path.write_bytes(result.body)
    proc = openssl("crl", "-inform", "DER", "-in", path, "-CAfile", setup.world.ca_pem(ca), "-noout", "-text",
                   check=False)
    text = (proc.stdout + proc.stderr).decode()
    assert "verify OK" in text, text
    return text


@pytest.mark.parametrize("ca", ["rsa", "ec"])
def test_crls_over_http_verify_with_openssl(setup: Setup, server: LiveServer, ca: str) -> None:
    full = _crl_text(setup, server, ca, delta=False)
    assert setup.serial(ca, "compromised").upper() in full and "Key Compromise" in full
    assert setup.serial(ca, "held").upper() in full and "Certificate Hold" in full
    assert setup.serial(ca, "good").upper() not in full
    delta = _crl_text(setup, server, ca, delta=True)
    assert "Delta CRL Indicator" in delta
    result = http_get(f"{server.url}/crl/{ca}.crl")
    for name in ("cache-control", "last-modified", "expires", "etag"):
        assert name in result.headers
    assert http_get(f"{server.url}/crl/{ca}.crl", headers={"If-None-Match": result.headers["etag"]}).status == 304
    cert = http_get(f"{server.url}/ca/{ca}.crt")
    assert cert.status == 200 and cert.headers["content-type"] == "application/pkix-cert"
    assert cert.body == openssl("x509", "-in", setup.world.ca_pem(ca), "-outform", "DER").stdout

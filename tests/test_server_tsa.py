"""Timestamps from `yinxin serve` (POST /tsa/NAME), and the signing pool under a flood.

Judges: `openssl ts -query` → HTTP POST → `openssl ts -verify -queryfile … -CAfile root
-untrusted tsa.pem` ("Verification: OK") for RSA and ECDSA; the SM2 signature over the signed
attributes with `openssl pkeyutl` and the messageDigest against `openssl dgst -sm3`; pyHanko's
own `HTTPTimeStamper` timestamping a PDF signature, validated by pyHanko.  The flood is `wrk`
(bounded: a few seconds, 16 connections, loopback); the timestamp client within its share
comes from another loopback address (127.0.0.2).  No assertion on time.
"""
from __future__ import annotations

import asyncio
import http.client
import io
import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import tsp

from ca_helpers import PASSWORD, World, apply_and_issue, openssl, openssl_csr, sql, wall_clock, yinxin
from pki.ocsp import OcspCertId, build_ocsp_request, issuer_hashes
from pki.tsa import TimestampAuthority
from pki.x509 import certificate_to_pem
from server_support import LiveServer, http_get, http_post, ocsp_url_get, presigned, wait_for
from tsa_support import TSA_PASSWORD, openssl_query, openssl_ts_verify, sm2_token_verify, token_of, token_parts

TSAS = {"rsa": "rsa2048", "ec": "ecdsa-p256", "sm2": "sm2"}


class Setup:
    def __init__(self, world: World) -> None:
        self.world = world
        self.tsa_pem: dict[str, Path] = {}
        authority = TimestampAuthority(world.home)
        for ca, algorithm in TSAS.items():
            world.init_ca(ca, algorithm)
            info = authority.init(f"{ca}-tsa", ca=ca, ca_password=PASSWORD, password=TSA_PASSWORD,
                                  actor=world.op, approver=world.officer("bob"))
            self.tsa_pem[ca] = world.files / f"{ca}-tsa.pem"
            self.tsa_pem[ca].write_bytes(certificate_to_pem(info.certificate))
        _, csr = openssl_csr(world.files, "ecdsa-p256", "/O=印信测试/CN=leaf", stem="leaf")
        self.leaf = apply_and_issue(world, ca="rsa", profile="organization", subject="/O=印信测试/CN=leaf",
                                    csr=csr.read_bytes())
        self.password_file = world.files / "ca-password"
        self.password_file.write_bytes(PASSWORD + b"\n")
        self.data = world.files / "data.bin"
        self.data.write_bytes(b"a document to date\n" * 40)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    return Setup(World(tmp_path_factory.mktemp("tsa-srv") / "home", tmp_path_factory.mktemp("tsa-srv-files"),
                       wall_clock()))


def _serve(setup: Setup, *extra: str) -> LiveServer:
    return LiveServer(setup.world.home_dir, args=("--workers", "2", "--ca-password-file", str(setup.password_file),
                                                  *extra),
                      env={"YINXIN_TSA_PASSWORD": TSA_PASSWORD.decode()}).start()


@pytest.fixture(scope="module")
def server(setup: Setup):  # type: ignore[no-untyped-def]
    live = _serve(setup, "--signers", "2")
    assert {t["tsa"] for t in live.info["tsas"]} == {"rsa-tsa", "ec-tsa", "sm2-tsa"}   # type: ignore[index]
    yield live
    assert live.stop() == 0, live.errors()
    assert "Traceback" not in live.errors(), live.errors()


def _post_query(server: LiveServer, name: str, query: Path, out: Path) -> Path:
    result = http_post(f"{server.url}/tsa/{name}", query.read_bytes(), content_type="application/timestamp-query")
    assert result.status == 200 and result.headers["content-type"] == "application/timestamp-reply"
    out.write_bytes(result.body)
    return out


@pytest.mark.parametrize("ca", ["rsa", "ec"])
@pytest.mark.parametrize("digest", ["sha256", "sha512"])
def test_openssl_query_post_verify(setup, server, ca, digest):
    query = openssl_query(setup.world.files, setup.data, digest, stem=f"{ca}-{digest}")
    reply = _post_query(server, f"{ca}-tsa", query, setup.world.files / f"{ca}-{digest}.tsr")
    assert "Verification: OK" in openssl_ts_verify(query, reply, setup.world.ca_pem(ca), setup.tsa_pem[ca])


def test_sm2_token_over_http(setup, server, tmp_path):
    query = openssl_query(setup.world.files, setup.data, "sm3", stem="sm2-sm3")
    reply = _post_query(server, "sm2-tsa", query, tmp_path / "sm2.tsr")
    token = token_of(reply.read_bytes())
    verdict, sm3_hex = sm2_token_verify(token, setup.tsa_pem["sm2"], tmp_path)
    assert "Signature Verified Successfully" in verdict
    assert token_parts(token)["message_digest"].hex() == sm3_hex


def test_every_token_is_recorded(setup, server, tmp_path):
    query = openssl_query(setup.world.files, setup.data, "sha256", stem="count")
    serials = set()
    for i in range(10):
        reply = _post_query(server, "ec-tsa", query, tmp_path / f"{i}.tsr")
        serials.add(tsp.TimeStampResp.load(reply.read_bytes())["time_stamp_token"]["content"]["encap_content_info"]
                    ["content"].parsed["serial_number"].native)
    rows = {int(s, 16) for (s,) in sql(setup.world.db_path(), "SELECT serial FROM tsa_tokens")}
    assert len(serials) == 10 and serials <= rows                      # read past our store
    found = yinxin(setup.world.home_dir, "tsa", "find", f"{min(serials):X}", "--json")
    assert found.code == 0 and found.json()["tsa"] == "ec-tsa"


def test_pyhanko_http_timestamper_gets_tokens(setup, server, tmp_path):
    """pyHanko's own client timestamps a PDF signature (its own SimpleSigner, an openssl-made key)
    with yinxin serve, and pyHanko's validator accepts the timestamp."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.timestamps import HTTPTimeStamper
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from pdf_fixtures import document, identity
    stamper = HTTPTimeStamper(f"{server.url}/tsa/rsa-tsa")
    token = asyncio.run(stamper.async_timestamp(bytes(32), "sha256"))
    assert token["content"]["encap_content_info"]["content"].parsed["message_imprint"]["hashed_message"].native \
        == bytes(32)
    ident = identity("rsa")
    signer = signers.SimpleSigner.load(str(ident.dir / "leaf.key"), str(ident.leaf_pem),
                                       ca_chain_files=(str(ident.root_pem),))
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(document(1))),
                           signers.PdfSignatureMetadata(field_name="Sig"), signer=signer, timestamper=stamper)
    rsa_root = setup.world.authority.get("rsa").certificate
    sig = PdfFileReader(out, strict=False).embedded_signatures[0]
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[ident.root]),
                                    ts_validation_context=ValidationContext(trust_roots=[rsa_root]))
    assert status.intact and status.valid
    assert status.timestamp_validity is not None and status.timestamp_validity.valid
    assert status.timestamp_validity.trusted


def test_bad_requests_over_http(setup, server):
    url = f"{server.url}/tsa/rsa-tsa"
    garbage = http_post(url, b"\x30\x02\x05\x00junk", content_type="application/timestamp-query")
    assert garbage.status == 200 and tsp.TimeStampResp.load(garbage.body)["status"]["fail_info"].native == {
        "bad_data_format"}
    md5 = openssl("ts", "-query", "-data", setup.data, "-md5").stdout
    bad_alg = http_post(url, md5, content_type="application/timestamp-query")
    assert tsp.TimeStampResp.load(bad_alg.body)["status"]["fail_info"].native == {"bad_alg"}
    assert http_post(f"{server.url}/tsa/no-such", md5).status == 404
    assert http_get(url).status == 405
    assert http_post(url, b"\x30" * 70000).status == 413
    # the service still answers
    query = openssl_query(setup.world.files, setup.data, stem="after")
    reply = http_post(url, query.read_bytes(), content_type="application/timestamp-query")
    assert tsp.TimeStampResp.load(reply.body)["status"]["status"].native == "granted"


# --------------------------------------------------------------------------- the pool under a flood

def _wrk(url: str, script: Path, *, connections: int = 16, seconds: int = 3) -> str:
    wrk = shutil.which("wrk")
    assert wrk, "wrk is not installed (scripts/bootstrap.sh installs it)"
    proc = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
                           url], capture_output=True, timeout=seconds + 60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.decode()


def _lua(path: Path, *, body: Path | None = None, expect: Path | None = None, method: str = "GET") -> Path:
    """A wrk script: POST `body` (or GET), count answers equal to `expect` / OCSP tryLater / other."""
    lines = []
    if body is not None:
        lines += [f'local f = io.open("{body}", "rb")', f'wrk.method = "{method}"', "wrk.body = f:read('*a')",
                  "f:close()", 'wrk.headers["Content-Type"] = "application/ocsp-request"']
    lines += ["local expected = nil"]
    if expect is not None:
        lines += [f'local e = io.open("{expect}", "rb")', "expected = e:read('*a')", "e:close()"]
    # each wrk thread has its own Lua state: counters are globals of the thread, summed in done()
    lines += ["same, try_later, other = 0, 0, 0",
              "local threads = {}",
              "function setup(thread) table.insert(threads, thread) end",
              "function response(status, headers, body)",
              "  if expected ~= nil and body == expected then same = same + 1",
              "  elseif status == 200 and body == '\\48\\3\\10\\1\\3' then try_later = try_later + 1",
              "  elseif status == 200 and expected == nil and string.byte(body, 5) == 10 and string.byte(body, 7) == 0"
              " then same = same + 1",
              "  else other = other + 1 end",
              "end",
              "function done(summary, latency, requests)",
              "  local s, t, o = 0, 0, 0",
              "  for _, thread in ipairs(threads) do",
              "    s = s + thread:get('same'); t = t + thread:get('try_later'); o = o + thread:get('other')",
              "  end",
              "  io.write(string.format('counts same=%d try_later=%d other=%d\\n', s, t, o))",
              "end"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _counts(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if line.startswith("counts "))
    return {k: int(v) for k, v in (item.split("=") for item in line.split()[1:])}


def _leaf_cert_id(setup: Setup) -> tuple[OcspCertId, bytes]:
    """The leaf's SHA-1 CertID and its pre-signed response (once the maintainer stored it)."""
    world = setup.world
    name_hash, key_hash = issuer_hashes(world.authority.get("rsa").certificate, "sha1")
    cert_id = OcspCertId("sha1", name_hash, key_hash, int(setup.leaf.record.serial, 16))
    wait_for(lambda: ("rsa", setup.leaf.record.serial) in presigned(world.db_path()))
    return cert_id, presigned(world.db_path())[("rsa", setup.leaf.record.serial)]


def test_a_nonce_flood_gets_try_later_while_presigned_gets_and_tsa_clients_are_served(setup, tmp_path):
    """A small pool (2 per worker, 1 per client): 16 connections of nonce POSTs from 127.0.0.1 fill
    their share and hear tryLater; pre-signed GETs (wrk) are all answered with the pre-signed
    response; a timestamp client from 127.0.0.2 within its share gets every token it asks for."""
    live = _serve(setup, "--signers", "1", "--sign-queue", "2", "--sign-share", "0.5")
    try:
        cert_id, stored = _leaf_cert_id(setup)
        plain = build_ocsp_request([cert_id])
        expect = tmp_path / "presigned.der"
        expect.write_bytes(stored)
        nonce_request = tmp_path / "nonce.der"
        nonce_request.write_bytes(build_ocsp_request([cert_id], nonce=b"0123456789abcdef"))
        flood = _lua(tmp_path / "flood.lua", body=nonce_request, method="POST")
        gets = _lua(tmp_path / "gets.lua", expect=expect)
        get_url = ocsp_url_get(live.url, "rsa", plain)
        import threading
        results: dict[str, object] = {}

        def run_flood() -> None:
            results["flood"] = _wrk(f"{live.url}/ocsp/rsa", flood, seconds=4)

        def run_gets() -> None:
            results["gets"] = _wrk(get_url, gets, connections=8, seconds=3)

        tokens: list[str] = []

        def run_tsa() -> None:
            query = openssl_query(tmp_path, setup.data, stem="within-share").read_bytes()
            host, port = live.url.removeprefix("http://").split(":")
            for _ in range(20):
                conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=("127.0.0.2", 0))
                conn.request("POST", "/tsa/rsa-tsa", query, {"Content-Type": "application/timestamp-query"})
                body = conn.getresponse().read()
                conn.close()
                tokens.append(tsp.TimeStampResp.load(body)["status"]["status"].native)

        threads = [threading.Thread(target=f) for f in (run_flood, run_gets, run_tsa)]
        threads[0].start()
        import time
        time.sleep(0.5)              # the flood is on before the others start (set-up, not a measurement)
        for t in threads[1:]:
            t.start()
        for t in threads:
            t.join(timeout=120)
        flood_counts = _counts(str(results["flood"]))
        get_counts = _counts(str(results["gets"]))
        assert flood_counts["try_later"] > 0 and flood_counts["same"] > 0, flood_counts   # signed, and refused
        assert flood_counts["other"] == 0, flood_counts
        assert get_counts["same"] > 0 and get_counts["other"] == 0 and get_counts["try_later"] == 0, get_counts
        assert tokens == ["granted"] * 20
    finally:
        assert live.stop() == 0, live.errors()
    assert "signing pool full" in live.errors()                       # counted and logged
    assert "Traceback" not in live.errors()


def test_nonce_requests_answered_presigned_when_asked(setup, tmp_path):
    live = _serve(setup, "--ocsp-nonce", "presigned")
    try:
        world = setup.world
        cert_id, stored = _leaf_cert_id(setup)
        reply = http_post(f"{live.url}/ocsp/rsa", build_ocsp_request([cert_id], nonce=b"fedcba9876543210"))
        assert reply.body == stored and reply.headers["cache-control"] == "no-store"
        request = tmp_path / "req.der"
        request.write_bytes(build_ocsp_request([cert_id], nonce=b"fedcba9876543210"))
        text = openssl("ocsp", "-reqin", request, "-url", f"{live.url}/ocsp/rsa", "-CAfile", world.ca_pem("rsa"),
                       "-issuer", world.ca_pem("rsa"), check=False)
        out = (text.stdout + text.stderr).decode()
        assert "WARNING: no nonce in response" in out and "Response verify OK" in out
    finally:
        assert live.stop() == 0, live.errors()

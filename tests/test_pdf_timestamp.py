"""timestamp_url: an RFC 3161 signature timestamp from a TSA on 127.0.0.1.

The TSA is pyHanko's own test responder behind a small HTTP server; its
certificate (EKU timeStamping) is made with the openssl CLI under the RSA test root.
"""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from asn1crypto import keys, pem, tsp, x509
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

from pdf_fixtures import ORG, document, identity, openssl, pdfsig
from seal.appearance import SealSpec, draw_seal
from seal.cms_signer import make_signer
from seal.pdf_placement import AnchorText
from seal.pdf_sign import stamp_pdf
from seal.pdf_verify import verify_pdf

from pdf_fixtures import CLOCK, clock_follows_the_run  # noqa: E402,F401  (autouse)


def _tsa_identity():
    root = identity("rsa")
    d = root.dir
    (d / "tsa.ext").write_text("basicConstraints=critical,CA:FALSE\n"
                               "keyUsage=critical,digitalSignature\n"
                               "extendedKeyUsage=critical,timeStamping\n")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "tsa.key",
            cwd=d)
    openssl("req", "-new", "-key", "tsa.key", "-subj", "/CN=yinxin test TSA", "-out", "tsa.csr",
            cwd=d)
    openssl("x509", "-req", "-in", "tsa.csr", "-CA", "root.pem", "-CAkey", "root.key", "-sha256",
            "-days", "30", "-set_serial", "77", "-extfile", "tsa.ext", "-out", "tsa.pem", cwd=d)
    cert = x509.Certificate.load(pem.unarmor((d / "tsa.pem").read_bytes())[2])
    key_der = openssl("pkcs8", "-topk8", "-nocrypt", "-in", "tsa.key", "-outform", "DER", cwd=d)
    return cert, keys.PrivateKeyInfo.load(key_der)


@pytest.fixture(scope="module")
def tsa_url():
    cert, key = _tsa_identity()
    stamper = DummyTimeStamper(tsa_cert=cert, tsa_key=key, certs_to_embed=[identity("rsa").root])
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            req = tsp.TimeStampReq.load(body)
            requests.append(req)
            resp = asyncio.run(stamper.async_request_tsa_response(req)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(resp)))
            self.end_headers()
            self.wfile.write(resp)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tsa", requests
    finally:
        server.shutdown()
        server.server_close()


def test_seal_with_signature_timestamp(tmp_path, tsa_url):
    url, requests = tsa_url
    ident = identity("rsa")
    out = tmp_path / "ts.pdf"
    stamp_pdf(document(3), out, signer=make_signer(ident.key, ident.cert, [ident.root]),
              drawing=draw_seal(SealSpec("official", ORG)), placement=AnchorText(ORG),
              timestamp_url=url, clock=CLOCK)
    assert requests, "the TSA was never asked"
    report = pdfsig(out)
    assert "Signature is Valid." in report
    result = verify_pdf(out, trust_roots=[ident.root], clock=CLOCK)
    assert result.valid, result.problems
    ts = result.signatures[0].timestamp
    assert ts is not None and abs(ts - datetime.now(timezone.utc)) < timedelta(minutes=10)

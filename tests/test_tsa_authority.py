"""The timestamp authority through the library, judged by OpenSSL.

RSA and ECDSA tokens: `openssl ts -verify -queryfile … -CAfile root -untrusted tsa.pem` says
"Verification: OK".  SM2 tokens (OpenSSL 3.0's `ts -verify` cannot check GM-conformant SM2
tokens: it leaves Z out): the TSA's signature over the signed attributes verifies with
`openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678`, and the
messageDigest equals `openssl dgst -sm3` of the TSTInfo.  Refusals are read back with
`openssl ts -reply -text`.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from asn1crypto import tsp

from ca_helpers import officer_for, openssl, person_for
from pki.tsa import ClockBehind, RequestRefused, parse_token, verify_token
from tsa_support import (DISTID, make_world, openssl_query, openssl_ts_verify, reply_text, sm2_token_verify,
                         token_of, token_parts)

ALGORITHMS = ["rsa2048", "ecdsa-p256", "sm2"]


@pytest.fixture(scope="module", params=ALGORITHMS)
def world(request, tmp_path_factory):
    return make_world(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "document.txt"
    path.write_bytes("关于开展电子印章试点工作的通知 — the data a token dates\n".encode() * 50)
    return path


def _answer(world, query_path, stem="r"):
    reply = world.signer.respond(query_path.read_bytes(), client="test")
    path = query_path.parent / f"{stem}.tsr"
    path.write_bytes(reply)
    return path


@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
def test_openssl_accepts_tokens(world, data_file, digest):
    if world.info.algorithm == "sm2":
        pytest.skip("OpenSSL 3.0's ts -verify leaves Z out of SM2: judged by pkeyutl below")
    query = openssl_query(world.dir, data_file, digest, stem=f"q-{digest}")
    reply = _answer(world, query, f"r-{digest}")
    assert "Verification: OK" in openssl_ts_verify(query, reply, world.root_pem, world.tsa_pem)
    text = reply_text(reply)
    assert "Status: Granted." in text and "Version: 1" in text
    assert f"Policy OID: {world.info.policy}" in text
    assert f"Hash Algorithm: {digest}" in text
    assert "Accuracy: 0x01 seconds" in text


@pytest.mark.parametrize("digest", ["sm3", "sha256"])
def test_sm2_tokens_judged_by_pkeyutl_and_dgst(world, data_file, digest, tmp_path):
    if world.info.algorithm != "sm2":
        pytest.skip("SM2 TSA only")
    query = openssl_query(world.dir, data_file, digest, stem=f"q-sm2-{digest}")
    reply = _answer(world, query, f"r-sm2-{digest}")
    token = token_of(reply.read_bytes())
    verdict, sm3_hex = sm2_token_verify(token, world.tsa_pem, tmp_path)
    assert "Signature Verified Successfully" in verdict
    assert token_parts(token)["message_digest"].hex() == sm3_hex
    signer_info = token["content"]["signer_infos"][0]
    assert signer_info["signature_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.501"   # SM2-with-SM3
    assert signer_info["digest_algorithm"]["algorithm"].dotted == "1.2.156.10197.1.401"      # SM3
    # the empty ID (OpenSSL's default) does not verify: the TSA used the GM/T one
    assert "Signature Verified Successfully" not in sm2_token_verify(token, world.tsa_pem, tmp_path / "e",
                                                                     distid="x")[0]
    text = reply_text(reply)
    assert "Status: Granted." in text and f"Hash Algorithm: {digest}" in text


def test_token_fields(world, data_file):
    query = openssl_query(world.dir, data_file, "sha256", stem="fields")
    request = tsp.TimeStampReq.load(query.read_bytes())
    reply = world.signer.respond(query.read_bytes())
    token = parse_token(reply)
    assert token.policy == world.info.policy and token.nonce == request["nonce"].native
    assert token.imprint == request["message_imprint"]["hashed_message"].native
    assert token.accuracy_ms == 1000 and 2 ** 64 <= token.serial < 2 ** 127
    assert token.signer_certificate is not None and token.certificates          # certReq: the certificate comes along
    assert abs(token.gen_time - world.clock.now()) < timedelta(seconds=1)
    signed_attrs = token_of(reply)["content"]["signer_infos"][0]["signed_attrs"]
    v2 = next(a for a in signed_attrs if a["type"].native == "signing_certificate_v2")["values"][0]
    ess = v2["certs"][0]
    import hashlib
    from pki.sm2 import sm3
    digest = sm3 if world.info.algorithm == "sm2" else (lambda d: hashlib.sha256(d).digest())
    assert ess["cert_hash"].native == digest(world.info.cert_der)              # ESSCertIDv2 names the TSA cert
    assert ess["issuer_serial"]["serial_number"].native == world.info.certificate.serial_number
    # no certReq: no certificate in the token
    bare = openssl_query(world.dir, data_file, "sha256", cert=False, stem="bare")
    assert parse_token(world.signer.respond(bare.read_bytes())).certificates == ()
    # no nonce asked, none echoed
    quiet = openssl_query(world.dir, data_file, "sha256", no_nonce=True, stem="quiet")
    assert parse_token(world.signer.respond(quiet.read_bytes())).nonce is None


def test_serials_are_unique_and_every_token_is_recorded_before_it_returns(world, data_file):
    query = openssl_query(world.dir, data_file, "sha256", stem="many")
    tokens = [parse_token(world.signer.respond(query.read_bytes(), client="many")) for _ in range(20)]
    serials = {t.serial for t in tokens}
    assert len(serials) == 20
    rows = world.rows("SELECT serial, token_sha256, client FROM tsa_tokens WHERE client = 'many'")
    import hashlib
    assert {int(s, 16) for s, _, _ in rows} == serials          # read with sqlite3, not our store
    assert {d for _, d, _ in rows} == {hashlib.sha256(t.der).hexdigest() for t in tokens}
    gen_times = [t.gen_time for t in tokens]
    assert gen_times == sorted(gen_times)
    record = world.authority.find(f"{tokens[3].serial:X}")
    assert record.tsa == world.info.name and record.gen_time == tokens[3].gen_time
    assert world.authority.stats()[world.info.name]["tokens"] >= 20


@pytest.mark.parametrize("case", ["garbage", "truncated", "md5", "sm3-elsewhere", "policy", "trailing"])
def test_refusals_carry_the_rfc_failure(world, data_file, case):
    query = openssl_query(world.dir, data_file, "sha256", stem=f"bad-{case}")
    body = query.read_bytes()
    expected = "the data submitted has the wrong format"
    if case == "garbage":
        body = b"\x30\x03\x02\x01"
    elif case == "truncated":
        body = body[:-5]
    elif case == "trailing":
        body = body + b"\x00"
    elif case == "md5":
        body = openssl("ts", "-query", "-data", data_file, "-md5").stdout
        expected = "unrecognized or unsupported algorithm"
    elif case == "sm3-elsewhere":
        if world.info.algorithm == "sm2":
            pytest.skip("an SM2 TSA accepts SM3")
        body = openssl_query(world.dir, data_file, "sm3", stem="sm3").read_bytes()
        expected = "unrecognized or unsupported algorithm"
    elif case == "policy":
        body = openssl_query(world.dir, data_file, "sha256", policy="1.2.3.4.5", stem="pol").read_bytes()
        expected = "policy is not supported"
    before = world.rows("SELECT count(*) FROM tsa_tokens")
    reply = world.dir / f"bad-{case}.tsr"
    reply.write_bytes(world.signer.respond(body))
    text = reply_text(reply)
    assert "Status: Rejected." in text and expected in text.lower(), text
    assert world.rows("SELECT count(*) FROM tsa_tokens") == before            # nothing recorded


def test_a_clock_stepping_back_stops_issuance_with_an_audit_event(tmp_path, data_file):
    world = make_world(tmp_path / "w", "ecdsa-p256")
    query = openssl_query(tmp_path, data_file).read_bytes()
    first = parse_token(world.signer.respond(query))
    world.clock.advance(timedelta(seconds=-30))
    for _ in range(3):
        reply = tmp_path / "behind.tsr"
        reply.write_bytes(world.signer.respond(query))
        text = reply_text(reply)
        assert "Status: Rejected." in text and "time source is not available" in text.lower()
        with pytest.raises(ClockBehind, match="earlier than the last token issued"):
            world.signer.issue(world.signer.parse(query))
    events = world.rows("SELECT details FROM audit_events WHERE action = 'tsa.clock_behind'")
    assert len(events) == 1 and first.gen_time.isoformat()[:19] in events[0][0]   # once per episode
    # a TSA loaded afresh (a restart) starts from the newest genTime in the database
    again = world.authority.load(world.info.name, b"Tsa-Password-2026!")
    with pytest.raises(ClockBehind):
        again.issue(again.parse(query))
    world.clock.advance(timedelta(seconds=31))
    later = parse_token(again.respond(query))
    assert later.gen_time >= first.gen_time


def test_verify_token_bad_inputs(world, data_file, tmp_path):
    data = data_file.read_bytes()
    root = world.info.certificate  # placeholder, replaced below
    from pki.ca import CertificateAuthority
    root = CertificateAuthority(world.home).get("root").certificate
    query = openssl_query(world.dir, data_file, "sha256", stem="v")
    token = token_of(world.signer.respond(query.read_bytes())).dump()
    distid = DISTID.encode()
    ok = verify_token(token, data, [root], clock=world.clock, distid=distid)
    assert ok.verdict == "valid", ok.problems
    assert ok.path[0] == world.info.certificate.subject.human_friendly
    other = verify_token(token, data + b"!", [root], clock=world.clock)
    assert other.verdict == "invalid" and "other data" in other.problems[0]
    untrusted = verify_token(token, data, [], clock=world.clock)
    assert untrusted.verdict == "indeterminate" and "TSA certificate" in untrusted.problems[0]
    expired = verify_token(token, data, [root], at=world.info.not_after + timedelta(days=1))
    assert expired.verdict == "indeterminate", expired.problems
    # the TSTInfo altered (the genTime's year) after signing
    altered = token.replace(ok.token.gen_time.strftime("%Y%m%d").encode(), b"19991231", 1)
    assert altered != token
    broken = verify_token(altered, data, [root], clock=world.clock)
    assert broken.verdict == "invalid" and any("messageDigest" in p for p in broken.problems)
    from pki.tsa import MalformedToken
    with pytest.raises(MalformedToken):
        verify_token(b"\x30\x00", data, [root])


def test_a_token_signed_by_a_non_tsa_certificate_is_invalid(tmp_path, data_file):
    """A token whose signer is a seal certificate (no timeStamping): put together with the TSA's
    own token builder, signed by the seal key — what a forger with a seal key could make."""
    from pki.ca import CertificateAuthority
    from pki.tsa.authority import TsaSigner
    world = make_world(tmp_path / "w", "rsa2048")
    ca = CertificateAuthority(world.home)
    app = ca.ra.apply(ca="root", profile="seal", subject="/C=CN/O=时间测试单位/CN=不是时间戳",
                      actor=person_for(world.home, "a"), generate_key_out=tmp_path / "seal.key",
                      key_password=b"Key-Password-1")
    ca.ra.approve(app.id, actor=officer_for(world.home, "b"))
    issued = ca.issue(app.id, password=b"Ca-Password-2026!", actor=officer_for(world.home, "b"))
    import pki
    key = pki.load_private_key((tmp_path / "seal.key").read_bytes(), b"Key-Password-1")
    from dataclasses import replace
    fake = TsaSigner(world.home, replace(world.info, cert_der=issued.certificate.dump()), key)
    query = openssl_query(tmp_path, data_file)
    token = token_of(fake.respond(query.read_bytes())).dump()
    result = verify_token(token, data_file.read_bytes(), [ca.get("root").certificate], clock=world.clock)
    assert result.verdict == "invalid" and "not a TSA" in result.problems[0]

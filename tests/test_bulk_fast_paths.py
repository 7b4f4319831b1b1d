"""The hand-made fast paths of bulk issuance against the library code they stand in for.

* `_plain_csr` (a DER walk of a PKCS#10 request) against asn1crypto's parse of OpenSSL-made and
  our own requests, and on mutated requests: it either declines (None) or gives what asn1crypto
  reads, never something asn1crypto would refuse;
* the subject fast split against parse_name on generated '/T=v' names;
* `_pem` against asn1crypto's pem.armor;
* `store.insert_many`/`update_many`/`insert_many_returning_ids` against SQLAlchemy's own insert and
  update, rows read back equal — on PostgreSQL these are single statements over unnest(arrays),
  so every column type, NULLs (whole columns of them too), non-ASCII text and thousands of rows;
* a CSV whose CSR signature is broken fails alone, with the full path's message, on both the
  plain path and the full path (a request with attributes).
"""
from __future__ import annotations

import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from asn1crypto import csr as asn1_csr, pem
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pki.algorithms import generate_key, public_key_from_spki
from pki.bulk import SubjectCache, _pem, _plain_csr
from pki.errors import YinxinError
from pki.store import (applications, audit_events, certificates, insert_many, insert_many_returning_ids,
                       update_many)
from pki.x509 import build_csr, csr_to_pem, name_to_text, parse_name

from ca_helpers import DISTID, PASSWORD, World, fixed_clock

ALGORITHMS = ["rsa2048", "ecdsa-p256", "ecdsa-p384", "sm2"]
OPENSSL_KEYS = {"rsa2048": ["-newkey", "rsa:2048"], "ecdsa-p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                "sm2": ["-newkey", "sm2", "-sm3", "-sigopt", f"distid:{DISTID}"]}


def _asn1_parts(der: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes] | None:
    try:
        request = asn1_csr.CertificationRequest.load(der, strict=True)
        request.native                                  # noqa: B018 - a full parse
        info = request["certification_request_info"]
        if info["version"].native != "v1" or len(info["attributes"]):
            return None
        return (info.dump(), info["subject"].dump(), info["subject_pk_info"].dump(),
                request["signature_algorithm"].dump(), request["signature"].native)
    except Exception:  # noqa: BLE001 - asn1crypto raises several types for junk
        return None


def _openssl_csr(tmp: Path, algorithm: str) -> bytes:
    subprocess.run(["openssl", "req", "-new", "-nodes", *OPENSSL_KEYS[algorithm], "-keyout", str(tmp / "k.pem"),
                    "-subj", "/C=CN/O=印信/CN=张三", "-outform", "DER", "-out", str(tmp / "r.der")],
                   check=True, capture_output=True)
    return (tmp / "r.der").read_bytes()


@pytest.mark.parametrize("algorithm", ["rsa2048", "ecdsa-p256", "sm2"])
def test_plain_csr_reads_openssl_requests_as_asn1crypto_does(tmp_path: Path, algorithm: str) -> None:
    der = _openssl_csr(tmp_path, algorithm)
    plain = _plain_csr(der)
    assert plain is not None
    assert (plain.info, plain.subject, plain.spki, plain.algorithm, plain.signature) == _asn1_parts(der)


_SUBJECT = parse_name("/C=CN/O=T/CN=x").dump()
_OWN = {a: build_csr(parse_name("/C=CN/O=T/CN=x"), generate_key(a), distid=DISTID.encode() if a == "sm2" else None).dump()
        for a in ALGORITHMS}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(algorithm=st.sampled_from(ALGORITHMS), at=st.integers(min_value=0, max_value=600),
       byte=st.integers(0, 255), cut=st.integers(0, 3), extra=st.binary(max_size=2))
def test_plain_csr_never_reads_what_asn1crypto_refuses(algorithm: str, at: int, byte: int, cut: int,
                                                        extra: bytes) -> None:
    der = bytearray(_OWN[algorithm])
    if at < len(der):
        der[at] = byte
    mutated = bytes(der[:len(der) - cut]) + extra
    plain = _plain_csr(mutated)
    if plain is None:
        return
    # what bulk issuance goes on with: the row's own subject (or none), a key that loads, the key's
    # usual algorithm — then asn1crypto must read the very same request
    try:
        key = public_key_from_spki(plain.spki)
    except YinxinError:
        return
    if plain.subject not in (_SUBJECT, b"\x30\x00") or plain.algorithm != key.signature_algorithm().dump():
        return
    expected = _asn1_parts(mutated)
    assert expected is not None, mutated.hex()
    assert (plain.info, plain.subject, plain.spki, plain.algorithm, plain.signature) == expected


_values = st.text(alphabet=st.sampled_from(list("ab Z9-.'中文 #,+\"=<>;")), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(o=_values, ou=_values, cn=_values)
def test_subject_fast_split_agrees_with_parse_name(o: str, ou: str, cn: str) -> None:
    text = f"/C=CN/O={o}/OU={ou}/CN={cn}"
    try:
        name = parse_name(text)
    except YinxinError as slow:
        with pytest.raises(YinxinError) as fast:
            SubjectCache().subject(text)
        assert fast.value.message == slow.message
        return
    for cache in (SubjectCache(), _SHARED):      # a fresh cache, and one that has seen other rows' heads
        for _ in range(2):
            subject = cache.subject(text)
            assert subject.der == name.dump()
            assert subject.text == name_to_text(name)
            assert subject.common_name == cn


_SHARED = SubjectCache()


@settings(max_examples=200, deadline=None)
@given(head=st.sampled_from(["/C=CN/O=T/OU=Dept", "/C=CN/O=印信/OU=办公室", "/C=CN/O=T/CN=first"]), cn=_values)
def test_subject_heads_shared_by_rows_agree_with_parse_name(head: str, cn: str) -> None:
    text = f"{head}/CN={cn}"
    try:
        name = parse_name(text)
    except YinxinError as slow:
        with pytest.raises(YinxinError) as fast:
            _SHARED.subject(text)
        assert fast.value.message == slow.message
        return
    subject = _SHARED.subject(text)
    assert (subject.der, subject.text) == (name.dump(), name_to_text(name))
    assert subject.common_name == ("first" if head.endswith("first") else cn)


@given(data=st.binary(max_size=600))
def test_pem_equals_asn1crypto_armor(data: bytes) -> None:
    assert _pem(data) == pem.armor("CERTIFICATE", data)


def test_insert_many_writes_what_sqlalchemy_writes(tmp_path: Path) -> None:
    store = World(tmp_path / "home", tmp_path / "files", fixed_clock()).home.store   # SQLite or PostgreSQL
    at = datetime(2026, 11, 26, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    rows = [{"seq": i, "at": at if i % 2 else at + timedelta(seconds=i), "actor": f"张{i}", "action": "x",
             "target": "t", "details": "{}", "result_digest": None if i % 3 else "ab", "prev_hash": "0",
             "hash": f"h{i}"} for i in range(1, 7)]
    with store.transaction() as conn:
        conn.execute(sa.delete(audit_events))
        insert_many(conn, audit_events, rows[:3])
        conn.execute(audit_events.insert(), rows[3:])
        read = [dict(r._mapping) for r in conn.execute(sa.select(audit_events).order_by(audit_events.c.seq))]
    for got, wanted in zip(read, rows):
        assert got == {**wanted, "at": wanted["at"].astimezone(timezone.utc)}
    if store.dialect == "sqlite":   # both halves stored the same way (the raw text of the timestamps too)
        with store.read() as conn:
            raw = conn.exec_driver_sql("SELECT typeof(at), length(at) FROM audit_events").all()
        assert len(set(raw)) == 1


def test_update_many_changes_what_it_matches_and_counts(tmp_path: Path) -> None:
    w = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    w.init_ca("rsa", "rsa2048")
    store, now = w.home.store, w.clock.now()
    with store.transaction() as conn:
        ca_id = conn.execute(sa.text("SELECT id FROM cas")).scalar()
        insert_many(conn, certificates, [
            {"ca_id": ca_id, "serial": f"{i:x}", "profile": "person", "subject": "CN=x", "public_key_fp": "fp",
             "not_before": now, "not_after": now + timedelta(days=1), "status": "reserved", "tbs_der": b"t",
             "status_changed_at": now, "retention_years": 5, "created_at": now} for i in range(10, 14)])
        changed = update_many(conn, certificates, [
            ({"ca_id": ca_id, "serial": f"{i:x}", "status": "reserved"},
             {"cert_der": bytes([i]), "status": "issued", "status_changed_at": now + timedelta(minutes=1)})
            for i in (10, 11, 99)])
        assert changed == 2                       # serial 99 matches nothing
        again = update_many(conn, certificates, [
            ({"ca_id": ca_id, "serial": "a", "status": "reserved"},
             {"cert_der": b"z", "status": "issued", "status_changed_at": now})])
        assert again == 0                         # no longer reserved
        rows = {r.serial: r for r in conn.execute(sa.select(certificates).where(certificates.c.ca_id == ca_id,
                                                                               certificates.c.serial.in_(
                                                                                   ["a", "b", "c", "d"])))}
    assert rows["a"].status == rows["b"].status == "issued" and rows["a"].cert_der == b"\x0a"
    assert rows["a"].status_changed_at == now + timedelta(minutes=1)
    assert rows["c"].status == rows["d"].status == "reserved" and rows["c"].cert_der is None


def _application(ca_id: int, i: int, now: datetime) -> dict:
    """An applications row exercising every column type, with NULLs and non-ASCII text."""
    return {"ca_id": ca_id, "kind": "new", "profile": "person", "subject": f"CN=张三 {i},O=印信",
            "applicant": f"申请人{i}", "submitted_by": None if i % 4 else "受理人",
            "id_number": None if i % 3 else f"11010519491231{i:04d}",
            "public_key_der": bytes([i % 256]) * (i % 7 + 1) + b"\x00\\'\"", "csr_der": None,
            "key_generated": bool(i % 2), "subject_alt_names": '[["dns", "a.example"]]', "state": "approved",
            "created_at": now + timedelta(microseconds=i), "decided_by": None if i % 5 == 0 else "审批人",
            "decided_at": now if i % 2 else None, "decision_comment": "", "predecessor_serial": None,
            "issued_serial": None}


def test_insert_many_returning_ids_writes_what_sqlalchemy_writes_in_order(tmp_path: Path) -> None:
    w = World(tmp_path / "home", tmp_path / "files", fixed_clock())     # SQLite or PostgreSQL
    w.init_ca("rsa", "rsa2048")
    store, now = w.home.store, w.clock.now()
    with store.transaction() as conn:
        ca_id = conn.execute(sa.text("SELECT id FROM cas")).scalar()
        ours = [_application(ca_id, i, now) for i in range(2500)]
        ids = insert_many_returning_ids(conn, applications, ours)
        theirs = [_application(ca_id, i, now) for i in range(2500, 2510)]
        their_ids = [r.id for r in conn.execute(applications.insert().returning(applications.c.id,
                                                                              sort_by_parameter_order=True), theirs)]
        after = insert_many_returning_ids(conn, applications, [_application(ca_id, 9999, now)])
        assert insert_many_returning_ids(conn, applications, []) == []
        read = {r.id: dict(r._mapping) for r in conn.execute(sa.select(applications))}
    assert len(set(ids)) == 2500 and ids == sorted(ids)
    assert min(their_ids) > max(ids) and after[0] > max(their_ids)       # the id sequence moved on
    for new_id, row in zip(ids + their_ids, ours + theirs):
        assert read[new_id] == {**row, "id": new_id}, new_id


def test_insert_and_update_many_handle_whole_columns_of_nulls_and_many_rows(tmp_path: Path) -> None:
    w = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    w.init_ca("rsa", "rsa2048")
    store, now = w.home.store, w.clock.now()
    rows = [{"ca_id": None, "serial": f"{i:x}", "application_id": None, "profile": "person", "subject": f"CN=李四{i}",
             "id_number": None, "active_key": None, "public_key_fp": "fp", "not_before": now,
             "not_after": now + timedelta(days=1), "status": "reserved", "tbs_der": b"\x30" * (i % 50),
             "cert_der": None, "revoked_at": None, "status_changed_at": now, "predecessor_serial": None,
             "retention_years": i % 30, "created_at": now} for i in range(3000)]
    with store.transaction() as conn:
        ca_id = conn.execute(sa.text("SELECT id FROM cas")).scalar()
        for row in rows:
            row["ca_id"] = ca_id
        insert_many(conn, certificates, rows[:2990])
        conn.execute(certificates.insert(), rows[2990:])
        changed = update_many(conn, certificates, [
            ({"ca_id": ca_id, "serial": f"{i:x}", "status": "reserved"},
             {"cert_der": None if i % 2 else bytes([i % 256]), "status": "issued", "revoked_at": None,
              "status_changed_at": now + timedelta(seconds=i)}) for i in range(0, 3000, 3)])
        read = {r.serial: dict(r._mapping) for r in conn.execute(sa.select(certificates)
                                                                 .where(certificates.c.ca_id == ca_id))}
    assert changed == 1000
    for i, row in enumerate(rows):
        got = read[row["serial"]]
        del got["id"]
        if i % 3 == 0:
            row = {**row, "cert_der": None if i % 2 else bytes([i % 256]), "status": "issued",
                   "status_changed_at": now + timedelta(seconds=i)}
        assert got == {**row, "released_at": None, "revocation_reason": None}, i


def test_a_batch_of_serials_is_drawn_at_once_and_small_values_drawn_again() -> None:
    """`_new_serials` takes 16 bytes per serial from one draw, clears the top bit, and draws a
    value below 2⁶⁴ again singly (as `_new_serial` does)."""
    from types import SimpleNamespace
    from pki.ca import _new_serials

    class Source:
        def __init__(self, chunks: list[bytes]) -> None:
            self.chunks, self.calls = chunks, []

        def token_bytes(self, n: int) -> bytes:
            self.calls.append(n)
            taken, self.chunks = b"".join(self.chunks[: n // 16]), self.chunks[n // 16:]
            return taken

    big, top, small = b"\x01" + bytes(15), b"\xff" * 16, bytes(15) + b"\x07"
    source = Source([big, small, top, b"\x00\x00\x00\x00\x00\x00\x00\x02" + bytes(8)])
    serials = _new_serials(SimpleNamespace(rand=source), 3)
    assert source.calls == [48, 16]                # one draw for the batch, one for the small value
    assert serials == [int.from_bytes(big, "big") >> 1, 1 << 64, int.from_bytes(top, "big") >> 1]
    assert all(1 << 64 <= s < 1 << 127 for s in serials)


def test_plain_csr_and_full_path_give_the_same_error_for_a_broken_signature(tmp_path: Path) -> None:
    from pki.bulk import BulkRow, issue_bulk
    w = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    w.init_ca("sm2", "sm2")
    rows = []
    for line, sans in ((2, ()), (3, (("dns", "a.example"),))):    # with SANs: attributes, the full path
        key = generate_key("sm2")
        request = build_csr(parse_name(f"/C=CN/O=T/CN=u{line}"), key, distid=DISTID.encode(), subject_alt_names=sans) \
            if sans else build_csr(parse_name(f"/C=CN/O=T/CN=u{line}"), key, distid=DISTID.encode())
        der = bytearray(request.dump())
        der[-5] ^= 0x01                                          # inside the signature's s
        path = tmp_path / f"{line}.csr"
        path.write_bytes(csr_to_pem(asn1_csr.CertificationRequest.load(bytes(der))))
        rows.append(BulkRow(line=line, subject=f"/C=CN/O=T/CN=u{line}", id_number=f"ID{line}", csr=str(path)))
    good = generate_key("sm2")
    (tmp_path / "4.csr").write_bytes(csr_to_pem(build_csr(parse_name("/C=CN/O=T/CN=u4"), good, distid=DISTID.encode())))
    rows.append(BulkRow(line=4, subject="/C=CN/O=T/CN=u4", id_number="ID2", csr=str(tmp_path / "4.csr")))
    report = issue_bulk(w.authority, rows, ca="sm2", profile="person", out_dir=tmp_path / "out", actor=w.officer("op"),
                        approver=w.officer("ap"), ca_password=PASSWORD)
    failed = {r.line: r for r in report.failed}
    assert set(failed) == {2, 3} and [r.line for r in report.issued] == [4]
    assert failed[2].error == failed[3].error == "CSR signature does not verify"
    assert failed[2].error_type == failed[3].error_type == "CertificateError"


def test_an_unknown_curve_is_a_key_error_not_a_crash() -> None:
    # found by the mutation test above: cryptography raises UnsupportedAlgorithm for such a key
    from pki.errors import KeyFileError
    der = bytearray(generate_key("ecdsa-p256").public_key().to_der())
    at = der.index(bytes.fromhex("2a8648ce3d030107"))        # prime256v1 → 0.0.840.10045.3.1.7
    der[at] = 0x00
    with pytest.raises(KeyFileError):
        public_key_from_spki(bytes(der))


@settings(max_examples=300, deadline=None)
@given(seq=st.integers(min_value=1, max_value=2**53), actor=st.text(), action=st.text(max_size=30),
       target=st.text(max_size=30), details=st.text(), digest=st.one_of(st.none(), st.text(max_size=64)),
       prev=st.text(max_size=64), micro=st.integers(0, 999_999))
def test_audit_canonical_text_equals_json_dumps(seq: int, actor: str, action: str, target: str, details: str,
                                               digest: str | None, prev: str, micro: int) -> None:
    import json
    from pki.audit import _canonical
    at = datetime(2026, 11, 26, 8, 0, 0, micro, tzinfo=timezone.utc)
    assert _canonical(seq, at, actor, action, target, details, digest, prev) == json.dumps(
        [seq, at.isoformat(), actor, action, target, details, digest or "", prev], ensure_ascii=False,
        separators=(",", ":"))

"""Every decision signed with the actor's own certificate, judged by others.

* each act's record verifies with `openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt
  distid:1234567812345678` under the signer's certificate, which `openssl verify` chains to the CA;
* the evidence bundle's verify.sh passes in a clean environment (`env -i PATH=/usr/bin:/bin`: only
  coreutils and openssl) and names the act a third party tampered with;
* a row edited with sqlite3 — an opinion changed in the log, a signed record changed or deleted —
  is named by `yinxin doc log --verify` (exit 1), and verifying changes nothing;
* RA decisions (approve, reject, revoke) are signed the same way once the RA has two certified
  officers; before that they are recorded unsigned and marked as the RA's bootstrap;
* `yinxin demo` signs every decision of its document flow and its log verifies.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from ca_helpers import DISTID, assert_one_line_error, db_snapshot, openssl, yinxin
from docflow_support import (CA_PASSWORD, ORG, OTHER, SEAL_PASSWORD, UPWARD_TO_SEAL, Bureau, bureau, document_pdf,
                             example_org, new_upward, other_org, tables, walk, with_seals)
from pki.accounts import SigningKeyError, decisions
from pki.accounts.testing import actor_for_tests, certified_actor
from pki.ca import CertificateAuthority
from pki.status import generate_crl
from pki.x509 import certificate_to_pem, load_certificate

ROOT = Path(__file__).resolve().parent.parent


def archived_document(b: Bureau) -> int:
    """The upward route, sealing, sending, receipt and archive: every act signed."""
    b.flow.load_organisation_data(other_org(), actor=b.admin())
    with_seals(b, (ORG, "official-sm2", "wang"), (OTHER, "tianjin-sm2", "t_wang"))
    doc = walk(b, new_upward(b).id, UPWARD_TO_SEAL)
    b.tick()
    b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD)
    b.flow.act(doc.id, actor=b.actor("sun"), action="approve", opinion="已核对")
    b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER])
    b.flow.open(doc.id, actor=b.actor("t_liu"))
    assert b.flow.receive(doc.id, actor=b.actor("t_liu")).accepted
    b.flow.archive(doc.id, actor=b.actor("liu"))
    authority = CertificateAuthority(b.home)
    op = actor_for_tests(b.home, "ca-admin", roles=("ca_operator",))
    b.tick()
    for name in ("root", "issuing"):
        info = authority.get(name)
        generate_crl(authority, info, authority.load_key(info, CA_PASSWORD), actor=op)
    return doc.id


@pytest.fixture(scope="module")
def signed(tmp_path_factory) -> tuple[Bureau, int]:
    b = bureau(tmp_path_factory.mktemp("signed"))
    return b, archived_document(b)


def test_every_act_is_signed_and_openssl_verifies_each_signature(signed, tmp_path: Path) -> None:
    b, doc_id = signed
    log = b.flow.log(doc_id)
    assert [e.action for e in log] == ["new", "approve", "approve", "forward", "approve", "sign-off", "register",
                                       "seal", "approve", "send", "open", "receive", "archive"]
    records = decisions.chain_records(b.home, f"doc:{doc_id}")
    assert [e.decision_seq for e in log] == [d.seq for d in records] == list(range(1, 14))
    issuing = CertificateAuthority(b.home).get("issuing")
    (tmp_path / "issuing.pem").write_bytes(certificate_to_pem(issuing.certificate))
    previous = ""
    for d, entry in zip(records, log):
        fields = json.loads(d.record)
        # the canonical form: sorted keys, no insignificant whitespace, UTF-8 as itself
        assert d.record == json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
        assert (fields["document"], fields["action"], fields["step"], fields["opinion"], fields["actor"]) == \
            (doc_id, entry.action, entry.step, entry.opinion, entry.actor)
        assert (fields["sha256"], fields["sm3"], fields["version"]) == (entry.sha256, entry.sm3, entry.version)
        assert fields["prev"] == previous
        previous = hashlib.sha256(d.record).hexdigest()
        record, sig, cert, pub = (tmp_path / f"{d.seq}.{x}" for x in ("json", "sig", "pem", "pub"))
        record.write_bytes(d.record)
        sig.write_bytes(d.signature)
        cert_der = CertificateAuthority(b.home).show(d.cert_serial, ca=d.ca_name).cert_der
        cert.write_bytes(certificate_to_pem(load_certificate(bytes(cert_der))))
        assert fields["certificate"]["serial"] == openssl("x509", "-in", cert, "-noout", "-serial").stdout.decode() \
            .strip().split("=")[1]
        openssl("x509", "-in", cert, "-noout", "-pubkey", "-out", pub)
        out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3", "-pkeyopt",
                      f"distid:{DISTID}", "-in", record, "-sigfile", sig, check=False)
        assert b"Signature Verified Successfully" in out.stdout, (d.seq, out)
        assert b"OK" in openssl("verify", "-partial_chain", "-CAfile", tmp_path / "issuing.pem", "-vfyopt",
                                f"distid:{DISTID}", cert).stdout
        subject = openssl("x509", "-in", cert, "-noout", "-subject", "-nameopt", "utf8").stdout.decode()
        assert fields["actor_name"] in subject
        # a changed byte no longer verifies
        record.write_bytes(d.record.replace(b'"seq":', b'"seq": '))
        assert openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3", "-pkeyopt",
                       f"distid:{DISTID}", "-in", record, "-sigfile", sig, check=False).returncode != 0
    assert b.flow.verify_log(doc_id).ok


def test_evidence_bundle_verifies_with_openssl_alone(signed, tmp_path: Path) -> None:
    b, doc_id = signed
    result = yinxin(b.path, "doc", "evidence", str(doc_id), "--out", tmp_path / "evidence")
    assert result.code == 0, result
    bundle = tmp_path / "evidence"
    assert {p.name for p in bundle.glob("act-1.*")} == {"act-1.json", "act-1.sig", "act-1.crt"}
    assert (bundle / "version-1.pdf").read_bytes() == b.flow.pdf(doc_id, 1)
    clean = subprocess.run(["sh", "verify.sh"], cwd=bundle, env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                           text=True, timeout=600)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    lines = clean.stdout.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("act ")] == [f"act {n}" for n in range(1, 14)]
    assert all(": OK " in line for line in lines if line.startswith("act ")) and lines[-1] == "ALL OK"
    assert "sign-off by wu" in clean.stdout and "seal by wang" in clean.stdout
    # a third party's copy, tampered with: an opinion changed in act 3
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    act = tampered / "act-3.json"
    act.write_bytes(act.read_bytes().replace("同意".encode(), "不同意".encode()))
    bad = subprocess.run(["sh", "verify.sh"], cwd=tampered, env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                         text=True, timeout=600)
    assert bad.returncode == 1 and "act 3: BAD: the signature does not verify" in bad.stdout
    assert "FAILED" in bad.stdout and "ALL OK" not in bad.stdout
    # refused: an existing directory, and a CRL older than the last act
    assert_one_line_error(yinxin(b.path, "doc", "evidence", str(doc_id), "--out", bundle), "not an empty directory")


def _tamper(db: Path, *statements: str) -> None:
    con = sqlite3.connect(db, isolation_level=None)
    con.create_function("sha256hex", 1, lambda data: hashlib.sha256(data).hexdigest())   # the attacker's digest
    try:
        for table in ("doc_actions", "decisions"):
            for op in ("update", "delete"):
                con.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")     # as an attacker with the file would
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


@pytest.mark.parametrize("change, needle", [
    ("UPDATE doc_actions SET opinion = '不同意' WHERE doc_id = {doc} AND seq = 3",
     "record 3 (approve by zhang at {at3}): the opinion in the log differs from the signed record"),
    ("UPDATE decisions SET record = CAST(replace(record, '同意', '不同意') AS BLOB) WHERE chain = 'doc:{doc}' AND seq = 3",
     "record 3 (approve by zhang at {at3}): the record's bytes do not match their stored digest"),
    ("UPDATE decisions SET record = CAST(replace(record, '同意', '不同意') AS BLOB), "
     "sha256 = sha256hex(CAST(replace(record, '同意', '不同意') AS BLOB)) WHERE chain = 'doc:{doc}' AND seq = 3",
     "record 3 (approve by zhang at {at3}): the signature does not verify"),
    ("DELETE FROM decisions WHERE chain = 'doc:{doc}' AND seq = 5",
     "record 5 is missing (deleted)"),
    ("UPDATE doc_actions SET actor = 'li' WHERE doc_id = {doc} AND seq = 2",
     "the log says li acted, the signed record says chen"),
])
def test_an_edited_row_is_named_by_doc_log_verify(signed, tmp_path: Path, change: str, needle: str) -> None:
    b, doc_id = signed
    home = tmp_path / "copy"
    shutil.copytree(b.path, home)
    at3 = decisions.record_time(b.flow.log(doc_id)[2].at)
    assert yinxin(home, "doc", "log", str(doc_id), "--verify").code == 0
    _tamper(home / "yinxin.db", change.format(doc=doc_id))
    before = db_snapshot(home / "yinxin.db", idle_timers=True)
    result = yinxin(home, "doc", "log", str(doc_id), "--verify")
    assert result.code == 1, result
    error = [line for line in result.err.splitlines() if line.startswith("yinxin: error:")]
    assert len(error) == 1 and needle.format(at3=at3) in error[0], result.err
    assert "BAD" in result.out
    assert db_snapshot(home / "yinxin.db", idle_timers=True) == before        # verifying changes nothing


def test_acting_without_a_certificate_or_an_unlocked_key_is_refused(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    doc = new_upward(b)
    before = tables(b)
    with pytest.raises(SigningKeyError, match="not unlocked"):
        b.flow.act(doc.id, actor=b.unsigned("chen"), action="approve", opinion="同意")
    data = example_org()
    data["people"].append({"id": "qian", "name": "钱科员", "department": "业务处"})   # new: no certificate yet
    assert tables(b) == before
    b.flow.load_organisation_data(data, actor=b.admin())
    before = tables(b)
    with pytest.raises(SigningKeyError, match="holds no person certificate"):
        b.flow.new_document(kind="upward", title="请示", pdf=document_pdf(), actor=b.unsigned("qian"))
    assert tables(b) == before


def test_an_organisation_may_leave_actions_unsigned(tmp_path: Path) -> None:
    data = example_org()
    data["signatures"] = ["sign-off", "seal", "send"]
    b = bureau(tmp_path, org=data)
    doc = b.flow.new_document(kind="upward", title="请示", pdf=document_pdf(),
                              actor=b.unsigned("sun"))                       # not signed: allowed without a key
    for user, action, to in (("chen", "approve", None), ("zhang", "approve", "li"), ("li", "forward", "zhou"),
                             ("zhou", "approve", None)):
        b.flow.act(doc.id, actor=b.unsigned(user), action=action, opinion="同意", to=to)
    with pytest.raises(SigningKeyError, match="wu holds no person certificate"):
        b.flow.act(doc.id, actor=b.unsigned("wu"), action="sign-off", opinion="签发")
    b.flow.act(doc.id, actor=b.actor("wu"), action="sign-off", opinion="签发")       # certified now: signed
    check = b.flow.verify_log(doc.id)
    assert check.ok and [e.decision for e in check.entries] == [None, None, None, None, None, 1]


def test_ra_decisions_are_signed_once_the_ra_is_certified(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    authority = CertificateAuthority(b.home)
    ca_op = actor_for_tests(b.home, "ca-op", roles=("ca_operator",))
    plain_gu = actor_for_tests(b.home, "ra-gu", roles=("ra_officer",))
    plain_lu = actor_for_tests(b.home, "ra-lu", roles=("ra_officer",))
    # the bootstrap: no officer holds a certificate, so lu's approval of gu's key is unsigned (and says so)
    gu = certified_actor(b.home, "ra-gu", ca="issuing", ca_password=CA_PASSWORD, approver=plain_lu, issuer=ca_op,
                         id_number="RA0001")
    first = decisions.chain_records(b.home, f"application:{authority.ra.get(1).id}")
    assert first and first[0].signature is None and first[0].fields["bootstrap"] is True
    lu = certified_actor(b.home, "ra-lu", ca="issuing", ca_password=CA_PASSWORD, approver=gu, issuer=ca_op,
                         id_number="RA0002")
    # two certified officers: an officer without a certificate may decide no more
    newcomer = actor_for_tests(b.home, "ra-new", roles=("ra_officer",))
    app = authority.ra.apply(ca="issuing", profile="organization", subject="/O=某局/CN=某局",
                             actor=actor_for_tests(b.home, "clerk"), generate_key_out=tmp_path / "org.key",
                             key_password=b"key-password")
    with pytest.raises(SigningKeyError, match="holds none"):
        authority.ra.approve(app.id, actor=newcomer)
    with pytest.raises(SigningKeyError, match="not unlocked"):
        authority.ra.approve(app.id, actor=plain_lu)
    rejected = authority.ra.apply(ca="issuing", profile="organization", subject="/O=某局/CN=另一局",
                                  actor=actor_for_tests(b.home, "clerk"), generate_key_out=tmp_path / "org2.key",
                                  key_password=b"key-password")
    authority.ra.reject(rejected.id, actor=gu, reason="材料不全")
    authority.ra.approve(app.id, actor=lu, comment="材料齐全")
    issued = authority.issue(app.id, password=CA_PASSWORD, actor=ca_op)
    authority.revoke(issued.record.serial, reason="affiliationChanged", actor=gu)
    issuing = authority.get("issuing")
    (tmp_path / "issuing.pem").write_bytes(certificate_to_pem(issuing.certificate))
    chains = {"approve": f"application:{app.id}", "reject": f"application:{rejected.id}",
              "revoke": f"certificate:issuing:{issued.record.serial}"}
    for action, chain in chains.items():
        (d,) = decisions.chain_records(b.home, chain)
        fields = d.fields
        assert fields["action"] == action and d.signature is not None and "bootstrap" not in fields
        signer = gu if d.signer == "ra-gu" else lu
        cert = tmp_path / f"{action}.pem"
        cert_der = authority.show(d.cert_serial, ca="issuing").cert_der
        cert.write_bytes(certificate_to_pem(load_certificate(cert_der)))
        openssl("x509", "-in", cert, "-noout", "-pubkey", "-out", tmp_path / "pub.pem")
        (tmp_path / "r.json").write_bytes(d.record)
        (tmp_path / "r.sig").write_bytes(d.signature)
        out = openssl("pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin", "-digest", "sm3",
                      "-pkeyopt", f"distid:{DISTID}", "-in", tmp_path / "r.json", "-sigfile", tmp_path / "r.sig",
                      check=False)
        assert b"Signature Verified Successfully" in out.stdout, (action, out)
        assert signer.account_id == d.signer
        assert decisions.verify_records(b.home, chain, [d]).ok
    assert decisions.verify_records(b.home, first[0].chain, first).ok      # unsigned, but a valid bootstrap record


def test_the_demo_signs_every_decision_and_its_log_verifies(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    result = yinxin(tmp_path, "demo", "--home", home, "--json")
    assert result.code == 0, result
    data = result.json()
    assert data["signed_decisions"] >= 20
    verified = yinxin(home, "doc", "log", str(data["document"]), "--verify")
    assert verified.code == 0 and "all 12 signed decisions verify" in verified.out, verified
    assert yinxin(home, "doc", "log", str(data["incoming_document"]), "--verify").code == 0
    clean = subprocess.run(["sh", "verify.sh"], cwd=data["evidence"], env={"PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0 and clean.stdout.splitlines()[-1] == "ALL OK", clean.stdout + clean.stderr
    sessions = sorted(p.name for p in Path(data["sessions"]).iterdir())
    assert "sun.session" in sessions and "wang.session" in sessions
    shown = yinxin(home, "account", "show", "--session", Path(data["sessions"]) / "wu.session", "--json")
    assert shown.code == 0 and shown.json()["key"] == "active"

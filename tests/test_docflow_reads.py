"""What an act reads and returns, with fewer statements (docflow.records, pki.accounts.decisions):

* the document an act returns — built from what its guard read plus what it wrote, the attachments
  and deliveries not read again when it has none — is the document a fresh read shows, at every
  step: drafting with and without attachments, the route, sealing, the drafter's check, sending,
  recalling and sending again;
* the decision chain's head read by the guard: a record follows it, and one appended meanwhile makes
  the write refuse (DecisionChainMoved) with nothing written;
* the audit chain's head moves with every event (the event and the head's hash are one statement on
  PostgreSQL: tests/test_docflow_postgres.py).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from docflow import Attachment
from pki.accounts import decisions
from pki.accounts.decisions import ChainHead
from pki.accounts.errors import DecisionChainMoved
from pki.store import audit_events, audit_head

from docflow_support import (OTHER, SEAL_PASSWORD, UPWARD_TO_SEAL, Bureau, bureau_copy, document_pdf, new_upward,
                             sealing_template, tables)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sealing_template(tmp_path_factory.mktemp("docflow-reads-template"))


@pytest.fixture
def b(template: Path, tmp_path: Path) -> Bureau:
    return bureau_copy(template, tmp_path)


def same_as_read(b: Bureau, doc):  # type: ignore[no-untyped-def]
    assert doc == b.flow.show(doc.id)
    return doc


def audit_head_is_last_event(b: Bureau) -> bool:
    with b.home.store.read() as conn:
        head = conn.execute(sa.select(audit_head)).one()
        last = conn.execute(sa.select(audit_events.c.seq, audit_events.c.hash)
                            .order_by(audit_events.c.seq.desc()).limit(1)).one()
    return (head.last_seq, head.last_hash) == (last.seq, last.hash)


@pytest.mark.parametrize("with_attachment", [False, True])
def test_every_act_returns_what_a_fresh_read_shows(b: Bureau, with_attachment: bool) -> None:
    extra = dict(attachments=[Attachment("试点方案.pdf", document_pdf("试点方案"))],
                 declared_attachments=["试点方案"]) if with_attachment else {}
    doc = same_as_read(b, new_upward(b, **extra))
    assert len(doc.attachments) == (1 if with_attachment else 0)
    for user, action, to in UPWARD_TO_SEAL:
        b.tick()
        doc = same_as_read(b, b.flow.act(doc.id, actor=b.actor(user), action=action, opinion="同意", to=to))
    b.tick()
    doc = same_as_read(b, b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD))
    b.tick()
    doc = same_as_read(b, b.flow.act(doc.id, actor=b.actor("sun"), action="approve", opinion="已核对盖章件"))
    b.tick()
    doc = same_as_read(b, b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))
    assert [d.state for d in doc.deliveries] == ["delivered"]
    b.tick()
    doc = same_as_read(b, b.flow.recall(doc.id, actor=b.actor("liu")))
    assert (doc.state, doc.step, [d.state for d in doc.deliveries]) == ("in_flow", "send", ["recalled"])
    b.tick()
    doc = same_as_read(b, b.flow.send(doc.id, actor=b.actor("liu"), to=[OTHER]))
    assert [d.state for d in doc.deliveries] == ["recalled", "delivered"]
    assert b.flow.verify_log(doc.id).ok and audit_head_is_last_event(b)


def test_a_decision_follows_the_head_its_guard_read_or_nothing_is_written(b: Bureau) -> None:
    doc = new_upward(b)
    chain = f"doc:{doc.id}"
    with b.home.store.read() as conn:
        seen = b.flow._read_doc(conn, doc.id).decision_head
    first = decisions.chain_records(b.home, chain)
    assert seen == ChainHead(1, hashlib.sha256(first[0].record).hexdigest()) and len(first) == 1
    b.tick()
    b.flow.act(doc.id, actor=b.actor("chen"), action="approve", opinion="同意")   # appends record 2 meanwhile
    before = tables(b)
    signer = decisions.signer_for(b.home, b.actor("sun"))
    with pytest.raises(DecisionChainMoved, match="nothing was written") as info:
        with b.home.store.transaction() as conn:
            decisions.append(conn, b.home, chain=chain, actor=b.actor("sun"), signer=signer, at=b.clock.now(),
                             fields={"action": "test"}, head=seen)
    assert info.value.data == {"chain": chain, "seq": 2}
    assert tables(b) == before
    # from the head as it is now, the record goes in as number 3, after the one appended meanwhile
    with b.home.store.read() as conn:
        now_head = b.flow._read_doc(conn, doc.id).decision_head
    with b.home.store.transaction() as conn:
        record = decisions.append(conn, b.home, chain=chain, actor=b.actor("sun"), signer=signer,
                                  at=b.clock.now(), fields={"action": "test"}, head=now_head)
    assert record.seq == 3 and record.fields["prev"] == now_head.sha256


def test_a_chain_head_is_a_number_and_its_digest_or_nothing() -> None:
    assert ChainHead(0, "").seq == 0
    for seq, digest in ((0, "ab"), (1, ""), (-1, "")):
        with pytest.raises(ValueError):
            ChainHead(seq, digest)


def test_the_session_check_reads_the_signing_key_signer_for_would_read(b: Bureau) -> None:
    import sqlite3
    from pki.accounts import Accounts
    from pki.accounts.decisions import _SIGNING_KEY
    for person in ("sun", "chen", "wang"):
        actor = b.actor(person)
        with b.home.store.read() as conn:
            with_session = Accounts.of(b.home).require(actor, conn=conn, signing_key=True)
            alone = conn.execute(_SIGNING_KEY, {"account_id": person}).mappings().first()
        key_columns = dict(alone)
        assert {k: with_session[k] for k in key_columns} == key_columns
        db = sqlite3.connect(b.db())          # the newest active key, read without our store
        newest = db.execute("SELECT max(id) FROM account_keys WHERE account_id = ? AND state = 'active'",
                            (person,)).fetchone()[0]
        db.close()
        assert key_columns["key_id"] == newest is not None
        assert decisions.signer_for(b.home, actor, key_row=with_session).key_id == newest
    assert Accounts.of(b.home).require(b.unsigned("sun")) is None     # without signing_key: nothing returned


def test_the_actor_is_judged_before_the_document_in_the_one_statement(b: Bureau) -> None:
    from docflow import DocumentNotFound
    from pki.accounts import Accounts
    from pki.accounts.errors import AccountDisabled
    doc = new_upward(b)
    chen = b.actor("chen")
    with pytest.raises(DocumentNotFound):
        b.flow.act(999, actor=chen, action="approve")
    Accounts.of(b.home).disable("chen", actor=b.admin())
    before = tables(b)
    for doc_id in (doc.id, 999):                    # a disabled account is refused, whether or not the document exists
        with pytest.raises(AccountDisabled):
            b.flow.act(doc_id, actor=chen, action="approve", opinion="同意")
        with pytest.raises(AccountDisabled):
            b.flow.send(doc_id, actor=chen, to=[OTHER])
    assert tables(b) == before

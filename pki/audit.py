"""Append-only, hash-chained audit log with signed checkpoints.

Each event's hash covers its canonical content and the previous event's
hash, so editing, deleting or reordering any event breaks the chain at a
place `verify` names.  Checkpoints — the hash of the event at some sequence
number, signed by a CA key while that key is loaded — make the chain
tamper-evident even to someone who could recompute every hash: rewriting
history would need the CA key.  Events are appended in the same transaction
as the change they record, so there is no change without its event.

An edge serving people over the network (the console, its HTTP API) says where a request came from
with `context(client=…, via=…)`: every event appended while that context is active carries it under
``details["request"]``, so the library's own events — a login, a failure, a stamp — name the client
address without the library knowing about HTTP.
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from contextvars import ContextVar
from json.encoder import encode_basestring
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .algorithms import PrivateKey, PublicKey
from .errors import AuditError, InvalidSignature
from .store import Store, audit_checkpoints, audit_events, audit_head, insert_many, to_json

GENESIS = "0" * 64
#: a checkpoint is signed when this many events have passed since the last one
CHECKPOINT_INTERVAL = 50


def _canonical(seq: int, at: datetime, actor: str, action: str, target: str, details: str,
               result_digest: str | None, prev_hash: str) -> str:
    """json.dumps([seq, at, actor, action, target, details, digest, prev], ensure_ascii=False,
    separators=(",", ":")), put together from json's own string encoder (a test compares the two):
    bulk issuance hashes five events per certificate."""
    text = encode_basestring
    return (f"[{int(seq)},{text(at.isoformat())},{text(actor)},{text(action)},{text(target)},{text(details)},"
            f"{text(result_digest or '')},{text(prev_hash)}]")


def _event_hash(seq: int, at: datetime, actor: str, action: str, target: str, details: str,
                result_digest: str | None, prev_hash: str) -> str:
    canonical = _canonical(seq, at, actor, action, target, details, result_digest, prev_hash)
    return hashlib.sha256(canonical.encode()).hexdigest()


#: where the current request came from (see `context`); None outside any request
_REQUEST: ContextVar[Mapping[str, Any] | None] = ContextVar("yinxin_audit_request", default=None)


@contextmanager
def context(**values: Any) -> Iterator[None]:
    """Events appended inside this block (in this thread or task, and in the threads it hands work
    to with the context copied) carry `values` under details["request"] — e.g. client address and
    the edge (``via="console"``).  Nested blocks add to the outer one's values."""
    token = _REQUEST.set({**(_REQUEST.get() or {}), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _REQUEST.reset(token)


def _with_request(details: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(details or {})
    request = _REQUEST.get()
    if request:
        out.setdefault("request", dict(request))
    return out


def _checkpoint_message(seq: int, event_hash: str, at: datetime, ca_name: str) -> bytes:
    return f"yinxin-audit-checkpoint|{seq}|{event_hash}|{at.isoformat()}|{ca_name}".encode()


#: the statements of every append, built once (building one costs more than running it on SQLite)
_HEAD_MOVE = (sa.update(audit_head).where(audit_head.c.id == 1)
              .values(last_seq=audit_head.c.last_seq + sa.bindparam("count", type_=sa.Integer))
              .returning(audit_head.c.last_seq, audit_head.c.last_hash))
_HEAD_HASH = sa.update(audit_head).where(audit_head.c.id == 1).values(last_hash=sa.bindparam("new_hash"))
_EVENT_INSERT = audit_events.insert()
_EVENT_COLUMNS = ("seq", "at", "actor", "action", "target", "details", "result_digest", "prev_hash", "hash")
#: PostgreSQL: the event's insert and the head's new hash in one statement (a data-modifying WITH;
#: SQLite has none, and there a statement costs a tenth as much)
_APPENDED = (audit_events.insert().values({name: sa.bindparam(name, type_=audit_events.c[name].type)
                                           for name in _EVENT_COLUMNS})
             .returning(audit_events.c.hash).cte("appended"))
_EVENT_INSERT_HEAD_HASH = (sa.update(audit_head).where(audit_head.c.id == 1)
                           .values(last_hash=sa.select(_APPENDED.c.hash).scalar_subquery()).add_cte(_APPENDED))


def append(conn: Connection, *, at: datetime, actor: str, action: str, target: str,
           details: Mapping[str, Any] | None = None, result_digest: str | None = None) -> int:
    """Append one event inside the caller's transaction; returns its sequence number.

    The single `audit_head` row is updated in the same statement sequence, which
    serialises concurrent appenders on every engine (row lock on PostgreSQL,
    the write lock on SQLite)."""
    head = conn.execute(_HEAD_MOVE, {"count": 1}).first()
    if head is None:
        conn.execute(audit_head.insert().values(id=1, last_seq=1, last_hash=GENESIS))
        seq, prev = 1, GENESIS
    else:
        seq, prev = head.last_seq, head.last_hash
    details_text = to_json(_with_request(details))
    digest = _event_hash(seq, at, actor, action, target, details_text, result_digest, prev)
    event = {"seq": seq, "at": at, "actor": actor, "action": action, "target": target, "details": details_text,
             "result_digest": result_digest, "prev_hash": prev, "hash": digest}
    if conn.dialect.name == "postgresql":
        conn.execute(_EVENT_INSERT_HEAD_HASH, event)
    else:
        conn.execute(_EVENT_INSERT, event)
        conn.execute(_HEAD_HASH, {"new_hash": digest})
    return seq


@dataclass(frozen=True)
class Event:
    """One event for `append_many`: the arguments of `append`."""
    at: datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, Any] | None = None
    result_digest: str | None = None


def append_many(conn: Connection, events: Sequence[Event]) -> list[int]:
    """Append `events` in order inside the caller's transaction; returns their sequence numbers.

    The chain is the one `append` writes, event by event, but the head row is moved once and the
    events go in with one multi-row insert (bulk issuance appends five events per certificate)."""
    if not events:
        return []
    count = len(events)
    head = conn.execute(_HEAD_MOVE, {"count": count}).first()
    if head is None:
        conn.execute(audit_head.insert().values(id=1, last_seq=count, last_hash=GENESIS))
        first, prev = 1, GENESIS
    else:
        first, prev = head.last_seq - count + 1, head.last_hash
    rows = []
    for seq, event in enumerate(events, start=first):
        details_text = to_json(_with_request(event.details))
        digest = _event_hash(seq, event.at, event.actor, event.action, event.target, details_text,
                             event.result_digest, prev)
        rows.append({"seq": seq, "at": event.at, "actor": event.actor, "action": event.action,
                     "target": event.target, "details": details_text, "result_digest": event.result_digest,
                     "prev_hash": prev, "hash": digest})
        prev = digest
    insert_many(conn, audit_events, rows)
    conn.execute(_HEAD_HASH, {"new_hash": prev})
    return list(range(first, first + count))


def maybe_checkpoint(conn: Connection, *, at: datetime, ca_name: str, key: PrivateKey,
                     distid: bytes | None, force: bool = False) -> int | None:
    """Sign the current head if CHECKPOINT_INTERVAL events passed since the last checkpoint."""
    head = conn.execute(sa.select(audit_head)).first()
    if head is None:
        return None
    last = conn.execute(sa.select(sa.func.max(audit_checkpoints.c.seq))).scalar() or 0
    if not force and head.last_seq - last < CHECKPOINT_INTERVAL:
        return None
    sig = key.sign(_checkpoint_message(head.last_seq, head.last_hash, at, ca_name),
                   distid=distid if key.algorithm == "sm2" else None)
    conn.execute(audit_checkpoints.insert().values(seq=head.last_seq, event_hash=head.last_hash, at=at,
                                                   ca_name=ca_name, signature=sig))
    return head.last_seq


@dataclass(frozen=True)
class AuditProblem:
    seq: int
    problem: str


@dataclass(frozen=True)
class AuditReport:
    events: int
    checkpoints: int
    problems: tuple[AuditProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(store: Store, ca_public_key: Callable[[str], tuple[PublicKey, bytes | None] | None]) -> AuditReport:
    """Walk the chain; name every event that was edited, deleted or reordered.

    `ca_public_key(name)` returns the (public key, distid) of a CA for checkpoint
    signatures, or None when that CA is unknown."""
    problems: list[AuditProblem] = []
    hashes: dict[int, str] = {}
    unverified: dict[int, Any] = {}       # seq → row whose hash does not fit its own seq
    with store.read() as conn:
        rows: Iterable[Any] = conn.execute(sa.select(audit_events).order_by(audit_events.c.seq))
        expected_seq, prev, count = 1, GENESIS, 0
        for row in rows:
            count += 1
            if row.seq != expected_seq:
                missing = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}..{row.seq - 1}"
                problems.append(AuditProblem(row.seq, f"event(s) {missing} deleted before event {row.seq}"))
            recomputed = _event_hash(row.seq, row.at, row.actor, row.action, row.target, row.details,
                                     row.result_digest, row.prev_hash)
            if recomputed != row.hash:
                unverified[row.seq] = row
            elif row.prev_hash != prev and row.seq == expected_seq and row.seq - 1 not in unverified:
                problems.append(AuditProblem(row.seq, f"event {row.seq} does not follow event {row.seq - 1} "
                                                      "(reordered or the previous event was replaced)"))
            prev, expected_seq = row.hash, row.seq + 1
            hashes[row.seq] = row.hash
        problems.extend(_edited_or_moved(unverified, hashes))
        head = conn.execute(sa.select(audit_head)).first()
        if head is not None and head.last_seq != expected_seq - 1:
            problems.append(AuditProblem(head.last_seq, f"the log ends at event {expected_seq - 1} but "
                                                        f"{head.last_seq} events were written: events deleted at the end"))
        checkpoints = conn.execute(sa.select(audit_checkpoints).order_by(audit_checkpoints.c.seq)).all()
    for cp in checkpoints:
        if hashes.get(cp.seq) != cp.event_hash:
            problems.append(AuditProblem(cp.seq, f"checkpoint at event {cp.seq} does not match the log "
                                                 "(history rewritten)"))
            continue
        found = ca_public_key(cp.ca_name)
        if found is None:
            problems.append(AuditProblem(cp.seq, f"checkpoint at event {cp.seq} signed by unknown CA {cp.ca_name}"))
            continue
        pub, distid = found
        try:
            pub.verify(cp.signature, _checkpoint_message(cp.seq, cp.event_hash, cp.at, cp.ca_name),
                       distid=distid if pub.algorithm == "sm2" else None)
        except InvalidSignature:
            problems.append(AuditProblem(cp.seq, f"checkpoint at event {cp.seq} has a bad signature"))
    problems.sort(key=lambda p: p.seq)
    return AuditReport(events=count, checkpoints=len(checkpoints), problems=tuple(problems))


def _edited_or_moved(unverified: dict[int, Any], hashes: dict[int, str]) -> list[AuditProblem]:
    """Tell an edited event from one moved to another sequence number (reordered).

    A moved event is intact but hashed under its original number, which its chain link gives:
    one more than the original number of the event whose hash it names as previous."""
    seq_of_hash = {h: s for s, h in hashes.items()}
    original: dict[int, int | None] = {}

    def original_seq(seq: int, depth: int = 0) -> int | None:
        if seq not in unverified:
            return seq
        if seq in original or depth > 64:
            return original.get(seq)
        original[seq] = None                    # guards against cycles
        row = unverified[seq]
        if row.prev_hash == GENESIS:
            candidate: int | None = 1
        else:
            before = seq_of_hash.get(row.prev_hash)
            base = None if before is None else original_seq(before, depth + 1)
            candidate = None if base is None else base + 1
        if candidate is not None and candidate != seq and _event_hash(
                candidate, row.at, row.actor, row.action, row.target, row.details, row.result_digest,
                row.prev_hash) == row.hash:
            original[seq] = candidate
        return original[seq]

    problems = []
    for seq, row in sorted(unverified.items()):
        moved_from = original_seq(seq)
        if moved_from is not None:
            problems.append(AuditProblem(seq, f"event {seq} ({row.action} {row.target}) was written as event "
                                              f"{moved_from}: events were reordered"))
        else:
            problems.append(AuditProblem(seq, f"event {seq} ({row.action} {row.target}) was edited"))
    return problems


__all__ = ["append", "append_many", "Event", "maybe_checkpoint", "verify", "AuditReport", "AuditProblem", "AuditError"]


@dataclass(frozen=True)
class EventRecord:
    """One audit event as stored."""
    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    details: Mapping[str, Any]
    result_digest: str | None
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "target": self.target, "details": dict(self.details), "result_digest": self.result_digest,
                "hash": self.hash}


def search(store: Store, *, actor: str | None = None, action: str | None = None, target: str | None = None,
           since: datetime | None = None, until: datetime | None = None, limit: int = 500,
           newest_first: bool = True) -> list[EventRecord]:
    """Audit events matching every filter given: `actor` and `target` exactly, `action` exactly or as a
    prefix ending in '.' (``"doc."``), `since` ≤ at < `until`; at most `limit` (1..100000)."""
    import json
    if not 1 <= limit <= 100_000:
        raise ValueError("limit is 1..100000")
    query = sa.select(audit_events)
    if actor:
        query = query.where(audit_events.c.actor == actor)
    if action:
        query = query.where(audit_events.c.action.startswith(action, autoescape=True) if action.endswith(".")
                            else audit_events.c.action == action)
    if target:
        query = query.where(audit_events.c.target == target)
    if since is not None:
        query = query.where(audit_events.c.at >= since)
    if until is not None:
        query = query.where(audit_events.c.at < until)
    query = query.order_by(audit_events.c.seq.desc() if newest_first else audit_events.c.seq).limit(limit)
    with store.read() as conn:
        return [EventRecord(seq=r["seq"], at=r["at"], actor=r["actor"], action=r["action"], target=r["target"],
                            details=json.loads(r["details"] or "{}"), result_digest=r["result_digest"],
                            hash=r["hash"]) for r in conn.execute(query).mappings()]

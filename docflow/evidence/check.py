"""`doc log --verify`: a document's signed decisions checked against each other and against its log.

The chain (`doc:ID` in pki.accounts' decisions) is checked record by record — numbering, canonical
bytes, each record naming the previous one's SHA-256, the signature over the exact bytes, the
signer's certificate (issued by this home's CA, the CA chain, bound to the signer's account, valid
and neither revoked nor held at the time of the act).  Then each record against its entry in the
document's log (the same actor, action, step, opinion, time, version and digests), and every log
entry whose action the organisation signs against its record: an edited opinion, a deleted record
or an entry without its signature is named.  The first bad one is what the report leads with.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import sqlalchemy as sa

from pki.accounts import decisions
from pki.accounts.decisions import RecordCheck

from .. import store as t
from ..errors import DocumentNotFound

if TYPE_CHECKING:
    from ..flow import DocumentFlow


@dataclass(frozen=True)
class LogCheck:
    """One entry of the document's log, judged."""

    seq: int                     # the entry's number in the log
    action: str
    actor: str
    at: str
    decision: int | None         # the signed record's number in the chain
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        signed = f"record {self.decision}" if self.decision is not None else "unsigned entry"
        return f"log entry {self.seq} ({self.action} by {self.actor} at {self.at}; {signed})"

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "action": self.action, "actor": self.actor, "time": self.at,
                "decision": self.decision, "ok": self.ok, "problem": self.problem}


@dataclass(frozen=True)
class LogVerification:
    """What `DocumentFlow.verify_log` found: the chain's records and the log's entries."""

    doc_id: int
    records: tuple[RecordCheck, ...]
    entries: tuple[LogCheck, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.records) and all(e.ok for e in self.entries)

    @property
    def first_problem(self) -> str | None:
        """The first bad record (in the chain's order), else the first bad log entry, as one sentence."""
        for record in self.records:
            if not record.ok:
                return f"{record.describe()}: {record.problem}"
        for entry in self.entries:
            if not entry.ok:
                return f"{entry.describe()}: {entry.problem}"
        return None

    @property
    def signed(self) -> int:
        return sum(1 for r in self.records if r.signed)

    def to_dict(self) -> dict[str, Any]:
        return {"doc": self.doc_id, "ok": self.ok, "first_problem": self.first_problem, "signed": self.signed,
                "records": [r.to_dict() for r in self.records], "entries": [e.to_dict() for e in self.entries]}


#: what a record says and which column of the log says the same
_SAME = (("action", "action"), ("step", "step"), ("opinion", "opinion"), ("version", "version"),
         ("sha256", "sha256"), ("sm3", "sm3"))


def verify_log(flow: "DocumentFlow", doc_id: int) -> LogVerification:
    home = flow.home
    chain = f"doc:{doc_id}"
    with home.store.read() as conn:
        if conn.execute(sa.select(t.doc_documents.c.id).where(t.doc_documents.c.id == doc_id)).first() is None:
            raise DocumentNotFound(f"no document {doc_id}", doc=doc_id)
        rows = [dict(r) for r in conn.execute(sa.select(t.doc_actions).where(t.doc_actions.c.doc_id == doc_id)
                                              .order_by(t.doc_actions.c.seq)).mappings()]
        org_of = _organisations_of(flow, conn, {r["actor"] for r in rows}, doc_id)
    by_decision = {r["decision_seq"]: r for r in rows if r["decision_seq"] is not None}
    records = decisions.chain_records(home, chain)

    def against_log(d: decisions.Decision, fields: Mapping[str, Any]) -> str | None:
        row = by_decision.get(d.seq)
        if row is None:
            return "the record's entry in the document's log is missing (deleted or edited)"
        if fields.get("document") != doc_id:
            return "the record names another document"
        if row["actor"] != d.signer:
            return f"the log says {row['actor']} acted, the signed record says {d.signer} (edited)"
        if decisions.record_time(row["at"]) != fields.get("time"):
            return "the time in the log differs from the signed record (edited)"
        for key, column in _SAME:
            if fields.get(key) != row[column]:
                return f"the {key} in the log differs from the signed record (edited)"
        return None

    report = decisions.verify_records(home, chain, records, check_fields=against_log)
    in_chain = {d.seq for d in records}
    entries = []
    for row in rows:
        problem = None
        seq = row["decision_seq"]
        org = org_of.get(row["actor"])
        if seq is None:
            if org is None or org.signs(row["action"]):
                problem = "the action is not signed, though its organisation signs it (a signature removed?)"
        elif seq not in in_chain:
            problem = f"its signed record {seq} is missing from the chain (deleted)"
        entries.append(LogCheck(seq=row["seq"], action=row["action"], actor=row["actor"],
                                at=decisions.record_time(row["at"]), decision=seq, problem=problem))
    return LogVerification(doc_id=doc_id, records=report.records, entries=tuple(entries))


def _organisations_of(flow: "DocumentFlow", conn: Any, people: set[str], doc_id: int) -> dict[str, Any]:
    """Each actor's organisation as the directory has it now (what decides whether they sign)."""
    from ..directory import organisation_from_definition
    out: dict[str, Any] = {}
    for person in people:
        row = conn.execute(sa.select(t.doc_organisations.c.definition)
                           .join(t.doc_people, t.doc_people.c.org_id == t.doc_organisations.c.id)
                           .where(t.doc_people.c.person_id == person)).first()
        if row is not None:
            out[person] = organisation_from_definition(json.loads(row[0]))
    return out

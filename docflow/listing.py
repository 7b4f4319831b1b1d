"""What a person may see of the document flow, and what they may do next: read-only questions the
web console and the HTTP API ask (the acting operations keep every rule and check again).

* **Who sees a document** (`can_see`): a person of the document's organisation who is on its route
  — its drafter, someone it waits for or who acted on it, a holder of a role one of its steps names,
  a head of the drafter's department or of the handling department — and, for a sent document, the
  receivers and secretaries of an organisation it was delivered to.  Nobody else, whatever the id.
* **Lists** (`documents`): 待办 (`todo`: what waits for the person, `DocumentFlow.todo`), 已办
  (`done`: documents the person acted on), 发文 (`outgoing`: the organisation's outgoing documents
  the person sees), 收文 (`incoming`: its incoming documents and deliveries waiting to be received).
* **Next actions** (`next_actions`): the actions the route offers the person now, each with the
  people (or departments, organisations) it may go to — what a form offers, not a permission.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from . import store as t
from .errors import DirectoryError, DocumentNotFound, RouteError
from .organisations import OPEN_STATES
from .routes import COMPLETING_ACTION, KIND_TITLES, OUTGOING_KINDS, RETURNABLE_TYPES

if TYPE_CHECKING:
    from .flow import DocumentFlow
    from .records import _Doc

BOXES = ("todo", "done", "outgoing", "incoming")
#: Chinese labels of the actions a form offers
ACTION_LABELS = {"approve": "同意", "sign-off": "签发", "register": "登记", "forward": "转交下一位",
                 "return": "退回拟稿人", "revise": "修改正文", "seal": "盖章", "send": "发送",
                 "recall": "撤回", "open": "打开", "receive": "签收", "archive": "归档"}
STATE_LABELS = {"draft": "退回修改", "in_flow": "办理中", "sent": "已发送", "done": "已办结", "archived": "已归档"}


@dataclass(frozen=True)
class DocumentSummary:
    """One row of a list."""

    id: int
    title: str
    kind: str
    organisation: str
    state: str
    step_title: str | None
    doc_number: str | None
    updated_at: datetime
    delivery_state: str | None = None

    @property
    def kind_title(self) -> str:
        return KIND_TITLES.get(self.kind, self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "kind": self.kind, "organisation": self.organisation,
                "state": self.state, "step_title": self.step_title, "doc_number": self.doc_number,
                "updated_at": self.updated_at.isoformat(), "delivery_state": self.delivery_state}


@dataclass(frozen=True)
class NextAction:
    """An action the route offers now: who or what it may go to (`choices`, value → label), whether
    an opinion is required, and whether choosing is required."""

    action: str
    label: str
    opinion_required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    choice_required: bool = False
    note: str | None = None
    multiple: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "label": self.label, "opinion_required": self.opinion_required,
                "choices": [{"value": v, "label": label} for v, label in self.choices],
                "choice_required": self.choice_required, "multiple": self.multiple, "note": self.note}


@dataclass(frozen=True)
class Viewer:
    """The person asking: their organisation and roles there (None: nobody in the directory)."""

    person_id: str
    organisation: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    department: str | None = None
    head: bool = False


def viewer(flow: "DocumentFlow", person_id: str) -> Viewer:
    try:
        org, person = flow.whois(person_id)
    except DirectoryError:
        return Viewer(person_id, None)
    return Viewer(person_id, org.name, frozenset(person.roles), person.department, person.head)


# --------------------------------------------------------------------------- who sees what

def _on_route(d: "_Doc", who: Viewer, acted: bool) -> bool:
    if d.org.name != who.organisation:
        return False
    pid = who.person_id
    if pid == d.drafter or pid in d.pending or acted:
        return True
    if who.roles & d.route.roles():
        return True
    if who.head and who.department:
        kinds = {s.who.kind for s in d.route.steps}
        if "department_head" in kinds and d.drafter and d.org.has_person(d.drafter) \
                and d.org.person(d.drafter).department == who.department:
            return True
        if "handling_department" in kinds and d.step_state.get("handling_department") == who.department:
            return True
    return False


def _delivered_to(conn: Connection, doc_id: int, who: Viewer) -> str | None:
    """The latest state of the document's delivery to the viewer's organisation, if the viewer
    receives or sends there."""
    if who.organisation is None or not who.roles & {"receiver", "secretary"}:
        return None
    return conn.execute(sa.select(t.doc_deliveries.c.state)
                        .join(t.doc_organisations, t.doc_organisations.c.id == t.doc_deliveries.c.org_id)
                        .where(t.doc_deliveries.c.doc_id == doc_id, t.doc_organisations.c.name == who.organisation)
                        .order_by(t.doc_deliveries.c.id.desc()).limit(1)).scalar()


def _acted(conn: Connection, doc_id: int, person_id: str) -> bool:
    return conn.execute(sa.select(t.doc_actions.c.seq).where(
        t.doc_actions.c.doc_id == doc_id, t.doc_actions.c.actor == person_id).limit(1)).first() is not None


def _visible(flow: "DocumentFlow", conn: Connection, d: "_Doc", who: Viewer) -> bool:
    if who.organisation is None:
        return False
    if d.org.name == who.organisation:
        return _on_route(d, who, _acted(conn, d.id, who.person_id))
    return _delivered_to(conn, d.id, who) is not None


def can_see(flow: "DocumentFlow", doc_id: int, person_id: str) -> bool:
    with flow.home.store.read() as conn:
        try:
            d = flow._read_doc(conn, doc_id)
        except DocumentNotFound:
            return False
        return _visible(flow, conn, d, viewer(flow, person_id))


def require_visible(flow: "DocumentFlow", doc_id: int, person_id: str) -> None:
    """DocumentNotFound — the same answer as for an id that does not exist — unless the person may
    see the document."""
    if not can_see(flow, doc_id, person_id):
        raise DocumentNotFound(f"no document {doc_id}", doc=doc_id)


# --------------------------------------------------------------------------- lists

def _summary(d: "_Doc", delivery_state: str | None = None) -> DocumentSummary:
    step = d.step
    step_title = step.title if step else ("退回拟稿人" if d.row["step"] == "draft" else None)
    return DocumentSummary(id=d.id, title=d.elements.title, kind=d.row["kind"], organisation=d.org.name,
                           state=d.state, step_title=step_title, doc_number=d.elements.doc_number,
                           updated_at=d.row["updated_at"], delivery_state=delivery_state)


def documents(flow: "DocumentFlow", person_id: str, box: str, *, limit: int = 200) -> list[DocumentSummary]:
    """The person's 已办 (`done`), 发文 (`outgoing`) or 收文 (`incoming`) list, newest first (待办 is
    `DocumentFlow.todo`)."""
    if box not in BOXES or box == "todo":
        raise ValueError(f"box is one of done, outgoing, incoming, not {box!r}")
    who = viewer(flow, person_id)
    if who.organisation is None:
        return []
    out: list[DocumentSummary] = []
    with flow.home.store.read() as conn:
        org_id = flow._org_id(conn, who.organisation)
        query = sa.select(t.doc_documents.c.id).order_by(t.doc_documents.c.updated_at.desc(),
                                                         t.doc_documents.c.id.desc())
        if box == "done":
            query = query.where(t.doc_documents.c.id.in_(
                sa.select(t.doc_actions.c.doc_id).where(t.doc_actions.c.actor == person_id)))
        elif box == "outgoing":
            query = query.where(t.doc_documents.c.org_id == org_id, t.doc_documents.c.kind.in_(OUTGOING_KINDS))
        else:
            query = query.where(t.doc_documents.c.org_id == org_id, t.doc_documents.c.kind == "incoming")
        for (doc_id,) in conn.execute(query.limit(limit * 4)):
            d = flow._read_doc(conn, doc_id)
            if _visible(flow, conn, d, who):
                out.append(_summary(d))
            if len(out) >= limit:
                break
        if box == "incoming" and who.roles & {"receiver", "secretary"}:
            waiting = conn.execute(sa.select(t.doc_deliveries.c.doc_id, t.doc_deliveries.c.state).where(
                t.doc_deliveries.c.org_id == org_id, t.doc_deliveries.c.state.in_(("delivered", "opened")))
                .order_by(t.doc_deliveries.c.id.desc())).all()
            out = [_summary(flow._read_doc(conn, doc_id), state) for doc_id, state in waiting] + out
    return out


# --------------------------------------------------------------------------- what next

def _people_choices(org: Any, people: list[str]) -> tuple[tuple[str, str], ...]:
    return tuple((p, org.person(p).label() if org.has_person(p) else p) for p in people)


def _candidates(flow: "DocumentFlow", d: "_Doc", step: Any, state: dict[str, Any]) -> list[str]:
    try:
        people, _ = flow._candidates(d.org, d.route, step, drafter=d.drafter, step_state=state)
    except (RouteError, DirectoryError):
        return []
    return people


def next_actions(flow: "DocumentFlow", doc_id: int, person_id: str) -> list[NextAction]:
    """The actions the document's route offers the person now (empty: nothing for them)."""
    who = viewer(flow, person_id)
    with flow.home.store.read() as conn:
        d = flow._read_doc(conn, doc_id)
        if not _visible(flow, conn, d, who):
            raise DocumentNotFound(f"no document {doc_id}", doc=doc_id)
        delivery = _delivered_to(conn, doc_id, who) if d.org.name != who.organisation else None
    out: list[NextAction] = []
    org, route = d.org, d.route
    if delivery is not None:
        if "receiver" in who.roles and delivery in ("delivered", "opened"):
            out.append(NextAction("open", ACTION_LABELS["open"]))
            out.append(NextAction("receive", ACTION_LABELS["receive"],
                                  note="签收前再次验证印章；验证不通过则退回发文机关"))
        return out
    secretary = "secretary" in who.roles and d.org.name == who.organisation
    if d.state in OPEN_STATES and person_id in d.pending:
        outgoing = d.row["kind"] in OUTGOING_KINDS
        if d.row["step"] == "draft":
            first = route.steps[0]
            out.append(NextAction("revise", ACTION_LABELS["revise"]))
            out.append(NextAction("forward", "重新提交", choices=_people_choices(org, _candidates(flow, d, first, {}))))
            return out
        step = d.step
        assert step is not None
        returnable = step.type in RETURNABLE_TYPES and not route.incoming
        if step.type == "seal":
            out.append(NextAction("seal", ACTION_LABELS["seal"], note="在盖章页拖放印章，输入印章密码"))
        elif step.type == "send":
            others = [o.name for o in flow.organisations() if o.name != org.name]
            out.append(NextAction("send", ACTION_LABELS["send"], choices=tuple((o, o) for o in others),
                                  choice_required=True, multiple=True,
                                  note="发送前再次验证印章、证书链和吊销状态"))
        else:
            state = dict(d.step_state)
            nxt = route.after(step.id)
            expected = COMPLETING_ACTION[step.type]
            if step.countersign and step.type == "review":
                state_after = dict(state, countersigned=list(state.get("countersigned", [])) + [person_id])
                more = _candidates(flow, d, step, state_after)
                if more:
                    out.append(NextAction("forward", "会签：转下一位领导", opinion_required=True,
                                          choices=_people_choices(org, more), choice_required=True))
            if step.type == "read":
                state_after = dict(state, read=list(state.get("read", [])) + [person_id])
                more = _candidates(flow, d, step, state_after)
                if more:
                    out.append(NextAction("forward", "阅毕：转下一位领导", opinion_required=True,
                                          choices=_people_choices(org, more), choice_required=True))
                    expected = None       # the step is complete only when every leader has read
            if step.type == "distribute":
                departments = tuple((x, x) for x in org.departments if org.heads(x))
                out.append(NextAction("forward", "分送办理部门", choices=departments, choice_required=True))
            elif expected is not None:
                carried = {k: v for k, v in state.items() if k == "handling_department"}
                choices = _people_choices(org, _candidates(flow, d, nxt, carried)) if nxt is not None else ()
                out.append(NextAction(expected, ACTION_LABELS[expected], opinion_required=step.opinion_required,
                                      choices=choices if len(choices) > 1 else ()))
            if outgoing and step.type in ("review", "sign_off"):
                out.append(NextAction("revise", ACTION_LABELS["revise"]))
        if returnable:
            out.append(NextAction("return", ACTION_LABELS["return"], opinion_required=True))
        return out
    if d.state == "sent" and secretary:
        with flow.home.store.read() as conn:
            deliveries = flow._deliveries(conn, doc_id)
        latest: dict[str, Any] = {}
        for x in deliveries:
            latest[x.organisation] = x
        if any(x.state == "delivered" for x in latest.values()) and \
                not any(x.state in ("opened", "received") for x in latest.values()):
            out.append(NextAction("recall", ACTION_LABELS["recall"], note="收文机关打开前可以撤回"))
        returned = [o for o, x in latest.items() if x.state in ("returned", "recalled")]
        if returned:
            out.append(NextAction("send", "重新发送", choices=tuple((o, o) for o in returned),
                                  choice_required=True, multiple=True))
        if latest and all(x.state in ("received", "returned", "recalled") for x in latest.values()) \
                and any(x.state == "received" for x in latest.values()):
            out.append(NextAction("archive", ACTION_LABELS["archive"]))
    elif d.state == "done" and secretary and d.row["kind"] == "incoming":
        out.append(NextAction("archive", ACTION_LABELS["archive"]))
    return out


__all__ = ["BOXES", "ACTION_LABELS", "STATE_LABELS", "DocumentSummary", "NextAction", "Viewer", "viewer",
           "can_see", "require_visible", "documents", "next_actions"]

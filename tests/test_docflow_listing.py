"""docflow.listing — what a person sees of the flow and what the route offers them next — along a
whole upward document: drafted, approved, signed off, registered, sealed, checked, sent to another
organisation, found in its receiver's inbox (DocumentFlow.todo) and received."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console_support import OTHER, SEAL_PASSWORD, document_pdf, make_world


@pytest.fixture(scope="module")
def walked(tmp_path_factory: pytest.TempPathFactory) -> Any:
    world = make_world(tmp_path_factory.mktemp("listing") / "home", people=False)
    flow, a = world.flow(), world.actor
    doc = flow.new_document(kind="upward", title="关于列表的请示", pdf=document_pdf("关于列表的请示"), actor=a("sun"),
                            to="chen")
    stages: dict[str, Any] = {"drafted": _snapshot(flow, doc.id)}
    flow.act(doc.id, actor=a("chen"), action="approve", opinion="同意")
    flow.act(doc.id, actor=a("zhang"), action="approve", opinion="同意", to="li")
    flow.act(doc.id, actor=a("li"), action="approve", opinion="同意")
    flow.act(doc.id, actor=a("wu"), action="sign-off", opinion="同意")
    flow.act(doc.id, actor=a("ma"), action="register", opinion="登记")
    flow.seal(doc.id, actor=a("wang"), seal=world.seals["北京市测试局"], password=SEAL_PASSWORD)
    flow.act(doc.id, actor=a("sun"), action="approve", opinion="核对无误")
    stages["to send"] = _snapshot(flow, doc.id)
    flow.send(doc.id, actor=a("liu"), to=[OTHER])
    stages["sent"] = _snapshot(flow, doc.id)
    receipt = flow.receive(doc.id, actor=a("t_liu"))
    stages["received"] = _snapshot(flow, doc.id)
    return world, flow, doc.id, receipt, stages


PEOPLE = ("sun", "chen", "zhao", "zhang", "li", "wu", "ma", "wang", "liu", "t_sun", "t_liu", "t_wang")


def _snapshot(flow: Any, doc_id: int) -> dict[str, Any]:
    from docflow.listing import can_see, documents, next_actions
    out: dict[str, Any] = {}
    for person in PEOPLE:
        visible = can_see(flow, doc_id, person)
        out[person] = {"sees": visible,
                       "actions": [a.action for a in next_actions(flow, doc_id, person)] if visible else None,
                       "todo": [(i.what, i.doc_id, i.title, i.organisation) for i in flow.todo(person)],
                       "done": [d.id for d in documents(flow, person, "done")],
                       "outgoing": [d.id for d in documents(flow, person, "outgoing")],
                       "incoming": [(d.id, d.delivery_state) for d in documents(flow, person, "incoming")]}
    return out


def test_who_sees_the_document(walked: Any) -> None:
    world, flow, doc_id, receipt, stages = walked
    drafted = stages["drafted"]
    # the bureau's people on its route see it (the other head of the drafter's department too); nobody else
    assert {p for p, s in drafted.items() if s["sees"]} == {"sun", "chen", "zhao", "zhang", "li", "wu", "ma", "wang",
                                                           "liu"}
    sent = stages["sent"]
    assert sent["t_liu"]["sees"] and not sent["t_sun"]["sees"] and not sent["t_wang"]["sees"]
    from docflow.listing import can_see, require_visible
    from docflow import DocumentNotFound
    assert not can_see(flow, 999999, "sun")
    with pytest.raises(DocumentNotFound) as missing:
        require_visible(flow, 999999, "t_sun")
    with pytest.raises(DocumentNotFound) as hidden:
        require_visible(flow, doc_id, "t_sun")
    assert str(hidden.value) == str(missing.value).replace("999999", str(doc_id))


def test_what_the_route_offers_each_person(walked: Any) -> None:
    world, flow, doc_id, receipt, stages = walked
    drafted = stages["drafted"]
    assert drafted["chen"]["actions"] == ["approve", "revise", "return"]
    assert drafted["zhang"]["actions"] == [] and drafted["sun"]["actions"] == []
    assert stages["to send"]["liu"]["actions"] == ["send", "return"]
    assert stages["sent"]["t_liu"]["actions"] == ["open", "receive"]
    assert stages["sent"]["liu"]["actions"] == ["recall"]
    assert stages["received"]["liu"]["actions"] == ["archive"]


def test_the_lists(walked: Any) -> None:
    world, flow, doc_id, receipt, stages = walked
    title = "关于列表的请示"
    assert stages["drafted"]["chen"]["todo"] == [("step", doc_id, title, "北京市测试局")]
    assert stages["sent"]["t_liu"]["todo"] == [("inbox", doc_id, title, "北京市测试局")]
    assert stages["sent"]["t_liu"]["incoming"] == [(doc_id, "delivered")]
    assert stages["received"]["t_liu"]["todo"][0][0] == "step"                 # the incoming document's first step
    incoming_id = receipt.incoming_doc_id
    assert stages["received"]["t_liu"]["todo"][0][1] == incoming_id
    assert (incoming_id, None) in stages["received"]["t_liu"]["incoming"]
    for person in ("chen", "zhang", "li", "wu", "ma", "wang", "sun", "liu"):
        assert doc_id in stages["received"][person]["done"], person
    assert doc_id in stages["drafted"]["sun"]["outgoing"] and not stages["drafted"]["t_sun"]["outgoing"]

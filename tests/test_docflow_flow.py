"""The approval routes up to the seal step: who acts when, opinions, countersigning, the only-head
exception, returns, re-routing after a substantive change, numbering — and every refusal leaves the
database exactly as it was (compared row by row with the sqlite3 module)."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from docflow import (Attachment, AttachmentError, DocumentNotFound, ElementError, FlowStateError, NotAllowed,
                     RouteError)
from docflow.elements import china_date, chinese_date

from docflow_support import (DOWNWARD_TO_SEAL, ORG, UPWARD_TO_SEAL, audit_actions, bureau, document_pdf,
                             example_org, new_upward, tables, walk)


@pytest.fixture
def b(tmp_path: Path):
    return bureau(tmp_path)


def refused(b, error, match, call):
    """`call` raises `error` matching `match`, and no row of any docflow table or the audit log changed."""
    before = tables(b)
    with pytest.raises(error, match=match) as info:
        call()
    assert tables(b) == before, "a refused operation changed the database"
    return info.value


# ---------------------------------------------------------------------------- happy paths

def test_upward_route_with_two_leaders_countersigning(b) -> None:
    doc = new_upward(b)
    assert (doc.state, doc.step, doc.pending) == ("in_flow", "department_review", ("chen", "zhao"))
    assert doc.elements.issuer == ORG and doc.elements.classification == "无"
    seen = []
    for user, action, to in UPWARD_TO_SEAL:
        b.tick()
        assert any(i.doc_id == doc.id for i in b.flow.todo(user)), f"{user} does not see the document"
        doc = b.flow.act(doc.id, actor=b.actor(user), action=action, opinion=f"{user}意见", to=to)
        seen.append((doc.step, doc.pending))
    assert seen == [("office_check", ("zhang",)), ("leader_review", ("li",)), ("leader_review", ("zhou",)),
                    ("sign_off", ("wu",)), ("registration", ("ma",)), ("seal", ("wang",))]
    year = china_date(b.clock.now()).year
    assert doc.elements.signer == "吴局长"                      # 签发人 written by the sign-off step
    assert doc.elements.date == chinese_date(china_date(b.clock.now()))
    assert doc.elements.doc_number == f"京测〔{year}〕1号"
    assert doc.signed_off_version == 1 and doc.signed_off_by == "wu"
    log = b.flow.log(doc.id)
    assert [(e.actor, e.action, e.opinion) for e in log] == [
        ("sun", "new", None), ("chen", "approve", "chen意见"), ("zhang", "approve", "zhang意见"),
        ("li", "forward", "li意见"), ("zhou", "approve", "zhou意见"), ("wu", "sign-off", "wu意见"),
        ("ma", "register", "ma意见")]
    assert [e.seq for e in log] == list(range(1, 8))            # numbered in the insert: one after the last
    assert log[4].details["countersigned"] == ["li", "zhou"]
    # every decision is on the signed-off version; the registry's entry records the typeset version it made
    signed_off = next(v for v in doc.versions if v.number == doc.signed_off_version).digests
    assert all(e.sha256 == signed_off.sha256 and e.sm3 == signed_off.sm3 for e in log[:-1])
    assert (log[-1].version, log[-1].sha256) == (2, doc.digests.sha256) and doc.current_version == 2
    assert [v.purpose for v in doc.versions] == ["draft", "typeset"]
    # each action is one audit event: actor, time, opinion, document digest
    events = audit_actions(b, f"doc:{doc.id}")
    assert [(e[0], e[1]) for e in events] == [(e.actor, f"doc.{e.action}") for e in log]
    for event, entry in zip(events, log):
        details = json.loads(event[3])
        digests = signed_off if entry.action != "register" else doc.digests
        assert details["opinion"] == entry.opinion and event[4] == digests.sha256
        assert details["sm3"] == digests.sm3


def test_downward_route_supervising_leader_signs_off(b) -> None:
    doc = b.flow.new_document(kind="downward", title="关于印发试点方案的通知", pdf=document_pdf(), actor=b.actor("sun"),
                              main_recipients=["各区测试分局"], copy_to=["市政府办公厅"], urgency="加急")
    doc = walk(b, doc.id, DOWNWARD_TO_SEAL)
    assert doc.step == "seal" and doc.elements.signer == "李副局长"
    assert [e.step for e in b.flow.log(doc.id)][1:] == ["department_review", "office_check", "sign_off",
                                                       "registration"]
    assert doc.elements.urgency == "加急" and doc.elements.main_recipients == ("各区测试分局",)
    parallel = b.flow.new_document(kind="parallel", title="关于商请协助的函", pdf=document_pdf("关于商请协助的函"),
                                   actor=b.actor("sun"))
    assert parallel.route_name == "下行文/平行文"


def test_numbers_count_per_organisation_and_year(b) -> None:
    first = walk(b, new_upward(b).id, UPWARD_TO_SEAL)
    second = walk(b, new_upward(b, pdf=document_pdf(body="第二份文件正文。")).id, UPWARD_TO_SEAL)
    year = china_date(b.clock.now()).year
    assert (first.elements.doc_number, second.elements.doc_number) == (f"京测〔{year}〕1号", f"京测〔{year}〕2号")
    b.clock.advance(timedelta(days=366))
    third = walk(b, new_upward(b, pdf=document_pdf(body="第三份文件正文。")).id, UPWARD_TO_SEAL)
    assert third.elements.doc_number == f"京测〔{year + 1}〕1号"


def test_without_to_every_holder_sees_it_and_the_first_to_act_takes_it(b) -> None:
    doc = walk(b, new_upward(b).id, [("chen", "approve", None), ("zhang", "approve", None)])
    assert doc.pending == ("li", "zhou")
    assert [i.doc_id for i in b.flow.todo("li")] == [doc.id] == [i.doc_id for i in b.flow.todo("zhou")]
    doc = walk(b, doc.id, [("zhou", "approve", None)])            # zhou took it, and is the last countersigner
    assert doc.step == "sign_off" and b.flow.todo("li") == []
    refused(b, NotAllowed, "out of turn", lambda: b.flow.act(doc.id, actor=b.actor("li"), action="approve",
                                                             opinion="同意"))


def test_drafter_who_is_a_head_goes_to_another_head(b) -> None:
    doc = new_upward(b, drafter="chen")
    assert doc.pending == ("zhao",)
    refused(b, NotAllowed, "chen drafted document 1: nobody approves their own draft",
            lambda: b.flow.act(doc.id, actor=b.actor("chen"), action="approve", opinion="同意"))


def test_only_head_reviews_own_draft_and_the_exception_is_recorded(tmp_path: Path) -> None:
    data = example_org()
    data["people"] = [p for p in data["people"] if p["id"] != "zhao"]   # chen is now the only head of 业务处
    b = bureau(tmp_path, org=data)
    doc = new_upward(b, drafter="chen")
    assert doc.pending == ("chen",) and doc.step_state["only_head"] == "chen"
    new_entry = b.flow.log(doc.id)[0]
    assert new_entry.details["exception"] == "only_head"
    doc = walk(b, doc.id, [("chen", "approve", None)])
    entry = b.flow.log(doc.id)[-1]
    assert (entry.actor, entry.step, entry.details["exception"]) == ("chen", "department_review", "only_head")
    assert "only_head" not in doc.step_state                     # the exception covers that step only
    audit = json.loads(audit_actions(b, f"doc:{doc.id}")[-1][3])
    assert audit["exception"] == "only_head"
    # later approval steps stay closed to the drafter: chen cannot also be a leader reviewing it
    assert doc.pending == ("zhang",)


def test_route_that_cannot_work_for_the_drafter_is_refused_at_creation(b) -> None:
    # zhang is the only office head: nobody but the drafter could do the office check
    refused(b, RouteError, "nobody in 北京市测试局 may act on step office_check",
            lambda: new_upward(b, drafter="zhang"))
    # a leader belongs to no department: nobody could do the department review
    refused(b, RouteError, "li belongs to no department", lambda: new_upward(b, drafter="li"))


def test_return_to_drafter_then_resubmit_starts_over(b) -> None:
    doc = walk(b, new_upward(b).id, [("chen", "approve", None)])
    refused(b, NotAllowed, "returning a document needs an opinion",
            lambda: b.flow.act(doc.id, actor=b.actor("zhang"), action="return"))
    b.tick()
    doc = b.flow.act(doc.id, actor=b.actor("zhang"), action="return", opinion="请补充试点范围")
    assert (doc.state, doc.step, doc.pending) == ("draft", "draft", ("sun",))
    assert b.flow.todo("sun")[0].step_title == "退回拟稿人"
    refused(b, NotAllowed, "out of turn", lambda: b.flow.act(doc.id, actor=b.actor("chen"), action="approve",
                                                             opinion="x"))
    refused(b, NotAllowed, "resubmit it with --action forward",
            lambda: b.flow.act(doc.id, actor=b.actor("sun"), action="approve", opinion="x"))
    b.tick()
    doc = b.flow.revise(doc.id, actor=b.actor("sun"), pdf=document_pdf(body="补充了试点范围的正文。"), note="补充试点范围")
    assert doc.current_version == 2 and doc.step == "draft"
    doc = b.flow.act(doc.id, actor=b.actor("sun"), action="forward", opinion="已修改", to="zhao")
    assert (doc.step, doc.pending) == ("department_review", ("zhao",))
    doc = walk(b, doc.id, [("zhao", "approve", None)] + UPWARD_TO_SEAL[1:])
    assert doc.step == "seal" and doc.signed_off_version == 2 and doc.current_version == 3


def test_return_after_sign_off_clears_the_signature(b) -> None:
    doc = walk(b, new_upward(b).id, UPWARD_TO_SEAL[:5])
    assert doc.step == "registration" and doc.elements.signer == "吴局长"
    doc = b.flow.act(doc.id, actor=b.actor("ma"), action="return", opinion="格式不符")
    assert doc.signed_off_version is None and doc.elements.signer is None and doc.elements.date is None


def test_substantive_change_after_sign_off_goes_back_to_the_signer(b) -> None:
    doc = walk(b, new_upward(b).id, UPWARD_TO_SEAL)                # at the seal step, numbered
    number = doc.elements.doc_number
    refused(b, NotAllowed, "ma may not revise document 1",
            lambda: b.flow.revise(doc.id, actor=b.actor("ma"), pdf=document_pdf(body="改动")))
    b.tick()
    doc = b.flow.revise(doc.id, actor=b.actor("wang"), pdf=document_pdf(body="签发后改动了正文。"),
                        note="改正错字")
    # versions: 1 the draft, 2 the registry's typesetting, 3 the revision
    assert (doc.step, doc.pending, doc.current_version) == ("sign_off", ("wu",), 3)
    assert doc.signed_off_version is None and doc.elements.signer is None
    entry = b.flow.log(doc.id)[-1]
    assert entry.details["rerouted_to"] == "sign_off" and entry.details["signer"] == "wu"
    doc = walk(b, doc.id, [("wu", "sign-off", None), ("ma", "register", None)])
    assert doc.step == "seal" and doc.signed_off_version == 3 and doc.current_version == 4
    assert doc.elements.doc_number == number                      # the number is kept
    assert b.flow.log(doc.id)[-1].details["kept_number"] is True


def test_revision_before_sign_off_stays_at_the_step(b) -> None:
    doc = walk(b, new_upward(b).id, [("chen", "approve", None)])
    doc = b.flow.revise(doc.id, actor=b.actor("zhang"), pdf=document_pdf(body="办公室修改后的正文。"))
    assert (doc.step, doc.pending, doc.current_version) == ("office_check", ("zhang",), 2)
    refused(b, ElementError, "byte for byte version 2",
            lambda: b.flow.revise(doc.id, actor=b.actor("zhang"), pdf=document_pdf(body="办公室修改后的正文。")))


# ---------------------------------------------------------------------------- refusals

def test_acting_out_of_turn_is_refused(b) -> None:
    stranger = b.unsigned("stranger")          # an account, but no person of the organisation
    doc = new_upward(b)
    for user in ("zhang", "wu", "wang", "liu", "sun"):
        error = refused(b, NotAllowed, "out of turn|nobody approves their own draft",
                        lambda: b.flow.act(doc.id, actor=b.actor(user), action="approve", opinion="同意"))
        assert error.data["user"] == user
    refused(b, NotAllowed, "not a person of 北京市测试局",
            lambda: b.flow.act(doc.id, actor=stranger, action="approve", opinion="同意"))


def test_wrong_action_for_the_step_is_refused(b) -> None:
    doc = new_upward(b)
    refused(b, NotAllowed, "takes --action approve", lambda: b.flow.act(doc.id, actor=b.actor("chen"),
                                                                        action="sign-off",
                                                                       opinion="同意"))
    doc = walk(b, doc.id, UPWARD_TO_SEAL)
    refused(b, NotAllowed, "use yinxin doc seal", lambda: b.flow.act(doc.id, actor=b.actor("wang"), action="approve"))
    refused(b, NotAllowed, "unknown action", lambda: b.flow.act(doc.id, actor=b.actor("wang"), action="stamp"))


def test_approval_needs_a_saved_opinion(b) -> None:
    doc = new_upward(b)
    for opinion in (None, "", "   "):
        refused(b, NotAllowed, "needs a saved opinion",
                lambda: b.flow.act(doc.id, actor=b.actor("chen"), action="approve", opinion=opinion))


def test_guard_reports_every_problem_at_once(b) -> None:
    doc = new_upward(b)
    walk(b, doc.id, [("chen", "approve", None)])
    error = refused(b, NotAllowed, "needs a saved opinion",
                    lambda: b.flow.act(doc.id, actor=b.actor("zhang"), action="approve", opinion="", to="wu"))
    assert len(error.data["problems"]) == 2
    assert "--to wu" in error.data["problems"][1]


def test_to_must_name_someone_the_next_step_allows(b) -> None:
    doc = walk(b, new_upward(b).id, [("chen", "approve", None)])
    refused(b, NotAllowed, "--to wu: the next step leader_review", lambda: b.flow.act(
        doc.id, actor=b.actor("zhang"), action="approve", opinion="同意", to="wu"))
    doc = walk(b, doc.id, [("zhang", "approve", "li")])
    refused(b, NotAllowed, "needs --to WHO", lambda: b.flow.act(doc.id, actor=b.actor("li"), action="forward",
                                                                opinion="同意"))
    refused(b, NotAllowed, "--to wu", lambda: b.flow.act(doc.id, actor=b.actor("li"), action="forward", opinion="同意",
                                                         to="wu"))
    refused(b, NotAllowed, "--to li", lambda: b.flow.act(doc.id, actor=b.actor("li"), action="forward", opinion="同意",
                                                         to="li"))


def test_classified_content_never_enters(b) -> None:
    for level in ("秘密", "机密", "绝密", "secret"):
        refused(b, ElementError, "classified content never enters the system",
                lambda: new_upward(b, classification=level))
    assert new_upward(b, classification="无").elements.classification == "无"


def test_bad_elements_and_bodies_are_refused(b) -> None:
    refused(b, ElementError, "紧急程度", lambda: new_upward(b, urgency="很急"))
    refused(b, ElementError, "标题", lambda: new_upward(b, title="  "))
    refused(b, ElementError, "is not a PDF", lambda: new_upward(b, pdf=b"hello"))
    refused(b, ElementError, "not a readable PDF", lambda: new_upward(b, pdf=b"%PDF-1.7\ngarbage"))
    refused(b, ElementError, "a drafted document is one of", lambda: new_upward(b, kind="incoming"))


def test_attachments_body_is_never_one_and_declared_ones_are_present(b) -> None:
    body = document_pdf()
    refused(b, AttachmentError, "is the body itself",
            lambda: new_upward(b, attachments=[Attachment("正文副本.pdf", body)]))
    refused(b, AttachmentError, "declared attachment '试点方案' is missing",
            lambda: new_upward(b, declared_attachments=["试点方案"]))
    refused(b, AttachmentError, "is the same file as",
            lambda: new_upward(b, attachments=[Attachment("a.pdf", b"%PDF-x"), Attachment("b.pdf", b"%PDF-x")]))
    refused(b, AttachmentError, "is empty", lambda: new_upward(b, attachments=[Attachment("a.txt", b"")]))
    plan = document_pdf("试点方案", body="试点方案正文。")
    doc = new_upward(b, attachments=[Attachment("试点方案.pdf", plan)], declared_attachments=["试点方案"])
    assert [a.name for a in doc.attachments] == ["试点方案.pdf"] and doc.elements.attachments == ("试点方案",)
    assert b.flow.attachment(doc.id, 1) == ("试点方案.pdf", plan)
    walk(b, doc.id, [("chen", "approve", None)])
    refused(b, AttachmentError, "the body is never an attachment",
            lambda: b.flow.revise(doc.id, actor=b.actor("zhang"), pdf=plan))


def test_unknown_document_and_person(b) -> None:
    with pytest.raises(DocumentNotFound):
        b.flow.act(99, actor=b.actor("chen"), action="approve", opinion="同意")
    with pytest.raises(DocumentNotFound):
        b.flow.show(99)
    from docflow import DirectoryError
    with pytest.raises(DirectoryError, match="nobody in the organisation directory"):
        b.flow.todo("nobody")


def test_sealing_before_sign_off_is_refused_without_touching_anything(b) -> None:
    doc = walk(b, new_upward(b).id, UPWARD_TO_SEAL[:4])            # leaders done, not signed off
    refused(b, FlowStateError, "not signed off .*no blank sealing",
            lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=b"whatever-Pw-1"))
    doc = walk(b, doc.id, [("wu", "sign-off", None)])              # signed off, not registered
    refused(b, FlowStateError, "not registered",
            lambda: b.flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=b"whatever-Pw-1"))
    refused(b, FlowStateError, "not sealed",
            lambda: b.flow.send(doc.id, actor=b.actor("liu"), to=["天津市测试局"]))

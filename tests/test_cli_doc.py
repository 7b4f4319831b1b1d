"""`yinxin org …` and `yinxin doc …` through the real console script: the walk-through of the README,
each person acting from their own session (their signing key unlocked with their PIN), every decision
signed, --json on every command, one-line errors with the right exit codes, passwords never on argv."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ca_helpers import write_session
from docflow_support import (EXAMPLE_ORG, ORG, OTHER, SEAL_PASSWORD, VECTORS, bureau, document_pdf, other_org,
                             template_keys, with_seals)
from pki.accounts.accounts import Accounts
from pki.accounts.testing import TEST_PIN
from pki.home import Home


class Sessions:
    """Session files of the people of a home, made on first use (the person's signing key unlocked
    with the PIN the prepared homes use), beside the home."""

    def __init__(self, home: Path, directory: Path) -> None:
        self.home, self.directory = home, directory
        self._made: dict[str, str] = {}

    def __getitem__(self, person: str) -> str:
        if person not in self._made:
            opened = Home.open(self.home)
            pin = TEST_PIN if Accounts.of(opened).active_key(person) else None   # a certified person
            roles = ("admin",) if person == "admin" else ()
            self._made[person] = str(write_session(opened, self.directory / f"{person}.session", person, *roles,
                                                   pin=pin))
            opened.store.dispose()
        return self._made[person]


@pytest.fixture
def sessions(home: Path, tmp_path: Path) -> Sessions:
    return Sessions(home, tmp_path / "sessions")


@pytest.fixture
def org_home(home: Path, tmp_path: Path) -> Path:
    """The conftest home with both organisations, the CA and both seals (set up through the library)."""
    b = bureau(tmp_path, path=home)
    b.flow.load_organisation_data(other_org(), actor=b.admin())
    with_seals(b, (ORG, "official-sm2", "wang"), (OTHER, "tianjin-sm2", "t_wang"))
    b.home.store.dispose()
    return home


def ok(run_cli, *args: str, json_out: bool = False):
    code, out, err = run_cli([*(["--json"] if json_out else []), *args])
    assert code == 0, f"yinxin {' '.join(args)} failed ({code}): {err}"
    assert "Traceback" not in err
    return json.loads(out) if json_out else out


def fails(run_cli, code: int, message: str, *args: str) -> str:
    rc, out, err = run_cli(list(args))
    assert rc == code, (rc, out, err)
    assert "Traceback" not in err and "Traceback" not in out
    lines = [line for line in err.splitlines() if line.startswith("yinxin: error:")]
    assert lines and message in lines[0], err
    return err


def test_org_load_show_and_bad_files(run_cli, home: Path, sessions: Sessions) -> None:
    admin = ["--session", sessions["admin"]]
    out = ok(run_cli, "org", "load", str(EXAMPLE_ORG), *admin)
    assert f"organisation {ORG} loaded (version 1, 10 people, seal official-sm2)" in out
    assert "not in this home yet" in out
    assert "accounts made for 10 people" in out
    again = ok(run_cli, "org", "load", str(EXAMPLE_ORG), *admin, json_out=True)
    assert again["version"] == 1 and again["changed"] is False
    shown = ok(run_cli, "org", "show", ORG, json_out=True)
    assert shown["departments"]["业务处"]["heads"] == ["chen", "zhao"]
    assert shown["routes"]["upward"]["steps"][2]["countersign"] is True
    text = ok(run_cli, "org", "show", ORG)
    assert "业务处: heads chen, zhao" in text and "局长签发" in text
    fails(run_cli, 2, "unknown role(s) 'mayor'", "org", "load", str(VECTORS / "orgs" / "bad-unknown-role.yaml"),
          *admin)
    fails(run_cli, 2, "sun does not hold the role admin", "org", "load", str(EXAMPLE_ORG), "--session", sessions["sun"])
    fails(run_cli, 2, "log in first", "org", "load", str(EXAMPLE_ORG))
    fails(run_cli, 2, "no organisation named", "org", "show", "不存在局")
    rc, out, _ = run_cli(["--json", "org", "show", "不存在局"])
    assert rc == 2 and json.loads(out)["error"] == "DirectoryError"


def test_walk_through_upward_document(run_cli, org_home: Path, tmp_path: Path, sessions: Sessions) -> None:
    body = tmp_path / "body.pdf"
    body.write_bytes(document_pdf())
    plan = tmp_path / "试点方案.pdf"
    plan.write_bytes(document_pdf("试点方案", body="试点方案正文。"))
    pw = tmp_path / "seal.pw"
    pw.write_bytes(SEAL_PASSWORD + b"\n")
    doc = ok(run_cli, "doc", "new", "--kind", "upward", "--title", "关于开展电子印章试点工作的请示",
             "--pdf", str(body), "--session", sessions["sun"], "--attach", str(plan), "--declare", "试点方案",
             "--main-to", "北京市人民政府").strip()
    assert doc == "1"
    todo = ok(run_cli, "doc", "todo", "--user", "chen", json_out=True)        # reading: any person's list
    assert [i["doc_id"] for i in todo["items"]] == [1]
    fails(run_cli, 2, "out of turn", "doc", "act", doc, "--session", sessions["zhang"], "--action", "approve",
          "--opinion", "同意")
    fails(run_cli, 2, "needs a saved opinion", "doc", "act", doc, "--session", sessions["chen"], "--action", "approve")
    for args in (["--session", sessions["chen"], "--action", "approve", "--opinion", "同意"],
                 ["--session", sessions["zhang"], "--action", "approve", "--opinion", "同意", "--to", "li"],
                 ["--session", sessions["li"], "--action", "forward", "--opinion", "同意，请周副局长会签", "--to", "zhou"],
                 ["--session", sessions["zhou"], "--action", "approve", "--opinion", "同意"],
                 ["--session", sessions["wu"], "--action", "sign-off", "--opinion", "签发"],
                 ["--session", sessions["ma"], "--action", "register"]):
        ok(run_cli, "doc", "act", doc, *args)
    shown = ok(run_cli, "doc", "show", doc, json_out=True)
    assert shown["elements"]["signer"] == "吴局长" and shown["elements"]["doc_number"].startswith("京测〔")
    # the seal password comes from a file (or the environment), never from argv
    rc, _, err = run_cli(["doc", "seal", doc, "--session", sessions["wang"], "--seal", "official-sm2", "--password",
                          "x"])
    assert rc == 2 and "No such option" in err
    fails(run_cli, 2, "give one of --at, --anchor, --field", "doc", "seal", doc, "--session", sessions["wang"],
          "--seal",
          "official-sm2", "--password-file", str(pw), "--anchor", ORG, "--at", "150,60")
    out = ok(run_cli, "doc", "seal", doc, "--session", sessions["wang"], "--seal", "official-sm2", "--password-file",
             str(pw))
    assert "sealed with official-sm2" in out and "拟稿人核对盖章件" in out
    ok(run_cli, "doc", "act", doc, "--session", sessions["sun"], "--action", "approve", "--opinion", "已核对")
    fails(run_cli, 2, "cannot send a document to itself", "doc", "send", doc, "--session", sessions["liu"], "--to", ORG)
    ok(run_cli, "doc", "send", doc, "--session", sessions["liu"], "--to", OTHER)
    inbox = ok(run_cli, "doc", "todo", "--session", sessions["t_liu"])
    assert f"收文 from {ORG}" in inbox
    opened = tmp_path / "opened.pdf"
    ok(run_cli, "doc", "open", doc, "--session", sessions["t_liu"], "--out", str(opened))
    fails(run_cli, 2, "can no longer be recalled", "doc", "recall", doc, "--session", sessions["liu"])
    receipt = ok(run_cli, "doc", "receive", doc, "--session", sessions["t_liu"], json_out=True)
    assert receipt["accepted"] is True and receipt["report"]["valid"] is True
    incoming = str(receipt["incoming_doc_id"])
    for args in (["--session", sessions["t_liu"], "--action", "register"],
                 ["--session", sessions["t_office"], "--action", "approve", "--opinion", "请局领导阅示"],
                 ["--session", sessions["t_li"], "--action", "approve", "--opinion", "阅"],
                 ["--session", sessions["t_zhou"], "--action", "approve", "--opinion", "阅"],
                 ["--session", sessions["t_wu"], "--action", "approve", "--opinion", "阅，请综合处办理"],
                 ["--session", sessions["t_liu"], "--action", "forward", "--to", "综合处"],
                 ["--session", sessions["t_head"], "--action", "approve", "--opinion", "已办理"],
                 ["--session", sessions["t_liu"], "--action", "approve", "--opinion", "办结"]):
        ok(run_cli, "doc", "act", incoming, *args)
    out_dir = tmp_path / "archive"
    archived = ok(run_cli, "doc", "archive", doc, "--session", sessions["liu"], "--out", str(out_dir), json_out=True)
    assert [r["purpose"] for r in archived["reports"]] == ["seal", "send", "receive", "archive"]
    pdf_file, report_file = (Path(p) for p in archived["written"])
    assert pdf_file.read_bytes() == opened.read_bytes()
    assert json.loads(report_file.read_text(encoding="utf-8"))["doc_id"] == 1
    check = subprocess.run(["qpdf", "--check", str(pdf_file)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    ok(run_cli, "doc", "archive", incoming, "--session", sessions["t_liu"])
    log = ok(run_cli, "doc", "log", doc, json_out=True)["log"]
    assert [e["action"] for e in log] == ["new", "approve", "approve", "forward", "approve", "sign-off", "register",
                                          "seal", "approve", "send", "open", "receive", "archive"]
    assert [e["decision"] for e in log] == list(range(1, 14))            # every decision signed, in order
    text_log = ok(run_cli, "doc", "log", doc)
    assert "同意，请周副局长会签" in text_log
    verified = ok(run_cli, "doc", "log", doc, "--verify")
    assert "all 13 signed decisions verify" in verified
    assert ok(run_cli, "doc", "log", incoming, "--verify", json_out=True)["verification"]["ok"] is True


def test_receive_that_fails_verification_exits_1(run_cli, org_home: Path, tmp_path: Path,
                                                  sessions: Sessions) -> None:
    from docflow import DocumentFlow
    from docflow_support import UPWARD_TO_SEAL, Bureau
    from pki.accounts.testing import actor_for_tests
    from pki.ca import CertificateAuthority
    from pki.clock import SYSTEM_CLOCK
    from seal.records import SealRegistry
    home = Home.open(org_home)
    b = Bureau(home=home, flow=DocumentFlow(home), clock=SYSTEM_CLOCK, path=org_home, keys=template_keys())
    flow = b.flow
    doc = flow.new_document(kind="upward", title="关于试点的请示", pdf=document_pdf(), actor=b.actor("sun"))
    for user, action, to in UPWARD_TO_SEAL:
        flow.act(doc.id, actor=b.actor(user), action=action, opinion="同意", to=to)
    flow.seal(doc.id, actor=b.actor("wang"), seal="official-sm2", password=SEAL_PASSWORD)
    flow.act(doc.id, actor=b.actor("sun"), action="approve")
    flow.send(doc.id, actor=b.actor("liu"), to=[OTHER])
    CertificateAuthority(home).hold(SealRegistry(home).get("official-sm2").cert_serial, ca="issuing",
                                    actor=actor_for_tests(home, "ca-admin", roles=("ca_operator",)))
    home.store.dispose()
    fails(run_cli, 1, "does not verify and was returned to the sender", "doc", "receive", str(doc.id),
          "--session", sessions["t_liu"])
    todo = ok(run_cli, "doc", "todo", "--session", sessions["liu"])          # the session's own list
    assert "returned by 天津市测试局" in todo and "held" in todo


def test_a_body_as_an_ofd_file_or_as_structured_text(run_cli, org_home: Path, tmp_path: Path,
                                                    sessions: Sessions) -> None:
    """`doc new --file` takes a finished OFD (told by content, --pdf kept as its old name) and `--body`
    structured text, both drafted by the session's account; giving both, or neither, is a usage
    error that writes nothing."""
    from ca_helpers import db_snapshot
    from seal.ofd.sample import text_ofd
    ofd = tmp_path / "body.ofd"
    ofd.write_bytes(text_ofd([["关于开展电子印章试点工作的请示", "妥否，请批示。", (ORG, 130, 250, 5)]]))
    text = tmp_path / "body.txt"
    text.write_text("---\n标题: 关于开展电子印章试点工作的请示\n---\n为推进电子政务建设，拟开展试点。\n\n妥否，请批示。\n",
                    encoding="utf-8")
    db = org_home / "yinxin.db"
    sun = ["--session", sessions["sun"]]
    before = db_snapshot(db)
    fails(run_cli, 2, "one of the two", "doc", "new", "--kind", "upward", "--title", "T", "--file", str(ofd),
          "--body", str(text), *sun)
    fails(run_cli, 2, "one of the two", "doc", "new", "--kind", "upward", "--title", "T", *sun)
    fails(run_cli, 2, "log in first", "doc", "new", "--kind", "upward", "--title", "T", "--file", str(ofd))
    assert db_snapshot(db) == before
    made = ok(run_cli, "doc", "new", "--kind", "upward", "--title", "关于开展电子印章试点工作的请示", "--file", str(ofd),
              *sun, json_out=True)
    assert made["drafter"] == "sun" and made["versions"][0]["size"] == ofd.stat().st_size
    out = tmp_path / "v1.ofd"
    ok(run_cli, "doc", "show", str(made["id"]), "--out", str(out))
    assert out.read_bytes() == ofd.read_bytes()
    typeset = ok(run_cli, "doc", "new", "--kind", "upward", "--body", str(text), *sun, json_out=True)
    assert typeset["elements"]["title"] == "关于开展电子印章试点工作的请示"
    log = ok(run_cli, "doc", "log", str(typeset["id"]), json_out=True)["log"]
    assert [(e["actor"], e["action"]) for e in log] == [("sun", "new")] and log[0]["details"]["decision"] == 1

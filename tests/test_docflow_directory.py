"""The organisation directory and route files: what loads, what is refused at load, and reloads."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from docflow import DirectoryError, DocflowError, RouteError, load_default_routes, load_route_file
from docflow.directory import load_organisation_file
from docflow.routes import ROLES

from docflow_support import EXAMPLE_ORG, ORG, ROOT, VECTORS, audit_actions, bureau, example_org, new_upward, walk

ROUTE_VECTORS = sorted((VECTORS / "routes").glob("*.yaml"))
ORG_VECTORS = sorted((VECTORS / "orgs").glob("*.yaml"))


def _expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"#\s*expect:\s*(.+)", first)
    assert match, f"{path.name} has no '# expect:' line"
    return match.group(1).strip()


def test_default_routes_cover_every_kind_as_domain_describes() -> None:
    routes = load_default_routes(ROOT / "policies")
    up, down, par, inc = (routes[k] for k in ("upward", "downward", "parallel", "incoming"))
    assert [s.type for s in up.steps] == ["review", "review", "review", "sign_off", "register", "seal",
                                          "check", "send"]
    assert up.step("leader_review").countersign and up.step("sign_off").who.roles == ("director",)
    # downward/parallel: the same without the leader review; the supervising leader signs off
    assert down is par
    assert [s.id for s in down.steps] == [s.id for s in up.steps if s.id != "leader_review"]
    assert down.step("sign_off").who.roles == ("leader",)
    assert [s.type for s in inc.steps] == ["sign_for", "propose", "read", "distribute", "handle", "close"]
    assert set(inc.step("leaders_read").who.roles) == {"leader", "director"}
    assert all(s.opinion_required for r in (up, down, inc) for s in r.steps if s.approval)


@pytest.mark.parametrize("path", [p for p in ROUTE_VECTORS if p.name.startswith("bad-")], ids=lambda p: p.stem)
def test_bad_route_files_are_refused_at_load(path: Path) -> None:
    with pytest.raises(RouteError) as err:
        load_route_file(path)
    assert _expected(path) in err.value.message
    assert str(path) in err.value.message          # the file is named


@pytest.mark.parametrize("path", [p for p in ROUTE_VECTORS if p.name.startswith("ok-")], ids=lambda p: p.stem)
def test_good_route_files_load(path: Path) -> None:
    assert load_route_file(path).steps


@pytest.mark.parametrize("path", [p for p in ORG_VECTORS if p.name.startswith("bad-")], ids=lambda p: p.stem)
def test_bad_organisation_files_are_refused_at_load(path: Path) -> None:
    with pytest.raises(DocflowError) as err:
        load_organisation_file(path, load_default_routes(ROOT / "policies"))
    assert isinstance(err.value, (DirectoryError, RouteError))
    assert _expected(path) in err.value.message


def test_the_issue_example_loads_and_shows(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    org = b.flow.organisation(ORG)
    assert [p.id for p in org.people] == ["sun", "chen", "zhao", "zhang", "li", "zhou", "wu", "ma", "wang", "liu"]
    assert org.seal == "official-sm2" and org.code == "京测"
    assert org.departments == ("业务处", "办公室")
    assert [p.id for p in org.heads("业务处")] == ["chen", "zhao"]
    assert [p.id for p in org.with_role("leader")] == ["li", "zhou"]
    shown = b.flow.organisation_record(ORG)
    assert shown["roles"]["secretary"] == ["liu"] and shown["roles"]["receiver"] == ["liu"]
    assert shown["version"] == 1 and set(shown["routes"]) == {"upward", "downward", "parallel", "incoming"}
    json.dumps(shown, ensure_ascii=False)
    # the issue's exact form (no `code:`) loads too: 发文字号 then uses the name
    data = example_org()
    del data["code"]
    org2 = load_organisation_file(_write(tmp_path / "nocode.yaml", data), load_default_routes(ROOT / "policies"))
    assert org2.code == ORG


def test_org_load_is_audited_and_reload_updates(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    data = example_org()
    data["people"].append({"id": "qian", "name": "钱科员", "department": "业务处"})
    result = b.flow.load_organisation_data(data, actor=b.admin("admin2"))
    assert result.version == 2 and result.changed and not result.created
    assert b.flow.organisation(ORG).has_person("qian")
    again = b.flow.load_organisation_data(data, actor=b.admin("admin2"))
    assert again.version == 2 and not again.changed
    loads = [r for r in audit_actions(b) if r[1] == "org.load"]
    assert [r[0] for r in loads] == ["admin", "admin2", "admin2"]
    assert json.loads(loads[1][3])["previous_digest"] == loads[0][4]
    assert loads[1][4] == result.digest


def test_reload_may_not_strand_pending_work(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    doc = new_upward(b)
    walk(b, doc.id, [("chen", "approve", None)])          # now waiting for zhang (office head)
    data = example_org()
    data["people"] = [p for p in data["people"] if p["id"] != "zhang"]
    data["people"].append({"id": "gao", "name": "高主任", "department": "办公室", "head": True,
                           "roles": ["office_head"]})
    with pytest.raises(DirectoryError, match="zhang is removed but document 1 waits on them"):
        b.flow.load_organisation_data(data, actor=b.admin())
    assert b.flow.organisation(ORG).has_person("zhang")


def test_a_person_id_names_one_person_in_the_home(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    other = {"name": "别的局", "people": [dict(p) for p in example_org()["people"]]}
    with pytest.raises(DirectoryError, match="person id 'sun' already belongs to 北京市测试局"):
        b.flow.load_organisation_data(other, actor=b.admin())


def test_seal_may_come_later_but_must_be_the_organisations(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    result = b.flow.load_organisation_data(example_org(), actor=b.admin())
    assert any("not in this home yet" in n for n in result.notes)
    from docflow_support import with_seals
    with_seals(b, ("天津市测试局", "tianjin-sm2", "t_wang"))
    data = example_org()
    data["seal"] = "tianjin-sm2"
    with pytest.raises(DirectoryError, match="seal tianjin-sm2 belongs to 天津市测试局, not to 北京市测试局"):
        b.flow.load_organisation_data(data, actor=b.admin())


def test_own_route_file_overrides_the_default(tmp_path: Path) -> None:
    b = bureau(tmp_path)
    path = VECTORS / "orgs" / "ok-own-downward-route.yaml"
    result = b.flow.load_organisation(path, actor=b.admin())
    org = result.organisation
    assert org.route("downward").step("sign_off").who.roles == ("director",)
    assert org.route("upward").name == "上行文"                  # the other kinds keep the default
    from docflow_support import document_pdf
    doc = b.flow.new_document(kind="downward", title="关于印发试点方案的通知", pdf=document_pdf(), actor=b.actor("o_sun"))
    walk(b, doc.id, [("o_chen", "approve", None), ("o_zhang", "approve", None)])
    assert b.flow.show(doc.id).pending == ("o_wu",)


def test_roles_are_the_domain_roles() -> None:
    assert set(ROLES) == {"office_head", "leader", "director", "registry", "seal_custodian", "secretary",
                          "receiver"}
    text = EXAMPLE_ORG.read_text(encoding="utf-8")
    assert yaml.safe_load(text)["name"] == ORG


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path

"""The HTTP API (/api/v1) against the real `yinxin console`: tokens made with the real CLI, acting as
their account and no more, JSON answers checked against the OpenAPI document (itself validated),
stamping checked by OpenSSL, and the issue's bad input — each with its status, its JSON error and
nothing changed."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from ca_helpers import write_session, yinxin
from console_support import (OTHER, SEAL_PASSWORD, WRONG_SEAL_PASSWORD, Client, ConsoleServer, document_pdf,
                             audit_events, domain_rows, make_world, pdf_file, sql)
from pdf_fixtures import flip_signed_byte
from seal_support import sm2_attrs_verify

OPENAPI = Path(__file__).resolve().parent.parent / "console" / "openapi.json"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("console-api")
    world = make_world(base / "home", people=False)
    server = ConsoleServer(world.path, workers=2)
    yield world, server, base
    server.stop()


def token_for(world: Any, base: Path, account: str, name: str = "oa", *extra: str) -> str:
    """A token made by the real CLI from the account's own session: printed once, on stdout."""
    session = write_session(world.home, base / "sessions" / f"{account}-{name}.session", account)
    result = yinxin(world.path, "account", "token", account, "--name", name, *extra,
                    env={"YINXIN_SESSION": str(session)})
    assert result.code == 0, result
    text = result.out.strip()
    assert text.startswith("yx1_") and "shown only now" in result.err
    return text


def api(server: ConsoleServer, token: str | None) -> Client:
    return Client(server.url, token=token)


def schema_check(instance: Any, name: str) -> None:
    """The answer fits the OpenAPI document's schema `name` (checked by openapi-schema-validator)."""
    from openapi_schema_validator import OAS31Validator, validate
    spec = json.loads(OPENAPI.read_text())
    validate(instance, {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}, cls=OAS31Validator)


def error(answer: Any, status: int, code: str) -> str:
    assert answer.status == status, (answer.status, answer.text[:500])
    body = answer.json()
    schema_check(body, "Error")
    assert body["error"] == code, body
    assert "Traceback" not in answer.text
    return body["message"]


def test_the_openapi_document_is_valid_and_served(env: Any) -> None:
    from openapi_spec_validator import validate
    world, server, base = env
    answer = api(server, None).get("/api/v1/openapi.json")
    assert answer.status == 200
    spec = answer.json()
    validate(spec)
    assert spec == json.loads(OPENAPI.read_text())
    documented = {path for path in spec["paths"]}
    from console.app import routes
    served = {r.path.replace("{doc_id:int}", "{doc_id}") for r in routes() if r.path.startswith("/api/v1/")}
    assert documented == served
    assert "pin" in spec["components"]["schemas"]["Action"]["properties"]       # signed decisions: the PIN


def test_a_token_is_shown_once_stored_hashed_listed_and_revoked(env: Any) -> None:
    world, server, base = env
    token = token_for(world, base, "chen", "oa-list")
    assert token.encode() not in world.db.read_bytes()
    session = write_session(world.home, base / "sessions" / "chen-list.session", "chen")
    listed = yinxin(world.path, "--json", "account", "tokens", "chen", env={"YINXIN_SESSION": str(session)})
    assert listed.code == 0 and token not in listed.out
    assert [t["name"] for t in json.loads(listed.out)["tokens"]] == ["oa-list"]
    me = api(server, token).get("/api/v1/me")
    assert me.status == 200 and me.json()["account"] == "chen"
    schema_check(me.json(), "Me")
    revoked = yinxin(world.path, "account", "token-revoke", "chen", "--name", "oa-list",
                     env={"YINXIN_SESSION": str(session)})
    assert revoked.code == 0, revoked
    assert "revoked" in error(api(server, token).get("/api/v1/me"), 401, "unauthenticated")


def test_someone_elses_token_needs_an_admin(env: Any, tmp_path: Path) -> None:
    world, server, base = env
    session = write_session(world.home, tmp_path / "sun.session", "sun")
    before = domain_rows(world.db)
    result = yinxin(world.path, "account", "token", "chen", "--name", "stolen", env={"YINXIN_SESSION": str(session)})
    assert result.code == 2 and result.err.count("\n") == 1 and "admin" in result.err and not result.out
    assert domain_rows(world.db) == before


@pytest.mark.parametrize("case", ["none", "not bearer", "malformed", "forged", "expired"])
def test_bad_tokens_are_401(env: Any, case: str) -> None:
    world, server, base = env
    good = token_for(world, base, "zhao", "oa-" + case.replace(" ", "-"))
    if case == "expired":
        token_id = good.split("_")[1]
        sql(world.db, "UPDATE api_tokens SET expires_at='2000-01-01 00:00:00.000000' WHERE id=?", (token_id,))
    header = {"none": None, "not bearer": f"Basic {good}", "malformed": "Bearer yx1_nothing",
              "forged": "Bearer " + good[:-6] + "AAAAAA", "expired": f"Bearer {good}"}[case]
    client = api(server, None)
    answer = client.get("/api/v1/todo", headers={"Authorization": header} if header else None)
    message = error(answer, 401, "unauthenticated")
    assert answer.header("www-authenticate") == 'Bearer realm="yinxin"'
    if case == "expired":
        assert "expired" in message


def test_a_disabled_account_s_token_is_refused_at_once(env: Any) -> None:
    world, server, base = env
    from pki.accounts.accounts import Accounts
    from pki.accounts.testing import actor_for_tests
    token = token_for(world, base, "t_head", "oa")
    assert api(server, token).get("/api/v1/todo").status == 200
    Accounts.of(world.home).disable("t_head", actor=actor_for_tests(world.home, "root"))
    error(api(server, token).get("/api/v1/todo"), 403, "account_disabled")


def test_the_flow_over_the_api(env: Any) -> None:
    world, server, base = env
    sun, chen, zhang = (api(server, token_for(world, base, who, "flow")) for who in ("sun", "chen", "zhang"))
    pdf = document_pdf("API 请示")
    created = sun.post("/api/v1/documents", [("kind", "upward"), ("title", "API 请示"), ("main_to", "市政府"), ("to", "chen")],
                       files=[pdf_file(pdf)])
    assert created.status == 201, created.text
    doc = created.json()
    schema_check(doc, "Document")
    doc_id = doc["id"]
    assert created.location == f"/api/v1/documents/{doc_id}" and doc["pending"] == ["chen"]
    assert doc["elements"]["main_recipients"] == ["市政府"]
    todo = chen.get("/api/v1/todo").json()
    for item in todo["items"]:
        schema_check(item, "TodoItem")
    assert [i["doc_id"] for i in todo["items"] if i["doc_id"] == doc_id] == [doc_id]
    offered = chen.get(f"/api/v1/documents/{doc_id}").json()["actions"]
    assert {"approve", "return"} <= {a["action"] for a in offered}
    file = chen.get(f"/api/v1/documents/{doc_id}/file")
    assert file.status == 200 and file.body == pdf and file.header("content-type") == "application/pdf"
    # out of turn: zhang's token acts as zhang, no more
    before = domain_rows(world.db)
    assert "out of turn" in error(zhang.post(f"/api/v1/documents/{doc_id}/actions",
                                             json_body={"action": "approve", "opinion": "同意"}), 403, "forbidden")
    assert "opinion" in error(chen.post(f"/api/v1/documents/{doc_id}/actions", json_body={"action": "approve"}),
                              403, "forbidden")
    assert domain_rows(world.db) == before
    done = chen.post(f"/api/v1/documents/{doc_id}/actions", json_body={"action": "approve", "opinion": "同意"})
    assert done.status == 200, done.text
    schema_check(done.json(), "ActResult")
    assert done.json()["document"]["pending"] == ["zhang"]
    assert any(i["doc_id"] == doc_id for i in zhang.get("/api/v1/todo").json()["items"])
    listed = sun.get("/api/v1/documents?box=outgoing").json()
    assert doc_id in [d["id"] for d in listed["items"]]
    for item in listed["items"]:
        schema_check(item, "DocumentSummary")


def test_another_organisations_document_is_404_like_a_missing_one(env: Any) -> None:
    world, server, base = env
    sun = api(server, token_for(world, base, "sun", "mine"))
    doc_id = sun.post("/api/v1/documents", [("kind", "upward"), ("title", "别人的")],
                      files=[pdf_file(document_pdf("别人的"))]).json()["id"]
    outsider = api(server, token_for(world, base, "t_sun", "outsider"))
    before = domain_rows(world.db)
    for path in (f"/api/v1/documents/{doc_id}", f"/api/v1/documents/{doc_id}/file"):
        message = error(outsider.get(path), 404, "not_found")
        assert message == error(outsider.get(path.replace(str(doc_id), "987654")), 404, "not_found") \
            .replace("987654", str(doc_id))
    error(outsider.post(f"/api/v1/documents/{doc_id}/actions", json_body={"action": "approve", "opinion": "x"}),
          404, "not_found")
    assert domain_rows(world.db) == before
    probes = [e for e in audit_events(world.db, "console.refused") if e["actor"] == "t_sun"]   # ASVS 16.3.2
    assert {e["target"] for e in probes} >= {f"GET /api/v1/documents/{doc_id}",
                                            f"GET /api/v1/documents/{doc_id}/file",
                                            f"POST /api/v1/documents/{doc_id}/actions"}
    assert all(e["details"]["request"]["via"] == "api" and e["details"]["request"]["token"] for e in probes)


def test_bad_requests(env: Any) -> None:
    world, server, base = env
    sun = api(server, token_for(world, base, "sun", "bad"))
    before = domain_rows(world.db)
    error(sun.post("/api/v1/documents", [("kind", "upward"), ("title", "无文件")]), 400, "bad_request")
    error(sun.post("/api/v1/documents", [("kind", "upward"), ("title", "非PDF")],
                   files=[pdf_file(b"<html>not a pdf</html>", "x.pdf")]), 422, "not_pdf")
    error(sun.post("/api/v1/documents", [("kind", "sideways"), ("title", "类别")], files=[pdf_file(document_pdf())]),
          422, "invalid")
    error(sun.post("/api/v1/documents", json_body={"kind": "upward"}), 400, "bad_request")
    error(sun.post("/api/v1/documents/1/actions", json_body=["approve"]), 400, "bad_request")
    error(sun.post("/api/v1/documents/1/actions", headers={"Content-Type": "application/json"}, fields=[]), 400,
          "bad_request")
    error(sun.get("/api/v1/documents?box=secret"), 422, "invalid")
    error(sun.get("/api/v1/nothing-here"), 404, "not_found")
    assert domain_rows(world.db) == before


def test_an_oversized_upload_is_refused_before_it_is_read(env: Any) -> None:
    """A body declared larger than the bound (25 MiB by default) is answered 413 at once, as soon as
    the headers arrive (the client has not sent a byte of it)."""
    import socket
    from urllib.parse import urlsplit
    world, server, base = env
    token = token_for(world, base, "sun", "big")
    url = urlsplit(server.url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall((f"POST /api/v1/verify HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
                      f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {26 * 1024 * 1024}\r\n\r\n")
                     .encode())
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"] == "too_large"


def test_stamping_over_the_api_verifies_with_openssl(env: Any, tmp_path: Path) -> None:
    world, server, base = env
    wang = api(server, token_for(world, base, "wang", "stamp"))
    pdf = document_pdf("盖章接口")
    answer = wang.post("/api/v1/seals/official-bj/stamp", [("password", SEAL_PASSWORD.decode()), ("page", "1"),
                                                             ("x_mm", "150"), ("y_mm", "60")], files=[pdf_file(pdf)])
    assert answer.status == 200, answer.text[:500]
    sealed = answer.body
    assert sealed[:len(pdf)] == pdf and answer.header("x-yinxin-sha256")
    path = tmp_path / "sealed.pdf"
    path.write_bytes(sealed)
    assert "Signature Verified Successfully" in sm2_attrs_verify(path, tmp_path / "openssl")
    report = wang.post("/api/v1/verify", files=[pdf_file(sealed)])
    assert report.status == 200 and report.json()["valid"] is True
    schema_check(report.json(), "VerificationReport")
    assert report.json()["signatures"][0]["seal"] == "official-bj"
    bad = wang.post("/api/v1/verify", files=[pdf_file(flip_signed_byte(sealed))]).json()
    assert bad["valid"] is False


def test_stamping_refusals_change_nothing_but_the_counted_failure(env: Any) -> None:
    world, server, base = env
    wang = api(server, token_for(world, base, "wang", "refusals"))
    pdf = document_pdf("拒绝")
    before = domain_rows(world.db)
    off_page = wang.post("/api/v1/seals/official-bj/stamp", [("password", SEAL_PASSWORD.decode()), ("page", "1"),
                                                               ("x_mm", "400"), ("y_mm", "60")], files=[pdf_file(pdf)])
    assert "off the page" in error(off_page, 422, "placement")
    error(wang.post("/api/v1/seals/official-bj/stamp", [("password", SEAL_PASSWORD.decode())],
                    files=[pdf_file(pdf)]), 400, "bad_request")
    error(wang.post("/api/v1/seals/official-tj/stamp", [("password", SEAL_PASSWORD.decode()), ("anchor", OTHER)],
                    files=[pdf_file(pdf)]), 404, "not_found")           # not wang's seal
    error(wang.post("/api/v1/seals/official-bj/stamp", [("password", SEAL_PASSWORD.decode()), ("page", "1"),
                                                          ("x_mm", "10"), ("y_mm", "10")],
                    files=[pdf_file(b"GIF89a...")]), 422, "not_pdf")
    assert domain_rows(world.db) == before
    wrong = wang.post("/api/v1/seals/official-bj/stamp", [("password", WRONG_SEAL_PASSWORD.decode()),
                                                            ("page", "1"), ("x_mm", "100"), ("y_mm", "100")],
                      files=[pdf_file(pdf)])
    assert "wrong password" in error(wrong, 403, "wrong_seal_password")
    after = domain_rows(world.db)
    changed = {t for t in after if after[t] != before[t]}
    assert changed == {"seals"}                       # the failure counts towards the seal's lockout
    assert sql(world.db, "SELECT failed_attempts FROM seals WHERE name='official-bj'") == [(1,)]
    assert wang.post("/api/v1/seals/official-bj/stamp", [("password", SEAL_PASSWORD.decode()), ("page", "1"),
                                                           ("x_mm", "100"), ("y_mm", "100")],
                     files=[pdf_file(pdf)]).status == 200
    assert sql(world.db, "SELECT failed_attempts FROM seals WHERE name='official-bj'") == [(0,)]


def test_too_many_bad_tokens_from_one_address_get_429(env: Any) -> None:
    world, server, base = env
    with ConsoleServer(world.path, workers=1) as fresh:
        client = api(fresh, "yx1_0123456789abcdef_" + "A" * 43)
        statuses = [client.get("/api/v1/todo").status for _ in range(21)]
        assert statuses[:20] == [401] * 20 and statuses[20] == 429
        answer = client.get("/api/v1/todo")
        error(answer, 429, "throttled")
        assert int(answer.header("retry-after")) > 0

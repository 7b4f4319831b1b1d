"""The web console over plain HTTP, against the real `yinxin console` on 127.0.0.1: logging in (and
the first login's password change), the session cookie, CSRF, sessions that logout and disabling end
at once, forged and expired cookies, the authorization of every route, the security headers, and the
issue's bad input — each with its status, its message, and nothing changed."""
from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from console_support import (ADMIN_PASSWORD, INITIAL, ORG, PASSWORD, Client, ConsoleServer, audit_events,
                             document_pdf, domain_rows, make_world, pdf_file, sql)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("console-http")
    world = make_world(base / "home")
    server = ConsoleServer(world.path, workers=2)
    yield world, server
    server.stop()


def login(server: ConsoleServer, user: str, password: bytes = PASSWORD) -> Client:
    client = Client(server.url)
    answer = client.login(user, password)
    assert answer.status == 303, answer.text[:500]
    return client


def new_document(client: Client, title: str = "关于开展电子印章试点工作的请示") -> int:
    answer = client.post("/documents/new", [("csrf", client.csrf("/documents/new")), ("kind", "upward"),
                                            ("title", title)], files=[pdf_file(document_pdf(title))])
    assert answer.status == 303, answer.text[:800]
    return int(re.match(r"/documents/(\d+)", answer.location or "").group(1))


def act(client: Client, doc_id: int, action: str, opinion: str = "同意", to: str | None = None,
        csrf: str | None = None, headers: dict[str, str] | None = None) -> Any:
    fields = [("csrf", csrf if csrf is not None else client.csrf(f"/documents/{doc_id}")), ("action", action),
              ("opinion", opinion)]
    if to:
        fields.append(("to", to))
    return client.post(f"/documents/{doc_id}/act", fields, headers=headers)


def error_of(answer: Any) -> tuple[str, str]:
    found = re.search(r'data-testid="error" data-status="(\d+)" data-code="([^"]+)">([^<]*)<', answer.text)
    assert found, answer.text[:800]
    assert int(found.group(1)) == answer.status
    return found.group(2), found.group(3)


# --------------------------------------------------------------------------- logging in

def test_login_sets_a_host_only_secure_httponly_strict_cookie_and_audits_the_client(env: Any) -> None:
    world, server = env
    client = Client(server.url)
    answer = client.login("chen", PASSWORD)
    assert answer.status == 303 and answer.location == "/todo"
    cookie = next(v for v in answer.headers["set-cookie"] if v.startswith("__Host-yinxin="))
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"path", "httponly", "samesite", "secure"} <= attributes and "domain" not in attributes
    assert "SameSite=Strict" in cookie and "Path=/" in cookie
    login_events = [e for e in audit_events(world.db, "account.login") if e["actor"] == "chen"]
    assert login_events[-1]["details"]["request"] == {"client": "127.0.0.1", "via": "console"}
    assert client.get("/todo").status == 200


def test_wrong_password_is_refused_counted_and_audited_with_the_client(env: Any) -> None:
    world, server = env
    client = Client(server.url)
    answer = client.login("zhao", b"Not-The-Password-1")
    assert answer.status == 401
    assert "wrong account or password" in answer.text and "__Host-yinxin" not in client.cookies
    failure = audit_events(world.db, "account.login_failure")[-1]
    assert failure["actor"] == "zhao" and failure["details"]["request"]["client"] == "127.0.0.1"
    assert sql(world.db, "SELECT failed_logins FROM accounts WHERE id='zhao'") == [(1,)]
    assert login(server, "zhao").get("/todo").status == 200      # the right one resets the count
    assert sql(world.db, "SELECT failed_logins FROM accounts WHERE id='zhao'") == [(0,)]


def test_first_login_changes_the_initial_password(env: Any) -> None:
    world, server = env
    admin = login(server, "root", ADMIN_PASSWORD)
    answer = admin.post("/admin/accounts", [("csrf", admin.csrf("/admin/accounts")), ("account", "newbie"),
                                            ("name", "新人"), ("organisation", ORG),
                                            ("initial_password", INITIAL.decode())])
    assert answer.status == 303, answer.text[:500]
    client = Client(server.url)
    answer = client.login("newbie", INITIAL)
    assert answer.status == 200 and 'name="new_password"' in answer.text and "__Host-yinxin" not in client.cookies
    mismatch = client.post("/login", [("login_csrf", client.cookies["__Host-yinxin-login"]), ("username", "newbie"),
                                      ("password", INITIAL.decode()), ("new_password", "Fresh-Meadow-Lake-9"),
                                      ("new_password_confirm", "Other-Meadow-Lake-9")])
    assert mismatch.status == 422 and "__Host-yinxin" not in client.cookies
    weak = client.login("newbie", INITIAL, new_password=b"password1234")
    assert weak.status == 422 and "common passwords" in weak.text
    done = client.login("newbie", INITIAL, new_password=b"Fresh-Meadow-Lake-9")
    assert done.status == 303 and client.get("/todo").status == 200
    assert Client(server.url).login("newbie", b"Fresh-Meadow-Lake-9").status == 303


def test_login_form_without_its_token_is_refused(env: Any) -> None:
    world, server = env
    client = Client(server.url)
    answer = client.post("/login", [("username", "chen"), ("password", PASSWORD.decode())])
    assert answer.status == 403 and error_of(answer)[0] == "csrf" and "__Host-yinxin" not in client.cookies


# --------------------------------------------------------------------------- sessions end at once

def test_logout_ends_the_session_on_the_server(env: Any) -> None:
    world, server = env
    client = login(server, "zhou")
    stolen = dict(client.cookies)
    answer = client.post("/logout", [("csrf", client.csrf())])
    assert answer.status == 303 and "__Host-yinxin" not in client.cookies
    thief = Client(server.url)
    thief.cookies = stolen
    page = thief.get("/todo")
    assert page.status == 303 and page.location.startswith("/login")


def test_disabling_an_account_ends_its_sessions_at_once(env: Any) -> None:
    world, server = env
    admin = login(server, "root", ADMIN_PASSWORD)
    admin.post("/admin/accounts", [("csrf", admin.csrf("/admin/accounts")), ("account", "leaver"), ("name", "离职者"),
                                   ("organisation", ORG), ("initial_password", INITIAL.decode())])
    person = Client(server.url)
    assert person.login("leaver", INITIAL, new_password=b"Quiet-Harbour-Moon-5").status == 303
    assert person.get("/todo").status == 200
    answer = admin.post("/admin/accounts/leaver/disable", [("csrf", admin.csrf("/admin/accounts"))])
    assert answer.status == 303
    page = person.get("/todo")
    assert page.status == 303 and page.location.startswith("/login")
    assert Client(server.url).login("leaver", b"Quiet-Harbour-Moon-5").status == 403


@pytest.mark.parametrize("case", ["random token", "edited session id", "truncated", "other cookie name"])
def test_forged_cookies_are_refused(env: Any, case: str) -> None:
    world, server = env
    real = login(server, "zhang")
    value = real.cookies["__Host-yinxin"]
    version, session, token = value.split(".")[:3]
    forged = {"random token": f"{version}.{session}.{'A' * 43}",
              "edited session id": f"{version}.{'0' * 24}.{token}",
              "truncated": value[:-5],
              "other cookie name": value}[case]
    client = Client(server.url)
    client.cookies = {"yinxin" if case == "other cookie name" else "__Host-yinxin": forged}
    page = client.get("/todo")
    assert page.status == 303 and page.location.startswith("/login")
    before = domain_rows(world.db)
    answer = client.post("/documents/new", [("csrf", real.csrf()), ("kind", "upward"), ("title", "伪造")],
                         files=[pdf_file(document_pdf())])
    assert answer.status == 401
    assert domain_rows(world.db) == before


def test_an_expired_session_is_refused(env: Any) -> None:
    world, server = env
    client = login(server, "li")
    session = client.cookies["__Host-yinxin"].split(".")[1]
    sql(world.db, "UPDATE account_sessions SET expires_at='2000-01-01 00:00:00.000000' WHERE id=?", (session,))
    page = client.get("/todo")
    assert page.status == 303 and page.location.startswith("/login")
    idle = login(server, "li")
    session = idle.cookies["__Host-yinxin"].split(".")[1]
    sql(world.db, "UPDATE account_sessions SET last_seen_at='2000-01-01 00:00:00.000000' WHERE id=?", (session,))
    assert idle.get("/todo").status == 303


# --------------------------------------------------------------------------- CSRF and GET

@pytest.mark.parametrize("case", ["missing", "wrong", "another session's", "cross-site origin"])
def test_state_changing_forms_need_the_sessions_csrf_token(env: Any, case: str) -> None:
    world, server = env
    drafter = login(server, "sun")
    doc_id = new_document(drafter, f"CSRF {case}")
    chen = login(server, "chen")
    other = login(server, "zhao")
    token = {"missing": "", "wrong": "x" * 43, "another session's": other.csrf(),
             "cross-site origin": chen.csrf(f"/documents/{doc_id}")}[case]
    headers = {"Origin": "https://evil.example"} if case == "cross-site origin" else None
    before = domain_rows(world.db)
    answer = act(chen, doc_id, "approve", csrf=token, headers=headers)
    assert answer.status == 403 and error_of(answer)[0] == "csrf"
    assert domain_rows(world.db) == before
    refused = audit_events(world.db, "console.refused")[-1]                  # ASVS 16.3.2
    assert refused["actor"] == "chen" and refused["target"] == f"POST /documents/{doc_id}/act"
    assert refused["details"]["status"] == 403 and refused["details"]["code"] == "csrf"
    assert refused["details"]["request"]["client"] == "127.0.0.1"
    assert act(chen, doc_id, "approve").status == 303       # with its own token it goes through


@pytest.mark.parametrize("path,status", [("/logout", 405), ("/documents/1/act", 405),
                                         ("/admin/accounts/chen/disable", 405), ("/stamp/" + "0" * 24 + "/x", 404)])
def test_get_changes_nothing(env: Any, path: str, status: int) -> None:
    world, server = env
    client = login(server, "sun")
    before = domain_rows(world.db)
    answer = client.get(path)
    assert answer.status == status
    assert domain_rows(world.db) == before
    assert client.get("/todo").status == 200          # still logged in


# --------------------------------------------------------------------------- headers

def test_every_answer_carries_the_security_headers(env: Any) -> None:
    world, server = env
    client = login(server, "sun")
    for path in ("/login", "/todo", "/static/seal.js", "/no-such-page", "/api/v1/todo"):
        answer = client.get(path)
        csp = answer.header("content-security-policy") or ""
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, path
        assert answer.header("x-content-type-options") == "nosniff", path
        assert answer.header("x-frame-options") == "DENY", path
    page = client.get("/todo")
    assert "<script>" not in page.text and " on" + "click=" not in page.text
    assert page.header("cache-control") == "no-store"


# --------------------------------------------------------------------------- object access

def test_a_person_sees_only_documents_of_their_organisation_and_route(env: Any) -> None:
    world, server = env
    drafter = login(server, "sun")
    answer = drafter.post("/documents/new", [("csrf", drafter.csrf("/documents/new")), ("kind", "upward"),
                                             ("title", "对象访问"), ("declare", "附件一")],
                          files=[pdf_file(document_pdf("对象访问")),
                                 ("attachment", "附件一.txt", "附件内容".encode(), "text/plain")])
    assert answer.status == 303, answer.text[:800]
    doc_id = int(re.match(r"/documents/(\d+)", answer.location or "").group(1))
    page = drafter.get(f"/documents/{doc_id}")
    assert 'data-testid="attachment"' in page.text
    attachment = drafter.get(f"/documents/{doc_id}/attachments/1")
    assert attachment.status == 200 and attachment.body == "附件内容".encode()
    outsider = login(server, "t_sun")          # another organisation
    before = domain_rows(world.db)
    for path in (f"/documents/{doc_id}", f"/documents/{doc_id}/file", f"/documents/{doc_id}/pages/1.png",
                 f"/documents/{doc_id}/attachments/1",
                 f"/documents/{doc_id}/seal", f"/documents/{doc_id}/seal/preview.png?page=1&x_mm=10&y_mm=10"):
        answer = outsider.get(path)
        assert answer.status == 404, (path, answer.status)
        assert error_of(answer)[0] == "not_found"
    answer = act(outsider, doc_id, "approve", csrf=outsider.csrf())
    assert answer.status == 404
    assert domain_rows(world.db) == before
    probes = [e for e in audit_events(world.db, "console.refused") if e["actor"] == "t_sun"]
    assert {e["target"] for e in probes} >= {f"GET /documents/{doc_id}", f"POST /documents/{doc_id}/act"}
    assert all(e["details"]["status"] == 404 and e["details"]["request"]["via"] == "console" for e in probes)
    missing = outsider.get("/documents/999999")
    assert missing.status == 404 and error_of(missing)[1] == error_of(outsider.get(f"/documents/{doc_id}"))[1] \
        .replace(str(doc_id), "999999")
    assert login(server, "chen").get(f"/documents/{doc_id}").status == 200      # on its route


def test_out_of_turn_and_a_step_without_opinion_are_refused_with_nothing_changed(env: Any) -> None:
    world, server = env
    doc_id = new_document(login(server, "sun"), "越权")
    zhang = login(server, "zhang")           # the office head: not this step's turn yet
    chen = login(server, "chen")
    before = domain_rows(world.db)
    answer = act(zhang, doc_id, "approve")
    assert answer.status == 403 and "out of turn" in error_of(answer)[1]
    answer = act(chen, doc_id, "approve", opinion="")
    assert answer.status == 403 and "opinion" in error_of(answer)[1]
    assert domain_rows(world.db) == before


def test_admin_pages_need_the_admin_role(env: Any) -> None:
    world, server = env
    person = login(server, "sun")
    before = domain_rows(world.db)
    for path in ("/admin/accounts", "/admin/organisations", "/admin/audit", "/admin/audit.csv"):
        assert person.get(path).status == 403, path
        assert audit_events(world.db, "console.refused")[-1]["target"] == f"GET {path}"
    token = person.csrf()
    for path, fields in (("/admin/accounts", [("account", "x1"), ("name", "x"), ("initial_password", "Some-Long-Pw-123")]),
                         ("/admin/accounts/chen/disable", []), ("/admin/accounts/chen/roles", [("roles", "admin")]),
                         ("/admin/seals/official-bj/unlock", [])):
        answer = person.post(path, [("csrf", token), *fields])
        assert answer.status == 403, (path, answer.status, answer.text[:300])
    assert domain_rows(world.db) == before


def test_every_route_refuses_the_anonymous(env: Any) -> None:
    world, server = env
    from console.app import routes
    refused_before = audit_events(world.db, "console.refused")[-1:]
    anonymous = Client(server.url)
    for route in routes():
        path = getattr(route, "path", "")
        if not hasattr(route, "methods") or path in ("/login", "/healthz", "/api/v1/openapi.json", "/api/{rest:path}"):
            continue
        concrete = (path.replace("{doc_id:int}", "1").replace("{page:int}", "1").replace("{name}", "official-bj")
                    .replace("{position:int}", "1").replace("{upload_id}", "0" * 24).replace("{report_id}", "0" * 24).replace("{account_id}", "chen")
                    .replace("{op}", "disable"))
        for method in route.methods - {"HEAD"}:
            answer = anonymous.get(concrete) if method == "GET" else anonymous.post(concrete, [("csrf", "x")])
            if concrete.startswith("/api/"):
                assert answer.status == 401 and answer.json()["error"] == "unauthenticated", (method, concrete)
            elif method == "GET":
                assert answer.status == 303 and answer.location.startswith("/login"), (method, concrete, answer.status)
            else:
                assert answer.status == 401, (method, concrete, answer.status)
    assert audit_events(world.db, "console.refused")[-1:] == refused_before     # nobody to audit: none written


# --------------------------------------------------------------------------- bad uploads

def test_a_non_pdf_upload_is_refused(env: Any) -> None:
    world, server = env
    client = login(server, "sun")
    before = domain_rows(world.db)
    answer = client.post("/documents/new", [("csrf", client.csrf()), ("kind", "upward"), ("title", "不是PDF")],
                         files=[pdf_file(b"MZ\x90\x00 this is not a PDF", "evil.pdf")])
    assert answer.status == 422 and error_of(answer)[0] == "not_pdf"
    answer = client.post("/verify", [("csrf", client.csrf())], files=[pdf_file(b"%PDF-1.7\n garbage", "broken.pdf")])
    assert answer.status == 422 and error_of(answer)[0] == "not_pdf"
    assert domain_rows(world.db) == before


def test_an_oversized_upload_is_refused(tmp_path: Path) -> None:
    world = make_world(tmp_path / "home", people=False)
    from pki.accounts.testing import session_for_tests
    with ConsoleServer(world.path, extra=["--max-upload-mb", "1"]) as server:
        session = session_for_tests(world.home, "sun")
        from console.security import SessionCookie
        client = Client(server.url)
        client.cookies["__Host-yinxin"] = SessionCookie(session.id, session.token).encode()
        before = domain_rows(world.db)
        big = document_pdf() + b"%" + b"0" * (2 * 1024 * 1024)
        answer = client.post("/documents/new", [("csrf", client.csrf()), ("kind", "upward"), ("title", "大文件")],
                             files=[pdf_file(big)])
        assert answer.status == 413
        assert domain_rows(world.db) == before


# --------------------------------------------------------------------------- two browsers at once

def test_concurrent_actions_on_one_document_one_wins(env: Any) -> None:
    world, server = env
    doc_id = new_document(login(server, "sun"), "并发")
    one, two = login(server, "chen"), login(server, "chen")
    tokens = (one.csrf(f"/documents/{doc_id}"), two.csrf(f"/documents/{doc_id}"))
    seen = re.search(r'name="seen" value="([^"]+)"', one.get(f"/documents/{doc_id}").text).group(1)
    results: dict[int, Any] = {}

    def run(i: int, client: Client) -> None:
        results[i] = client.post(f"/documents/{doc_id}/act", [("csrf", tokens[i]), ("action", "approve"),
                                                              ("opinion", f"同意{i}"), ("seen", seen)])

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate((one, two))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(r.status for r in results.values())
    assert statuses[0] == 303 and statuses[1] in (403, 409), statuses
    loser = next(r for r in results.values() if r.status != 303)
    assert error_of(loser)[0] in ("conflict", "forbidden")
    approvals = sql(world.db, "SELECT count(*) FROM doc_actions WHERE doc_id=? AND action='approve'", (doc_id,))
    assert approvals == [(1,)]
    # a stale form (the document moved on since it was shown) is refused as well
    stale = one.post(f"/documents/{doc_id}/act", [("csrf", tokens[0]), ("action", "approve"), ("opinion", "再次"),
                                                  ("seen", seen)])
    assert stale.status in (403, 409)


# --------------------------------------------------------------------------- TLS and exposure

def test_tls_serves_hsts_and_plain_http_stays_on_loopback(tmp_path: Path, openssl: Any) -> None:
    from ca_helpers import yinxin
    world = make_world(tmp_path / "home", people=False)
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1")
    with ConsoleServer(world.path, extra=["--certfile", str(cert), "--keyfile", str(key)]) as server:
        assert server.url.startswith("https://")
        answer = Client(server.url).get("/login")
        assert answer.status == 200
        assert answer.header("strict-transport-security") == "max-age=31536000"
        assert "Secure" in next(v for v in answer.headers["set-cookie"] if v.startswith("__Host-yinxin-login="))
        served = openssl("s_client", "-connect", server.url.replace("https://", ""), "-CAfile", cert,
                         "-verify_return_error", input=b"Q\n", check=False)
        assert b"Verify return code: 0 (ok)" in served.stdout
    refused = yinxin(world.path, "console", "--host", "0.0.0.0", "--port", "0")
    assert refused.code == 2 and "TLS" in refused.err and refused.err.count("\n") == 1 and not refused.out


# --------------------------------------------------------------------------- administration and /stamp

def _cookie_client(world: Any, server: ConsoleServer, account: str, roles: tuple[str, ...] = ()) -> Client:
    from console.security import SessionCookie
    from pki.accounts.testing import session_for_tests
    session = session_for_tests(world.home, account, roles=roles)
    client = Client(server.url)
    client.cookies["__Host-yinxin"] = SessionCookie(session.id, session.token).encode()
    return client


def test_stamp_page_refusals_and_the_seal_lock_an_administrator_lifts(env: Any) -> None:
    from console_support import SEAL_PASSWORD, WRONG_SEAL_PASSWORD
    world, server = env
    wang = login(server, "wang")
    upload = wang.post("/stamp", [("csrf", wang.csrf()), ("seal", "official-bj")],
                       files=[pdf_file(document_pdf("盖章页"))])
    assert upload.status == 303
    place = upload.location.split("?")[0]
    assert 'data-testid="seal-handle"' in wang.get(upload.location).text
    not_mine = wang.post("/stamp", [("csrf", wang.csrf()), ("seal", "official-tj")],
                         files=[pdf_file(document_pdf("别人的章"))])
    assert not_mine.status == 404
    before = domain_rows(world.db)
    off = wang.post(place, [("csrf", wang.csrf()), ("seal", "official-bj"), ("page", "1"), ("x_mm", "250"),
                            ("y_mm", "100"), ("seal_password", SEAL_PASSWORD.decode())])
    assert off.status == 422 and "outside the page" in error_of(off)[1]
    assert domain_rows(world.db) == before
    for attempt in range(5):
        wrong = wang.post(place, [("csrf", wang.csrf()), ("seal", "official-bj"), ("page", "1"), ("x_mm", "100"),
                                  ("y_mm", "100"), ("seal_password", WRONG_SEAL_PASSWORD.decode())])
        assert wrong.status == 403 and error_of(wrong)[0] == ("seal_locked" if attempt == 4 else "wrong_seal_password")
    locked = wang.post(place, [("csrf", wang.csrf()), ("seal", "official-bj"), ("page", "1"), ("x_mm", "100"),
                               ("y_mm", "100"), ("seal_password", SEAL_PASSWORD.decode())])
    assert locked.status == 403 and error_of(locked)[0] == "seal_locked"
    own = wang.post("/admin/seals/official-bj/unlock", [("csrf", wang.csrf())])
    assert own.status == 403                   # the custodian does not unlock their own seal
    admin = _cookie_client(world, server, "ca-admin", ("ca_operator", "seal_admin"))
    assert 'data-testid="unlock-official-bj"' in admin.get("/admin/seals").text
    assert admin.post("/admin/seals/official-bj/unlock", [("csrf", admin.csrf())]).status == 303
    sealed = wang.post(place, [("csrf", wang.csrf()), ("seal", "official-bj"), ("page", "1"), ("x_mm", "100"),
                               ("y_mm", "100"), ("seal_password", SEAL_PASSWORD.decode())])
    assert sealed.status == 200 and 'data-testid="download"' in sealed.text
    assert 'data-valid="true"' in sealed.text
    events = [e["action"] for e in audit_events(world.db, "seal.")]
    assert events[-3:] == ["seal.password_failure", "seal.unlock", "seal.stamp"]


def test_audit_page_filters_and_exports_csv_with_the_client_address(env: Any) -> None:
    world, server = env
    admin = login(server, "root", ADMIN_PASSWORD)
    page = admin.get("/admin/audit?action=account.login&actor=root")
    assert page.status == 200 and 'data-action="account.login"' in page.text
    assert 'data-action="doc.' not in page.text
    export = admin.get("/admin/audit.csv?action=account.login&actor=root")
    assert export.status == 200 and export.header("content-type").startswith("text/csv")
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(export.body.decode("utf-8-sig"))))
    assert rows and all(r["action"] == "account.login" and r["actor"] == "root" for r in rows)
    assert rows[0]["client"] == "127.0.0.1"


def test_an_admin_loads_an_organisation_file_and_a_non_yaml_is_refused(env: Any) -> None:
    import yaml
    from console_support import other_org
    world, server = env
    admin = login(server, "root", ADMIN_PASSWORD)
    data = dict(other_org("official-tj"), name="河北省测试局", code="冀测", signatures="none")
    data["people"] = [dict(p, id="h_" + p["id"][2:]) for p in data["people"]]
    del data["seal"]                      # its seal is made later (the page says so)
    text = yaml.safe_dump(data, allow_unicode=True).encode()
    answer = admin.post("/admin/organisations", [("csrf", admin.csrf())],
                        files=[("file", "hebei.yaml", text, "application/yaml")])
    assert answer.status == 303 and "done=loaded" in answer.location, answer.text[-1200:]
    assert 'data-name="河北省测试局"' in admin.get("/admin/organisations").text
    assert sql(world.db, "SELECT organisation FROM accounts WHERE id='h_sun'") == [("河北省测试局",)]
    before = domain_rows(world.db)
    bad = admin.post("/admin/organisations", [("csrf", admin.csrf())],
                     files=[("file", "x.yaml", b"\xff\xfe not yaml", "application/yaml")])
    assert bad.status == 422
    assert domain_rows(world.db) == before

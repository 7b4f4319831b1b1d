"""Two console nodes on one PostgreSQL database: a session opened on one node works on the other,
an act through one is seen by the other, and logging out on one ends the session on both at once."""
from __future__ import annotations

from pathlib import Path

import pytest

from console_support import PASSWORD, Client, ConsoleServer, document_pdf, make_world, pdf_file
from pg_fixture import PostgresUnavailable, prepare_home_database


def test_two_nodes_share_sessions_documents_and_logout(tmp_path: Path) -> None:
    home = tmp_path / "home"
    try:
        prepare_home_database(home, backend_name="postgresql", label="console")
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL is not available: {exc}")
    make_world(home, people=True)
    with ConsoleServer(home, workers=2) as a, ConsoleServer(home, workers=1) as b:
        sun = Client(a.url)
        assert sun.login("sun", PASSWORD).status == 303
        on_b = Client(b.url)
        on_b.cookies = dict(sun.cookies)
        created = on_b.post("/documents/new", [("csrf", on_b.csrf("/documents/new")), ("kind", "upward"),
                                               ("title", "两个节点"), ("to", "chen")],
                            files=[pdf_file(document_pdf("两个节点"))])
        assert created.status == 303, created.text[:500]
        doc_id = int(created.location.split("/")[2].split("?")[0])
        chen = Client(a.url)
        assert chen.login("chen", PASSWORD).status == 303
        assert f'data-doc-id="{doc_id}"' in chen.get("/todo").text
        approved = chen.post(f"/documents/{doc_id}/act", [("csrf", chen.csrf(f"/documents/{doc_id}")),
                                                           ("action", "approve"), ("opinion", "同意")])
        assert approved.status == 303, approved.text[:500]
        chen_on_b = Client(b.url)
        chen_on_b.cookies = dict(chen.cookies)
        assert "办公室负责人把关" in chen_on_b.get(f"/documents/{doc_id}").text
        assert on_b.post("/logout", [("csrf", on_b.csrf())]).status == 303
        page = sun.get("/todo")                      # the same session on node a: ended at once
        assert page.status == 303 and page.location.startswith("/login")

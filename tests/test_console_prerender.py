"""Pages drawn ahead and workers warmed (issue 15's first view), with the checks unchanged.

The real `yinxin console` stores versions through the API; the picture cache is then looked at on
disk and compared with poppler's `pdftoppm` drawing of the same bytes; the seal's page is the one
qpdf's JSON names for the signature field.  Token checks stay on every request: a revoked token is
refused by the very next request.
"""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from console_support import (SEAL_PASSWORD, Client, ConsoleServer, document_pdf, domain_rows, make_world, pdf_file,
                             sql)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("console-prerender")
    world = make_world(base / "home", people=False)
    server = ConsoleServer(world.path, workers=1)
    yield world, server, base
    server.stop()


def token(world: Any, account: str, name: str) -> str:
    from pki.accounts.testing import actor_for_tests
    from pki.accounts.tokens import ApiTokens
    return ApiTokens.of(world.home).issue(account, name=name, actor=actor_for_tests(world.home, account)).text


def cache_dir(world: Any, sha256: str) -> Path:
    return world.path / "cache" / "pages" / sha256[:2] / sha256


def wait_for(path: Path, seconds: float = 60) -> None:
    """Until the background thread has written `path` (bounded; the time is not what is tested)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not drawn ahead"
        time.sleep(0.05)


def poppler_page(pdf: bytes, page: int, tmp: Path) -> Image.Image:
    source = tmp / "version.pdf"
    source.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "96", "-f", str(page), "-l", str(page), "-png", "-singlefile", str(source),
                    str(tmp / "poppler")], check=True, timeout=60)
    return Image.open(tmp / "poppler.png").convert("L")


def create(client: Client, title: str, pdf: bytes) -> dict[str, Any]:
    answer = client.post("/api/v1/documents", [("kind", "upward"), ("title", title), ("to", "chen")],
                         files=[pdf_file(pdf)])
    assert answer.status == 201, answer.text[:500]
    return answer.json()


def test_page_one_is_drawn_ahead_when_the_console_stores_a_version(env: Any, tmp_path: Path) -> None:
    world, server, base = env
    pdf = document_pdf("先画第一页", pages=3)
    created = create(Client(server.url, token=token(world, "sun", "prerender")), "先画第一页", pdf)
    sha = created["versions"][0]["sha256"]
    folder = cache_dir(world, sha)
    wait_for(folder / "ahead.mark")
    drawn = Image.open(folder / "p1-z1.png").convert("L")
    assert not (folder / "p2-z1.png").exists() and not (folder / "p3-z1.png").exists()   # page 1 only
    # the same page as poppler draws it from the same bytes: same size, nearly the same pixels
    reference = poppler_page(pdf, 1, tmp_path)
    assert abs(drawn.width - reference.width) <= 1 and abs(drawn.height - reference.height) <= 1
    difference = ImageChops.difference(drawn.resize(reference.size), reference)
    assert ImageStat.Stat(difference).mean[0] < 8
    assert ImageStat.Stat(drawn).stddev[0] > 10                                      # not a blank page
    # and a person allowed to see it gets exactly that picture
    from console.security import SessionCookie
    from pki.accounts.testing import session_for_tests
    session = session_for_tests(world.home, "chen")
    viewer = Client(server.url)
    viewer.cookies["__Host-yinxin"] = SessionCookie(session.id, session.token).encode()
    answer = viewer.get(f"/documents/{created['id']}/pages/1.png?v=1&zoom=1")
    assert answer.status == 200 and answer.body == (folder / "p1-z1.png").read_bytes()
    # another organisation's person does not, drawn ahead or not
    session = session_for_tests(world.home, "t_head")
    stranger = Client(server.url)
    stranger.cookies["__Host-yinxin"] = SessionCookie(session.id, session.token).encode()
    assert stranger.get(f"/documents/{created['id']}/pages/1.png?v=1&zoom=1").status == 404


def qpdf_signature_pages(pdf: bytes, tmp: Path) -> list[int]:
    source = tmp / "sealed.pdf"
    source.write_bytes(pdf)
    out = subprocess.run(["qpdf", "--json", "--json-key=acroform", str(source)], capture_output=True, text=True,
                         timeout=60)
    fields = json.loads(out.stdout)["acroform"]["fields"]
    return sorted({f["pageposfrom1"] for f in fields if f.get("fieldtype") == "/Sig"})


def test_the_seal_s_page_is_drawn_ahead_too(env: Any, tmp_path: Path) -> None:
    world, server, base = env
    from console.prerender import seal_pages
    wang = Client(server.url, token=token(world, "wang", "prerender"))
    pdf = document_pdf("印在第三页", pages=3)
    answer = wang.post("/api/v1/seals/official-bj/stamp", [("password", SEAL_PASSWORD.decode()), ("page", "3"),
                                                             ("x_mm", "150"), ("y_mm", "60")], files=[pdf_file(pdf)])
    assert answer.status == 200, answer.text[:500]
    sealed = answer.body
    assert seal_pages(sealed) == qpdf_signature_pages(sealed, tmp_path) == [3]
    assert seal_pages(pdf) == []
    created = create(Client(server.url, token=token(world, "sun", "prerender-seal")), "印在第三页", sealed)
    folder = cache_dir(world, created["versions"][0]["sha256"])
    wait_for(folder / "ahead.mark")
    assert (folder / "p1-z1.png").exists() and (folder / "p3-z1.png").exists()
    assert not (folder / "p2-z1.png").exists()
    (tmp_path / "stored.pdf").write_bytes(sealed)
    npages = int(subprocess.run(["qpdf", "--show-npages", str(tmp_path / "stored.pdf")], capture_output=True,
                                text=True, timeout=60, check=True).stdout)
    assert len(json.loads((folder / "pages.json").read_text())) == npages


def test_the_todo_page_draws_ahead_what_it_lists(env: Any) -> None:
    world, server, base = env
    from console.security import SessionCookie
    from pki.accounts.testing import actor_for_tests, session_for_tests
    pdf = document_pdf("别处存入的公文", pages=2)
    doc = world.flow().new_document(kind="upward", title="别处存入的公文", pdf=pdf, actor=actor_for_tests(world.home, "sun"),
                                    to="chen")                  # stored by the library, as `yinxin doc new` does
    folder = cache_dir(world, doc.versions[0].digests.sha256)
    assert not folder.exists()
    session = session_for_tests(world.home, "chen")
    viewer = Client(server.url)
    viewer.cookies["__Host-yinxin"] = SessionCookie(session.id, session.token).encode()
    listed = viewer.get("/todo")
    assert listed.status == 200 and f'data-doc-id="{doc.id}"' in listed.text
    wait_for(folder / "p1-z1.png")
    wait_for(folder / "ahead.mark")
    assert not (folder / "p2-z1.png").exists()


def test_a_revoked_token_is_refused_by_the_next_request(env: Any) -> None:
    world, server, base = env
    from pki.accounts.testing import actor_for_tests
    from pki.accounts.tokens import ApiTokens
    text = token(world, "chen", "revoke-at-once")
    client = Client(server.url, token=text)
    for _ in range(3):
        assert client.get("/api/v1/todo").status == 200
    ApiTokens.of(world.home).revoke("chen", name="revoke-at-once", actor=actor_for_tests(world.home, "chen"))
    answer = client.get("/api/v1/todo")
    assert answer.status == 401 and "revoked" in answer.json()["message"]
    assert client.get("/api/v1/me").status == 401


def test_warming_a_worker_checks_and_changes_nothing(env: Any) -> None:
    world, server, base = env
    from console.app import create_app
    before = domain_rows(world.db)
    events = sql(world.db, "SELECT count(*) FROM audit_events")
    app = create_app(world.home, warm=True)
    assert app.app.state.console.limiter._seen == {}             # no failure counted against anyone
    assert domain_rows(world.db) == before
    assert sql(world.db, "SELECT count(*) FROM audit_events") == events

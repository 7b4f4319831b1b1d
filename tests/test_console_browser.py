"""The console in a real browser: Debian's chromium driven by Selenium 4 (offline, headless) against the
real `yinxin console` on 127.0.0.1, at 1366×768.

* a first login with the password change;
* the upward route walked by four people in four browser sessions, each logging in with the PIN of
  their signing key (every act a decision signed with their own certificate);
* the seal custodian drags the seal with pointer actions to a spot and seals: the red seal in
  poppler's rendering of the downloaded PDF lies within 3 mm of the drop point, and the PDF verifies —
  OpenSSL over the SM2 signature (document flow), pdfsig and pyHanko's validator for RSA (/stamp);
* the arrow keys move the seal; the verification page judges a sealed and a tampered file.

Screenshots of every page are kept under the test's tmp directory and copied to tests/artifacts/.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from console_support import (INITIAL, ORG, PASSWORD, PIN, SEAL_PASSWORD, Client, ConsoleServer, document_pdf,
                             keep_artifact, make_world)
from pdf_fixtures import flip_signed_byte, pdfsig, red_mask, render
from seal_support import pyhanko_statuses, sm2_attrs_verify

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
                                reason="chromium and chromium-driver are installed by scripts/bootstrap.sh")


class Browser:
    """One browser session (its own profile): pages, screenshots, the session cookie for downloads."""

    def __init__(self, base: str, shots: Path, name: str) -> None:
        os.environ["SE_OFFLINE"] = "true"
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        self.profile = tempfile.mkdtemp(prefix=f"yinxin-chrome-{name}-")
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-dev-shm-usage", "--window-size=1366,768", f"--user-data-dir={self.profile}",
                    "--force-device-scale-factor=1", "--lang=zh-CN"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(120)
        self.base, self.shots, self.name, self.count = base, shots, name, 0

    def go(self, path: str) -> None:
        self.driver.get(self.base + path)

    def find(self, css: str) -> Any:
        from selenium.webdriver.common.by import By
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, css: str, timeout: float = 60) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait
        return WebDriverWait(self.driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))

    def type(self, name: str, text: str) -> None:
        field = self.find(f"[name='{name}']")
        field.clear()
        field.send_keys(text)

    def shot(self, label: str) -> Path:
        self.count += 1
        path = self.shots / f"{self.name}-{self.count:02d}-{label}.png"
        self.driver.save_screenshot(str(path))
        keep_artifact(path, path.name)
        return path

    def login(self, user: str, password: bytes, *, pin: bytes | None = None) -> None:
        self.go("/login")
        self.type("username", user)
        self.type("password", password.decode())
        if pin is not None:
            self.type("pin", pin.decode())
        self.shot("login")
        self.find("[data-testid=login-submit]").click()
        self.wait("[data-testid=me]")

    def client(self) -> Client:
        """A plain HTTP client holding this browser's session cookie (to download what it links to)."""
        client = Client(self.base)
        client.cookies = {c["name"]: c["value"] for c in self.driver.get_cookies()}
        return client

    def quit(self) -> None:
        self.driver.quit()
        import shutil
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture
def browsers(tmp_path: Path) -> Iterator[Callable[[str, str], Browser]]:
    opened: list[Browser] = []
    shots = tmp_path / "screenshots"
    shots.mkdir()

    def open_browser(base: str, name: str) -> Browser:
        browser = Browser(base, shots, name)
        opened.append(browser)
        return browser

    yield open_browser
    for browser in opened:
        browser.quit()


def act_in_browser(b: Browser, doc_id: int, action: str, opinion: str, to: str | None = None) -> None:
    from selenium.webdriver.support.ui import Select
    b.go("/todo")
    row = b.wait(f"[data-testid=todo-item][data-doc-id='{doc_id}']")
    b.shot("todo")
    row.find_element("css selector", "a").click()
    form = b.wait(f"[data-testid=act-{action}]")
    form.find_element("css selector", "textarea[name=opinion]").send_keys(opinion)
    if to is not None:
        Select(form.find_element("css selector", "select[name=to]")).select_by_value(to)
    b.shot(f"{action}")
    form.find_element("css selector", f"[data-testid=do-{action}]").click()
    b.wait("p.flash.ok")
    b.shot(f"{action}-done")


def drag_seal(b: Browser, dx: int, dy: int) -> tuple[float, float]:
    """Drag the seal with pointer actions by (dx, dy) CSS pixels; returns the drop point in millimetres
    from the page's lower-left corner, measured on the page image as displayed (A4: 210 × 297 mm)."""
    from selenium.webdriver.common.action_chains import ActionChains
    handle = b.wait("[data-testid=seal-handle]:not([hidden])")
    b.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
    image = b.find("[data-testid=page-image]")
    start = b.driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];", handle)
    chain = ActionChains(b.driver).click_and_hold(handle)
    steps = 6
    for _ in range(steps):
        chain.move_by_offset(dx / steps, dy / steps)
    chain.release().perform()
    box = b.driver.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return [r.left, r.top, r.width, r.height];", image)
    drop_x, drop_y = start[0] + dx, start[1] + dy
    return (drop_x - box[0]) / box[2] * 210.0, (box[1] + box[3] - drop_y) / box[3] * 297.0


def seal_centre_mm(before: Path, after: Path, page: int, tmp: Path) -> tuple[float, float]:
    """The centre of the red pixels poppler draws on `after` and not on `before` (the seal), in mm
    from the page's lower-left corner."""
    from PIL import ImageChops
    dpi = 100
    old, new = render(before, page, dpi), render(after, page, dpi)
    changed = ImageChops.difference(old, new).convert("L").point(lambda v: 255 if v > 40 else 0)
    mask = ImageChops.multiply(red_mask(new), changed)
    box = mask.getbbox()
    assert box is not None, "no red seal on the rendered page"
    new.save(tmp / "rendered.png")
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return cx / dpi * 25.4, (new.height - cy) / dpi * 25.4


# =========================================================================== first login

def test_first_login_changes_the_initial_password(tmp_path: Path, browsers: Any) -> None:
    world = make_world(tmp_path / "home", people=False)
    from pki.accounts.accounts import Accounts
    accounts = Accounts.of(world.home)
    admin = accounts.resume(accounts.authenticate("root", b"Admin-Passphrase-2026").token)
    accounts.set_password("sun", INITIAL, actor=admin)
    world.home.store.dispose()
    with ConsoleServer(world.path) as server:
        b = browsers(server.url, "first-login")
        b.go("/todo")
        assert "/login" in b.driver.current_url
        b.type("username", "sun")
        b.type("password", INITIAL.decode())
        b.find("[data-testid=login-submit]").click()
        new_field = b.wait("[name=new_password]")
        b.shot("change-required")
        assert "首次登录" in b.driver.page_source and b.driver.get_cookie("__Host-yinxin") is None
        b.type("password", INITIAL.decode())
        new_field.send_keys("Bright-Autumn-Field-3")
        b.type("new_password_confirm", "Bright-Autumn-Field-3")
        b.find("[data-testid=login-submit]").click()
        b.wait("[data-testid=me]")
        b.shot("logged-in")
        cookie = b.driver.get_cookie("__Host-yinxin")
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
        assert b.driver.execute_script("return document.cookie").find("__Host-yinxin=") < 0   # HttpOnly
        again = browsers(server.url, "second-login")
        again.login("sun", b"Bright-Autumn-Field-3")
        assert "待办公文" in again.driver.page_source


# =========================================================================== the route, four people

def test_upward_route_walked_by_four_people_then_the_custodian_drags_the_seal(tmp_path: Path, browsers: Any) -> None:
    world = make_world(tmp_path / "home", signed=True)
    with ConsoleServer(world.path, workers=2) as server:
        sun = browsers(server.url, "1-sun")
        sun.login("sun", PASSWORD, pin=PIN)
        sun.go("/documents/new")
        source = tmp_path / "draft.pdf"
        source.write_bytes(document_pdf("关于开展电子印章试点工作的请示"))
        sun.find("select[name=kind] option[value=upward]").click()
        sun.type("title", "关于开展电子印章试点工作的请示")
        sun.find("input[name=file]").send_keys(str(source))
        sun.type("to", "chen")
        sun.shot("draft")
        sun.find("[data-testid=new-submit]").click()
        title = sun.wait("[data-testid=doc-title]")
        doc_id = int(title.get_attribute("data-doc-id"))
        sun.shot("submitted")

        chen = browsers(server.url, "2-chen")
        chen.login("chen", PASSWORD, pin=PIN)
        act_in_browser(chen, doc_id, "approve", "同意，请办公室把关。")
        zhang = browsers(server.url, "3-zhang")
        zhang.login("zhang", PASSWORD, pin=PIN)
        act_in_browser(zhang, doc_id, "approve", "同意，请李副局长审阅。", to="li")
        li = browsers(server.url, "4-li")
        li.login("li", PASSWORD, pin=PIN)
        act_in_browser(li, doc_id, "approve", "同意。")
        state = li.find("[data-testid=doc-state]")
        assert state.get_attribute("data-step") == "sign_off"
        decisions = li.find("[data-testid=decisions]")
        assert decisions.get_attribute("data-ok") == "true" and decisions.get_attribute("data-signed") == "4"
        assert all(e.get_attribute("data-signed") == "true" for e in li.all("[data-testid=log-entry]"))

        # the director signs off and the registry registers, through the library, as themselves
        from pki.accounts.testing import with_key
        flow = world.flow()
        flow.act(doc_id, actor=with_key(world.home, world.actor("wu"), PIN), action="sign-off", opinion="同意上报。")
        flow.act(doc_id, actor=with_key(world.home, world.actor("ma"), PIN), action="register", opinion="已登记")
        signed_off = flow.pdf(doc_id)
        world.home.store.dispose()

        wang = browsers(server.url, "5-wang")
        wang.login("wang", PASSWORD, pin=PIN)
        wang.go(f"/documents/{doc_id}")
        wang.find("[data-testid=go-seal]").click()
        wang.wait("[data-testid=seal-handle]:not([hidden])")
        page = int(wang.find("#stage").get_attribute("data-page"))
        wang.shot("seal-page")
        drop = drag_seal(wang, -120, -70)
        wang.shot("dragged")
        wang.find("#preview-button").click()
        preview = wang.wait("#preview:not([hidden]) img")
        wang.driver.execute_script("return arguments[0].decode()", preview)
        wang.shot("preview")
        wang.type("seal_password", SEAL_PASSWORD.decode())
        wang.find("[data-testid=seal-submit]").click()
        wang.wait("p.flash.ok")
        wang.shot("sealed")
        assert wang.find("[data-testid=verification]").get_attribute("data-valid") == "true"

        sealed = wang.client().get(f"/documents/{doc_id}/file")
        assert sealed.status == 200 and sealed.body.startswith(signed_off)
        before, after = tmp_path / "signed-off.pdf", tmp_path / "sealed.pdf"
        before.write_bytes(signed_off)
        after.write_bytes(sealed.body)
        keep_artifact(after, "flow-sealed.pdf")
        centre = seal_centre_mm(before, after, page, tmp_path)
        assert abs(centre[0] - drop[0]) <= 3 and abs(centre[1] - drop[1]) <= 3, (centre, drop)
        assert "Signature Verified Successfully" in sm2_attrs_verify(after, tmp_path / "openssl")
        log = world.flow().verify_log(doc_id)
        assert log.ok and log.signed == 7


# =========================================================================== /stamp, RSA, pdfsig

def test_stamp_page_drag_and_download_rsa_verified_by_pdfsig_and_pyhanko(tmp_path: Path, browsers: Any) -> None:
    world = make_world(tmp_path / "home", algorithm="rsa2048")
    with ConsoleServer(world.path) as server:
        b = browsers(server.url, "stamp-rsa")
        b.login("wang", PASSWORD)
        b.go("/stamp")
        source = tmp_path / "letter.pdf"
        source.write_bytes(document_pdf("关于印章使用的函"))
        chooser = b.find("select[name=seal]")
        assert chooser.get_attribute("value") == "official-bj"          # the first of wang's seals
        b.find("input[name=file]").send_keys(str(source))
        b.shot("upload")
        b.find("[data-testid=stamp-upload]").click()
        b.wait("[data-testid=seal-handle]:not([hidden])")
        page = int(b.find("#stage").get_attribute("data-page"))
        # the arrow keys move it a millimetre at a time
        handle = b.find("[data-testid=seal-handle]")
        start_x = float(b.find("#f-x").get_attribute("value"))
        from selenium.webdriver.common.keys import Keys
        handle.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_LEFT)
        assert abs(float(b.find("#f-x").get_attribute("value")) - (start_x - 3)) < 0.01
        drop = drag_seal(b, 90, -150)
        b.shot("dragged")
        b.type("seal_password", SEAL_PASSWORD.decode())
        b.find("[data-testid=seal-submit]").click()
        link = b.wait("[data-testid=download]")
        b.shot("sealed")
        assert b.find("[data-testid=verify-result]").get_attribute("data-valid") == "true"
        sealed = b.client().get(link.get_attribute("href").replace(server.url, ""))
        assert sealed.status == 200 and sealed.body.startswith(source.read_bytes())
        after = tmp_path / "sealed.pdf"
        after.write_bytes(sealed.body)
        keep_artifact(after, "stamp-rsa-sealed.pdf")
        centre = seal_centre_mm(source, after, page, tmp_path)
        assert abs(centre[0] - drop[0]) <= 3 and abs(centre[1] - drop[1]) <= 3, (centre, drop)
        text = pdfsig(after)
        assert "Signature Validation: Signature is Valid" in text, text
        from pki.ca import CertificateAuthority
        roots = [i.certificate for i in CertificateAuthority(world.home).cas() if i.parent is None]
        statuses = pyhanko_statuses(after, roots)
        assert len(statuses) == 1 and statuses[0].intact and statuses[0].valid and statuses[0].trusted

        # the verification page: the sealed file passes, a tampered one fails
        b.go("/verify")
        b.find("input[name=file]").send_keys(str(after))
        b.find("[data-testid=verify-submit]").click()
        result = b.wait("[data-testid=verify-result]")
        b.shot("verified")
        assert result.get_attribute("data-valid") == "true"
        assert b.find("[data-testid=signature] img.seal-thumb").get_attribute("src").endswith("/seals/official-bj/picture")
        report = b.client().get(b.find("[data-testid=report-download]").get_attribute("href").replace(server.url, ""))
        assert report.status == 200 and report.json()["valid"] is True
        tampered = tmp_path / "tampered.pdf"
        tampered.write_bytes(flip_signed_byte(after.read_bytes()))
        b.go("/verify")
        b.find("input[name=file]").send_keys(str(tampered))
        b.find("[data-testid=verify-submit]").click()
        result = b.wait("[data-testid=verify-result]")
        b.shot("tampered")
        assert result.get_attribute("data-valid") == "false"

"""ofd.js (npm, pure JavaScript, tests/js) in headless Chromium opens yinxin's sealed OFDs: it
draws the seal's PNG picture where the StampAnnot says, accepts the SM2 signature over TBS_Sign
and the References' SM3 CheckValues.  Chromium and chromedriver are Debian's; ofd.js is
installed by scripts/bootstrap.sh (npm ci, pinned by tests/js/package-lock.json)."""
from __future__ import annotations

import base64
import io
import os
import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from seal.ofd.sample import text_ofd
from seal_support import ORG, CliWorld, sm2_cli_world

JS = Path(__file__).parent / "js"
VIEWER = JS / "ofd-viewer.html"
BUNDLE = JS / "node_modules" / "ofd.js" / "lib" / "ofd.umd.min.js"
WIDTH = 794        # CSS pixels for an A4 page's width (96 dpi)


@pytest.fixture(scope="module")
def browser():
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not Path(tool).exists():
            pytest.fail(f"{tool} is missing: run scripts/bootstrap.sh (Debian's chromium and chromium-driver)")
    if not BUNDLE.exists():
        pytest.fail("ofd.js is not installed in tests/js/node_modules: run scripts/bootstrap.sh (npm ci)")
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                "--window-size=900,1200", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> CliWorld:
    base = tmp_path_factory.mktemp("ofd-browser")
    return sm2_cli_world(base, "bj-ofd")


def read_in_ofdjs(driver, path: Path) -> dict:
    driver.get(VIEWER.as_uri())
    assert driver.execute_script("return window.ofdResult.ready") is True
    driver.execute_script("window.readOfd(arguments[0], arguments[1])",
                          base64.b64encode(path.read_bytes()).decode("ascii"), WIDTH)
    deadline = time.monotonic() + 60        # a bound on waiting, not a timing assertion
    while time.monotonic() < deadline:
        result = driver.execute_script("return window.ofdResult")
        if result.get("done"):
            return result
        time.sleep(0.2)
    raise AssertionError("ofd.js did not finish reading the OFD")


def red_pixels(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if r > 150 and g < 110 and b < 110)


def test_ofdjs_draws_our_seal_and_accepts_its_signature(browser, cli):
    doc = cli.write("notice.ofd", text_ofd([["关于开展电子印章试点工作的通知", "为推进电子政务建设，经研究，决定试点。",
                                             (ORG, 130, 250, 5), ("2026年5月8日", 130, 260, 5)]]))
    out = cli.files / "notice-sealed.ofd"
    assert cli.stamp(doc, out, "bj-ofd", "--anchor", ORG).code == 0
    result = read_in_ofdjs(browser, out)
    assert "error" not in result, result
    assert result["pages"] == 1
    (seal,) = result["seals"]
    assert seal["verified"] is True and seal["references"] is True
    left, top, width, height = seal["rect"]
    assert width == pytest.approx(42 / 210 * WIDTH, rel=0.05) and height == pytest.approx(width, rel=0.01)
    element = browser.find_elements("css selector", "[name=seal_img_div]")[0]
    assert red_pixels(element.screenshot_as_png) > 0.1 * width * height      # the red seal is drawn there


def test_ofdjs_draws_every_riding_slice_and_accepts_the_signature(browser, cli):
    doc = cli.write("three.ofd", text_ofd([[f"第{i + 1}页"] for i in range(3)]))
    out = cli.files / "three-riding.ofd"
    assert cli.stamp(doc, out, "bj-ofd", "--page", "3", "--at", "100,60", "--riding").code == 0
    result = read_in_ofdjs(browser, out)
    assert "error" not in result, result
    seals = result["seals"]
    assert len(seals) == 4 and all(s["verified"] and s["references"] for s in seals)
    slices = browser.find_elements("css selector", "[name=seal_img_div]")
    assert sum(1 for el in slices if red_pixels(el.screenshot_as_png) > 50) == 4


def test_ofdjs_refuses_a_tampered_page(browser, cli, tmp_path):
    import zipfile
    doc = cli.write("tamper.ofd", text_ofd([["原文", (ORG, 130, 250, 5)]]))
    sealed = cli.files / "tamper-sealed.ofd"
    assert cli.stamp(doc, sealed, "bj-ofd", "--anchor", ORG).code == 0
    changed = tmp_path / "changed.ofd"
    with zipfile.ZipFile(sealed) as src, zipfile.ZipFile(changed, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("Page_0/Content.xml"):
                data = data.replace("原文".encode(), "改文".encode())
            dst.writestr(info, data)
    (seal,) = read_in_ofdjs(browser, changed)["seals"]
    assert seal["verified"] is True and seal["references"] is False

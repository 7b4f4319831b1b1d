"""Test material for the PDF sealing tests, made with independent tools.

* Certificates: the openssl CLI makes an RSA-2048, a P-256 and an SM2 root
  and leaf (SM2 signed with SM3 and the GM/T 0009 distinguishing ID).
* PDFs: reportlab writes multi-page documents with Chinese text in an
  embedded, subset TrueType font (Type0/CIDFontType2, Identity-H, ToUnicode),
  the way ordinary producers do.  Noto Sans CJK ships CFF outlines, which
  reportlab cannot embed, so the needed glyphs are converted to TrueType
  outlines with fontTools first.

Everything is built once per test session (`functools.cache`) in a temporary
directory removed at exit.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from asn1crypto import pem, x509

import pki
import pytest

#: the clock the PDF tests sign and verify with: just after the test certificates' notBefore
CLOCK = pki.FixedClock(datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=5))


@pytest.fixture(autouse=True, scope="module")
def clock_follows_the_run() -> None:
    """The test certificates are made (notBefore = now) when the session's fixtures first run, which in
    a long run can be minutes after a module was imported: keep the clock just after that.  Modules
    that import this fixture get it automatically."""
    CLOCK.set(datetime.now(timezone.utc).replace(microsecond=0) + timedelta(minutes=5))

DISTID = "1234567812345678"
NOTO_CJK = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
ORG = "北京市测试局"
DATE = "2024年5月8日"
TITLE = "关于开展电子印章试点工作的通知"
BODY = ("各区人民政府，市政府各委、办、局：为推进电子政务建设，经研究，决定在全市开展电子印章"
        "试点工作。现将有关事项通知如下。请各单位认真贯彻执行。特此通知。")


def openssl(*args: str, cwd: Path | None = None, input: bytes | None = None) -> bytes:
    proc = subprocess.run(["openssl", *args], cwd=cwd, input=input, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="yinxin-pdf-tests-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@dataclass(frozen=True)
class Identity:
    """A leaf key + certificate under its own root, as files and as objects."""

    name: str              # rsa | p256 | sm2
    dir: Path
    key: pki.PrivateKey
    cert: x509.Certificate
    root: x509.Certificate

    @property
    def leaf_pem(self) -> Path:
        return self.dir / "leaf.pem"

    @property
    def leaf_pub(self) -> Path:
        return self.dir / "leafpub.pem"

    @property
    def root_pem(self) -> Path:
        return self.dir / "root.pem"


_KEYGEN = {
    "rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    "p256": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    "sm2": ["-algorithm", "SM2"],
}
_SIGN = {"rsa": ["-sha256"], "p256": ["-sha256"],
         "sm2": ["-sm3", "-sigopt", f"distid:{DISTID}"]}
_LEAF_EXT = """basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,nonRepudiation
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


_DECLARED_REVINFO = """authorityInfoAccess=OCSP;URI:http://127.0.0.1:9/ocsp
crlDistributionPoints=URI:http://127.0.0.1:9/root.crl
"""


def _load_cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if pem.detect(data):
        data = pem.unarmor(data)[2]
    return x509.Certificate.load(data)


@functools.cache
def identity(name: str) -> Identity:
    d = workdir() / f"pki-{name}"
    d.mkdir()
    for who in ("root", "leaf"):
        openssl("genpkey", *_KEYGEN[name], "-out", f"{who}.key", cwd=d)
    openssl("req", "-x509", "-new", "-key", "root.key", *_SIGN[name], "-days", "3650",
            "-subj", f"/C=CN/O=yinxin tests/CN=Test {name.upper()} Root", "-set_serial", "1",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "root.pem", cwd=d)
    req_sign = _SIGN[name]
    openssl("req", "-new", "-key", "leaf.key", *req_sign,
            "-subj", f"/C=CN/O={ORG}/CN={ORG}电子印章 {name}", "-utf8", "-out", "leaf.csr", cwd=d)
    # The RSA leaf names where its status is published (never fetched: nothing listens
    # there and validation does not fetch); the others name nothing, so both the
    # declared and the undeclared revocation paths get tested.
    (d / "leaf.ext").write_text(_LEAF_EXT + (_DECLARED_REVINFO if name == "rsa" else ""))
    vfy = ["-vfyopt", f"distid:{DISTID}"] if name == "sm2" else []
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "root.pem", "-CAkey", "root.key",
            *_SIGN[name], *vfy, "-days", "365", "-set_serial", "4660", "-extfile", "leaf.ext",
            "-out", "leaf.pem", cwd=d)
    openssl("pkey", "-in", "leaf.key", "-pubout", "-out", "leafpub.pem", cwd=d)
    key = pki.load_private_key((d / "leaf.key").read_bytes())
    return Identity(name, d, key, _load_cert(d / "leaf.pem"), _load_cert(d / "root.pem"))


# --------------------------------------------------------------------------- PDFs

@functools.cache
def cjk_ttf() -> Path:
    """A TrueType-outline subset of Noto Sans CJK SC with the characters the tests write."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTCollection

    chars = sorted(set(ORG + DATE + TITLE + BODY + "文件第页共办公室印发0123456789 ，。：、（）-abcdefghijklmnopqrstuvwxyz"
                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    source = next(f for f in TTCollection(str(NOTO_CJK), lazy=True).fonts
                  if f["name"].getDebugName(4) == "Noto Sans CJK SC")
    cmap = source.getBestCmap()
    glyph_set = source.getGlyphSet()
    order, char_map, glyphs, metrics = [".notdef"], {}, {}, {}
    pen = TTGlyphPen(None)
    glyphs[".notdef"] = pen.glyph()
    metrics[".notdef"] = (1000, 0)
    for ch in chars:
        gname = cmap.get(ord(ch))
        if gname is None:
            continue
        if gname not in glyphs:
            pen = TTGlyphPen(None)
            glyph_set[gname].draw(Cu2QuPen(pen, max_err=1.0, reverse_direction=True))
            glyph = pen.glyph()
            glyphs[gname] = glyph
            order.append(gname)
            metrics[gname] = (source["hmtx"][gname][0], 0)
        char_map[ord(ch)] = gname
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap(char_map)
    fb.setupGlyf(glyphs)
    glyf = fb.font["glyf"]
    metrics = {g: (w, getattr(glyf[g], "xMin", 0)) for g, (w, _) in metrics.items()}
    fb.setupHorizontalMetrics(metrics)
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    fb.setupNameTable({"familyName": "YinxinTestCJK", "styleName": "Regular"})
    fb.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    fb.setupPost()
    out = workdir() / "YinxinTestCJK.ttf"
    fb.save(str(out))
    return out


def make_document(path: Path, *, pages: int = 3, page_size=(595.28, 841.89), org: str = ORG,
                  date: str = DATE, anchor_on_page: int | None = None,
                  cid_fonts: bool = True, imprint: bool = False) -> Path:
    """A GB/T 9704-like notice: title, body, and on the last page the signing
    organisation's name above the date, right-aligned.  Each page also has a
    footer "第 i 页".  The organisation's name appears on page 1 too (in the
    "…文件" header), so "last occurrence" is meaningful.

    With `cid_fonts` (the default) the reportlab output is rewritten by
    cairo (poppler's pdftocairo, the PDF backend of Chromium, Inkscape and
    GTK applications), which embeds the text as a CIDFontType2 font with
    Identity-H encoding and a ToUnicode map; without it the text stays in
    reportlab's simple TrueType subsets.  With `imprint` the last page ends with a 版记 line
    "<org>办公室 … 印发" below the date, as GB/T 9704 documents do."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    if "YinxinCJK" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("YinxinCJK", str(cjk_ttf())))
    w, h = page_size
    c = canvas.Canvas(str(path), pagesize=page_size, invariant=1)
    c.setTitle(TITLE)
    last = anchor_on_page or pages
    for i in range(1, pages + 1):
        c.setFont("YinxinCJK", 16)
        if i == 1:
            c.drawCentredString(w / 2, h - 120, TITLE)
            c.drawString(80, h - 170, f"{org}文件")
        c.setFont("YinxinCJK", 12)
        y = h - 210
        for k in range(0, len(BODY), 30):
            c.drawString(80, y, BODY[k:k + 30])
            y -= 22
        if i == last:
            c.setFont("YinxinCJK", 16)
            c.drawRightString(w - 120, 260, org)
            c.drawRightString(w - 120, 230, date)
            if imprint:
                c.setFont("YinxinCJK", 12)
                c.drawString(80, 120, f"{org}办公室")
                c.drawRightString(w - 80, 120, f"{date}印发")
        c.setFont("YinxinCJK", 10)
        c.drawCentredString(w / 2, 40, f"第 {i} 页")
        c.showPage()
    c.save()
    if cid_fonts:
        simple = path.with_suffix(".simple.pdf")
        path.replace(simple)
        subprocess.run(["pdftocairo", "-pdf", str(simple), str(path)], check=True)
        simple.unlink()
    return path


@functools.cache
def document(pages: int = 3) -> bytes:
    path = workdir() / f"notice-{pages}.pdf"
    make_document(path, pages=pages)
    return path.read_bytes()


# --------------------------------------------------------------------------- independent judges

def pdfsig(path: Path) -> str:
    """poppler's pdfsig report (its exit code is 0 even when a signature fails: read the text)."""
    proc = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True)
    return proc.stdout + proc.stderr


def qpdf_check(path: Path) -> None:
    proc = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No syntax or stream encoding errors found" in proc.stdout, proc.stdout


def render(path: Path, page: int, dpi: int = 72, *, cropbox: bool = False):
    """Page `page` (1-based) as a PIL image, rendered by poppler's pdftoppm
    (the MediaBox, or with `cropbox` the CropBox as viewers show it)."""
    from PIL import Image

    prefix = workdir() / f"render-{path.stem}-{page}-{dpi}"
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-f", str(page), "-l", str(page),
                    *(["-cropbox"] if cropbox else []),
                    "-singlefile", str(path), str(prefix)], check=True)
    image = Image.open(f"{prefix}.png")
    image.load()
    return image.convert("RGB")


def red_mask(image):
    """A mask of the seal-red pixels (strong red, weak green and blue)."""
    from PIL import ImageChops

    r, g, b = image.split()
    return ImageChops.multiply(r.point(lambda v: 255 if v > 150 else 0),
                               ImageChops.multiply(g.point(lambda v: 255 if v < 120 else 0),
                                                   b.point(lambda v: 255 if v < 120 else 0)))


def red_box(image) -> tuple[int, int, int, int] | None:
    """Bounding box (left, top, right, bottom) of the red pixels, None if there are none."""
    return red_mask(image).getbbox()


# --------------------------------------------------------------------------- revocation data

_CA_CNF = """[ ca ]
default_ca = CA_default
[ CA_default ]
dir = .
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $dir/root.pem
private_key = $dir/root.key
default_md = {md}
default_crl_days = 30
default_days = 365
policy = policy_any
[ policy_any ]
commonName = supplied
"""


def _ca_dir(name: str, case: str) -> Path:
    ident = identity(name)
    d = workdir() / f"ca-{name}-{case}"
    if d.exists():
        return d
    d.mkdir()
    for f in ("root.pem", "root.key", "leaf.pem"):
        shutil.copy(ident.dir / f, d / f)
    (d / "index.txt").write_text("")
    (d / "crlnumber").write_text("01\n")
    (d / "ca.cnf").write_text(_CA_CNF.format(md="sm3" if name == "sm2" else "sha256"))
    return d


def _sigopt(name: str) -> list[str]:
    return ["-sigopt", f"distid:{DISTID}"] if name == "sm2" else []


@functools.cache
def crl(name: str, *, revoked: bool) -> bytes:
    """A DER CRL from the identity's root, made by `openssl ca -gencrl`, listing the
    leaf as revoked (keyCompromise) or listing nothing."""
    d = _ca_dir(name, "revoked" if revoked else "clean")
    if revoked:
        openssl("ca", "-config", "ca.cnf", "-revoke", "leaf.pem", "-crl_reason", "keyCompromise",
                cwd=d)
    openssl("ca", "-config", "ca.cnf", "-gencrl", *_sigopt(name), "-out", "crl.pem", cwd=d)
    return openssl("crl", "-in", "crl.pem", "-outform", "DER", cwd=d)


@functools.cache
def ocsp_response(name: str, *, revoked: bool) -> bytes:
    """A DER OCSP response about the leaf, signed by the root, made by `openssl ocsp`."""
    d = _ca_dir(name, "ocsp-revoked" if revoked else "ocsp-good")
    if revoked:
        openssl("ca", "-config", "ca.cnf", "-revoke", "leaf.pem", cwd=d)
    else:
        openssl("ca", "-config", "ca.cnf", "-valid", "leaf.pem", cwd=d)
    openssl("ocsp", "-issuer", "root.pem", "-cert", "leaf.pem", "-no_nonce", "-reqout", "req.der",
            cwd=d)
    openssl("ocsp", "-index", "index.txt", "-rsigner", "root.pem", "-rkey", "root.key",
            "-CA", "root.pem", "-reqin", "req.der", "-respout", "resp.der", "-ndays", "1",
            *(["-rsigopt", f"distid:{DISTID}"] if name == "sm2" else []), cwd=d)
    return (d / "resp.der").read_bytes()


def flip_signed_byte(data: bytes) -> bytes:
    """Flip one bit in the middle of the first signed byte range of the last signature
    (inside the original document, never inside /Contents)."""
    import re

    ranges = re.findall(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data)
    start, length = int(ranges[-1][0]), int(ranges[-1][1])
    out = bytearray(data)
    out[start + length // 2] ^= 0x01
    return bytes(out)

"""Helpers for the seal-record and seal-service tests (test_seal_*, test_cli_seal).

* `LibWorld`        — a home opened through the library with a FixedClock at the real time, an SM2
                      root with a subordinate seal CA, an RSA and an ECDSA root, a SealRegistry and a
                      SealService on it; `make_seal` creates a seal (password changed unless asked not)
* `CliWorld`        — a home driven only through the real `yinxin` console script, with the cast's
                      sessions (`session(name)`)
* who acts: the cast of the seal tests — admin (seal administrator and CA operator), admin2 (seal
  administrator), boss (RA officer), ca-admin (CA operator), the custodians wang (also a seal
  administrator: a custodian still never unlocks their own seal) and li;
  `person_for` makes an actor without a role for a bare Home
* `document_pdf`    — a GB/T 9704-like document from docflow.sample (cached per text)
* independent judges: `sm2_attrs_verify` (openssl pkeyutl over the CMS signed attributes),
  `pyhanko_statuses` (pyHanko's own validator), `anchor_box` (poppler's pdftotext -bbox),
  plus pdfsig / qpdf / pdftoppm from pdf_fixtures
* documents made by others: `add_empty_field` and `append_annotation` (pyHanko incremental
  updates), `foreign_signed` (pyHanko's SimpleSigner with an openssl-made key and certificate)
* the database read with sqlite3, not with our store: `db_rows`, `audit_events`
"""
from __future__ import annotations

import functools
import io
import json
import os
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from ca_helpers import CliResult, openssl, person_for, write_session, yinxin
from pki.accounts.actor import Actor
from pki.accounts.testing import actor_for_tests
from pki.audit import verify as audit_verify
from pki.ca import CertificateAuthority
from pki.clock import FixedClock, SystemClock
from pki.home import Home

import seal.store  # noqa: F401  (registers the seal tables before homes are opened)
from seal.records import SealRecord, SealRegistry
from seal.service import SealService

ROOT = Path(__file__).resolve().parent.parent
VECTORS = Path(__file__).parent / "vectors" / "seal"
DISTID = "1234567812345678"
CA_PASSWORD = b"Ca-Password-2026!"
SEAL_INITIAL = b"Initial-Seal-Pw-1"
SEAL_PASSWORD = b"Custodian-Pw-2026#"
WRONG_PASSWORD = b"Wrong-Password-99!"
ORG = "北京市测试局"
OTHER_ORG = "天津市测试局"
DATE = "2026年5月8日"
TITLE = "关于开展电子印章试点工作的通知"
BODY = ["为推进电子政务建设，经研究，决定在全市开展电子印章试点工作。现将有关事项通知如下。",
        "请各单位认真贯彻执行。", "特此通知。"]
A4_W, A4_H = 595.28, 841.89
MM = 72 / 25.4


# --------------------------------------------------------------------------- documents

@functools.lru_cache(maxsize=8)
def document_pdf(organisation: str = ORG, date: str = DATE, paragraphs: int = 1) -> bytes:
    """A one-page document (more pages with more `paragraphs`): organisation and date at the bottom right."""
    body = BODY * paragraphs if paragraphs > 1 else BODY
    return make_pdf(TITLE, organisation, date, body)


def make_pdf(title: str, organisation: str, date: str, body: Sequence[str]) -> bytes:
    from docflow.sample import make_document_pdf
    return make_document_pdf(title, organisation, date, list(body))


def page_count(pdf: bytes | Path) -> int:
    data = pdf.read_bytes() if isinstance(pdf, Path) else pdf
    return int(PdfFileReader(io.BytesIO(data), strict=False).root["/Pages"]["/Count"])


def add_empty_field(pdf: bytes, name: str, *, page: int = 0, box=(100, 100, 220, 220)) -> bytes:
    """The document plus an empty signature field, added by pyHanko as an incremental update."""
    from pyhanko.sign.fields import SigFieldSpec, append_signature_field
    buf = io.BytesIO(pdf)
    writer = IncrementalPdfFileWriter(buf)
    append_signature_field(writer, SigFieldSpec(name, on_page=page, box=box))
    writer.write_in_place()
    return buf.getvalue()


def append_annotation(pdf: bytes) -> bytes:
    """An incremental update after the last seal: a red square annotation on page 1."""
    buf = io.BytesIO(pdf)
    writer = IncrementalPdfFileWriter(buf)
    page_ref, _ = writer.find_page_for_modification(0)
    annot = generic.DictionaryObject({
        pdf_name("/Type"): pdf_name("/Annot"), pdf_name("/Subtype"): pdf_name("/Square"),
        pdf_name("/Rect"): generic.ArrayObject([generic.NumberObject(v) for v in (50, 50, 200, 200)]),
    })
    writer.register_annotation(page_ref, writer.add_object(annot))
    writer.write_in_place()
    return buf.getvalue()


def foreign_signed(pdf: bytes, field_name: str = "Foreign") -> tuple[bytes, Path]:
    """The document signed by pyHanko's own SimpleSigner with an openssl-made RSA key and certificate
    that belong to no yinxin home.  Returns (signed PDF, the foreign root's PEM file)."""
    from pdf_fixtures import identity
    from pyhanko.sign import signers
    ident = identity("rsa")
    signer = signers.SimpleSigner.load(str(ident.dir / "leaf.key"), str(ident.leaf_pem),
                                       ca_chain_files=(str(ident.root_pem),))
    buf = io.BytesIO(pdf)
    out = signers.sign_pdf(IncrementalPdfFileWriter(buf), signers.PdfSignatureMetadata(field_name=field_name),
                           signer=signer)
    return out.getvalue(), ident.root_pem


def flip_byte_in_signed_range(pdf: bytes) -> bytes:
    from pdf_fixtures import flip_signed_byte
    return flip_signed_byte(pdf)


# --------------------------------------------------------------------------- independent judges

def signatures_of(pdf: Path) -> list[dict[str, Any]]:
    """Field name, byte range, signer certificate, signed attributes and signature of each
    signature, read with pyHanko's reader and asn1crypto (no yinxin code)."""
    data = pdf.read_bytes()
    out = []
    with open(pdf, "rb") as fh:
        for sig in PdfFileReader(fh, strict=False).embedded_signatures:
            info = cms.ContentInfo.load(sig.pkcs7_content)
            signer_info = info["content"]["signer_infos"][0]
            start1, len1, start2, len2 = sig.byte_range
            out.append({"field": sig.field_name, "byte_range": (start1, len1, start2, len2),
                        "certificate": sig.signer_cert,
                        "signed_attrs": signer_info["signed_attrs"].untag().dump(),
                        "signature": signer_info["signature"].native,
                        "signature_algorithm": signer_info["signature_algorithm"]["algorithm"].dotted,
                        "digest_algorithm": signer_info["digest_algorithm"]["algorithm"].dotted,
                        "covered": data[start1:start1 + len1] + data[start2:start2 + len2]})
    return out


def sm2_attrs_verify(pdf: Path, workdir: Path, index: int = -1, *, distid: str = DISTID) -> str:
    """`openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:…` over the CMS signed attributes
    of one signature, with the public key of the certificate in the CMS; returns openssl's output
    (it says "Signature Verified Successfully" or fails)."""
    sig = signatures_of(pdf)[index]
    workdir.mkdir(parents=True, exist_ok=True)
    cert, attrs, value, pub = (workdir / n for n in ("signer.der", "attrs.der", "sig.der", "pub.pem"))
    cert.write_bytes(sig["certificate"].dump())
    attrs.write_bytes(sig["signed_attrs"])
    value.write_bytes(sig["signature"])
    openssl("x509", "-inform", "DER", "-in", cert, "-noout", "-pubkey", "-out", pub)
    proc = openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
                   "-pkeyopt", f"distid:{distid}", "-in", attrs, "-sigfile", value, check=False)
    return (proc.stdout + proc.stderr).decode(errors="replace")


def pyhanko_statuses(pdf: Path, roots: Sequence[asn1_x509.Certificate]) -> list[Any]:
    """pyHanko's own validator (its default, RSA/ECDSA only), trusting `roots`."""
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext
    with open(pdf, "rb") as fh:
        return [validate_pdf_signature(s, ValidationContext(trust_roots=list(roots)))
                for s in PdfFileReader(fh, strict=False).embedded_signatures]


def anchor_box(pdf: Path, text: str, *, page: int = 1) -> tuple[float, float, float, float]:
    """The box (x0, top, x1, bottom, in points from the top left) of the last word of poppler's
    `pdftotext -bbox` on `page` that is exactly `text`."""
    import re
    out = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
                         capture_output=True, text=True, check=True).stdout
    boxes = [tuple(float(v) for v in m.groups()) for m in re.finditer(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">' + re.escape(text) + "</word>",
        out)]
    assert boxes, f"{text!r} not on page {page}:\n{out}"
    return boxes[-1]  # type: ignore[return-value]


def load_pem_cert(path: Path) -> asn1_x509.Certificate:
    from asn1crypto import pem
    data = path.read_bytes()
    if pem.detect(data):
        data = pem.unarmor(data)[2]
    return asn1_x509.Certificate.load(data)


def cert_text(der: bytes) -> str:
    proc = openssl("x509", "-inform", "DER", "-noout", "-text", "-nameopt", "oneline,-esc_msb", input=der)
    return proc.stdout.decode(errors="replace")


# --------------------------------------------------------------------------- plain DER, read without asn1crypto

def _tlv(data: bytes, offset: int) -> tuple[int, int]:
    """(header length, content length) of the DER element at `offset`."""
    first = data[offset + 1]
    if first < 0x80:
        return 2, first
    n = first & 0x7F
    return 2 + n, int.from_bytes(data[offset + 2:offset + 2 + n], "big")


def children(der: bytes) -> list[bytes]:
    """The encoded elements inside the outer SEQUENCE."""
    hl, length = _tlv(der, 0)
    assert hl + length == len(der), "trailing bytes after the SEQUENCE"
    out, pos = [], hl
    while pos < len(der):
        h, n = _tlv(der, pos)
        out.append(der[pos:pos + h + n])
        pos += h + n
    return out


def sequence(content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes(
        (n.bit_length() + 7) // 8, "big")
    return b"\x30" + length + content


def signed_part(seal_der: bytes, *, rule: str = "gbt38540") -> tuple[bytes, bytes]:
    """(what the maker signed, the signature bytes) of a v4 SES_Seal: by GB/T 38540 the DER of
    eSealInfo; by the GM/T 0031 rule (`rule="gmt0031"`, yinxin before 0.2) the DER of
    SEQUENCE {eSealInfo, cert, signAlgID}."""
    info, cert, alg, bits = children(seal_der)
    assert bits[0] == 0x03
    h, _ = _tlv(bits, 0)
    assert bits[h] == 0, "signature BIT STRING with unused bits"
    return (info if rule == "gbt38540" else sequence(info + cert + alg)), bits[h + 1:]


def openssl_verify_ses(seal_der: bytes, maker_cert_der: bytes, workdir: Path, *, distid: str = DISTID,
                       rule: str = "gbt38540") -> str:
    """openssl's verdict on the maker's signature of an SES_Seal (the signed part cut out of the DER
    here, the public key taken from the maker's certificate by `openssl x509`)."""
    tbs, signature = signed_part(seal_der, rule=rule)
    workdir.mkdir(parents=True, exist_ok=True)
    files = {n: workdir / n for n in ("tbs.der", "sig.bin", "maker.der", "maker-pub.pem")}
    files["tbs.der"].write_bytes(tbs)
    files["sig.bin"].write_bytes(signature)
    files["maker.der"].write_bytes(maker_cert_der)
    openssl("x509", "-inform", "DER", "-in", files["maker.der"], "-noout", "-pubkey", "-out", files["maker-pub.pem"])
    text = openssl("x509", "-inform", "DER", "-in", files["maker.der"], "-noout", "-text").stdout.decode()
    if "ASN1 OID: SM2" in text:
        args = ["pkeyutl", "-verify", "-pubin", "-inkey", files["maker-pub.pem"], "-rawin", "-digest", "sm3",
                "-pkeyopt", f"distid:{distid}", "-in", files["tbs.der"], "-sigfile", files["sig.bin"]]
    else:
        digest = "-sha384" if "ecdsa-with-SHA384" in text else "-sha256"
        args = ["dgst", digest, "-verify", files["maker-pub.pem"], "-signature", files["sig.bin"], files["tbs.der"]]
    proc = openssl(*args, check=False)
    return (proc.stdout + proc.stderr).decode(errors="replace")


# --------------------------------------------------------------------------- the database

def db_rows(db: Path, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(db, isolation_level=None)
    try:
        return con.execute(statement, params).fetchall()
    finally:
        con.close()


def audit_events(db: Path, action: str | None = None, target: str | None = None) -> list[dict[str, Any]]:
    rows = db_rows(db, "SELECT seq, actor, action, target, details, result_digest FROM audit_events ORDER BY seq")
    events = [{"seq": r[0], "actor": r[1], "action": r[2], "target": r[3],
               "details": json.loads(r[4]) if r[4] else {}, "result_digest": r[5]} for r in rows]
    return [e for e in events if (action is None or e["action"] == action)
            and (target is None or e["target"] == target)]


def files_containing(directory: Path, needle: bytes) -> list[Path]:
    """Every file under `directory` (database, WAL, keys, anything) whose bytes contain `needle`."""
    return [p for p in sorted(directory.rglob("*")) if p.is_file() and needle in p.read_bytes()]


# --------------------------------------------------------------------------- library world

@dataclass
class LibWorld:
    path: Path
    clock: FixedClock
    home: Home = field(init=False)
    authority: CertificateAuthority = field(init=False)

    def __post_init__(self) -> None:
        self.home = Home.open(self.path, clock=self.clock)
        self.authority = CertificateAuthority(self.home)
        cast(self.home)

    @property
    def db(self) -> Path:
        return self.path / "yinxin.db"

    def actor(self, name: str) -> Actor:
        """An actor of the cast (see `CAST`)."""
        return actor_for_tests(self.home, name, roles=CAST.get(name, ()))

    @property
    def registry(self) -> SealRegistry:
        return SealRegistry(self.home)

    @property
    def service(self) -> SealService:
        return SealService(self.home)

    def tick(self, **delta: float) -> None:
        self.clock.advance(timedelta(**(delta or {"seconds": 1})))

    def ca_pem(self, name: str) -> Path:
        return self.path / "cas" / name / "ca.pem"

    def make_seal(self, name: str, *, ca: str = "sm2-root", seal_type: str = "official", org: str = ORG,
                  custodian: str = "wang", label: str | None = None, ready: bool = True,
                  **kwargs: Any) -> SealRecord:
        registry = self.registry
        actor_for_tests(self.home, custodian)
        record = registry.create(name=name, organisation=org, seal_type=seal_type, custodian=custodian, ca=ca,
                                 password=SEAL_INITIAL, ca_password=CA_PASSWORD, actor=self.actor("admin"),
                                 approver=self.actor("boss"), label=label, **kwargs)
        if ready:
            record = registry.change_password(name, SEAL_INITIAL, SEAL_PASSWORD, actor=self.actor(custodian))
        return record

    def audit_ok(self) -> bool:
        infos = {i.name: i for i in self.authority.cas()}
        report = audit_verify(self.home.store, lambda n: (infos[n].public_key(), infos[n].distid)
                              if n in infos else None)
        return report.ok


#: who acts in the seal tests, and their roles
CAST: dict[str, tuple[str, ...]] = {"admin": ("seal_admin", "ca_operator"), "admin2": ("seal_admin",),
                                    "boss": ("ra_officer",), "ca-admin": ("ca_operator",),
                                    "wang": ("seal_admin",), "li": ()}


def cast(home: Home) -> None:
    """The cast's accounts, made up front (tests compare the database before and after)."""
    for name, roles in CAST.items():
        actor_for_tests(home, name, roles=roles)


def lib_world(path: Path) -> LibWorld:
    """A home with an SM2 root and a subordinate SM2 seal CA, an RSA root and an ECDSA root."""
    world = LibWorld(path, FixedClock(SystemClock().now()))
    a = world.authority
    ca_admin = world.actor("ca-admin")
    a.init_ca(name="sm2-root", subject="/C=CN/O=印信测试/CN=SM2 Root CA", algorithm="sm2", password=CA_PASSWORD,
              actor=ca_admin)
    a.init_ca(name="sm2-seal-ca", subject="/C=CN/O=印信测试/CN=SM2 Seal CA", algorithm="sm2",
              password=CA_PASSWORD, parent="sm2-root", parent_password=CA_PASSWORD, actor=ca_admin)
    a.init_ca(name="rsa-root", subject="/C=CN/O=印信测试/CN=RSA Root CA", algorithm="rsa2048",
              password=CA_PASSWORD, actor=ca_admin)
    a.init_ca(name="ec-root", subject="/C=CN/O=印信测试/CN=ECDSA Root CA", algorithm="ecdsa-p256",
              password=CA_PASSWORD, actor=ca_admin)
    world.tick()
    return world


# --------------------------------------------------------------------------- CLI world

@dataclass
class CliWorld:
    """A home driven through the real `yinxin` command; CA password from $YINXIN_CA_PASSWORD,
    seal passwords from files."""
    home: Path
    files: Path

    def __post_init__(self) -> None:
        self.files.mkdir(parents=True, exist_ok=True)
        self.initial = self.secret("initial.pw", SEAL_INITIAL)
        self.password = self.secret("seal.pw", SEAL_PASSWORD)
        self.wrong = self.secret("wrong.pw", WRONG_PASSWORD)
        home = Home.open(self.home)
        self.sessions = {name: write_session(home, self.files / "sessions" / f"{name}.session", name, *roles)
                         for name, roles in CAST.items()}
        # this process keeps no connection to the database the `yinxin` processes under test write:
        # an idle pooled connection closed whenever the garbage collector gets to it, in the middle
        # of a command, is a second writer's checkpoint racing theirs
        home.store.dispose()

    def session(self, name: str) -> Path:
        """The session file of someone of the cast (`CAST`)."""
        return self.sessions[name]

    @property
    def db(self) -> Path:
        return self.home / "yinxin.db"

    def secret(self, name: str, value: bytes) -> Path:
        path = self.files / name
        path.write_bytes(value + b"\n")
        os.chmod(path, 0o600)
        return path

    def run(self, *args: str | os.PathLike[str], env: dict[str, str | None] | None = None) -> CliResult:
        """`yinxin ARGS` as wang, the custodian, unless the arguments give another --session."""
        return yinxin(self.home, *args, env={"YINXIN_CA_PASSWORD": CA_PASSWORD.decode(),
                                             "YINXIN_SESSION": str(self.session("wang")), **(env or {})})

    def ok(self, *args: str | os.PathLike[str], env: dict[str, str | None] | None = None) -> CliResult:
        result = self.run(*args, env=env)
        assert result.code == 0, f"yinxin {' '.join(map(str, args))}: {result}"
        return result

    def run_all(self, *calls: Sequence[str | os.PathLike[str]],
                env: dict[str, str | None] | None = None) -> list[CliResult]:
        """Independent commands, two at a time (the machine has two cores); results in order."""
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(lambda args: self.run(*args, env=env), calls))

    def ca_pem(self, name: str) -> Path:
        return self.home / "cas" / name / "ca.pem"

    def create_seal(self, name: str, *, ca: str, seal_type: str = "official", org: str = ORG,
                    custodian: str = "wang", label: str | None = None, ready: bool = True) -> dict[str, Any]:
        args: list[str | os.PathLike[str]] = [
            "seal", "create", name, "--org", org, "--type", seal_type, "--custodian", custodian,
            "--approver-session", self.session("boss"), "--ca", ca, "--password-file", self.initial,
            "--session", self.session("admin"), "--json"]
        if label is not None:
            args += ["--label", label]
        record = self.ok(*args).json()
        if ready:
            self.ok("seal", "passwd", name, "--password-file", self.initial, "--new-password-file", self.password,
                    "--session", self.session(custodian))
        return record

    def stamp(self, source: Path, out: Path, seal: str, *placement: str, password: Path | None = None,
              operator: str = "wang") -> CliResult:
        return self.run("seal", "stamp", source, out, "--seal", seal, "--password-file", password or self.password,
                        "--session", self.session(operator), *placement)

    def write(self, name: str, data: bytes) -> Path:
        path = self.files / name
        path.write_bytes(data)
        return path


def sm2_cli_world(base: Path, *seals: str, **ca: str) -> CliWorld:
    """A CLI home with an SM2 root CA `sm2-root` and ready official SM2 seals of ORG named `seals`."""
    world = CliWorld(base / "home", base / "files")
    world.ok("ca", "init", "--name", "sm2-root", "--subject", "/C=CN/O=印信测试/CN=SM2 Root", "--algorithm", "sm2",
             "--session", world.session("ca-admin"))
    for name in seals:
        world.create_seal(name, ca="sm2-root")
    return world

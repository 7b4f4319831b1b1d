"""The document flow carries OFD bodies: drafted, signed off, sealed with a GB/T 38540 seal over the
organisation's name, verified at sending and at receipt on the exact bytes, archived.  The sealed
file is judged by the independent openssl checker (tests/ofd_checker.py); the attacks on the
bytes are refused by name."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from docflow import ElementError, VerificationFailed
from seal.ofd.sample import text_ofd

from docflow_support import (ORG, OTHER, SEAL_PASSWORD, UPWARD_TO_SEAL, Bureau, bureau_copy, new_upward,
                             sealing_template, tables, tamper_version, walk)
from ofd_checker import check_ofd

BODY = text_ofd([["关于开展电子印章试点工作的请示", "为推进电子政务建设，经研究，拟在全局开展电子印章试点工作。",
                  "妥否，请批示。", (ORG, 130, 250, 5), ("2026年5月8日", 130, 260, 5)]])


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return sealing_template(tmp_path_factory.mktemp("docflow-ofd-template"))


@pytest.fixture
def b(template: Path, tmp_path: Path) -> Bureau:
    return bureau_copy(template, tmp_path)


def sealed_ofd(b: Bureau):
    doc = walk(b, new_upward(b, pdf=BODY).id, UPWARD_TO_SEAL)
    b.tick()
    return b.flow.seal(doc.id, user="wang", seal="official-sm2", password=SEAL_PASSWORD)


def test_an_ofd_body_is_sealed_sent_received_and_archived(b: Bureau, tmp_path: Path) -> None:
    doc = sealed_ofd(b)
    data = b.flow.pdf(doc.id)
    assert data[:4] == b"PK\x03\x04"
    path = tmp_path / "sealed.ofd"
    path.write_bytes(data)
    (sig,) = check_ofd(path, tmp_path / "chk")
    assert sig["signer_ok"] and sig["maker_ok"] and sig["data_hash_ok"] and not sig["bad_references"]
    with zipfile.ZipFile(io.BytesIO(BODY)) as before, zipfile.ZipFile(path) as after:
        assert all(after.read(n) == before.read(n) for n in before.namelist() if n != "OFD.xml")
    b.tick()
    b.flow.act(doc.id, user="sun", action="approve", opinion="已核对盖章件")
    b.tick()
    doc = b.flow.send(doc.id, user="liu", to=[OTHER])
    assert doc.state == "sent"
    b.tick()
    receipt = b.flow.receive(doc.id, user="t_liu")
    assert receipt.accepted and receipt.problems == ()
    assert b.flow.pdf(receipt.incoming_doc_id) == data
    report = b.flow.show(doc.id)
    assert report.sealed_version == 2


def test_sending_an_ofd_changed_after_sealing_is_refused(b: Bureau) -> None:
    doc = sealed_ofd(b)
    b.tick()
    b.flow.act(doc.id, user="sun", action="approve", opinion="已核对盖章件")
    data = b.flow.pdf(doc.id)
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename.endswith("Page_0/Content.xml"):
                content = content.replace("试点".encode(), "取消".encode())
            dst.writestr(info, content)
    tamper_version(b, doc.id, doc.current_version, buf.getvalue(), fix_digests=True)
    b.tick()
    with pytest.raises(VerificationFailed, match="Content.xml"):
        b.flow.send(doc.id, user="liu", to=[OTHER])


def test_an_ofd_bomb_or_broken_body_is_refused_at_intake(b: Bureau) -> None:
    before = tables(b)
    with pytest.raises(ElementError, match="not a readable OFD"):
        new_upward(b, pdf=b"PK\x03\x04 broken")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        for info in zipfile.ZipFile(io.BytesIO(BODY)).infolist():
            z.writestr(info, zipfile.ZipFile(io.BytesIO(BODY)).read(info))
        with z.open("Doc_0/Res/big.bin", "w", force_zip64=True) as fh:
            for _ in range(17):
                fh.write(b"\0" * (16 << 20))
    with pytest.raises(ElementError, match="inflates to"):
        new_upward(b, pdf=bomb.getvalue())
    assert tables(b) == before

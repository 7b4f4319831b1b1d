"""stamp_batch's faster paths: files sealed in memory, large files streamed, workers started
only when they pay — every output judged by pdfsig and qpdf, failures leaving nothing behind."""
from __future__ import annotations

import os

import pytest
from asn1crypto import x509

import pki
from pdf_fixtures import ORG, document, identity, pdfsig, qpdf_check
from seal import pdf_sign
from seal.appearance import SealSpec, draw_seal
from seal.cms_signer import make_signer
from seal.pdf_placement import AtPosition
from seal.pdf_sign import stamp_batch

from pdf_fixtures import CLOCK, clock_follows_the_run  # noqa: E402,F401  (autouse)


class Factory:
    """Logs each call (with its process id) to a file, so calls in workers count too."""

    def __init__(self, alg: str, log) -> None:
        self.key_der = identity(alg).key.to_pkcs8_der()
        self.cert = identity(alg).cert.dump()
        self.log = log

    @property
    def calls(self) -> int:
        return len(self.log.read_text().split()) if self.log.exists() else 0

    def __call__(self):
        with open(self.log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return make_signer(pki.load_private_key(self.key_der), x509.Certificate.load(self.cert))


def inputs(tmp_path, count, broken_at=None):
    src = tmp_path / "in"
    src.mkdir()
    files = []
    for k in range(count):
        f = src / f"doc{k:02}.pdf"
        f.write_bytes(b"not a PDF at all" if k == broken_at else document(2))
        files.append(f)
    out = tmp_path / "out"
    out.mkdir()
    return files, out


@pytest.mark.parametrize("in_memory", [True, False], ids=["in-memory", "streamed"])
def test_small_and_large_paths_give_valid_seals(tmp_path, monkeypatch, in_memory):
    if not in_memory:   # every file counts as large: stamp_pdf streams it through a temp file
        monkeypatch.setattr(pdf_sign, "BATCH_IN_MEMORY_BYTES", 0)
    files, out = inputs(tmp_path, 3, broken_at=1)
    items = stamp_batch(files, out, Factory("rsa", tmp_path / "calls"), drawing=draw_seal(SealSpec("official", ORG)),
                        placement=AtPosition(1, 100, 100), processes=1, clock=CLOCK)
    assert [i.ok for i in items] == [True, False, True]
    assert "not a PDF" in items[1].error
    assert sorted(p.name for p in out.iterdir()) == ["doc00.pdf", "doc02.pdf"]
    for item in (items[0], items[2]):
        assert "Signature is Valid." in pdfsig(item.output)
        qpdf_check(item.output)
        assert item.result.size == item.output.stat().st_size
        assert oct(item.output.stat().st_mode & 0o777) == oct(0o644)


def test_small_batch_stays_in_process_and_loads_the_key_once(tmp_path):
    files, out = inputs(tmp_path, 3)
    factory = Factory("p256", tmp_path / "calls")
    items = stamp_batch(files, out, factory, drawing=draw_seal(SealSpec("official", ORG)),
                        placement=AtPosition(1, 100, 100), processes=2, clock=CLOCK)
    assert all(i.ok for i in items) and factory.calls == 1   # no worker was started


def test_forked_workers_inherit_the_prepared_signer(tmp_path, monkeypatch):
    monkeypatch.setattr(pdf_sign, "WORKER_START_SECONDS", 0.0)
    files, out = inputs(tmp_path, 6, broken_at=4)
    factory = Factory("sm2", tmp_path / "calls")
    items = stamp_batch(files, out, factory, drawing=draw_seal(SealSpec("official", ORG)),
                        placement=AtPosition(1, 100, 100), processes=2, clock=CLOCK)
    assert [i.ok for i in items] == [True, True, True, True, False, True]
    assert factory.calls == 1          # loaded here once; the forked workers did not call it
    assert sorted(p.name for p in out.iterdir()) == [f"doc{k:02}.pdf" for k in (0, 1, 2, 3, 5)]
    for item in items:
        if item.ok:
            qpdf_check(item.output)
            assert item.result.signature_algorithm == "sm3_sm2"

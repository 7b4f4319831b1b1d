"""Large inputs: copied in the background while pyHanko hashes them through a spliced view
(seal.pdf_io).  The outputs must be the same kind of file the plain path makes — judged by
pdfsig, qpdf, pyHanko's validator — with the original bytes untouched at their start."""
from __future__ import annotations

import errno
import io
import os

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from pdf_fixtures import ORG, document, identity, make_document, pdfsig, qpdf_check, workdir
from seal import pdf_io, pdf_sign
from seal.appearance import SealSpec, draw_seal
from seal.cms_signer import make_signer
from seal.pdf_errors import NotAPdf
from seal.pdf_placement import AnchorText, AtPosition
from seal.pdf_sign import stamp_pdf

from pdf_fixtures import CLOCK, clock_follows_the_run  # noqa: E402,F401  (autouse)


@pytest.fixture
def parallel(monkeypatch):
    """Every input counts as large, so the small test documents take the parallel path."""
    monkeypatch.setattr(pdf_sign, "PARALLEL_COPY_BYTES", 0)


@pytest.fixture(scope="module")
def drawing():
    return draw_seal(SealSpec("official", ORG))


@pytest.mark.parametrize("alg", ["rsa", "p256"])
def test_parallel_path_output_is_valid_and_keeps_the_original(tmp_path, parallel, drawing, alg):
    src = tmp_path / "in.pdf"
    src.write_bytes(document(3))
    out = tmp_path / "out.pdf"
    ident = identity(alg)
    result = stamp_pdf(src, out, signer=make_signer(ident.key, ident.cert, [ident.root]),
                       drawing=drawing, placement=AtPosition(2, 100, 100), riding=True,
                       clock=CLOCK)
    data = out.read_bytes()
    assert data[:src.stat().st_size] == src.read_bytes()     # an incremental update
    assert result.size == len(data) and result.riding_pages == 3
    assert "Signature is Valid." in pdfsig(out)
    qpdf_check(out)
    with open(out, "rb") as f:
        (sig,) = PdfFileReader(f).embedded_signatures
        status = validate_pdf_signature(sig, ValidationContext(trust_roots=[ident.root],
                                                               moment=CLOCK.now()))
        assert status.intact and status.valid and status.trusted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.pdf", "out.pdf"]


def test_parallel_path_finds_anchor_text(tmp_path, parallel, drawing):
    source = make_document(workdir() / "anchor-large.pdf", pages=2)
    out = tmp_path / "out.pdf"
    ident = identity("p256")
    result = stamp_pdf(source, out, signer=make_signer(ident.key, ident.cert), drawing=drawing,
                       placement=AnchorText(ORG), clock=CLOCK)
    assert result.page == 2 and "Signature is Valid." in pdfsig(out)


def test_parallel_path_failure_leaves_nothing(tmp_path, parallel, drawing):
    src = tmp_path / "broken.pdf"
    src.write_bytes(b"%PDF-1.7\n" + os.urandom(4096))
    ident = identity("rsa")
    with pytest.raises(NotAPdf):
        stamp_pdf(src, tmp_path / "out.pdf", signer=make_signer(ident.key, ident.cert),
                  drawing=drawing, placement=AtPosition(1, 100, 100), clock=CLOCK)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.pdf"]


def test_spliced_file_reads_both_parts_and_protects_the_original(tmp_path):
    original = bytes(range(256)) * 40
    (tmp_path / "in").write_bytes(original)
    in_fd = os.open(tmp_path / "in", os.O_RDONLY)
    out_fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with pdf_io.BackgroundCopy(in_fd, out_fd, len(original)):
            f = io.BufferedRandom(pdf_io.SplicedFile(in_fd, out_fd, len(original)))
            assert f.seek(0, os.SEEK_END) == len(original)
            f.write(b"appended")
            raw = pdf_io.SplicedFile(in_fd, out_fd, len(original))
            raw.seek(100)
            with pytest.raises(io.UnsupportedOperation):
                raw.write(b"x")
            f.seek(0)
            assert f.read() == original + b"appended"
            f.seek(-4, os.SEEK_END)
            assert f.read(100) == b"nded"
            f.flush()
        assert (tmp_path / "out").read_bytes() == original + b"appended"
    finally:
        os.close(in_fd)
        os.close(out_fd)


def test_copy_range_without_copy_file_range(tmp_path, monkeypatch):
    data = os.urandom(3 * pdf_io.STEP + 123)
    (tmp_path / "in").write_bytes(data)

    def unsupported(*args):
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", unsupported, raising=False)
    in_fd = os.open(tmp_path / "in", os.O_RDONLY)
    out_fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        pdf_io.copy_range(in_fd, out_fd, len(data))
    finally:
        os.close(in_fd)
        os.close(out_fd)
    assert (tmp_path / "out").read_bytes() == data


def test_background_copy_reports_its_error(tmp_path):
    (tmp_path / "in").write_bytes(b"short")
    in_fd = os.open(tmp_path / "in", os.O_RDONLY)
    out_fd = os.open(tmp_path / "out", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError, match="ended early"):
            with pdf_io.BackgroundCopy(in_fd, out_fd, 1000):   # more than the input has
                pass
    finally:
        os.close(in_fd)
        os.close(out_fd)

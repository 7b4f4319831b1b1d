"""stamp_batch: many files, one seal, worker processes that keep the key loaded."""
from __future__ import annotations


import pytest
from asn1crypto import x509

import pki
from pdf_fixtures import ORG, document, identity, pdfsig
from seal.appearance import SealSpec, draw_seal
from seal.cms_signer import make_signer
from seal.pdf_errors import PdfSealError
from seal.pdf_placement import AnchorText
from seal import pdf_sign
from seal.pdf_sign import stamp_batch

from pdf_fixtures import CLOCK, clock_follows_the_run  # noqa: E402,F401  (autouse)


class Factory:
    """What a CLI passes: key bytes (decrypted once after one password prompt) and
    the certificate; called once per worker process."""

    def __init__(self, alg: str) -> None:
        ident = identity(alg)
        self.key_der = ident.key.to_pkcs8_der()
        self.cert = ident.cert.dump()

    def __call__(self):
        return make_signer(pki.load_private_key(self.key_der), x509.Certificate.load(self.cert))


@pytest.fixture(scope="module")
def drawing():
    return draw_seal(SealSpec("official", ORG))


@pytest.mark.parametrize("processes", [1, 2])
def test_batch_seals_every_file_and_reports_failures(tmp_path, drawing, processes, monkeypatch):
    # a batch this small is not worth starting workers for; make it start them anyway
    monkeypatch.setattr(pdf_sign, "WORKER_START_SECONDS", 0.0)
    src = tmp_path / "in"
    src.mkdir()
    files = []
    for k in range(4):
        f = src / f"doc{k}.pdf"
        f.write_bytes(document(3))
        files.append(f)
    bad = src / "broken.pdf"
    bad.write_bytes(b"%PDF-1.7\nthis is not really a PDF\n")
    files.insert(2, bad)
    out = tmp_path / "out"
    out.mkdir()
    seen = []
    items = stamp_batch(files, out, Factory("p256"), drawing=drawing, placement=AnchorText(ORG),
                        processes=processes, clock=CLOCK,
                        progress=lambda done, total, item: seen.append((done, total, item.source.name)))
    assert [i.source for i in items] == files               # in input order
    assert [d for d, _, _ in seen] == [1, 2, 3, 4, 5] and {t for _, t, _ in seen} == {5}
    failed = [i for i in items if not i.ok]
    assert [i.source for i in failed] == [bad]
    assert "damaged" in failed[0].error
    assert not (out / "broken.pdf").exists()
    # nothing else is left behind: no temporary files
    assert sorted(p.name for p in out.iterdir()) == sorted(i.output.name for i in items if i.ok)
    for item in items:
        if item.ok:
            assert item.result.page == 3 and item.result.signing_time == CLOCK.now()
            assert pdfsig(item.output).count("Signature is Valid.") == 1


def test_batch_refuses_to_overwrite_its_input(tmp_path, drawing):
    f = tmp_path / "a.pdf"
    f.write_bytes(document(3))
    with pytest.raises(PdfSealError, match="overwrite"):
        stamp_batch([f], tmp_path, Factory("rsa"), drawing=drawing, placement=AnchorText(ORG))


def test_batch_refuses_colliding_names(tmp_path, drawing):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a, b = tmp_path / "x" / "same.pdf", tmp_path / "y" / "same.pdf"
    a.write_bytes(document(3))
    b.write_bytes(document(3))
    (tmp_path / "out").mkdir()
    with pytest.raises(PdfSealError, match="same name"):
        stamp_batch([a, b], tmp_path / "out", Factory("rsa"), drawing=drawing,
                    placement=AnchorText(ORG))

"""Timestamps in sealed PDFs: pyHanko asks a `pki.tsa.Timestamper`, and archive renewal.

* `PyhankoTimestamper` lets pyHanko take its tokens from any `pki.tsa.Timestamper`
  (this home's TSA in process, or an RFC 3161 TSA over HTTP).  pyHanko asks for a token
  over the signature value (PAdES B-T; for an SM2 seal an SM3 imprint, so an SM2 TSA) and,
  for B-LTA, over the document (a document timestamp).  To size the signature container it
  first asks for a "dummy" token: this home's TSA answers with an unsigned one of the right
  size that is never recorded nor leaves the process (`LocalTimestamper.size_estimate`);
  other TSAs are asked for a real one.
* `extend_pdf` renews the proof of an already sealed file (`yinxin seal extend`, archive
  renewal): the validation data that exists now — the certificates of every signature's and
  every timestamp's path that still validates, and the CRLs/OCSP responses given — goes into
  the DSS, and a new document timestamp covers everything, in one incremental update.  No
  earlier signature or timestamp is touched.
"""
from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pki
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from pki.fileio import atomic_output
from pki.tsa import Timestamper
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps.api import TimeStamper

from .aio import run as run_coroutine
from .pdf_errors import NotAPdf, PdfSealError
from .pdf_validation import RevocationData, validation_context

__all__ = ["PyhankoTimestamper", "ExtendResult", "extend_pdf", "timestamp_digest_algorithm", "ArchiveTimestampInfo",
           "newest_archive_timestamp"]

log = logging.getLogger("yinxin.seal")


class _ExpectedNotices(logging.Filter):
    """pyHanko warns that revocation data is embedded without fetching, and that collecting it is
    'soft-fail': both are yinxin's design (nothing is ever fetched; the data is the home's own),
    so they are not shown to the user."""

    TEXTS = ("fetching is not allowed", "Revocation mode is set to soft-fail")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in self.TEXTS)


for _name in ("pyhanko.sign.signers.pdf_signer", "pyhanko.sign.validation.dss"):
    logging.getLogger(_name).addFilter(_ExpectedNotices())


class PyhankoTimestamper(TimeStamper):
    """pyHanko's timestamper interface over a `pki.tsa.Timestamper`."""

    def __init__(self, stamper: Timestamper) -> None:
        super().__init__(include_nonce=False)      # the stamper makes (and checks) its own nonce
        self.stamper = stamper

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> cms.ContentInfo:
        return cms.ContentInfo.load(self.stamper.timestamp_digest(message_digest, md_algorithm))

    async def async_dummy_response(self, md_algorithm: str) -> cms.ContentInfo:
        estimate = getattr(self.stamper, "size_estimate", None)
        if estimate is None or md_algorithm in self._dummy_response_cache:
            return await super().async_dummy_response(md_algorithm)
        dummy = cms.ContentInfo.load(estimate(md_algorithm))
        self._register_dummy(md_algorithm, dummy)
        return dummy

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:  # pragma: no cover
        raise NotImplementedError("PyhankoTimestamper answers async_timestamp directly")


def timestamp_digest_algorithm(stamper: Timestamper) -> str:
    """SM3 for this home's SM2 TSA (GM/T 0033), SHA-256 for every other TSA."""
    signer = getattr(stamper, "signer", None)
    info = getattr(signer, "info", None)
    return "sm3" if getattr(info, "algorithm", None) == "sm2" else "sha256"


@dataclass(frozen=True)
class ExtendResult:
    output: Path
    timestamp_time: datetime                       # genTime of the new document timestamp
    timestamp_not_after: datetime                  # its TSA certificate's notAfter
    tsa_subject: str
    signatures: int                                # signatures and timestamps found before
    paths_added: int                               # validation paths whose certificates went into the DSS
    size: int


def extend_pdf(input: bytes | str | os.PathLike[str], output: str | os.PathLike[str], *,
               timestamper: Timestamper, trust_roots: Sequence[asn1_x509.Certificate],
               revocation: RevocationData | None = None, clock: pki.Clock = pki.SYSTEM_CLOCK,
               digest_algorithm: str | None = None, distid: bytes | None = None) -> ExtendResult:
    """Add the validation data known now and a new document timestamp to a sealed PDF.

    Raises `NotAPdf` for a damaged or unsealed file, `pki.tsa.TimestampUnavailable` when no
    token can be had; the output is written whole or not at all."""
    data = bytes(input) if isinstance(input, (bytes, bytearray, memoryview)) else _read(input)
    out_path = Path(output)
    if not out_path.parent.is_dir():
        raise PdfSealError(f"the output directory {str(out_path.parent)!r} does not exist", path=str(out_path))
    if b"%PDF-" not in data[:1024]:
        raise NotAPdf("the input is not a PDF file (no %PDF- header)")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            raise NotAPdf("the PDF is encrypted")
        existing = list(reader.embedded_signatures)
    except NotAPdf:
        raise
    except Exception as exc:  # pyHanko raises many kinds on broken files
        raise NotAPdf(f"the PDF is damaged: {exc}") from None
    if not any(s.sig_object_type == "/Sig" for s in existing):
        raise PdfSealError("the document carries no seal: nothing to extend", path=str(input)
                           if not isinstance(input, (bytes, bytearray, memoryview)) else None)
    algorithm = digest_algorithm or timestamp_digest_algorithm(timestamper)
    vc = validation_context(list(trust_roots), moment=clock.now(), revocation=revocation, distid=distid)
    pyhanko_stamper = PyhankoTimestamper(timestamper)

    async def run(stream: io.BufferedIOBase) -> int:
        from pyhanko.sign.signers.pdf_signer import PdfTimeStamper
        from pyhanko.sign.validation.dss import collect_validation_info
        paths = []
        for sig in existing:
            try:
                paths += await collect_validation_info(sig, vc)
            except Exception as exc:   # e.g. a signer whose certificate expired: its data is in the DSS already
                log.info("no fresh validation path for %s: %s", sig.field_name, exc)
        writer = IncrementalPdfFileWriter(stream, strict=False)
        names = {s.field_name for s in existing}
        n = 1
        while f"ArchiveTimestamp{n}" in names:
            n += 1
        await PdfTimeStamper(pyhanko_stamper, field_name=f"ArchiveTimestamp{n}").async_timestamp_pdf(
            writer, algorithm, validation_context=vc, validation_paths=paths, in_place=True)
        return len(paths)

    with atomic_output(out_path, mode=0o644) as (fh, _tmp):
        fh.write(data)
        fh.flush()
        fh.seek(0)
        try:
            paths_added = run_coroutine(run(fh))
        except pki.YinxinError:
            raise
        except Exception as exc:
            raise PdfSealError(f"cannot extend the document: {exc}") from exc
        size = fh.seek(0, os.SEEK_END)
        fh.seek(0)
        written = fh.read()
    newest = PdfFileReader(io.BytesIO(written), strict=False).embedded_timestamp_signatures[-1]
    token = newest.signed_data
    tst = token["encap_content_info"]["content"].parsed
    cert = newest.signer_cert
    return ExtendResult(output=out_path, timestamp_time=tst["gen_time"].native,
                        timestamp_not_after=cert["tbs_certificate"]["validity"]["not_after"].native,
                        tsa_subject=cert.subject.human_friendly, signatures=len(existing),
                        paths_added=paths_added, size=size)


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise PdfSealError(f"cannot read {os.fspath(path)!r}: {exc.strerror}", path=os.fspath(path)) from None


@dataclass(frozen=True)
class ArchiveTimestampInfo:
    """The newest document timestamp of a PDF: when, by whom, and until when its certificate holds."""

    time: datetime
    tsa: str
    not_after: datetime


def newest_archive_timestamp(pdf: bytes) -> ArchiveTimestampInfo | None:
    """The newest document timestamp (read, not judged), or None when the PDF has none."""
    try:
        stamps = PdfFileReader(io.BytesIO(pdf), strict=False).embedded_timestamp_signatures
    except Exception as exc:  # pyHanko raises many kinds on broken files
        raise NotAPdf(f"the PDF is damaged: {exc}") from None
    if not stamps:
        return None
    newest = max(stamps, key=lambda s: s.signed_revision)
    cert = newest.signer_cert
    tst = newest.signed_data["encap_content_info"]["content"].parsed
    return ArchiveTimestampInfo(tst["gen_time"].native, cert.subject.human_friendly,
                                cert["tbs_certificate"]["validity"]["not_after"].native)

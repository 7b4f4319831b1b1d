"""Stamping = signing, and verification, on top of seal records and the PDF and OFD engines.

`SealService` is what the CLI and docflow call: it applies the seal rules
(custodian's password, lockout, first-use change, validity window, the seal
certificate's status in the home's CA) before any document work, and audits every
stamp.  The format is told by content: PDF work is `seal.pdf_sign` (pyHanko,
incremental update), OFD work `seal.ofd` (a GB/T 38540 SES_Signature, SM2 seals only).
Verification returns the same `SealVerification` for both, with a verdict
(valid / invalid / indeterminate, seal.verdicts).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from asn1crypto import x509 as asn1_x509

from pki import audit
from pki.ca import ca_named
from pki.errors import YinxinError
from pki.home import Home
from pki.memo import BytesMemo, bytes_key
from pki.status import latest_crl, latest_crls

from .cms_signer import make_signer
from .errors import ValidationDataMissing
from .formats import OFD, PDF, detect_format
from .riding import DEFAULT_MIN_SLICE_MM
from .verdicts import INVALID, VALID, CheckResult, combine
from .pdf_placement import AnchorText, AtPosition, ExistingField, Placement
from .pdf_sign import BatchItem, StampResult, stamp_batch, stamp_pdf
from .pdf_timestamps import ExtendResult, extend_pdf
from .pdf_validation import RevocationData
from .pdf_verify import SealCheck, SignatureReport, VerificationReport, verify_pdf
from .records import SealRecord, SealRegistry
from .ses import verify_seal

if TYPE_CHECKING:
    from pki.accounts.actor import Actor

__all__ = ["SealService", "StampOutcome", "SealVerification", "SignatureCheck", "Placement", "AtPosition",
           "AnchorText", "ExistingField", "verify_offline"]


@dataclass(frozen=True)
class SignatureCheck:
    """One signature judged by the PDF engine and by this home's seal and CA records."""
    report: SignatureReport
    seal_name: str | None
    organisation: str | None
    certificate_status: str | None       # issued | held | revoked (this home's CA), None if not ours
    problems: tuple[str, ...]
    valid: bool
    seal_maker: str | None = None        # the CA whose signature over the seal (SES_Seal) verified
    checks: tuple[CheckResult, ...] = ()  # per check, in GB/T 38540 order (OFD; PDF: none yet)
    verdict: str = ""                    # valid | invalid | indeterminate ("" → from `valid`)
    notes: tuple[str, ...] = ()          # worth knowing, not changing the verdict

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", VALID if self.valid else INVALID)
        if self.valid != (self.verdict == VALID):
            raise ValueError("valid only when the verdict is 'valid'")

    def to_dict(self) -> dict[str, Any]:
        r = self.report
        return {"verdict": self.verdict, "checks": [c.to_dict() for c in self.checks], "field": r.field_name, "page": r.page, "seal": self.seal_name,
                "organisation": self.organisation, "signer": r.signer_subject,
                "serial": f"{r.signer_serial:X}", "algorithm": r.algorithm, "digest": r.digest_algorithm,
                "signing_time": r.signing_time.isoformat() if r.signing_time else None,
                "proven_time": r.proven_time.isoformat() if r.proven_time else None,
                "proven_by": r.proof.to_dict() | {"text": r.proof.describe()} if r.proof else None,
                "judged_at": r.judged_at.isoformat() if r.judged_at else None,
                "intact": r.intact, "signature_valid": r.signature_valid, "coverage": r.coverage,
                "modified_after": list(r.modified_after),
                "chain": {"trusted": r.chain.trusted, "reason": r.chain.reason, "path": list(r.chain.path)},
                "revocation": {"status": r.revocation.status, "reason": r.revocation.reason,
                               "revoked_at": r.revocation.revoked_at.isoformat() if r.revocation.revoked_at else None,
                               "after_proven_time": r.revocation.after_proven_time},
                "certificate_status": self.certificate_status, "seal_maker": self.seal_maker,
                "problems": list(self.problems), "notes": list(self.notes), "verdict": self.verdict,
                "valid": self.valid}


@dataclass(frozen=True)
class SealVerification:
    """The whole document: valid only if every signature is valid and nothing unsigned follows the last."""
    signatures: tuple[SignatureCheck, ...]
    engine: VerificationReport
    problems: tuple[str, ...]
    valid: bool
    verdict: str = ""                    # valid | invalid | indeterminate ("" → from `valid`)
    offline: bool = False                # judged on the file and the given roots alone
    format: str = PDF                    # pdf | ofd

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", VALID if self.valid else INVALID)
        if self.valid != (self.verdict == VALID):
            raise ValueError("valid only when the verdict is 'valid'")

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "format": self.format, "notes": list(self.engine.notes),
                "valid": self.valid, "offline": self.offline,
                "at": self.engine.at.isoformat() if getattr(self.engine, "at", None) else None,
                "revisions": self.engine.revisions,
                "modified_after_last_signature": self.engine.modified_after_last_signature,
                "problems": list(self.problems), "signatures": [s.to_dict() for s in self.signatures],
                "document_timestamps": [t.to_dict() for t in getattr(self.engine, "document_timestamps", ())]}


def verify_offline(pdf: bytes | str | os.PathLike[str], *, trust: Sequence[asn1_x509.Certificate],
                   at: datetime | None = None, clock: Any = None) -> SealVerification:
    """Verify with what the file carries and the `trust` roots alone: no home records, no network.
    Revocation data must be in the file (its DSS) for each certificate judged at a proven time;
    missing data makes the verdict indeterminate.  (Whether a certificate belongs to a seal of
    some home cannot be known offline: the report says which seal certificate signed.)"""
    import pki
    engine = verify_pdf(pdf, trust_roots=list(trust), revocation=RevocationData(mode="require"),
                        clock=clock or pki.SYSTEM_CLOCK, at=at)
    checks = tuple(SignatureCheck(report=sig, seal_name=None, organisation=None, certificate_status=None,
                                  problems=sig.problems, valid=sig.valid, verdict=sig.verdict, notes=sig.notes)
                   for sig in engine.signatures)
    problems = list(engine.problems)
    if not engine.signatures:
        problems.append("the document carries no seal")
    return SealVerification(checks, engine, tuple(problems), engine.valid, engine.verdict, offline=True)


@dataclass(frozen=True)
class StampOutcome:
    pdf: bytes              # the sealed document (PDF or OFD)
    digest: str             # SHA-256 of the sealed document, hex
    field_name: str
    result: Any             # StampResult (PDF) or seal.ofd.OfdStampResult
    format: str = PDF


def _latest_crls(authority: Any, info: Any) -> list[bytes]:
    """The CA's latest full CRL and, when there is one, its latest delta CRL (a full CRL of a CA
    with a base URL names its deltas as the freshest CRL: a verifier then needs both)."""
    full = latest_crl(authority, info)
    if full is None:
        return []
    delta = latest_crl(authority, info, delta=True)
    return [full] + ([delta] if delta is not None else [])


def _stored_ocsp(home: Home, by_cert: dict[bytes, Any], chain: Sequence[asn1_x509.Certificate]) -> bytes | None:
    """The pre-signed OCSP response `yinxin serve` stored for the chain's leaf, if any."""
    if len(chain) < 2 or chain[1].dump() not in by_cert:
        return None
    import sqlalchemy as sa
    from pki.presign import ocsp_responses
    info = by_cert[chain[1].dump()]
    with home.store.read() as conn:
        return conn.execute(sa.select(ocsp_responses.c.der).where(
            ocsp_responses.c.ca_id == info.id, ocsp_responses.c.serial == f"{chain[0].serial_number:x}")).scalar()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class SealService:
    def __init__(self, home: Home, *, key_cache: Any = None) -> None:
        """`key_cache` (a `seal.keycache.KeyCache`) keeps opened seal keys in a server process; every
        stamp still needs the seal's password (see that module)."""
        self.home = home
        self.registry = SealRegistry(home, key_cache=key_cache)
        # with a key cache (a server process) the seals' pictures are drawn once, keyed by the
        # maker-signed SES_Seal that contains the picture
        self._drawings: dict[str, Any] | None = {} if key_cache is not None else None

    # ---------------------------------------------------------------- helpers

    def _revocation(self, *chains: Sequence[asn1_x509.Certificate]) -> RevocationData:
        """What a later verifier needs about these chains (leaf first): the latest CRL of every CA of
        this home on them, and the stored pre-signed OCSP response of each leaf when there is one;
        nothing fetched.  Raises `ValidationDataMissing` when a CA on a chain published no CRL."""
        authority = self.registry.authority
        crls, ocsps = [], []
        by_cert = {info.cert_der: info for info in authority.cas()}
        for chain in chains:
            for issued, issuer in zip(chain, chain[1:]):
                info = by_cert.get(issuer.dump())
                if info is None:
                    continue                            # not a CA of this home: nothing to add
                published = _latest_crls(authority, info)
                if not published:
                    raise ValidationDataMissing(
                        f"CA {info.name} has published no CRL yet, and long-term validation needs it (it "
                        f"issued {issued.subject.human_friendly}): publish one first (`yinxin ca crl --ca {info.name} --out FILE`, "
                        "or `yinxin serve` with the CA key)",
                        ca=info.name)
                crls += [der for der in published if der not in crls]
            ocsp = _stored_ocsp(self.home, by_cert, chain)
            if ocsp is not None:
                ocsps.append(ocsp)
        return RevocationData(crls=tuple(crls), ocsps=tuple(ocsps))

    def tsa_chain(self, stamper: Any) -> tuple[asn1_x509.Certificate, ...]:
        """The path of this home's TSA behind a `LocalTimestamper` (TSA first), else ()."""
        signer = getattr(stamper, "signer", None)
        if signer is None:
            return ()
        from pki.tsa import TimestampAuthority
        return TimestampAuthority(self.home).chain(signer.info)

    def open_signer(self, seal_name: str, password: bytes, *, actor: "Actor") -> tuple[SealRecord, Any]:
        """Check that the actor is the seal's custodian and the seal may sign now, open its key (the
        seal's password: the second proof, of the seal), return (record, pyHanko signer)."""
        record = self.registry.get(seal_name)
        self.registry.require_custodian(record, actor)
        self.registry.check_usable(record, self.home.clock.now())
        key = self.registry.open_key(seal_name, password, actor=actor)
        authority = self.registry.authority
        cas = authority.cas()                     # one read for the issuing CA and its chain
        ca = ca_named(cas, record.ca) or authority.get(record.ca)
        chain = authority.chain(ca, cas)
        signer = make_signer(key, record.certificate, chain,
                             distid=ca.distid if key.algorithm == "sm2" else None)
        return record, signer

    def _drawing(self, record: SealRecord) -> Any:
        if self._drawings is None:
            return record.drawing()
        key = hashlib.sha256(record.ses_der).hexdigest()
        drawing = self._drawings.get(key)
        if drawing is None:
            drawing = self._drawings[key] = record.drawing()
        return drawing

    def _options(self, record: SealRecord, timestamp_url: str | None, with_validation_info: bool,
                 timestamper: Any = None, archive_timestamp: bool = False) -> dict[str, Any]:
        if archive_timestamp and not (timestamper is not None or timestamp_url):
            raise ValueError("an archive timestamp needs a TSA (timestamper or timestamp_url)")
        options: dict[str, Any] = {"timestamp_url": timestamp_url, "timestamper": timestamper,
                                   "clock": self.home.clock}
        if with_validation_info or archive_timestamp:
            chain = (record.certificate, *self.registry.chain(record))
            options.update(embed_validation_info=True, trust_roots=self.trust_roots(),
                           revocation=self._revocation(chain, self.tsa_chain(timestamper)),
                           archive_timestamp=archive_timestamp)
        return options

    # ---------------------------------------------------------------- stamping

    def open_ofd_key(self, seal_name: str, password: bytes, *, actor: "Actor") -> tuple[SealRecord, Any]:
        """Check that the actor is the seal's custodian and the seal may sign an OFD now (usable,
        SM2, its SES_Seal signed by the GB/T 38540 rule), open its key; returns (record, private key)."""
        from .ofd.errors import OfdSealError
        record = self.registry.get(seal_name)
        self.registry.require_custodian(record, actor)
        if record.algorithm != "sm2":
            raise OfdSealError(f"seal {record.name} is an {record.algorithm} seal: a GB/T 38540 seal on an OFD is "
                               "SM2 with SM3; use an SM2 seal", seal=record.name, algorithm=record.algorithm)
        if record.needs_resign:
            from .records import _resign_message
            raise OfdSealError(_resign_message(record), seal=record.name)
        self.registry.check_usable(record, self.home.clock.now())
        key = self.registry.open_key(seal_name, password, actor=actor)
        return record, key

    def _ofd_options(self, record: SealRecord) -> dict[str, Any]:
        ca = self.registry.authority.get(record.ca)
        return {"certificate": record.cert_der, "seal": record.ses_der, "clock": self.home.clock,
                "distid": ca.distid}

    def stamp_file(self, seal_name: str, password: bytes, input_path: str | os.PathLike[str],
                   output_path: str | os.PathLike[str], *, placement: Placement, riding: bool = False,
                   actor: "Actor", reason: str | None = None, timestamp_url: str | None = None,
                   with_validation_info: bool = False, timestamper: Any = None,
                   archive_timestamp: bool = False, riding_min_mm: float = DEFAULT_MIN_SLICE_MM) -> Any:
        """Seal one PDF or OFD file (told by content) into `output_path` (written whole or not at
        all).  Returns a StampResult (PDF) or an OfdStampResult.

        PDF: `timestamper` (a `pki.tsa.Timestamper`: this home's TSA in process, or one over HTTP)
        or `timestamp_url` adds a signature timestamp (B-T, all three algorithms); with
        `with_validation_info` the chains and CRLs/OCSP of the signer and of the TSA go into the
        DSS (B-LT); `archive_timestamp` adds a document timestamp over it all (B-LTA)."""
        if Path(output_path).resolve() == Path(input_path).resolve():
            raise ValueError("the output must not overwrite the input")
        if detect_format(input_path) == OFD:
            return self._stamp_ofd_file(seal_name, password, input_path, output_path, placement=placement,
                                        riding=riding, riding_min_mm=riding_min_mm, actor=actor,
                                        timestamper=_ofd_timestamper(timestamper, timestamp_url, with_validation_info,
                                                                     archive_timestamp))
        record = self.registry.get(seal_name)
        options = self._options(record, timestamp_url, with_validation_info, timestamper, archive_timestamp)
        record, signer = self.open_signer(seal_name, password, actor=actor)
        result = stamp_pdf(input_path, output_path, signer=signer, drawing=self._drawing(record),
                           placement=placement, riding=riding, reason=reason or f"{record.organisation}盖章",
                           riding_min_mm=riding_min_mm, **options)
        self._audit_stamp(record, actor, result, Path(input_path))
        return result

    def _stamp_ofd_file(self, seal_name: str, password: bytes, input_path, output_path, *, placement: Placement,
                        riding: bool, riding_min_mm: float, actor: "Actor", timestamper: Any) -> Any:
        from .ofd.package import OfdPackage
        from .ofd.sign import stamp_ofd
        OfdPackage(input_path).close()     # a broken or oversized package: said before the seal is opened
        record, key = self.open_ofd_key(seal_name, password, actor=actor)
        result = stamp_ofd(input_path, output_path, key=key, placement=placement, riding=riding,
                           riding_min_mm=riding_min_mm, timestamper=timestamper, **self._ofd_options(record))
        self._audit_stamp(record, actor, result, Path(input_path))
        return result

    def stamp(self, seal_name: str, password: bytes, pdf: bytes, *, placement: Placement,
              riding: bool = False, actor: "Actor", reason: str | None = None,
              timestamp_url: str | None = None, with_validation_info: bool = False,
              timestamper: Any = None, archive_timestamp: bool = False,
              riding_min_mm: float = DEFAULT_MIN_SLICE_MM) -> StampOutcome:
        """Seal PDF or OFD bytes (told by content); returns the sealed bytes."""
        if detect_format(pdf) == OFD:
            from .ofd.sign import stamp_ofd_bytes
            stamper = _ofd_timestamper(timestamper, timestamp_url, with_validation_info, archive_timestamp)
            record, key = self.open_ofd_key(seal_name, password, actor=actor)
            data, result = stamp_ofd_bytes(bytes(pdf), key=key, placement=placement, riding=riding,
                                           riding_min_mm=riding_min_mm, timestamper=stamper,
                                           **self._ofd_options(record))
            with self.home.store.transaction() as conn:
                audit.append(conn, at=self.home.clock.now(), actor=actor.account_id, action="seal.stamp",
                             target=f"seal:{record.name}",
                             details={"input_sha256": hashlib.sha256(bytes(pdf)).hexdigest(), "format": OFD,
                                      "field": result.field_name, "page": result.page,
                                      "riding_pages": result.riding_pages, **_timestamp_details(result)},
                             result_digest=hashlib.sha256(data).hexdigest())
            return StampOutcome(pdf=data, digest=hashlib.sha256(data).hexdigest(), field_name=result.field_name,
                                result=result, format=OFD)
        with tempfile.TemporaryDirectory(prefix="yinxin-stamp-") as tmp:
            src, dst = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
            src.write_bytes(pdf)
            result = self.stamp_file(seal_name, password, src, dst, placement=placement, riding=riding,
                                     actor=actor, reason=reason, timestamp_url=timestamp_url,
                                     with_validation_info=with_validation_info, timestamper=timestamper,
                                     archive_timestamp=archive_timestamp, riding_min_mm=riding_min_mm)
            data = dst.read_bytes()
        return StampOutcome(pdf=data, digest=hashlib.sha256(data).hexdigest(), field_name=result.field_name,
                            result=result)

    def stamp_many(self, seal_name: str, password: bytes, files: Sequence[str | os.PathLike[str]],
                   out_dir: str | os.PathLike[str], *, placement: Placement, riding: bool = False,
                   actor: "Actor", processes: int = 2, reason: str | None = None,
                   progress: Callable[[int, int, BatchItem], None] | None = None,
                   riding_min_mm: float = DEFAULT_MIN_SLICE_MM) -> list[BatchItem]:
        """Seal many PDFs and OFDs (told by content) with one password check; the key is loaded
        once per worker process.  Items come back in the order of `files`."""
        kinds: dict[int, str] = {}
        for i, f in enumerate(files):
            try:
                kinds[i] = detect_format(f)
            except YinxinError:
                kinds[i] = PDF          # the PDF engine reports it, one line per file
        pdfs = [f for i, f in enumerate(files) if kinds[i] == PDF]
        ofds = [f for i, f in enumerate(files) if kinds[i] == OFD]
        items: list[BatchItem] = []
        if ofds:
            from .ofd.batch import stamp_ofd_batch
            record, key = self.open_ofd_key(seal_name, password, actor=actor)
            items += stamp_ofd_batch(ofds, out_dir, key=key, placement=placement, riding=riding,
                                     riding_min_mm=riding_min_mm, processes=processes, progress=progress,
                                     **self._ofd_options(record))
        if pdfs:
            record, signer = self.open_signer(seal_name, password, actor=actor)
            items += stamp_batch(pdfs, out_dir, lambda: signer, drawing=record.drawing(), placement=placement,
                                 riding=riding, processes=processes, progress=progress,
                                 reason=reason or f"{record.organisation}盖章", clock=self.home.clock,
                                 riding_min_mm=riding_min_mm)
        order = {os.fspath(Path(f)): i for i, f in enumerate(files)}
        items.sort(key=lambda item: order.get(os.fspath(item.source), len(order)))
        now = self.home.clock.now()
        with self.home.store.transaction() as conn:
            for item in items:
                if item.ok:
                    audit.append(conn, at=now, actor=actor.account_id, action="seal.stamp",
                                 target=f"seal:{record.name}",
                                 details={"input": str(item.source), "output": str(item.output), "batch": True},
                                 result_digest=_sha256_file(item.output))
        return items

    def extend(self, input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], *,
               timestamper: Any, actor: "Actor") -> ExtendResult:
        """Archive renewal: fresh validation data (this home's CRLs, the certificates of every path
        that still validates) and a new document timestamp added to a sealed PDF, earlier
        signatures untouched.  Any authenticated account may extend (no seal key is used); the act is
        audited under its name.  The output is written whole or not at all."""
        from pki.accounts.accounts import Accounts
        Accounts.of(self.home).require(actor)
        if Path(output_path).resolve() == Path(input_path).resolve():
            raise ValueError("the output must not overwrite the input")
        result = self._extend(input_path, output_path, timestamper)
        with self.home.store.transaction() as conn:
            audit.append(conn, at=self.home.clock.now(), actor=actor.account_id, action="seal.extend",
                         target=f"pdf:{Path(output_path).name}",
                         details={"input_sha256": _sha256_file(Path(input_path)), "output": str(result.output),
                                  "timestamp": result.timestamp_time.isoformat(), "tsa": result.tsa_subject},
                         result_digest=_sha256_file(result.output))
        return result

    def extend_bytes(self, pdf: bytes, *, timestamper: Any) -> tuple[bytes, ExtendResult]:
        """`extend` on bytes, without an audit event of its own (for callers that record the act
        in their own transaction, as the document archive does)."""
        with tempfile.TemporaryDirectory(prefix="yinxin-extend-") as tmp:
            src, dst = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
            src.write_bytes(pdf)
            result = self._extend(src, dst, timestamper)
            return dst.read_bytes(), result

    def _extend(self, input_path: str | os.PathLike[str], output_path: str | os.PathLike[str],
                timestamper: Any) -> ExtendResult:
        authority = self.registry.authority
        tsa_chain = self.tsa_chain(timestamper)
        revocation = self._revocation(tsa_chain) if tsa_chain else RevocationData()
        crls = tuple(latest_crls(authority, authority.cas()))
        revocation = RevocationData(crls=tuple(dict.fromkeys(revocation.crls + crls)), ocsps=revocation.ocsps)
        return extend_pdf(input_path, output_path, timestamper=timestamper, trust_roots=self.trust_roots(),
                          revocation=revocation, clock=self.home.clock)

    def _audit_stamp(self, record: SealRecord, actor: "Actor", result: Any, source: Path) -> None:
        with self.home.store.transaction() as conn:
            audit.append(conn, at=self.home.clock.now(), actor=actor.account_id, action="seal.stamp",
                         target=f"seal:{record.name}",
                         details={"input_sha256": _sha256_file(source), "output": str(result.output),
                                  "format": getattr(result, "format", PDF),
                                  "field": result.field_name, "page": result.page,
                                  "riding_pages": result.riding_pages, **_timestamp_details(result)},
                         result_digest=_sha256_file(result.output))

    # ---------------------------------------------------------------- verification

    def trust_roots(self, cas: Sequence[Any] | None = None) -> list[asn1_x509.Certificate]:
        """The home's root CAs (of `cas`, the home's CAs when read already): trusted by default."""
        return [info.certificate for info in (self.registry.authority.cas() if cas is None else cas)
                if info.parent is None]

    def certificate_status(self, cert: asn1_x509.Certificate) -> tuple[str, datetime | None, str | None] | None:
        """This home's record of a certificate one of its CAs issued: (status, revoked_at, reason),
        or None when it is not one of ours (the same DER must be on record)."""
        from pki.errors import NotFound, PolicyError
        for info in self.registry.authority.cas():
            if info.certificate.subject.dump() != cert.issuer.dump():
                continue
            try:
                record = self.registry.authority.show(f"{cert.serial_number:x}", ca=info.name)
            except (NotFound, PolicyError):
                continue
            if record.cert_der is not None and record.cert_der == cert.dump():
                return record.status, record.revoked_at, record.revocation_reason
        return None

    def verify(self, pdf: bytes | str | os.PathLike[str], *,
               trust: Sequence[asn1_x509.Certificate] = (), crls: Sequence[bytes] = (),
               at: datetime | None = None) -> SealVerification:
        """Verify a PDF or an OFD (told by content); see `verify_pdf_document` and `verify_ofd_document`.
        `trust` adds trusted roots, `crls` CRLs (DER) to the home's own; `at` is "now" for the PDF
        check in the past (OFD: judged now)."""
        if detect_format(pdf) == OFD:
            return self.verify_ofd_document(pdf, trust=trust, crls=crls)
        return self.verify_pdf_document(pdf, trust=trust, crls=crls, at=at)

    def verify_ofd_document(self, data: bytes | str | os.PathLike[str], *,
                            trust: Sequence[asn1_x509.Certificate] = (),
                            crls: Sequence[bytes] = ()) -> SealVerification:
        """Every seal of an OFD in GB/T 38540's order (seal.ofd.verify), with this home's root CAs
        and `trust` as trust roots, its published CRLs, and its own records of the certificates
        it issued (held or revoked counts at once).  A seal of another producer is judged on its
        own SES_Seal; one made with a seal of this home is named."""
        from .ofd.verify import verify_ofd
        authority = self.registry.authority
        known = tuple(der for info in authority.cas() if (der := latest_crl(authority, info)))
        engine = verify_ofd(data, trust_roots=[*self.trust_roots(), *trust],
                            revocation=RevocationData(crls=(*known, *crls)),
                            clock=self.home.clock, certificate_status=self.certificate_status)
        checks = []
        for sig in engine.signatures:
            cert = sig.signer_certificate
            record = None
            if cert is not None:
                try:
                    record = self.registry.find_by_certificate(cert.dump())
                except Exception:
                    record = None
            maker = next((c.detail.split(" over ")[0][3:] for c in sig.checks
                          if c.name == "seal_maker" and c.verdict == VALID), None)
            checks.append(SignatureCheck(
                report=sig, seal_name=record.name if record else None,
                organisation=record.organisation if record else None,
                certificate_status=sig.revocation.status if record else None, problems=sig.problems,
                valid=sig.valid, seal_maker=maker, checks=sig.checks, verdict=sig.verdict))
        return SealVerification(tuple(checks), engine, engine.problems, engine.valid, verdict=engine.verdict,
                                format=OFD)

    def verify_pdf_document(self, pdf: bytes | str | os.PathLike[str], *,
                            trust: Sequence[asn1_x509.Certificate] = (),
                            crls: Sequence[bytes] = (), at: datetime | None = None) -> SealVerification:
        """Check every signature in the order of GB/T 38540 / DOMAIN.md: intact bytes, coverage,
        chain to a trusted root, revocation (this home's CA records are authoritative for its own
        certificates; CRLs/OCSP embedded or published are used too), the certificate belongs to a
        seal of this home, the seal maker's signature over that seal (its SES_Seal, made by the CA
        that issued the seal certificate) lists the certificate, and the seal's validity window —
        as the maker signed it — covers the signing time.

        Each signature is judged at the time its timestamps prove (else at `at`, default now):
        a revocation or hold recorded here before that time counts, one after it is a note.
        See `verify_offline` for a check without this home."""
        authority = self.registry.authority
        cas = authority.cas()          # read once: the CRLs, the trust roots and each seal's maker come from it
        crls = (*latest_crls(authority, cas), *crls)
        seals: dict[bytes, SealRecord | None] = {}

        def seal_of(cert_der: bytes) -> SealRecord | None:
            """The seal of a certificate, looked up once per verification (asked by the check and the judge)."""
            if cert_der not in seals:
                seals[cert_der] = self.registry.find_by_certificate(cert_der)
            return seals[cert_der]

        def seal_check(cert: asn1_x509.Certificate) -> SealCheck:
            record = seal_of(cert.dump())
            if record is None:
                return SealCheck(False, reason="the signing certificate belongs to no seal of this home")
            return SealCheck(True, seal=record.name)

        engine = verify_pdf(pdf, trust_roots=[*self.trust_roots(cas), *trust],
                            revocation=RevocationData(crls=crls), seal_check=seal_check,
                            clock=self.home.clock, at=at)
        checks = tuple(self._judge(sig, seal_of, cas) for sig in engine.signatures)
        problems = list(engine.problems)
        if not engine.signatures:
            problems.append("the document carries no seal")
        for check in checks:
            if check.verdict != "valid" and check.verdict != check.report.verdict:
                problems.append(f"seal {check.report.field_name} ({check.verdict}): " + "; ".join(check.problems))
        verdict = combine([engine.verdict, *(c.verdict for c in checks)]) if checks else INVALID
        return SealVerification(checks, engine, tuple(dict.fromkeys(problems)), verdict == "valid", verdict)

    def _judge(self, sig: SignatureReport, seal_of: Callable[[bytes], SealRecord | None],
               cas: Sequence[Any]) -> SignatureCheck:
        problems, undecided, notes = list(sig.problems), [], list(sig.notes)
        cert = sig.signer_certificate
        record = seal_of(cert.dump()) if cert is not None else None
        status = maker = None
        own: list[str] = []
        if record is not None:
            at = sig.timestamp or sig.signing_time
            seal_problems, maker = self._seal_problems(record, cert.dump(), at, cas)
            own += seal_problems
            cert_record = self.registry.authority.show(record.cert_serial, ca=record.ca)
            status = cert_record.status
            judged = sig.judged_at
            if cert_record.status in ("held", "revoked"):
                text = (f"the certificate of seal {record.name} is {cert_record.status}"
                        + (f" ({cert_record.revocation_reason})" if cert_record.revocation_reason else "")
                        + (f" since {cert_record.revoked_at:%Y-%m-%d %H:%M}" if cert_record.revoked_at else ""))
                since = cert_record.revoked_at
                if since is not None and judged is not None and since > judged:
                    notes.append(f"{text}: after the proven time {judged:%Y-%m-%d %H:%M}, which this does not "
                                 "invalidate")
                elif cert_record.status == "held":
                    undecided.append(text + " (a hold may be released: cannot be decided now)")
                else:
                    own.append(text)
        verdict = combine([sig.verdict, *(["invalid"] if own or record is None else []),
                           *(["indeterminate"] if undecided else [])])
        return SignatureCheck(report=sig, seal_name=record.name if record else None,
                              organisation=record.organisation if record else None,
                              certificate_status=status, problems=tuple(dict.fromkeys(problems + own + undecided)),
                              valid=verdict == "valid", seal_maker=maker, verdict=verdict,
                              notes=tuple(dict.fromkeys(notes)))

    def _seal_problems(self, record: SealRecord, cert_der: bytes, at: datetime | None,
                       cas: Sequence[Any]) -> tuple[list[str], str | None]:
        """GB/T 38540's checks of the seal itself: the maker's signature over the SES_Seal (the
        maker being the CA that issued the seal certificate, found among `cas`, the home's CAs), the
        signing certificate listed in that seal, and the seal's validity window — as the maker signed
        it — at signing time.  Returns (problems, the maker's subject when its signature verifies)."""
        ca = ca_named(cas, record.ca) or self.registry.authority.get(record.ca)
        try:
            data, maker = _MAKERS.get(
                (bytes_key(record.ses_der), bytes_key(ca.cert_der), ca.distid, record.needs_resign),
                lambda: (verify_seal(record.ses_der, ca.public_key(), distid=ca.distid,
                                     accept_legacy=record.needs_resign), ca.certificate.subject.human_friendly))
        except YinxinError as exc:
            return [f"seal {record.name}: {exc.message}"], None
        problems = []
        if data.maker_cert != ca.cert_der:
            problems.append(f"seal {record.name} names another maker certificate than CA {ca.name}'s")
        if cert_der not in data.certificates:
            problems.append(f"the signing certificate is not one of the certificates of seal {record.name}")
        if (data.valid_start, data.valid_end) != (record.valid_from, record.valid_to):
            problems.append(f"the stored validity of seal {record.name} differs from the one its maker signed")
        if at is None:
            problems.append("the signature states no signing time")
        elif not data.valid_start <= at <= data.valid_end:
            problems.append(f"seal {record.name} was not valid at signing time {at:%Y-%m-%d %H:%M} "
                            f"(valid {data.valid_start:%Y-%m-%d %H:%M} to {data.valid_end:%Y-%m-%d %H:%M})")
        return problems, maker


#: the seal maker's signature over a stored SES_Seal, verified: a pure function of the seal's bytes
#: and the maker's certificate (its key), distid and the legacy rule — remembered for the last few
#: (pki.memo); the time checks above are made on every call
_MAKERS = BytesMemo(32)


def _ofd_timestamper(timestamper: Any, timestamp_url: str | None, with_validation_info: bool,
                     archive_timestamp: bool) -> Any:
    """The timestamper of an OFD seal (SES_Signature.timeStamp), or None; the PDF-only options
    refused in one line before anything is opened."""
    from .ofd.errors import OfdSealError
    if with_validation_info:
        raise OfdSealError("--with-validation-info is for PDF (its DSS); an OFD seal carries its certificate "
                           "and the seal's, and the verifier brings the CRLs", option="with_validation_info")
    if archive_timestamp:
        raise OfdSealError("--archive-timestamp (a PDF document timestamp, B-LTA) is for PDF; an OFD seal's "
                           "timestamp (--tsa or --timestamp-url) goes into its SES_Signature", option="archive_timestamp")
    if timestamper is not None and timestamp_url:
        raise ValueError("give a timestamper or a timestamp URL, not both")
    if timestamp_url:
        from pki.tsa import HttpTimestamper
        return HttpTimestamper(timestamp_url)
    return timestamper


def _timestamp_details(result: Any) -> dict[str, Any]:
    """The audit event's note of an OFD seal's timestamp (nothing when it has none)."""
    when = getattr(result, "timestamp_time", None)
    return {} if when is None else {"timestamp": when.isoformat()}

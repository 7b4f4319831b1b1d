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
from pki.errors import YinxinError
from pki.home import Home
from pki.status import latest_crl

from .cms_signer import make_signer
from .formats import OFD, PDF, detect_format
from .riding import DEFAULT_MIN_SLICE_MM
from .verdicts import INVALID, VALID, CheckResult
from .pdf_placement import AnchorText, AtPosition, ExistingField, Placement
from .pdf_sign import BatchItem, StampResult, stamp_batch, stamp_pdf
from .pdf_validation import RevocationData
from .pdf_verify import SealCheck, SignatureReport, VerificationReport, verify_pdf
from .records import SealRecord, SealRegistry
from .ses import verify_seal

if TYPE_CHECKING:
    from pki.accounts.actor import Actor

__all__ = ["SealService", "StampOutcome", "SealVerification", "SignatureCheck", "Placement", "AtPosition",
           "AnchorText", "ExistingField"]


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
    verdict: str = ""                    # valid | invalid | indeterminate ("" = from `valid`)

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", VALID if self.valid else INVALID)

    def to_dict(self) -> dict[str, Any]:
        r = self.report
        return {"verdict": self.verdict, "checks": [c.to_dict() for c in self.checks], "field": r.field_name, "page": r.page, "seal": self.seal_name,
                "organisation": self.organisation, "signer": r.signer_subject,
                "serial": f"{r.signer_serial:X}", "algorithm": r.algorithm, "digest": r.digest_algorithm,
                "signing_time": r.signing_time.isoformat() if r.signing_time else None,
                "intact": r.intact, "signature_valid": r.signature_valid, "coverage": r.coverage,
                "modified_after": list(r.modified_after),
                "chain": {"trusted": r.chain.trusted, "reason": r.chain.reason, "path": list(r.chain.path)},
                "revocation": {"status": r.revocation.status, "reason": r.revocation.reason,
                               "revoked_at": r.revocation.revoked_at.isoformat() if r.revocation.revoked_at else None},
                "certificate_status": self.certificate_status, "seal_maker": self.seal_maker,
                "problems": list(self.problems), "valid": self.valid}


@dataclass(frozen=True)
class SealVerification:
    """The whole document: valid only if every signature is valid and nothing unsigned follows the last."""
    signatures: tuple[SignatureCheck, ...]
    engine: VerificationReport
    problems: tuple[str, ...]
    valid: bool
    verdict: str = ""                    # valid | invalid | indeterminate ("" = from `valid`)
    format: str = PDF                    # pdf | ofd

    def __post_init__(self) -> None:
        if not self.verdict:
            object.__setattr__(self, "verdict", VALID if self.valid else INVALID)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "format": self.format, "notes": list(self.engine.notes),
                "valid": self.valid, "revisions": self.engine.revisions,
                "modified_after_last_signature": self.engine.modified_after_last_signature,
                "problems": list(self.problems), "signatures": [s.to_dict() for s in self.signatures]}


@dataclass(frozen=True)
class StampOutcome:
    pdf: bytes              # the sealed document (PDF or OFD)
    digest: str             # SHA-256 of the sealed document, hex
    field_name: str
    result: Any             # StampResult (PDF) or seal.ofd.OfdStampResult
    format: str = PDF


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

    def _revocation(self, chain: Sequence[asn1_x509.Certificate]) -> RevocationData:
        """The latest CRLs this home published for the CAs of a chain (nothing fetched)."""
        crls = []
        for info in self.registry.authority.cas():
            if any(info.cert_der == c.dump() for c in chain):
                der = latest_crl(self.registry.authority, info)
                if der:
                    crls.append(der)
        return RevocationData(crls=tuple(crls))

    def open_signer(self, seal_name: str, password: bytes, *, actor: "Actor") -> tuple[SealRecord, Any]:
        """Check that the actor is the seal's custodian and the seal may sign now, open its key (the
        seal's password: the second proof, of the seal), return (record, pyHanko signer)."""
        record = self.registry.get(seal_name)
        self.registry.require_custodian(record, actor)
        self.registry.check_usable(record, self.home.clock.now())
        key = self.registry.open_key(seal_name, password, actor=actor)
        chain = self.registry.chain(record)
        ca = self.registry.authority.get(record.ca)
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

    def _options(self, record: SealRecord, timestamp_url: str | None,
                 with_validation_info: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"timestamp_url": timestamp_url, "clock": self.home.clock}
        if with_validation_info:
            chain = self.registry.chain(record)
            options.update(embed_validation_info=True, trust_roots=[chain[-1]],
                           revocation=self._revocation(chain))
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
                   with_validation_info: bool = False, riding_min_mm: float = DEFAULT_MIN_SLICE_MM) -> Any:
        """Seal one PDF or OFD file (told by content) into `output_path` (written whole or not at
        all).  Returns a StampResult (PDF) or an OfdStampResult."""
        if Path(output_path).resolve() == Path(input_path).resolve():
            raise ValueError("the output must not overwrite the input")
        if detect_format(input_path) == OFD:
            return self._stamp_ofd_file(seal_name, password, input_path, output_path, placement=placement,
                                        riding=riding, riding_min_mm=riding_min_mm, actor=actor,
                                        timestamp_url=timestamp_url, with_validation_info=with_validation_info)
        record, signer = self.open_signer(seal_name, password, actor=actor)
        result = stamp_pdf(input_path, output_path, signer=signer, drawing=self._drawing(record),
                           placement=placement, riding=riding, reason=reason or f"{record.organisation}盖章",
                           riding_min_mm=riding_min_mm,
                           **self._options(record, timestamp_url, with_validation_info))
        self._audit_stamp(record, actor, result, Path(input_path))
        return result

    def _stamp_ofd_file(self, seal_name: str, password: bytes, input_path, output_path, *, placement: Placement,
                        riding: bool, riding_min_mm: float, actor: "Actor", timestamp_url: str | None,
                        with_validation_info: bool) -> Any:
        from .ofd.errors import OfdSealError
        from .ofd.package import OfdPackage
        from .ofd.sign import stamp_ofd
        OfdPackage(input_path).close()     # a broken or oversized package: said before the seal is opened
        if timestamp_url:
            raise OfdSealError("a timestamp in an OFD seal (SES_Signature.timeStamp) needs yinxin's trusted-time "
                               "service, which this build lacks: stamp without --timestamp-url", option="timestamp")
        if with_validation_info:
            raise OfdSealError("--with-validation-info is for PDF (its DSS); an OFD seal carries its certificate "
                               "and the seal's, and the verifier brings the CRLs", option="with_validation_info")
        record, key = self.open_ofd_key(seal_name, password, actor=actor)
        result = stamp_ofd(input_path, output_path, key=key, placement=placement, riding=riding,
                           riding_min_mm=riding_min_mm, **self._ofd_options(record))
        self._audit_stamp(record, actor, result, Path(input_path))
        return result

    def stamp(self, seal_name: str, password: bytes, pdf: bytes, *, placement: Placement,
              riding: bool = False, actor: "Actor", reason: str | None = None,
              timestamp_url: str | None = None, with_validation_info: bool = False,
              riding_min_mm: float = DEFAULT_MIN_SLICE_MM) -> StampOutcome:
        """Seal PDF or OFD bytes (told by content); returns the sealed bytes."""
        if detect_format(pdf) == OFD:
            from .ofd.errors import OfdSealError
            from .ofd.sign import stamp_ofd_bytes
            if timestamp_url or with_validation_info:
                raise OfdSealError("timestamps and embedded validation data are for PDF seals in this build")
            record, key = self.open_ofd_key(seal_name, password, actor=actor)
            data, result = stamp_ofd_bytes(bytes(pdf), key=key, placement=placement, riding=riding,
                                           riding_min_mm=riding_min_mm, **self._ofd_options(record))
            with self.home.store.transaction() as conn:
                audit.append(conn, at=self.home.clock.now(), actor=actor.account_id, action="seal.stamp",
                             target=f"seal:{record.name}",
                             details={"input_sha256": hashlib.sha256(bytes(pdf)).hexdigest(), "format": OFD,
                                      "field": result.field_name, "page": result.page,
                                      "riding_pages": result.riding_pages},
                             result_digest=hashlib.sha256(data).hexdigest())
            return StampOutcome(pdf=data, digest=hashlib.sha256(data).hexdigest(), field_name=result.field_name,
                                result=result, format=OFD)
        with tempfile.TemporaryDirectory(prefix="yinxin-stamp-") as tmp:
            src, dst = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
            src.write_bytes(pdf)
            result = self.stamp_file(seal_name, password, src, dst, placement=placement, riding=riding,
                                     actor=actor, reason=reason, timestamp_url=timestamp_url,
                                     with_validation_info=with_validation_info, riding_min_mm=riding_min_mm)
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

    def _audit_stamp(self, record: SealRecord, actor: "Actor", result: Any, source: Path) -> None:
        with self.home.store.transaction() as conn:
            audit.append(conn, at=self.home.clock.now(), actor=actor.account_id, action="seal.stamp",
                         target=f"seal:{record.name}",
                         details={"input_sha256": _sha256_file(source), "output": str(result.output),
                                  "format": getattr(result, "format", PDF),
                                  "field": result.field_name, "page": result.page,
                                  "riding_pages": result.riding_pages},
                         result_digest=_sha256_file(result.output))

    # ---------------------------------------------------------------- verification

    def trust_roots(self) -> list[asn1_x509.Certificate]:
        """The home's root CAs: trusted by default."""
        return [info.certificate for info in self.registry.authority.cas() if info.parent is None]

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
               trust: Sequence[asn1_x509.Certificate] = (), crls: Sequence[bytes] = ()) -> SealVerification:
        """Verify a PDF or an OFD (told by content); see `verify_pdf_document` and `verify_ofd_document`.
        `trust` adds trusted roots, `crls` CRLs (DER) to the home's own."""
        if detect_format(pdf) == OFD:
            return self.verify_ofd_document(pdf, trust=trust, crls=crls)
        return self.verify_pdf_document(pdf, trust=trust, crls=crls)

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
                            crls: Sequence[bytes] = ()) -> SealVerification:
        """Check every signature in the order of GB/T 38540 / DOMAIN.md: intact bytes, coverage,
        chain to a trusted root, revocation (this home's CA records are authoritative for its own
        certificates, held or revoked counts now; CRLs/OCSP embedded or published are used too),
        the certificate belongs to a seal of this home, the seal maker's signature over that seal
        (its SES_Seal, made by the CA that issued the seal certificate) lists the certificate, and
        the seal's validity window — as the maker signed it — covers the signing time."""
        authority = self.registry.authority
        crls = (*(der for info in authority.cas() if (der := latest_crl(authority, info))), *crls)

        def seal_check(cert: asn1_x509.Certificate) -> SealCheck:
            record = self.registry.find_by_certificate(cert.dump())
            if record is None:
                return SealCheck(False, reason="the signing certificate belongs to no seal of this home")
            return SealCheck(True, seal=record.name)

        engine = verify_pdf(pdf, trust_roots=[*self.trust_roots(), *trust],
                            revocation=RevocationData(crls=crls), seal_check=seal_check,
                            clock=self.home.clock)
        checks = tuple(self._judge(sig) for sig in engine.signatures)
        problems = list(engine.problems)
        if not engine.signatures:
            problems.append("the document carries no seal")
        valid = engine.valid and bool(checks) and all(c.valid for c in checks)
        return SealVerification(checks, engine, tuple(problems), valid)

    def _judge(self, sig: SignatureReport) -> SignatureCheck:
        problems = list(sig.problems)
        cert = sig.signer_certificate
        record = self.registry.find_by_certificate(cert.dump()) if cert is not None else None
        status = maker = None
        if record is not None:
            at = sig.timestamp or sig.signing_time
            seal_problems, maker = self._seal_problems(record, cert.dump(), at)
            problems += seal_problems
            cert_record = self.registry.authority.show(record.cert_serial, ca=record.ca)
            status = cert_record.status
            if cert_record.status in ("held", "revoked"):
                problems.append(f"the certificate of seal {record.name} is {cert_record.status}"
                                + (f" ({cert_record.revocation_reason})" if cert_record.revocation_reason else "")
                                + (f" since {cert_record.revoked_at:%Y-%m-%d %H:%M}" if cert_record.revoked_at
                                   else ""))
        return SignatureCheck(report=sig, seal_name=record.name if record else None,
                              organisation=record.organisation if record else None,
                              certificate_status=status, problems=tuple(dict.fromkeys(problems)),
                              valid=sig.valid and record is not None and not problems, seal_maker=maker)

    def _seal_problems(self, record: SealRecord, cert_der: bytes,
                       at: datetime | None) -> tuple[list[str], str | None]:
        """GB/T 38540's checks of the seal itself: the maker's signature over the SES_Seal (the
        maker being the CA that issued the seal certificate), the signing certificate listed in
        that seal, and the seal's validity window — as the maker signed it — at signing time.
        Returns (problems, the maker's subject when its signature verifies)."""
        ca = self.registry.authority.get(record.ca)
        try:
            data = verify_seal(record.ses_der, ca.public_key(), distid=ca.distid,
                               accept_legacy=record.needs_resign)
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
        return problems, ca.certificate.subject.human_friendly

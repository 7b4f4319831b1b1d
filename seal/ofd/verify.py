"""Verifying the seals of an OFD, made by yinxin or anyone else (GB/T 38540 §8 order).

For each Signature listed in the Signatures.xml that OFD.xml names:

1. the References: every file's CheckValue under its CheckMethod — "SM3", "sm3",
   "1.2.156.10197.1.401" (plain SM3) or "1.2.156.10197.1.401.2" (SM3 of Z ‖ file, Z from the
   signer's key); a Signatures.xml that only a later seal changed is reported as such;
2. files added after signing (not referenced, not part of a signature, not Signatures.xml;
   an unprotected OFD.xml is noted);
3. dataHash = SM3 of the exact Signature.xml bytes, propertyInfo = its path;
4. the signer's signature over TBS_Sign as stored (DER or raw r ‖ s);
5. Seal.esl, when present, is the SES_Seal inside TBS_Sign;
6. the seal maker's signature (v4: over SES_SealInfo; v1: over SEQUENCE{info, cert, alg});
7. the signer's certificate is in the seal's certList (certificates or digests);
8. the chain of the signer's and of the maker's certificate to a trusted root, and revocation;
9. the seal's validity window at the signing time (the timestamp's when one verifies);
10. the timestamp, when present: a TimeStampToken whose imprint is the signature value's;
11. the picture: PNG/JPEG/GIF/BMP decoded within bounds, or "ofd" (a nested OFD).

Each check gets a verdict (seal.verdicts); the signature's is the worst of them, and the
document's the worst of its signatures'.  The report is `seal.pdf_verify.VerificationReport`
with `SignatureReport`s, as for PDF.
"""
from __future__ import annotations

import hashlib
import io
import os
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, tsp, x509

import pki
from pki.sm2 import DEFAULT_DISTID, compute_z, sm3

from ..aio import run as run_coroutine
from ..limits import DEFAULT_LIMITS, MiB, ReadLimits
from ..pdf_validation import RevocationData, covered_by, validation_context
from ..pdf_verify import ChainStatus, RevocationStatus, SignatureReport, VerificationReport
from ..ses import (SesError, SignatureData, check_signature_value, parse_signature, signer_public_key,
                   verify_seal, verify_signer)
from ..verdicts import INDETERMINATE, INVALID, SKIPPED, VALID, CheckResult, combine
from . import xmlsafe
from .document import pages_of
from .errors import OfdError
from .package import OfdPackage

__all__ = ["verify_ofd", "list_signatures", "OfdSignatureInfo", "CertificateStatus"]

#: (status "issued" | "held" | "revoked", revoked_at, reason) of a certificate this home issued, else None
CertificateStatus = Callable[[x509.Certificate], "tuple[str, datetime | None, str | None] | None"]

PLAIN_SM3 = {"sm3", "1.2.156.10197.1.401"}
SM3_WITH_Z = "1.2.156.10197.1.401.2"
MAX_SIGNED_VALUE = 16 * MiB


@dataclass(frozen=True)
class OfdSignatureInfo:
    """A signature of an OFD as listed (for callers that map signers to seals)."""
    id: str
    path: str                      # package path of its Signature.xml
    certificate: bytes | None      # the signer's certificate (DER), None if the value does not parse
    signing_time: datetime | None


@dataclass
class _Entry:
    id: str
    path: str
    files: set[str]                # its Signature.xml, SignedValue.dat and Seal.esl


def _subject(cert: x509.Certificate | None) -> str:
    if cert is None:
        return ""
    try:
        return cert.subject.human_friendly
    except Exception:        # names in string types asn1crypto cannot decode (some producers)
        try:
            return "; ".join(f"{k}={v}" for k, v in cert.subject.native.items())
        except Exception:
            return f"(unreadable name, serial {cert.serial_number:X})"


def _signature_entries(package: OfdPackage, signatures_path: str) -> list[_Entry]:
    root = package.xml(signatures_path)
    entries = []
    for element in xmlsafe.findall(root, "Signature"):
        loc = element.get("BaseLoc") or ""
        path = package.resolve(loc, signatures_path) if loc else ""
        files = {path} if path else set()
        if path and package.exists(path):
            try:
                sig = package.xml(path)
                for name in ("SignedValue",):
                    node = xmlsafe.find(sig, name)
                    if node is not None and (node.text or "").strip():
                        files.add(package.resolve(node.text, path))
                seal = xmlsafe.find(sig, "SignedInfo", "Seal", "BaseLoc")
                if seal is not None and (seal.text or "").strip():
                    files.add(package.resolve(seal.text, path))
            except OfdError:
                pass
        entries.append(_Entry(element.get("ID") or "", path, {f for f in files if f}))
    return entries


def list_signatures(data: bytes | str | os.PathLike[str], *, limits: ReadLimits = DEFAULT_LIMITS
                    ) -> list[OfdSignatureInfo]:
    """The signatures of the first document, in Signatures.xml order, with their signers."""
    with OfdPackage(data, limits=limits) as package:
        body = package.doc_bodies()[0]
        if body.signatures is None or not package.exists(body.signatures):
            return []
        out = []
        for entry in _signature_entries(package, body.signatures):
            cert = when = None
            try:
                sig = package.xml(entry.path)
                value = xmlsafe.find(sig, "SignedValue")
                parsed = parse_signature(package.read(package.resolve(value.text, entry.path),
                                                      limit=MAX_SIGNED_VALUE))
                cert, when = parsed.signer_cert, parsed.time_info
            except (OfdError, SesError, AttributeError, TypeError):
                pass
            out.append(OfdSignatureInfo(entry.id, entry.path, cert, when))
        return out


# --------------------------------------------------------------------------- checks

class _Sig:
    """The checks of one signature, collected."""

    def __init__(self) -> None:
        self.checks: list[CheckResult] = []

    def add(self, name: str, verdict: str, detail: str = "") -> str:
        self.checks.append(CheckResult(name, verdict, detail))
        return verdict

    def problems(self) -> list[str]:
        return [f"{c.name}: {c.detail}" if c.detail else c.name for c in self.checks
                if c.verdict in (INVALID, INDETERMINATE)]


def _reference_digest(package: OfdPackage, path: str, method: str, signer_key) -> bytes | None:
    m = method.strip().lower()
    if m in PLAIN_SM3:
        return package.digest(path)
    if m == SM3_WITH_Z:
        if signer_key is None or getattr(signer_key, "algorithm", "") != "sm2":
            return None
        return package.digest(path, prefix=compute_z(DEFAULT_DISTID, signer_key.x, signer_key.y))
    return None


def _check_picture(data: SignatureData, limits: ReadLimits) -> tuple[str, str]:
    kind = (data.seal.picture_type or "").strip().lower()
    picture = data.seal.picture
    if kind in ("png", "jpg", "jpeg", "gif", "bmp"):
        from PIL import Image
        try:
            with Image.open(io.BytesIO(picture)) as image:
                if image.width * image.height > limits.max_image_pixels:
                    return INVALID, f"the {kind} picture has {image.width}×{image.height} pixels (too many)"
                image.verify()
            return VALID, f"{kind} {image.width}×{image.height} pixels, {data.seal.width_mm}×{data.seal.height_mm} mm"
        except Exception as exc:
            return INVALID, f"the {kind} picture does not decode ({exc})"
    if kind == "ofd":
        try:
            with OfdPackage(picture, limits=limits) as nested:
                nested.doc_bodies()
            return VALID, f"a nested OFD of {len(picture)} bytes, {data.seal.width_mm}×{data.seal.height_mm} mm"
        except OfdError as exc:
            return INVALID, f"the ofd picture is not a readable OFD ({exc.message})"
    return INDETERMINATE, f"picture type {data.seal.picture_type!r} is neither png/jpg/gif/bmp nor ofd: readers cannot draw it"


def _check_timestamp(data: SignatureData) -> tuple[str, str, datetime | None, bytes | None]:
    """A DER TimeStampToken over the signature value: its imprint and its signature.
    Returns (verdict, detail, the time it states, the TSA's certificate)."""
    if data.timestamp is None:
        return SKIPPED, "no timestamp", None, None
    try:
        info = cms.ContentInfo.load(data.timestamp)
        signed = info["content"]
        tst = tsp.TSTInfo.load(signed["encap_content_info"]["content"].parsed.dump())
        imprint = tst["message_imprint"]
        algorithm = imprint["hash_algorithm"]["algorithm"].native
        hashed = imprint["hashed_message"].native
        expected = sm3(data.signature) if algorithm == "sm3" else hashlib.new(algorithm, data.signature).digest()
        if hashed != expected:
            return INVALID, "the timestamp's imprint is not the digest of the signature value", None, None
        signer = signed["signer_infos"][0]
        certs = [c.chosen for c in signed["certificates"] or [] if c.name == "certificate"]
        sid = signer["sid"].chosen
        cert = next((c for c in certs if c.serial_number == sid["serial_number"].native), None) \
            if sid.__class__.__name__ == "IssuerAndSerialNumber" else (certs[0] if certs else None)
        if cert is None:
            return INDETERMINATE, "the timestamp carries no TSA certificate", None, None
        attrs = signer["signed_attrs"]
        digest_alg = signer["digest_algorithm"]["algorithm"].native
        content = signed["encap_content_info"]["content"].contents
        digest = sm3(content) if digest_alg == "sm3" else hashlib.new(digest_alg, content).digest()
        md = next(a["values"][0].native for a in attrs if a["type"].native == "message_digest")
        if md != digest:
            return INVALID, "the timestamp's message digest does not match its content", None, None
        key = signer_public_key(cert.dump())
        alg_oid = signer["signature_algorithm"]["algorithm"].dotted
        if alg_oid in ("1.2.840.113549.1.1.1", "1.2.840.10045.2.1"):    # rsaEncryption / ecPublicKey: take the key's
            alg_oid = key.signature_algorithm()["algorithm"].dotted
        check_signature_value(key, alg_oid, signer["signature"].native, attrs.untag().dump(),
                              distid=DEFAULT_DISTID)
        when = tst["gen_time"].native
        return VALID, f"timestamp of {when:%Y-%m-%d %H:%M:%S} UTC by {_subject(cert)}", when, cert.dump()
    except pki.InvalidSignature as exc:
        return INVALID, f"the timestamp's signature does not verify ({exc.message})", None, None
    except Exception as exc:
        return INVALID, f"the timestamp does not parse ({exc})", None, None


def _chain(cert_der: bytes, trust_roots, revocation: RevocationData | None, now: datetime, distid,
           others: Sequence[x509.Certificate], status_of: CertificateStatus | None
           ) -> tuple[str, ChainStatus, RevocationStatus]:
    from pyhanko_certvalidator import CertificateValidator
    from pyhanko_certvalidator.errors import (ExpiredError, InsufficientRevinfoError, NotYetValidError,
                                              PathBuildingError, PathValidationError, RevokedError)
    try:
        cert = x509.Certificate.load(cert_der)
        cert.native  # noqa: B018 - parse it all now
    except Exception:
        try:
            cert = x509.Certificate.load(cert_der)
        except Exception as exc:
            return INVALID, ChainStatus(False, f"the certificate does not parse ({exc})"), RevocationStatus("unknown")
    home = status_of(cert) if status_of is not None else None
    crls = revocation.parsed_crls() if revocation else []
    ocsps = revocation.parsed_ocsps() if revocation else []
    try:
        vc = validation_context(trust_roots, moment=now, revocation=revocation, other_certs=list(others),
                                signer=cert, distid=distid)
        validator = CertificateValidator(cert, intermediate_certs=list(others), validation_context=vc)
        path = run_coroutine(validator.async_validate_usage(set()))
    except RevokedError as exc:
        reason = getattr(exc, "reason", None)
        return INVALID, ChainStatus(False, "the certificate is revoked"), RevocationStatus(
            "revoked", getattr(exc, "revocation_dt", None), str(getattr(reason, "native", reason) or "") or None)
    except PathBuildingError:
        verdict = INVALID if home is not None and home[0] == "revoked" else INDETERMINATE
        return verdict, ChainStatus(False, "no chain to a trusted root"), _home_revocation(home)
    except (ExpiredError, NotYetValidError) as exc:
        return INDETERMINATE, ChainStatus(False, f"a certificate on the path is expired or not yet valid "
                                                 f"and no timestamp proves the signing time ({_msg(exc)})"), \
            _home_revocation(home)
    except InsufficientRevinfoError as exc:
        return INDETERMINATE, ChainStatus(False, f"revocation information is missing ({_msg(exc)})"), \
            RevocationStatus("unknown")
    except PathValidationError as exc:   # constraints, a bad signature on the path
        return INVALID, ChainStatus(False, f"the chain does not validate ({_msg(exc)})"), RevocationStatus("unknown")
    except Exception as exc:   # certificates the validator cannot process (e.g. undecodable names)
        return INDETERMINATE, ChainStatus(False, f"the chain cannot be validated ({_msg(exc)})"), \
            RevocationStatus("unknown")
    subjects = tuple(reversed([_subject(c) for c in path.iter_certs(include_root=True)]))
    chain = ChainStatus(True, None, subjects)
    if home is not None:
        status, revoked_at, reason = home
        if status == "revoked":
            return INVALID, chain, RevocationStatus("revoked", revoked_at, reason)
        if status == "held":             # a hold may be released: cannot be decided now (as for PDF)
            return INDETERMINATE, chain, RevocationStatus("held", revoked_at, reason)
        return VALID, chain, RevocationStatus("good")
    if covered_by(cert, crls, ocsps):
        return VALID, chain, RevocationStatus("good")
    return INDETERMINATE, chain, RevocationStatus("unknown")


def _home_revocation(home) -> RevocationStatus:
    if home is None:
        return RevocationStatus("unknown")
    status, revoked_at, reason = home
    if status == "issued":
        return RevocationStatus("good")
    return RevocationStatus(status, revoked_at, reason)


def _msg(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "failure_msg", None) or exc).split())[:300]


# --------------------------------------------------------------------------- verify

def verify_ofd(data: bytes | str | os.PathLike[str], *, trust_roots: Sequence[x509.Certificate],
               revocation: RevocationData | None = None, clock: pki.Clock = pki.SYSTEM_CLOCK,
               distid: bytes | None = None, limits: ReadLimits = DEFAULT_LIMITS,
               certificate_status: CertificateStatus | None = None) -> VerificationReport:
    """Verify every seal of an OFD (see the module docstring).  `trust_roots` are the only trusted
    certificates; `revocation` the CRLs/OCSP responses at hand (nothing is fetched);
    `certificate_status` the home's own records of the certificates it issued.  Raises NotAnOfd /
    OfdTooLarge / UnsafeXml / OfdStructureError only when the package itself cannot be read;
    everything about a seal becomes a verdict."""
    distid = DEFAULT_DISTID if distid is None else distid
    roots = [x509.Certificate.load(c) if isinstance(c, (bytes, bytearray)) else c for c in trust_roots]
    now = clock.now()
    with OfdPackage(data, limits=limits) as package:
        body = package.doc_bodies()[0]
        if body.signatures is None or not package.exists(body.signatures):
            return VerificationReport((), 0, False, ("the document carries no seal",), False, verdict=INVALID,
                                      format="ofd")
        pages = {p.id: p.index for p in pages_of(package, body.doc_root)}
        entries = _signature_entries(package, body.signatures)
        if not entries:
            return VerificationReport((), 0, False, ("the document carries no seal",), False, verdict=INVALID,
                                      format="ofd")
        reports = []
        for index, entry in enumerate(entries):
            reports.append(_verify_one(package, body.signatures, entries, index, pages, roots, revocation, now,
                                       distid, limits, certificate_status))
    problems = [f"seal {r.field_name}: " + "; ".join(r.problems) for r in reports if r.verdict != VALID]
    verdict = combine(r.verdict for r in reports)
    changed_after_last = any(not label.startswith("seal ") for label in reports[-1].modified_after)
    notes = tuple(n for r in reports for c in r.checks if c.name == "references" and "later seal" in c.detail
                  for n in [f"seal {r.field_name}: {c.detail}"])
    return VerificationReport(tuple(reports), len(reports), changed_after_last, tuple(problems), verdict == VALID,
                              verdict=verdict, format="ofd", notes=notes)


def _verify_one(package: OfdPackage, signatures_path: str, entries: list[_Entry], index: int,
                pages: dict[str, int], roots, revocation, now: datetime, distid: bytes, limits: ReadLimits,
                certificate_status) -> SignatureReport:
    entry = entries[index]
    s = _Sig()
    later = entries[index + 1:]
    modified_after = [f"seal {e.id} ({posixpath.dirname(e.path)}) added" for e in later]

    def broken(detail: str) -> SignatureReport:
        s.add("structure", INVALID, detail)
        return SignatureReport(
            field_name=entry.id, page=None, signer_subject="", signer_serial=0, signer_certificate=None,  # type: ignore[arg-type]
            algorithm="", digest_algorithm="", signing_time=None, timestamp=None, intact=False,
            signature_valid=False, coverage="UNCLEAR", modification_level="OTHER",
            modified_after=tuple(modified_after), chain=ChainStatus(False, "not checked"),
            revocation=RevocationStatus("unknown"), seal_check=None, problems=tuple(s.problems()), valid=False,
            checks=tuple(s.checks), verdict=INVALID)

    if not entry.path or not package.exists(entry.path):
        return broken(f"Signatures.xml names {entry.path or 'no file'}, which the package lacks")
    try:
        signature_xml = package.read(entry.path)
        root = xmlsafe.parse(signature_xml, entry.path)
        info = xmlsafe.find(root, "SignedInfo")
        value = xmlsafe.find(root, "SignedValue")
        if info is None or value is None or not (value.text or "").strip():
            return broken(f"{entry.path} has no SignedInfo or SignedValue")
        value_path = package.resolve(value.text, entry.path)
        data = parse_signature(package.read(value_path, limit=MAX_SIGNED_VALUE))
    except (OfdError, SesError) as exc:
        return broken(exc.message)
    try:
        signer_key = signer_public_key(data.signer_cert)
    except pki.YinxinError:
        signer_key = None
    try:
        signer_cert = x509.Certificate.load(data.signer_cert)
        serial = signer_cert.serial_number
    except Exception:
        signer_cert, serial = None, 0

    # 1. references
    refs_el = xmlsafe.find(info, "References")
    method = (refs_el.get("CheckMethod") if refs_el is not None else None) or "SM3"
    referenced: set[str] = set()
    bad: list[str] = []
    missing: list[str] = []
    unknown_method = False
    for ref in xmlsafe.findall(refs_el, "Reference") if refs_el is not None else []:
        path = package.resolve(ref.get("FileRef") or "", entry.path)
        referenced.add(path)
        check = xmlsafe.find(ref, "CheckValue")
        try:
            import base64
            expected = base64.b64decode((check.text or "").strip(), validate=False) if check is not None else b""
        except ValueError:
            expected = b""
        if not package.exists(path):
            missing.append(path)
            continue
        digest = _reference_digest(package, path, method, signer_key)
        if digest is None:
            unknown_method = True
            break
        if digest != expected:
            bad.append(path)
    if unknown_method:
        s.add("references", INVALID, f"unknown CheckMethod {method!r}")
    elif not referenced:
        s.add("references", INVALID, "the signature protects no file")
    else:
        tampered = [p for p in bad if p != signatures_path]
        later_changed_list = signatures_path in bad and bool(later)
        if signatures_path in bad and not later:
            tampered.append(signatures_path)
        if tampered or missing:
            detail = "; ".join(filter(None, [
                ("changed after signing: " + ", ".join(tampered)) if tampered else "",
                ("removed after signing: " + ", ".join(missing)) if missing else ""]))
            s.add("references", INVALID, detail)
            modified_after += [f"changed: {p}" for p in tampered] + [f"removed: {p}" for p in missing]
        elif later_changed_list:
            s.add("references", VALID, f"{len(referenced)} files intact ({method}); {signatures_path} changed only "
                                       f"because a later seal ({', '.join(e.id for e in later)}) was added to it")
        else:
            s.add("references", VALID, f"{len(referenced)} files intact ({method})")

    # 2. files added after signing
    own = set(entry.files) | {entry.path, value_path}
    others = set().union(*(e.files for e in entries if e is not entry)) if len(entries) > 1 else set()
    added = [n for n in package.names if n not in referenced and n not in own and n not in others
             and n != signatures_path and n != "OFD.xml"]
    if added:
        s.add("added_files", INVALID, "files added after signing: " + ", ".join(added[:20])
              + (f" and {len(added) - 20} more" if len(added) > 20 else ""))
        modified_after += [f"added: {n}" for n in added]
    else:
        s.add("added_files", VALID, "none" + ("" if "OFD.xml" in referenced else
                                              " (OFD.xml is not protected by this seal)"))

    # 3. dataHash and propertyInfo
    if sm3(signature_xml) == data.data_hash:
        s.add("data_hash", VALID, f"SM3 of {entry.path}")
    else:
        s.add("data_hash", INVALID, f"TBS_Sign.dataHash is not the SM3 of {entry.path} (it was changed)")
    if data.property_info.strip().lstrip("/") == entry.path:
        s.add("property_info", VALID, data.property_info)
    else:
        s.add("property_info", INVALID, f"propertyInfo {data.property_info!r} is not {entry.path}")

    # 4. the signer's signature
    signature_ok = False
    try:
        verify_signer(data, distid=distid)
        signature_ok = True
        s.add("signature", VALID, "SM2 with SM3 over TBS_Sign" if data.signature_alg_oid.endswith("1.501")
              else f"{data.signature_alg_oid} over TBS_Sign")
    except pki.UnknownAlgorithm as exc:
        s.add("signature", INVALID, exc.message)
    except pki.YinxinError as exc:
        s.add("signature", INVALID, exc.message)

    # 5. Seal.esl
    seal_loc = xmlsafe.find(info, "Seal", "BaseLoc")
    if seal_loc is None or not (seal_loc.text or "").strip():
        s.add("seal_file", SKIPPED, "no Seal.esl (the seal is inside the signature)")
    else:
        seal_path = package.resolve(seal_loc.text, entry.path)
        try:
            same = package.read(seal_path, limit=MAX_SIGNED_VALUE) == data.seal_der
            s.add("seal_file", VALID if same else INVALID,
                  f"{seal_path} is the SES_Seal in TBS_Sign" if same else f"{seal_path} differs from the SES_Seal in TBS_Sign")
        except OfdError as exc:
            s.add("seal_file", INVALID, exc.message)

    # 6. the maker's signature
    maker_subject = ""
    try:
        maker_key = signer_public_key(data.seal.maker_cert)
        verify_seal(data.seal_der, maker_key, distid=distid)
        try:
            maker_subject = _subject(x509.Certificate.load(data.seal.maker_cert))
        except Exception:
            maker_subject = ""
        rule = "SES_SealInfo (GB/T 38540)" if data.seal.version == 4 else "SEQUENCE{info, cert, alg} (GM/T 0031)"
        s.add("seal_maker", VALID, f"by {maker_subject} over {rule}")
    except pki.YinxinError as exc:
        s.add("seal_maker", INVALID, exc.message)

    # 7. certList
    if data.seal.lists_certificate(data.signer_cert):
        s.add("cert_in_seal", VALID, "the signer's certificate is in the seal's certList"
              + (" (by digest)" if data.seal.cert_digests else ""))
    else:
        s.add("cert_in_seal", INVALID, "the signer's certificate is not in the seal's certList")

    # 10. timestamp (before the validity window: its time is the proven signing time)
    ts_verdict, ts_detail, ts_time, tsa_cert = _check_timestamp(data)
    if ts_verdict == VALID and tsa_cert is not None:
        tsa_verdict, tsa_chain, _ = _chain(tsa_cert, roots, revocation, now, distid, [], certificate_status)
        if not tsa_chain.trusted:
            ts_verdict, ts_time = INDETERMINATE, None
            ts_detail += f"; the TSA's certificate is not trusted ({tsa_chain.reason}): its time is not used"
        elif tsa_verdict == INVALID:
            ts_verdict, ts_time = INVALID, None
            ts_detail += f"; the TSA's certificate: {tsa_chain.reason or 'revoked'}"
    # 8. chains and revocation
    extra = []
    try:
        extra.append(x509.Certificate.load(data.seal.maker_cert))
    except Exception:
        pass
    if signature_ok:
        chain_verdict, chain, revocation_status = _chain(data.signer_cert, roots, revocation, now, distid, extra,
                                                         certificate_status)
        s.add("chain", chain_verdict, "to " + chain.path[-1] if chain.trusted and chain.path else (chain.reason or ""))
        rev_verdict = INVALID if revocation_status.status == "revoked" else (
            VALID if revocation_status.status == "good" else INDETERMINATE)     # held: may be released
        if rev_verdict == INDETERMINATE and not chain.trusted and revocation_status.status != "held":
            s.add("revocation", SKIPPED, "not decided: no trusted chain")
        else:
            s.add("revocation", rev_verdict, revocation_status.status + (
                f" since {revocation_status.revoked_at:%Y-%m-%d %H:%M}" if revocation_status.revoked_at else "")
                + ("" if rev_verdict != INDETERMINATE else ": no revocation information for the signer's "
                   "certificate"))
        maker_verdict, maker_chain, maker_rev = _chain(data.seal.maker_cert, roots, revocation, now, distid, [],
                                                       certificate_status)
        if maker_verdict == INDETERMINATE and maker_chain.trusted and maker_rev.status == "unknown":
            maker_verdict = VALID        # a root or CA publishing no status about itself
        s.add("maker_chain", maker_verdict, "to " + maker_chain.path[-1] if maker_chain.trusted and maker_chain.path
              else (maker_chain.reason or ""))
    else:
        chain, revocation_status = ChainStatus(False, "not checked: the signature itself fails"), RevocationStatus("unknown")
        s.add("chain", SKIPPED, chain.reason or "")

    # 9. the seal's validity window
    at = ts_time or data.time_info
    if at is None:
        s.add("seal_validity", INVALID, f"the signing time {data.time_text!r} is not a time")
    elif data.seal.valid_start <= at <= data.seal.valid_end:
        s.add("seal_validity", VALID, f"signed {at:%Y-%m-%d %H:%M:%S} UTC within {data.seal.valid_start:%Y-%m-%d} – "
                                      f"{data.seal.valid_end:%Y-%m-%d}")
    else:
        s.add("seal_validity", INVALID, f"the seal was not valid at the signing time {at:%Y-%m-%d %H:%M} "
                                        f"(valid {data.seal.valid_start:%Y-%m-%d} to {data.seal.valid_end:%Y-%m-%d})")
    s.add("timestamp", ts_verdict, ts_detail)

    # 11. the picture
    pic_verdict, pic_detail = _check_picture(data, limits)
    s.add("picture", pic_verdict, pic_detail)

    verdict = combine(c.verdict for c in s.checks)
    page = None
    stamp = xmlsafe.find(info, "StampAnnot")
    if stamp is not None and stamp.get("PageRef") in pages:
        page = pages[stamp.get("PageRef")] + 1
    intact = all(c.verdict != INVALID for c in s.checks if c.name in ("references", "added_files", "data_hash",
                                                                        "property_info", "seal_file"))
    level = "NONE" if not modified_after else ("FORM_FILLING" if all(m.startswith("seal ") for m in modified_after)
                                                else "OTHER")
    return SignatureReport(
        field_name=entry.id, page=page, signer_subject=_subject(signer_cert), signer_serial=serial,
        signer_certificate=signer_cert,  # type: ignore[arg-type]
        algorithm="sm3_sm2" if data.signature_alg_oid == "1.2.156.10197.1.501" else data.signature_alg_oid,
        digest_algorithm="sm3", signing_time=data.time_info, timestamp=ts_time, intact=intact,
        signature_valid=signature_ok, coverage="ENTIRE_FILE" if intact and not modified_after else "REFERENCES",
        modification_level=level, modified_after=tuple(modified_after), chain=chain,
        revocation=revocation_status, seal_check=None, problems=tuple(s.problems()), valid=verdict == VALID,
        checks=tuple(s.checks), verdict=verdict)

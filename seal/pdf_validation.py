"""Plugging SM2 into pyHanko's validation, and the revocation data callers supply.

pyhanko-certvalidator checks every signature it meets — the CMS signature
over a PDF, each certificate on a path, each CRL and OCSP response — through
one `SignatureValidator`.  `SM2SignatureValidator` (from `pki.certpath`, where
the timestamp authority's token checks use it too) verifies SM2-with-SM3 with
yinxin's own SM2 code and hands every other algorithm to pyHanko's default,
so an SM2 chain and an RSA chain are validated by the same code path.

`RevocationData` carries CRLs and OCSP responses (DER) the caller has; yinxin
never fetches anything over the network while validating.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import pki
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp, x509
from pki.certpath import SM2SignatureValidator
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import (REQUIRE_REVINFO, CertRevTrustPolicy,
                                               RevocationCheckingPolicy, RevocationCheckingRule)

from . import cms_signer  # noqa: F401  (checks the SM2/SM3 seams at import)

__all__ = ["SM2SignatureValidator", "RevocationData", "RevocationMode", "validation_context",
           "covered_by", "crl_covers", "ocsp_covers", "declares_ocsp"]

RevocationMode = Literal["available", "require"]


def _der(item: bytes | object, kind) -> object:
    if isinstance(item, (bytes, bytearray)):
        try:
            parsed = kind.load(bytes(item))
            parsed.native  # noqa: B018 - force a full parse so junk fails here
            return parsed
        except (ValueError, TypeError) as exc:
            raise pki.CertificateError(f"not a DER {kind.__name__}: {exc}") from None
    if not isinstance(item, kind):
        raise TypeError(f"expected DER bytes or {kind.__name__}, not {type(item).__name__}")
    return item


@dataclass(frozen=True)
class RevocationData:
    """Revocation information the caller supplies: CRLs and OCSP responses, DER.

    `mode` says how missing information counts:

    * "available" (default): information that exists for a certificate — from
      the caller or embedded in the document — is always checked (a CRL that
      lists the signer makes the seal invalid, whatever the certificate
      declares); a certificate nobody has information about passes with
      revocation status "unknown".
    * "require": every certificate on the path except the trust anchor must
      be covered by valid, fresh information, or the chain fails.

    (pyhanko-certvalidator's own "soft-fail"/"hard-fail" modes ignore even a
    supplied CRL when the certificate names no distribution point; yinxin's
    policy does not.)
    """

    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()
    mode: RevocationMode = "available"

    def __post_init__(self) -> None:
        object.__setattr__(self, "crls", tuple(self.crls))
        object.__setattr__(self, "ocsps", tuple(self.ocsps))
        if self.mode not in ("available", "require"):
            raise ValueError(f"revocation mode must be 'available' or 'require', not {self.mode!r}")
        for c in self.crls:
            _der(c, asn1_crl.CertificateList)
        for o in self.ocsps:
            _der(o, ocsp.OCSPResponse)

    def parsed_crls(self) -> list[asn1_crl.CertificateList]:
        return [_der(c, asn1_crl.CertificateList) for c in self.crls]  # type: ignore[misc]

    def parsed_ocsps(self) -> list[ocsp.OCSPResponse]:
        return [_der(o, ocsp.OCSPResponse) for o in self.ocsps]  # type: ignore[misc]


def declares_ocsp(cert: x509.Certificate) -> bool:
    """Does the certificate name an OCSP responder (AIA)?  pyhanko-certvalidator
    consults OCSP responses only for certificates that do."""
    aia = cert.authority_information_access_value
    return aia is not None and any(e["access_method"].native == "ocsp" for e in aia)


def crl_covers(cert: x509.Certificate, crls: Iterable[asn1_crl.CertificateList]) -> bool:
    """Is there a CRL from the certificate's issuer?"""
    return any(c.issuer == cert.issuer for c in crls)


def ocsp_covers(cert: x509.Certificate, ocsps: Iterable[ocsp.OCSPResponse]) -> bool:
    """Is there an OCSP response about this certificate's serial from its issuer?"""
    for o in ocsps:
        try:
            basic = o.basic_ocsp_response
            responses = basic["tbs_response_data"]["responses"] if basic is not None else ()
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        for single in responses:
            cert_id = single["cert_id"]
            if cert_id["serial_number"].native != cert.serial_number:
                continue
            if cert_id["hash_algorithm"]["algorithm"].native != "sha1" or \
                    cert_id["issuer_name_hash"].native == cert.issuer.sha1:
                return True
    return False


def covered_by(cert: x509.Certificate, crls: Iterable[asn1_crl.CertificateList],
               ocsps: Iterable[ocsp.OCSPResponse]) -> bool:
    """Is there revocation information about `cert` that path validation will use?"""
    return crl_covers(cert, crls) or (declares_ocsp(cert) and ocsp_covers(cert, ocsps))


def validation_context(trust_roots: Sequence[x509.Certificate], *, moment: datetime,
                       revocation: RevocationData | None = None,
                       other_certs: Iterable[x509.Certificate] = (),
                       extra_crls: Iterable[asn1_crl.CertificateList] = (),
                       extra_ocsps: Iterable[ocsp.OCSPResponse] = (),
                       signer: x509.Certificate | None = None,
                       distid: bytes | None = None, mode: str | None = None) -> ValidationContext:
    """A pyHanko validation context that trusts exactly `trust_roots` (never the
    system's list), validates at `moment`, fetches nothing, and checks SM2.

    Revocation (see `RevocationData`; `mode` overrides its mode, and ``"none"`` checks none —
    for the newest proof judged "now", whose revocation data no file can hold): when information about
    `signer` is at hand, checking it is mandatory for the end-entity certificate; CA
    certificates are checked when they declare where their status is published.  Revocation
    data issued after `moment` counts (retroactively: a CRL published later still tells
    whether the certificate was revoked *at* `moment`; a revocation dated after `moment`
    does not make it revoked then).  (An OCSP response about a certificate that names no
    responder is not seen by path validation; `seal.pdf_verify` checks it separately.)
    """
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    roots = [_der(c, x509.Certificate) for c in trust_roots]
    crls = [*(revocation.parsed_crls() if revocation else ()), *extra_crls]
    ocsps = [*(revocation.parsed_ocsps() if revocation else ()), *extra_ocsps]
    mode = mode or (revocation.mode if revocation is not None else "available")
    if mode == "require":
        policy = REQUIRE_REVINFO
    elif mode == "none":
        policy = RevocationCheckingPolicy(RevocationCheckingRule.NO_CHECK, RevocationCheckingRule.NO_CHECK)
    else:
        ee_rule = (RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
                   if signer is not None and covered_by(signer, crls, ocsps)
                   else RevocationCheckingRule.CHECK_IF_DECLARED_SOFT)
        policy = RevocationCheckingPolicy(ee_rule, RevocationCheckingRule.CHECK_IF_DECLARED_SOFT)
    return ValidationContext(
        trust_roots=roots, other_certs=list(other_certs), moment=moment,
        allow_fetching=False, crls=crls, ocsps=ocsps,
        revinfo_policy=CertRevTrustPolicy(policy, retroactive_revinfo=True),
        signature_validator=SM2SignatureValidator(distid),
    )

"""Certificate paths through pyhanko-certvalidator, SM2 included.

pyhanko-certvalidator checks every signature it meets — certificates on a path, CRLs,
OCSP responses, and the CMS signatures pyHanko hands it — through one
`SignatureValidator`.  `SM2SignatureValidator` verifies SM2-with-SM3 (e = SM3(Z ‖ M),
Z from the signer's key and the distinguishing ID) with yinxin's SM2 code and passes
every other algorithm to the library's default, so SM2 and RSA paths take the same road.

`validate_path` is the small entry point `pki.tsa` uses for a TSA certificate:
trust exactly the given roots, fetch nothing, validate at a given moment.
"""
from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl as asn1_crl
from asn1crypto import keys, ocsp
from asn1crypto import x509 as asn1_x509
from asn1crypto.algos import SignedDigestAlgorithm
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from pyhanko_certvalidator.errors import AlgorithmNotSupported
from pyhanko_certvalidator.sig_validate import (DEFAULT_VALIDATION_CONTEXT, DefaultSignatureValidator,
                                                SignatureValidationContext, SignatureValidator)

from .algorithms import public_key_from_spki
from .errors import InvalidSignature, YinxinError
from .sm2 import DEFAULT_DISTID

__all__ = ["SM2SignatureValidator", "PathResult", "validate_path"]


class SM2SignatureValidator(SignatureValidator):
    """SM2-with-SM3 here, everything else through pyhanko-certvalidator's default.

    `distid` is the distinguishing ID the signers used (GM/T 0009's ``1234567812345678``
    unless the CA says otherwise); it applies to the certificates, CRLs, OCSP responses
    and CMS signatures alike."""

    def __init__(self, distid: bytes | None = None, fallback: SignatureValidator | None = None) -> None:
        self.distid = DEFAULT_DISTID if distid is None else distid
        self._fallback = fallback or DefaultSignatureValidator()

    def validate_signature(self, signature: bytes, signed_data: bytes, public_key_info: keys.PublicKeyInfo,
                           signature_algorithm: SignedDigestAlgorithm,
                           context: SignatureValidationContext = DEFAULT_VALIDATION_CONTEXT) -> None:
        try:
            mechanism = signature_algorithm.signature_algo
        except ValueError:
            mechanism = signature_algorithm["algorithm"].native
        if mechanism != "sm2":
            self._fallback.validate_signature(signature, signed_data, public_key_info, signature_algorithm, context)
            return
        if context.prehashed:
            # SM2 signs SM3(Z ‖ M): a bare digest of M cannot be checked.
            raise AlgorithmNotSupported("SM2 signatures need the signed data, not a digest")
        try:
            public = public_key_from_spki(public_key_info)
        except YinxinError as exc:
            raise CryptoInvalidSignature(f"unusable SM2 public key: {exc}") from None
        if public.algorithm != "sm2":
            raise CryptoInvalidSignature(f"SM2 signature but a {public.algorithm} key")
        try:
            public.verify(signature, signed_data, distid=self.distid)
        except InvalidSignature:
            raise CryptoInvalidSignature("SM2 signature does not verify") from None
        except ValueError:  # malformed DER (r, s)
            raise CryptoInvalidSignature("SM2 signature is malformed") from None


@dataclass(frozen=True)
class PathResult:
    """A path check: `ok`, or why not, and whether the reason is one more data could change
    (`indeterminate`: no path to a trusted root, expired or not yet valid at the moment,
    revocation data missing — seal.verdicts' meaning)."""

    ok: bool
    path: tuple[str, ...] = ()              # subjects, leaf first
    reason: str | None = None
    indeterminate: bool = False
    revoked_at: datetime | None = None


def validate_path(cert: asn1_x509.Certificate, *, trust_roots: Sequence[asn1_x509.Certificate],
                  intermediates: Sequence[asn1_x509.Certificate] = (), moment: datetime,
                  crls: Sequence[asn1_crl.CertificateList] = (), ocsps: Sequence[ocsp.OCSPResponse] = (),
                  require_revocation: bool = False, extended_key_usage: set[str] | None = None,
                  key_usage: set[str] | None = None, distid: bytes | None = None) -> PathResult:
    """Validate `cert` to one of `trust_roots` at `moment`, fetching nothing.  Revocation data
    (`crls`, `ocsps`) is used when given (a revocation dated after `moment` does not count);
    with `require_revocation`, every certificate but the root must be covered."""
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import (ExpiredError, InsufficientRevinfoError, NotYetValidError,
                                              PathBuildingError, PathValidationError, RevokedError)
    from pyhanko_certvalidator.policy_decl import (REQUIRE_REVINFO, CertRevTrustPolicy,
                                                   RevocationCheckingPolicy, RevocationCheckingRule)
    if moment.tzinfo is None:
        raise ValueError("moment must be timezone-aware")
    if require_revocation:
        policy = REQUIRE_REVINFO
    else:
        soft = RevocationCheckingRule.CHECK_IF_DECLARED_SOFT
        policy = RevocationCheckingPolicy(soft, soft)
    context = ValidationContext(
        trust_roots=list(trust_roots), other_certs=list(intermediates), moment=moment, allow_fetching=False,
        crls=list(crls), ocsps=list(ocsps), revinfo_policy=CertRevTrustPolicy(policy, retroactive_revinfo=True),
        signature_validator=SM2SignatureValidator(distid))
    validator = CertificateValidator(cert, intermediate_certs=list(intermediates), validation_context=context)
    try:
        path = asyncio.run(validator.async_validate_usage(key_usage or set(), extended_key_usage or set(),
                                                          extended_optional=False))
    except RevokedError as exc:
        return PathResult(False, reason=_one_line(exc), revoked_at=getattr(exc, "revocation_dt", None))
    except (ExpiredError, NotYetValidError, InsufficientRevinfoError) as exc:
        return PathResult(False, reason=_one_line(exc), indeterminate=True)
    except PathBuildingError as exc:      # no path to a trusted root: more trust could change it
        return PathResult(False, reason=_one_line(exc), indeterminate=True)
    except PathValidationError as exc:
        return PathResult(False, reason=_one_line(exc))
    except Exception as exc:   # key usage and other refusals of the library
        return PathResult(False, reason=_one_line(exc))
    subjects = tuple(c.subject.human_friendly for c in path.iter_certs(include_root=True))
    return PathResult(True, tuple(reversed(subjects)))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "failure_msg", None) or exc).split())

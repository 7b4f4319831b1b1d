"""Reading and checking RFC 3161 TimeStampTokens (ours and anyone's).

`parse_token` reads a token (or a granted TimeStampResp) into a `TimestampToken`;
`verify_token` judges it against the data it should date and the roots the caller
trusts, and says `valid`, `invalid` or `indeterminate`:

* invalid — the bytes do not hold together: the imprint is not the data's hash, the
  messageDigest is not the TSTInfo's, the signature does not verify, the
  ESSCertID(v2) names another certificate, the signer is not a TSA (extendedKeyUsage
  timeStamping only, critical: RFC 3161 §2.3), or the TSA certificate was revoked
  before the moment of validation;
* indeterminate — the token holds together but cannot be relied on at that moment:
  its chain reaches no trusted root, its certificate had expired (or was not yet
  valid) then, or revocation data that was required is missing (as in seal.verdicts);
* valid — otherwise.

The moment is `at` (default: the clock's now) — a token is judged now unless the
caller has proof that it existed earlier (a later archive timestamp, say).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Sequence

from asn1crypto import algos, cms, core, tsp
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import InvalidSignature, YinxinError
from ..x509 import certificate_public_key, verify_signed_data
from . import asn1  # noqa: F401  (RFC 3161: a rejection has no token)
from .errors import MalformedToken, TimestampUnavailable
from .protocol import HASHES, hash_data

__all__ = ["TimestampToken", "TokenVerification", "parse_token", "verify_token", "token_from_response",
           "is_tsa_certificate"]

VERDICTS = ("valid", "invalid", "indeterminate")


@dataclass(frozen=True)
class TimestampToken:
    """What a TimeStampToken states."""

    der: bytes = field(repr=False)
    serial: int
    gen_time: datetime
    policy: str
    hash_algorithm: str                      # of the imprint: sha256, sha384, sha512, sm3
    imprint: bytes
    nonce: int | None
    accuracy_ms: int | None
    tsa_name: str | None
    digest_algorithm: str                    # of the SignerInfo
    signature_algorithm: str
    certificates: tuple[asn1_x509.Certificate, ...] = field(repr=False, compare=False)
    signer_certificate: asn1_x509.Certificate | None = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"serial": f"{self.serial:X}", "gen_time": self.gen_time.isoformat(), "policy": self.policy,
                "hash_algorithm": self.hash_algorithm, "imprint": self.imprint.hex(),
                "nonce": f"{self.nonce:x}" if self.nonce is not None else None, "accuracy_ms": self.accuracy_ms,
                "tsa_name": self.tsa_name, "signature_algorithm": self.signature_algorithm,
                "signer": self.signer_certificate.subject.human_friendly if self.signer_certificate else None}


@dataclass(frozen=True)
class TokenVerification:
    token: TimestampToken
    verdict: str                             # valid | invalid | indeterminate
    problems: tuple[str, ...]
    moment: datetime                         # when the TSA certificate was judged
    path: tuple[str, ...] = ()               # subjects, TSA first, when trusted

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict is one of {VERDICTS}")

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    @property
    def gen_time(self) -> datetime:
        return self.token.gen_time

    def to_dict(self) -> dict[str, Any]:
        return {**self.token.to_dict(), "verdict": self.verdict, "valid": self.valid, "problems": list(self.problems),
                "judged_at": self.moment.isoformat(), "path": list(self.path)}


def token_from_response(der: bytes) -> bytes:
    """The TimeStampToken of a granted TimeStampResp; `TimestampUnavailable` for a refusal."""
    try:
        resp = tsp.TimeStampResp.load(bytes(der), strict=True)
        status = resp["status"]["status"].native
        texts = resp["status"]["status_string"].native or []
        fail = resp["status"]["fail_info"].native
    except (ValueError, TypeError, KeyError):
        raise MalformedToken("not a DER TimeStampResp") from None
    if status not in ("granted", "granted_with_mods"):
        from .errors import FAILURE_NAMES
        names = ", ".join(FAILURE_NAMES.get(f, f) for f in sorted(fail or ()))
        raise TimestampUnavailable(f"the TSA refused: {status}" + (f" ({names})" if names else "")
                                   + (f": {'; '.join(texts)}" if texts else ""), status=status,
                                   failure=names or None)
    token = resp["time_stamp_token"]
    if token.native is None:
        raise MalformedToken("a granted TimeStampResp without a token")
    return token.dump()


def _content_info(der: bytes) -> cms.ContentInfo:
    try:
        info = cms.ContentInfo.load(bytes(der), strict=True)
        if info["content_type"].native != "signed_data":
            raise MalformedToken("a TimeStampToken is CMS SignedData")
        info.native  # noqa: B018 - parse everything now, so junk fails here
        return info
    except MalformedToken:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedToken(f"not a DER TimeStampToken: {exc}") from None


def _sid_matches(sid: cms.SignerIdentifier, cert: asn1_x509.Certificate) -> bool:
    chosen = sid.chosen
    if isinstance(chosen, cms.IssuerAndSerialNumber):
        return chosen["issuer"] == cert.issuer and chosen["serial_number"].native == cert.serial_number
    return cert.key_identifier is not None and chosen.native == cert.key_identifier


def parse_token(der: bytes, *, certificates: Sequence[asn1_x509.Certificate] = ()) -> TimestampToken:
    """A TimeStampToken (DER ContentInfo) — or a granted TimeStampResp — as a value object.
    `certificates` are looked at for the signer when the token carries none."""
    data = bytes(der)
    try:
        probe = core.Sequence.load(data)
        if len(probe) == 2 and isinstance(probe[0], core.Sequence):   # TimeStampResp { status, token }
            data = token_from_response(data)
    except ValueError:
        raise MalformedToken("not DER") from None
    info = _content_info(data)
    signed = info["content"]
    encap = signed["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        raise MalformedToken("the SignedData does not encapsulate a TSTInfo")
    if len(signed["signer_infos"]) != 1:
        raise MalformedToken(f"a token has one signer, not {len(signed['signer_infos'])}")
    try:
        tst = tsp.TSTInfo.load(encap["content"].contents, strict=True)
        native = tst.native
        hash_oid = tst["message_imprint"]["hash_algorithm"]["algorithm"].dotted
    except (ValueError, TypeError, KeyError) as exc:
        raise MalformedToken(f"the TSTInfo is malformed: {exc}") from None
    if native["version"] != "v1":
        raise MalformedToken(f"TSTInfo version {native['version']} (only 1)")
    signer_info = signed["signer_infos"][0]
    certs = tuple(c.chosen for c in (signed["certificates"] or ()) if isinstance(c.chosen, asn1_x509.Certificate))
    signer = next((c for c in (*certs, *certificates) if _sid_matches(signer_info["sid"], c)), None)
    accuracy = native["accuracy"]
    accuracy_ms = None
    if accuracy is not None:
        accuracy_ms = (accuracy["seconds"] or 0) * 1000 + (accuracy["millis"] or 0) + (accuracy["micros"] or 0) // 1000
    tsa = tst["tsa"]
    return TimestampToken(
        der=data, serial=native["serial_number"], gen_time=native["gen_time"], policy=tst["policy"].dotted,
        hash_algorithm=algos.DigestAlgorithmId._map.get(hash_oid, hash_oid),
        imprint=native["message_imprint"]["hashed_message"], nonce=native["nonce"], accuracy_ms=accuracy_ms,
        tsa_name=tsa.chosen.human_friendly if tsa.native is not None and tsa.name == "directory_name" else
        (str(tsa.native) if tsa.native is not None else None),
        digest_algorithm=signer_info["digest_algorithm"]["algorithm"].native,
        signature_algorithm=signer_info["signature_algorithm"]["algorithm"].native,
        certificates=certs, signer_certificate=signer)


def is_tsa_certificate(cert: asn1_x509.Certificate) -> str | None:
    """None for a TSA certificate (extendedKeyUsage timeStamping only, critical), else why not."""
    for ext in cert["tbs_certificate"]["extensions"]:
        if ext["extn_id"].native == "extended_key_usage":
            usages = ext["extn_value"].parsed.native
            if usages != ["time_stamping"]:
                return f"its extended key usage is {', '.join(usages)}, not timeStamping alone"
            if not ext["critical"].native:
                return "its extended key usage timeStamping is not critical"
            return None
    return "it has no extended key usage timeStamping"


def _signature_algorithm(signer_info: cms.SignerInfo) -> algos.SignedDigestAlgorithm:
    """The SignerInfo's algorithm, with a bare rsaEncryption/ecdsa (as OpenSSL writes) combined
    with the digest algorithm."""
    algorithm = signer_info["signature_algorithm"]
    name = algorithm["algorithm"].native
    digest = signer_info["digest_algorithm"]["algorithm"].native
    if name in ("rsassa_pkcs1v15", "rsa"):
        return algos.SignedDigestAlgorithm({"algorithm": f"{digest}_rsa"})
    if name == "ecdsa":
        return algos.SignedDigestAlgorithm({"algorithm": f"{digest}_ecdsa"})
    return algos.SignedDigestAlgorithm.load(algorithm.dump())


def _attribute(attrs: cms.CMSAttributes, name: str) -> Any:
    for attr in attrs:
        if attr["type"].native == name:
            values = attr["values"]
            if len(values) != 1:
                raise MalformedToken(f"the {name} attribute has {len(values)} values")
            return values[0]
    return None


def _integrity_problems(token: TimestampToken, signer: asn1_x509.Certificate, distid: bytes | None) -> list[str]:
    info = cms.ContentInfo.load(token.der)
    signed = info["content"]
    signer_info = signed["signer_infos"][0]
    problems: list[str] = []
    attrs = signer_info["signed_attrs"]
    if not attrs.native:
        return ["the token has no signed attributes"]
    content_type = _attribute(attrs, "content_type")
    if content_type is None or content_type.native != "tst_info":
        problems.append("the signed contentType is not id-ct-TSTInfo")
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    message_digest = _attribute(attrs, "message_digest")
    if digest_name not in HASHES:
        problems.append(f"unsupported digest algorithm {digest_name}")
    elif message_digest is None or message_digest.native != hash_data(digest_name,
                                                                      signed["encap_content_info"]["content"].contents):
        problems.append("the messageDigest is not the hash of the TSTInfo (the token was altered)")
    v2 = _attribute(attrs, "signing_certificate_v2")
    v1 = _attribute(attrs, "signing_certificate")
    if v2 is not None:
        first = v2["certs"][0]
        hash_name = first["hash_algorithm"]["algorithm"].native
        if hash_name not in HASHES or first["cert_hash"].native != hash_data(hash_name, signer.dump()):
            problems.append("the ESSCertIDv2 names another certificate than the signer's")
    elif v1 is not None:
        import hashlib
        if v1["certs"][0]["cert_hash"].native != hashlib.sha1(signer.dump()).digest():
            problems.append("the ESSCertID names another certificate than the signer's")
    else:
        problems.append("the token has no signingCertificate(V2) attribute (RFC 3161 §2.4.2)")
    signed_der = b"\x31" + attrs.dump()[1:]
    try:
        public = certificate_public_key(signer)
        verify_signed_data(public, _signature_algorithm(signer_info), signer_info["signature"].native, signed_der,
                           distid=distid if public.algorithm == "sm2" else None)
    except (InvalidSignature, ValueError, YinxinError):
        problems.append("the TSA's signature does not verify")
    return problems


def verify_token(token: bytes | TimestampToken, data: bytes | None = None, trust: Sequence[asn1_x509.Certificate] = (),
                 *, digest: bytes | None = None, certificates: Sequence[asn1_x509.Certificate] = (),
                 at: datetime | None = None, clock: Clock = SYSTEM_CLOCK,
                 crls: Sequence[asn1_crl.CertificateList] = (), ocsps: Sequence[asn1_ocsp.OCSPResponse] = (),
                 require_revocation: bool = False, distid: bytes | None = None,
                 nonce: int | None = None) -> TokenVerification:
    """Judge a token: does it date `data` (or its `digest`, in the token's hash algorithm), is it
    signed by a TSA certificate that chains to one of `trust` at `at` (default: now)?

    `certificates` are extra certificates (the TSA's, its CA's) the token may not carry; `crls`
    and `ocsps` are revocation data to use (`require_revocation`: without it the verdict is
    indeterminate); `distid` is an SM2 TSA's distinguishing ID (default 1234567812345678);
    `nonce`, when given, must be echoed.  Raises `MalformedToken` for bytes that are no token."""
    from ..certpath import validate_path
    parsed = token if isinstance(token, TimestampToken) else parse_token(token, certificates=certificates)
    moment = at or clock.now()
    problems: list[str] = []
    if data is not None and digest is not None:
        raise ValueError("give the data or its digest, not both")
    if data is not None or digest is not None:
        if parsed.hash_algorithm not in HASHES:
            problems.append(f"the imprint's hash algorithm {parsed.hash_algorithm} is not supported")
        else:
            expected = hash_data(parsed.hash_algorithm, data) if data is not None else digest
            if expected != parsed.imprint:
                problems.append("the token dates other data: its imprint is not the hash of the data")
    if nonce is not None and parsed.nonce != nonce:
        problems.append("the token does not echo the nonce of the request")
    signer = parsed.signer_certificate
    if signer is None:
        problems.append("the TSA certificate is neither in the token nor given")
        return TokenVerification(parsed, "invalid", tuple(problems), moment)
    problems += _integrity_problems(parsed, signer, distid)
    not_tsa = is_tsa_certificate(signer)
    if not_tsa:
        problems.append(f"the token is signed by {signer.subject.human_friendly}, which is not a TSA: {not_tsa}")
    if problems:
        return TokenVerification(parsed, "invalid", tuple(problems), moment)
    result = validate_path(signer, trust_roots=list(trust), intermediates=[*parsed.certificates, *certificates],
                           moment=moment, crls=crls, ocsps=ocsps, require_revocation=require_revocation,
                           extended_key_usage={"time_stamping"}, distid=distid)
    if not result.ok:
        verdict = "indeterminate" if result.indeterminate else "invalid"
        return TokenVerification(parsed, verdict, (f"the TSA certificate: {result.reason}",), moment)
    return TokenVerification(parsed, "valid", (), moment, result.path)

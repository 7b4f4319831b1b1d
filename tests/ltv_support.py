"""A home for the long-term-validation tests: per algorithm a root CA (20 years), a published CRL,
a seal (certificate of 3 years) and a TSA (11 years), built through the library with a FixedClock
at the real time (OpenSSL judges validity against the system clock).

* `LtvWorld.stamp(alg, …)`    — seal the sample document (B-B, B-T, B-LT or B-LTA)
* `signature_token(pdf)`        — the signature timestamp token in the last signature's CMS
* `doc_timestamp_tokens(pdf)`   — the document timestamps' tokens (pyHanko's reader)
* `pyhanko_lta(pdf, roots, at, crls)` — pyHanko's own PAdES-LTA validation (ades_lta_validation)
"""
from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader

import docflow.store  # noqa: F401  (the home's schema is the CLI's)
import seal.store  # noqa: F401
from ca_helpers import wall_clock
from pki.accounts.actor import Actor
from pki.accounts.testing import actor_for_tests
from pki.ca import CertificateAuthority
from pki.clock import FixedClock
from pki.home import Home
from pki.status import generate_crl
from pki.tsa import LocalTimestamper, TimestampAuthority
from pki.x509 import certificate_to_pem
from seal.pdf_placement import AnchorText
from seal.records import SealRegistry
from seal.service import SealService
from seal_support import CAST, ORG, SEAL_INITIAL, SEAL_PASSWORD, document_pdf

CA_PASSWORD = b"Ca-Password-2026!"
TSA_PASSWORD = b"Tsa-Password-2026!"
ALGORITHMS = {"rsa": "rsa2048", "ec": "ecdsa-p256", "sm2": "sm2"}
MODES = ("bb", "bt", "blt", "blta")


@dataclass
class LtvWorld:
    dir: Path
    clock: FixedClock
    home: Home = field(init=False)

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.home = Home.open(self.dir / "home", clock=self.clock)
        self.ca = CertificateAuthority(self.home)
        self.tsa = TimestampAuthority(self.home)
        self.registry = SealRegistry(self.home)
        self.service = SealService(self.home)
        self.doc = self.dir / "doc.pdf"
        self.doc.write_bytes(document_pdf())
        for name, algorithm in ALGORITHMS.items():
            info = self.ca.init_ca(name=name, subject=f"/C=CN/O=长期验证测试/CN={name} root", algorithm=algorithm,
                                   password=CA_PASSWORD, days=7300, actor=self.actor("ca-op"),
                                   base_url="http://pki.yinxin.test")
            self.publish_crl(name)
            self.tsa.init(f"{name}-tsa", ca=name, ca_password=CA_PASSWORD, password=TSA_PASSWORD,
                          actor=self.actor("ca-op"), approver=self.actor("boss"))
            self.actor("wang")
            self.registry.create(name=f"{name}-seal", organisation=ORG, seal_type="official", custodian="wang",
                                 ca=name, password=SEAL_INITIAL, ca_password=CA_PASSWORD, actor=self.actor("admin"),
                                 approver=self.actor("boss"))
            self.registry.change_password(f"{name}-seal", SEAL_INITIAL, SEAL_PASSWORD, actor=self.actor("wang"))
            self.root_pem(name).write_bytes(certificate_to_pem(info.certificate))

    def actor(self, name: str) -> Actor:
        """An actor of the seal tests' cast (tests/seal_support.py: CAST), "ca-op" a CA operator;
        anyone else ("archivist") has no role."""
        return actor_for_tests(self.home, name, roles=("ca_operator",) if name == "ca-op" else CAST.get(name, ()))

    def publish_crl(self, name: str) -> list[bytes]:
        """A full CRL and its delta (the full CRL names its deltas as the freshest CRL)."""
        info = self.ca.get(name)
        key = self.ca.load_key(info, CA_PASSWORD)
        op = self.actor("ca-op")
        return [generate_crl(self.ca, info, key, actor=op).der, generate_crl(self.ca, info, key, delta=True, actor=op).der]

    def root_pem(self, name: str) -> Path:
        return self.dir / f"{name}-root.pem"

    def root(self, name: str) -> asn1_x509.Certificate:
        return self.ca.get(name).certificate

    def stamper(self, name: str) -> LocalTimestamper:
        return LocalTimestamper(self.tsa.load(f"{name}-tsa", TSA_PASSWORD))

    def stamp(self, name: str, mode: str, out: Path | None = None, *, source: Path | None = None) -> Path:
        out = out or self.dir / f"{name}-{mode}.pdf"
        self.service.stamp_file(f"{name}-seal", SEAL_PASSWORD, source or self.doc, out, placement=AnchorText(ORG),
                                actor=self.actor("wang"), timestamper=None if mode == "bb" else self.stamper(name),
                                with_validation_info=mode in ("blt", "blta"), archive_timestamp=mode == "blta")
        return out


def signature_token(pdf: Path) -> tuple[cms.ContentInfo, bytes] | None:
    """(the signature timestamp token, the signature value it dates) of the first signature."""
    with open(pdf, "rb") as fh:
        sig = PdfFileReader(fh, strict=False).embedded_signatures[0]
        signer_info = sig.signer_info
        attrs = signer_info["unsigned_attrs"]
        if attrs.native is None:
            return None
        for attr in attrs:
            if attr["type"].native == "signature_time_stamp_token":
                return attr["values"][0], signer_info["signature"].native
    return None


def doc_timestamp_tokens(pdf: Path) -> list[cms.ContentInfo]:
    with open(pdf, "rb") as fh:
        reader = PdfFileReader(io.BytesIO(fh.read()), strict=False)
    return [cms.ContentInfo({"content_type": "signed_data", "content": ts.signed_data})
            for ts in reader.embedded_timestamp_signatures]


def pyhanko_lta(pdf: Path, roots: list[asn1_x509.Certificate], at: datetime,
                crls: list[bytes] = ()):  # type: ignore[assignment]
    """pyHanko's PAdES-LTA validation (ETSI EN 319 102-1 §5.6.3; pyHanko 0.38's successor of
    validate_pdf_ltv_signature) at `at`, trusting `roots`, fetching nothing, revocation data
    required, with `crls` as what the verifier holds at that time."""
    from pyhanko.sign.validation.ades import ades_lta_validation
    from pyhanko.sign.validation.policy_decl import (LocalKnowledge, PdfSignatureValidationSpec,
                                                     RevinfoOnlineFetchingRule, RevocationInfoGatheringSpec,
                                                     SignatureValidationSpec)
    from pyhanko_certvalidator.context import CertValidationPolicySpec, ValidationTimingInfo
    from pyhanko_certvalidator.policy_decl import (CertRevTrustPolicy, RevocationCheckingPolicy,
                                                   RevocationCheckingRule)
    from pyhanko_certvalidator.registry import SimpleTrustManager
    from pyhanko_certvalidator.revinfo.archival import CRLContainer
    required = RevocationCheckingRule.CRL_OR_OCSP_REQUIRED
    policy = CertValidationPolicySpec(trust_manager=SimpleTrustManager.build(trust_roots=roots),
                                      revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(required, required)))
    spec = PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=policy,
        local_knowledge=LocalKnowledge(known_crls=[CRLContainer(asn1_crl.CertificateList.load(c)) for c in crls]),
        revinfo_gathering_policy=RevocationInfoGatheringSpec(online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)))
    with open(pdf, "rb") as fh:
        sig = PdfFileReader(fh, strict=False).embedded_signatures[0]
        timing = ValidationTimingInfo(validation_time=at, best_signature_time=at, point_in_time_validation=True)
        return asyncio.run(ades_lta_validation(sig, spec, timing_info=timing))


def world(directory: Path) -> LtvWorld:
    return LtvWorld(directory, wall_clock())

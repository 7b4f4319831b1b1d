"""CMS signers for PDF seals: one pyHanko `Signer` over yinxin's loaded keys.

pyHanko's `SimpleSigner` re-parses its PKCS#8 key for every signature and
knows nothing of SM2.  `KeySigner` holds a `pki.PrivateKey` that was loaded
once (and decrypted once, under the seal password) and signs through it, so
RSA, ECDSA and SM2 take the same path:

* RSA: sha256WithRSAEncryption (PKCS#1 v1.5), digest SHA-256;
* ECDSA: ecdsa-with-SHA256 (P-256) or ecdsa-with-SHA384 (P-384);
* SM2: SM2-with-SM3 (OID 1.2.156.10197.1.501), digest SM3, the signature over
  SM3(Z ‖ signed attributes) with the signer's distinguishing ID.

Signing is fast for the common case: pyHanko assembles each CMS with
asn1crypto (about 9 ms a seal, most of a 1-page document's cost), although
for a PAdES signature without timestamp or extra attributes only three
things change from one document to the next — the messageDigest value, the
raw signature and the lengths around it.  `KeySigner` lets pyHanko build the
first such CMS, keeps its DER pieces (`_CmsTemplate`, also per process for
signers with the same certificates), and for later documents puts the digest
into the signed attributes, signs them and concatenates the pieces.  Any
other request (timestamp, CAdES attributes, Adobe revocation info,
non-PAdES, a dry run) goes through pyHanko unchanged.

The mechanism is fixed in the constructor, so pyHanko derives the document
digest from it (`get_cms_hash_algo_for_mechanism` → ``mech.hash_algo``, which
`pki.oids` answers with ``sm3`` for SM2) and hashes with
``getattr(cryptography.hazmat.primitives.hashes, 'SM3')``.  `ensure_sm_algorithms`
checks those seams once at import, so a pyHanko upgrade that moves them fails
loudly here instead of producing a wrong signature.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import pki  # registers the SM2/SM3 OIDs with asn1crypto before anything below parses
from asn1crypto import algos, cms, x509
from cryptography.hazmat.primitives import hashes
from pyhanko.sign.general import get_cms_hash_algo_for_mechanism
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

__all__ = ["KeySigner", "make_signer", "ensure_sm_algorithms", "signature_placeholder_size"]


def ensure_sm_algorithms() -> None:
    """Check that asn1crypto, pyHanko and cryptography all understand SM2/SM3.

    Raises RuntimeError (a deployment fault, not a user error) otherwise.
    """
    mech = algos.SignedDigestAlgorithm({"algorithm": pki.oids.SM2_SM3_NAME})
    problems = []
    if mech["algorithm"].dotted != pki.oids.SM2_WITH_SM3:
        problems.append("asn1crypto does not map sm3_sm2 to 1.2.156.10197.1.501")
    if mech.signature_algo != "sm2" or mech.hash_algo != "sm3":
        problems.append("asn1crypto does not split sm3_sm2 into (sm2, sm3)")
    if get_cms_hash_algo_for_mechanism(mech) != "sm3":
        problems.append("pyHanko does not derive SM3 from SM2-with-SM3")
    if not isinstance(get_pyca_cryptography_hash("sm3"), getattr(hashes, "SM3", ())):
        problems.append("cryptography has no SM3 hash for pyHanko to use")
    if algos.DigestAlgorithm({"algorithm": "sm3"})["algorithm"].dotted != pki.oids.SM3:
        problems.append("asn1crypto does not map sm3 to 1.2.156.10197.1.401")
    if problems:
        raise RuntimeError("SM2 support is broken: " + "; ".join(problems))


ensure_sm_algorithms()


def signature_placeholder_size(cert: x509.Certificate) -> int:
    """Bytes that always hold the raw signature of the certificate's key.

    Used for pyHanko's dry run (which only sizes the signature container),
    so that stamping signs once, not twice.  RSA signatures are exactly the
    modulus length; (EC)DSA/SM2 DER signatures are at most 2·(n+3)+2 bytes
    for an n-byte order (72 for 256-bit curves, 104 for P-384).
    """
    info = cert.public_key
    if info.algorithm == "rsa":
        return (info.bit_size + 7) // 8
    n = (info.bit_size + 7) // 8
    return 2 * (n + 3) + 2


def _der(tag: int, body: bytes) -> bytes:
    """One DER TLV: `tag` (a single identifier octet) around `body`, definite length."""
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


#: templates by what they depend on (`KeySigner._template_key`): a signer made afresh for
#: every document (the seal service) still builds its template once per process
_TEMPLATES: dict[tuple, "_CmsTemplate"] = {}
_TEMPLATES_KEPT = 32


def _remember(key: tuple, template: "_CmsTemplate") -> None:
    while len(_TEMPLATES) >= _TEMPLATES_KEPT:
        _TEMPLATES.pop(next(iter(_TEMPLATES)))
    _TEMPLATES[key] = template


@dataclass(frozen=True)
class _CmsTemplate:
    """The DER of pyHanko's PAdES SignedData for one signer, cut where documents differ.

    ContentInfo { signedData, [0] SignedData { version, digestAlgorithms,
    encapContentInfo, [0] certificates, SET { SignerInfo { version, sid,
    digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature } } } }:
    everything but the messageDigest value inside signedAttrs and the
    signature is the same for every document, and the signed attributes keep
    their length (the digest's length is fixed by the algorithm).
    """

    attrs_before: bytes      # the signed attributes (SET OF, tag 0x31) up to the digest value
    attrs_after: bytes       # ... after it
    digest_size: int
    signer_info_head: bytes  # version, sid, digestAlgorithm
    signature_algorithm: bytes
    signed_data_head: bytes  # version, digestAlgorithms, encapContentInfo, certificates
    content_type: bytes      # the OID signedData

    @classmethod
    def from_content_info(cls, info: cms.ContentInfo, marker: bytes) -> "_CmsTemplate":
        """Cut pyHanko's CMS at its messageDigest value `marker` and around its signature."""
        signed_data = info["content"]
        if len(signed_data["signer_infos"]) != 1:
            raise ValueError("the template has more than one signer")
        signer_info = signed_data["signer_infos"][0]
        if signer_info["unsigned_attrs"].native is not None:
            raise ValueError("the template has unsigned attributes")
        info.dump()   # serialise once; every piece below is then read from that encoding
        tagged = signer_info["signed_attrs"].dump()     # [0] IMPLICIT SET OF Attribute
        if tagged[:1] != b"\xa0":
            raise ValueError("unexpected encoding of the signed attributes")
        attrs = b"\x31" + tagged[1:]                    # the SET OF the signature covers
        if attrs.count(marker) != 1:
            raise ValueError("the template's messageDigest cannot be located")
        at = attrs.index(marker)
        head = b"".join(signer_info[k].dump() for k in ("version", "sid", "digest_algorithm"))
        sd_head = b"".join(signed_data[k].dump() for k in
                           ("version", "digest_algorithms", "encap_content_info", "certificates"))
        return cls(attrs[:at], attrs[at + len(marker):], len(marker), head,
                   signer_info["signature_algorithm"].dump(), sd_head, info["content_type"].dump())

    def signed_attributes(self, digest: bytes) -> bytes:
        """The DER the signature is computed over (SET OF tag, RFC 5652 §5.4)."""
        if len(digest) != self.digest_size:
            raise ValueError(f"a {self.digest_size}-byte digest is expected, not {len(digest)}")
        return self.attrs_before + digest + self.attrs_after

    def content_info(self, signed_attributes: bytes, signature: bytes) -> bytes:
        signer_info = _der(0x30, self.signer_info_head + b"\xa0" + signed_attributes[1:]
                           + self.signature_algorithm + _der(0x04, signature))
        signed_data = _der(0x30, self.signed_data_head + _der(0x31, signer_info))
        return _der(0x30, self.content_type + _der(0xA0, signed_data))


class KeySigner(Signer):
    """A pyHanko `Signer` over a `pki.PrivateKey` that stays loaded.

    The signature mechanism is the key's own (`PublicKey.signature_algorithm`),
    so the CMS signerInfo, the document digest and the raw signature agree.
    """

    def __init__(self, key: pki.PrivateKey, cert: x509.Certificate,
                 chain: Iterable[x509.Certificate] = (), *, distid: bytes | None = None,
                 embed_roots: bool = True) -> None:
        public = key.public_key()
        if public.to_der() != cert.public_key.dump():
            raise pki.CertificateError("the certificate does not belong to this key",
                                       subject=cert.subject.human_friendly)
        if distid is not None and key.algorithm != "sm2":
            raise ValueError(f"a distinguishing ID applies to SM2 keys only, not {key.algorithm}")
        self._key = key
        self._distid = distid
        self._placeholder = bytes(signature_placeholder_size(cert))
        self._template: _CmsTemplate | None = None
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore.from_certs([cert, *chain]),
            signature_mechanism=public.signature_algorithm(),
            embed_roots=embed_roots,
        )

    @property
    def key_algorithm(self) -> str:
        return self._key.algorithm

    @property
    def digest_algorithm(self) -> str:
        """The document digest this signer uses (sha256, sha384 or sm3)."""
        return get_cms_hash_algo_for_mechanism(self.signature_mechanism)

    def _fast_path(self, dry_run: bool, use_pades: bool, timestamper, settings,
                   is_pdf_sig: bool, encap_content_info) -> bool:
        """True when the CMS is exactly the template's: PAdES, no timestamp, no
        attributes beyond contentType/messageDigest/signingCertificateV2."""
        return (not dry_run and use_pades and is_pdf_sig and timestamper is None
                and encap_content_info is None
                and (settings is None or settings.cades_signed_attrs is None)
                and self.signed_attr_prov_spec is None and self.unsigned_attr_prov_spec is None
                and not self.attribute_certs and type(self).async_sign_raw is KeySigner.async_sign_raw)

    def _template_key(self) -> tuple:
        """What the template depends on: the certificates pyHanko embeds, the algorithms."""
        return (self.signing_cert.dump(), tuple(c.dump() for c in self.cert_registry),
                self.embed_roots, self.signature_mechanism.dump())

    async def async_sign(self, data_digest: bytes, digest_algorithm: str, dry_run: bool = False,
                         use_pades: bool = False, timestamper=None,
                         signed_attr_settings: PdfCMSSignedAttributes | None = None,
                         is_pdf_sig: bool = True, encap_content_info=None) -> cms.ContentInfo:
        fast = self._fast_path(dry_run, use_pades, timestamper, signed_attr_settings,
                               is_pdf_sig, encap_content_info)
        if fast and self._template is None:
            self._template = _TEMPLATES.get(self._template_key())
        if not fast or self._template is None:
            info = await super().async_sign(
                data_digest, digest_algorithm, dry_run=dry_run, use_pades=use_pades,
                timestamper=timestamper, signed_attr_settings=signed_attr_settings,
                is_pdf_sig=is_pdf_sig, encap_content_info=encap_content_info)
            if fast:   # the first such CMS is pyHanko's own; later ones reuse its pieces
                try:
                    self._template = _CmsTemplate.from_content_info(info, data_digest)
                except ValueError:   # not cut cleanly (say, the digest occurs twice): no template
                    return info
                _remember(self._template_key(), self._template)
            return info
        if digest_algorithm.lower() != self.digest_algorithm:
            raise ValueError(f"{self._key.algorithm} signs with {self.digest_algorithm}, "
                             f"not {digest_algorithm}")
        attrs = self._template.signed_attributes(data_digest)
        signature = await self.async_sign_raw(attrs, self.digest_algorithm)
        return cms.ContentInfo.load(self._template.content_info(attrs, signature))

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        # `data` is the DER of the signed attributes; the key hashes it itself
        # (SHA-2 for RSA/ECDSA, SM3 over Z ‖ data for SM2).
        if digest_algorithm != self.digest_algorithm:
            raise ValueError(f"{self._key.algorithm} signs with {self.digest_algorithm}, "
                             f"not {digest_algorithm}")
        if dry_run:
            return self._placeholder
        if self._key.algorithm == "sm2":
            return self._key.sign(data, distid=self._distid)
        return self._key.sign(data)


def make_signer(key: pki.PrivateKey, cert: x509.Certificate,
                chain: Iterable[x509.Certificate] = (), distid: bytes | None = None) -> KeySigner:
    """The pyHanko signer for a seal key and its certificate chain.

    `distid` is the SM2 distinguishing ID (default GM/T 0009's
    ``1234567812345678``); it must stay None for RSA and ECDSA keys.
    """
    if isinstance(cert, bytes):
        cert = x509.Certificate.load(cert)
    chain = [x509.Certificate.load(c) if isinstance(c, bytes) else c for c in chain]
    return KeySigner(key, cert, chain, distid=distid)

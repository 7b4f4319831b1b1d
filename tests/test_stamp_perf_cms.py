"""KeySigner's CMS template (the fast path that skips pyHanko's per-document asn1crypto work):
judged against pyHanko's own CMS for the same input and against the openssl CLI."""
from __future__ import annotations

import asyncio
import hashlib

import pytest
from asn1crypto import cms
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes, Signer

from pdf_fixtures import DISTID, identity, openssl
from seal import cms_signer
from seal.cms_signer import KeySigner, make_signer


def fast(signer: KeySigner, digest: bytes, **kw) -> cms.ContentInfo:
    """KeySigner's CMS made from its template (the first CMS of a signer is pyHanko's own
    and gives the template: make one first with another digest)."""
    kw.setdefault("use_pades", True)
    kw.setdefault("signed_attr_settings", PdfCMSSignedAttributes())
    if signer._template is None:
        asyncio.run(signer.async_sign(bytes(range(7, 7 + len(digest))), signer.digest_algorithm,
                                      use_pades=True, signed_attr_settings=PdfCMSSignedAttributes()))
    return asyncio.run(signer.async_sign(digest, signer.digest_algorithm, **kw))


def pyhanko(signer: KeySigner, digest: bytes, **kw) -> cms.ContentInfo:
    """pyHanko's own assembly (the base class method), same signer and key."""
    kw.setdefault("use_pades", True)
    kw.setdefault("signed_attr_settings", PdfCMSSignedAttributes())
    return asyncio.run(Signer.async_sign(signer, digest, signer.digest_algorithm, **kw))


def test_rsa_cms_is_byte_for_byte_pyhankos():
    # RSA PKCS#1 v1.5 is deterministic, so the whole DER must be identical
    ident = identity("rsa")
    signer = make_signer(ident.key, ident.cert)           # one certificate: no set-order question
    for content in (b"first document", b"second document"):
        digest = hashlib.sha256(content).digest()
        assert fast(signer, digest).dump() == pyhanko(signer, digest).dump()


@pytest.mark.parametrize("alg", ["rsa", "p256", "sm2"])
def test_template_matches_pyhanko_apart_from_the_signature(alg):
    ident = identity(alg)
    signer = make_signer(ident.key, ident.cert, [ident.root])
    digest = bytes(range(32))
    ours, theirs = fast(signer, digest)["content"], pyhanko(signer, digest)["content"]
    for key in ("version", "digest_algorithms", "encap_content_info"):
        assert ours[key].dump() == theirs[key].dump()
    # pyHanko lists the signing certificate twice (registry + signer); the template keeps its list
    assert sorted(c.dump() for c in ours["certificates"]) == \
        sorted(c.dump() for c in theirs["certificates"])
    assert {c.chosen.dump() for c in ours["certificates"]} == {ident.cert.dump(), ident.root.dump()}
    (si_ours,), (si_theirs,) = ours["signer_infos"], theirs["signer_infos"]
    for key in ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm"):
        assert si_ours[key].dump() == si_theirs[key].dump(), key
    attrs = {a["type"].native: a["values"][0].native for a in si_ours["signed_attrs"]}
    assert attrs["message_digest"] == digest
    assert set(attrs) == {"content_type", "message_digest", "signing_certificate_v2"}


@pytest.mark.parametrize("alg", ["rsa", "p256"])
def test_openssl_cms_verifies_the_fast_cms(tmp_path, alg):
    ident = identity(alg)
    signer = make_signer(ident.key, ident.cert, [ident.root])
    content = b"what the ByteRange would cover\n" * 100
    (tmp_path / "content").write_bytes(content)
    (tmp_path / "sig.der").write_bytes(fast(signer, hashlib.sha256(content).digest()).dump())
    out = openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.der"),
                  "-content", str(tmp_path / "content"), "-CAfile", str(ident.root_pem),
                  "-purpose", "any", "-out", str(tmp_path / "verified"))
    assert (tmp_path / "verified").read_bytes() == content, out
    # and a different content does not verify
    (tmp_path / "content").write_bytes(content + b"x")
    with pytest.raises(RuntimeError):
        openssl("cms", "-verify", "-binary", "-inform", "DER", "-in", str(tmp_path / "sig.der"),
                "-content", str(tmp_path / "content"), "-CAfile", str(ident.root_pem),
                "-purpose", "any", "-out", str(tmp_path / "verified"))


def test_sm2_fast_cms_signature_verifies_with_openssl(tmp_path):
    ident = identity("sm2")
    signer = make_signer(ident.key, ident.cert, [ident.root])
    digest = bytes(range(100, 132))
    (si,) = fast(signer, digest)["content"]["signer_infos"]
    (tmp_path / "attrs").write_bytes(si["signed_attrs"].untag().dump(force=True))
    (tmp_path / "sig").write_bytes(si["signature"].native)
    result = openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(ident.leaf_pub), "-rawin",
                     "-digest", "sm3", "-pkeyopt", f"distid:{DISTID}",
                     "-in", str(tmp_path / "attrs"), "-sigfile", str(tmp_path / "sig"))
    assert b"Signature Verified Successfully" in result


def test_template_comes_from_the_first_cms_and_is_shared_by_equal_signers():
    ident = identity("p256")
    cms_signer._TEMPLATES.clear()
    first = make_signer(ident.key, ident.cert, [ident.root])
    digest = hashlib.sha256(b"one").digest()
    info = asyncio.run(first.async_sign(digest, "sha256", use_pades=True,
                                        signed_attr_settings=PdfCMSSignedAttributes()))
    assert first._template is not None
    # the first CMS is pyHanko's, and the template rebuilds it exactly given its signature
    (si,) = info["content"]["signer_infos"]
    rebuilt = first._template.content_info(first._template.signed_attributes(digest),
                                           si["signature"].native)
    assert rebuilt == info.dump()
    second = make_signer(ident.key, ident.cert, [ident.root])
    fast(second, digest)
    assert second._template is first._template
    other = make_signer(ident.key, ident.cert)        # no root embedded: another template
    fast(other, digest)
    assert other._template is not first._template


def test_other_requests_go_through_pyhanko():
    ident = identity("p256")
    signer = make_signer(ident.key, ident.cert)
    digest = bytes(32)
    # a dry run gets pyHanko's placeholder signature
    (si,) = fast(signer, digest, dry_run=True)["content"]["signer_infos"]
    assert si["signature"].native == bytes(72)
    # not PAdES: pyHanko adds its own attributes (CMS algorithm protection)
    (si,) = fast(signer, digest, use_pades=False)["content"]["signer_infos"]
    names = {a["type"].native for a in si["signed_attrs"]}
    assert "cms_algorithm_protection" in names
    with pytest.raises(ValueError):
        fast(signer, bytes(31))

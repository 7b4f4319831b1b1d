"""Several CAs in one home — roots of all six algorithms, RSA/ECDSA/SM2 sub-CAs — judged by
`openssl verify` and `openssl x509 -text`; profile extensions (ocsp, seal, server)."""
from __future__ import annotations

import pytest

from pki.errors import PolicyError

from ca_helpers import (BASE_URL, DISTID, VFY_DISTID, World, apply_and_issue, cert_text, openssl,
                        openssl_csr, openssl_out, wall_clock)

ROOTS = ("rsa2048", "rsa3072", "rsa4096", "ecdsa-p256", "ecdsa-p384", "sm2")
#: (sub-CA name, its algorithm, parent root)
SUBS = (("sub-rsa", "rsa2048", "root-rsa3072"), ("sub-ecdsa", "ecdsa-p256", "root-ecdsa-p384"),
        ("sub-sm2", "sm2", "root-sm2"))
LEAF_KEY = {"sm2": "sm2"}  # leaf key algorithm per CA algorithm; ECDSA P-256 for the others


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("chains") / "home", tmp_path_factory.mktemp("chain-files"), wall_clock())
    for algorithm in ROOTS:
        w.init_ca(f"root-{algorithm}", algorithm)
    for name, algorithm, parent in SUBS:
        w.init_ca(name, algorithm, parent=parent)
    return w


def _leaf(world: World, ca: str, stem: str):  # type: ignore[no-untyped-def]
    """An organization certificate for a key made by OpenSSL, issued by `ca`."""
    algorithm = LEAF_KEY.get(world.authority.get(ca).algorithm, "ecdsa-p256")
    _, csr = openssl_csr(world.files, algorithm, f"/C=CN/O=印信测试/CN={stem}", stem=stem)
    issued = apply_and_issue(world, ca=ca, profile="organization", subject=f"/C=CN/O=印信测试/CN={stem}",
                             csr=csr.read_bytes())
    return world.write_cert(issued, stem), issued


def test_one_home_holds_all_cas(world: World) -> None:
    infos = {ca.name: ca for ca in world.authority.cas()}
    assert set(infos) == {f"root-{a}" for a in ROOTS} | {s for s, _, _ in SUBS}
    for name, algorithm, parent in SUBS:
        assert infos[name].parent == parent and infos[name].algorithm == algorithm
    assert infos["root-sm2"].distid == DISTID.encode()


@pytest.mark.parametrize("algorithm", ROOTS)
def test_root_is_self_signed_and_verifies(world: World, algorithm: str) -> None:
    pem = world.ca_pem(f"root-{algorithm}")
    extra = VFY_DISTID if algorithm == "sm2" else ()
    assert f"{pem}: OK" in openssl_out("verify", *extra, "-CAfile", pem, pem)
    text = cert_text(pem)
    assert "CA:TRUE" in text and "Certificate Sign, CRL Sign" in text
    expected = {"rsa2048": "(2048 bit)", "rsa3072": "(3072 bit)", "rsa4096": "(4096 bit)",
                "ecdsa-p256": "NIST CURVE: P-256", "ecdsa-p384": "NIST CURVE: P-384", "sm2": "ASN1 OID: SM2"}
    assert expected[algorithm] in text
    sig = {"sm2": "SM2-with-SM3", "ecdsa-p384": "ecdsa-with-SHA384", "ecdsa-p256": "ecdsa-with-SHA256"}
    assert f"Signature Algorithm: {sig.get(algorithm, 'sha256WithRSAEncryption')}" in text


@pytest.mark.parametrize("algorithm", ROOTS)
def test_leaf_under_every_root_verifies(world: World, algorithm: str) -> None:
    root = world.ca_pem(f"root-{algorithm}")
    leaf, issued = _leaf(world, f"root-{algorithm}", f"leaf-{algorithm}")
    # for SM2, -vfyopt applies to the end certificate: root → leaf is exactly that case
    extra = VFY_DISTID if algorithm == "sm2" else ()
    assert f"{leaf}: OK" in openssl_out("verify", *extra, "-CAfile", root, leaf)
    # the chain the CA hands out is the issuing CA (here the root itself)
    assert issued.chain_pem() == root.read_bytes()
    text = cert_text(leaf)
    ca = f"root-{algorithm}"
    assert f"URI:{BASE_URL}/crl/{ca}.crl" in text                       # CRL distribution point
    assert f"OCSP - URI:{BASE_URL}/ocsp/{ca}" in text                    # AIA OCSP
    assert f"CA Issuers - URI:{BASE_URL}/ca/{ca}.crt" in text            # AIA caIssuers
    assert "CA:FALSE" in text


@pytest.mark.parametrize("sub,algorithm,parent", SUBS, ids=[s[0] for s in SUBS])
def test_sub_ca_chain_verifies(world: World, sub: str, algorithm: str, parent: str) -> None:
    root, sub_pem = world.ca_pem(parent), world.ca_pem(sub)
    leaf, issued = _leaf(world, sub, f"leaf-{sub}")
    sub_text = cert_text(sub_pem)
    assert "CA:TRUE, pathlen:0" in sub_text
    assert f"URI:{BASE_URL}/crl/{parent}.crl" in sub_text  # the sub-CA certificate points at its parent
    assert f"URI:{BASE_URL}/crl/{sub}.crl" in cert_text(leaf)
    # the chain written by `issue --chain-out`: sub first, root last
    assert issued.chain_pem() == sub_pem.read_bytes() + root.read_bytes()
    if algorithm != "sm2":
        assert f"{leaf}: OK" in openssl_out("verify", "-CAfile", root, "-untrusted", sub_pem, leaf)
        return
    # OpenSSL 3.0 applies -vfyopt (the SM2 distinguishing ID) to the end certificate only: in a
    # root → sub → leaf chain the sub-CA's signature (made by the root with the GM/T ID) is checked
    # with the empty ID and fails.  So each link is verified as its own end certificate:
    #   root → sub, then sub → leaf with the sub-CA as trust anchor (-partial_chain).
    assert f"{sub_pem}: OK" in openssl_out("verify", *VFY_DISTID, "-CAfile", root, sub_pem)
    assert f"{leaf}: OK" in openssl_out("verify", *VFY_DISTID, "-partial_chain", "-CAfile", sub_pem, leaf)
    # and without the ID the leaf's signature does not verify: the ID really is in the signature
    plain = openssl("verify", "-partial_chain", "-CAfile", sub_pem, leaf, check=False)
    assert plain.returncode != 0


def test_sub_ca_must_fit_subca_profile(world: World) -> None:
    with pytest.raises(PolicyError, match="subca requires subject attribute"):
        world.authority.init_ca(name="sub-bad", subject="/O=Only an O", algorithm="ecdsa-p256",
                                password=b"x", parent="root-ecdsa-p256", parent_password=b"ca-password-1",
                                actor=world.op)
    assert "sub-bad" not in {ca.name for ca in world.authority.cas()}
    assert not (world.home_dir / "cas" / "sub-bad").exists()


def test_ocsp_profile_has_ocsp_signing_and_nocheck(world: World) -> None:
    _, csr = openssl_csr(world.files, "ecdsa-p256", "/CN=OCSP responder", stem="ocsp-resp")
    issued = apply_and_issue(world, ca="root-ecdsa-p256", profile="ocsp", subject="/CN=OCSP responder",
                             csr=csr.read_bytes())
    text = cert_text(world.write_cert(issued, "ocsp-resp"))
    assert "OCSP Signing" in text
    assert "OCSP No Check" in text
    assert "Digital Signature" in text


def test_seal_profile_is_digital_signature_and_non_repudiation(world: World) -> None:
    _, csr = openssl_csr(world.files, "sm2", "/C=CN/O=某某市人民政府/CN=某某市人民政府公章", stem="seal")
    issued = apply_and_issue(world, ca="root-sm2", profile="seal", subject="/C=CN/O=某某市人民政府/CN=某某市人民政府公章",
                             csr=csr.read_bytes())
    pem = world.write_cert(issued, "seal")
    text = cert_text(pem)
    usage = text.split("X509v3 Key Usage: critical")[1].splitlines()[1].strip()
    assert usage == "Digital Signature, Non Repudiation"
    assert f"{pem}: OK" in openssl_out("verify", *VFY_DISTID, "-CAfile", world.ca_pem("root-sm2"), pem)


def test_server_profile_requires_a_san(world: World) -> None:
    _, no_san = openssl_csr(world.files, "ecdsa-p256", "/CN=www.yinxin.test", stem="srv-nosan")
    with pytest.raises(PolicyError, match="requires a subjectAltName"):
        world.ra.apply(ca="root-ecdsa-p256", profile="server", subject="/CN=www.yinxin.test",
                       actor=world.person("alice"), csr=no_san.read_bytes())
    # the SAN may come from the CSR's extensionRequest …
    _, with_san = openssl_csr(world.files, "ecdsa-p256", "/CN=www.yinxin.test", stem="srv-san",
                              san="DNS:www.yinxin.test,IP:127.0.0.1")
    issued = apply_and_issue(world, ca="root-ecdsa-p256", profile="server", subject="/CN=www.yinxin.test",
                             csr=with_san.read_bytes())
    pem = world.write_cert(issued, "srv-san")
    text = cert_text(pem)
    assert "DNS:www.yinxin.test, IP Address:127.0.0.1" in text
    assert "TLS Web Server Authentication" in text
    assert f"{pem}: OK" in openssl_out("verify", "-CAfile", world.ca_pem("root-ecdsa-p256"),
                                       "-purpose", "sslserver", pem)
    # … or from the application
    issued = apply_and_issue(world, ca="root-ecdsa-p256", profile="server", subject="/CN=www.yinxin.test",
                             csr=no_san.read_bytes(), sans=[("dns", "www.yinxin.test")])
    assert "DNS:www.yinxin.test" in cert_text(world.write_cert(issued, "srv-app-san"))

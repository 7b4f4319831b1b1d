"""`doc evidence`: a self-contained bundle a third party checks with OpenSSL alone.

The bundle (a new directory, written whole or not at all)::

    README.txt            what is here and how to check it
    verify.sh             POSIX sh + openssl + sha256sum: one line per act, "ALL OK" at the end
    act-N.json            the exact bytes of signed decision N (canonical JSON)
    act-N.sig             its signature (DER)
    act-N.crt             the signer's certificate (PEM)
    version-V.pdf         every version of the document the acts name
    ca-NAME.pem           each CA certificate, from the signers' CAs up to the trust anchors
    chain.pem             the same certificates in one file
    crl-NAME.der          each of those CAs' latest CRL, issued after the last act it speaks for

The log is verified first (`verify_log`): a bundle is written only for a document whose decisions
all hold, and only when every CA involved published a CRL after the last act, so that the CRLs say
something about the moment of each act.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pki.accounts import decisions
from pki.accounts.errors import DecisionVerificationFailed
from pki.crl import load_crl
from pki.store import cas, certificates
from pki.x509 import certificate_public_key, certificate_to_pem, load_certificate

from .. import store as t
from ..elements import Digests
from ..errors import DocflowError, FlowStateError

if TYPE_CHECKING:
    from ..flow import DocumentFlow


@dataclass(frozen=True)
class EvidenceBundle:
    doc_id: int
    directory: Path
    acts: int
    versions: tuple[int, ...]
    cas: tuple[str, ...]
    files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"doc": self.doc_id, "directory": str(self.directory), "acts": self.acts,
                "versions": list(self.versions), "cas": list(self.cas), "files": list(self.files)}


def _der_header(der: bytes, offset: int) -> tuple[int, int]:
    first = der[offset + 1]
    if first < 0x80:
        return 2, first
    n = first & 0x7F
    return 2 + n, int.from_bytes(der[offset + 2:offset + 2 + n], "big")


def crl_offsets(der: bytes) -> tuple[int, int]:
    """Where `openssl asn1parse -strparse` finds a CRL's TBSCertList and its signature BIT STRING."""
    outer, _ = _der_header(der, 0)
    tbs_h, tbs_len = _der_header(der, outer)
    alg = outer + tbs_h + tbs_len
    alg_h, alg_len = _der_header(der, alg)
    return outer, alg + alg_h + alg_len


def _shell_word(value: str) -> str:
    if not value:
        return "''"
    if any(c in value for c in "'\n\\") or not value.isprintable():
        raise DocflowError(f"{value!r} cannot be written into verify.sh")
    return f"'{value}'"


def write_evidence(flow: "DocumentFlow", doc_id: int, out_dir: str | os.PathLike[str]) -> EvidenceBundle:
    from pki.ca import CertificateAuthority
    from pki.status import latest_crl
    from .check import verify_log
    home = flow.home
    target = Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FlowStateError(f"{target} exists and is not an empty directory: evidence goes into a new one",
                             path=str(target))
    report = verify_log(flow, doc_id)
    if not report.ok:
        raise DecisionVerificationFailed(f"the signed decisions of document {doc_id} do not verify: "
                                         f"{report.first_problem}", doc=doc_id)
    records = decisions.chain_records(home, f"doc:{doc_id}")
    if not records:
        raise FlowStateError(f"document {doc_id} has no signed decisions", doc=doc_id)
    authority = CertificateAuthority(home)
    infos = {i.name: i for i in authority.cas()}
    # the CAs of the signers, and their ancestors, with the last act each must speak for
    last_act: dict[str, datetime] = {}
    for d in records:
        name: str | None = d.ca_name
        while name is not None:
            last_act[name] = max(last_act.get(name, d.at), d.at)
            name = infos[name].parent
    crls: dict[str, bytes] = {}
    for name, when in last_act.items():
        der = latest_crl(authority, infos[name])
        if der is None:
            raise FlowStateError(f"CA {name} has published no CRL: publish one (yinxin ca crl --ca {name}) so that "
                                 "the evidence shows the certificates' status", ca=name)
        this_update = load_crl(der)["tbs_cert_list"]["this_update"].native
        if this_update < when.replace(microsecond=0):
            raise FlowStateError(f"the latest CRL of CA {name} ({this_update:%Y-%m-%d %H:%M:%S} UTC) is older than the "
                                 f"last act it must speak for ({when:%Y-%m-%d %H:%M:%S} UTC): publish a new one "
                                 f"(yinxin ca crl --ca {name})", ca=name)
        crls[name] = der
    with home.store.read() as conn:
        versions = {r.number: (bytes(r.pdf), r.sha256, r.sm3) for r in conn.execute(
            sa.select(t.doc_versions.c.number, t.doc_versions.c.pdf, t.doc_versions.c.sha256, t.doc_versions.c.sm3)
            .where(t.doc_versions.c.doc_id == doc_id))}
        certs = {}
        for d in records:
            row = conn.execute(sa.select(certificates.c.cert_der).join(cas, cas.c.id == certificates.c.ca_id)
                               .where(cas.c.name == d.ca_name, certificates.c.serial == d.cert_serial)).first()
            certs[d.seq] = load_certificate(bytes(row.cert_der))
    named_versions = sorted({d.fields.get("version") for d in records if isinstance(d.fields.get("version"), int)})
    out: dict[str, bytes] = {}
    acts = []
    for d in records:
        out[f"act-{d.seq}.json"] = d.record
        assert d.signature is not None
        out[f"act-{d.seq}.sig"] = d.signature
        out[f"act-{d.seq}.crt"] = certificate_to_pem(certs[d.seq])
        acts.append((d.seq, certificate_public_key(certs[d.seq]).algorithm, d.ca_name))
    for number in named_versions:
        data, sha256, sm3 = versions[number]
        if not Digests(sha256, sm3, len(data)).matches(data):
            raise DocflowError(f"version {number} of document {doc_id} no longer matches its digests", doc=doc_id)
        out[f"version-{number}.pdf"] = data
    ordered = sorted(last_act, key=lambda n: _depth(infos, n), reverse=True)
    for name in ordered:
        out[f"ca-{name}.pem"] = certificate_to_pem(infos[name].certificate)
    out["chain.pem"] = b"".join(certificate_to_pem(infos[n].certificate) for n in ordered)
    for name, der in crls.items():
        out[f"crl-{name}.der"] = der
    out["verify.sh"] = _script(doc_id, acts, ordered, infos, crls).encode("utf-8")
    out["README.txt"] = _readme(doc_id, len(records), named_versions, ordered).encode("utf-8")
    _write_all(target, out)
    return EvidenceBundle(doc_id=doc_id, directory=target, acts=len(records), versions=tuple(named_versions),
                          cas=tuple(ordered), files=tuple(sorted(out)))


def _depth(infos: dict[str, Any], name: str) -> int:
    depth = 0
    while infos[name].parent is not None:
        name, depth = infos[name].parent, depth + 1
    return depth


def _script(doc_id: int, acts: list[tuple[int, str, str]], cas_: list[str], infos: dict[str, Any],
            crls: dict[str, bytes]) -> str:
    def table(function: str, values: dict[str, str]) -> str:
        cases = " ".join(f"{name}) echo {_shell_word(value)} ;;" for name, value in values.items())
        return f"{function}() {{ case $1 in {cases} *) echo '' ;; esac; }}"

    distids = {n: (infos[n].distid.decode("latin-1") if infos[n].algorithm == "sm2" else "") for n in cas_}
    offsets = {n: crl_offsets(der) for n, der in crls.items()}
    lines = [f"# document {doc_id}: {len(acts)} signed acts",
             table("ca_alg", {n: infos[n].algorithm for n in cas_}),
             table("ca_distid", distids),
             table("ca_parent", {n: infos[n].parent or "" for n in cas_}),
             table("crl_tbs", {n: str(o[0]) for n, o in offsets.items()}),
             table("crl_sig", {n: str(o[1]) for n, o in offsets.items()}),
             f"ANCHORS={_shell_word(' '.join(n for n in cas_ if infos[n].parent is None))}"]
    lines += [f"check_act {seq} {algorithm} {ca}" for seq, algorithm, ca in acts]
    template = files("docflow.evidence").joinpath("verify.sh").read_text(encoding="utf-8")
    return template.replace("@SETTINGS@", "\n".join(lines))


def _readme(doc_id: int, acts: int, versions: list[int], cas_: list[str]) -> str:
    return f"""Evidence of document {doc_id}: {acts} decisions, each signed with its actor's own certificate.

Check it with OpenSSL alone:  sh verify.sh   (exit 0 and "ALL OK" when every act holds)

act-N.json  the exact bytes that were signed: canonical JSON (UTF-8, keys sorted at every level, no
            insignificant whitespace, non-ASCII as itself).  Fields: kind, home, chain, seq, prev
            (SHA-256 of act-(N-1).json, "" for the first), time (UTC), actor, actor_name, certificate
            (CA and serial), document, organisation, step, action, opinion, version, sha256, sm3, and
            what the act decided (who is next, the seal, the recipients, …).
act-N.sig   the signature over act-N.json (DER): SM2 with SM3 and the CA's distinguishing ID for SM2
            keys (openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:ID), else ECDSA/RSA.
act-N.crt   the signer's certificate (PEM).
version-V   the document's versions the acts name ({', '.join(map(str, versions))}).
ca-*.pem    the CA certificates ({', '.join(cas_)}); chain.pem holds them all; crl-*.der their CRLs.
"""


def _write_all(target: Path, out: dict[str, bytes]) -> None:
    """Into a temporary directory beside `target`, fsynced, renamed into place: whole or nothing."""
    from pki.keyfiles import write_file_atomic
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, data in out.items():
            write_file_atomic(staging / name, data, mode=0o755 if name == "verify.sh" else 0o644)
        os.chmod(staging, 0o755)
        if target.exists():
            target.rmdir()                       # empty: checked above
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

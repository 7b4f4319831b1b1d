"""Helpers for the timestamp-authority tests (test_tsa_*, test_cli_tsa, test_server_tsa, test_pdf_ltv).

* `TsaWorld`      — a home (library, FixedClock at the real time) with a root CA of one algorithm
                    and a TSA of the same algorithm under it; files root.pem / tsa.pem for OpenSSL
* `openssl_query` — a TimeStampReq made by `openssl ts -query`
* independent judges: `openssl_ts_verify` (RSA/ECDSA tokens), `sm2_token_verify` (the SM2 signature
  over the signed attributes with `openssl pkeyutl`, the messageDigest against `openssl dgst -sm3`),
  `reply_text` (`openssl ts -reply -text`)
* `token_parts` — the signed attributes, signature and TSTInfo of a token, cut out with asn1crypto
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import cms, tsp

from ca_helpers import officer_for, op_for, openssl, sql, wall_clock
from pki.accounts.testing import actor_for_tests
from pg_fixture import prepare_home_database
from pki.ca import CertificateAuthority
from pki.clock import FixedClock
from pki.home import Home
from pki.tsa import TimestampAuthority, TsaInfo, TsaSigner
from pki.x509 import certificate_to_pem

CA_PASSWORD = b"Ca-Password-2026!"
TSA_PASSWORD = b"Tsa-Password-2026!"
DISTID = "1234567812345678"
DIGEST_FLAG = {"sha256": "-sha256", "sha384": "-sha384", "sha512": "-sha512", "sm3": "-sm3"}


@dataclass
class TsaWorld:
    dir: Path
    home: Home
    clock: FixedClock
    authority: TimestampAuthority
    info: TsaInfo
    signer: TsaSigner
    root_pem: Path
    tsa_pem: Path

    database: Any = None              # the SQLite file, or the PostgreSQL schema (tests/pg_fixture.py)

    def rows(self, statement: str, params=()) -> list[tuple]:
        """One statement straight on the database (sqlite3 or psycopg), not through our store."""
        return sql(self.database, statement, params)


def tsa_operator(home: Home) -> Any:
    """The CA operator who sets TSAs up in these tests (only a CA operator: no RA role)."""
    return actor_for_tests(home, "tsa-op", roles=("ca_operator",))


def make_world(directory: Path, algorithm: str, *, name: str = "tsa1", accuracy_ms: int = 1000,
               days: int = 7300, clock: FixedClock | None = None) -> TsaWorld:
    directory.mkdir(parents=True, exist_ok=True)
    clock = clock or wall_clock()
    database = prepare_home_database(directory / "home")     # PostgreSQL with YINXIN_TEST_DATABASE=postgresql
    home = Home.open(directory / "home", clock=clock)
    ca = CertificateAuthority(home)
    root = ca.init_ca(name="root", subject="/C=CN/O=时间测试单位/CN=Time Test Root", algorithm=algorithm,
                      password=CA_PASSWORD, days=days, actor=op_for(home))
    authority = TimestampAuthority(home)
    info = authority.init(name, ca="root", ca_password=CA_PASSWORD, password=TSA_PASSWORD,
                          accuracy_ms=accuracy_ms, actor=tsa_operator(home), approver=officer_for(home, "ra-gu"))
    root_pem, tsa_pem = directory / "root.pem", directory / "tsa.pem"
    root_pem.write_bytes(certificate_to_pem(root.certificate))
    tsa_pem.write_bytes(certificate_to_pem(info.certificate))
    return TsaWorld(directory, home, clock, authority, info, authority.load(name, TSA_PASSWORD), root_pem, tsa_pem,
                    database)


def openssl_query(directory: Path, data_file: Path, digest: str = "sha256", *, cert: bool = True,
                  no_nonce: bool = False, policy: str | None = None, stem: str = "q") -> Path:
    out = directory / f"{stem}.tsq"
    args = ["ts", "-query", "-data", data_file, DIGEST_FLAG[digest], "-out", out]
    if cert:
        args.append("-cert")
    if no_nonce:
        args.append("-no_nonce")
    if policy:
        args += ["-tspolicy", policy]
    openssl(*args)
    return out


def openssl_ts_verify(query: Path, reply: Path, root_pem: Path, tsa_pem: Path | None = None) -> str:
    args = ["ts", "-verify", "-queryfile", query, "-in", reply, "-CAfile", root_pem]
    if tsa_pem is not None:
        args += ["-untrusted", tsa_pem]
    proc = openssl(*args, check=False)
    return (proc.stdout + proc.stderr).decode(errors="replace")


def reply_text(reply: Path) -> str:
    return openssl("ts", "-reply", "-in", reply, "-text").stdout.decode(errors="replace")


def token_of(reply_der: bytes) -> cms.ContentInfo:
    return tsp.TimeStampResp.load(reply_der)["time_stamp_token"]


def token_parts(token: cms.ContentInfo) -> dict[str, bytes]:
    """The DER the TSA signed (signed attributes as a SET), the signature, and the TSTInfo bytes."""
    signed = token["content"]
    signer_info = signed["signer_infos"][0]
    attrs = signer_info["signed_attrs"].dump()
    return {"attrs": b"\x31" + attrs[1:], "signature": signer_info["signature"].native,
            "tst_info": signed["encap_content_info"]["content"].contents,
            "message_digest": next(a["values"][0].native for a in signer_info["signed_attrs"]
                                   if a["type"].native == "message_digest")}


def sm2_token_verify(token: cms.ContentInfo, tsa_pem: Path, workdir: Path, *, distid: str = DISTID) -> tuple[str, str]:
    """(openssl pkeyutl's verdict on the TSA's SM2 signature over the signed attributes,
    openssl dgst -sm3 of the TSTInfo, hex)."""
    parts = token_parts(token)
    workdir.mkdir(parents=True, exist_ok=True)
    files = {n: workdir / n for n in ("attrs.der", "sig.der", "tst.der", "pub.pem")}
    files["attrs.der"].write_bytes(parts["attrs"])
    files["sig.der"].write_bytes(parts["signature"])
    files["tst.der"].write_bytes(parts["tst_info"])
    openssl("x509", "-in", tsa_pem, "-noout", "-pubkey", "-out", files["pub.pem"])
    proc = openssl("pkeyutl", "-verify", "-pubin", "-inkey", files["pub.pem"], "-rawin", "-digest", "sm3",
                   "-pkeyopt", f"distid:{distid}", "-in", files["attrs.der"], "-sigfile", files["sig.der"],
                   check=False)
    dgst = openssl("dgst", "-sm3", "-r", files["tst.der"]).stdout.decode().split()[0]
    return (proc.stdout + proc.stderr).decode(errors="replace"), dgst

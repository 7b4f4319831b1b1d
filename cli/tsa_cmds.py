"""`yinxin tsa …`: thin calls of pki.tsa (the timestamp authorities of a home)."""
from __future__ import annotations

import sys

import click

from pki.fileio import write_file_atomic

from .common import (Context, acting, ca_password, ca_password_option, json_option, open_home, operator_option,
                     parse_time, pass_ctx, read_input, read_password, session_option)
from .main import cli


@cli.group("tsa")
def tsa_group() -> None:
    """Timestamp authorities (RFC 3161; GM/T 0033 for SM2): set up, answer queries, statistics."""


def _authority(ctx: Context):  # type: ignore[no-untyped-def]
    from pki.tsa import TimestampAuthority
    return TimestampAuthority(open_home(ctx))


def tsa_password_option(f):  # type: ignore[no-untyped-def]
    return click.option("--tsa-password-file", type=click.Path(dir_okay=False),
                        help="File holding the TSA key's password (else $YINXIN_TSA_PASSWORD or a prompt).")(f)


def tsa_password(file: str | None, *, confirm: bool = False) -> bytes:
    pw = read_password(file, env="YINXIN_TSA_PASSWORD", prompt="TSA key password", confirm=confirm)
    assert pw is not None
    return pw


@tsa_group.command("init")
@click.argument("name")
@click.option("--ca", "ca_name", help="The CA issuing the TSA certificate (default: the only/default CA).")
@click.option("--algorithm", type=click.Choice(["rsa2048", "rsa3072", "rsa4096", "ecdsa-p256", "ecdsa-p384", "sm2"]),
              help="Key algorithm (default: the CA's).")
@click.option("--policy", help="The TSA policy OID stated in every token (default: yinxin's, under 2.25).")
@click.option("--accuracy-ms", type=int, default=1000, show_default=True, help="Stated accuracy of genTime.")
@click.option("--subject", help="Subject of the TSA certificate (default: /C, /O of the CA, CN=NAME 时间戳服务).")
@click.option("--sm2-id", help="SM2 distinguishing ID of an SM2 TSA (default 1234567812345678).")
@click.option("--approver-session", required=True, type=click.Path(dir_okay=False),
              help="The session file of the RA officer approving the TSA certificate (another person).")
@tsa_password_option
@ca_password_option
@session_option
@operator_option
@json_option
@pass_ctx
def tsa_init(ctx: Context, name: str, ca_name: str | None, algorithm: str | None, policy: str | None,
             accuracy_ms: int, subject: str | None, sm2_id: str | None, approver_session: str,
             tsa_password_file: str | None, ca_password_file: str | None, session_file: str | None,
             operator: str | None) -> None:
    """Set up a TSA: a key (stored encrypted) and a certificate of profile tsa from --ca — a CA
    operator's act (the session), its certificate approved by an RA officer (--approver-session)."""
    from pki.accounts.accounts import Accounts
    authority = _authority(ctx)
    actor = acting(ctx, authority.home, session_file, claimed=operator)
    approver = acting(ctx, authority.home, approver_session)
    Accounts.of(authority.home).require(actor, any_of=("ca_operator",))    # before any prompt
    authority.authority.get(ca_name)          # an unknown CA: say so before any prompt
    password = tsa_password(tsa_password_file, confirm=True)
    info = authority.init(name, ca=ca_name, ca_password=ca_password(ca_password_file), password=password,
                          algorithm=algorithm, policy=policy, accuracy_ms=accuracy_ms, subject=subject,
                          sm2_id=sm2_id.encode() if sm2_id is not None else None, actor=actor,
                          approver=approver)
    ctx.emit(info.to_dict(), f"TSA {info.name} ({info.algorithm}) set up under CA {info.ca}: certificate "
                             f"{info.cert_serial.upper()} valid until {info.not_after:%Y-%m-%d}, policy {info.policy}")


@tsa_group.command("list")
@json_option
@pass_ctx
def tsa_list(ctx: Context) -> None:
    """The TSAs of this home."""
    infos = _authority(ctx).list()
    if ctx.json:
        ctx.emit({"tsas": [i.to_dict() for i in infos]})
        return
    for i in infos:
        click.echo(f"{i.name:<16} {i.algorithm:<10} CA {i.ca:<12} until {i.not_after:%Y-%m-%d}  {i.subject}")


@tsa_group.command("cert")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--chain", is_flag=True, help="Append the CA chain (up to the root).")
@json_option
@pass_ctx
def tsa_cert(ctx: Context, name: str, out: str, chain: bool) -> None:
    """Write the TSA certificate (PEM), for `openssl ts -verify -untrusted`."""
    from pki.x509 import certificate_to_pem
    authority = _authority(ctx)
    info = authority.get(name)
    certs = authority.chain(info) if chain else (info.certificate,)
    write_file_atomic(out, b"".join(certificate_to_pem(c) for c in certs), mode=0o644)
    ctx.emit({"tsa": name, "out": out, "certificates": len(certs)}, f"TSA {name} certificate → {out}")


@tsa_group.command("stamp")
@click.argument("name")
@click.option("--query", "query_file", required=True, type=click.Path(dir_okay=False),
              help="A DER TimeStampReq (openssl ts -query).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The DER TimeStampResp.")
@tsa_password_option
@session_option
@operator_option
@json_option
@pass_ctx
def tsa_stamp(ctx: Context, name: str, query_file: str, out: str, tsa_password_file: str | None,
              session_file: str | None, operator: str | None) -> None:
    """Answer one timestamp query offline (the token is recorded like any other): a CA operator,
    with the TSA key's password."""
    from pki.accounts.accounts import Accounts
    authority = _authority(ctx)
    actor = acting(ctx, authority.home, session_file, claimed=operator)
    Accounts.of(authority.home).require(actor, any_of=("ca_operator",))    # before the password prompt
    authority.get(name)
    query = read_input(query_file, "query")
    signer = authority.load(name, tsa_password(tsa_password_file))
    issued = signer.issue(signer.parse(query), client=f"cli:{actor.account_id}")   # a refusal writes nothing
    write_file_atomic(out, issued.response, mode=0o644)
    row = issued.row
    ctx.emit({"tsa": name, "out": out, "serial": row["serial"].upper(), "gen_time": row["gen_time"].isoformat(),
              "hash_algorithm": row["hash_algorithm"]},
             f"token {row['serial'].upper()} of TSA {name} at {row['gen_time'].isoformat()} → {out}")


@tsa_group.command("stats")
@click.argument("name", required=False)
@json_option
@pass_ctx
def tsa_stats(ctx: Context, name: str | None) -> None:
    """Tokens issued per TSA."""
    stats = _authority(ctx).stats(name)
    if ctx.json:
        ctx.emit({"tsas": stats})
        return
    for tsa, s in stats.items():
        hashes = ", ".join(f"{h} {n}" for h, n in sorted(s["by_hash"].items())) or "-"
        click.echo(f"{tsa}: {s['tokens']} token(s) ({hashes}); first {s['first'] or '-'}, last {s['last'] or '-'}; "
                   f"certificate until {s['certificate_not_after']}")


@tsa_group.command("find")
@click.argument("serial")
@click.option("--tsa", "tsa_name", help="Look in this TSA only.")
@json_option
@pass_ctx
def tsa_find(ctx: Context, serial: str, tsa_name: str | None) -> None:
    """The record of one token, by serial number (hex)."""
    record = _authority(ctx).find(serial, tsa=tsa_name)
    ctx.emit(record.to_dict())


@tsa_group.command("verify")
@click.argument("token_file", type=click.Path(dir_okay=False))
@click.option("--data", "data_file", type=click.Path(dir_okay=False), help="The data the token should date.")
@click.option("--digest", help="…or its hash (hex), in the token's hash algorithm.")
@click.option("--trust", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="Trusted root certificate (PEM/DER), repeatable.")
@click.option("--untrusted", multiple=True, type=click.Path(dir_okay=False),
              help="The TSA certificate and intermediates if the token carries none.")
@click.option("--at", "at_text", help="Judge the TSA certificate at this time (ISO 8601; default now).")
@json_option
@pass_ctx
def tsa_verify(ctx: Context, token_file: str, data_file: str | None, digest: str | None, trust: tuple[str, ...],
               untrusted: tuple[str, ...], at_text: str | None) -> None:
    """Check a token (or a TimeStampResp) from any TSA: exit 0 valid, 1 invalid, 3 indeterminate."""
    from pki.clock import SYSTEM_CLOCK
    from pki.tsa import verify_token
    from pki.x509 import load_certificates
    if (data_file is None) == (digest is None):
        raise click.UsageError("give --data FILE or --digest HEX")
    try:
        digest_bytes = bytes.fromhex(digest) if digest is not None else None
    except ValueError:
        raise click.UsageError("--digest is hexadecimal") from None
    roots = [c for path in trust for c in load_certificates(read_input(path, "trust certificate"))]
    extra = [c for path in untrusted for c in load_certificates(read_input(path, "certificate"))]
    at = parse_time(at_text) if at_text else None
    result = verify_token(read_input(token_file, "token"), read_input(data_file, "data") if data_file else None,
                          roots, digest=digest_bytes, certificates=extra, at=at, clock=SYSTEM_CLOCK)
    token = result.token
    ctx.emit(result.to_dict(), f"{result.verdict.upper()}: token {token.serial:X} at {token.gen_time.isoformat()}"
             + "".join(f"\n  problem: {p}" for p in result.problems))
    sys.exit({"valid": 0, "invalid": 1, "indeterminate": 3}[result.verdict])

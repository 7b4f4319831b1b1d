"""`yinxin ca …` and `yinxin audit …`: thin calls of pki's CA, RA, status and audit APIs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pki.fileio import write_file_atomic

from .common import (Context, acting, ca_password, ca_password_option, json_option, open_home, operator_option,
                     pass_ctx, read_input, read_password, session_option)
from .main import cli


@cli.group("ca")
def ca_group() -> None:
    """Certificate authority: CAs, applications, issuance, status."""


def _authority(ctx: Context):  # type: ignore[no-untyped-def]
    from pki.ca import CertificateAuthority
    return CertificateAuthority(open_home(ctx))


def _serial_text(serial: str) -> str:
    return serial.upper()


def _operator(ctx: Context, authority, session_file: str | None, operator: str | None,
              *roles: str):  # type: ignore[no-untyped-def]
    """The session's actor, holding one of `roles` (checked before any password prompt)."""
    from pki.accounts.accounts import Accounts
    actor = acting(ctx, authority.home, session_file, claimed=operator)
    Accounts.of(authority.home).require(actor, any_of=roles)
    return actor


@ca_group.command("init")
@click.option("--name", required=True, help="Name of the CA in this home.")
@click.option("--subject", required=True, help='Subject DN, e.g. "/C=CN/O=测试局/CN=测试根CA".')
@click.option("--algorithm", required=True, help="rsa2048|rsa3072|rsa4096|ecdsa-p256|ecdsa-p384|sm2")
@click.option("--days", type=int, default=3650, show_default=True)
@click.option("--parent", help="Parent CA (makes a subordinate CA).")
@click.option("--parent-password-file", type=click.Path(dir_okay=False),
              help="Password of the parent CA's key (else $YINXIN_PARENT_CA_PASSWORD or a prompt).")
@click.option("--base-url", help="Base URL for CRL distribution point and AIA in issued certificates.")
@click.option("--sm2-id", help="SM2 distinguishing ID (default 1234567812345678).")
@ca_password_option
@session_option
@operator_option
@json_option
@pass_ctx
def ca_init(ctx: Context, name: str, subject: str, algorithm: str, days: int, parent: str | None,
            parent_password_file: str | None, base_url: str | None, sm2_id: str | None,
            ca_password_file: str | None, session_file: str | None, operator: str | None) -> None:
    """Create a self-signed root CA or a subordinate CA (a CA operator's act).  A new home's first root,
    before any account exists, needs no session (recorded as service:bootstrap); create the first
    admin next (yinxin account create ID --roles admin)."""
    authority = _authority(ctx)
    actor = None
    if session_file is None and operator is None and parent is None:
        from pki.accounts.accounts import Accounts
        accounts = Accounts.of(authority.home)
        if accounts.bootstrap_open():
            actor = accounts.bootstrap_actor()
    if actor is None:
        actor = _operator(ctx, authority, session_file, operator, "ca_operator")
    password = read_password(ca_password_file, env="YINXIN_CA_PASSWORD", prompt="New CA key password",
                             confirm=True)
    parent_pw = None
    if parent:
        parent_pw = read_password(parent_password_file, env="YINXIN_PARENT_CA_PASSWORD",
                                  prompt=f"Password of CA {parent}")
    if sm2_id is not None and algorithm != "sm2":
        raise click.UsageError("--sm2-id applies to SM2 CAs only")
    info = authority.init_ca(name=name, subject=subject, algorithm=algorithm, password=password, days=days,
                             parent=parent, parent_password=parent_pw, base_url=base_url,
                             sm2_id=sm2_id.encode() if sm2_id is not None else None, actor=actor)
    ctx.emit(info.to_dict(), f"CA {info.name} created ({info.algorithm}), serial {info.serial.upper()}\n"
                             f"certificate: {authority.home.ca_dir(info.name) / 'ca.pem'}")


@ca_group.command("apply")
@click.option("--ca", "ca_name", help="CA to apply to (default: the only/default CA).")
@click.option("--profile", required=True)
@click.option("--subject", required=True)
@click.option("--applicant", help="Who applies, when an RA officer files it for someone (default: you; "
                                 "neither may approve it).")
@click.option("--id-number", help="Identity number (personal certificates: one person, one certificate).")
@click.option("--csr", type=click.Path(dir_okay=False), help="PKCS#10 request (PEM or DER).")
@click.option("--generate-key", is_flag=True, help="Generate the key here instead of a CSR.")
@click.option("--key-out", type=click.Path(dir_okay=False), help="Where the generated key is written (encrypted).")
@click.option("--key-password-file", type=click.Path(dir_okay=False),
              help="Password for the generated key (else $YINXIN_KEY_PASSWORD or a prompt).")
@click.option("--algorithm", help="Algorithm of a generated key (default: the CA's).")
@click.option("--san", multiple=True, help="subjectAltName, e.g. dns:host.example, ip:127.0.0.1, email:a@b.")
@click.option("--evidence", multiple=True, type=click.Path(dir_okay=False), help="Evidence file (repeatable).")
@session_option
@json_option
@pass_ctx
def ca_apply(ctx: Context, ca_name: str | None, profile: str, subject: str, applicant: str | None,
             id_number: str | None, csr: str | None, generate_key: bool, key_out: str | None,
             key_password_file: str | None, algorithm: str | None, san: tuple[str, ...],
             evidence: tuple[str, ...], session_file: str | None) -> None:
    """Submit a certificate application; prints its id."""
    if bool(csr) == bool(generate_key):
        raise click.UsageError("give either --csr FILE or --generate-key --key-out FILE")
    if generate_key and not key_out:
        raise click.UsageError("--generate-key needs --key-out FILE")
    sans = []
    for item in san:
        kind, sep, value = item.partition(":")
        if not sep or kind not in ("dns", "ip", "email", "uri"):
            raise click.UsageError(f"--san {item!r}: use dns:NAME, ip:ADDRESS, email:ADDRESS or uri:URI")
        sans.append((kind, value))
    authority = _authority(ctx)
    actor = acting(ctx, authority.home, session_file)
    key_password = None
    if generate_key:
        key_password = read_password(key_password_file, env="YINXIN_KEY_PASSWORD", prompt="Key password",
                                     confirm=True)
    app = authority.ra.apply(ca=ca_name, profile=profile, subject=subject, actor=actor, applicant=applicant,
                             id_number=id_number, csr=read_input(csr, "CSR") if csr else None,
                             generate_key_out=key_out if generate_key else None, key_password=key_password,
                             key_algorithm=algorithm, evidence_files=evidence, subject_alt_names=sans)
    ctx.emit(app.to_dict(), str(app.id))


@ca_group.command("approve")
@click.argument("application", type=int)
@click.option("--comment")
@session_option
@operator_option
@json_option
@pass_ctx
def ca_approve(ctx: Context, application: int, comment: str | None, session_file: str | None,
               operator: str | None) -> None:
    """Approve a submitted application: an RA officer's signed decision (never the applicant's)."""
    authority = _authority(ctx)
    actor = _operator(ctx, authority, session_file, operator, "ra_officer")
    app = authority.ra.approve(application, actor=actor, comment=comment)
    ctx.emit(app.to_dict(), f"application {app.id} approved by {app.decided_by}")


@ca_group.command("reject")
@click.argument("application", type=int)
@click.option("--reason", required=True)
@session_option
@operator_option
@json_option
@pass_ctx
def ca_reject(ctx: Context, application: int, reason: str, session_file: str | None, operator: str | None) -> None:
    """Reject a submitted application with a reason: an RA officer's signed decision."""
    authority = _authority(ctx)
    actor = _operator(ctx, authority, session_file, operator, "ra_officer")
    app = authority.ra.reject(application, actor=actor, reason=reason)
    ctx.emit(app.to_dict(), f"application {app.id} rejected by {app.decided_by}")


def _write_issued(ctx: Context, issued, out: str, chain_out: str | None) -> None:  # type: ignore[no-untyped-def]
    write_file_atomic(out, issued.pem(), mode=0o644)
    if chain_out:
        write_file_atomic(chain_out, issued.chain_pem(), mode=0o644)
    data = issued.record.to_dict() | {"certificate": out, "chain": chain_out}
    ctx.emit(data, f"issued serial {_serial_text(issued.record.serial)} → {out}")


@ca_group.command("issue")
@click.argument("application", type=int)
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--chain-out", type=click.Path(dir_okay=False))
@ca_password_option
@session_option
@operator_option
@json_option
@pass_ctx
def ca_issue(ctx: Context, application: int, out: str, chain_out: str | None,
             ca_password_file: str | None, session_file: str | None, operator: str | None) -> None:
    """Issue the certificate of an approved application (a CA operator's act; a person's signing key
    becomes their account's)."""
    authority = _authority(ctx)
    actor = _operator(ctx, authority, session_file, operator, "ca_operator")
    app = authority.ra.get(application)
    if app.state != "approved":  # say so before asking for a password
        from pki.errors import StateError
        raise StateError(f"application {application} is {app.state}; only an approved application is issued",
                         application=application, state=app.state)
    issued = authority.issue(application, password=ca_password(ca_password_file), actor=actor)
    _write_issued(ctx, issued, out, chain_out)


@ca_group.command("renew")
@click.argument("serial")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--chain-out", type=click.Path(dir_okay=False))
@click.option("--csr", type=click.Path(dir_okay=False), help="New CSR: re-key instead of renewal.")
@click.option("--ca", "ca_name")
@ca_password_option
@session_option
@operator_option
@json_option
@pass_ctx
def ca_renew(ctx: Context, serial: str, out: str, chain_out: str | None, csr: str | None,
             ca_name: str | None, ca_password_file: str | None, session_file: str | None,
             operator: str | None) -> None:
    """Renew (same key, within the renewal window) or re-key (--csr) a certificate."""
    authority = _authority(ctx)
    actor = _operator(ctx, authority, session_file, operator, "ca_operator")
    authority.show(serial, ca=ca_name)  # unknown serial: say so before the password prompt
    issued = authority.renew(serial, password=ca_password(ca_password_file),
                             csr=read_input(csr, "CSR") if csr else None, actor=actor, ca=ca_name)
    _write_issued(ctx, issued, out, chain_out)


def _status_command(name: str, doc: str):  # type: ignore[no-untyped-def]
    @ca_group.command(name, help=doc)
    @click.argument("serial")
    @click.option("--ca", "ca_name")
    @session_option
    @operator_option
    @json_option
    @pass_ctx
    def command(ctx: Context, serial: str, ca_name: str | None, session_file: str | None, operator: str | None) -> None:
        authority = _authority(ctx)
        actor = _operator(ctx, authority, session_file, operator, "ra_officer", "ca_operator")
        record = getattr(authority, name)(serial, actor=actor, ca=ca_name)
        ctx.emit(record.to_dict(), f"{_serial_text(record.serial)}: {record.status}")
    return command


_status_command("hold", "Suspend a certificate (certificateHold).")
_status_command("release", "Release a held certificate back to good.")


@ca_group.command("revoke")
@click.argument("serial")
@click.option("--reason", required=True, help="RFC 5280 reason, e.g. keyCompromise, superseded.")
@click.option("--ca", "ca_name")
@session_option
@operator_option
@json_option
@pass_ctx
def ca_revoke(ctx: Context, serial: str, reason: str, ca_name: str | None, session_file: str | None,
              operator: str | None) -> None:
    """Revoke a certificate with an RFC 5280 reason: a signed RA decision."""
    authority = _authority(ctx)
    actor = _operator(ctx, authority, session_file, operator, "ra_officer", "ca_operator")
    record = authority.revoke(serial, reason=reason, actor=actor, ca=ca_name)
    ctx.emit(record.to_dict(), f"{_serial_text(record.serial)}: revoked ({record.revocation_reason})")


@ca_group.command("crl")
@click.option("--ca", "ca_name")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--delta", is_flag=True, help="A delta CRL against the latest full CRL.")
@click.option("--pem", is_flag=True, help="PEM instead of DER.")
@ca_password_option
@session_option
@operator_option
@json_option
@pass_ctx
def ca_crl(ctx: Context, ca_name: str | None, out: str, delta: bool, pem: bool,
           ca_password_file: str | None, session_file: str | None, operator: str | None) -> None:
    """Generate, store and write the next full or delta CRL."""
    from asn1crypto import pem as asn1_pem
    from pki.status import generate_crl
    authority = _authority(ctx)
    actor = _operator(ctx, authority, session_file, operator, "ca_operator")
    ca = authority.get(ca_name)
    key = authority.load_key(ca, ca_password(ca_password_file))
    result = generate_crl(authority, ca, key, delta=delta, actor=actor)
    write_file_atomic(out, asn1_pem.armor("X509 CRL", result.der) if pem else result.der, mode=0o644)
    ctx.emit({"ca": result.ca, "number": result.number, "delta_base": result.delta_base,
              "this_update": result.this_update.isoformat(), "next_update": result.next_update.isoformat(),
              "entries": result.entries, "out": out},
             f"{'delta ' if delta else ''}CRL {result.number} of CA {result.ca}: {result.entries} entries → {out}")


@ca_group.command("ocsp")
@click.option("--ca", "ca_name")
@click.option("--reqin", required=True, type=click.Path(dir_okay=False))
@click.option("--respout", required=True, type=click.Path(dir_okay=False))
@ca_password_option
@json_option
@pass_ctx
def ca_ocsp(ctx: Context, ca_name: str | None, reqin: str, respout: str, ca_password_file: str | None) -> None:
    """Answer one DER OCSP request offline."""
    from pki.ocsp import load_ocsp_response
    from pki.status import respond_ocsp
    authority = _authority(ctx)
    ca = authority.get(ca_name)
    request = read_input(reqin, "OCSP request")
    key = authority.load_key(ca, ca_password(ca_password_file))
    der = respond_ocsp(authority, ca, key, request)
    write_file_atomic(respout, der, mode=0o644)
    status = load_ocsp_response(der)["response_status"].native
    ctx.emit({"ca": ca.name, "response_status": status, "out": respout}, f"OCSP response ({status}) → {respout}")


@ca_group.command("show")
@click.argument("serial")
@click.option("--ca", "ca_name")
@json_option
@pass_ctx
def ca_show(ctx: Context, serial: str, ca_name: str | None) -> None:
    """Show one certificate's record."""
    record = _authority(ctx).show(serial, ca=ca_name)
    ctx.emit(record.to_dict())


@ca_group.command("list")
@click.option("--status", help="reserved, issued, held, revoked or expired")
@click.option("--subject", help="Subject contains this text.")
@click.option("--ca", "ca_name")
@json_option
@pass_ctx
def ca_list(ctx: Context, status: str | None, subject: str | None, ca_name: str | None) -> None:
    """List certificates."""
    from pki.listing import list_certificates
    records = list_certificates(ctx.home, database=ctx.database, status=status, subject=subject, ca=ca_name)
    if records is None:  # not the home's own SQLite file at the current schema: through the library
        records = _authority(ctx).list(status=status, subject=subject, ca=ca_name)
    if ctx.json:
        ctx.emit({"certificates": [r.to_dict() for r in records]})
        return
    for r in records:
        click.echo(f"{r.ca:<16} {_serial_text(r.serial):<34} {r.status:<8} {r.not_after:%Y-%m-%d}  {r.subject}")


@ca_group.command("cas")
@json_option
@pass_ctx
def ca_cas(ctx: Context) -> None:
    """List the CAs of this home."""
    from pki.listing import list_cas
    infos = list_cas(ctx.home, database=ctx.database)
    if infos is None:
        infos = _authority(ctx).cas()
    if ctx.json:
        ctx.emit({"cas": [i.to_dict() for i in infos]})
        return
    for i in infos:
        click.echo(f"{i.name:<16} {i.algorithm:<10} parent={i.parent or '-':<12} {i.subject}")


@ca_group.command("stats")
@json_option
@pass_ctx
def ca_stats(ctx: Context) -> None:
    """Counts per CA and status, and applications per state."""
    stats = _authority(ctx).stats()
    if ctx.json:
        ctx.emit(stats)
        return
    for ca_name, counts in stats["cas"].items():
        click.echo(f"{ca_name}: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no certificates"))
    click.echo("applications: " + (", ".join(f"{k} {v}" for k, v in sorted(stats["applications"].items())) or "none"))


@ca_group.command("cert")
@click.option("--ca", "ca_name")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@click.option("--chain", is_flag=True, help="Write the CA's chain up to the root.")
@json_option
@pass_ctx
def ca_cert(ctx: Context, ca_name: str | None, out: str, chain: bool) -> None:
    """Write a CA's certificate (PEM)."""
    from pki.x509 import certificate_to_pem
    authority = _authority(ctx)
    ca = authority.get(ca_name)
    certs = authority.chain(ca) if chain else (ca.certificate,)
    write_file_atomic(out, b"".join(certificate_to_pem(c) for c in certs), mode=0o644)
    ctx.emit(ca.to_dict() | {"out": out}, f"CA {ca.name} certificate → {out}")


@ca_group.command("purge")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@session_option
@operator_option
@json_option
@pass_ctx
def ca_purge(ctx: Context, dry_run: bool, session_file: str | None, operator: str | None) -> None:
    """Remove records past their retention period (5 years, 10 for government profiles)."""
    from pki.ca import purge
    authority = _authority(ctx)
    actor = _operator(ctx, authority, session_file, operator, "ca_operator")
    removed = purge(authority, actor=actor, dry_run=dry_run)
    if ctx.json:
        ctx.emit({"dry_run": dry_run, "removed": [
            {"ca": p.ca, "serial": p.serial.upper(), "subject": p.subject, "ended": p.ended.isoformat(),
             "retention_years": p.retention_years} for p in removed]})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {len(removed)} certificate record(s)")
    for p in removed:
        click.echo(f"  {p.ca} {p.serial.upper()} {p.subject} (ended {p.ended:%Y-%m-%d}, kept {p.retention_years} years)")


@ca_group.command("bulk")
@click.option("--ca", "ca_name", help="CA that issues (default: the only/default CA).")
@click.option("--profile", required=True)
@click.option("--from", "from_file", required=True, type=click.Path(dir_okay=False),
              help="CSV: subject, id_number, csr[, applicant, san, algorithm]; one row per certificate.")
@click.option("--out-dir", required=True, type=click.Path(file_okay=False),
              help="Where certificates (and generated keys, encrypted) are written.")
@click.option("--approver-session", type=click.Path(dir_okay=False),
              help="The approving RA officer's session file (default: yours, if you are an RA officer too); "
                   "never a row's applicant.")
@click.option("--key-password-file", type=click.Path(dir_okay=False),
              help="Password for keys generated here (else $YINXIN_KEY_PASSWORD or a prompt).")
@click.option("--key-algorithm", help="Algorithm of generated keys (default: the CA's).")
@click.option("--batch-size", type=click.IntRange(1, 10000), default=1024, show_default=True,
              help="Certificates per transaction.")
@click.option("--processes", type=click.IntRange(0, 64), default=None,
              help="Worker processes that check rows, sign and verify (default: one per CPU, at most 4, "
                   "for 256 rows or more; 0: none, use --threads).")
@click.option("--threads", type=click.IntRange(0, 64), default=None,
              help="Without worker processes: threads that sign and verify beside the main one (default: "
                   "one per CPU, at most 4; 0: none).")
@ca_password_option
@session_option
@operator_option
@json_option
@pass_ctx
def ca_bulk(ctx: Context, ca_name: str | None, profile: str, from_file: str, out_dir: str,
            approver_session: str | None, key_password_file: str | None, key_algorithm: str | None,
            batch_size: int, processes: int | None, threads: int | None, ca_password_file: str | None,
            session_file: str | None, operator: str | None) -> None:
    """Apply for, approve and issue certificates for every row of a CSV file.

    Each row's applicant (column 'applicant', else the subject's CN) applies, the RA officer of
    --approver-session (default: you) approves — one signed decision over the whole file — and you,
    a CA operator, issue.  A bad row is reported with its line number; the others go on.  Exit status
    1 when any row failed."""
    import sys
    from pki.bulk import issue_bulk, read_rows
    rows = read_rows(read_input(from_file, "CSV file"))
    authority = _authority(ctx)
    actor = _operator(ctx, authority, session_file, operator, "ca_operator")
    approver = acting(ctx, authority.home, approver_session) if approver_session else None
    authority.get(ca_name)                                  # an unknown CA fails before any prompt
    authority.home.profiles.get(profile)
    key_password = None
    if any(r.csr is None and r.problem is None for r in rows):
        key_password = read_password(key_password_file, env="YINXIN_KEY_PASSWORD", prompt="Key password",
                                     confirm=True)
    password = ca_password(ca_password_file)
    bars: list[Any] = []

    def progress(_result: Any) -> None:
        if not bars:   # made on the first finished row: errors before it (a wrong password) stay one line
            bars.append(ctx.progress(len(rows), "issuing", " cert"))
        bars[0].update(1)

    try:
        report = issue_bulk(authority, rows, ca=ca_name, profile=profile, out_dir=out_dir, actor=actor,
                            approver=approver, ca_password=password, key_password=key_password,
                            key_algorithm=key_algorithm, csv_dir=str(Path(from_file).resolve().parent),
                            batch_size=batch_size, progress=progress, crypto_threads=threads,
                            crypto_processes=processes)
    finally:
        for bar in bars:
            bar.close()
    lines = [f"{len(report.results)} row(s): {len(report.issued)} issued, {len(report.failed)} failed "
             f"(CA {report.ca}, profile {report.profile}) → {out_dir}"]
    ctx.emit(report.to_dict(), "\n".join(lines))
    for failed in report.failed:
        click.echo(f"yinxin: line {failed.line}: {' '.join((failed.error or '').split())}", err=True)
    if report.failed:
        sys.exit(1)


@ca_group.command("check")
@click.option("--ca", "ca_name")
@json_option
@pass_ctx
def ca_check(ctx: Context, ca_name: str | None) -> None:
    """List serials reserved but never recorded as issued (possibly signed: revoke them)."""
    records = _authority(ctx).check(ca=ca_name)
    if ctx.json:
        ctx.emit({"reserved": [r.to_dict() for r in records]})
        return
    click.echo(f"{len(records)} reserved serial(s) without a recorded certificate")
    for r in records:
        click.echo(f"  {r.ca} {_serial_text(r.serial)} {r.subject}")


@cli.group("audit")
def audit_group() -> None:
    """The hash-chained audit log."""


@audit_group.command("verify")
@json_option
@pass_ctx
def audit_verify(ctx: Context) -> None:
    """Check the whole chain and every signed checkpoint; name any edited, deleted or reordered event."""
    from pki.audit import verify
    from pki.errors import AuditError
    authority = _authority(ctx)
    infos = {i.name: i for i in authority.cas()}

    def key_of(name: str):  # type: ignore[no-untyped-def]
        info = infos.get(name)
        return None if info is None else (info.public_key(), info.distid)

    report = verify(authority.home.store, key_of)
    data = {"ok": report.ok, "events": report.events, "checkpoints": report.checkpoints,
            "problems": [{"seq": p.seq, "problem": p.problem} for p in report.problems]}
    if not report.ok:
        raise AuditError("audit log does not verify: " + "; ".join(p.problem for p in report.problems),
                         **data)
    ctx.emit(data, f"audit log OK: {report.events} events, {report.checkpoints} signed checkpoints")

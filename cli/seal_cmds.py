"""`yinxin seal …`: thin calls of the seal package's API."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from pki.fileio import write_file_atomic

from .common import (Context, acting, ca_password, ca_password_option, json_option, open_home, operator_option,
                     parse_time, pass_ctx, read_input, read_password, session_option)
from .main import cli


@cli.group("seal")
def seal_group() -> None:
    """Electronic seals: create, protect, stamp PDFs and OFDs, verify."""


def _registry(ctx: Context):  # type: ignore[no-untyped-def]
    from seal.records import SealRegistry  # registers the seal tables before the home opens
    return SealRegistry(open_home(ctx))


def _seal_password(file: str | None, prompt: str = "Seal password", env: str = "YINXIN_SEAL_PASSWORD",
                   confirm: bool = False) -> bytes:
    pw = read_password(file, env=env, prompt=prompt, confirm=confirm)
    assert pw is not None
    return pw


@seal_group.command("create")
@click.argument("name")
@click.option("--org", "organisation", required=True, help="Owner organisation (drawn on the seal).")
@click.option("--type", "seal_type", required=True,
              type=click.Choice(["official", "contract", "finance", "special", "personal"]))
@click.option("--custodian", required=True, help="The seal custodian's account (印章管理员): the only one who stamps.")
@click.option("--approver-session", required=True, type=click.Path(dir_okay=False),
              help="The session file of the RA officer who approves the seal certificate (not you).")
@click.option("--ca", "ca_name", help="CA issuing the seal certificate (and signing the seal as maker).")
@click.option("--label", help="Text below the star (default per type, e.g. 合同专用章); personal: the name.")
@click.option("--subject", help="Subject DN of the seal certificate (default from the organisation).")
@click.option("--algorithm", help="Key algorithm (default: the CA's).")
@click.option("--valid-days", type=int, default=1095, show_default=True)
@click.option("--picture", type=click.Path(dir_okay=False), help="An administrator's PNG with transparency.")
@click.option("--diameter-mm", type=float, help="Size of a PNG picture (default 40 mm).")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="The custodian's initial seal password (else $YINXIN_SEAL_PASSWORD or a prompt).")
@ca_password_option
@session_option
@operator_option
@json_option
@pass_ctx
def seal_create(ctx: Context, name: str, organisation: str, seal_type: str, custodian: str, approver_session: str,
                ca_name: str | None, label: str | None, subject: str | None, algorithm: str | None,
                valid_days: int, picture: str | None, diameter_mm: float | None, password_file: str | None,
                ca_password_file: str | None, session_file: str | None, operator: str | None) -> None:
    """Create a seal: key, seal certificate, picture, and the maker's GB/T 38540 signature (a seal
    administrator who is a CA operator; an RA officer approves the certificate)."""
    registry = _registry(ctx)
    actor = acting(ctx, registry.home, session_file, claimed=operator)
    approver = acting(ctx, registry.home, approver_session)
    password = _seal_password(password_file, prompt="Initial seal password", confirm=True)
    record = registry.create(name=name, organisation=organisation, seal_type=seal_type, custodian=custodian,
                             ca=ca_name, password=password, ca_password=ca_password(ca_password_file),
                             actor=actor, approver=approver, label=label, subject=subject,
                             algorithm=algorithm, valid_days=valid_days,
                             picture_png=read_input(picture, "picture") if picture else None,
                             diameter_mm=diameter_mm)
    ctx.emit(record.to_dict(), f"seal {record.name} created ({record.algorithm}, certificate "
                               f"{record.cert_serial.upper()}); the custodian must change its password "
                               "before the first stamp" if record.must_change_password else
             f"seal {record.name} created")


@seal_group.command("list")
@json_option
@pass_ctx
def seal_list(ctx: Context) -> None:
    """List the seals of this home."""
    records = _registry(ctx).list()
    if ctx.json:
        ctx.emit({"seals": [r.to_dict() for r in records]})
        return
    for r in records:
        state = "locked" if r.locked else ("must change password" if r.must_change_password else "ready")
        click.echo(f"{r.name:<20} {r.seal_type:<9} {r.algorithm:<10} {state:<22} {r.organisation}{r.label}")


@seal_group.command("show")
@click.argument("name", required=False)
@click.option("--file", "ses_file", type=click.Path(dir_okay=False), help="Read an exported SES_Seal file.")
@json_option
@pass_ctx
def seal_show(ctx: Context, name: str | None, ses_file: str | None) -> None:
    """Show a seal record, or decode and verify an exported GB/T 38540 SES_Seal (--file)."""
    registry = _registry(ctx)
    if (name is None) == (ses_file is None):
        raise click.UsageError("give a seal NAME or --file SES_FILE")
    if name is not None:
        record = registry.get(name)
        ctx.emit(record.to_dict())
        return
    data = registry.verify_ses(read_input(ses_file, "seal file"))
    maker = registry.maker_ca(data)
    from pki.x509 import load_certificate
    ctx.emit({"es_id": data.es_id, "vendor": data.vendor, "type": data.seal_type, "name": data.name,
              "certificates": len(data.certificates), "created": data.created.isoformat(),
              "valid_start": data.valid_start.isoformat(), "valid_end": data.valid_end.isoformat(),
              "picture": f"{data.picture_type} {len(data.picture)} bytes {data.width_mm}x{data.height_mm} mm",
              "maker": load_certificate(data.maker_cert).subject.human_friendly,
              "maker_ca": maker.name if maker is not None else None,
              "maker_signature": "valid" if maker is not None else
              "intact, but the maker is not a CA of this home (not vouched for)"})


@seal_group.command("export")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(dir_okay=False))
@json_option
@pass_ctx
def seal_export(ctx: Context, name: str, out: str) -> None:
    """Write the seal in the GB/T 38540 SES_Seal DER encoding."""
    der = _registry(ctx).export(name)
    write_file_atomic(out, der, mode=0o644)
    ctx.emit({"seal": name, "out": out, "bytes": len(der)}, f"seal {name} → {out} ({len(der)} bytes, SES_Seal DER)")


@seal_group.command("passwd")
@click.argument("name")
@click.option("--password-file", type=click.Path(dir_okay=False), help="Current password.")
@click.option("--new-password-file", type=click.Path(dir_okay=False), help="New password.")
@session_option
@operator_option
@json_option
@pass_ctx
def seal_passwd(ctx: Context, name: str, password_file: str | None, new_password_file: str | None,
                session_file: str | None, operator: str | None) -> None:
    """Change a seal's password (the custodian; required before the first stamp)."""
    registry = _registry(ctx)
    actor = acting(ctx, registry.home, session_file, claimed=operator)
    registry.require_custodian(registry.get(name), actor)
    old = _seal_password(password_file, prompt="Current seal password")
    new = _seal_password(new_password_file, prompt="New seal password", env="YINXIN_NEW_SEAL_PASSWORD",
                         confirm=True)
    record = registry.change_password(name, old, new, actor=actor)
    ctx.emit(record.to_dict(), f"password of seal {name} changed")


@seal_group.command("unlock")
@click.argument("name")
@session_option
@operator_option
@json_option
@pass_ctx
def seal_unlock(ctx: Context, name: str, session_file: str | None, operator: str | None) -> None:
    """Unlock a seal locked after repeated wrong passwords (a seal administrator, not the custodian; audited)."""
    registry = _registry(ctx)
    actor = acting(ctx, registry.home, session_file, claimed=operator)
    record = registry.unlock(name, actor=actor)
    ctx.emit(record.to_dict(), f"seal {name} unlocked by {actor.account_id}")


@seal_group.command("image")
@click.argument("name")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="FILE.png, FILE.svg or FILE.pdf")
@json_option
@pass_ctx
def seal_image(ctx: Context, name: str, out: str) -> None:
    """Write a preview of the seal's picture."""
    from seal.appearance import write_preview
    record = _registry(ctx).get(name)
    write_preview(record.drawing(), out)
    ctx.emit({"seal": name, "out": out}, f"seal {name} picture → {out}")


def _placement(page: int | None, at: str | None, anchor: str | None, field: str | None):  # type: ignore[no-untyped-def]
    from seal.pdf_placement import AnchorText, AtPosition, ExistingField
    chosen = [x for x in (at, anchor, field) if x is not None]
    if len(chosen) != 1:
        raise click.UsageError("place the seal with exactly one of --at X,Y (with --page), --anchor TEXT "
                               "or --field NAME")
    if at is not None:
        try:
            x_text, y_text = at.split(",")
            return AtPosition(page if page is not None else 1, float(x_text), float(y_text))
        except ValueError:
            raise click.UsageError(f"--at {at!r}: give X,Y in millimetres, e.g. --at 150,60") from None
    if page is not None:
        raise click.UsageError("--page goes with --at")
    if anchor is not None:
        return AnchorText(anchor)
    return ExistingField(field)  # type: ignore[arg-type]


def timestamp_options(f):  # type: ignore[no-untyped-def]
    """--timestamp-url / --tsa (with --tsa-password-file): where timestamps come from."""
    for option in reversed([
        click.option("--timestamp-url", help="An RFC 3161 TSA over HTTP (e.g. yinxin serve's /tsa/NAME)."),
        click.option("--tsa", "tsa_name", help="This home's TSA NAME, in process."),
        click.option("--tsa-password-file", type=click.Path(dir_okay=False),
                     help="Password of the TSA's key (else $YINXIN_TSA_PASSWORD or a prompt)."),
    ]):
        f = option(f)
    return f


def _timestamper(home, timestamp_url: str | None, tsa_name: str | None,  # type: ignore[no-untyped-def]
                 tsa_password_file: str | None, *, required: bool = False):
    """A pki.tsa.Timestamper from the options (None when neither is given and none is required)."""
    if timestamp_url and tsa_name:
        raise click.UsageError("give --tsa NAME or --timestamp-url URL, not both")
    if timestamp_url:
        if not timestamp_url.startswith(("http://", "https://")):
            raise click.UsageError("--timestamp-url must be an http:// or https:// URL")
        from pki.tsa import HttpTimestamper
        return HttpTimestamper(timestamp_url)
    if tsa_name:
        from pki.tsa import LocalTimestamper, TimestampAuthority
        authority = TimestampAuthority(home)
        authority.get(tsa_name)                 # an unknown TSA: say so before the password prompt
        password = read_password(tsa_password_file, env="YINXIN_TSA_PASSWORD", prompt="TSA key password")
        return LocalTimestamper(authority.load(tsa_name, password))
    if required:
        raise click.UsageError("give --tsa NAME or --timestamp-url URL")
    return None


def placement_options(f):  # type: ignore[no-untyped-def]
    """The placement options shared by `seal stamp`, `seal stamp-batch` and `doc seal`."""
    for option in reversed([
        click.option("--page", type=int, help="Page for --at (1-based; negative counts from the end)."),
        click.option("--at", help="Seal centre X,Y in mm from the page's lower left."),
        click.option("--anchor", help="Centre the seal over the last occurrence of this text."),
        click.option("--field", help="Seal into this existing empty signature field."),
        click.option("--riding", is_flag=True, help="Add a riding seal (骑缝章) across the right edges of all pages."),
        click.option("--riding-min-mm", type=float, default=4.0, show_default=True,
                     help="Narrowest slice of a riding seal per page; more pages repeat the seal over groups."),
    ]):
        f = option(f)
    return f


@seal_group.command("stamp")
@click.argument("input_pdf", metavar="INPUT", type=click.Path(dir_okay=False))
@click.argument("output_pdf", metavar="OUTPUT", type=click.Path(dir_okay=False))
@click.option("--seal", "seal_name", required=True)
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="Seal password (else $YINXIN_SEAL_PASSWORD or a prompt).")
@placement_options
@click.option("--reason", help="Reason recorded in the signature.")
@timestamp_options
@click.option("--with-validation-info", is_flag=True,
              help="Embed the chains and CRLs/OCSP of the signer and of the TSA (DSS): PAdES B-LT.")
@click.option("--archive-timestamp", is_flag=True,
              help="Then add a document timestamp over it all: PAdES B-LTA (needs --tsa or --timestamp-url).")
@session_option
@operator_option
@json_option
@pass_ctx
def seal_stamp(ctx: Context, input_pdf: str, output_pdf: str, seal_name: str, password_file: str | None,
               page: int | None, at: str | None, anchor: str | None, field: str | None, riding: bool,
               riding_min_mm: float, reason: str | None, timestamp_url: str | None, tsa_name: str | None,
               tsa_password_file: str | None, with_validation_info: bool, archive_timestamp: bool,
               session_file: str | None, operator: str | None) -> None:
    """Stamp = sign: seal a PDF (incremental update, PAdES; with a timestamp if asked) or an OFD
    (GB/T 38540 SES_Signature, SM2 seals only); the format is told by content — the seal's
    custodian, with the seal's password."""
    placement = _placement(page, at, anchor, field)
    if Path(output_pdf).resolve() == Path(input_pdf).resolve():
        raise click.UsageError("OUTPUT must not be INPUT: a seal is written to a new file")
    if not riding_min_mm > 0:
        raise click.UsageError("--riding-min-mm must be a positive number of millimetres")
    if archive_timestamp and not (timestamp_url or tsa_name):
        raise click.UsageError("--archive-timestamp needs a TSA: --tsa NAME or --timestamp-url URL")
    from seal.formats import detect_format
    from seal.service import SealService
    detect_format(input_pdf)          # neither PDF nor OFD: say so before the password prompt
    home = open_home(ctx)
    service = SealService(home)
    actor = acting(ctx, service.home, session_file, claimed=operator)
    # an unknown seal, or someone else's: say so before the password prompt
    service.registry.require_custodian(service.registry.get(seal_name), actor)
    stamper = _timestamper(home, timestamp_url, tsa_name, tsa_password_file)
    result = service.stamp_file(seal_name, _seal_password(password_file), input_pdf, output_pdf,
                                placement=placement, riding=riding, actor=actor, reason=reason,
                                timestamper=stamper, with_validation_info=with_validation_info,
                                archive_timestamp=archive_timestamp, riding_min_mm=riding_min_mm)
    fmt = getattr(result, "format", "pdf")
    stamped_at = getattr(result, "timestamp_time", None)      # an OFD seal's SES_Signature.timeStamp
    ctx.emit({"format": fmt, "output": str(result.output), "field": result.field_name, "page": result.page,
              "rect": list(result.rect), "rect_units": "mm, top-left origin" if fmt == "ofd" else "pt, user space",
              "riding_pages": result.riding_pages,
              "signature_algorithm": result.signature_algorithm, "digest_algorithm": result.digest_algorithm,
              "signing_time": result.signing_time.isoformat(), "size": result.size}
             | ({"timestamp": stamped_at.isoformat()} if stamped_at else {}),
             f"sealed with {seal_name} on page {result.page} ({result.signature_algorithm}"
             f"{', GB/T 38540' if fmt == 'ofd' else ''}"
             f"{f', timestamp {stamped_at:%Y-%m-%d %H:%M:%S} UTC' if stamped_at else ''}) → {result.output}")


@seal_group.command("stamp-batch")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option("--out-dir", required=True, type=click.Path(file_okay=False))
@click.option("--seal", "seal_name", required=True)
@click.option("--password-file", type=click.Path(dir_okay=False))
@placement_options
@click.option("--processes", type=int, default=2, show_default=True)
@click.option("--reason")
@session_option
@operator_option
@json_option
@pass_ctx
def seal_stamp_batch(ctx: Context, directory: str, out_dir: str, seal_name: str, password_file: str | None,
                     page: int | None, at: str | None, anchor: str | None, field: str | None, riding: bool,
                     riding_min_mm: float, processes: int, reason: str | None, session_file: str | None,
                     operator: str | None) -> None:
    """Seal every *.pdf and *.ofd of DIRECTORY into --out-dir (each told by its content): one
    password prompt, several processes."""
    from seal.service import SealService
    placement = _placement(page, at, anchor, field)
    if not riding_min_mm > 0:
        raise click.UsageError("--riding-min-mm must be a positive number of millimetres")
    files = sorted(p for p in Path(directory).iterdir() if p.suffix.lower() in (".pdf", ".ofd") and p.is_file())
    if not files:
        raise click.UsageError(f"no PDF or OFD files in {directory}")
    service = SealService(open_home(ctx))
    actor = acting(ctx, service.home, session_file, claimed=operator)
    service.registry.require_custodian(service.registry.get(seal_name), actor)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    password = _seal_password(password_file)
    with ctx.progress(len(files), "sealing", " file") as bar:
        items = service.stamp_many(seal_name, password, files, out_dir, placement=placement, riding=riding,
                                   actor=actor, processes=processes, reason=reason,
                                   progress=lambda done, total, item: bar.update(1), riding_min_mm=riding_min_mm)
    failed = [i for i in items if not i.ok]
    data = {"sealed": len(items) - len(failed), "failed": [{"file": str(i.source), "error": i.error} for i in failed],
            "out_dir": out_dir}
    if ctx.verbose and not ctx.json:
        for item in items:
            if item.ok:
                click.echo(f"  sealed: {item.source} → {item.output}")
    ctx.emit(data, f"sealed {len(items) - len(failed)} of {len(items)} file(s) → {out_dir}"
             + "".join(f"\n  failed: {i.source}: {i.error}" for i in failed))
    if failed:
        sys.exit(1)    # click's ctx.exit(1) is lost under main()'s standalone_mode=False


@seal_group.command("verify")
@click.argument("pdf", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--trust", multiple=True, type=click.Path(dir_okay=False),
              help="Trusted root certificate (PEM/DER), repeatable; the home's CAs are trusted too unless --offline.")
@click.option("--crl", "crl_files", multiple=True, type=click.Path(dir_okay=False),
              help="A CRL (DER or PEM) besides the home's own, to decide revocation of others' certificates.")
@click.option("--at", "at_text", help="Judge at this time (ISO 8601, e.g. 2035-06-01T08:00:00Z; default now) what "
                                      "no timestamp proves earlier (PDF).")
@click.option("--offline", is_flag=True, help="Use only the file and the --trust roots: no home records, no network "
                                              "(PDF).")
@json_option
@pass_ctx
def seal_verify(ctx: Context, pdf: str, trust: tuple[str, ...], crl_files: tuple[str, ...], at_text: str | None,
                offline: bool) -> None:
    """Verify every seal of a PDF (at the time its timestamps prove) or an OFD (told by content).

    Exit 0 valid; 1 invalid (tampered, revoked before the proven time, not a seal, a seal check
    fails); 3 indeterminate (cannot be decided: no proof of existence before the certificate
    expired, no chain to a trusted root for an OFD, revocation data missing); 2 bad input."""
    from pki.x509 import load_certificates
    from seal.service import SealService, verify_offline
    from seal.verdicts import EXIT_CODES
    at = parse_time(at_text) if at_text else None
    roots = [c for path in trust for c in load_certificates(read_input(path, "trust certificate"))]
    crls = []
    for path in crl_files:
        crl = read_input(path, "CRL")
        if crl.lstrip().startswith(b"-----BEGIN"):
            from asn1crypto import pem
            crl = pem.unarmor(crl)[2]
        crls.append(crl)
    data = read_input(pdf, "document")
    if offline:
        if not roots:
            raise click.UsageError("--offline trusts only the --trust roots: give at least one")
        if crls:
            raise click.UsageError("--offline takes the revocation data from the file: no --crl")
        report = verify_offline(data, trust=roots, at=at)
    else:
        report = SealService(open_home(ctx)).verify(data, trust=roots, crls=crls, at=at)
    if ctx.json:
        ctx.emit(report.to_dict())
    elif ctx.quiet:
        click.echo(f"document: {report.verdict.upper()}")
    elif report.format == "ofd":
        _print_ofd_report(report)
    else:
        for sig in report.signatures:
            r = sig.report
            click.echo(f"{sig.verdict.upper()}  {r.field_name} (page {r.page}) seal={sig.seal_name or '-'} "
                       f"signer={r.signer_subject} serial={r.signer_serial:X}")
            click.echo(f"       algorithm {r.algorithm}, signed {r.signing_time:%Y-%m-%d %H:%M:%S}"
                       if r.signing_time else f"       algorithm {r.algorithm}")
            if r.proof is not None:
                click.echo(f"       proven {r.proof.time:%Y-%m-%d %H:%M:%S} by {r.proof.describe()}")
            elif r.judged_at is not None:
                click.echo(f"       no timestamp proves it: judged at {r.judged_at:%Y-%m-%d %H:%M:%S}")
            click.echo(f"       intact={r.intact} coverage={r.coverage} chain={'trusted' if r.chain.trusted else 'NOT trusted'} "
                       f"revocation={r.revocation.status} certificate={sig.certificate_status or '-'}")
            if sig.seal_maker:
                click.echo(f"       seal made by {sig.seal_maker} (GB/T 38540 SES_Seal signature valid)")
            if ctx.verbose:
                click.echo(f"       digest {r.digest_algorithm}, modification level {r.modification_level}")
                if r.chain.path:
                    click.echo("       chain: " + " → ".join(r.chain.path))
                for revision in r.modified_after:
                    click.echo(f"       after it: {revision}")
            for problem in sig.problems:
                click.echo(f"       problem: {problem}")
            for note in sig.notes:
                click.echo(f"       note: {note}")
        for ts in report.engine.document_timestamps:
            click.echo(f"{ts.verdict.upper()}  document timestamp {ts.field_name} (revision {ts.revision}) "
                       f"{ts.gen_time:%Y-%m-%d %H:%M:%S} by {ts.tsa}" if ts.gen_time else
                       f"{ts.verdict.upper()}  document timestamp {ts.field_name}")
            for problem in ts.problems:
                click.echo(f"       problem: {problem}")
        for problem in report.problems:
            click.echo(f"problem: {problem}")
        click.echo(f"document: {report.verdict.upper()}" + (" (offline)" if report.offline else ""))
    code = EXIT_CODES.get(report.verdict, 1)
    if code:
        sys.exit(code)    # click's ctx.exit(n) is lost under main()'s standalone_mode=False


@seal_group.command("extend")
@click.argument("pdf", type=click.Path(dir_okay=False))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="The extended PDF (a new file).")
@timestamp_options
@session_option
@operator_option
@json_option
@pass_ctx
def seal_extend(ctx: Context, pdf: str, out: str, timestamp_url: str | None, tsa_name: str | None,
                tsa_password_file: str | None, session_file: str | None, operator: str | None) -> None:
    """Archive renewal: add fresh validation data and a new document timestamp to a sealed PDF
    (earlier signatures untouched): any logged-in account, audited under its name."""
    if Path(out).resolve() == Path(pdf).resolve():
        raise click.UsageError("--out must not be the input: the renewal is written to a new file")
    from seal.service import SealService
    home = open_home(ctx)
    actor = acting(ctx, home, session_file, claimed=operator)
    stamper = _timestamper(home, timestamp_url, tsa_name, tsa_password_file, required=True)
    result = SealService(home).extend(pdf, out, timestamper=stamper, actor=actor)
    ctx.emit({"output": str(result.output), "timestamp": result.timestamp_time.isoformat(),
              "tsa": result.tsa_subject, "tsa_certificate_not_after": result.timestamp_not_after.isoformat(),
              "signatures": result.signatures, "size": result.size},
             f"extended → {result.output}: document timestamp {result.timestamp_time:%Y-%m-%d %H:%M:%S} by "
             f"{result.tsa_subject} (valid until {result.timestamp_not_after:%Y-%m-%d})")


def _print_ofd_report(report) -> None:  # type: ignore[no-untyped-def]
    for sig in report.signatures:
        r = sig.report
        click.echo(f"{sig.verdict.upper()}  seal {r.field_name} (page {r.page}) seal={sig.seal_name or '-'} "
                   f"signer={r.signer_subject} serial={r.signer_serial:X}")
        if r.signing_time:
            click.echo(f"       signed {r.signing_time:%Y-%m-%d %H:%M:%S} UTC ({r.algorithm})")
        for check in sig.checks:
            click.echo(f"       {check.verdict:<13} {check.name}: {check.detail}")
        for label in r.modified_after:
            click.echo(f"       after it: {label}")
    for note in report.engine.notes:
        click.echo(f"note: {note}")
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    click.echo(f"document: {report.verdict.upper()}")


@seal_group.command("resign")
@click.argument("names", nargs=-1)
@click.option("--all", "all_seals", is_flag=True, help="Every seal still signed by the GM/T 0031 rule.")
@ca_password_option
@session_option
@operator_option
@json_option
@pass_ctx
def seal_resign(ctx: Context, names: tuple[str, ...], all_seals: bool, ca_password_file: str | None,
                session_file: str | None, operator: str | None) -> None:
    """Have the maker (the seal's CA) re-sign seals made before yinxin 0.2 by the GB/T 38540 rule
    (over SES_SealInfo), with a PNG picture: migration 600's second half (a CA operator; audited)."""
    from pki.accounts.accounts import Accounts
    if bool(names) == all_seals:
        raise click.UsageError("name the seals to re-sign, or give --all")
    registry = _registry(ctx)
    actor = acting(ctx, registry.home, session_file, claimed=operator)
    Accounts.of(registry.home).require(actor, any_of=("ca_operator",))   # before the password prompt
    for name in names:
        registry.get(name)            # unknown seal: say so before the password prompt
    results = registry.resign(None if all_seals else list(names), ca_password=ca_password(ca_password_file),
                              actor=actor)
    lines = [f"seal {r.seal}: " + ("re-signed by its maker (GB/T 38540 rule, PNG picture)" if r.resigned
                                   else "already signed by the GB/T 38540 rule") for r in results]
    ctx.emit({"seals": [r.to_dict() for r in results]}, "\n".join(lines) or "no seals")

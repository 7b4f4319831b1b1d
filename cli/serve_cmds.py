"""`yinxin serve` (the OCSP/CRL status service), `yinxin ca responder`, `yinxin ca import-openssl`.

Thin calls of pki.server, pki.presign and pki.openssl_import.  The library
modules are imported inside the commands: importing them registers their
tables' migrations, which only these commands should apply.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from .ca_cmds import _operator, ca_group
from .common import (Context, json_option, open_home, operator_option, pass_ctx, read_input, read_password,
                     session_option)
from .main import cli


def _env_name(ca_name: str) -> str:
    return "YINXIN_CA_PASSWORD_" + "".join(ch if ch.isalnum() else "_" for ch in ca_name).upper()


def _ca_password_files(values: tuple[str, ...]) -> tuple[str | None, dict[str, str]]:
    """--ca-password-file FILE (every CA) and --ca-password-file NAME=FILE (one CA)."""
    default, per_ca = None, {}
    for value in values:
        name, sep, path = value.partition("=")
        if sep and name and not Path(value).exists():
            per_ca[name] = path
        elif default is None:
            default = value
        else:
            raise click.UsageError("--ca-password-file FILE may be given once; use NAME=FILE for one CA")
    return default, per_ca


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True, help="Port (0: any free port).")
@click.option("--workers", type=int, default=lambda: min(os.cpu_count() or 1, 4), show_default="CPUs, at most 4",
              help="HTTP worker processes.")
@click.option("--ca", "ca_names", multiple=True, help="Serve only this CA (repeatable; default: every CA).")
@click.option("--ca-password-file", "ca_password_files", multiple=True,
              help="FILE with the CA keys' password, or NAME=FILE for one CA (else $YINXIN_CA_PASSWORD_<NAME>, "
                   "$YINXIN_CA_PASSWORD, or a prompt).  Needed to publish CRLs, and to sign OCSP responses "
                   "of a CA without a delegated responder.")
@click.option("--responder-password-file", type=click.Path(dir_okay=False),
              help="Password of the delegated OCSP responder keys (else $YINXIN_OCSP_PASSWORD).")
@click.option("--poll-ms", type=int, default=100, show_default=True,
              help="A status change committed this long before a request is reflected in its answer.")
@click.option("--max-age", type=int, default=3600, show_default=True,
              help="Cap of Cache-Control max-age (seconds) for OCSP responses and CRLs.")
@click.option("--ocsp-validity-hours", type=float, default=24.0, show_default=True,
              help="nextUpdate - thisUpdate of OCSP responses; they are re-signed at half of it.")
@click.option("--crl-interval", type=int, default=3600, show_default=True,
              help="Seconds between scheduled full and delta CRLs.")
@click.option("--crl-debounce", type=float, default=5.0, show_default=True,
              help="After a status change, publish a delta CRL once changes were quiet this long (seconds).")
@click.option("--crl-full-min-age", type=float, default=300.0, show_default=True,
              help="After a status change the full CRL is published again once the last one is this old (seconds).")
@click.option("--tsa", "tsa_names", multiple=True,
              help="Serve this TSA at /tsa/NAME (repeatable; default: every TSA whose key password is given).")
@click.option("--tsa-password-file", type=click.Path(dir_okay=False),
              help="Password of the TSA keys (else $YINXIN_TSA_PASSWORD; a prompt when --tsa is given).")
@click.option("--signers", type=int, default=lambda: min(os.cpu_count() or 1, 4), show_default="CPUs, at most 4",
              help="Signing processes for fresh signatures (OCSP nonces, unknown serials, several CertIDs; "
                   "timestamps); 0: the HTTP workers sign themselves.")
@click.option("--sign-queue", type=int, default=64, show_default=True,
              help="Fresh signatures queued or signing per HTTP worker; beyond: OCSP tryLater, TSA systemFailure.")
@click.option("--sign-share", type=float, default=0.5, show_default=True,
              help="Fraction of --sign-queue one client (address) may hold.")
@click.option("--signer-nice", type=int, default=10, show_default=True,
              help="Niceness of the signing processes: under load the CPU goes to answering first.")
@click.option("--ocsp-nonce", type=click.Choice(["sign", "presigned"]), default="sign", show_default=True,
              help="Requests with a nonce: signed now, echoing it, or answered with the pre-signed response "
                   "(RFC 5019 behaviour; the nonce is not echoed).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@json_option
@pass_ctx
def serve_command(ctx: Context, host: str, port: int, workers: int, ca_names: tuple[str, ...],
                  ca_password_files: tuple[str, ...], responder_password_file: str | None, poll_ms: int,
                  max_age: int, ocsp_validity_hours: float, crl_interval: int, crl_debounce: float,
                  crl_full_min_age: float, tsa_names: tuple[str, ...], tsa_password_file: str | None,
                  signers: int, sign_queue: int, sign_share: float, signer_nice: int, ocsp_nonce: str,
                  log_level: str) -> None:
    """Serve OCSP (GET/POST, pre-signed), CRLs, CA certificates and timestamps over HTTP until stopped.

    \b
    URLs, as `ca init --base-url` writes them into certificates:
      /ocsp/NAME (POST) and /ocsp/NAME/BASE64 (GET, RFC 5019)
      /crl/NAME.crl, /crl/NAME-delta.crl, /ca/NAME.crt
      /tsa/NAME (POST, RFC 3161)
    """
    from datetime import timedelta

    from pki.ca import CertificateAuthority
    from pki.errors import PolicyError
    from pki.presign import OcspPolicy, responder_record
    from pki.server import CrlPolicy, ServeOptions, load_served, serve
    from pki.server.signing import PoolOptions
    from pki.tsa import TimestampAuthority

    logging.basicConfig(stream=sys.stderr, level=getattr(logging, log_level.upper()),
                        format="%(asctime)s yinxin serve[%(process)d] %(levelname)s %(message)s")
    if workers < 1:
        raise click.UsageError("--workers must be at least 1")
    if signers < 0 or sign_queue < 1 or not 0 < sign_share <= 1 or not 0 <= signer_nice <= 19:
        raise click.UsageError("--signers >= 0, --sign-queue >= 1, 0 < --sign-share <= 1, 0 <= --signer-nice <= 19")
    validity = timedelta(hours=ocsp_validity_hours)
    if validity < timedelta(hours=2):
        raise click.UsageError("--ocsp-validity-hours must be at least 2")
    authority = CertificateAuthority(open_home(ctx))
    cas = [authority.get(name) for name in ca_names] if ca_names else authority.cas()
    if not cas:
        raise PolicyError("this home has no CA to serve: run `yinxin ca init` first")
    default_file, per_ca_files = _ca_password_files(ca_password_files)
    unknown = set(per_ca_files) - {ca.name for ca in cas}
    if unknown:
        raise click.UsageError(f"--ca-password-file names CAs not served here: {', '.join(sorted(unknown))}")
    responder_password = read_password(responder_password_file, env="YINXIN_OCSP_PASSWORD", required=False)
    served = []
    for ca in cas:
        has_responder = responder_record(authority, ca) is not None and responder_password is not None
        file = per_ca_files.get(ca.name, default_file)
        password = None
        if file is not None:
            password = read_password(file)
        elif os.environ.get(_env_name(ca.name)):
            password = os.environ[_env_name(ca.name)].encode()
        else:
            # without a responder the CA key signs OCSP responses: then its password is required
            password = read_password(None, env="YINXIN_CA_PASSWORD", prompt=f"Password of CA {ca.name}",
                                     required=not has_responder)
        served.append(load_served(authority, ca, ca_password=password,
                                  responder_password=responder_password if has_responder else None))
    tsa_authority = TimestampAuthority(authority.home)
    tsa_infos = [tsa_authority.get(name) for name in tsa_names] if tsa_names else tsa_authority.list()
    tsa_password = read_password(tsa_password_file, env="YINXIN_TSA_PASSWORD", prompt="Password of the TSA keys",
                                 required=bool(tsa_names)) if tsa_infos else None
    tsas = [tsa_authority.load(info.name, tsa_password, clock_shared=True) for info in tsa_infos] \
        if tsa_password is not None else []
    options = ServeOptions(
        host=host, port=port, workers=workers, poll_interval=poll_ms / 1000, max_age=max_age,
        pool=PoolOptions(signers=signers, capacity=sign_queue, share=sign_share, nice=signer_nice) if signers else None,
        nonce_policy=ocsp_nonce,
        policy=OcspPolicy(validity=validity, refresh_before=validity / 2, serve_margin=min(validity / 4,
                                                                                           timedelta(hours=1))),
        crl_policy=CrlPolicy(interval=timedelta(seconds=crl_interval), debounce=timedelta(seconds=crl_debounce),
                             max_delay=timedelta(seconds=max(60.0, crl_debounce)),
                             full_min_age=timedelta(seconds=crl_full_min_age)))

    def ready(bound_host: str, bound_port: int) -> None:
        url = f"http://{bound_host}:{bound_port}" if ":" not in bound_host else f"http://[{bound_host}]:{bound_port}"
        info = [{"ca": s.ca.name,
                 "ocsp_signer": "delegated responder" if s.signer and s.signer.delegated else "CA key",
                 "publishes_crls": s.crl_key is not None} for s in served]
        tsa_info = [{"tsa": t.info.name, "url": f"{url}/tsa/{t.info.name}", "algorithm": t.info.algorithm}
                    for t in tsas]
        skipped = [i.name for i in tsa_infos if i.name not in {t.info.name for t in tsas}]
        if ctx.json:
            click.echo(json.dumps({"url": url, "host": bound_host, "port": bound_port, "workers": workers,
                                   "signers": signers, "cas": info, "tsas": tsa_info,
                                   "tsas_not_served": skipped}))
        else:
            click.echo(f"yinxin: serving {url} with {workers} worker(s) and {signers} signer(s)")
            for item in info:
                crl_note = "publishes CRLs" if item["publishes_crls"] else \
                    "serves stored CRLs (no CA key given: not regenerated)"
                click.echo(f"  {item['ca']}: OCSP signed by {item['ocsp_signer']}, {crl_note}")
            for item in tsa_info:
                click.echo(f"  TSA {item['tsa']} ({item['algorithm']}): {item['url']}")
            if skipped:
                click.echo(f"  not serving TSA(s) {', '.join(skipped)}: no TSA key password "
                           "(--tsa-password-file or $YINXIN_TSA_PASSWORD)")
        sys.stdout.flush()

    serve(authority, served, options, tsas=tsas, on_ready=ready)


@ca_group.command("responder")
@click.option("--ca", "ca_name", help="CA whose OCSP responses the responder signs.")
@click.option("--cert", type=click.Path(dir_okay=False), help="Responder certificate (profile ocsp).")
@click.option("--key", type=click.Path(dir_okay=False), help="Responder private key (PEM/DER, PKCS#8).")
@click.option("--key-password-file", type=click.Path(dir_okay=False),
              help="Password of --key if it is encrypted (else $YINXIN_KEY_PASSWORD).")
@click.option("--responder-password-file", type=click.Path(dir_okay=False),
              help="Password the key is stored under in the home, and `yinxin serve` is given "
                   "(else $YINXIN_OCSP_PASSWORD or a prompt).")
@click.option("--show", is_flag=True, help="Show the configured responder.")
@click.option("--remove", is_flag=True, help="Stop using the responder: the CA key signs again.")
@session_option
@operator_option
@json_option
@pass_ctx
def ca_responder(ctx: Context, ca_name: str | None, cert: str | None, key: str | None,
                 key_password_file: str | None, responder_password_file: str | None, show: bool, remove: bool,
                 session_file: str | None, operator: str | None) -> None:
    """Configure the delegated OCSP responder that signs a CA's OCSP responses instead of the CA key."""
    from pki.ca import CertificateAuthority
    from pki.errors import NotFound
    from pki.presign import configure_responder, remove_responder, responder_record
    authority = CertificateAuthority(open_home(ctx))
    if show or remove:
        if cert or key:
            raise click.UsageError("--show and --remove take no --cert/--key")
        if remove:
            actor = _operator(ctx, authority, session_file, operator, "ca_operator")
            record = remove_responder(authority, ca_name, actor=actor)
            ctx.emit(record.to_dict() | {"removed": True},
                     f"CA {record.ca}: responder {record.serial.upper()} removed; the CA key signs OCSP again")
            return
        ca = authority.get(ca_name)
        record = responder_record(authority, ca)
        if record is None:
            raise NotFound(f"CA {ca.name} has no delegated OCSP responder", ca=ca.name)
        ctx.emit(record.to_dict())
        return
    if not cert or not key:
        raise click.UsageError("give --cert FILE and --key FILE (or --show / --remove)")
    actor = _operator(ctx, authority, session_file, operator, "ca_operator")
    cert_data, key_data = read_input(cert, "certificate"), read_input(key, "key")
    key_password = read_password(key_password_file, env="YINXIN_KEY_PASSWORD", required=False) \
        if key_password_file or os.environ.get("YINXIN_KEY_PASSWORD") or b"ENCRYPTED" in key_data else None
    store_password = read_password(responder_password_file, env="YINXIN_OCSP_PASSWORD",
                                   prompt="Password for the stored responder key", confirm=True)
    assert store_password is not None
    record = configure_responder(authority, ca_name, cert_data=cert_data, key_data=key_data,
                                 key_password=key_password, store_password=store_password, actor=actor)
    ctx.emit(record.to_dict(), f"CA {record.ca}: OCSP responses are signed by responder {record.serial.upper()} "
                               f"({record.subject}), valid until {record.not_after:%Y-%m-%d}")


@ca_group.command("import-openssl")
@click.option("--ca", "ca_name", help="The yinxin CA the index belongs to (default: the only/default CA).")
@click.option("--index", "index_path", required=True, type=click.Path(dir_okay=False),
              help="The `openssl ca` database (index.txt).")
@click.option("--certs", "certs_dir", type=click.Path(file_okay=False),
              help="Directory of the issued certificates (openssl's new_certs_dir): each is checked against the CA.")
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
@session_option
@operator_option
@json_option
@pass_ctx
def ca_import_openssl(ctx: Context, ca_name: str | None, index_path: str, certs_dir: str | None, dry_run: bool,
                      session_file: str | None, operator: str | None) -> None:
    """Import an `openssl ca` index.txt (and its certificates) into a CA: all lines or none, idempotently."""
    from tqdm import tqdm

    from pki.ca import CertificateAuthority
    from pki.openssl_import import import_openssl_index
    authority = CertificateAuthority(open_home(ctx))
    actor = _operator(ctx, authority, session_file, operator, "ca_operator")
    data = read_input(index_path, "index")
    bars: dict[str, tqdm] = {}
    show_bars = not (ctx.json or ctx.quiet) and sys.stderr.isatty()

    def progress(phase: str, done: int, total: int) -> None:
        if not show_bars:
            return
        bar = bars.get(phase)
        if bar is None:
            for other in bars.values():
                other.close()
            bar = bars[phase] = tqdm(total=total, desc=f"{phase:<7}", unit=" lines", file=sys.stderr,
                                     leave=False, dynamic_ncols=True)
        bar.update(done - bar.n)

    try:
        result = import_openssl_index(authority, ca_name, data, certs_dir=certs_dir, source=index_path,
                                      actor=actor, dry_run=dry_run, progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
    verb = "would add" if dry_run else "added"
    counts = ", ".join(f"{status} {n}" for status, n in sorted(result.by_status.items()))
    text = (f"CA {result.ca}: {result.lines} lines ({counts}); {verb} {result.added}, "
            f"{'would update' if dry_run else 'updated'} {result.updated}, unchanged {result.unchanged}"
            + (f"; {result.certificates_checked} certificates checked against the CA" if certs_dir else "")
            + (f"; {result.compromise_times_not_kept} compromise times / hold instructions not kept"
               if result.compromise_times_not_kept else ""))
    ctx.emit(result.to_dict(), text)

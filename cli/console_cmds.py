"""`yinxin console`: the web console and the HTTP API (thin: console.run does the work)."""
from __future__ import annotations

import json
import logging
import os
import sys

import click

from .common import Context, json_option, open_home, pass_ctx
from .main import cli


@cli.command("console")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8443, show_default=True, help="Port (0: any free port).")
@click.option("--certfile", type=click.Path(dir_okay=False, exists=True), help="TLS certificate chain (PEM).")
@click.option("--keyfile", type=click.Path(dir_okay=False, exists=True), help="TLS private key (PEM, unencrypted).")
@click.option("--workers", type=int, default=lambda: min(os.cpu_count() or 1, 4), show_default="CPUs, at most 4",
              help="Worker processes.")
@click.option("--proxy-headers", is_flag=True,
              help="TLS ends at a reverse proxy: trust its X-Forwarded-For/-Proto (from --forwarded-allow-ips).")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-* headers are trusted (comma-separated, with --proxy-headers).")
@click.option("--max-upload-mb", type=int, default=25, show_default=True, help="Largest upload (MiB).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@json_option
@pass_ctx
def console_command(ctx: Context, host: str, port: int, certfile: str | None, keyfile: str | None, workers: int,
                    proxy_headers: bool, forwarded_allow_ips: str, max_upload_mb: int, log_level: str) -> None:
    """Serve the web console (Chinese pages for the people of the flow and administrators) and the HTTP
    API under /api/v1/ (OpenAPI at /api/v1/openapi.json) until stopped.

    Plain HTTP is served on the loopback address only; elsewhere give --certfile/--keyfile or put a
    TLS proxy in front (--proxy-headers).  Several workers, and several nodes sharing one PostgreSQL
    database (--database), serve the same sessions and documents.
    """
    from console.options import ConsoleOptions
    from console.run import check_exposure, serve
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, log_level.upper()),
                        format="%(asctime)s yinxin console[%(process)d] %(levelname)s %(message)s")
    if (certfile is None) != (keyfile is None):
        raise click.UsageError("TLS needs both --certfile and --keyfile")
    if workers < 1:
        raise click.UsageError("--workers must be at least 1")
    if max_upload_mb < 1:
        raise click.UsageError("--max-upload-mb must be at least 1")
    options = ConsoleOptions(host=host, port=port, workers=workers, certfile=certfile, keyfile=keyfile,
                             proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips,
                             max_upload_bytes=max_upload_mb * 1024 * 1024)
    try:
        check_exposure(options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    import docflow  # noqa: F401  (the docflow and seal tables, before the home migrates)
    home = open_home(ctx)

    def ready(bound_host: str, bound_port: int) -> None:
        scheme = "https" if certfile else "http"
        url = f"{scheme}://{bound_host}:{bound_port}" if ":" not in bound_host else \
            f"{scheme}://[{bound_host}]:{bound_port}"
        if ctx.json:
            click.echo(json.dumps({"url": url, "host": bound_host, "port": bound_port, "workers": workers,
                                   "tls": bool(certfile)}))
        else:
            click.echo(f"yinxin: console at {url}/ with {workers} worker(s); API at {url}/api/v1/")
        sys.stdout.flush()

    serve(home, options, on_ready=ready)

"""`yinxin demo`: the main job end to end (docflow.demo) in a fresh home."""
from __future__ import annotations

import tempfile
from pathlib import Path

import click

from .common import Context, json_option, pass_ctx
from .main import cli


@cli.command("demo")
@click.option("--home", "demo_home", type=click.Path(file_okay=False),
              help="A new, empty home for the demo (default: a fresh temporary directory).")
@json_option
@pass_ctx
def demo(ctx: Context, demo_home: str | None) -> None:
    """Set up CAs, organisations and seals, walk a document through draft → sign-off → seal → send →
    receive → archive, and say where the sealed PDF and the reports are."""
    from docflow.demo import run_demo
    path = Path(demo_home) if demo_home else Path(tempfile.mkdtemp(prefix="yinxin-demo-"))
    if path.exists() and any(path.iterdir()):
        raise click.UsageError(f"{path} is not empty: the demo needs a fresh home")
    result = run_demo(path, say=(lambda _: None) if (ctx.json or ctx.quiet) else click.echo)
    data = {"home": str(result.home), "sealed_pdf": str(result.sealed_pdf), "doc_number": result.doc_number,
            "document": result.document_id, "incoming_document": result.incoming_id,
            "reports": [str(p) for p in result.reports], "out_dir": str(result.out_dir)}
    ctx.emit(data, "\n".join([
        "", f"done: {result.doc_number} sealed, sent, received, verified and archived",
        f"  home:          {result.home}", f"  sealed PDF:    {result.sealed_pdf}",
        *[f"  report:        {p}" for p in result.reports],
        f"  try:           yinxin --home {result.home} seal verify {result.sealed_pdf}",
        f"                 pdftoppm -png -r 80 {result.sealed_pdf} page"]))

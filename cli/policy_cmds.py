"""`yinxin policies export DIR`: the shipped default policies written out to be edited."""
from __future__ import annotations

import shutil
from pathlib import Path

import click

from .common import Context, json_option, pass_ctx
from .main import cli


@cli.group("policies")
def policies_group() -> None:
    """The default policies (profiles, routes, password policy, example organisation)."""


@policies_group.command("export")
@click.argument("directory", type=click.Path(file_okay=False))
@json_option
@pass_ctx
def policies_export(ctx: Context, directory: str) -> None:
    """Write the default policies into DIRECTORY (new or empty), to edit and use with
    YINXIN_POLICY_DIR=DIRECTORY or `policy_dir: DIRECTORY` in the home's config.yaml."""
    from pki.errors import PolicyError
    from pki.profiles import default_policy_dir
    source = default_policy_dir()
    target = Path(directory)
    if target.exists() and any(target.iterdir()):
        raise PolicyError(f"{target} is not empty: export into a new or empty directory", file=str(target))
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix != ".py"
                   and "__pycache__" not in p.parts)
    staging = target.parent / f".{target.name}.exporting"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        for path in files:
            out = staging / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out)
        if target.exists():
            target.rmdir()
        staging.rename(target)        # all files or none
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PolicyError(f"cannot write {target}: {exc.strerror}", file=str(target)) from None
    names = [str(p.relative_to(source)) for p in files]
    ctx.emit({"directory": str(target), "files": names},
             f"{len(names)} policy files → {target}\n"
             f"use them with: export YINXIN_POLICY_DIR={target.resolve()}   "
             f"(or policy_dir: {target.resolve()} in HOME/config.yaml)")

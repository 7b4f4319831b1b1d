"""`yinxin doctor`: what this installation has, what it lacks, and what each missing piece costs.

pip installs yinxin's Python dependencies; a few pieces come from the operating system. The doctor
names each one that is missing, what yinxin does without it, and the one command that installs it
(Debian/Ubuntu package names; the README's library section repeats the table).
"""
from __future__ import annotations

import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .common import Context, json_option, pass_ctx
from .main import cli

_LIBRARIES = ("cryptography", "asn1crypto", "pyhanko", "pyhanko-certvalidator", "gmssl", "tongsuopy",
              "pikepdf", "sqlalchemy", "click", "argon2-cffi", "starlette", "uvicorn")
#: tool -> (version command, extra places to look beyond PATH)
_TOOLS: dict[str, tuple[list[str], list[str]]] = {
    "openssl": (["version"], []),
    "pdfsig": (["-v"], []),
    "qpdf": (["--version"], []),
    "pdftoppm": (["-v"], []),
    "fc-match": (["--version"], []),
    "psql": (["--version"], []),
    "postgres": (["--version"], ["/usr/lib/postgresql/*/bin"]),
    "wrk": (["-v"], []),
    "chromium": (["--version"], []),
    "chromedriver": (["--version"], []),
    "faketime": (["--version"], []),
}


@dataclass(frozen=True)
class Piece:
    """Something pip cannot install: how to tell it is there, what its absence costs, how to get it."""
    name: str
    present: Callable[[dict[str, Any]], bool]
    cost: str
    install: str


PIECES = (
    Piece("libbotan-2-19 (fast SM2)", lambda r: r["sm2_backend"]["botan_library"] is not None,
          "SM2 runs on the next backend: native (tongsuopy) signs ~3.5× slower (2,870 against 9,972 "
          "signatures/s here), the pure-Python gmssl ~45× slower",
          "apt-get install libbotan-2-19"),
    Piece("CJK font", lambda r: r["cjk_font"] is not None,
          "seal pictures cannot be drawn (seal create without --picture fails) and documents cannot be "
          "typeset in Chinese", "apt-get install fontconfig fonts-noto-cjk"),
    Piece("openssl (command line)", lambda r: r["tools"]["openssl"] is not None,
          "evidence bundles' verify.sh and the independent checks in the docs cannot run",
          "apt-get install openssl"),
    Piece("poppler-utils (pdfsig, pdftoppm)", lambda r: r["tools"]["pdfsig"] is not None,
          "no independent PDF signature check or page rendering outside yinxin (the demo's rendering "
          "step and the tests need it; yinxin itself does not)", "apt-get install poppler-utils"),
    Piece("qpdf", lambda r: r["tools"]["qpdf"] is not None,
          "no independent structural check of sealed PDFs (demo and tests)", "apt-get install qpdf"),
    Piece("PostgreSQL", lambda r: r["tools"]["postgres"] is not None or r["tools"]["psql"] is not None,
          "only SQLite: one node (several RA/CA/status nodes share a PostgreSQL)",
          "apt-get install postgresql"),
    Piece("chromium + chromium-driver", lambda r: r["tools"]["chromedriver"] is not None,
          "the console's browser tests cannot run (the console itself is unaffected)",
          "apt-get install chromium chromium-driver"),
)


def _find_tool(name: str, extra: list[str]) -> str | None:
    found = shutil.which(name)
    if found or not extra:
        return found
    for pattern in extra:
        for directory in sorted(glob.glob(pattern), reverse=True):
            candidate = Path(directory) / name
            if os.access(candidate, os.X_OK):
                return str(candidate)
    return None


def _run_quiet(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = proc.stdout.strip() or proc.stderr.strip()
    return text.splitlines()[0] if text else ""


def _cjk_font() -> dict[str, str] | None:
    if not shutil.which("fc-list") or not shutil.which("fc-match"):
        return None
    try:
        listed = subprocess.run(["fc-list", ":lang=zh-cn", "file"], capture_output=True, text=True, timeout=10)
        if not listed.stdout.strip():
            return None
        best = subprocess.run(["fc-match", "-f", "%{family[0]}\t%{file}", ":lang=zh-cn"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    family, _, file = best.stdout.partition("\t")
    return {"family": family, "file": file} if file else None


def _database(ctx: Context) -> dict[str, Any]:
    """The home's database and its schema version, read without creating or migrating anything."""
    from pki.errors import YinxinError
    from pki.store import SCHEMA_VERSION, Store, _safe_url, sqlite_url
    home = ctx.home.expanduser()
    url = ctx.database or os.environ.get("YINXIN_DATABASE")
    if url is None:
        config = home / "config.yaml"
        if config.is_file():
            import yaml
            try:
                url = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("database")
            except (yaml.YAMLError, AttributeError):
                url = None
    db_file = home / "yinxin.db"
    if url is None and not db_file.exists():
        return {"url": None, "schema": None, "code_schema": SCHEMA_VERSION, "state": "not created yet"}
    url = url or sqlite_url(str(db_file))
    try:
        versions = Store.inspect_schema(url)
    except Exception as exc:  # any driver error: say it, the doctor must not fail
        message = exc.message if isinstance(exc, YinxinError) else " ".join(str(exc).split())[:200]
        return {"url": _safe_url(url), "schema": None, "code_schema": SCHEMA_VERSION,
                "state": f"cannot read: {message}"}
    schema = max(versions) if versions else None
    state = ("empty" if schema is None else "newer than this yinxin: upgrade yinxin" if schema > SCHEMA_VERSION
             else "current" if schema == SCHEMA_VERSION else "older: migrated on first use")
    return {"url": _safe_url(url), "schema": schema, "code_schema": SCHEMA_VERSION, "state": state}


def doctor_report(ctx: Context) -> dict[str, Any]:
    import pki
    from pki.errors import YinxinError
    from pki.version import __version__
    backends = pki.available_backends()
    try:
        in_use: str | None = pki.default_backend().name
        backend_error = None
    except YinxinError as exc:
        in_use, backend_error = None, exc.message
    libraries: dict[str, str | None] = {}
    for dist in _LIBRARIES:
        try:
            libraries[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            libraries[dist] = None
    try:
        from cryptography.hazmat.backends.openssl import backend as crypto_backend
        crypto_openssl: str | None = crypto_backend.openssl_version_text()
    except Exception:  # a cryptography without the OpenSSL backend attribute
        crypto_openssl = None
    tools: dict[str, dict[str, str] | None] = {}
    for name, (args, extra) in _TOOLS.items():
        path = _find_tool(name, extra)
        tools[name] = None if path is None else {"path": path, "version": _run_quiet([path, *args])}
    try:
        from pki.sm2.botan import LIBRARY_VERSION as botan_library
    except ImportError:
        botan_library = None
    try:
        from pki.profiles import default_policy_dir
        policies: str = str(default_policy_dir())
    except YinxinError as exc:
        policies = f"missing: {exc.message}"
    report: dict[str, Any] = {
        "yinxin": __version__,
        "sm2_backend": {"in_use": in_use, "available": list(backends), "botan_library": botan_library,
                        "forced_by_env": os.environ.get("YINXIN_SM2_BACKEND") or None,
                        **({"error": backend_error} if backend_error else {})},
        "python": sys.version.split()[0],
        "libraries": libraries,
        "cryptography_openssl": crypto_openssl,
        "tools": tools,
        "cjk_font": _cjk_font(),
        "policies": {"default": policies, "in_use": os.environ.get("YINXIN_POLICY_DIR") or policies},
        "home": {"path": str(ctx.home), "exists": ctx.home.expanduser().is_dir()},
        "database": _database(ctx),
    }
    report["missing"] = [{"piece": p.name, "cost": p.cost, "install": p.install}
                         for p in PIECES if not p.present(report)]
    return report


def _doctor_text(r: dict[str, Any]) -> str:
    b = r["sm2_backend"]
    lines = [f"yinxin {r['yinxin']}",
             f"SM2 backend: {b['in_use'] or 'none: ' + b.get('error', '')}"
             f" (available: {', '.join(b['available'])}"
             + (f"; forced by YINXIN_SM2_BACKEND={b['forced_by_env']}" if b["forced_by_env"] else "") + ")",
             f"python: {r['python']}", "libraries:"]
    lines += [f"  {name}: {version or 'NOT INSTALLED'}" for name, version in r["libraries"].items()]
    if r["cryptography_openssl"]:
        lines.append(f"  (cryptography uses {r['cryptography_openssl']})")
    lines.append(f"  libbotan-2 (SM2): {b['botan_library'] or 'NOT INSTALLED'}")
    lines.append("tools:")
    for name, tool in r["tools"].items():
        lines.append(f"  {name}: " + (f"{tool['version'] or '?'} ({tool['path']})" if tool else "missing"))
    font = r["cjk_font"]
    lines.append("CJK font: " + (f"{font['family']} ({font['file']})" if font else "missing"))
    lines.append(f"policies: {r['policies']['in_use']}")
    home = r["home"]
    lines.append(f"home: {home['path']}" + ("" if home["exists"] else " (not created yet)"))
    db = r["database"]
    lines.append(f"database: {db['url'] or '-'}: schema {db['schema'] if db['schema'] is not None else '-'} "
                 f"({db['state']}; this yinxin: {db['code_schema']})")
    if r["missing"]:
        lines.append("missing (pip cannot install these):")
        for m in r["missing"]:
            lines.append(f"  {m['piece']}: {m['cost']}")
            lines.append(f"      install: {m['install']}")
    else:
        lines.append("missing: nothing")
    return "\n".join(lines)


@cli.command("doctor")
@json_option
@pass_ctx
def doctor(ctx: Context) -> None:
    """Report the version, SM2 backend, libraries, external tools, the home and its database schema,
    and what is missing with what it costs and how to install it."""
    report = doctor_report(ctx)
    ctx.emit(report, _doctor_text(report))


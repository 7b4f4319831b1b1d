"""A light command starts light: `yinxin --version`, `--help`, every group's `--help` and the read-only
listings import none of the heavy dependencies (pyHanko, fonts, PDF engines, the web stack), and
`--version`, the help and `ca list` / `ca cas` on a home's own SQLite file not even cryptography,
SQLAlchemy or YAML.

The check runs the real command line in a fresh interpreter and reads `sys.modules` when it exits:
a module imported at the top of a command module, or by a library package's `__init__`, shows up
here — which is what made the CLI slow to start.  (Wall-clock start-up is measured by
bench/bench_startup.py, not asserted.)"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ca_helpers import cli_environment

_PROBE = r"""
import atexit, contextlib, io, json, sys
out, args = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["yinxin", *args]
from cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    main()
"""

#: never imported just to print a version, help or a listing
HEAVY = ("pyhanko", "pyhanko_certvalidator", "fontTools", "reportlab", "PIL", "pikepdf", "pypdfium2",
         "uvicorn", "uvloop", "httptools", "starlette", "jinja2", "lxml", "tqdm",
         "seal.pdf_sign", "seal.appearance", "docflow.flow")
#: not imported by commands that touch neither keys nor the database
BASIC = ("cryptography", "sqlalchemy", "yaml", "asyncio", "psycopg", "tongsuopy", "gmssl")

GROUPS = ("login", "logout", "account", "key", "ca", "audit", "seal", "org", "doc", "serve", "tsa", "demo",
          "policies", "doctor")


def _imported(home: Path, tmp_path: Path, *args: str) -> set[str]:
    out = tmp_path / "modules.json"
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(out), *args], capture_output=True,
                          env=cli_environment(home), timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return set(json.loads(out.read_text()))


def _offenders(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("args", [("--version",), ("--help",), *((g, "--help") for g in GROUPS)],
                         ids=lambda a: " ".join(a))
def test_version_and_help_import_nothing_heavy(home: Path, tmp_path: Path, args: tuple[str, ...]) -> None:
    modules = _imported(home, tmp_path, *args)
    assert _offenders(modules, HEAVY + BASIC) == []


@pytest.mark.parametrize("args", [("ca", "stats"), ("tsa", "list"), ("tsa", "stats")], ids=" ".join)
def test_listings_need_the_database_but_no_pdf_or_web_stack(home: Path, tmp_path: Path,
                                                            args: tuple[str, ...]) -> None:
    modules = _imported(home, tmp_path, *args)
    assert "sqlalchemy" in modules            # the probe itself works: the command did read the database
    assert _offenders(modules, HEAVY) == []


@pytest.fixture
def listed_home(home: Path) -> Path:
    """A home on its own SQLite file (whatever YINXIN_TEST_DATABASE says) at the current schema, with
    a CA and a certificate: what the light read path of the listings reads."""
    from ca_helpers import op_for, officer_for, person_for
    from pki.ca import CertificateAuthority
    from pki.home import Home
    opened = Home.open(home)
    authority = CertificateAuthority(opened)
    authority.init_ca(name="root", subject="/C=CN/O=印信测试/CN=根CA", algorithm="ecdsa-p256", password=b"pw",
                      actor=op_for(opened))
    app = authority.ra.apply(ca="root", profile="organization", subject="/C=CN/O=印信测试/CN=张三",
                             actor=person_for(opened, "alice"), generate_key_out=home.parent / "k.pem",
                             key_password=b"pw")
    authority.ra.approve(app.id, actor=officer_for(opened, "bob"))
    authority.issue(app.id, password=b"pw", actor=op_for(opened))
    opened.store.dispose()
    return home


@pytest.mark.parametrize("args", [("ca", "list"), ("ca", "list", "--json", "--status", "issued", "--subject", "张",
                                                   "--ca", "root"), ("ca", "list", "--status", "expired"),
                                  ("ca", "cas"), ("ca", "cas", "--json")], ids=" ".join)
def test_the_certificate_and_ca_listings_read_without_sqlalchemy(listed_home: Path, tmp_path: Path,
                                                                 args: tuple[str, ...]) -> None:
    """`ca list` and `ca cas` on a home's own SQLite file read it with sqlite3 (pki.listing): no
    SQLAlchemy, no cryptography, no YAML."""
    modules = _imported(listed_home, tmp_path, *args)
    assert "sqlite3" in modules and "pki.listing" in modules   # the probe works: the database was read
    assert _offenders(modules, HEAVY + BASIC) == []


def test_the_probe_sees_the_library_path_of_a_listing(listed_home: Path, tmp_path: Path) -> None:
    """The check can fail: the same listing forced onto the library path (the database named by
    URL) is seen importing SQLAlchemy and YAML."""
    url = f"sqlite:///{listed_home / 'yinxin.db'}"
    modules = _imported(listed_home, tmp_path, "--database", url, "ca", "list")
    assert {"sqlalchemy", "yaml"} <= set(_offenders(modules, BASIC))


def test_the_probe_sees_heavy_imports(home: Path, tmp_path: Path) -> None:
    """The check can fail: a command that does import pyHanko is seen doing so."""
    pdf = tmp_path / "not-sealed.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    out = tmp_path / "modules.json"
    subprocess.run([sys.executable, "-c", _PROBE, str(out), "seal", "verify", str(pdf)],
                   capture_output=True, env=cli_environment(home), timeout=120)
    assert "pyhanko" in set(json.loads(out.read_text()))


def test_the_names_written_out_for_the_options_are_the_librarys() -> None:
    import pki
    from cli.key_cmds import ALGORITHM_NAMES, SCHEME_NAMES
    assert ALGORITHM_NAMES == tuple(pki.ALGORITHMS) and set(SCHEME_NAMES) == set(pki.SCHEMES)

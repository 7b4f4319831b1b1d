"""The distribution carries everything it needs: an sdist and a wheel built from this checkout
(`python -m build`: the wheel is built from the unpacked sdist, so both are proven), installed into a
fresh virtual environment in a temporary folder outside the checkout, run with no YINXIN_* variable
and no checkout on the path — `import pki, seal, docflow`, `yinxin ca init`, `yinxin policies
export`, `yinxin demo` and a verification of the demo's sealed PDF.

The dependencies are installed from requirements/lock.txt (hashes checked), as bootstrap does, so
the test needs no resolver run; the wheel itself goes in with pip's own dependency check."""
from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(argv: list[str], *, cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """(the venv, a clean environment, a work folder outside the checkout)."""
    work = tmp_path_factory.mktemp("wheel-outside")
    assert REPO not in work.parents
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("YINXIN_") and k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["HOME"] = str(work)
    dist = work / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], cwd=work, env=env)
    wheels, sdists = sorted(dist.glob("yinxin-*.whl")), sorted(dist.glob("yinxin-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in dist.iterdir())
    target = work / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    py = target / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, "--require-hashes", "--no-deps", "-r", str(REPO / "requirements" / "lock.txt")], cwd=work, env=env)
    _run([*pip, str(wheels[0])], cwd=work, env=env)
    _run([str(py), "-m", "pip", "check"], cwd=work, env=env)
    return target, env, work


def test_the_packages_import_from_site_packages(installed: tuple[Path, dict[str, str], Path]) -> None:
    target, env, work = installed
    proc = _run([str(target / "bin" / "python"), "-c",
                 "import pki, seal, docflow, cli, policies; print(pki.__file__); print(policies.__file__)"],
                cwd=work, env=env)
    for line in proc.stdout.splitlines():
        assert Path(line).resolve().is_relative_to(target.resolve()), line


def test_ca_init_finds_its_profiles_in_the_wheel(installed: tuple[Path, dict[str, str], Path]) -> None:
    target, env, work = installed
    yinxin = str(target / "bin" / "yinxin")
    (work / "ca.pw").write_text("a CA password\n")
    _run([yinxin, "--home", str(work / "home"), "ca", "init", "--name", "root", "--subject", "/CN=Wheel Root",
          "--algorithm", "ecdsa-p256", "--ca-password-file", str(work / "ca.pw")], cwd=work, env=env)
    _run([yinxin, "policies", "export", str(work / "policies-copy")], cwd=work, env=env)
    assert (work / "policies-copy" / "profiles" / "seal.yaml").is_file()
    assert (work / "policies-copy" / "examples" / "beijing-test-bureau.yaml").is_file()


def test_the_demo_runs_from_the_wheel(installed: tuple[Path, dict[str, str], Path]) -> None:
    target, env, work = installed
    yinxin = str(target / "bin" / "yinxin")
    demo_home = work / "demo-home"
    _run([yinxin, "demo", "--home", str(demo_home)], cwd=work, env=env)
    sealed = demo_home / "demo" / "sealed.pdf"
    proc = _run([yinxin, "--home", str(demo_home), "seal", "verify", str(sealed)], cwd=work, env=env)
    assert "document: VALID" in proc.stdout

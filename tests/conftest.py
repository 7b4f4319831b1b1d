"""Shared fixtures, kept small and generic.

* ``home``     — a fresh yinxin home directory (also exported as YINXIN_HOME)
* ``run_cli``  — runs the real installed ``yinxin`` console script in a subprocess
* ``openssl``  — runs the OpenSSL command line, the independent judge
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable, Sequence

import pytest

from ca_helpers import SCRUBBED, cli_environment, console_script


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty yinxin home for this test (YINXIN_HOME points at it)."""
    directory = tmp_path / "yinxin-home"
    directory.mkdir()
    monkeypatch.setenv("YINXIN_HOME", str(directory))
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    return directory


RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(home: Path) -> RunCli:
    """run_cli(args, input=None, env=None) -> (exit code, stdout, stderr) of the real `yinxin`.

    `input` (str or bytes) goes to stdin, which is never a terminal here, so
    commands never prompt.  `env` adds to / overrides the test environment;
    a value of None removes the variable.
    """
    script = console_script()

    def run(args: Sequence[str], input: str | bytes | None = None,
            env: dict[str, str | None] | None = None) -> tuple[int, str, str]:
        data = input.encode() if isinstance(input, str) else input
        proc = subprocess.run([script, *map(str, args)], input=data if data is not None else b"",
                              capture_output=True, env=cli_environment(home, env), timeout=300)
        return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")

    return run


def _openssl_binary() -> str:
    found = shutil.which("openssl")
    if found is None:
        pytest.fail("openssl is not installed (run scripts/bootstrap.sh)")
    return found


@pytest.fixture(scope="session")
def openssl() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """openssl(*args, input=None, check=True) -> CompletedProcess (bytes stdout/stderr)."""
    binary = _openssl_binary()

    def run(*args: str | os.PathLike[str], input: bytes | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([binary, *map(str, args)], input=input, capture_output=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"openssl {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                                 f"{proc.stderr.decode(errors='replace')}")
        return proc

    return run

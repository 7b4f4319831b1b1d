"""The integrators' guide's library examples run as written: each ```python block of
docs/integrators.md up to the OFD section is a whole program (it makes its own home), run in a fresh
directory by the real interpreter.  The later blocks continue these or name the reader's own files
(their roots, their OFDs, a TSA's URL); they are API sketches, not programs."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ca_helpers import cli_environment

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "integrators.md"


def runnable_blocks() -> list[tuple[str, str]]:
    text = GUIDE.read_text(encoding="utf-8")
    text = text[:text.index("### OFD seals")]
    out = []
    for match in re.finditer(r"^## (.+?)$(.*?)(?=^## |\Z)", text, re.S | re.M):
        for n, block in enumerate(re.findall(r"^```python\n(.*?)^```", match.group(2), re.S | re.M)):
            out.append((f"{match.group(1)} #{n + 1}", block))
    return out


BLOCKS = runnable_blocks()


def test_the_guide_has_its_examples():
    titles = [t for t, _ in BLOCKS]
    assert len(BLOCKS) == 4, titles          # keys, accounts, a CA, seals and the flow: a test that cannot pass vacuously


@pytest.mark.parametrize("title,code", BLOCKS, ids=[t for t, _ in BLOCKS])
def test_the_example_runs_as_written(title, code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, timeout=600,
                          env=cli_environment(tmp_path / "unused-home"))
    assert proc.returncode == 0, f"{title}:\n{proc.stderr.decode(errors='replace')[-3000:]}"

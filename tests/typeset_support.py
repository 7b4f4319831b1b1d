"""Helpers of the typesetting tests: poppler's word boxes, the prescribed GB/T 9704 positions (computed
here from the standard's numbers, not from the engine), and the request typeset with fixed fields."""
from __future__ import annotations

import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

VECTORS = Path(__file__).parent / "vectors" / "typeset"
ORG = "北京市测试局"
FIELDS = dict(doc_number="京测〔2026〕1号", signers=("吴局长",), date="2026年5月8日", printed_on="2026年5月8日")
CREATED = datetime(2026, 5, 8, 2, 0, tzinfo=timezone.utc)

# GB/T 9704-2012, in millimetres: A4, 天头 37, 订口 28, 版心 156 × 225, 22 lines of 28 characters, 3号 = 16 pt
PT = 25.4 / 72
TOP, LEFT, WIDTH, HEIGHT = 37.0, 28.0, 156.0, 225.0
RIGHT, BOTTOM = LEFT + WIDTH, TOP + HEIGHT
LINE = HEIGHT / 22
CHAR = WIDTH / 28
S3, S2, S4 = 16 * PT, 22 * PT, 14 * PT


def em_top(cell_top: float, size: float) -> float:
    """A line's em box is centred in its line cell."""
    return cell_top + (LINE - size) / 2


def words(pdf: Path, page: int | None = None) -> list[tuple[str, float, float, float, float, int]]:
    """(text, xMin, yMin, xMax, yMax in mm from the top-left, page) of every word pdftotext -bbox finds."""
    args = ["pdftotext", "-bbox"] + (["-f", str(page), "-l", str(page)] if page else []) + [str(pdf), "-"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    found, n = [], (page or 1) - 1
    for line in out.splitlines():
        if "<page " in line:
            n += 1
        m = re.search(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]+)<', line)
        if m:
            found.append((m.group(5), *(float(m.group(i)) * PT for i in range(1, 5)), n))
    return found


def request(fields: bool = True, **changes):  # -> (Manuscript, Fields)
    from docflow.typeset import Fields, manuscript, parse_body
    m, _ = manuscript(parse_body((VECTORS / "request.txt").read_text(encoding="utf-8")), issuers=[ORG])
    return m.with_(**changes), Fields(**FIELDS) if fields else Fields()

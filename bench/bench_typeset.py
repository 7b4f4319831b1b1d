"""Typesetting throughput beside the time to seal the same document, measured in one run.

    python bench/bench_typeset.py [--count N]

The document is tests/vectors/typeset/request.txt: a 3-page 请示 (上行文) with two heading levels,
主送, 抄送, 附注 and the registry's fields.  For each of N documents (each with its own 发文字号):

* typeset: docflow.typeset.typeset on the default template (fonts by fontconfig, subsets embedded,
  PDF/A-2b finishing), from the manuscript to the PDF bytes;
* check: the sealing check (docflow.typeset.check_typeset) of that version against its draft;
* seal: seal.service.SealService.stamp of the same PDF with an SM2 official seal (password
  checked, key decrypted, SM2 signature, incremental update) at the place the layout reserved.

The first document (fonts read, glyphs converted) is reported apart; the goal is typesetting
≤ sealing time per document.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    import docflow  # noqa: F401  (tables)
    from docflow.typeset import Fields, check_typeset, default_template, manuscript, parse_body, typeset
    from pki.ca import CertificateAuthority
    from pki.home import Home
    from seal.pdf_placement import AtPosition
    from seal.records import SealRegistry
    from seal.service import SealService

    text = (ROOT / "tests" / "vectors" / "typeset" / "request.txt").read_text(encoding="utf-8")
    org = "北京市测试局"
    created = datetime(2026, 5, 8, tzinfo=timezone.utc)
    template = default_template()
    with tempfile.TemporaryDirectory() as tmp:
        home = Home.open(Path(tmp) / "home")
        ca = CertificateAuthority(home)
        pw, seal_pw = b"Bench-Ca-Pw-2026!", b"Bench-Seal-Pw-2026#"
        ca.init_ca(name="root", subject="/C=CN/O=bench/CN=bench SM2 root", algorithm="sm2", password=pw,
                   operator="bench")
        registry = SealRegistry(home)
        registry.create(name="official", organisation=org, seal_type="official", custodian="wang", ca="root",
                        password=b"Initial-Bench-Pw-1", ca_password=pw, operator="bench", approver="bench2")
        registry.change_password("official", b"Initial-Bench-Pw-1", seal_pw, actor="wang")
        service = SealService(home)

        t0 = time.perf_counter()
        m, _ = manuscript(parse_body(text), issuers=[org])
        draft = typeset(template, m, Fields(), created=created)
        first = time.perf_counter() - t0
        times_t, times_c, times_s = [], [], []
        pages = draft.layout.pages
        for n in range(1, args.count + 1):
            fields = Fields(doc_number=f"京测〔2026〕{n}号", signers=("吴局长",), date="2026年5月8日",
                            printed_on="2026年5月8日")
            t0 = time.perf_counter()
            m, _ = manuscript(parse_body(text), issuers=[org])
            result = typeset(template, replace(m), fields, created=created)
            t1 = time.perf_counter()
            problems = check_typeset(draft.pdf, result.pdf, result.layout, fields)
            t2 = time.perf_counter()
            assert not problems, problems
            place = result.layout.seal_places[0]
            service.stamp("official", seal_pw, result.pdf, placement=AtPosition(place.page, place.x_mm, place.y_mm),
                          actor="wang")
            t3 = time.perf_counter()
            times_t.append(t1 - t0)
            times_c.append(t2 - t1)
            times_s.append(t3 - t2)
    tm, cm, sm = (statistics.median(x) for x in (times_t, times_c, times_s))
    print(f"document: {pages}-page 请示, 2 heading levels; {args.count} documents")
    print(f"first document (fonts read, glyphs converted): {first * 1000:8.1f} ms")
    print(f"typeset  (median): {tm * 1000:8.1f} ms   {1 / tm:7.1f} documents/s")
    print(f"check    (median): {cm * 1000:8.1f} ms   (the sealing check, typeset vs draft)")
    print(f"seal SM2 (median): {sm * 1000:8.1f} ms   {1 / sm:7.1f} documents/s")
    print(f"typeset / seal = {tm / sm:.2f}   goal ≤ 1: {'met' if tm <= sm else 'NOT met'}")


if __name__ == "__main__":
    main()

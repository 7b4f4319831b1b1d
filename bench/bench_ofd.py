"""OFD seals beside PDF seals of the same SM2 seal, measured in the same run.

    python bench/bench_ofd.py [--files 40] [--repeat 3] [--signatures 20]

1. `stamp-batch` (the library's `SealService.stamp_many`, processes=2, what `yinxin seal
   stamp-batch` calls) over N one-page OFDs and over N one-page PDFs of the same text, with the
   same SM2 seal and the same placement — by anchor text (the organisation's name, as the
   document flow seals) and at a position.  Every output is fsynced and renamed into place and
   audited, as in production.  Configurations take turns; the median of `--repeat` runs is
   kept.  Goal (issue 18): OFD rate ≥ 1.0 × the PDF rate.
2. Verification (`SealService.verify`, the whole GB/T 38540 / PAdES report with chains and
   revocation from the home's records) of one OFD carrying 20 seals beside one PDF carrying 20
   signatures of the same seal: seconds per document and the ratio.
3. For scale: OpenSSL's own SM2 signing rate (`openssl speed -seconds 1 sm2`) in the same run.

The load average is printed before and after: the machine is shared.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seal.store  # noqa: E402,F401  (the seal tables before the home opens)
from pki.ca import CertificateAuthority  # noqa: E402
from pki.clock import FixedClock, SystemClock  # noqa: E402
from pki.home import Home  # noqa: E402
from seal.ofd.sample import text_ofd  # noqa: E402
from seal.pdf_placement import AnchorText, AtPosition  # noqa: E402
from seal.records import SealRegistry  # noqa: E402
from seal.service import SealService  # noqa: E402

ORG = "北京市测试局"
DATE = "2026年5月8日"
TITLE = "关于开展电子印章试点工作的通知"
BODY = "为推进电子政务建设，经研究，决定在全市开展电子印章试点工作。"
CA_PW, INITIAL, PW = b"Ca-Password-2026!", b"Initial-Seal-Pw-1", b"Custodian-Pw-2026#"


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" 1")[0].strip() if Path("/proc/loadavg").exists() else "?"


def openssl_sm2_signs() -> float | None:
    try:
        out = subprocess.run(["openssl", "speed", "-mr", "-seconds", "1", "sm2"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():        # +F7:0:256:CurveSM2:<sign/s>:<verify/s>
        if line.startswith("+F") and "sm2" in line.lower():
            try:
                return float(line.split(":")[4])
            except (ValueError, IndexError):
                return None
    return None


def make_home(base: Path) -> SealService:
    home = Home.open(base / "home", clock=FixedClock(SystemClock().now()))
    authority = CertificateAuthority(home)
    authority.init_ca(name="sm2-root", subject="/C=CN/O=bench/CN=SM2 Root", algorithm="sm2", password=CA_PW,
                      operator="ca-admin")
    registry = SealRegistry(home)
    registry.create(name="ofd-seal", organisation=ORG, seal_type="official", custodian="wang", ca="sm2-root",
                    password=INITIAL, ca_password=CA_PW, operator="admin", approver="boss")
    registry.change_password("ofd-seal", INITIAL, PW, actor="wang")
    return SealService(home)


def make_inputs(base: Path, n: int) -> tuple[Path, Path]:
    from docflow.sample import make_document_pdf
    ofd_dir, pdf_dir = base / "in-ofd", base / "in-pdf"
    ofd_dir.mkdir()
    pdf_dir.mkdir()
    ofd = text_ofd([[TITLE, BODY, "特此通知。", (ORG, 130, 250, 5), (DATE, 130, 260, 5)]])
    pdf = make_document_pdf(TITLE, ORG, DATE, [BODY, "特此通知。"])
    for i in range(n):
        (ofd_dir / f"doc{i:03d}.ofd").write_bytes(ofd)
        (pdf_dir / f"doc{i:03d}.pdf").write_bytes(pdf)
    return ofd_dir, pdf_dir


def batch(service: SealService, source: Path, out: Path, placement) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    files = sorted(source.iterdir())
    started = time.perf_counter()
    items = service.stamp_many("ofd-seal", PW, files, out, placement=placement, actor="wang", processes=2)
    elapsed = time.perf_counter() - started
    failed = [i for i in items if not i.ok]
    if failed:
        raise SystemExit(f"{len(failed)} failed: {failed[0].error}")
    return len(items) / elapsed


def many_seals(service: SealService, data: bytes, n: int) -> bytes:
    for i in range(n):
        data = service.stamp("ofd-seal", PW, data, placement=AtPosition(1, 30 + (i % 8) * 20, 40 + (i // 8) * 50),
                             actor="wang").pdf
    return data


def timed_verify(service: SealService, data: bytes, repeat: int) -> tuple[float, str]:
    times, verdict = [], ""
    for _ in range(repeat):
        started = time.perf_counter()
        report = service.verify(data)
        times.append(time.perf_counter() - started)
        verdict = report.verdict
    return statistics.median(times), verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--signatures", type=int, default=20)
    args = parser.parse_args()
    print(f"load average before: {loadavg()}  (2 cores shared)")
    with tempfile.TemporaryDirectory(prefix="bench-ofd-") as tmp:
        base = Path(tmp)
        service = make_home(base)
        ofd_dir, pdf_dir = make_inputs(base, args.files)
        print(f"\n1. stamp-batch of {args.files} one-page documents, SM2 seal, processes=2 "
              f"(median of {args.repeat}, configurations taking turns)")
        print(f"{'placement':<22}{'OFD files/s':>13}{'PDF files/s':>13}{'OFD / PDF':>11}")
        results = {}
        placements = {"anchor (org. name)": AnchorText(ORG), "at 150,60 mm": AtPosition(1, 150, 60)}
        batch(service, ofd_dir, base / "out-ofd", AtPosition(1, 150, 60))     # warm-up: imports, fonts, pools
        batch(service, pdf_dir, base / "out-pdf", AtPosition(1, 150, 60))
        for label, placement in placements.items():
            rates: dict[str, list[float]] = {"ofd": [], "pdf": []}
            for r in range(args.repeat):
                order = ("ofd", "pdf") if r % 2 == 0 else ("pdf", "ofd")
                for kind in order:
                    source = ofd_dir if kind == "ofd" else pdf_dir
                    rates[kind].append(batch(service, source, base / f"out-{kind}", placement))
            ofd, pdf = statistics.median(rates["ofd"]), statistics.median(rates["pdf"])
            results[label] = ofd / pdf
            print(f"{label:<22}{ofd:>13.1f}{pdf:>13.1f}{ofd / pdf:>11.2f}")
        print("goal OFD/PDF >= 1.0: " + ", ".join(f"{k} {'met' if v >= 1.0 else 'NOT met'} ({v:.2f})"
                                                 for k, v in results.items()))

        print(f"\n2. verification of one document carrying {args.signatures} seals (median of {args.repeat})")
        ofd_one = (ofd_dir / "doc000.ofd").read_bytes()
        pdf_one = (pdf_dir / "doc000.pdf").read_bytes()
        ofd_many = many_seals(service, ofd_one, args.signatures)
        pdf_many = many_seals(service, pdf_one, args.signatures)
        ofd_s, ofd_verdict = timed_verify(service, ofd_many, args.repeat)
        pdf_s, pdf_verdict = timed_verify(service, pdf_many, args.repeat)
        print(f"OFD, {args.signatures} seals: {ofd_s:.3f} s ({ofd_verdict}, {len(ofd_many):,} bytes)")
        print(f"PDF, {args.signatures} signatures: {pdf_s:.3f} s ({pdf_verdict}, {len(pdf_many):,} bytes)")
        print(f"PDF time / OFD time: {pdf_s / ofd_s:.2f}")

    signs = openssl_sm2_signs()
    if signs:
        print(f"\n3. for scale: openssl speed sm2 signs {signs:,.0f}/s on one core")
    print(f"\nload average after: {loadavg()}")


if __name__ == "__main__":
    main()

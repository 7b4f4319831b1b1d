"""Start-up: how long the `yinxin` command takes before it does anything, and what that costs a
whole-process batch — measured against pyHanko in the same run.

    python bench/bench_startup.py [--repeat N] [--files 40] [--algorithms rsa2048,ecdsa-p256]

1. `yinxin --version`, `yinxin --help` and `yinxin ca list` (a home with one CA), each run as a
   fresh process N times; the median and the fastest wall time are printed (goals: ≤ 0.15 s,
   ≤ 0.15 s, ≤ 0.3 s).  `python -c pass` is printed beside them: the interpreter's own start.
2. A whole-process `yinxin seal stamp-batch` of 40 one-page PDFs (start, imports, opening the home,
   the seal password check, the key, the picture, every seal fsynced, the audit events) against a
   loop of pyHanko's `SimpleSigner` over the same files inside one already running process (its
   imports not counted) — goal ≥ 3× — and against the same loop as a whole process.
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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from bench_stamp import make_pdf  # noqa: E402

YINXIN = str(Path(sys.executable).parent / "yinxin")
CA_PASSWORD = "bench CA password 1"
SEAL_INITIAL = "Initial-Seal-Pw-2026!"
SEAL_PASSWORD = "Bench-Seal-Pw-2026!x"

_LOOP = r"""
import sys, time
from pathlib import Path
start = time.perf_counter()
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
imported = time.perf_counter()
key, cert, out_dir, *files = sys.argv[1:]
box = (220, 220, 340, 340)
simple = signers.SimpleSigner.load(key, cert)
for f in files:
    with open(f, "rb") as inp, open(Path(out_dir) / Path(f).name, "wb") as out:
        w = IncrementalPdfFileWriter(inp)
        signers.sign_pdf(w, signers.PdfSignatureMetadata(field_name="Sig1", subfilter=fields.SigSeedSubFilter.PADES),
                         signer=simple, new_field_spec=fields.SigFieldSpec("Sig1", on_page=0, box=box), output=out)
print(time.perf_counter() - imported)
"""


def wall(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode(errors='replace')}")
    return elapsed


def setup_home(home: Path, work: Path, algorithm: str, env: dict[str, str]) -> tuple[str, Path, Path]:
    """A home with a CA and a seal whose password was changed; returns (seal name, key, cert)
    — the key and certificate also as files for the pyHanko loop."""
    (work / "ca.pw").write_text(CA_PASSWORD + "\n")
    (work / "initial.pw").write_text(SEAL_INITIAL + "\n")
    (work / "seal.pw").write_text(SEAL_PASSWORD + "\n")
    run = lambda *a: subprocess.run([YINXIN, "--home", str(home), *a], env=env, check=True,  # noqa: E731
                                    capture_output=True)
    if not (home / "cas" / "root").exists():
        run("ca", "init", "--name", "root", "--subject", "/C=CN/O=北京市测试局/CN=Bench Root",
            "--algorithm", algorithm, "--ca-password-file", str(work / "ca.pw"))
    name = f"bench-{algorithm}"
    run("seal", "create", name, "--org", "北京市测试局", "--type", "contract", "--custodian", "wang",
        "--approver", "zhang", "--ca", "root", "--algorithm", algorithm, "--password-file",
        str(work / "initial.pw"), "--ca-password-file", str(work / "ca.pw"), "--operator", "admin")
    run("seal", "passwd", name, "--password-file", str(work / "initial.pw"), "--new-password-file",
        str(work / "seal.pw"), "--operator", "wang")
    # the same key and certificate for pyHanko, through the library (the key decrypted here)
    import pki
    from pki.home import Home
    from seal.records import SealRegistry
    registry = SealRegistry(Home.open(home))
    record = registry.get(name)
    key = pki.load_private_key(record.key_pem, SEAL_PASSWORD.encode())
    key_file, cert_file = work / f"{name}.key.pem", work / f"{name}.cert.pem"
    key_file.write_bytes(key.to_pem(None))
    from pki.x509 import certificate_to_pem
    cert_file.write_bytes(certificate_to_pem(record.certificate))
    return name, key_file, cert_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--algorithms", default="rsa2048,ecdsa-p256")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="yinxin-bench-startup-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("YINXIN_")}
    env["YINXIN_CA_PASSWORD"] = CA_PASSWORD
    try:
        home, work = tmp / "home", tmp / "work"
        work.mkdir()
        print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}")
        print("1. start-up, fresh process each time (median / fastest of "
              f"{args.repeat}, wall seconds)")
        algorithms = args.algorithms.split(",")
        seals = {alg: setup_home(home, work, alg, env) for alg in algorithms}
        for label, argv, goal in (("python -c pass", [sys.executable, "-c", "pass"], None),
                                  ("yinxin --version", [YINXIN, "--version"], 0.15),
                                  ("yinxin --help", [YINXIN, "--help"], 0.15),
                                  ("yinxin ca list", [YINXIN, "--home", str(home), "ca", "list"], 0.3)):
            times = [wall(argv, env) for _ in range(args.repeat)]
            goal_text = f"  (goal ≤ {goal:.2f} s)" if goal else ""
            print(f"   {label:<18} {statistics.median(times):6.3f} / {min(times):6.3f}{goal_text}")
        src = make_pdf(tmp / "one-page.pdf", 1)
        inputs = tmp / "in"
        inputs.mkdir()
        files = []
        for k in range(args.files):
            files.append(inputs / f"d{k:03}.pdf")
            shutil.copy(src, files[-1])
        print(f"2. {args.files} one-page PDFs: whole-process `yinxin seal stamp-batch` against a pyHanko "
              "SimpleSigner loop (best of 3, wall seconds)")
        print(f"   {'algorithm':<11} {'yinxin process':>15} {'pyHanko loop':>13} {'loop process':>13} "
              f"{'× loop':>7} {'× loop process':>15}")
        for alg in algorithms:
            name, key_file, cert_file = seals[alg]
            ours, loop, loop_process = [], [], []
            for rep in range(3):
                out = tmp / f"out-{alg}-{rep}"
                ours.append(wall([YINXIN, "--home", str(home), "seal", "stamp-batch", str(inputs), "--out-dir",
                                  str(out), "--seal", name, "--password-file", str(work / "seal.pw"),
                                  "--page", "1", "--at", "100,100", "--operator", "wang", "--quiet"], env))
                peer_out = tmp / f"peer-{alg}-{rep}"
                peer_out.mkdir()
                start = time.perf_counter()
                proc = subprocess.run([sys.executable, "-c", _LOOP, str(key_file), str(cert_file), str(peer_out),
                                       *map(str, files)], env=env, capture_output=True, text=True, check=True)
                loop_process.append(time.perf_counter() - start)
                loop.append(float(proc.stdout.strip().splitlines()[-1]))
                shutil.rmtree(out)
                shutil.rmtree(peer_out)
            o, lp, lpp = min(ours), min(loop), min(loop_process)
            print(f"   {alg:<11} {o:15.2f} {lp:13.2f} {lpp:13.2f} {lp / o:6.2f}× {lpp / o:14.2f}×"
                  + ("   (goal ≥ 3× the loop)" if alg == algorithms[0] else ""))
        print(f"load average at end: {open('/proc/loadavg').read().split()[:3]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

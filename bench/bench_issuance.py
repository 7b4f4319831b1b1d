"""Issuance throughput — certificates per second, persisted with their audit events — with 1, 2 and 4
processes on SQLite and on PostgreSQL, beside `openssl speed`'s signing rate measured in the same run.

    python bench/bench_issuance.py                         # rsa2048 and sm2, 1/2/4 processes, both engines
    python bench/bench_issuance.py --algorithms sm2 --engines sqlite --processes 1 --count 1000
    python bench/bench_issuance.py --profile               # cProfile of the single-process run
    python bench/bench_issuance.py --json
    python bench/bench_issuance.py --algorithms sm2 --engines sqlite --processes 1 --modes workers --repeat 5

What is measured: `pki.bulk.issue_bulk`, the code behind `yinxin ca bulk`, from a CSV-like list of
rows whose CSRs were made beforehand (CSR files on disk, one key per ten rows, each row its own
subject and identity number, profile `person`, leaf keys of the CA's algorithm).  Each row is read,
its CSR parsed and its proof of possession verified, the application recorded, approved, the
serial reserved, the certificate signed and its signature verified, recorded as issued, its five
audit events appended and its PEM file written — commits durable (SQLite synchronous=FULL in WAL
mode; PostgreSQL with fsync on), files made durable with one syncfs per batch.

Several processes each issue `--count` certificates from their own rows into the same database,
started together; the rate is all certificates over the time from the first start to the last
finish.  One process (one `yinxin ca bulk` run) is measured with each way of doing its public-key
work (`--modes`): "workers", the library's default for 256 rows or more (worker processes forked
for the run check the rows, sign and verify; the calling process keeps the database, audit and
files), "threads" (signing and verifying in threads beside the calling thread) and "inline"
(everything in one thread).  Runs of several processes use the default.  For one run the rate per
CPU second is printed too (the CPU seconds of all its threads and workers; `openssl speed` counts
CPU time; the PostgreSQL server's own CPU time is not in it).  The headline ratio is the one-run
wall-clock rate to `openssl speed -seconds N <alg>` signs/s, which is one core's, measured right
before and right after the run (the mean: this VM's speed drifts by ~10% over minutes); since a run with
workers or threads uses more than one core, the rate is also shown against `openssl speed -multi
<CPUs>`, the whole machine's.  And beside it, the rate at which yinxin's own library signs
(`PrivateKey.sign` on one core, the SM2 backend in use — Botan's signs about 3× faster than
`openssl speed sm2`): the ratio to it says what everything around the signature costs.

Work directories are removed only at the end.  On ext4 without a journal (this VM's root file
system), creating a file costs up to ~0.8 ms of kernel time for minutes after thousands of files
were deleted nearby (the inode allocator skips inodes deleted "recently"), against ~0.02 ms
otherwise; every certificate is a file.  So that this cannot hide in a figure, each run first
times the creation of 300 empty files in its own directory and the table shows it ("file
create"); if it is well above ~0.05 ms, pick a quieter `--work-dir`.

`--repeat N` measures every configuration N times (runs of one configuration take turns with the
others, and nothing is deleted between them): on this VM one run's CPU cost per certificate varies
by up to a fifth from run to run with the same work (all processes at once: the machine's speed,
not the code), so the goal lines give the median and the range.

PostgreSQL: `--pg-url`, else $YINXIN_TEST_PG_URL, else a throw-away cluster from scripts/pg.sh.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from a checkout too

PASSWORD = b"bench-ca-password"
OPENSSL_NAMES = {"rsa2048": "rsa2048", "sm2": "sm2", "ecdsa-p256": "ecdsap256", "rsa3072": "rsa3072"}


def openssl_speed(name: str, seconds: int, multi: int = 1) -> float:
    """Signs per second from `openssl speed -mr` (CPU seconds of one process; with `multi`, the sum
    over that many processes running at once — what the whole machine signs)."""
    extra = ["-multi", str(multi)] if multi > 1 else []
    proc = subprocess.run(["openssl", "speed", "-mr", *extra, "-seconds", str(seconds), name],
                          capture_output=True, text=True, timeout=300)
    for line in proc.stdout.splitlines():
        if line.startswith("+F") and not line.startswith("+F:"):
            return float(line.split(":")[-2])
    raise RuntimeError(f"no result line in `openssl speed {name}`:\n{proc.stdout}\n{proc.stderr}")


# --------------------------------------------------------------------------- set-up

#: who runs `ca bulk`: the CA operator, and the RA officer whose approval it records (accounts made
#: and logged in at set-up, and again by each worker before it is timed)
OFFICERS = (("bench-operator", ["ca_operator"]), ("bench-approver", ["ra_officer"]))


def make_home(directory: Path, url: str | None, algorithm: str) -> None:
    from pki.ca import CertificateAuthority
    from pki.home import Home
    directory.mkdir(parents=True)
    if url:
        (directory / "config.yaml").write_text(f"database: {url}\n", encoding="utf-8")
    from bench_accounts import logged_in
    home = Home.open(directory)
    people = logged_in(home, *OFFICERS)
    CertificateAuthority(home).init_ca(name="bench", subject="/C=CN/O=Bench/CN=Bench CA", algorithm=algorithm,
                                       password=PASSWORD, base_url="http://pki.bench.test",
                                       actor=people["bench-operator"])


def make_rows(directory: Path, algorithm: str, count: int, prefix: str) -> Path:
    """CSR files and a rows file (JSON lines) for one process."""
    from pki.algorithms import generate_key
    from pki.x509 import build_csr, csr_to_pem, parse_name
    directory.mkdir(parents=True)
    keys = [generate_key(algorithm) for _ in range(max(1, min(10, count)))]
    rows = []
    for i in range(count):
        subject = f"/C=CN/O=Bench/OU=Dept {prefix}/CN=Person {prefix}-{i}"
        csr = directory / f"{i}.csr"
        csr.write_bytes(csr_to_pem(build_csr(parse_name(subject), keys[i % len(keys)],
                                             distid=b"1234567812345678" if algorithm == "sm2" else None)))
        rows.append({"line": i + 2, "subject": subject, "id_number": f"{prefix}X{i}", "csr": str(csr)})
    path = directory / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return path


def fresh_pg_database(server_url: str, name: str) -> str:
    import psycopg
    with psycopg.connect(server_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + "/" + name


# --------------------------------------------------------------------------- one worker process

#: --modes: (crypto_processes, crypto_threads) for issue_bulk; None: the library's default
MODES: dict[str, tuple[int | None, int | None]] = {"workers": (None, None), "threads": (0, None), "inline": (0, 0)}


def worker(home: Path, rows_file: Path, out: Path, profile: bool, mode: str) -> None:
    """Wait for 'go' on stdin, issue, print timings as one JSON line."""
    import resource
    from pki.bulk import BulkRow, issue_bulk
    from pki.ca import CertificateAuthority
    from pki.home import Home
    rows = [BulkRow(**json.loads(line)) for line in rows_file.read_text(encoding="utf-8").splitlines()]
    from bench_accounts import logged_in
    authority = CertificateAuthority(Home.open(home))
    people = logged_in(authority.home, *OFFICERS)
    print("ready", flush=True)
    sys.stdin.readline()
    profiler = cProfile.Profile() if profile else None
    processes, threads = MODES[mode]

    def children_cpu() -> float:       # workers, once they have ended (issue_bulk waits for them)
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    wall, cpu = time.time(), time.process_time() + children_cpu()
    if profiler:
        profiler.enable()
    report = issue_bulk(authority, rows, ca="bench", profile="person", out_dir=out, actor=people["bench-operator"],
                        approver=people["bench-approver"], ca_password=PASSWORD, crypto_threads=threads,
                        crypto_processes=processes)
    if profiler:
        profiler.disable()
    end_wall, end_cpu = time.time(), time.process_time() + children_cpu()
    text = ""
    if profiler:
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(20)
        text = buffer.getvalue()
    print(json.dumps({"start": wall, "end": end_wall, "cpu": end_cpu - cpu, "issued": len(report.issued),
                      "failed": len(report.failed), "errors": [r.error for r in report.failed[:3]],
                      "profile": text}), flush=True)


@dataclass
class Run:
    algorithm: str
    engine: str
    processes: int
    mode: str                   # how the public-key work is done: see MODES
    certificates: int
    seconds: float
    rate: float                 # certificates per wall-clock second, all processes
    cpu_rate: float | None      # one process: certificates per CPU second of it and its workers
    openssl_sign: float         # `openssl speed`, one core: the mean of right before and right after the run
    openssl_multi: float        # `openssl speed -multi <CPUs>`: the machine's signing capacity
    library_sign: float         # yinxin's PrivateKey.sign, one core (for SM2 the default backend's)
    file_create_ms: float       # creating one file in the run's directory just before it (see above)

    @property
    def ratio(self) -> float:
        return self.rate / self.openssl_sign

    @property
    def multi_ratio(self) -> float:
        return self.rate / self.openssl_multi

    @property
    def library_ratio(self) -> float:
        return self.rate / self.library_sign

    @property
    def cpu_ratio(self) -> float | None:
        return None if self.cpu_rate is None else self.cpu_rate / self.openssl_sign


def file_create_ms(directory: Path, count: int = 300) -> float:
    """CPU milliseconds to create one empty file in a new directory here (see the module text)."""
    directory.mkdir(parents=True)
    began = time.thread_time()
    for i in range(count):
        os.close(os.open(directory / f"probe-{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return (time.thread_time() - began) / count * 1000


def library_sign_rate(algorithm: str, seconds: int) -> float:
    """Signatures per CPU second of yinxin's own `PrivateKey.sign` over 32 bytes (hashing included)."""
    from bench_keys import rate
    from pki.algorithms import generate_key
    key = generate_key(algorithm)
    return rate(lambda: key.sign(bytes(32)), seconds)


def run_once(work: Path, algorithm: str, engine: str, url: str | None, processes: int, mode: str, count: int,
             openssl_rate: Callable[[], float], openssl_multi: float, library_sign: float, profile: bool,
             progress, repetition: int = 0) -> tuple[Run, str]:
    """One measured run; `openssl_rate()` is measured right before and right after it and the mean
    taken, since this VM's speed drifts by ~10% over minutes."""
    tag = f"{algorithm}-{engine}-{processes}-{mode}-{repetition}"
    home = work / tag / "home"
    make_home(home, url, algorithm)
    rows = [make_rows(work / tag / f"rows{p}", algorithm, count, f"p{p}") for p in range(processes)]
    create_ms = file_create_ms(work / tag / "probe")
    progress(f"{tag}: {processes} process(es) × {count} certificates, public-key work: {mode}")
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(home), str(rows[p]),
                               str(work / tag / f"out{p}"), f"--mode={mode}",
                               *(["--profile"] if profile else [])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for p in range(processes)]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    openssl_before = openssl_rate()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed ({proc.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    openssl_after = openssl_rate()
    issued = sum(r["issued"] for r in results)
    if issued != processes * count:
        raise RuntimeError(f"{tag}: only {issued} of {processes * count} issued: {results[0]['errors']}")
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    cpu_rate = count / results[0]["cpu"] if processes == 1 else None
    run = Run(algorithm, engine, processes, mode, issued, seconds, issued / seconds, cpu_rate,
              (openssl_before + openssl_after) / 2, openssl_multi, library_sign, create_ms)
    return run, results[0]["profile"]


def table(runs: list[Run]) -> str:
    lines = ["| algorithm | engine | processes | public-key work | certificates | certs/s (wall) "
             "| certs/s per CPU second (1 process) | openssl sign/s (1 core) | ratio (wall) | ratio (CPU) "
             "| openssl -multi sign/s | ratio to -multi | yinxin sign/s (1 core) | ratio to it | file create ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        cpu = f"{r.cpu_rate:,.0f}" if r.cpu_rate else ""
        cpu_ratio = f"{r.cpu_ratio:.2f}" if r.cpu_ratio else ""
        lines.append(f"| {r.algorithm} | {r.engine} | {r.processes} | {r.mode} | {r.certificates:,} | {r.rate:,.0f} "
                     f"| {cpu} | {r.openssl_sign:,.0f} | {r.ratio:.2f} | {cpu_ratio} | {r.openssl_multi:,.0f} "
                     f"| {r.multi_ratio:.2f} | {r.library_sign:,.0f} | {r.library_ratio:.2f} "
                     f"| {r.file_create_ms:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        mode = next(a.split("=", 1)[1] for a in sys.argv[5:] if a.startswith("--mode="))
        worker(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), "--profile" in sys.argv[5:], mode)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", default="rsa2048,sm2")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--count", type=int, default=1000, help="certificates per process")
    parser.add_argument("--modes", default="workers,threads,inline",
                        help="how one-process runs do their public-key work: 'workers' (the library's "
                             "default: forked worker processes), 'threads', 'inline'; runs of several "
                             "processes use the default")
    parser.add_argument("--seconds", type=int, default=3, help="seconds of `openssl speed` per algorithm")
    parser.add_argument("--repeat", type=int, default=1, help="measure every configuration this many times "
                        "(the goal lines then give the median and the range)")
    parser.add_argument("--pg-url", help="PostgreSQL server (a database we may create databases from)")
    parser.add_argument("--profile", action="store_true", help="cProfile the single-process runs")
    parser.add_argument("--work-dir", help="where homes, CSRs and certificates go (default: the system's "
                        "temporary directory); on a file system shared with busy processes, file creation "
                        "can cost more than signing")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    algorithms = [a for a in args.algorithms.split(",") if a]
    engines = [e for e in args.engines.split(",") if e]
    process_counts = [int(p) for p in args.processes.split(",") if p]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in MODES for m in modes):
        parser.error(f"--modes takes {', '.join(MODES)}, separated by commas")

    def progress(message: str) -> None:
        print(f"  … {message}", file=sys.stderr, flush=True)

    started_pg = None
    pg_server = None
    if "postgresql" in engines:
        pg_server = args.pg_url or os.environ.get("YINXIN_TEST_PG_URL")
        if not pg_server:
            progress("starting a throw-away PostgreSQL with scripts/pg.sh")
            proc = subprocess.run(["bash", str(REPO / "scripts" / "pg.sh"), "start"], capture_output=True,
                                  text=True, timeout=600)
            if proc.returncode != 0:
                print(f"bench_issuance: cannot start PostgreSQL: {proc.stderr}", file=sys.stderr)
                return 2
            pg_server = started_pg = proc.stdout.strip().splitlines()[-1]
    runs: list[Run] = []
    profiles: dict[str, str] = {}
    began = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-issuance-", dir=args.work_dir) as tmp:
            work = Path(tmp)
            for algorithm in algorithms:
                progress(f"{algorithm}: openssl speed -multi {os.cpu_count()}")

                def openssl_rate(name: str = OPENSSL_NAMES[algorithm]) -> float:
                    return openssl_speed(name, args.seconds)
                openssl_multi = openssl_speed(OPENSSL_NAMES[algorithm], args.seconds, multi=os.cpu_count() or 1)
                progress(f"{algorithm}: yinxin's own signing rate")
                library_sign = library_sign_rate(algorithm, args.seconds)
                one_round = [(engine, processes, mode) for engine in engines for processes in process_counts
                             for mode in (modes if processes == 1 else ["workers"])]
                for repetition, (engine, processes, mode) in ((r, c) for r in range(args.repeat) for c in one_round):
                    url = None
                    if engine == "postgresql":
                        assert pg_server
                        url = fresh_pg_database(pg_server, f"bench_{algorithm.replace('-', '_')}_{processes}_"
                                                           f"{mode}_{repetition}")
                    run, text = run_once(work, algorithm, engine, url, processes, mode, args.count,
                                         openssl_rate, openssl_multi, library_sign,
                                         args.profile and processes == 1, progress, repetition)
                    runs.append(run)
                    if text:
                        profiles[f"{algorithm} {engine} {mode}"] = text
    finally:
        if started_pg:
            subprocess.run(["bash", str(REPO / "scripts" / "pg.sh"), "stop", started_pg], capture_output=True)
    elapsed = time.perf_counter() - began
    from pki.sm2 import default_backend
    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
           "sm2_backend": default_backend().name,
           "openssl": subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()}
    if args.json:
        print(json.dumps({"environment": env, "count": args.count, "elapsed_s": round(elapsed, 1),
                          "runs": [{**asdict(r), "ratio": r.ratio, "cpu_ratio": r.cpu_ratio,
                                    "multi_ratio": r.multi_ratio, "library_ratio": r.library_ratio} for r in runs]},
                         indent=2))
        return 0
    print(f"yinxin issuance benchmark — Python {env['python']}, {env['machine']}, {env['cpus']} CPUs, "
          f"{env['openssl']}; SM2 backend {env['sm2_backend']}; {args.count} certificates per process; "
          f"ran {elapsed:.0f} s")
    print()
    print(table(runs))
    for algorithm in algorithms:
        for engine in engines:
            for mode in modes:
                same = [r for r in runs if (r.algorithm, r.engine, r.processes, r.mode) == (algorithm, engine, 1, mode)]
                if not same:
                    continue
                ratio = statistics.median(r.ratio for r in same)
                spread = (f" (median of {len(same)} runs: {min(r.ratio for r in same):.2f}–"
                          f"{max(r.ratio for r in same):.2f})") if len(same) > 1 else ""
                verdict = "met" if ratio >= 0.5 else "NOT met"
                print(f"goal {algorithm} on {engine}, one run, public-key work {mode}: ≥ 0.5 × openssl sign/s "
                      f"(one core): {ratio:.2f} wall{spread} ({verdict}); per CPU second "
                      f"{statistics.median(r.cpu_ratio or 0 for r in same):.2f}; against the whole machine "
                      f"(openssl speed -multi): {statistics.median(r.multi_ratio for r in same):.2f}; against "
                      f"yinxin's own signing: {statistics.median(r.library_ratio for r in same):.2f}")
    for label, text in profiles.items():
        print(f"\nprofile ({label}, one process, by own time):\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

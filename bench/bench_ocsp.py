"""OCSP GET throughput and latency: `yinxin serve` beside `openssl ocsp -port`, same CA, same index, same run.

    python bench/bench_ocsp.py [--algorithms rsa2048,sm2] [--duration 10] [--connections 16]
                               [--workers 1,2] [--certs 1000] [--paths 200] [--json]

The whole benchmark runs inside its own network namespace (``unshare -n``, then ``ip link
set lo up``): `openssl ocsp -port` listens on every interface, and there the only one is a
private loopback.  For each CA algorithm the script

1. makes a yinxin home with one CA and N certificates written straight into its database
   (a tenth of them revoked with reasons, a few held), and writes the same database as an
   OpenSSL index.txt (V/R lines with revocation times and reasons) from our tables;
2. builds RFC 5019 GET requests (SHA-1 CertIDs, no nonce) for `--paths` of those serials;
3. starts `yinxin serve` (workers as given; the maintainer pre-signs every response first),
   checks that both responders give the same status for a good and a revoked serial, and
   runs `wrk` for `--duration` seconds cycling through the GET paths;
4. starts `openssl ocsp -index index.txt -port …` with the same CA key and certificate
   and runs the same wrk load against it (a Lua script overrides `wrk.resolve`: wrk's
   opening test connection would otherwise stall openssl's one-connection-at-a-time loop).

Printed: requests/s, p50/p99 latency, errors, and ours/openssl throughput.  wrk is a closed
loop (`--connections` requests in flight), so latency is measured at each server's own
saturation; openssl signs every response and closes every connection, we answer from
pre-signed responses over keep-alive connections — which is the point of the comparison.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout too

PASSWORD = b"bench-password"
CA = "bench"
REASONS = {"key_compromise": "keyCompromise", "superseded": "superseded",
           "cessation_of_operation": "cessationOfOperation", "affiliation_changed": "affiliationChanged"}
DISTID = "1234567812345678"
PAUSE_MS = 5
CALIBRATE_S = 3
#: the issue's goal: at least this many times openssl's throughput, p99 at most 10 ms at that load
TARGET_RATIO = 5

LUA = """\
local paths = {%(paths)s}
local counter = %(offset)d
-- no test connection before the run: openssl ocsp serves one connection at a time
wrk.resolve = function(host, service)
  wrk.addrs = wrk.lookup(host, service)
end
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
%(delay)s
done = function(summary, latency, requests)
  io.write(string.format('@@{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p90_us": %%d, ' ..
    '"p99_us": %%d, "max_us": %%d, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout))
end
"""


def _openssl_time(at) -> str:  # type: ignore[no-untyped-def]
    return at.strftime("%y%m%d%H%M%SZ") if 1950 <= at.year < 2050 else at.strftime("%Y%m%d%H%M%SZ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_ca(directory: Path, algorithm: str, count: int) -> tuple[list[tuple[str, str]], Path]:
    """A home with CA `bench` and `count` certificates; returns [(serial, status)] and index.txt."""
    import sqlalchemy as sa

    from pki.ca import CertificateAuthority
    from pki.home import Home
    from pki.store import certificates

    from bench_accounts import logged_in
    home = Home.open(directory / "home")
    authority = CertificateAuthority(home)
    ca = authority.init_ca(name=CA, subject=f"/C=CN/O=Bench/CN=Bench OCSP CA {algorithm}", algorithm=algorithm,
                           password=PASSWORD, days=3650,
                           actor=logged_in(home, ("ca-op", ["ca_operator"]))["ca-op"])
    rng = random.Random(1)
    now = home.clock.now()
    rows, serials = [], []
    reasons = list(REASONS)
    for i in range(count):
        serial = f"{rng.getrandbits(127) | (1 << 126):x}"
        status = "revoked" if i % 10 == 0 else ("held" if i % 37 == 0 else "issued")
        revoked_at = now - timedelta(days=rng.randrange(1, 300)) if status != "issued" else None
        reason = reasons[i % len(reasons)] if status == "revoked" else \
            ("certificate_hold" if status == "held" else None)
        rows.append(dict(ca_id=ca.id, serial=serial, profile="person", subject=f"CN=c{i}", public_key_fp="0" * 64,
                         not_before=now - timedelta(days=365), not_after=now + timedelta(days=365), status=status,
                         tbs_der=b"", revoked_at=revoked_at, revocation_reason=reason, status_changed_at=now,
                         retention_years=5, created_at=now))
        serials.append((serial, status))
    with home.store.transaction() as conn:
        conn.execute(sa.insert(certificates), rows)
    # openssl's database, written from ours
    lines = []
    with home.store.read() as conn:
        for row in conn.execute(sa.select(certificates).where(certificates.c.ca_id == ca.id)).mappings():
            hex_serial = row["serial"].upper()
            hex_serial = "0" * (len(hex_serial) % 2) + hex_serial
            if row["status"] == "issued":
                state, revocation = "V", ""
            else:
                name = "certificateHold" if row["status"] == "held" else REASONS[row["revocation_reason"]]
                state, revocation = "R", f"{_openssl_time(row['revoked_at'])},{name}"
            lines.append(f"{state}\t{_openssl_time(row['not_after'])}\t{revocation}\t{hex_serial}\tunknown\t"
                         f"/CN={row['subject'][3:]}\n")
    index = directory / "index.txt"
    index.write_text("".join(lines))
    (directory / "index.txt.attr").write_text("unique_subject = no\n")
    (directory / "password").write_bytes(PASSWORD + b"\n")
    home.store.dispose()
    return serials, index


def get_paths(directory: Path, serials: list[str]) -> list[str]:
    from pki.ocsp import OcspCertId, build_ocsp_request, issuer_hashes
    from pki.x509 import load_certificate
    cert = load_certificate((directory / "home" / "cas" / CA / "ca.pem").read_bytes())
    name_hash, key_hash = issuer_hashes(cert, "sha1")
    out = []
    for serial in serials:
        der = build_ocsp_request([OcspCertId("sha1", name_hash, key_hash, int(serial, 16))])
        out.append(urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
    return out


def status_of(url: str) -> str:
    from asn1crypto import ocsp as asn1_ocsp
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read()
    single = asn1_ocsp.OCSPResponse.load(body).basic_ocsp_response["tbs_response_data"]["responses"][0]
    return single["cert_status"].name


def wait_until_answering(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.returncode}")
        try:
            status_of(url)
            return
        except (OSError, ValueError):
            time.sleep(0.2)
    raise SystemExit(f"no answer from {url}")


def wait_presigned(db: Path, count: int, timeout: float = 600) -> None:
    import sqlite3
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        con = sqlite3.connect(db)
        try:
            done = con.execute("SELECT count(*) FROM ocsp_responses").fetchone()[0]
        except sqlite3.OperationalError:
            done = 0
        finally:
            con.close()
        if done >= count:
            return
        time.sleep(0.5)
    raise SystemExit("pre-signing did not finish")


def _wrk(base: str, script: Path, connections: int, threads: int, duration: int) -> dict[str, float]:
    proc = subprocess.run(["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{duration}s",
                           "--timeout", "5s", "-s", str(script), base], capture_output=True, text=True,
                          timeout=duration + 60)
    marker = proc.stdout.rfind("@@")
    if proc.returncode != 0 or marker < 0:
        raise SystemExit(f"wrk failed: {proc.stdout}\n{proc.stderr}")
    data = json.loads(proc.stdout[marker + 2:].splitlines()[0])
    seconds = data["duration_us"] / 1e6
    return {"rps": data["requests"] / seconds, "p50_ms": data["p50_us"] / 1000, "p90_ms": data["p90_us"] / 1000,
            "p99_ms": data["p99_us"] / 1000, "max_ms": data["max_us"] / 1000,
            "errors": sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))}


def run_wrk(base: str, paths: list[str], directory: Path, name: str, args: argparse.Namespace, *,
            rate: float | None = None, answer_ms: float = 1.0) -> dict[str, float]:
    """wrk as a closed loop (`--connections` requests in flight), or paced near `rate` requests/s:
    each connection pauses PAUSE_MS between requests (wrk's delay()); the number of connections
    is estimated from `answer_ms`, corrected by a CALIBRATE_S-second trial, then measured."""
    script = directory / f"{name}.lua"
    paths_lua = ",".join(f'"{p}"' for p in paths)
    if rate is None:
        script.write_text(LUA % {"paths": paths_lua, "offset": 0, "delay": ""})
        return _wrk(base, script, args.connections, args.threads, args.duration)
    script.write_text(LUA % {"paths": paths_lua, "offset": 0,
                             "delay": f"delay = function() return {PAUSE_MS} end"})
    connections = max(1, round(rate * (PAUSE_MS + answer_ms) / 1000))
    trial = _wrk(base, script, connections, args.threads, CALIBRATE_S)
    connections = max(1, round(connections * rate / max(trial["rps"], 1.0)))
    return _wrk(base, script, connections, args.threads, args.duration)


@dataclass
class Row:
    algorithm: str
    server: str
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def bench_algorithm(algorithm: str, base_dir: Path, args: argparse.Namespace) -> list[Row]:
    directory = base_dir / algorithm
    directory.mkdir(parents=True)
    serials, index = make_ca(directory, algorithm, args.certs)
    rng = random.Random(2)
    chosen = rng.sample(serials, min(args.paths, len(serials)))
    good = next(s for s, status in serials if status == "issued")
    revoked = next(s for s, status in serials if status == "revoked")
    paths = get_paths(directory, [s for s, _ in chosen])
    check_paths = get_paths(directory, [good, revoked])
    rows: list[Row] = []
    port = free_port()
    ca_dir = directory / "home" / "cas" / CA
    sm2 = ["-rmd", "sm3", "-rsigopt", f"distid:{DISTID}"] if algorithm == "sm2" else []
    log = open(directory / "openssl-ocsp.log", "wb")
    responder = subprocess.Popen(["openssl", "ocsp", "-index", str(index), "-port", str(port), "-rsigner",
                                  str(ca_dir / "ca.pem"), "-rkey", str(ca_dir / "ca.key.pem"), "-passin",
                                  f"file:{directory / 'password'}", "-CA", str(ca_dir / "ca.pem"), "-ndays", "1",
                                  "-ignore_err", *sm2], stdout=log, stderr=log)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{base}/{check_paths[0]}", responder)
        assert status_of(f"{base}/{check_paths[0]}") == "good"
        assert status_of(f"{base}/{check_paths[1]}") == "revoked"
        result = run_wrk(base, [f"/{p}" for p in paths], directory, "openssl", args)
        rows.append(Row(algorithm, "openssl ocsp -port", **result))
        openssl_rps = result["rps"]
    finally:
        stop(responder)
        log.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YINXIN_")}
    env["YINXIN_HOME"] = str(directory / "home")
    yinxin = shutil.which("yinxin", path=str(Path(sys.executable).parent)) or "yinxin"
    for workers in args.workers:
        port = free_port()
        log = open(directory / f"serve-{workers}.log", "wb")
        server = subprocess.Popen([yinxin, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers",
                                   str(workers), "--ca-password-file", str(directory / "password"),
                                   "--log-level", "warning"], stdout=log, stderr=log, env=env)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_answering(f"{base}/ocsp/{CA}/{check_paths[0]}", server)
            wait_presigned(directory / "home" / "yinxin.db", len(serials))
            assert status_of(f"{base}/ocsp/{CA}/{check_paths[0]}") == "good"
            assert status_of(f"{base}/ocsp/{CA}/{check_paths[1]}") == "revoked"
            result = run_wrk(base, [f"/ocsp/{CA}/{p}" for p in paths], directory, f"ours-{workers}", args)
            label = f"yinxin serve, {workers} worker{'s' if workers > 1 else ''}"
            rows.append(Row(algorithm, label, **result))
            # latency at the goal's load: paced at TARGET_RATIO x openssl's throughput
            paced = run_wrk(base, [f"/ocsp/{CA}/{p}" for p in paths], directory, f"ours-{workers}-paced", args,
                            rate=TARGET_RATIO * openssl_rps, answer_ms=result["p50_ms"])
            rows.append(Row(algorithm, f"{label}, paced", **paced))
        finally:
            stop(server)
            log.close()
    return rows


def inside(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ocsp-") as tmp:
        rows: list[Row] = []
        for algorithm in args.algorithms:
            rows += bench_algorithm(algorithm, args.dir or Path(tmp), args)
    openssl_version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    if args.json:
        json.dump({"openssl": openssl_version, "python": platform.python_version(), "cpus": os.cpu_count(),
                   "duration_s": args.duration, "connections": args.connections,
                   "rows": [asdict(r) for r in rows]}, sys.stdout, indent=2)
        print()
        return
    print(f"OCSP GET, wrk -t{args.threads} -c{args.connections} -d{args.duration}s over {args.paths} URLs, "
          f"{args.certs} certificates per CA; {openssl_version}; Python {platform.python_version()}; "
          f"{os.cpu_count()} CPUs")
    print(f"{'CA':<8} {'server':<34} {'req/s':>9} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'errors':>6} "
          f"{'vs openssl':>10}")
    for algorithm in args.algorithms:
        theirs = next(r for r in rows if r.algorithm == algorithm and r.server.startswith("openssl"))
        for r in (r for r in rows if r.algorithm == algorithm):
            ratio = f"{r.rps / theirs.rps:.1f}x" if r is not theirs else ""
            print(f"{r.algorithm:<8} {r.server:<34} {r.rps:>9.0f} {r.p50_ms:>7.2f} {r.p90_ms:>7.2f} "
                  f"{r.p99_ms:>7.2f} {r.errors:>6} {ratio:>10}")
    print(f"'paced': wrk paced near {TARGET_RATIO}x openssl's measured throughput (connections pausing {PAUSE_MS} ms "
          "between requests), i.e. latency at the goal's load rather than at saturation.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithms", default="rsa2048,sm2", type=lambda s: s.split(","))
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server (bounded)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", default="2", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--certs", type=int, default=1000)
    parser.add_argument("--paths", type=int, default=200)
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.duration <= 120:
        parser.error("--duration is 1..120 seconds")
    if args.inside:
        inside(args)
        return
    sys.exit(in_private_namespace(Path(__file__)))


def in_private_namespace(script_path: Path) -> int:
    """Run `script_path --inside …` (this process's arguments) in a private network namespace with
    only a loopback interface, for every server started there; its exit status."""
    command = [sys.executable, str(script_path.resolve()), "--inside", *sys.argv[1:]]
    script = 'ip link set lo up && exec "$@"'
    return subprocess.call(["unshare", "-n", "--", "sh", "-c", script, "sh", *command])


if __name__ == "__main__":
    main()

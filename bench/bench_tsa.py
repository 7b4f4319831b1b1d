"""Timestamps over HTTP beside `openssl speed -multi 2`, and pre-signed OCSP under a nonce flood.

    python bench/bench_tsa.py [--algorithms rsa2048,sm2] [--duration 5] [--connections 16]
                              [--skip-flood] [--skip-tsa] [--json]

Everything runs inside a private network namespace (``unshare -n``, loopback only), every load
is bounded (`wrk -d` seconds).  Two parts:

**A. Timestamp tokens per second** (per algorithm, RSA-2048 and SM2):

1. a home with a CA and a TSA of that algorithm; `yinxin serve --workers 2` (signing pool with
   its default signers) answers ``POST /tsa/NAME``;
2. `openssl speed -elapsed -multi 2 -seconds N` signing with the same key type, right before and
   right after the HTTP run (their mean is the reference: the shared VM's speed drifts);
3. `wrk` POSTs an `openssl ts -query` (SHA-256; SM3 for SM2) over `--tsa-connections` (32)
   keep-alive connections for `--duration` seconds (a Lua `response()` counts replies that are not granted);
   tokens/s = granted replies per second; then the TSA's `tsa_tokens` rows are counted: every
   granted token must be there (each was committed before it was sent);
4. the same, offered at half that rate on a schedule (`bench/pacing.py`: each wrk thread's requests
   are due at fixed intervals, whatever the response times): p50/p99 latency, and how many requests
   started late (every connection busy: the rate was then not offered);
5. `openssl ts -reply` run as a process per query (what an operator would otherwise script):
   seconds per token, and our per-token cost beside it (RSA only: OpenSSL 3.0's `ts -reply`
   cannot sign with SM2).

**B. Pre-signed OCSP GETs under a nonce flood** (RSA-2048): `wrk` GETs RFC 5019 requests for
pre-signed responses, alone ("quiet"), then while a second `wrk` POSTs OCSP requests with a nonce
over `--connections` connections (each forces a fresh signature); with the signing pool (the
default) and with ``--signers 0`` (the workers sign themselves: how it was before).  During the
pooled flood a timestamp client from another loopback address (127.0.0.2) asks for tokens one at
a time: how many it got.

Ratios are of figures measured in the same run.  Print the load average with the result
(``/proc/loadavg``): the machine is shared.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from pacing import LATE_SUM, paced_delay  # noqa: E402

PASSWORD = b"bench-password"
TSA_PASSWORD = b"bench-tsa-password"
SPEED_SECONDS = 3

LUA_POST = """\
local f = io.open("%(body)s", "rb")
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "%(ctype)s"
%(delay)s
bad = 0
threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  %(check)s
end
""" + LATE_SUM + """\
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local l = yx_late()
  io.write(string.format('@@{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "errors": %%d, "bad": %%d, "late": %%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, summary.errors.connect +
    summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout, b, l))
end
"""
#: a TimeStampResp 30 82 LL LL 30 03 02 01 00: byte 9 is the status (0 granted)
CHECK_TSA = 'if status ~= 200 or string.byte(body, 9) ~= 0 then bad = bad + 1 end'
#: an OCSPResponse 30 82 LL LL 0a 01 00: byte 7 is the status (0 successful; 3 tryLater)
CHECK_OCSP = 'if status ~= 200 or string.byte(body, 7) ~= 0 then bad = bad + 1 end'

LUA_GET = """\
local paths = {%(paths)s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format('@@{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "errors": %%d, "bad": 0}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.status + summary.errors.timeout))
end
"""


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ")[0:3].__str__()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrk(url: str, script: Path, *, connections: int, duration: int, threads: int = 2) -> dict[str, float]:
    proc = subprocess.run(["wrk", "-t", str(min(threads, connections)), "-c", str(connections), "-d", f"{duration}s",
                           "--timeout", "5s", "-s", str(script), url], capture_output=True, text=True,
                          timeout=duration + 60)
    marker = proc.stdout.rfind("@@")
    if proc.returncode != 0 or marker < 0:
        raise SystemExit(f"wrk failed: {proc.stdout}\n{proc.stderr}")
    data = json.loads(proc.stdout[marker + 2:].splitlines()[0])
    seconds = data["duration_us"] / 1e6
    good = data["requests"] - data["bad"]
    return {"rps": data["requests"] / seconds, "good_rps": good / seconds, "good": good, "bad": data["bad"],
            "errors": data["errors"], "p50_ms": data["p50_us"] / 1000, "p90_ms": data["p90_us"] / 1000,
            "p99_ms": data["p99_us"] / 1000, "max_ms": data["max_us"] / 1000, "late": data.get("late", 0),
            "requests": data["requests"]}


def openssl_speed(algorithm: str) -> float:
    """Signatures per second of `openssl speed -elapsed -multi 2` (both cores), wall clock."""
    name = {"rsa2048": "rsa2048", "sm2": "sm2", "ecdsa-p256": "ecdsap256"}[algorithm]
    proc = subprocess.run(["openssl", "speed", "-elapsed", "-mr", "-multi", "2", "-seconds", str(SPEED_SECONDS), name],
                          capture_output=True, text=True, timeout=120)
    for line in proc.stdout.splitlines():
        # -mr -multi (both cores summed): +F2:n:bits:sign/s:verify/s (RSA), +F4:… (ECDSA),
        # +F7:n:bits:curve:sign/s:verify/s (SM2)
        parts = line.split(":")
        if parts[0] in ("+F2", "+F4"):
            return float(parts[3])
        if parts[0] == "+F7":
            return float(parts[4])
    raise SystemExit(f"cannot read openssl speed's output:\n{proc.stdout}\n{proc.stderr}")


def start_serve(home: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YINXIN_")}
    env.update(YINXIN_HOME=str(home), YINXIN_CA_PASSWORD=PASSWORD.decode(), YINXIN_TSA_PASSWORD=TSA_PASSWORD.decode())
    port = free_port()
    yinxin = shutil.which("yinxin", path=str(Path(sys.executable).parent)) or "yinxin"
    log = open(home.parent / f"serve-{port}.log", "wb")
    process = subprocess.Popen([yinxin, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                                *args], stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    import urllib.request
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"yinxin serve exited: {(home.parent / f'serve-{port}.log').read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("yinxin serve did not answer")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_tsa_home(directory: Path, algorithm: str) -> Path:
    from pki.ca import CertificateAuthority
    from pki.home import Home
    from pki.tsa import TimestampAuthority
    from bench_accounts import logged_in
    home = Home.open(directory / "home")
    people = logged_in(home, ("ca-op", ["ca_operator"]), ("ra-gu", ["ra_officer"]))
    CertificateAuthority(home).init_ca(name="bench", subject=f"/C=CN/O=Bench/CN=Bench TSA CA {algorithm}",
                                       algorithm=algorithm, password=PASSWORD, days=3650, actor=people["ca-op"])
    TimestampAuthority(home).init("bench-tsa", ca="bench", ca_password=PASSWORD, password=TSA_PASSWORD,
                                  actor=people["ca-op"], approver=people["ra-gu"])
    home.store.dispose()
    return directory / "home"


def count_tokens(home: Path) -> int:
    con = sqlite3.connect(home / "yinxin.db")
    try:
        return con.execute("SELECT count(*) FROM tsa_tokens").fetchone()[0]
    finally:
        con.close()


def openssl_ts_reply(directory: Path, home: Path, query: Path, count: int) -> float:
    """Seconds per token of `openssl ts -reply` run as one process per query (RSA)."""
    cfg = directory / "ts.cnf"
    (directory / "serial").write_text("01\n")
    cfg.write_text(f"""[tsa]
default_tsa = tsa1
[tsa1]
serial = {directory / 'serial'}
signer_cert = {home / 'tsas' / 'bench-tsa' / 'tsa.pem'}
signer_key = {home / 'tsas' / 'bench-tsa' / 'tsa.key.pem'}
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ess_cert_id_alg = sha256
""")
    pw = directory / "tsa.pw"
    pw.write_bytes(TSA_PASSWORD + b"\n")
    start = time.perf_counter()
    for i in range(count):
        subprocess.run(["openssl", "ts", "-reply", "-config", str(cfg), "-queryfile", str(query), "-passin",
                        f"file:{pw}", "-out", str(directory / "openssl.tsr")], check=True, capture_output=True)
    return (time.perf_counter() - start) / count


def bench_tsa(algorithm: str, base: Path, args: argparse.Namespace) -> dict[str, object]:
    directory = base / f"tsa-{algorithm}"
    directory.mkdir()
    home = make_tsa_home(directory, algorithm)
    data = directory / "data.txt"
    data.write_bytes(b"bench" * 100)
    query = directory / "q.tsq"
    subprocess.run(["openssl", "ts", "-query", "-data", str(data), "-sm3" if algorithm == "sm2" else "-sha256",
                    "-cert", "-out", str(query)], check=True, capture_output=True)
    before = openssl_speed(algorithm)
    process, url = start_serve(home, "--workers", "2", *(["--signer-nice", str(args.signer_nice)]
                                                         if args.signer_nice is not None else []))
    try:
        script = directory / "post.lua"
        script.write_text(LUA_POST % {"body": query, "ctype": "application/timestamp-query", "delay": "",
                                      "check": CHECK_TSA})
        tokens_before = count_tokens(home)
        load = (loadavg(), )
        full = wrk(f"{url}/tsa/bench-tsa", script, connections=args.tsa_connections, duration=args.duration)
        time.sleep(0.5)
        recorded = count_tokens(home) - tokens_before
        # offered at half the measured rate on a schedule, enough connections that one is free when due
        rate = full["good_rps"] / 2
        paced_script = directory / "post-paced.lua"
        paced_script.write_text(LUA_POST % {"body": query, "ctype": "application/timestamp-query",
                                            "delay": paced_delay(rate, 2), "check": CHECK_TSA})
        connections = args.tsa_connections
        paced = wrk(f"{url}/tsa/bench-tsa", paced_script, connections=connections, duration=args.duration)
    finally:
        stop(process)
    after = openssl_speed(algorithm)
    reference = (before + after) / 2
    row: dict[str, object] = {
        "algorithm": algorithm, "openssl_speed_multi2": reference, "openssl_before": before, "openssl_after": after,
        "tokens_per_s": full["good_rps"], "refused": full["bad"], "errors": full["errors"],
        "p50_ms": full["p50_ms"], "p99_ms": full["p99_ms"], "granted": full["good"], "recorded": recorded,
        "ratio": full["good_rps"] / reference, "paced_rps": paced["good_rps"], "paced_p50_ms": paced["p50_ms"],
        "paced_p99_ms": paced["p99_ms"], "paced_connections": connections, "paced_late": paced["late"],
        "paced_requests": paced["requests"], "paced_offered": rate, "load": load[0]}
    if algorithm.startswith("rsa"):
        per_process = openssl_ts_reply(directory, home, query, args.ts_reply_count)
        row["openssl_ts_reply_s_per_token"] = per_process
        row["ours_s_per_token"] = 1 / full["good_rps"]
        row["ts_reply_ratio"] = per_process * full["good_rps"]
    return row


def bench_flood(base: Path, args: argparse.Namespace) -> list[dict[str, object]]:
    from bench_ocsp import CA, get_paths, make_ca, wait_presigned
    from pki.ocsp import OcspCertId, build_ocsp_request, issuer_hashes
    from pki.x509 import load_certificate
    directory = base / "flood"
    directory.mkdir()
    serials, _ = make_ca(directory, "rsa2048", 200)
    home = directory / "home"
    # a TSA in the same home, for the client within its share
    from pki.home import Home
    from pki.tsa import TimestampAuthority
    from bench_accounts import logged_in
    h = Home.open(home)
    people = logged_in(h, ("ca-op", ["ca_operator"]), ("ra-gu", ["ra_officer"]))
    TimestampAuthority(h).init("bench-tsa", ca=CA, ca_password=PASSWORD, password=TSA_PASSWORD,
                               actor=people["ca-op"], approver=people["ra-gu"])
    h.store.dispose()
    paths = [f"/ocsp/{CA}/{p}" for p in get_paths(directory, [s for s, _ in serials[:100]])]
    get_script = directory / "get.lua"
    get_script.write_text(LUA_GET % {"paths": ",".join(f'"{p}"' for p in paths)})
    cert = load_certificate((home / "cas" / CA / "ca.pem").read_bytes())
    name_hash, key_hash = issuer_hashes(cert, "sha1")
    nonce_body = directory / "nonce.der"
    nonce_body.write_bytes(build_ocsp_request([OcspCertId("sha1", name_hash, key_hash, int(serials[1][0], 16))],
                                              nonce=b"0123456789abcdef"))
    flood_script = directory / "flood.lua"
    flood_script.write_text(LUA_POST % {"body": nonce_body, "ctype": "application/ocsp-request", "delay": "",
                                        "check": CHECK_OCSP})
    data = directory / "data.txt"
    data.write_bytes(b"flood" * 100)
    query = directory / "q.tsq"
    subprocess.run(["openssl", "ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query)], check=True,
                   capture_output=True)
    rows = []
    nice = ("--signer-nice", str(args.signer_nice)) if args.signer_nice is not None else ()
    pool_label = "signing pool" + (f", nice {args.signer_nice}" if nice else " (default)")
    variants = [(pool_label, nice)] + ([] if args.skip_unpooled else [("--signers 0 (workers sign)", ("--signers", "0"))])
    for label, extra in variants:
        process, url = start_serve(home, "--workers", "2", *extra)
        try:
            wait_presigned(home / "yinxin.db", len(serials))
            quiet = wrk(url, get_script, connections=args.connections, duration=args.duration)
            results: dict[str, dict[str, float]] = {}
            tokens = {"granted": 0, "other": 0}

            def flood() -> None:
                results["flood"] = wrk(f"{url}/ocsp/{CA}", flood_script, connections=args.connections,
                                       duration=args.duration + 2, threads=1)

            def tsa_client() -> None:
                import http.client
                from asn1crypto import tsp

                import pki.tsa.asn1  # noqa: F401  (RFC 3161: a rejection has no token)
                host, port = url.removeprefix("http://").split(":")
                body = query.read_bytes()
                stop_at = time.monotonic() + args.duration
                while time.monotonic() < stop_at:
                    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=("127.0.0.2", 0))
                    conn.request("POST", "/tsa/bench-tsa", body, {"Content-Type": "application/timestamp-query"})
                    status = tsp.TimeStampResp.load(conn.getresponse().read())["status"]["status"].native
                    conn.close()
                    tokens["granted" if status == "granted" else "other"] += 1
                    time.sleep(0.05)

            flooder = threading.Thread(target=flood)
            flooder.start()
            time.sleep(1.0)
            client = threading.Thread(target=tsa_client)
            client.start()
            loaded = wrk(url, get_script, connections=args.connections, duration=args.duration)
            client.join()
            flooder.join()
            flood_result = results["flood"]
            rows.append({"server": label, "quiet_rps": quiet["rps"], "quiet_p99_ms": quiet["p99_ms"],
                         "flood_get_rps": loaded["rps"], "flood_get_p99_ms": loaded["p99_ms"],
                         "kept": loaded["rps"] / quiet["rps"], "nonce_signed_per_s": flood_result["good_rps"],
                         "nonce_try_later": flood_result["bad"], "tsa_granted": tokens["granted"],
                         "tsa_other": tokens["other"], "load": loadavg()})
        finally:
            stop(process)
    return rows


def inside(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-tsa-") as tmp:
        base = args.dir or Path(tmp)
        tsa_rows = [] if args.skip_tsa else [bench_tsa(a, base, args) for a in args.algorithms]
        flood_rows = [] if args.skip_flood else bench_flood(base, args)
    openssl_version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    if args.json:
        json.dump({"openssl": openssl_version, "python": platform.python_version(), "cpus": os.cpu_count(),
                   "duration_s": args.duration, "connections": args.connections, "tsa": tsa_rows,
                   "flood": flood_rows}, sys.stdout, indent=2)
        print()
        return
    print(f"{openssl_version}; Python {platform.python_version()}; {os.cpu_count()} CPUs; wrk -c{args.tsa_connections} "
          f"(A) / -c{args.connections} (B), -d{args.duration}s, keep-alive, private network namespace")
    if tsa_rows:
        nice = "" if args.signer_nice is None else f" --signer-nice {args.signer_nice}"
        print(f"\nA. timestamp tokens over HTTP (yinxin serve --workers 2{nice}) vs openssl speed -elapsed -multi 2 "
              "(same key type)")
        print(f"{'alg':<8} {'openssl sign/s':>14} {'tokens/s':>9} {'ratio':>6} {'p99 ms':>7} {'refused':>7} "
              f"{'recorded':>9} {'½-rate/s':>9} {'late':>5} {'p50 ms':>7} {'p99 ms':>7} {'load':>18}")
        for r in tsa_rows:
            print(f"{r['algorithm']:<8} {r['openssl_speed_multi2']:>14.0f} {r['tokens_per_s']:>9.0f} "
                  f"{r['ratio']:>6.2f} {r['p99_ms']:>7.1f} {r['refused']:>7} {r['recorded']:>9} "
                  f"{r['paced_rps']:>9.0f} {r['paced_late']:>5} {r['paced_p50_ms']:>7.2f} {r['paced_p99_ms']:>7.2f} {r['load']:>18}")
        for r in tsa_rows:
            if "openssl_ts_reply_s_per_token" in r:
                print(f"{r['algorithm']}: openssl ts -reply as a process per query: "
                      f"{r['openssl_ts_reply_s_per_token'] * 1000:.1f} ms/token; yinxin serve "
                      f"{r['ours_s_per_token'] * 1000:.2f} ms/token: {r['ts_reply_ratio']:.0f}x")
            assert r["recorded"] >= r["granted"], "a granted token is missing from tsa_tokens"
    if flood_rows:
        print("\nB. pre-signed OCSP GETs (RSA-2048) alone and under a nonce POST flood (same number of connections)")
        print(f"{'server':<28} {'quiet req/s':>11} {'p99':>6} {'flood req/s':>11} {'p99':>6} {'kept':>5} "
              f"{'nonce/s':>8} {'tryLater':>8} {'TSA ok/other':>12} {'load':>18}")
        for r in flood_rows:
            print(f"{r['server']:<28} {r['quiet_rps']:>11.0f} {r['quiet_p99_ms']:>6.2f} {r['flood_get_rps']:>11.0f} "
                  f"{r['flood_get_p99_ms']:>6.2f} {r['kept']:>5.0%} {r['nonce_signed_per_s']:>8.0f} "
                  f"{r['nonce_try_later']:>8} {r['tsa_granted']:>5}/{r['tsa_other']:<6} {r['load']:>18}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--algorithms", default="rsa2048,sm2", type=lambda s: s.split(","))
    parser.add_argument("--duration", type=int, default=5, help="seconds of each load (bounded)")
    parser.add_argument("--connections", type=int, default=16, help="part B (the issue's flood: 16)")
    parser.add_argument("--tsa-connections", type=int, default=32,
                        help="part A: enough requests in flight to keep both cores busy (each waits for its commit)")
    parser.add_argument("--ts-reply-count", type=int, default=30)
    parser.add_argument("--signer-nice", type=int, help="yinxin serve --signer-nice (default: serve's)")
    parser.add_argument("--skip-unpooled", action="store_true", help="part B: skip the --signers 0 comparison")
    parser.add_argument("--skip-flood", action="store_true")
    parser.add_argument("--skip-tsa", action="store_true")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.duration <= 60:
        parser.error("--duration is 1..60 seconds")
    if args.inside:
        inside(args)
        return
    from bench_ocsp import in_private_namespace
    sys.exit(in_private_namespace(Path(__file__)))


if __name__ == "__main__":
    main()

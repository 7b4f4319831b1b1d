"""Sign and verify rates through the yinxin library next to `openssl speed`, measured in one run.

    python bench/bench_keys.py [--seconds 1] [--rounds 2] [--json]

Rates are per CPU second on both sides (`openssl speed` counts user CPU time), so a busy
machine disturbs the comparison less.  For each algorithm the script alternates
`openssl speed -seconds N <alg>` and our own loop (`PrivateKey.sign` / `PublicKey.verify` on
a 32-byte message, hashing included) for `--rounds` rounds and keeps the best rate of each
side: on a shared machine the best of a few short runs is the steadiest estimate.  SM2 runs once per backend
(botan = Debian's libbotan-2, native = the tongsuopy wheel, gmssl = pure Python) against the same
OpenSSL figure; where Botan's own command line is installed (Debian's `botan`), `botan speed SM2`
on sm2p256v1 is printed too, the peer for the botan backend (it counts wall-clock time).

What OpenSSL measures: RSA and ECDSA sign a precomputed digest (no hashing); SM2 uses
EVP_DigestSign, so Z = SM3(ENTL‖ID‖…) and e = SM3(Z‖M) are included, as in ours.
RSA and ECDSA go through `cryptography`, whose wheel bundles its own OpenSSL (possibly newer
than the command-line one: the header shows both versions).
The default (2 rounds of 1 s) takes about a minute on an idle 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout too

import pki  # noqa: E402
from pki.sm2 import available_backends, backend_by_name  # noqa: E402

#: our algorithm -> `openssl speed` algorithm name
OPENSSL_NAMES = {"rsa2048": "rsa2048", "rsa3072": "rsa3072", "rsa4096": "rsa4096",
                 "ecdsa-p256": "ecdsap256", "ecdsa-p384": "ecdsap384", "sm2": "sm2"}
MESSAGE = bytes(range(32))


@dataclass
class Row:
    algorithm: str
    backend: str | None
    ours_sign: float
    ours_verify: float
    openssl_sign: float
    openssl_verify: float

    @property
    def label(self) -> str:
        return f"{self.algorithm} ({self.backend})" if self.backend else self.algorithm

    @property
    def sign_ratio(self) -> float:
        return self.ours_sign / self.openssl_sign if self.openssl_sign else float("nan")

    @property
    def verify_ratio(self) -> float:
        return self.ours_verify / self.openssl_verify if self.openssl_verify else float("nan")


def openssl_speed(name: str, seconds: int) -> tuple[float, float]:
    """(sign/s, verify/s) from `openssl speed -mr`: the +F<n> line ends with the two rates."""
    proc = subprocess.run(["openssl", "speed", "-mr", "-seconds", str(seconds), name],
                          capture_output=True, text=True, timeout=120)
    for line in proc.stdout.splitlines():
        if line.startswith("+F") and not line.startswith("+F:"):
            fields = line.split(":")
            return float(fields[-2]), float(fields[-1])
    raise RuntimeError(f"no result line in `openssl speed {name}`:\n{proc.stdout}\n{proc.stderr}")


def botan_speed(seconds: int) -> tuple[float, float] | None:
    """(sign/s, verify/s) of `botan speed SM2` on sm2p256v1, SM3 included; None without the CLI."""
    if shutil.which("botan") is None:
        return None
    proc = subprocess.run(["botan", "speed", f"--msec={seconds * 1000}", "--ecc-groups=sm2p256v1", "SM2"],
                          capture_output=True, text=True, timeout=120)
    found: dict[str, float] = {}
    for line in proc.stdout.splitlines():        # "SM2_Sig-sm2p256v1 SM3 10520 sign/sec; 0.10 ms/op …"
        words = line.split()
        for kind in ("sign", "verify"):
            if f"{kind}/sec;" in words:
                found[kind] = float(words[words.index(f"{kind}/sec;") - 1])
    if set(found) != {"sign", "verify"}:
        raise RuntimeError(f"no SM2 rates in `botan speed`:\n{proc.stdout}\n{proc.stderr}")
    return found["sign"], found["verify"]


def rate(operation, seconds: float) -> float:
    """Operations per CPU second of `operation()` over about `seconds` of CPU time.

    CPU time, not wall-clock time, because that is what `openssl speed` counts (user time,
    unless told -elapsed): on a busy machine both sides then measure the same thing.
    """
    operation()  # warm up (caches, lazy initialisation)
    count, start = 0, time.process_time()
    deadline = start + seconds
    while True:
        operation()
        count += 1
        now = time.process_time()
        if now >= deadline:
            return count / (now - start)


def ours(key: pki.PrivateKey, seconds: float) -> tuple[float, float]:
    public = key.public_key()
    signature = key.sign(MESSAGE)
    public.verify(signature, MESSAGE)
    return (rate(lambda: key.sign(MESSAGE), seconds),
            rate(lambda: public.verify(signature, MESSAGE), seconds))


def measure(algorithms: list[str], seconds: int, rounds: int, progress) -> list[Row]:
    rows: list[Row] = []
    for alg in algorithms:
        variants: list[tuple[str | None, pki.PrivateKey]]
        if alg == "sm2":
            variants = [(name, pki.generate_key("sm2", sm2_backend=backend_by_name(name)))
                        for name in available_backends()]
        else:
            variants = [(None, pki.generate_key(alg))]
        best_openssl = (0.0, 0.0)
        best_ours = {backend: (0.0, 0.0) for backend, _ in variants}
        for r in range(rounds):
            progress(f"{alg}: round {r + 1}/{rounds}: openssl speed")
            o = openssl_speed(OPENSSL_NAMES[alg], seconds)
            best_openssl = (max(best_openssl[0], o[0]), max(best_openssl[1], o[1]))
            for backend, key in variants:
                progress(f"{alg}: round {r + 1}/{rounds}: yinxin{' ' + backend if backend else ''}")
                s, v = ours(key, seconds)
                old = best_ours[backend]
                best_ours[backend] = (max(old[0], s), max(old[1], v))
        for backend, _ in variants:
            rows.append(Row(alg, backend, *best_ours[backend], *best_openssl))
    return rows


def table(rows: list[Row]) -> str:
    header = ("| algorithm | yinxin sign/s | openssl sign/s | ratio | yinxin verify/s | openssl verify/s | ratio |\n"
              "|---|---:|---:|---:|---:|---:|---:|")
    lines = [header]
    for r in rows:
        lines.append(f"| {r.label} | {r.ours_sign:,.0f} | {r.openssl_sign:,.0f} | {r.sign_ratio:.2f} "
                     f"| {r.ours_verify:,.0f} | {r.openssl_verify:,.0f} | {r.verify_ratio:.2f} |")
    return "\n".join(lines)


def environment() -> dict[str, str]:
    openssl_version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    try:
        from cryptography.hazmat.backends.openssl import backend
        bundled = backend.openssl_version_text()
    except Exception:  # a cryptography build without that attribute
        bundled = "unknown"
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": str(os.cpu_count()), "openssl": openssl_version, "cryptography_openssl": bundled}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=1, help="seconds per openssl speed and per our loop")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each side counts")
    parser.add_argument("--algorithms", default=",".join(pki.ALGORITHMS),
                        help="comma-separated subset of: " + ", ".join(pki.ALGORITHMS))
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = parser.parse_args(argv)
    if shutil.which("openssl") is None:
        print("bench_keys: openssl is not installed", file=sys.stderr)
        return 2
    algorithms = [a.strip() for a in args.algorithms.split(",") if a.strip()]
    unknown = [a for a in algorithms if a not in OPENSSL_NAMES]
    if unknown:
        print(f"bench_keys: unknown algorithm(s): {', '.join(unknown)}", file=sys.stderr)
        return 2

    def progress(message: str) -> None:
        print(f"  … {message}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    rows = measure(algorithms, args.seconds, args.rounds, progress)
    elapsed = time.perf_counter() - started
    env = environment()
    default = pki.default_backend().name
    goal = next((r for r in rows if r.algorithm == "sm2" and r.backend == default), None)
    botan = botan_speed(args.seconds) if "sm2" in algorithms else None
    if args.json:
        print(json.dumps({"environment": env, "seconds": args.seconds, "rounds": args.rounds,
                          "botan_speed_sm2": botan,
                          "elapsed_s": round(elapsed, 1),
                          "rows": [{**asdict(r), "sign_ratio": r.sign_ratio, "verify_ratio": r.verify_ratio}
                                   for r in rows]}, indent=2))
    else:
        print(f"yinxin key benchmark — Python {env['python']}, {env['machine']}, {env['cpus']} CPUs; "
              f"best of {args.rounds} × {args.seconds} CPU-s; ran {elapsed:.0f} s")
        print(f"openssl CLI: {env['openssl']}; cryptography's bundled: {env['cryptography_openssl']}")
        print()
        print(table(rows))
        if botan is not None:
            print(f"\npeer: botan speed SM2 (sm2p256v1, wall-clock): {botan[0]:,.0f} sign/s, {botan[1]:,.0f} verify/s")
        if goal is not None:
            verdict = "met" if goal.sign_ratio >= 0.8 else "NOT met"
            print(f"\ngoal: SM2 signing with the default backend ({default}) ≥ 0.8 × OpenSSL: "
                  f"{goal.sign_ratio:.2f} ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

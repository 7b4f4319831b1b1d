"""Full-CRL generation through yinxin next to `openssl ca -gencrl`, on the same entries, in one run.

    python bench/bench_crl.py [--sizes 10000,100000,1000000] [--algorithm rsa2048|ecdsa-p256|sm2]
                              [--rounds 1] [--check-up-to 100000] [--json]

For each size the script writes one OpenSSL CA directory (index.txt with N revoked
entries, crlnumber, an openssl.cnf, the CA key and certificate) and then runs, each in
a fresh process whose peak RSS is read with wait4():

* openssl: ``openssl ca -config openssl.cnf -gencrl -out openssl.crl`` — reads index.txt,
  builds, signs and writes the CRL (PEM);
* yinxin:  ``python bench_crl.py --worker DIR`` — starts Python, imports pki, reads the same
  index.txt into (serial, revoked_at, reason) tuples, ``encode_tbs_crl_der`` +
  ``sign_crl_der``, writes the CRL (PEM).  The worker also reports the time of
  encode+sign alone, which is what the library adds to a caller that already holds the
  entries (the CA reads them from its database).

Both CRLs carry the same entries (serial, date, reason), an AKI and a CRL number; for
sizes up to --check-up-to the script checks ours with ``openssl crl -CAfile`` and compares
the entry lists of both CRLs.  The ratio printed is openssl wall time / ours.
"""
from __future__ import annotations

import argparse
import base64
import json
import platform
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout too

UTC = timezone.utc
#: index.txt reason names (OpenSSL) <-> asn1crypto CRLReason names; certificateHold is left
#: out because OpenSSL then adds a holdInstructionCode extension we do not write
REASONS = {"": None, "keyCompromise": "key_compromise", "superseded": "superseded",
           "cessationOfOperation": "cessation_of_operation", "affiliationChanged": "affiliation_changed",
           "CACompromise": "ca_compromise"}
DISTID = "1234567812345678"


# --------------------------------------------------------------------------- set-up

def _pem(label: str, der: bytes) -> bytes:
    text = base64.b64encode(der)
    lines = b"\n".join(text[i:i + 64] for i in range(0, len(text), 64))
    return b"-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label.encode(), lines, label.encode())


def write_ca_dir(directory: Path, size: int, algorithm: str, seed: int) -> None:
    from pki.algorithms import generate_key
    from pki.x509 import (CertificateSpec, build_tbs_certificate, certificate_to_pem, parse_name,
                          sign_certificate)
    directory.mkdir(parents=True, exist_ok=True)
    key = generate_key(algorithm)
    now = datetime.now(UTC).replace(microsecond=0)
    name = parse_name(f"/C=CN/O=Bench/CN=Bench CRL CA {algorithm}")
    spec = CertificateSpec(subject=name, issuer=name, serial=1, not_before=now - timedelta(days=1),
                           not_after=now + timedelta(days=365), public_key=key.public_key(),
                           issuer_key_identifier=None, key_usage=frozenset({"key_cert_sign", "crl_sign"}),
                           ca=True)
    cert = sign_certificate(build_tbs_certificate(spec, key.public_key().signature_algorithm()), key)
    (directory / "ca.pem").write_bytes(certificate_to_pem(cert))
    (directory / "ca.key").write_bytes(key.to_pem())
    (directory / "crlnumber").write_text("1000\n")
    (directory / "index.txt.attr").write_text("unique_subject = no\n")
    md = "sm3" if algorithm == "sm2" else ("sha384" if algorithm == "ecdsa-p384" else "sha256")
    (directory / "openssl.cnf").write_text(f"""\
[ ca ]
default_ca = bench

[ bench ]
dir = {directory}
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca.key
new_certs_dir = $dir
default_md = {md}
default_crl_days = 7
crl_extensions = crl_ext

[ crl_ext ]
authorityKeyIdentifier = keyid:always
""")
    rng = random.Random(seed)
    reasons = list(REASONS)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    serials: set[int] = set()
    with open(directory / "index.txt", "w") as index:
        while len(serials) < size:
            serial = rng.getrandbits(127) | (1 << 63)
            if serial in serials:
                continue
            serials.add(serial)
            at = base + timedelta(seconds=rng.randrange(0, 700 * 86400))
            reason = reasons[len(serials) % len(reasons)]
            revoked = at.strftime("%y%m%d%H%M%SZ") + (f",{reason}" if reason else "")
            hex_serial = f"{serial:X}"
            hex_serial = "0" * (len(hex_serial) % 2) + hex_serial
            index.write(f"R\t491231235959Z\t{revoked}\t{hex_serial}\tunknown\t/CN=s{hex_serial}\n")


# --------------------------------------------------------------------------- the worker (ours)

def read_index(path: Path) -> list[tuple[int, datetime, str | None]]:
    entries = []
    with open(path) as index:
        for line in index:
            fields = line.split("\t")
            if fields[0] != "R":
                continue
            date, _, reason = fields[2].partition(",")
            year = int(date[0:2])
            at = datetime(year + (1900 if year >= 50 else 2000), int(date[2:4]), int(date[4:6]),
                          int(date[6:8]), int(date[8:10]), int(date[10:12]), tzinfo=UTC)
            entries.append((int(fields[3], 16), at, REASONS[reason]))
    return entries


def worker(directory: Path) -> None:
    started = time.perf_counter()
    from pki.crl import encode_tbs_crl_der, sign_crl_der
    from pki.keyfiles import load_private_key
    from pki.x509 import load_certificate
    cert = load_certificate((directory / "ca.pem").read_bytes())
    key = load_private_key((directory / "ca.key").read_bytes())
    entries = read_index(directory / "index.txt")
    read_done = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    tbs = encode_tbs_crl_der(issuer=cert.subject, this_update=now, next_update=now + timedelta(days=7),
                             crl_number=1000, entries=entries,
                             authority_key_identifier=key.public_key().key_identifier(),
                             signature_algorithm=key.public_key().signature_algorithm())
    del entries
    der = sign_crl_der(tbs, key)
    del tbs
    built = time.perf_counter()
    (directory / "ours.crl").write_bytes(_pem("X509 CRL", der))
    done = time.perf_counter()
    json.dump({"read_seconds": read_done - started, "encode_sign_seconds": built - read_done,
               "write_seconds": done - built, "bytes": len(der)}, sys.stdout)


# --------------------------------------------------------------------------- measuring

#: Linux charges a process, at exec(), with the peak RSS of the memory it had before: a child
#: spawned straight from this (large) process would report our RSS as its own.  So a small
#: launcher (python -S, a few MB) forks the measured command and reports its wait4() figures.
_LAUNCHER = """\
import os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write("\\n@@ %d %d %.6f\\n" % (os.waitstatus_to_exitcode(status), usage.ru_maxrss,
                                          time.perf_counter() - started))
"""


def run_measured(argv: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MiB, stdout) of one command, measured by the launcher."""
    result = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *argv], capture_output=True)
    err = result.stderr.decode()
    marker = err.rfind("\n@@ ")
    if marker < 0:
        raise SystemExit(f"launcher failed: {err}")
    code, rss_kib, wall = err[marker + 4:].split()
    if int(code) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout.decode()}\n{err[:marker]}")
    return float(wall), int(rss_kib) // 1024, result.stdout.decode()


@dataclass
class Row:
    entries: int
    algorithm: str
    openssl_seconds: float
    openssl_rss_mib: int
    ours_seconds: float
    ours_rss_mib: int
    ours_encode_sign_seconds: float
    ours_read_seconds: float
    crl_bytes: int
    checked: bool

    @property
    def ratio(self) -> float:
        return self.openssl_seconds / self.ours_seconds

    @property
    def ratio_encode_sign(self) -> float:
        return self.openssl_seconds / self.ours_encode_sign_seconds


def check(directory: Path, algorithm: str) -> None:
    """openssl verifies our CRL (SM2: pkeyutl with the GM/T ID over the TBS, since `openssl crl`
    checks SM2 with the empty ID), and both CRLs list the same entries."""
    from pki.crl import load_crl
    ours_crl = load_crl((directory / "ours.crl").read_bytes())
    if algorithm == "sm2":
        (directory / "tbs.der").write_bytes(ours_crl["tbs_cert_list"].dump())
        (directory / "sig.der").write_bytes(ours_crl["signature"].native)
        subprocess.run(["openssl", "x509", "-in", directory / "ca.pem", "-noout", "-pubkey",
                        "-out", directory / "ca.pub"], check=True)
        result = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", directory / "ca.pub",
                                 "-rawin", "-digest", "sm3", "-pkeyopt", f"distid:{DISTID}",
                                 "-in", directory / "tbs.der", "-sigfile", directory / "sig.der"],
                                capture_output=True, text=True)
        ok = "Signature Verified Successfully" in result.stdout
    else:
        result = subprocess.run(["openssl", "crl", "-in", directory / "ours.crl", "-CAfile",
                                 directory / "ca.pem", "-noout"], capture_output=True, text=True)
        ok = "verify OK" in result.stderr
    if not ok:
        raise SystemExit(f"openssl does not verify our CRL: {result.stdout} {result.stderr}")
    same_entries(directory / "ours.crl", directory / "openssl.crl")


def same_entries(ours: Path, theirs: Path) -> None:
    """Both CRLs (PEM or DER) list the same (serial, time, reason) entries."""
    from pki.crl import crl_entries, load_crl

    def entries(path: Path) -> set[tuple]:
        return {(e.serial, e.revoked_at, e.reason) for e in crl_entries(load_crl(path.read_bytes()))}

    difference = entries(ours) ^ entries(theirs)
    if difference:
        raise SystemExit(f"entry lists differ: {len(difference)} entries")


def measure(size: int, algorithm: str, base_dir: Path, check_up_to: int, rounds: int) -> Row:
    """Alternate the two sides `rounds` times and keep each side's fastest run: on a shared
    machine the best of a few runs is the steadiest estimate of what each side can do."""
    directory = base_dir / f"ca-{algorithm}-{size}"
    write_ca_dir(directory, size, algorithm, seed=size)
    sigopt = ["-sigopt", f"distid:{DISTID}"] if algorithm == "sm2" else []
    openssl_runs, our_runs = [], []
    for _ in range(rounds):
        openssl_runs.append(run_measured(
            ["openssl", "ca", "-config", str(directory / "openssl.cnf"), "-gencrl", "-batch", *sigopt,
             "-out", str(directory / "openssl.crl")]))
        our_runs.append(run_measured([sys.executable, __file__, "--worker", str(directory)]))
    openssl_seconds, openssl_rss, _ = min(openssl_runs)
    ours_seconds, ours_rss, out = min(our_runs)
    report = json.loads(out)
    checked = size <= check_up_to
    if checked:
        check(directory, algorithm)
    return Row(size, algorithm, openssl_seconds, openssl_rss, ours_seconds, ours_rss,
               report["encode_sign_seconds"], report["read_seconds"], report["bytes"], checked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--algorithm", default="rsa2048", choices=["rsa2048", "ecdsa-p256", "ecdsa-p384", "sm2"])
    parser.add_argument("--check-up-to", type=int, default=100_000,
                        help="check our CRL with openssl and compare entries up to this size")
    parser.add_argument("--rounds", type=int, default=1, help="runs per side; the fastest counts")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    import tempfile
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-crl-") as tmp:
        base_dir = args.dir or Path(tmp)
        rows = [measure(size, args.algorithm, base_dir, args.check_up_to, args.rounds) for size in sizes]
    openssl_version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    if args.json:
        json.dump({"openssl": openssl_version, "python": platform.python_version(),
                   "rows": [{**asdict(r), "ratio": r.ratio, "ratio_encode_sign": r.ratio_encode_sign}
                            for r in rows]}, sys.stdout, indent=2)
        print()
        return
    print(f"full CRL generation, {args.algorithm}; {openssl_version}; Python {platform.python_version()}")
    print(f"{'entries':>9} {'openssl s':>10} {'RSS MiB':>8} {'yinxin s':>9} {'RSS MiB':>8} "
          f"{'enc+sign s':>10} {'ratio':>6} {'ratio e+s':>9} {'CRL MB':>7} checked")
    for r in rows:
        print(f"{r.entries:>9} {r.openssl_seconds:>10.2f} {r.openssl_rss_mib:>8} {r.ours_seconds:>9.2f} "
              f"{r.ours_rss_mib:>8} {r.ours_encode_sign_seconds:>10.2f} {r.ratio:>5.1f}x {r.ratio_encode_sign:>8.1f}x "
              f"{r.crl_bytes / 1e6:>7.1f} {'yes' if r.checked else 'no'}")
    print("ratio = openssl wall time / yinxin wall time (both: read index.txt, build, sign, write PEM);")
    print("ratio e+s = openssl wall time / yinxin encode+sign alone (entries already in memory).")


if __name__ == "__main__":
    main()

"""CRLs at scale from the CA database: yinxin's `generate_crl` beside `openssl ca -gencrl`,
on the same entries, in one run.

    python bench/bench_crl_scale.py [--sizes 10000,100000,1000000] [--algorithm rsa2048|sm2|...]
                                    [--check-up-to 100000] [--json] [--dir DIR]

For each size the script makes a yinxin home with one CA (through the library), writes N
revoked and held certificates straight into its database in bulk (one INSERT … executemany
per 50,000 rows), and writes the same entries as an OpenSSL CA database (index.txt, an
openssl.cnf pointing at the CA's own certificate and encrypted key).  Then, each in a fresh
process whose peak RSS is read with wait4():

* openssl: ``openssl ca -gencrl`` — reads index.txt, builds, signs and writes the CRL;
* yinxin full:  ``pki.status.generate_crl`` — opens the home, reads the revoked entries from the
  database, encodes, signs and stores the numbered CRL (and its audit event), then writes it;
* yinxin delta: a delta CRL against a base that was published before the N entries were
  revoked, so it lists all N (the worst case a delta can be).

Our full CRL is checked with ``openssl crl -CAfile`` (RSA/ECDSA) and its entry list compared
with OpenSSL's, for sizes up to --check-up-to.  The ratio is openssl wall time / ours.
(bench/bench_crl.py measures the encoder alone, from index.txt; this one measures the whole
path a CA runs.)
"""
from __future__ import annotations

import argparse
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_crl import run_measured, same_entries  # noqa: E402  (shared with the index-file benchmark)


UTC = timezone.utc
PASSWORD = b"bench-password"
CA_NAME = "bench"
#: asn1crypto reason name -> OpenSSL index.txt reason name
REASONS = {None: "", "key_compromise": "keyCompromise", "superseded": "superseded",
           "cessation_of_operation": "cessationOfOperation", "affiliation_changed": "affiliationChanged",
           "certificate_hold": "certificateHold", "ca_compromise": "CACompromise"}
BATCH = 50_000


def _openssl_time(at: datetime) -> str:
    return at.strftime("%y%m%d%H%M%SZ") if 1950 <= at.year < 2050 else at.strftime("%Y%m%d%H%M%SZ")


def make_home(directory: Path, size: int, algorithm: str, seed: int) -> None:
    """A home with CA `bench`, an (empty) base CRL, then `size` revoked/held certificates."""
    import sqlalchemy as sa

    from pki.ca import CertificateAuthority
    from pki.home import Home
    from pki.status import generate_crl
    from pki.store import certificates

    from bench_accounts import sessions
    home = Home.open(directory / "home")
    operator = sessions(home, ("ca-op", ["ca_operator"]))["ca-op"]
    (directory / "ca-op.session").write_bytes(operator.to_file())   # the worker resumes it, as the CLI does
    authority = CertificateAuthority(home)
    ca = authority.init_ca(name=CA_NAME, subject=f"/C=CN/O=Bench/CN=Bench CRL CA {algorithm}",
                           algorithm=algorithm, password=PASSWORD, days=3650, actor=operator.actor)
    key = authority.load_key(ca, PASSWORD)
    generate_crl(authority, ca, key, actor=operator.actor)   # the base the delta CRL is measured against
    rng = random.Random(seed)
    reasons = list(REASONS)
    # one second after the base CRL: clock times are whole seconds, and the delta lists what
    # changed after its base's thisUpdate
    now = home.clock.now() + timedelta(seconds=1)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    not_after = now + timedelta(days=3650)
    serials: set[int] = set()
    index_lines: list[str] = []
    with home.store.transaction() as conn:
        rows: list[dict[str, object]] = []
        while len(serials) < size:
            serial = rng.getrandbits(127) | (1 << 63)
            if serial in serials:
                continue
            serials.add(serial)
            at = start + timedelta(seconds=rng.randrange(0, 700 * 86400))
            reason = reasons[len(serials) % len(reasons)]
            rows.append(dict(ca_id=ca.id, serial=f"{serial:x}", profile="person", subject=f"CN=s{serial:x}",
                             public_key_fp="0" * 64, not_before=at - timedelta(days=30), not_after=not_after,
                             status="held" if reason == "certificate_hold" else "revoked", tbs_der=b"",
                             revoked_at=at, revocation_reason=reason, status_changed_at=now,
                             retention_years=5, created_at=at))
            hex_serial = f"{serial:X}"
            hex_serial = "0" * (len(hex_serial) % 2) + hex_serial
            name = REASONS[reason]
            index_lines.append(f"R\t{_openssl_time(not_after)}\t{_openssl_time(at)}{',' + name if name else ''}"
                               f"\t{hex_serial}\tunknown\t/CN=s{serial:x}\n")
            if len(rows) == BATCH:
                conn.execute(sa.insert(certificates), rows)
                rows = []
        if rows:
            conn.execute(sa.insert(certificates), rows)
    (directory / "index.txt").write_text("".join(index_lines))
    (directory / "index.txt.attr").write_text("unique_subject = no\n")
    (directory / "crlnumber").write_text("1000\n")
    (directory / "password").write_bytes(PASSWORD + b"\n")
    ca_dir = home.ca_dir(CA_NAME)
    md = {"sm2": "sm3", "ecdsa-p384": "sha384"}.get(algorithm, "sha256")
    (directory / "openssl.cnf").write_text(f"""\
[ ca ]
default_ca = bench

[ bench ]
dir = {directory}
database = $dir/index.txt
crlnumber = $dir/crlnumber
certificate = {ca_dir / 'ca.pem'}
private_key = {ca_dir / 'ca.key.pem'}
new_certs_dir = $dir
default_md = {md}
default_crl_days = 7
crl_extensions = crl_ext

[ crl_ext ]
authorityKeyIdentifier = keyid:always
""")
    home.store.dispose()


# --------------------------------------------------------------------------- the worker (ours)

def worker(directory: Path, delta: bool) -> None:
    started = time.perf_counter()
    from pki.accounts import Accounts
    from pki.ca import CertificateAuthority
    from pki.home import Home
    from pki.status import generate_crl
    home = Home.open(directory / "home")
    actor = Accounts.of(home).resume_file((directory / "ca-op.session").read_bytes())   # `yinxin ca crl --session`
    authority = CertificateAuthority(home)
    ca = authority.get(CA_NAME)
    key = authority.load_key(ca, PASSWORD)
    opened = time.perf_counter()
    result = generate_crl(authority, ca, key, delta=delta, actor=actor)
    generated = time.perf_counter()
    (directory / ("ours-delta.crl" if delta else "ours.crl")).write_bytes(result.der)
    json.dump({"open_seconds": opened - started, "generate_seconds": generated - opened,
               "entries": result.entries, "bytes": len(result.der)}, sys.stdout)


# --------------------------------------------------------------------------- measuring

@dataclass
class Row:
    entries: int
    algorithm: str
    openssl_seconds: float
    openssl_rss_mib: int
    full_seconds: float
    full_rss_mib: int
    full_generate_seconds: float
    delta_seconds: float
    delta_rss_mib: int
    delta_entries: int
    crl_bytes: int
    checked: bool

    @property
    def ratio(self) -> float:
        return self.openssl_seconds / self.full_seconds

    @property
    def memory_ratio(self) -> float:
        return self.openssl_rss_mib / self.full_rss_mib


def check(directory: Path, algorithm: str) -> None:
    ca_pem = directory / "home" / "cas" / CA_NAME / "ca.pem"
    if algorithm != "sm2":  # openssl crl cannot pass an SM2 distinguishing ID
        result = subprocess.run(["openssl", "crl", "-inform", "DER", "-in", directory / "ours.crl",
                                 "-CAfile", ca_pem, "-noout"], capture_output=True, text=True)
        if "verify OK" not in result.stderr:
            raise SystemExit(f"openssl does not verify our CRL: {result.stderr}")
    same_entries(directory / "ours.crl", directory / "openssl.crl")


def measure(size: int, algorithm: str, base_dir: Path, check_up_to: int) -> Row:
    directory = base_dir / f"{algorithm}-{size}"
    directory.mkdir(parents=True)
    make_home(directory, size, algorithm, seed=size)
    sigopt = ["-sigopt", "distid:1234567812345678"] if algorithm == "sm2" else []
    openssl_seconds, openssl_rss, _ = run_measured(
        ["openssl", "ca", "-config", str(directory / "openssl.cnf"), "-gencrl", "-batch", *sigopt,
         "-passin", f"file:{directory / 'password'}", "-out", str(directory / "openssl.crl")])
    # delta first: its base is the CRL published before the entries were revoked
    delta_seconds, delta_rss, out = run_measured([sys.executable, __file__, "--worker", str(directory), "--delta"])
    delta = json.loads(out)
    full_seconds, full_rss, out = run_measured([sys.executable, __file__, "--worker", str(directory)])
    full = json.loads(out)
    if full["entries"] != size or delta["entries"] != size:
        raise SystemExit(f"expected {size} entries, got full {full['entries']}, delta {delta['entries']}")
    checked = size <= check_up_to
    if checked:
        check(directory, algorithm)
    return Row(size, algorithm, openssl_seconds, openssl_rss, full_seconds, full_rss, full["generate_seconds"],
               delta_seconds, delta_rss, delta["entries"], full["bytes"], checked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--algorithm", default="rsa2048",
                        choices=["rsa2048", "rsa3072", "ecdsa-p256", "ecdsa-p384", "sm2"])
    parser.add_argument("--check-up-to", type=int, default=100_000,
                        help="verify our CRL with openssl and compare entry lists up to this size")
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--delta", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.delta)
        return
    import tempfile
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-crl-scale-") as tmp:
        base_dir = args.dir or Path(tmp)
        rows = [measure(size, args.algorithm, base_dir, args.check_up_to) for size in sizes]
    openssl_version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    if args.json:
        json.dump({"openssl": openssl_version, "python": platform.python_version(),
                   "rows": [{**asdict(r), "ratio": r.ratio, "memory_ratio": r.memory_ratio} for r in rows]},
                  sys.stdout, indent=2)
        print()
        return
    print(f"CRL from the CA database, {args.algorithm}; {openssl_version}; Python {platform.python_version()}")
    print(f"{'entries':>9} {'openssl s':>9} {'MiB':>5} {'full s':>7} {'MiB':>5} {'(gen s)':>7} "
          f"{'delta s':>7} {'MiB':>5} {'speed':>6} {'memory':>6} {'CRL MB':>6} checked")
    for r in rows:
        print(f"{r.entries:>9} {r.openssl_seconds:>9.2f} {r.openssl_rss_mib:>5} {r.full_seconds:>7.2f} "
              f"{r.full_rss_mib:>5} {r.full_generate_seconds:>7.2f} {r.delta_seconds:>7.2f} {r.delta_rss_mib:>5} "
              f"{r.ratio:>5.1f}x {r.memory_ratio:>5.1f}x {r.crl_bytes / 1e6:>6.1f} {'yes' if r.checked else 'no'}")
    print("speed = openssl wall seconds / yinxin full-CRL wall seconds (each a fresh process: start, read,")
    print("build, sign, write); memory = openssl peak RSS / yinxin peak RSS.  (gen s) is generate_crl alone.")


if __name__ == "__main__":
    main()

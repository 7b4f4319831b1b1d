"""Bulk issuance with worker processes (`pki.bulk_crypto`): the same results as without them, and
what forking brings in — nonces, a failing signature in a worker, a killed run's workers.

* The CLI with `--processes 2` and with `--processes 0 --threads 1` on two equal homes gives the
  same outcome row by row (issued rows, errors by line), and OpenSSL verifies every certificate.
* Forked workers draw their own nonces: two workers signing the same TBSCertificate at once give
  different SM2 and ECDSA signatures, and both verify with OpenSSL.
* A signature that fails its check in a worker stops the run with nothing recorded as issued, the
  reservation left for `ca check`, no certificate file, and no worker left running.
* Workers of a run killed with SIGKILL end too (they hold the output directory's lock and the key).
* The default takes workers for PROCESS_MIN_ROWS rows or more, threads for fewer.
"""
from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pki.bulk as bulk
import pki.bulk_crypto as bulk_crypto
from pki.algorithms import generate_key
from pki.bulk import BulkRow, issue_bulk
from pki.bulk_crypto import CaSigning, CryptoPool
from pki.errors import InvalidSignature
from pki.sm2 import DEFAULT_DISTID
from pki.x509 import build_csr, csr_to_pem, parse_name

from ca_helpers import (DISTID, KEY_PASSWORD, PASSWORD, World, apply_and_issue, fixed_clock, openssl, openssl_csr,
                        openssl_out, sql, wall_clock, yinxin, session_env)
from test_bulk_issuance import _csr_broken_signature, _db, _write_csv

SHEET_ROWS = [
    ["/C=CN/O=T/CN=Sm2 User", "101", "csrs/sm2user.csr", ""],           # 2 ok
    ["/C=CN/O=T/CN=Ec User", "102", "csrs/ecuser.csr", ""],             # 3 ok
    ["/C=CN/O=T/CN=Rsa User", "103", "csrs/rsauser.csr", "hr-office"],  # 4 ok, applicant column
    ["/C=CN/O=T/OU=办公室/CN=王五", "104", "", ""],                      # 5 ok, key generated
    ["/C=CN/O=T/CN=Dup", "101", "", ""],                                # 6 duplicate ID in the file
    ["/C=CN/O=T/CN=Held", "900", "", ""],                               # 7 ID already has a certificate
    ["/C=CN/O=T/CN=Broken", "106", "csrs/broken-signature.csr", ""],     # 8 CSR signature broken
    ["/C=CN/O=T/CN=Missing", "107", "csrs/nope.csr", ""],                # 9 CSR file missing
    ["/C=CN/O=T/CN=Mismatch", "108", "csrs/ecuser.csr", ""],             # 10 CSR subject differs
    ["/C=CN/O=T/Nope=1", "109", "", ""],                                # 11 bad subject
    ["/C=CN/O=T/CN=No Id", "", "", ""],                                 # 12 person needs an ID
    ["/C=CN/O=T/CN=boss", "110", "", ""],                               # 13 applicant == approver
] + [[f"/C=CN/O=T/OU=Dept/CN=Member {i}", f"2{i:02d}", f"csrs/m{i % 3}-{i}.csr", ""] for i in range(20)]


def _run_sheet(tmp_path: Path, name: str, csrs: Path, *options: str) -> dict:
    home, work = tmp_path / name / "home", tmp_path / name / "work"
    World(home, work, wall_clock()).init_ca("sm2root", "sm2")
    apply_and_issue(World(home, work, wall_clock()), ca="sm2root", profile="person",
                    subject="/C=CN/O=T/CN=Existing", id_number="900", generate_key_out=work / "existing.key")
    (work / "csrs").symlink_to(csrs)
    sheet = _write_csv(work / "dept.csv", ["subject", "id_number", "csr", "applicant"], SHEET_ROWS)
    key_pw = work / "key-pw"
    key_pw.write_bytes(KEY_PASSWORD + b"\n")
    result = yinxin(home, "--json", "ca", "bulk", "--ca", "sm2root", "--profile", "person", "--from", sheet,
                    "--out-dir", work / "out", "--session", _boss(home), "--key-password-file", key_pw,
                    "--batch-size", "4", *options, env={"YINXIN_CA_PASSWORD": PASSWORD.decode()})
    assert result.code == 1 and "Traceback" not in result.err, result
    report = result.json()
    report["home"] = home
    return report


def test_processes_and_threads_give_the_same_results(tmp_path: Path) -> None:
    csrs = tmp_path / "csrs"
    csrs.mkdir()
    openssl_csr(csrs, "sm2", "/C=CN/O=T/CN=Sm2 User", stem="sm2user")
    openssl_csr(csrs, "ecdsa-p256", "/C=CN/O=T/CN=Ec User", stem="ecuser")
    openssl_csr(csrs, "rsa2048", "/C=CN/O=T/CN=Rsa User", stem="rsauser")
    _csr_broken_signature(csrs)
    keys = [generate_key(algorithm) for algorithm in ("sm2", "ecdsa-p256", "rsa2048")]
    for i in range(20):
        (csrs / f"m{i % 3}-{i}.csr").write_bytes(csr_to_pem(build_csr(
            parse_name(f"/C=CN/O=T/OU=Dept/CN=Member {i}"), keys[i % 3],
            distid=DISTID.encode() if i % 3 == 0 else None)))
    workers = _run_sheet(tmp_path, "processes", csrs, "--processes", "2")
    threads = _run_sheet(tmp_path, "threads", csrs, "--processes", "0", "--threads", "1")

    def outcome(report: dict) -> dict:       # the holder of ID 900 has a serial of its own in each home
        return {r["line"]: (r["status"], re.sub("serial [0-9A-F]+", "serial …", r.get("error") or ""),
                            r.get("error_type")) for r in report["results"]}
    assert outcome(workers) == outcome(threads)
    issued = [r for r in workers["results"] if r["status"] == "issued"]
    assert [r["line"] for r in issued] == [2, 3, 4, 5] + list(range(14, 34))
    failed = {r["line"]: r["error"] for r in workers["results"] if r["status"] != "issued"}
    for line, needle in {6: "is on line 2 too", 7: "already has an active person certificate",
                         8: "CSR signature does not verify", 9: "cannot read CSR", 10: "differs from",
                         11: "unknown attribute", 12: "requires an identity number",
                         13: "separation of duties"}.items():
        assert needle in failed[line], (line, failed[line])
    home = workers["home"]
    ca_pem = home / "cas" / "sm2root" / "ca.pem"
    certs = [r["certificate_file"] for r in issued]
    out = openssl_out("verify", "-vfyopt", f"distid:{DISTID}", "-CAfile", ca_pem, *certs)
    assert out.count(": OK") == len(certs), out
    check = yinxin(home, "--json", "ca", "check")
    assert check.json()["reserved"] == []
    assert yinxin(home, "audit", "verify").code == 0
    assert sql(_db(home), "SELECT count(*) FROM certificates WHERE status='issued'")[0][0] == len(issued) + 1


# --------------------------------------------------------------------------- nonces after fork

_BARRIER = None


def _sign_at_barrier(tbs: list[bytes]) -> tuple[int, list[bytes | None]]:
    """Both workers sign at once: neither can take the second task while it waits here."""
    assert _BARRIER is not None
    _BARRIER.wait(timeout=60)
    return os.getpid(), bulk_crypto._worker_sign(tbs)


@pytest.mark.parametrize("algorithm", ["sm2", "ecdsa-p256"])
def test_forked_workers_draw_their_own_nonces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               algorithm: str) -> None:
    global _BARRIER
    key = generate_key(algorithm)
    sm2 = algorithm == "sm2"
    signing = CaSigning(key, key.public_key(), DEFAULT_DISTID if sm2 else None, DEFAULT_DISTID)
    tbs = b"the same TBSCertificate for both workers" * 8
    _BARRIER = multiprocessing.get_context("fork").Barrier(2)
    try:
        with CryptoPool(signing, processes=2) as pool:
            assert pool.signers is not None
            futures = [pool.signers.submit(_sign_at_barrier, [tbs]) for _ in range(2)]
            results = [f.result(timeout=120) for f in futures]
    finally:
        _BARRIER = None
    (pid_a, [sig_a]), (pid_b, [sig_b]) = results
    assert pid_a != pid_b and os.getpid() not in (pid_a, pid_b)
    assert sig_a and sig_b and sig_a != sig_b
    data = tmp_path / "tbs"
    data.write_bytes(tbs)
    pub = tmp_path / "pub.pem"
    pub.write_bytes(key.public_key().to_pem())
    for index, signature in enumerate((sig_a, sig_b)):
        sig = tmp_path / f"sig{index}"
        sig.write_bytes(signature)
        if sm2:
            args = ["pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-digest", "sm3",
                    "-pkeyopt", f"distid:{DISTID}", "-in", data, "-sigfile", sig]
        else:
            args = ["dgst", "-sha256", "-verify", pub, "-signature", sig, data]
        assert "Verified" in openssl(*args).stdout.decode()


# --------------------------------------------------------------------------- failures

def _rows(tmp_path: Path, count: int, algorithm: str = "ecdsa-p256") -> list[BulkRow]:
    csrs = tmp_path / "csr"
    csrs.mkdir()
    key = generate_key(algorithm)
    rows = []
    for i in range(count):
        path = csrs / f"{i}.csr"
        path.write_bytes(csr_to_pem(build_csr(parse_name(f"/C=CN/O=T/CN=P{i}"), key)))
        rows.append(BulkRow(line=i + 2, subject=f"/C=CN/O=T/CN=P{i}", id_number=f"N{i}", csr=str(path)))
    return rows


def test_a_signature_failing_its_check_in_a_worker_stops_the_run(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    w = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    w.init_ca("ec", "ecdsa-p256")
    real = bulk_crypto.sign_all

    def one_bad(signing: CaSigning, tbs: list[bytes]) -> list[bytes | None]:
        out = real(signing, tbs)
        return [None] + out[1:]                 # as if the first had not verified
    monkeypatch.setattr(bulk_crypto, "sign_all", one_bad)     # the workers are forked with it
    with pytest.raises(InvalidSignature, match="does not verify with its own certificate"):
        issue_bulk(w.authority, _rows(tmp_path, 12), ca="ec", profile="person", out_dir=tmp_path / "out",
                   actor=w.officer("op"), approver=w.officer("ap"), ca_password=PASSWORD, crypto_processes=2)
    assert multiprocessing.active_children() == []
    reserved = w.authority.check()
    assert len(reserved) == 12                  # the whole batch: reserved, maybe signed, not issued
    assert sql(w.db_path(), "SELECT count(*) FROM certificates WHERE status='issued'")[0][0] == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == [".yinxin-bulk.lock"]


WORKER_SCRIPT = """
import os, sys, time
from pki.algorithms import generate_key
from pki.bulk_crypto import CaSigning, CryptoPool
key = generate_key("ecdsa-p256")
pool = CryptoPool(CaSigning(key, key.public_key(), None, b""), processes=2)
print(" ".join(str(pid) for pid in pool.signers._processes), flush=True)
time.sleep(600)
"""


def test_workers_end_with_a_killed_run(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parent.parent)
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 2
        for pid in pids:
            assert Path(f"/proc/{pid}").exists()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30      # a bound, not a measurement: the kernel acts at once
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in pids)
    finally:
        if proc.poll() is None:
            proc.kill()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"                     # a zombie has ended; init reaps it


@pytest.mark.parametrize("rows,other_thread,workers", [(5, False, False), (6, False, True), (6, True, False)])
def test_default_takes_workers_for_many_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             rows: int, other_thread: bool, workers: bool) -> None:
    """Workers for PROCESS_MIN_ROWS rows or more, unless another thread runs (a fork copies only
    the calling thread, and a lock another thread holds could stop a worker)."""
    w = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    w.init_ca("ec", "ecdsa-p256")
    monkeypatch.setattr(bulk, "PROCESS_MIN_ROWS", 6)
    seen: list[int] = []
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    if other_thread:
        other.start()
    try:
        report = issue_bulk(w.authority, _rows(tmp_path, rows), ca="ec", profile="person",
                            out_dir=tmp_path / "out", actor=w.officer("op"), approver=w.officer("ap"),
                            ca_password=PASSWORD,
                            progress=lambda _r: seen.append(len(multiprocessing.active_children())))
    finally:
        stop.set()
    assert len(report.issued) == rows
    assert all(seen) if workers else not any(seen)


def test_negative_counts_are_refused(tmp_path: Path) -> None:
    from pki.errors import PolicyError
    w = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    w.init_ca("ec", "ecdsa-p256")
    with pytest.raises(PolicyError, match="crypto_processes cannot be negative"):
        issue_bulk(w.authority, _rows(tmp_path, 1), ca="ec", profile="person", out_dir=tmp_path / "out",
                   actor=w.officer("op"), ca_password=PASSWORD, crypto_processes=-1)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("count,batch_size", [(0, 1024), (1, 1024), (3, 3), (41, 16), (100, 1), (4000, 1024),
                                              (10_000, 256), (257, 10_000)])
def test_batches_cover_every_row_once_small_at_both_ends(count: int, batch_size: int) -> None:
    bounds = bulk.batch_bounds(count, batch_size)
    if not count:
        assert bounds == []
        return
    assert [start for start, _ in bounds] == [0] + [end for _, end in bounds[:-1]]
    assert bounds[-1][1] == count
    sizes = [end - start for start, end in bounds]
    assert all(0 < size <= batch_size for size in sizes)
    if count > 2 * 16 and batch_size >= 16:
        assert sizes[0] == 16 and sizes[-1] <= 16        # the pipeline fills and drains quickly
    if count >= 4 * batch_size >= 64:
        assert batch_size in sizes                       # and runs at full batches in between


def test_a_killed_worker_stops_the_run_with_a_clear_error(tmp_path: Path) -> None:
    """A worker killed mid-run (the OOM killer, an operator): the run stops with one clear error,
    what was recorded stays consistent, and `ca check` lists what was reserved but not recorded."""
    from pki import audit
    from pki.errors import PkiError
    w = World(tmp_path / "home", tmp_path / "files", fixed_clock())
    w.init_ca("ec", "ecdsa-p256")
    killed: list[int] = []

    def kill_a_worker(_result: object) -> None:
        if not killed:
            pid = multiprocessing.active_children()[0].pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    with pytest.raises(PkiError, match="worker process of this run ended unexpectedly"):
        issue_bulk(w.authority, _rows(tmp_path, 60), ca="ec", profile="person", out_dir=tmp_path / "out",
                   actor=w.officer("op"), approver=w.officer("ap"), ca_password=PASSWORD, crypto_processes=2,
                   batch_size=4,
                   progress=kill_a_worker)
    assert killed and multiprocessing.active_children() == []
    issued = sql(w.db_path(), "SELECT count(*) FROM certificates WHERE status='issued' AND cert_der IS NOT NULL")
    assert 0 < issued[0][0] < 60
    reserved = {r.serial for r in w.authority.check()}
    assert len(reserved) == sql(w.db_path(), "SELECT count(*) FROM certificates WHERE status='reserved'")[0][0]
    infos = {i.name: i for i in w.authority.cas()}
    assert audit.verify(w.home.store, lambda n: (infos[n].public_key(), infos[n].distid)).ok
    pem_files = sorted((tmp_path / "out").glob("*.pem"))
    assert len(pem_files) <= issued[0][0]          # a file only for a certificate recorded as issued


@pytest.mark.parametrize("processes,threads", [(2, 0), (0, 2), (0, 0)])
def test_proofs_of_possession_in_workers_threads_or_inline(processes: int, threads: int) -> None:
    """`CryptoPool.verify_proofs` names the lines whose CSR signature fails, however it runs (keys
    go to worker processes as their DER)."""
    ca = generate_key("ecdsa-p256")
    signing = CaSigning(ca, ca.public_key(), None, DEFAULT_DISTID)
    proofs = []
    for line, algorithm in enumerate(["sm2", "ecdsa-p256", "rsa2048", "sm2"], start=2):
        key = generate_key(algorithm)
        data = f"certification request info {line}".encode()
        signature = key.sign(data, distid=DEFAULT_DISTID) if algorithm == "sm2" else key.sign(data)
        if line in (3, 5):
            data += b"!"                          # the signature no longer covers it
        proofs.append((line, key.public_key(), signature, data))
    with CryptoPool(signing, processes=processes, threads=threads) as pool:
        failed = [item for future in pool.verify_proofs(proofs) for item in future.result()]
    assert [line for line, _ in failed] == [3, 5]
    assert all(why for _, why in failed)


def _boss(home: Path) -> str:
    """The session of boss, CA operator and RA officer, who runs and approves the bulk issuance."""
    return session_env(home, "boss", "ca_operator", "ra_officer")["YINXIN_SESSION"]

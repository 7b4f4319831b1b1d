"""Where bulk issuance does its public-key work: in the calling thread, in threads, or in worker
processes forked for the run.

Threads: OpenSSL (through cryptography and Tongsuo) lets go of the interpreter lock while it signs
or verifies, so threads overlap the calling thread's Python and database work.  But every return
from OpenSSL has to take the lock back from the calling thread, and on two cores that back and
forth costs about what the overlap saves.

Processes: each worker has an interpreter of its own, so signing and verifying never wait for the
calling thread.  Workers are forked once per run, after the CA key is loaded and before any other
thread of the run starts (a fork copies only the forking thread); they receive TBSCertificates and
CSR proofs in chunks and send back signatures and verdicts.  The CA key never leaves memory: a
worker holds the copy the fork gave it, and exits when the run ends.  OpenSSL and Tongsuo reseed
their random generators in a forked child and Botan's reads getrandom for every nonce (a test
checks that two workers' SM2 and ECDSA signatures of the same bytes differ), so no two processes
share a nonce.

Whichever way, every signature is verified with the CA's public key before it is handed back; one
that does not verify comes back as None and stops the run (see `pki.bulk`).
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from .algorithms import PrivateKey, PublicKey, SM2PrivateKey, SM2PublicKey, public_key_from_spki
from .errors import InvalidSignature, KeyFileError

__all__ = ["CaSigning", "CryptoPool", "sign_all", "proof_failures", "fork_available", "Proof"]

#: (line, the CSR's public key — or its SubjectPublicKeyInfo DER for a worker process —,
#:  the CSR's signature, the octets it signs)
Proof = tuple[int, "PublicKey | bytes", bytes, bytes]


@dataclass(frozen=True)
class CaSigning:
    """What the public-key work of a run needs: the CA key, the public key of its certificate, the
    distinguishing ID an SM2 CA signs with, and the one CSR proofs are verified with."""
    key: PrivateKey
    public: PublicKey
    sign_distid: bytes | None
    proof_distid: bytes


def sign_all(signing: CaSigning, tbs: Sequence[bytes]) -> list[bytes | None]:
    """Sign each TBSCertificate; a signature that does not verify with the CA's public key comes
    back as None (for SM2 and ECDSA OpenSSL does not check its own result; for RSA it does, and
    the check costs 20 µs)."""
    key, public = signing.key, signing.public
    if isinstance(key, SM2PrivateKey) and isinstance(public, SM2PublicKey):
        def sign_and_check(data: bytes) -> bytes:
            e = public.digest(data, signing.sign_distid)    # SM2 signs e = SM3(Z ‖ M): hash once for both
            signature = key.sign_digest(e)
            public.verify_digest(signature, e)
            return signature
    else:
        def sign_and_check(data: bytes) -> bytes:
            signature = key.sign(data)
            public.verify(signature, data)
            return signature
    out: list[bytes | None] = []
    for data in tbs:
        try:
            out.append(sign_and_check(data))
        except InvalidSignature:
            out.append(None)
    return out


def proof_failures(distid: bytes, proofs: Sequence[Proof]) -> list[tuple[int, str]]:
    """The CSR proofs of possession that do not verify: (line, why)."""
    failed: list[tuple[int, str]] = []
    for line, key, signature, signed in proofs:
        try:
            public = public_key_from_spki(key) if isinstance(key, bytes) else key
            if public.algorithm == "sm2":
                public.verify(signature, signed, distid=distid)
            else:
                public.verify(signature, signed)
        except (InvalidSignature, KeyFileError) as exc:
            failed.append((line, exc.message))
    return failed


# --------------------------------------------------------------------------- worker processes

_WORKER: CaSigning | None = None
_CHECKER: Callable[[list[Any]], list[Any]] | None = None


def _worker_start(parent: int, signing: CaSigning, checker: Callable[[list[Any]], list[Any]] | None) -> None:
    global _WORKER, _CHECKER
    _die_with(parent)
    _WORKER, _CHECKER = signing, checker
    # Ctrl-C reaches the whole process group: the calling process stops the run and the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _die_with(parent: int) -> None:
    """A worker must not outlive the run: killed with SIGKILL, the calling process cannot shut its
    workers down, and a worker would keep the output directory's lock (and a copy of the CA key).
    Linux kills the worker when the thread that forked it ends (PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)       # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:      # the parent died before prctl took effect
        os._exit(1)


def _worker_sign(tbs: list[bytes]) -> list[bytes | None]:
    assert _WORKER is not None
    return sign_all(_WORKER, tbs)


def _worker_proofs(proofs: list[Proof]) -> list[tuple[int, str]]:
    assert _WORKER is not None
    return proof_failures(_WORKER.proof_distid, proofs)


def _worker_check(rows: list[Any]) -> list[Any]:
    assert _CHECKER is not None
    return _CHECKER(rows)


def _worker_ready() -> int:
    return os.getpid()


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


# --------------------------------------------------------------------------- the pool

def _done(fn: Callable[..., Any], *args: Any) -> "Future[Any]":
    done: Future[Any] = Future()
    try:
        done.set_result(fn(*args))
    except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the result
        done.set_exception(exc)
    return done


class CryptoPool:
    """The public-key work of one bulk run, and the thread that writes its certificate files.

    `processes` > 0: forked workers sign and verify, and run `checker` on chunks of rows (the
    constructor forks them, so make the pool before starting any thread; the workers have the
    copy of `checker`'s object the fork gave them).  Else `threads` > 0: threads sign and verify;
    else the calling thread does, at once.  Files are written by a thread of their own unless
    everything runs inline."""

    #: rows per task: small enough that the workers share a batch, large enough to cost little
    THREAD_CHUNK = 32
    PROCESS_CHUNK = 64

    def __init__(self, signing: CaSigning, *, threads: int = 0, processes: int = 0,
                 checker: Callable[[list[Any]], list[Any]] | None = None) -> None:
        if threads < 0 or processes < 0:
            raise ValueError("threads and processes cannot be negative")
        self.signing = signing
        self.threads, self.processes = (0, processes) if processes else (threads, 0)
        self.signers: Executor | None = None
        self.provers: Executor | None = None
        self.files: ThreadPoolExecutor | None = None
        if self.processes:
            # a forked child flushes the buffers it was given when it ends: flush them before
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_worker_start, initargs=(os.getpid(), signing, checker))
            self.signers = self.provers = pool
            try:
                # fork every worker now, while the run has no other thread
                for started in [pool.submit(_worker_ready) for _ in range(self.processes)]:
                    started.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        elif self.threads:
            self.signers = ThreadPoolExecutor(self.threads, thread_name_prefix="yinxin-sign")
            # proofs of possession have threads of their own, so a batch's proofs never wait behind
            # the signing of the batch before
            self.provers = ThreadPoolExecutor(self.threads, thread_name_prefix="yinxin-proof")
        if self.processes or self.threads:
            # files are written in order by one more thread, while the next batch is checked and signed
            self.files = ThreadPoolExecutor(1, thread_name_prefix="yinxin-files")

    @property
    def concurrent(self) -> bool:
        return self.signers is not None

    def __enter__(self) -> "CryptoPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Wait for what runs; nothing signs or writes after this returns."""
        for executor in {id(e): e for e in (self.signers, self.provers, self.files) if e is not None}.values():
            executor.shutdown(wait=True, cancel_futures=True)

    def sign(self, tbs: Sequence[bytes]) -> list["Future[list[bytes | None]]"]:
        """Signatures of the TBSCertificates, chunk by chunk, in order (None: did not verify)."""
        if self.processes:
            return self._chunks(self.signers, tbs, self.PROCESS_CHUNK, _worker_sign)
        return self._chunks(self.signers, tbs, self.THREAD_CHUNK, sign_all, self.signing)

    def check(self, rows: Sequence[Any]) -> list["Future[list[Any]]"]:
        """`checker` on the rows in the worker processes, chunk by chunk."""
        if not self.processes:
            raise ValueError("rows are checked in worker processes only")
        return self._chunks(self.provers, rows, self.PROCESS_CHUNK, _worker_check)

    def verify_proofs(self, proofs: Sequence[Proof]) -> list["Future[list[tuple[int, str]]]"]:
        """The proofs of possession that fail, chunk by chunk.  Public keys go to worker processes
        as their DER (a key object does not cross a process boundary)."""
        if self.processes:
            return self._chunks(self.provers, [(line, key.to_der() if isinstance(key, PublicKey) else key,
                                                signature, signed)
                                               for line, key, signature, signed in proofs],
                                self.PROCESS_CHUNK, _worker_proofs)
        return self._chunks(self.provers, proofs, self.THREAD_CHUNK, proof_failures, self.signing.proof_distid)

    def write(self, files: Mapping[Any, bytes], writer: Callable[..., None]) -> "Future[None]":
        if self.files is not None:
            return self.files.submit(writer, files, mode=0o644)
        return _done(lambda: writer(files, mode=0o644))

    @staticmethod
    def _chunks(executor: Executor | None, items: Sequence[Any], size: int, fn: Callable[..., Any],
                *first: Any) -> list["Future[Any]"]:
        futures: list[Future[Any]] = []
        for at in range(0, len(items), size):
            chunk = list(items[at:at + size])
            futures.append(executor.submit(fn, *first, chunk) if executor is not None else _done(fn, *first, chunk))
        return futures


@contextlib.contextmanager
def switching(pool: CryptoPool) -> Iterator[None]:
    """While threads sign beside the calling thread, let the interpreter hand over every 0.5 ms
    instead of every 5: a signing thread wants the interpreter lock back as soon as OpenSSL
    returns, and would otherwise wait for the calling thread's whole time slice each time."""
    if not pool.threads:
        yield
        return
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, 0.0005))
    try:
        yield
    finally:
        sys.setswitchinterval(before)

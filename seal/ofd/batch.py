"""Sealing many OFDs with one seal: the key opened once, worker processes when they pay.

Like `seal.pdf_sign.stamp_batch`: the first two files are sealed here, and worker processes
(forked, so they inherit the opened key; at most `processes`) take the rest only if, at the
measured speed, the rest takes long enough to repay starting them.  Every output is written
whole (temporary file, fsync, rename) or not at all; a file that fails is reported in its
`BatchItem` and does not stop the others.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pki

from ..pdf_sign import WORKER_START_SECONDS, BatchItem, batch_jobs, failed_item
from .errors import OfdError
from .sign import stamp_ofd

__all__ = ["stamp_ofd_batch"]

_options: dict[str, Any] = {}


def _one(job: tuple[str, str]) -> BatchItem:
    source, output = job
    try:
        return BatchItem(Path(source), Path(output), result=stamp_ofd(source, output, **_options))
    except (pki.YinxinError, OSError) as exc:
        return failed_item(source, output, exc)


def stamp_ofd_batch(files: Iterable[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
                    processes: int = 2, progress: Callable[[int, int, BatchItem], None] | None = None,
                    **options: Any) -> list[BatchItem]:
    """Seal every file into `out_dir`/<its name>; `options` are those of `stamp_ofd`."""
    global _options
    jobs = batch_jobs(files, out_dir, processes, OfdError)
    items: list[BatchItem] = []
    total = len(jobs)

    def report(item: BatchItem) -> None:
        items.append(item)
        if progress:
            progress(len(items), total, item)

    _options = dict(options)
    try:
        head = min(2, total)
        per_file = 0.0
        for index in range(head):
            started = time.perf_counter()
            report(_one(jobs[index]))
            per_file = time.perf_counter() - started
        rest = jobs[head:]
        workers = min(processes, len(rest))
        fork = "fork" in multiprocessing.get_all_start_methods()
        if not fork or workers <= 1 or len(rest) * per_file * (1 - 1 / workers) <= WORKER_START_SECONDS:
            for job in rest:
                report(_one(job))
            return items
        ctx = multiprocessing.get_context("fork")
        chunk = max(1, min(8, len(rest) // (4 * workers)))
        with ctx.Pool(workers) as pool:
            for item in pool.imap(_one, rest, chunksize=chunk):
                report(item)
        return items
    finally:
        _options = {}

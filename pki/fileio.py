"""Writing files so that a reader never sees half of one: a temporary file beside the target,
fsynced, renamed over it, the directory fsynced.  Light (standard library only), so that the CLI
can use it without importing cryptography."""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

__all__ = ["atomic_output", "write_file_atomic"]


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, mode: int = 0o600) -> Iterator[tuple[IO[bytes], Path]]:
    """A temporary file beside `path` (opened r+b), fsynced and renamed over `path` only if the
    block succeeds; on any error it is removed and `path` is untouched: never a half-written file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "r+b") as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_file_atomic(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Write to a temporary file beside `path`, fsync, rename: never a half-written file."""
    with atomic_output(path, mode=mode) as (fh, _tmp):
        fh.write(data)

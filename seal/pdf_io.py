"""Sealing a large PDF without reading it twice in a row: copy and hash side by side.

An incremental update leaves the original bytes untouched at the start of the
output, so sealing = copy the input, append the update, hash the /ByteRange
(the copy plus the update), make the file durable.  Done one after the other
that is copy + hash + fsync; here the kernel copies the input into the
temporary output and flushes it to disk in a background thread
(`BackgroundCopy`), while pyHanko works on a `SplicedFile`: a view of the
output that reads the original part from the *input* (identical bytes,
already in the page cache) and the appended part from the output.  pyHanko's
digest therefore runs while the copy is in flight, and the final fsync only
has the appended update left to write.

The original part is read-only through the view (writing there raises), so
the copy thread and pyHanko never touch the same bytes.
"""
from __future__ import annotations

import errno
import io
import os
import threading

__all__ = ["BackgroundCopy", "SplicedFile", "copy_range"]

#: bytes per step when the kernel cannot copy between the two files itself
STEP = 1 << 20


def copy_range(in_fd: int, out_fd: int, size: int) -> None:
    """Copy bytes [0, size) of `in_fd` to the same offsets of `out_fd` (positional: the
    descriptors' offsets are neither used nor moved), by copy_file_range, else pread/pwrite."""
    copied = 0
    copy_file_range = getattr(os, "copy_file_range", None)
    if copy_file_range is not None:
        try:
            while copied < size:
                n = copy_file_range(in_fd, out_fd, size - copied, copied, copied)
                if n == 0:
                    raise OSError(errno.EIO, "the input ended early while being copied")
                copied += n
            return
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
    while copied < size:
        chunk = os.pread(in_fd, min(STEP, size - copied), copied)
        if not chunk:
            raise OSError(errno.EIO, "the input ended early while being copied")
        view = memoryview(chunk)
        while view:
            written = os.pwrite(out_fd, view, copied)
            copied += written
            view = view[written:]


class BackgroundCopy:
    """Copy the input's first `size` bytes into the output and fsync them, in a thread.

    Use as a context manager around the work that overlaps it; leaving the
    block waits for the copy (also when the block failed) and re-raises the
    copy's own error, if any.
    """

    def __init__(self, in_fd: int, out_fd: int, size: int) -> None:
        self._args = (in_fd, out_fd, size)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="seal-copy", daemon=True)

    def _run(self) -> None:
        in_fd, out_fd, size = self._args
        try:
            copy_range(in_fd, out_fd, size)
            os.fsync(out_fd)
        except BaseException as exc:  # handed to the caller in __exit__
            self._error = exc

    def __enter__(self) -> "BackgroundCopy":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._thread.join()
        if self._error is not None and exc_info[0] is None:
            raise self._error


class SplicedFile(io.RawIOBase):
    """The output as it will be: bytes [0, prefix) read from `in_fd` (the original, which
    the background copy is putting there), everything from `prefix` on read from and written
    to `out_fd`.  Positional I/O only, so it shares neither descriptor's offset."""

    def __init__(self, in_fd: int, out_fd: int, prefix: int) -> None:
        super().__init__()
        self._in, self._out, self._prefix = in_fd, out_fd, prefix
        self._pos = 0
        self._end = prefix

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._end}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        pos = self._pos
        if pos >= self._end or not len(view):
            return 0
        if pos < self._prefix:
            n = os.preadv(self._in, [view[:min(len(view), self._prefix - pos)]], pos)
        else:
            n = os.preadv(self._out, [view[:min(len(view), self._end - pos)]], pos)
        self._pos += n
        return n

    def write(self, data) -> int:
        if self._pos < self._prefix:
            raise io.UnsupportedOperation("the original bytes of the document are read-only")
        n = os.pwrite(self._out, data, self._pos)
        self._pos += n
        self._end = max(self._end, self._pos)
        return n

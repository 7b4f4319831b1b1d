"""Writing the sealed OFD: the original entries copied as stored (compressed bytes untouched, no
inflate and deflate again), one entry replaced (Signatures.xml, and OFD.xml for a first seal),
new entries appended, a new central directory.

Sizes stay below ZIP64's thresholds: the reading bounds (`seal.limits`) keep every package
this code writes far smaller, and anything larger is refused rather than written wrongly.
"""
from __future__ import annotations

import struct
import zipfile
import zlib
from datetime import datetime
from typing import IO

from .errors import OfdTooLarge, OfdStructureError
from .package import OfdPackage

__all__ = ["rewrite"]

_LOCAL = struct.Struct("<4s5H3L2H")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_EOCD = struct.Struct("<4s4H2LH")
_LIMIT = 0xFFFFFFFF


def _dos(when: datetime) -> tuple[int, int]:
    year = max(1980, when.year)
    return ((when.hour << 11) | (when.minute << 5) | (when.second // 2),
            ((year - 1980) << 9) | (when.month << 5) | when.day)


def _name_bytes(info: zipfile.ZipInfo) -> tuple[bytes, int]:
    if info.flag_bits & 0x800:
        return info.filename.encode("utf-8"), 0x800
    try:
        return info.filename.encode("cp437"), 0
    except UnicodeEncodeError:
        return info.filename.encode("utf-8"), 0x800


class _Writer:
    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.pos = 0
        self.central: list[bytes] = []

    def _write(self, data: bytes | memoryview) -> None:
        self.out.write(data)
        self.pos += len(data)

    def entry(self, name: bytes, flags: int, method: int, dostime: int, dosdate: int, crc: int, csize: int,
              usize: int, data_chunks, *, external: int = 0, internal: int = 0, create: int = 20,
              comment: bytes = b"") -> None:
        if max(self.pos, csize, usize) >= _LIMIT or len(self.central) >= 0xFFFF:
            raise OfdTooLarge("the sealed OFD would need ZIP64: refused")
        offset = self.pos
        needed = 20
        self._write(_LOCAL.pack(b"PK\x03\x04", needed, flags, method, dostime, dosdate, crc, csize, usize,
                                len(name), 0) + name)
        for chunk in data_chunks:
            self._write(chunk)
        self.central.append(_CENTRAL.pack(b"PK\x01\x02", create, needed, flags, method, dostime, dosdate, crc,
                                          csize, usize, len(name), 0, len(comment), 0, internal, external,
                                          offset) + name + comment)

    def finish(self) -> None:
        start = self.pos
        for record in self.central:
            self._write(record)
        size = self.pos - start
        if start >= _LIMIT:
            raise OfdTooLarge("the sealed OFD would need ZIP64: refused")
        self._write(_EOCD.pack(b"PK\x05\x06", 0, 0, len(self.central), len(self.central), size, start, 0))


def _raw_chunks(package: OfdPackage, info: zipfile.ZipInfo):
    fh = package._fh
    fh.seek(info.header_offset)
    head = fh.read(30)
    if len(head) != 30 or head[:4] != b"PK\x03\x04":
        raise OfdStructureError(f"the OFD entry {info.filename} has no local header", entry=info.filename)
    name_len, extra_len = struct.unpack("<2H", head[26:30])
    fh.seek(info.header_offset + 30 + name_len + extra_len)
    left = info.compress_size
    while left > 0:
        block = fh.read(min(left, 1 << 20))
        if not block:
            raise OfdStructureError(f"the OFD entry {info.filename} is truncated", entry=info.filename)
        left -= len(block)
        yield block


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def rewrite(package: OfdPackage, out: IO[bytes], *, replace: dict[str, bytes], add: list[tuple[str, bytes]],
            when: datetime) -> None:
    """Write `package` to `out`: every entry as stored except those in `replace` (new contents in
    place), then the `add` entries, then the central directory."""
    writer = _Writer(out)
    dostime, dosdate = _dos(when)
    done = set()
    for info in package.zip.infolist():
        key = info.filename.replace("\\", "/").lstrip("/")
        if key in replace:
            data = replace[key]
            name, flags = _name_bytes(info)
            body = _deflate(data)
            writer.entry(name, flags, zipfile.ZIP_DEFLATED, dostime, dosdate, zlib.crc32(data), len(body),
                         len(data), [body], external=info.external_attr)
            done.add(key)
            continue
        name, flags = _name_bytes(info)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise OfdStructureError(f"the OFD entry {info.filename} uses compression method "
                                    f"{info.compress_type}, which OFD does not use", entry=info.filename)
        time_, date_ = (_dos(datetime(*info.date_time)) if info.date_time[0] >= 1980 else (0, 0x21))
        writer.entry(name, flags, info.compress_type, time_, date_, info.CRC, info.compress_size, info.file_size,
                     _raw_chunks(package, info), external=info.external_attr, internal=info.internal_attr,
                     comment=info.comment or b"")
    missing = set(replace) - done
    entries = list(add) + [(name, replace[name]) for name in replace if name in missing]
    for path, data in entries:
        body = _deflate(data)
        name = path.encode("utf-8")
        flags = 0 if name.isascii() else 0x800
        writer.entry(name, flags, zipfile.ZIP_DEFLATED, dostime, dosdate, zlib.crc32(data), len(body), len(data),
                     [body], external=0o100644 << 16, create=(3 << 8) | 20)
    writer.finish()

"""An OFD package (GB/T 33190): a zip read within bounds, its paths, its XML.

Bounds (`seal.limits.ReadLimits`) are checked on what the zip's central directory declares
before anything is inflated: the number of entries, each entry's inflated size, their sum.
Python's zipfile never inflates an entry past its declared size (and checks its CRC), so the
declared sizes bound the work and the memory; file contents are hashed in 1 MiB steps, never
held whole, and only XML below `max_xml_bytes` is parsed.

Paths (ST_Loc): "/a/b" is relative to the package root; "a/b" to the directory of the file
that names it — some producers write root-relative paths without the slash, so a relative
path that does not exist there is looked up from the root too.
"""
from __future__ import annotations

import io
import os
import posixpath
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

from cryptography.hazmat.primitives import hashes

from ..limits import DEFAULT_LIMITS, MiB, ReadLimits
from . import xmlsafe
from .errors import NotAnOfd, OfdStructureError, OfdTooLarge

__all__ = ["OfdPackage", "DocBody", "is_ofd_bytes", "ZIP_MAGIC"]

ZIP_MAGIC = b"PK\x03\x04"
CHUNK = 1 * MiB


def is_ofd_bytes(head: bytes) -> bool:
    """Does the file start like a zip (an OFD is one)?"""
    return head.startswith(ZIP_MAGIC)


@dataclass(frozen=True)
class DocBody:
    """One DocBody of OFD.xml: the document root and where its signatures are listed."""
    index: int
    doc_root: str                 # package path of Document.xml
    signatures: str | None        # package path of Signatures.xml, if OFD.xml names one
    signatures_ref: str | None    # the text OFD.xml has for it


class OfdPackage:
    """A read-only view of an OFD zip.  Use as a context manager (closes the file)."""

    def __init__(self, source: bytes | bytearray | memoryview | str | os.PathLike[str], *,
                 limits: ReadLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._fh: IO[bytes] = io.BytesIO(bytes(source))
            self.size = len(source)
        else:
            path = Path(source)
            if not path.is_file():
                raise NotAnOfd(f"no such file: {str(path)!r}", path=str(path))
            self._fh = open(path, "rb")  # noqa: SIM115 - closed by close()
            self.size = path.stat().st_size
        try:
            head = self._fh.read(4)
            self._fh.seek(0)
            if not is_ofd_bytes(head):
                raise NotAnOfd("the input is not a PDF and not an OFD (not a zip file)")
            try:
                self.zip = zipfile.ZipFile(self._fh)
            except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
                raise NotAnOfd(f"the OFD is not a readable zip file ({exc})") from None
            self._index()
        except BaseException:
            self._fh.close()
            raise

    # ------------------------------------------------------------------ bounds and names

    def _index(self) -> None:
        infos = self.zip.infolist()
        limits = self.limits
        if len(infos) > limits.max_entries:
            raise OfdTooLarge(f"the OFD has {len(infos)} zip entries (at most {limits.max_entries} are read)",
                              entries=len(infos), limit=limits.max_entries)
        total = 0
        self._infos: dict[str, zipfile.ZipInfo] = {}
        self._folded: dict[str, str] = {}
        for info in infos:
            name = info.filename.replace("\\", "/").lstrip("/")
            if info.is_dir() or not name or name.endswith("/"):
                continue
            if info.flag_bits & 0x1:
                raise NotAnOfd(f"the OFD entry {name} is encrypted", entry=name)
            if info.file_size > limits.max_entry_bytes:
                raise OfdTooLarge(f"the OFD entry {name} inflates to {info.file_size} bytes (at most "
                                  f"{limits.max_entry_bytes} are read): refused", entry=name, size=info.file_size)
            total += info.file_size
            if total > limits.max_total_bytes:
                raise OfdTooLarge(f"the OFD inflates to more than {limits.max_total_bytes} bytes: refused",
                                  limit=limits.max_total_bytes)
            if name in self._infos:
                raise OfdStructureError(f"the OFD has two entries named {name}", entry=name)
            self._infos[name] = info
            self._folded.setdefault(name.lower(), name)
        self.inflated_size = total
        if "OFD.xml" not in self._infos:
            raise NotAnOfd("the zip has no OFD.xml: it is not an OFD")

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> "OfdPackage":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def names(self) -> list[str]:
        """Every file of the package (no directories), in zip order."""
        return list(self._infos)

    def info(self, name: str) -> zipfile.ZipInfo:
        return self._infos[name]

    def exists(self, name: str) -> bool:
        return self.lookup(name) is not None

    def lookup(self, name: str) -> str | None:
        """The entry name for a package path (exact, else case-insensitively)."""
        name = name.lstrip("/")
        if name in self._infos:
            return name
        return self._folded.get(name.lower())

    def resolve(self, ref: str, base: str = "") -> str:
        """Package path of the ST_Loc `ref` named in the file `base` (see the module docstring)."""
        text = (ref or "").strip().replace("\\", "/")
        if not text:
            raise OfdStructureError(f"an empty file reference in {base or 'OFD.xml'}", file=base)
        candidates = []
        if text.startswith("/"):
            candidates.append(text)
        else:
            candidates.append(posixpath.join("/" + posixpath.dirname(base), text))
            candidates.append("/" + text)
        resolved = []
        for candidate in candidates:
            norm = posixpath.normpath(candidate)
            if not norm.startswith("/") or norm.startswith("//") or "/../" in norm + "/":
                raise OfdStructureError(f"the reference {ref!r} in {base or 'OFD.xml'} points outside the "
                                        "package", file=base, ref=ref)
            resolved.append(norm.lstrip("/"))
        for path in resolved:
            found = self.lookup(path)
            if found is not None:
                return found
        return resolved[0]

    # ------------------------------------------------------------------ contents

    def open(self, name: str) -> IO[bytes]:
        found = self.lookup(name)
        if found is None:
            raise OfdStructureError(f"the OFD has no file {name}", file=name)
        try:
            return self.zip.open(self._infos[found])
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
            raise OfdStructureError(f"the OFD entry {found} cannot be read ({exc})", file=found) from None

    def read(self, name: str, *, limit: int | None = None) -> bytes:
        """A whole file (XML, a seal, a signature value): at most `limit` (default max_xml_bytes)."""
        found = self.lookup(name)
        if found is None:
            raise OfdStructureError(f"the OFD has no file {name}", file=name)
        limit = self.limits.max_xml_bytes if limit is None else limit
        size = self._infos[found].file_size
        if size > limit:
            raise OfdTooLarge(f"the OFD file {found} is {size} bytes inflated (at most {limit} are read "
                              "whole): refused", file=found, size=size)
        try:
            with self.zip.open(self._infos[found]) as fh:
                return fh.read(limit + 1)[:limit + 1]
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
            raise OfdStructureError(f"the OFD entry {found} cannot be read ({exc})", file=found) from None

    def chunks(self, name: str) -> Iterator[bytes]:
        with self.open(name) as fh:
            try:
                while True:
                    block = fh.read(CHUNK)
                    if not block:
                        return
                    yield block
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise OfdStructureError(f"the OFD entry {name} cannot be read ({exc})", file=name) from None

    def digest(self, name: str, algorithm: str = "sm3", prefix: bytes = b"") -> bytes:
        """Digest of a file's bytes (after `prefix`: SM3 with Z hashes Z ‖ file), streamed."""
        h = hashes.Hash(hashes.SM3() if algorithm == "sm3" else getattr(hashes, algorithm.upper())())
        if prefix:
            h.update(prefix)
        for block in self.chunks(name):
            h.update(block)
        return h.finalize()

    def xml(self, name: str):  # -> lxml element
        found = self.lookup(name)
        if found is None:
            raise OfdStructureError(f"the OFD has no file {name}", file=name)
        return xmlsafe.parse(self.read(found), found)

    # ------------------------------------------------------------------ structure

    def doc_bodies(self) -> list[DocBody]:
        root = self.xml("OFD.xml")
        if xmlsafe.local(root) != "OFD":
            raise NotAnOfd("OFD.xml has no OFD root element")
        bodies = []
        for index, body in enumerate(xmlsafe.findall(root, "DocBody")):
            doc_root = xmlsafe.find(body, "DocRoot")
            if doc_root is None or not (doc_root.text or "").strip():
                raise OfdStructureError("a DocBody of OFD.xml has no DocRoot", file="OFD.xml")
            sig = xmlsafe.find(body, "Signatures")
            sig_text = (sig.text or "").strip() if sig is not None else None
            bodies.append(DocBody(index, self.resolve(doc_root.text, "OFD.xml"),
                                  self.resolve(sig_text, "OFD.xml") if sig_text else None, sig_text or None))
        if not bodies:
            raise NotAnOfd("OFD.xml has no DocBody: there is no document")
        for body in bodies:
            if not self.exists(body.doc_root):
                raise OfdStructureError(f"OFD.xml names {body.doc_root}, which the package lacks",
                                        file=body.doc_root)
        return bodies

"""Pages as pictures: PDF pages rendered with PDFium (pypdfium2) to PNG, cached per document version.

A version is named by its SHA-256, so a cached picture can never show other bytes than the ones it
was made from; the cache lives on disk (``HOME/cache/pages``) and is shared by every worker of a
node.  PDFium is not thread-safe: every use of it in a console process holds `PDFIUM_LOCK` (so does
stamping with an anchor text, which searches the text with PDFium).  Each worker also keeps the
last few documents open, so that page 100 of a long document does not mean parsing it again, and
draws each picture once: a request for a page being drawn (by `console.prerender`'s background
thread, another request, or another worker of the node) waits for that drawing.

Displayed pages: PDFium renders the page as displayed — the CropBox (clipped to the MediaBox),
turned by /Rotate — which is the box `seal.AtPosition` measures from, so a point on a picture maps
to millimetres from the displayed lower-left corner by proportion alone.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

MM = 72 / 25.4
#: zoom levels offered; 1.0 is 96 dpi (a CSS pixel per 1/96 inch)
ZOOMS = (0.75, 1.0, 1.5, 2.0)
PDFIUM_LOCK = threading.RLock()


@dataclass(frozen=True)
class PageSize:
    """A displayed page in millimetres."""

    width_mm: float
    height_mm: float

    def to_dict(self) -> dict[str, float]:
        return {"width_mm": round(self.width_mm, 3), "height_mm": round(self.height_mm, 3)}


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PageRenderer:
    """Renders and caches pages of PDF versions named by their SHA-256."""

    def __init__(self, cache_dir: Path, *, open_documents: int = 4) -> None:
        self.cache_dir = Path(cache_dir)
        self._open: OrderedDict[str, Any] = OrderedDict()
        self._keep = open_documents
        self._inflight: dict[Path, threading.Event] = {}
        self._flight_lock = threading.Lock()

    def _dir(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("a version is named by its SHA-256 (hex)")
        return self.cache_dir / sha256[:2] / sha256

    def _document(self, sha256: str, data: Callable[[], bytes]) -> Any:
        """An open PdfDocument (PDFIUM_LOCK held by the caller)."""
        import pypdfium2 as pdfium
        doc = self._open.get(sha256)
        if doc is not None:
            self._open.move_to_end(sha256)
            return doc
        doc = pdfium.PdfDocument(data())
        doc.init_forms()          # form fields — a seal is a signature widget — are drawn only then
        self._open[sha256] = doc
        while len(self._open) > self._keep:
            _, old = self._open.popitem(last=False)
            old.close()
        return doc

    def _path(self, sha256: str, page: int, zoom: float) -> Path:
        return self._dir(sha256) / f"p{page}-z{zoom:g}.png"

    def cached(self, sha256: str, page: int, zoom: float = 1.0) -> bool:
        """Whether the picture of that page is in the cache."""
        return self._path(sha256, page, zoom).exists()

    def mark(self, sha256: str, name: str) -> None:
        """Leave a mark for the version (`Prerenderer`: its likely pages are drawn)."""
        _atomic_write(self._dir(sha256) / f"{name}.mark", b"")

    def marked(self, sha256: str, name: str) -> bool:
        return (self._dir(sha256) / f"{name}.mark").exists()

    @staticmethod
    def _read_sizes(path: Path) -> list[PageSize] | None:
        try:
            return [PageSize(**p) for p in json.loads(path.read_text())]
        except (OSError, ValueError, TypeError):
            return None

    def sizes(self, sha256: str, data: Callable[[], bytes]) -> list[PageSize]:
        """The displayed size of every page."""
        path = self._dir(sha256) / "pages.json"
        found = self._read_sizes(path)
        if found is not None:
            return found
        with PDFIUM_LOCK:
            found = self._read_sizes(path)      # written meanwhile by another thread of this worker
            if found is not None:
                return found
            doc = self._document(sha256, data)
            sizes = []
            for i in range(len(doc)):
                page = doc[i]
                try:
                    w, h = page.get_size()
                finally:
                    page.close()
                sizes.append(PageSize(w / MM, h / MM))
        _atomic_write(path, json.dumps([s.to_dict() for s in sizes]).encode())
        return sizes

    def png(self, sha256: str, data: Callable[[], bytes], page: int, zoom: float = 1.0) -> bytes:
        """Page `page` (1-based) at `zoom` as PNG.  ValueError for a page or zoom out of range."""
        if zoom not in ZOOMS:
            raise ValueError(f"zoom is one of {', '.join(map(str, ZOOMS))}")
        path = self._path(sha256, page, zoom)
        try:
            return path.read_bytes()
        except OSError:
            pass
        # one drawing of a picture at a time: a request for a page this worker's pre-renderer (or
        # another request) is drawing waits for that drawing instead of making a second one, and so
        # does one in another worker of the node (a lock file beside the picture)
        with self._flight_lock:
            event = self._inflight.get(path)
            mine = event is None
            if mine:
                event = self._inflight[path] = threading.Event()
        if not mine:
            event.wait(30)
            try:
                return path.read_bytes()
            except OSError:
                return self._draw_once(sha256, data, page, zoom, path)    # that drawing failed: try here
        try:
            return self._draw_once(sha256, data, page, zoom, path)
        finally:
            with self._flight_lock:
                self._inflight.pop(path, None)
            event.set()

    def _draw_once(self, sha256: str, data: Callable[[], bytes], page: int, zoom: float, path: Path) -> bytes:
        import fcntl
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.parent / f".{path.name}.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)        # released when closed, or when a worker dies
            try:
                return path.read_bytes()            # drawn by another worker meanwhile
            except OSError:
                return self._draw(sha256, data, page, zoom, path)

    def _draw(self, sha256: str, data: Callable[[], bytes], page: int, zoom: float, path: Path) -> bytes:
        with PDFIUM_LOCK:
            doc = self._document(sha256, data)
            if not 1 <= page <= len(doc):
                raise ValueError(f"page {page} is out of range: the document has {len(doc)} pages")
            pdf_page = doc[page - 1]
            try:
                bitmap = pdf_page.render(scale=zoom * 96 / 72, may_draw_forms=True)
                image = bitmap.to_pil()
            finally:
                pdf_page.close()
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG", compress_level=1)
        png = out.getvalue()
        _atomic_write(path, png)
        return png

    def close(self) -> None:
        with PDFIUM_LOCK:
            for doc in self._open.values():
                doc.close()
            self._open.clear()


def point_to_mm(size: PageSize, fx: float, fy: float) -> tuple[float, float]:
    """A point given as fractions of the displayed picture (from the top-left corner) in millimetres
    from the displayed page's lower-left corner."""
    return fx * size.width_mm, (1.0 - fy) * size.height_mm


__all__ = ["PageRenderer", "PageSize", "ZOOMS", "PDFIUM_LOCK", "point_to_mm", "MM"]

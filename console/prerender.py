"""The pages a person is most likely to open, rendered before they are asked for.

Opening a document shows page 1 first, and a sealed version is looked at where its seal is.  A
worker renders those pages of a document's current version into the shared picture cache
(`PageRenderer`, named by the version's SHA-256) in a background thread of its own when the console stored the version (a new document, a revision, a seal, a document
received) and when it lists the document in someone's 待办 — so no request waits for it.  Nothing is
shown from here: a picture is still served only to an actor allowed to see the document, and the
bytes are read through `DocumentFlow.pdf`, checked against their recorded digests, as a request
would read them.

The queue is bounded (a full queue drops the job: the page is then rendered when asked for, as
before), and a document queued in the last `recheck` seconds is not queued again.
"""
from __future__ import annotations

import io
import logging
import queue
import threading
import time
from collections import OrderedDict
from typing import Any, Iterable

log = logging.getLogger("yinxin.console")

#: at most this many pages holding a seal are rendered ahead, besides page 1
SEAL_PAGES = 3
#: the mark left in a version's cache directory once its likely pages are drawn
MARK = "ahead"


def seal_pages(data: bytes, limit: int = SEAL_PAGES) -> list[int]:
    """The pages (1-based) carrying a signature field's widget — where a seal is drawn — at most `limit`."""
    import pikepdf
    found: list[int] = []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for number, page in enumerate(pdf.pages, 1):
            annots = page.obj.get("/Annots")
            if annots is None:
                continue
            for annot in annots:
                if not isinstance(annot, pikepdf.Dictionary) or annot.get("/Subtype") != pikepdf.Name.Widget:
                    continue
                kind = annot.get("/FT")
                parent = annot.get("/Parent")
                if kind is None and isinstance(parent, pikepdf.Dictionary):
                    kind = parent.get("/FT")
                if kind == pikepdf.Name.Sig:
                    found.append(number)
                    break
            if len(found) >= limit:
                break
    return found


class Prerenderer:
    """One worker's background renderer of first pages (a daemon thread, started on first use)."""

    def __init__(self, renderer: Any, flow: Any, *, zoom: float = 1.0, max_queue: int = 256,
                 recheck: float = 60.0) -> None:
        self.renderer = renderer
        self.flow = flow
        self.zoom = zoom
        self.recheck = recheck
        self._queue: queue.Queue[int] = queue.Queue(maxsize=max_queue)
        self._queued: OrderedDict[int, float] = OrderedDict()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def documents(self, doc_ids: Iterable[int], *, force: bool = False) -> None:
        """Render ahead the likely pages of these documents' current versions (never blocks).
        `force`: the version just changed, queue it even if it was queued a moment ago."""
        now = time.monotonic()
        with self._lock:
            for doc_id in doc_ids:
                last = self._queued.get(doc_id)
                if not force and last is not None and now - last < self.recheck:
                    continue
                try:
                    self._queue.put_nowait(doc_id)
                except queue.Full:
                    return
                self._idle.clear()
                self._queued[doc_id] = now
                self._queued.move_to_end(doc_id)
                while len(self._queued) > 4096:
                    self._queued.popitem(last=False)
            if self._thread is None and not self._queue.empty():
                self._thread = threading.Thread(target=self._loop, name="yinxin-prerender", daemon=True)
                self._thread.start()

    def wait_idle(self, timeout: float) -> bool:
        """True once the queue is empty and no job runs (for tests and the benchmark's bookkeeping)."""
        return self._idle.wait(timeout)

    def _loop(self) -> None:
        # at the worker's own CPU priority: a request may be waiting for this very drawing (a lower
        # one starved it on a busy machine, and the request with it)
        while True:
            doc_id = self._queue.get()
            try:
                self.render(doc_id)
            except Exception as exc:    # a document that cannot be read or drawn is answered when asked for
                log.info("pre-rendering document %s: %s", doc_id, exc)
            finally:
                with self._lock:
                    if self._queue.empty():
                        self._idle.set()

    def render(self, doc_id: int) -> list[int]:
        """Render page 1 and the seal's pages of the document's current version if they are not
        in the cache; the pages rendered."""
        doc = self.flow.show(doc_id)
        version = next(v for v in doc.versions if v.number == doc.current_version)
        sha = version.digests.sha256
        if self.renderer.marked(sha, MARK):
            return []
        data = self.flow.pdf(doc_id, version.number)        # checked against the recorded digests
        done = []
        if not self.renderer.cached(sha, 1, self.zoom):     # page 1 first: it may be asked for any moment
            self.renderer.png(sha, lambda: data, 1, self.zoom)
            done.append(1)
        count = len(self.renderer.sizes(sha, lambda: data))
        for page in seal_pages(data):
            if 1 < page <= count and not self.renderer.cached(sha, page, self.zoom):
                self.renderer.png(sha, lambda: data, page, self.zoom)
                done.append(page)
        self.renderer.mark(sha, MARK)
        return done


__all__ = ["Prerenderer", "seal_pages", "SEAL_PAGES"]

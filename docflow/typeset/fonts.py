"""Fonts by role, found by fontconfig, embedded as TrueType subsets.

A template names, for each role, a list of candidates tried in order: a fontconfig
pattern (``"FangSong"``, ``"Noto Serif CJK SC:weight=bold"``, ``"serif:lang=zh-cn"``) or
``"file:/path/to/font.ttf"``.  A named family counts only if fontconfig really has it
(``fc-match`` always answers with *something*: we accept its answer only when one of the
font's family names is the one asked for); a generic family (``serif``, ``sans-serif``)
counts when the face has Chinese characters.  The first candidate that counts is the
role's font; the shipped template ends every list with a generic fall-back, so a machine
with any CJK font typesets, and says which font stood in (`ResolvedFont.fallback`).

Faces are read with fontTools; the glyphs a document uses are copied (CFF outlines
converted to quadratic curves) into one small TrueType font per role and document,
which reportlab embeds with a ToUnicode map: every font in the PDF is embedded, and the
text stays searchable and extractable.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Sequence

from .errors import MissingGlyphs, TemplateError

ROLES = ("xiaobiaosong", "fangsong", "heiti", "kaiti", "songti")
ROLE_NAMES = {"xiaobiaosong": "小标宋", "fangsong": "仿宋", "heiti": "黑体", "kaiti": "楷体", "songti": "宋体"}
GENERIC = {"serif", "sans-serif", "sans", "monospace", ""}
PROBE = "国文件局号日"
_LOCK = threading.RLock()


@dataclass(frozen=True)
class ResolvedFont:
    role: str
    path: str
    index: int
    family: str
    candidate: str          # the candidate that matched
    fallback: bool          # not the first candidate of the list

    def to_dict(self) -> dict[str, object]:
        return {"role": self.role, "family": self.family, "path": self.path, "index": self.index,
                "candidate": self.candidate, "fallback": self.fallback}


def _fc_match(pattern: str) -> tuple[str, int, tuple[str, ...]] | None:
    if shutil.which("fc-match") is None:
        raise TemplateError("fontconfig's fc-match is not installed: fonts are found with fontconfig "
                            "(apt-get install fontconfig), or name them as file:/path", field="fonts")
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}|%{index}|%{family}", pattern], capture_output=True,
                             text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TemplateError(f"fc-match failed: {exc}", field="fonts") from None
    path, _, rest = out.partition("|")
    index, _, families = rest.partition("|")
    if not path or not index.isdigit() or not os.path.isfile(path):
        return None
    return path, int(index), tuple(f.strip() for f in families.split(",") if f.strip())


def _norm(name: str) -> str:
    return "".join(name.lower().split())


@lru_cache(maxsize=256)
def resolve_candidate(candidate: str, base_dir: str = "") -> tuple[str, int, str] | None:
    """(path, face index, family) for one candidate, or None when this machine does not have it."""
    if candidate.startswith("file:"):
        spec = candidate[5:]
        spec, _, idx = spec.partition("#")
        path = os.path.join(base_dir, spec) if base_dir and not os.path.isabs(spec) else spec
        if not os.path.isfile(path):
            return None
        face = load_face(path, int(idx) if idx.isdigit() else 0)
        return (path, face.index, face.family) if face.has(PROBE) else None
    found = _fc_match(candidate)
    if found is None:
        return None
    path, index, families = found
    family = candidate.split(":", 1)[0].strip()
    if _norm(family) in GENERIC:
        ok = load_face(path, index).has(PROBE)
    else:
        ok = _norm(family) in {_norm(f) for f in families}
    return (path, index, families[0] if families else family) if ok else None


def resolve_role(role: str, candidates: Sequence[str], base_dir: str = "") -> ResolvedFont:
    for n, candidate in enumerate(candidates):
        hit = resolve_candidate(candidate, base_dir)
        if hit is not None:
            return ResolvedFont(role, hit[0], hit[1], hit[2], candidate, n > 0)
    raise TemplateError(f"no font for {ROLE_NAMES.get(role, role)} ({role}): none of "
                        f"{', '.join(repr(c) for c in candidates)} is installed (fontconfig finds none of them)",
                        field=f"fonts.{role}", candidates=list(candidates))


# --------------------------------------------------------------------------- faces and subsets

class Face:
    """One face of a font file: its cmap, advance widths and glyphs converted to TrueType (cached)."""

    def __init__(self, path: str, index: int) -> None:
        from fontTools.ttLib import TTFont
        try:
            self.font = TTFont(path, fontNumber=index, lazy=True)
            self.cmap = self.font.getBestCmap() or {}
            self.upem = self.font["head"].unitsPerEm
            self.hmtx = self.font["hmtx"]
            self.glyph_set = self.font.getGlyphSet()
        except Exception as exc:  # fontTools raises anything on a damaged file
            raise TemplateError(f"cannot read font {path}: {type(exc).__name__}: {exc}", font=path) from None
        self.path, self.index = path, index
        name = self.font["name"] if "name" in self.font else None
        self.family = (name.getDebugName(16) or name.getDebugName(1) or "?") if name else "?"
        self._glyphs: dict[str, object] = {}
        self._advances: dict[str, float] = {}

    def has(self, text: str) -> bool:
        return all(ord(ch) in self.cmap or ch in " \u3000" for ch in text)

    def missing(self, text: Iterable[str]) -> list[str]:
        out: list[str] = []
        for ch in text:
            if ord(ch) not in self.cmap and ch not in out:
                out.append(ch)
        return out

    def advance(self, ch: str) -> float:
        """Advance width in 1/1000 em."""
        name = self.cmap.get(ord(ch))
        if name is None:
            return 500.0 if ch == " " else 1000.0
        adv = self._advances.get(name)
        if adv is None:
            adv = self._advances[name] = self.hmtx[name][0] * 1000.0 / self.upem
        return adv

    def ttglyph(self, name: str):  # -> fontTools glyf Glyph, scaled to 1000 units per em
        with _LOCK:
            glyph = self._glyphs.get(name)
            if glyph is None:
                from fontTools.pens.cu2quPen import Cu2QuPen
                from fontTools.pens.transformPen import TransformPen
                from fontTools.pens.ttGlyphPen import TTGlyphPen
                pen = TTGlyphPen(None)
                scale = 1000.0 / self.upem
                self.glyph_set[name].draw(TransformPen(Cu2QuPen(pen, max_err=1.0, reverse_direction=True),
                                                       (scale, 0, 0, scale, 0, 0)))
                glyph = self._glyphs[name] = pen.glyph()
            return glyph


@lru_cache(maxsize=32)
def _face(path: str, index: int, _mtime: int) -> Face:
    return Face(path, index)


def load_face(path: str, index: int = 0) -> Face:
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise TemplateError(f"cannot read font {path}: {exc.strerror}", font=path) from None
    return _face(path, index, mtime)


def require_glyphs(face: Face, role: str, text: Iterable[str], where: str) -> None:
    missing = [ch for ch in face.missing(ch for ch in text if ch not in " \u3000\n")]
    if missing:
        shown = " ".join(f"{ch} (U+{ord(ch):04X})" for ch in missing)
        raise MissingGlyphs(f"the {ROLE_NAMES.get(role, role)} font {face.family!r} has no glyph for {shown} "
                            f"({where}); use other characters or a template font that has them",
                            characters="".join(missing), role=role, font=face.path)


@lru_cache(maxsize=64)
def subset_ttf(path: str, index: int, chars: str) -> tuple[str, bytes]:
    """(PostScript name, TrueType bytes) of a font holding exactly `chars` of a face."""
    from fontTools.fontBuilder import FontBuilder
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    face = load_face(path, index)
    order, cmap, glyphs, advances = [".notdef"], {}, {".notdef": TTGlyphPen(None).glyph()}, {".notdef": 1000}
    for ch in chars:
        name = face.cmap.get(ord(ch))
        if name is None:
            continue
        if name not in glyphs:
            glyphs[name] = face.ttglyph(name)
            order.append(name)
            advances[name] = round(face.advance(ch))
        cmap[ord(ch)] = name
    fb = FontBuilder(1000, isTTF=True)
    fb.setupGlyphOrder(order)
    fb.setupCharacterMap(cmap)
    fb.setupGlyf(glyphs)
    glyf = fb.font["glyf"]
    fb.setupHorizontalMetrics({g: (advances[g], getattr(glyf[g], "xMin", 0)) for g in order})
    fb.setupHorizontalHeader(ascent=880, descent=-120)
    # one PostScript name per face and character set: reportlab keys its glyph tables by it
    digest = hashlib.sha256(f"{path}|{index}|{chars}".encode()).hexdigest()[:12]
    family = "Yx" + digest
    fb.setupNameTable({"familyName": family, "styleName": "Regular", "psName": f"{family}-Regular"})
    fb.setupOS2(sTypoAscender=880, sTypoDescender=-120, usWinAscent=880, usWinDescent=120)
    fb.setupPost()
    out = io.BytesIO()
    fb.save(out)
    return family, out.getvalue()


def register(path: str, index: int, chars: str) -> str:
    """A reportlab font name for the subset (registered once)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    name, data = subset_ttf(path, index, "".join(sorted(set(chars))))
    with _LOCK:
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, io.BytesIO(data)))
    return name

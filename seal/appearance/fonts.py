"""Finding a CJK font with fontconfig and turning its glyphs into path outlines.

A seal is drawn from glyph outlines, never from text: the PDF then needs no font
resources and looks the same in every viewer.  Any TrueType (quadratic `glyf`) or
OpenType/CFF (cubic) font works, single fonts and collections (.ttc/.otc) alike.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache

from fontTools.pens.basePen import BasePen
from fontTools.ttLib import TTCollection, TTFont

from .errors import AppearanceError
from .geometry import PathOps

#: characters every seal font must have; used to check what fontconfig offers
PROBE_TEXT = "中国公司有限章印专用"

#: Windows name-table language ids that mark a face designed for Simplified Chinese
_ZH_HANS_LANGS = {0x0804, 0x1004}  # PRC, Singapore
_ZH_HANT_LANGS = {0x0404, 0x0C04, 0x1404}  # Taiwan, Hong Kong, Macao

_FC_TIMEOUT = 30
#: fontTools reads lazily from an open file that the faces of a collection share, so
#: glyph reading is serialised across all faces
_READ_LOCK = threading.Lock()


def find_cjk_font() -> str:
    """The path of a CJK font fontconfig knows; raises AppearanceError if there is none."""
    return find_cjk_face()[0]


def find_cjk_face() -> tuple[str, int]:
    """(path, face index) of the CJK font to draw seals with.

    Official seals are cut in Song (宋体) characters, so a serif Simplified-Chinese face is
    asked for first; fontconfig's answer is only taken if the face really has the
    characters (`fc-match` falls back to a Latin font when nothing fits).  Failing that,
    any font whose charset holds the probe characters will do, Simplified-Chinese and
    Song faces first.
    """
    for pattern in ("serif:lang=zh-cn:weight=bold", ":lang=zh-cn"):
        for path, index, _ in _fontconfig(["fc-match", pattern]):
            if _face_has(path, index, PROBE_TEXT):
                return path, index
    probe = " ".join(f"{ord(ch):x}" for ch in PROBE_TEXT)
    candidates = _fontconfig(["fc-list", f":charset={probe}"])
    for path, index, _ in sorted(candidates, key=lambda c: -_family_preference(c[2], set())):
        if _face_has(path, index, PROBE_TEXT):
            return path, index
    raise AppearanceError(
        "no CJK font found by fontconfig; install one (e.g. fonts-noto-cjk) "
        "or configure a font path", field="font_path")


def _fontconfig(argv: list[str]) -> list[tuple[str, int, str]]:
    """(file, face index, family) of each font a fontconfig tool names."""
    if shutil.which(argv[0]) is None:
        raise AppearanceError(
            f"fontconfig's {argv[0]} is not installed; configure a font path instead",
            field="font_path")
    command = [argv[0], "-f", "%{index}|%{family[0]}|%{file}\n", *argv[1:]]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=_FC_TIMEOUT,
                                check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AppearanceError(f"{argv[0]} failed: {exc}", field="font_path") from exc
    found = []
    for line in result.stdout.splitlines():
        index, _, rest = line.partition("|")
        family, _, path = rest.partition("|")
        if index.isdigit() and path and os.path.isfile(path):
            found.append((path, int(index), family))
    return found


def _face_has(path: str, index: int, text: str) -> bool:
    try:
        face = load_face(path, index)
    except AppearanceError:
        return False
    return not face.missing(text)


# --------------------------------------------------------------------------- faces

@dataclass(frozen=True)
class EmBox:
    """The ideographic em box in font units: glyphs are positioned by it, not by ink."""

    bottom: float
    height: float


class FontFace:
    """One face of a font file, with a cache of its glyph outlines (safe across threads)."""

    def __init__(self, path: str, index: int, font: TTFont) -> None:
        self.path = path
        self.index = index
        self._font = font
        self.units_per_em = int(font["head"].unitsPerEm)
        self._cmap = font.getBestCmap() or {}
        self._glyphs = font.getGlyphSet()
        self.em_box = _em_box(font, self.units_per_em)
        self.family = _family_name(font)
        self.preference = _name_preference(font, self.family)
        self._outlines: dict[str, tuple[PathOps, float]] = {}

    def missing(self, text: str) -> list[str]:
        """The characters of `text` the face has no glyph for, each once, in order."""
        seen: list[str] = []
        for ch in text:
            if ord(ch) not in self._cmap and ch not in seen:
                seen.append(ch)
        return seen

    def require(self, text: str) -> None:
        missing = self.missing(text)
        if missing:
            shown = " ".join(f"{ch} (U+{ord(ch):04X})" for ch in missing)
            raise AppearanceError(
                f"font {self.family!r} ({self.path}) has no glyph for: {shown}",
                font=self.path, characters="".join(missing))

    def outline(self, ch: str) -> tuple[PathOps, float]:
        """(path operations in font units, advance width) for one character."""
        with _READ_LOCK:
            cached = self._outlines.get(ch)
            if cached is None:
                self.require(ch)
                try:
                    glyph = self._glyphs[self._cmap[ord(ch)]]
                    pen = _RecordingPathPen(self._glyphs)
                    glyph.draw(pen)
                    cached = (tuple(pen.ops), float(glyph.width))
                except Exception as exc:  # damaged glyph data: any error type
                    raise AppearanceError(
                        f"font {self.family!r} ({self.path}): the glyph for {ch} "
                        f"(U+{ord(ch):04X}) cannot be read ({type(exc).__name__}: {exc})",
                        font=self.path, characters=ch) from exc
                self._outlines[ch] = cached
            return cached


def _em_box(font: TTFont, upem: int) -> EmBox:
    """Bottom of the ideographic em box: BASE 'ideo' baseline, else OS/2 typo metrics."""
    if "BASE" in font:
        try:
            axis = font["BASE"].table.HorizAxis
            tags = list(axis.BaseTagList.BaselineTag)
            if "ideo" in tags:
                for record in axis.BaseScriptList.BaseScriptRecord:
                    if record.BaseScriptTag == "hani" and record.BaseScript.BaseValues:
                        coords = record.BaseScript.BaseValues.BaseCoord
                        return EmBox(float(coords[tags.index("ideo")].Coordinate), float(upem))
        except (AttributeError, IndexError, TypeError):
            pass
    if "OS/2" in font:
        os2 = font["OS/2"]
        if os2.sTypoAscender - os2.sTypoDescender == upem:
            return EmBox(float(os2.sTypoDescender), float(upem))
    return EmBox(-0.12 * upem, float(upem))  # the usual CJK descent


def _family_name(font: TTFont) -> str:
    if "name" not in font:
        return "?"
    name = font["name"]
    return name.getDebugName(16) or name.getDebugName(1) or "?"


def _name_preference(font: TTFont, family: str) -> int:
    langs = {r.langID for r in font["name"].names if r.platformID == 3} if "name" in font else set()
    return _family_preference(family, langs)


def _family_preference(family: str, langs: set[int]) -> int:
    """Higher for faces closer to a seal's Simplified-Chinese Song type."""
    score = 0
    if langs & _ZH_HANS_LANGS or re.search(r"\b(SC|GB|Simplified|CN)\b", family):
        score += 4
    elif langs & _ZH_HANT_LANGS or re.search(r"\b(TC|HK)\b", family):
        score += 2
    if re.search(r"serif|song|ming|宋", family, re.IGNORECASE) and "sans" not in family.lower():
        score += 2
    if re.search(r"mono", family, re.IGNORECASE):
        score -= 3
    return score


def load_face(path: str | os.PathLike[str], index: int | None = None) -> FontFace:
    """Open a face; in a collection without an index, the Simplified-Chinese face is chosen."""
    path = str(path)
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise AppearanceError(f"cannot read font {path}: {exc.strerror}", font=path) from exc
    return _load_face(path, index, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _load_face(path: str, index: int | None, _mtime: int, _size: int) -> FontFace:
    try:
        if index is None and _is_collection(path):
            faces = [FontFace(path, i, f) for i, f in enumerate(TTCollection(path, lazy=True).fonts)]
            usable = [f for f in faces if not f.missing(PROBE_TEXT)] or faces
            return max(usable, key=lambda f: (f.preference, -f.index))
        return FontFace(path, index or 0, TTFont(path, fontNumber=index or 0, lazy=True))
    except AppearanceError:
        raise
    except Exception as exc:  # fontTools raises anything on a damaged file
        raise AppearanceError(f"cannot read font {path}: not a usable TrueType/OpenType font "
                              f"({type(exc).__name__}: {exc})", font=path) from exc


def _is_collection(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"ttcf"


class _RecordingPathPen(BasePen):
    """Records outlines as PDF-like operations; quadratic segments become exact cubics.

    BasePen splits TrueType's implied on-curve points and elevates each quadratic
    segment to the cubic with control points p0 + 2/3(q - p0) and p2 + 2/3(q - p2), which
    is the same curve.  Components are decomposed through the glyph set.
    """

    def __init__(self, glyph_set) -> None:  # a fontTools glyph set
        super().__init__(glyph_set)
        self.ops: list[tuple[str, tuple[float, ...]]] = []

    def _moveTo(self, pt):  # fontTools pen API
        self.ops.append(("m", (float(pt[0]), float(pt[1]))))

    def _lineTo(self, pt):
        self.ops.append(("l", (float(pt[0]), float(pt[1]))))

    def _curveToOne(self, pt1, pt2, pt3):
        self.ops.append(("c", tuple(float(v) for v in (*pt1, *pt2, *pt3))))

    def _closePath(self):
        self.ops.append(("h", ()))

    def _endPath(self):  # an open contour is filled closed, as PDF does
        self.ops.append(("h", ()))

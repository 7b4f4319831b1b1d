"""The drawn seal: filled vector shapes, and their PDF, SVG and PNG forms."""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field

from .geometry import PathOps
from .raster import png_bytes, rasterise

MM = 72 / 25.4  # PDF points per millimetre


@dataclass(frozen=True)
class Shape:
    """One filled outline in PDF points (origin lower-left).  `even_odd` picks the rule:
    glyphs use non-zero (overlapping contours stay filled, counters stay open because
    fonts wind them the other way); the ring and border are two nested contours filled
    even-odd so the hole does not depend on their direction."""

    ops: PathOps
    even_odd: bool = False
    role: str = ""  # "ring", "star", "organisation", "name", "code", "border", "personal"


@dataclass(frozen=True)
class SealDrawing:
    """An immutable seal picture inside the box [0, 0, width_pt, height_pt]."""

    width_pt: float
    height_pt: float
    color: tuple[int, int, int]
    shapes: tuple[Shape, ...] = field(repr=False)
    seal_type: str = ""
    font_path: str = ""
    font_index: int = 0

    @property
    def width_mm(self) -> float:
        return self.width_pt / MM

    @property
    def height_mm(self) -> float:
        return self.height_pt / MM

    def to_bytes(self) -> bytes:
        """The drawing as compressed JSON: what a seal record keeps, so that stamping needs no font
        and a seal looks the same whatever fonts the stamping machine has."""
        data = {"v": 1, "w": self.width_pt, "h": self.height_pt, "color": list(self.color),
                "type": self.seal_type, "font": self.font_path, "index": self.font_index,
                "shapes": [[[[op, list(args)] for op, args in s.ops], s.even_odd, s.role] for s in self.shapes]}
        return zlib.compress(json.dumps(data, separators=(",", ":")).encode("utf-8"), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> "SealDrawing":
        """The inverse of `to_bytes` (floats round-trip exactly through JSON)."""
        obj = json.loads(zlib.decompress(data))
        if obj.get("v") != 1:
            raise ValueError(f"unknown seal drawing version {obj.get('v')!r}")
        shapes = tuple(Shape(tuple((str(op), tuple(float(a) for a in args)) for op, args in ops), bool(even_odd),
                             str(role)) for ops, even_odd, role in obj["shapes"])
        return cls(float(obj["w"]), float(obj["h"]), tuple(int(c) for c in obj["color"]),  # type: ignore[arg-type]
                   shapes, seal_type=str(obj["type"]), font_path=str(obj["font"]), font_index=int(obj["index"]))

    def pdf_content(self) -> bytes:
        """Content-stream operators: paths only, fill colour set inside, q/Q balanced."""
        r, g, b = (_num(c / 255) for c in self.color)
        lines = ["q", f"{r} {g} {b} rg"]
        for shape in self.shapes:
            parts = []
            for op, args in shape.ops:
                parts.append(" ".join(_num(v) for v in args) + (" " if args else "") + op)
            lines.append(" ".join(parts) + (" f*" if shape.even_odd else " f"))
        lines.append("Q")
        return ("\n".join(lines) + "\n").encode("ascii")

    def svg(self) -> str:
        """A standalone SVG of the same paths; one user unit is one PDF point."""
        w, h = _num(self.width_pt), _num(self.height_pt)
        fill = "#{:02x}{:02x}{:02x}".format(*self.color)
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            (f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" '
             f'width="{_num(self.width_mm)}mm" height="{_num(self.height_mm)}mm" '
             f'viewBox="0 0 {w} {h}">'),
            f'<g fill="{fill}" stroke="none">',
        ]
        for shape in self.shapes:
            rule = "evenodd" if shape.even_odd else "nonzero"
            out.append(f'<path fill-rule="{rule}" d="{self._svg_path(shape.ops)}"/>')
        out.append("</g>")
        out.append("</svg>")
        return "\n".join(out) + "\n"

    def _svg_path(self, ops: PathOps) -> str:
        h = self.height_pt
        parts = []
        for op, args in ops:
            flipped = [v if i % 2 == 0 else h - v for i, v in enumerate(args)]
            letter = {"m": "M", "l": "L", "c": "C", "h": "Z"}[op]
            parts.append(letter + " ".join(_num(v) for v in flipped))
        return "".join(parts)

    def png(self, dpi: int = 300) -> bytes:
        """RGBA PNG on a transparent background, rasterised from the same paths."""
        if not isinstance(dpi, int) or isinstance(dpi, bool) or not 36 <= dpi <= 1200:
            raise ValueError("dpi must be an integer between 36 and 1200")
        image = rasterise([(s.ops, s.even_odd) for s in self.shapes],
                          self.width_pt, self.height_pt, self.color, dpi)
        return png_bytes(image, dpi)


def _num(value: float) -> str:
    """A short decimal for PDF/SVG: three places, no trailing zeros, never exponent form."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text

"""Plane geometry for seal pictures: affine maps, path operations, flattening.

A path is a tuple of operations named after their PDF operators: ("m", (x, y)),
("l", (x, y)), ("c", (x1, y1, x2, y2, x3, y3)) and ("h", ()).  The PDF, SVG and PNG
renderers all consume these same tuples, so the three pictures agree by construction.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PathOps = tuple[tuple[str, tuple[float, ...]], ...]

#: the cubic Bézier constant for a quarter circle
_KAPPA = 4 * (math.sqrt(2) - 1) / 3


@dataclass(frozen=True)
class Affine:
    """x' = a·x + c·y + e, y' = b·x + d·y + f (PDF's matrix order)."""

    a: float = 1.0
    b: float = 0.0
    c: float = 0.0
    d: float = 1.0
    e: float = 0.0
    f: float = 0.0

    @staticmethod
    def translate(tx: float, ty: float) -> Affine:
        return Affine(e=tx, f=ty)

    @staticmethod
    def scale(sx: float, sy: float | None = None) -> Affine:
        return Affine(a=sx, d=sx if sy is None else sy)

    @staticmethod
    def frame(origin: tuple[float, float], right: tuple[float, float],
              up: tuple[float, float]) -> Affine:
        """Maps (1, 0) to the vector `right`, (0, 1) to `up`, (0, 0) to `origin`."""
        return Affine(right[0], right[1], up[0], up[1], origin[0], origin[1])

    def then(self, other: Affine) -> Affine:
        """This map followed by `other`."""
        return Affine(
            other.a * self.a + other.c * self.b,
            other.b * self.a + other.d * self.b,
            other.a * self.c + other.c * self.d,
            other.b * self.c + other.d * self.d,
            other.a * self.e + other.c * self.f + other.e,
            other.b * self.e + other.d * self.f + other.f,
        )

    def point(self, x: float, y: float) -> tuple[float, float]:
        return (self.a * x + self.c * y + self.e, self.b * x + self.d * y + self.f)

    def apply_ops(self, ops: PathOps) -> PathOps:
        out = []
        for op, args in ops:
            pts: list[float] = []
            for i in range(0, len(args), 2):
                pts.extend(self.point(args[i], args[i + 1]))
            out.append((op, tuple(pts)))
        return tuple(out)


def circle(cx: float, cy: float, r: float, clockwise: bool = False) -> PathOps:
    """A closed circle of four cubic arcs (radial error below 0.03 % of r)."""
    s = -1.0 if clockwise else 1.0
    k = _KAPPA * r
    angles = [s * i * math.pi / 2 for i in range(5)]
    pts = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in angles]
    tangents = [(-s * math.sin(a) * k, s * math.cos(a) * k) for a in angles]
    ops: list[tuple[str, tuple[float, ...]]] = [("m", pts[0])]
    for i in range(4):
        (x0, y0), (x1, y1) = pts[i], pts[i + 1]
        (tx0, ty0), (tx1, ty1) = tangents[i], tangents[i + 1]
        ops.append(("c", (x0 + tx0, y0 + ty0, x1 - tx1, y1 - ty1, x1, y1)))
    ops.append(("h", ()))
    return tuple(ops)


def polygon(points: list[tuple[float, float]]) -> PathOps:
    ops: list[tuple[str, tuple[float, ...]]] = [("m", points[0])]
    ops.extend(("l", p) for p in points[1:])
    ops.append(("h", ()))
    return tuple(ops)


def rectangle(x0: float, y0: float, x1: float, y1: float) -> PathOps:
    return polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def star(cx: float, cy: float, outer: float, points: int = 5) -> PathOps:
    """A regular star polygon {n/2}, first point straight up, outline only (no crossings)."""
    inner = outer * math.cos(2 * math.pi / points) / math.cos(math.pi / points)
    vertices = []
    for i in range(2 * points):
        r = outer if i % 2 == 0 else inner
        angle = math.pi / 2 + i * math.pi / points
        vertices.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return polygon(vertices)


def flatten(ops: PathOps, tolerance: float) -> list[list[tuple[float, float]]]:
    """Closed polylines approximating the path within `tolerance` (Wang's bound)."""
    contours: list[list[tuple[float, float]]] = []
    current: list[tuple[float, float]] = []
    for op, args in ops:
        if op == "m":
            if len(current) > 2:
                contours.append(current)
            current = [(args[0], args[1])]
        elif op == "l":
            current.append((args[0], args[1]))
        elif op == "c":
            x0, y0 = current[-1]
            x1, y1, x2, y2, x3, y3 = args
            dd = max(math.hypot(x0 - 2 * x1 + x2, y0 - 2 * y1 + y2),
                     math.hypot(x1 - 2 * x2 + x3, y1 - 2 * y2 + y3))
            n = max(1, math.ceil(math.sqrt(0.75 * dd / tolerance)))
            for i in range(1, n + 1):
                t = i / n
                mt = 1 - t
                w0, w1, w2, w3 = mt * mt * mt, 3 * mt * mt * t, 3 * mt * t * t, t * t * t
                current.append((w0 * x0 + w1 * x1 + w2 * x2 + w3 * x3,
                                w0 * y0 + w1 * y1 + w2 * y2 + w3 * y3))
        elif op == "h":
            if len(current) > 2:
                contours.append(current)
            current = [current[0]] if current else []
    if len(current) > 2:
        contours.append(current)
    return contours


def signed_area(points: list[tuple[float, float]]) -> float:
    total = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1]):
        total += x0 * y1 - x1 * y0
    return total / 2

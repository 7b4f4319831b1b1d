"""Laying out a seal: where the ring, the star and every glyph go.

All measures are millimetres for the 42 mm official seal, with the origin at the seal's
centre and y up; smaller round seals scale them by diameter/42.  Only at the end is the
picture moved into PDF points with the origin at the lower-left corner.

Round seal (公章 and 专用章), after GA 241 and common practice:
- ring 1.2 mm wide on the seal's edge;
- the organisation's name runs clockwise along the top, left to right, each glyph upright
  along its radius, its em box 0.5 mm inside the ring; the glyphs are evenly spaced
  over 210° (up to 8 characters) to 240° (20 and more), fewer degrees for very short names,
  and condensed horizontally when the arc is crowded, as seal cutters do;
- a solid five-pointed star, Ø14 mm, one point up, in the centre;
- the seal's name (合同专用章 …) horizontally below the star;
- an optional code along the bottom arc, read left to right, glyph tops towards the
  centre, in small proportional digits.
Personal seal: a 20 mm square with a 1 mm border and the characters in a 2 × 2 grid read
in columns from right to left, top to bottom (张三 → 张三之印, 欧阳修 → 欧阳修印).
"""
from __future__ import annotations

import math

from .drawing import MM, SealDrawing, Shape
from .fonts import FontFace, find_cjk_face, load_face
from .geometry import Affine, PathOps, circle, rectangle, star
from .spec import DIAMETER_MM, PERSONAL_SIDE_MM, SealSpec

# --- the 42 mm reference layout (mm) ---
REF_DIAMETER = 42.0
RING_WIDTH = 1.2
TEXT_GAP = 0.5            # ring's inner edge to the organisation's em box
ORG_HEIGHT = 6.8          # em height of the organisation's glyphs
ORG_MAX_ASPECT = 0.92     # glyph width / height at most (seal type is a little narrow)
STAR_DIAMETER = 14.0
NAME_HEIGHT = 4.8
NAME_CENTRE_Y = -9.6
NAME_MAX_WIDTH = 22.0
CODE_HEIGHT = 2.4
CODE_GAP = 0.6
CODE_ASPECT = 0.75        # digits condensed a little
CODE_SPACING = 0.25       # extra space between code characters (mm)

# --- the personal square stamp (mm) ---
SQUARE_BORDER = 1.0
SQUARE_PADDING = 0.6
SQUARE_CELL_GAP = 0.4


def draw_seal(spec: SealSpec) -> SealDrawing:
    """Draw the seal `spec` describes, with glyph outlines from its (or fontconfig's) font."""
    face = _face_for(spec)
    if spec.is_round:
        return _draw_round(spec, face)
    return _draw_personal(spec, face)


def _face_for(spec: SealSpec) -> FontFace:
    if spec.font_path is not None:
        face = load_face(spec.font_path, spec.font_index)
    else:
        path, index = find_cjk_face()
        face = load_face(path, index if spec.font_index is None else spec.font_index)
    if spec.is_round:
        face.require(spec.organisation + spec.seal_name + spec.code)
    else:
        face.require(_personal_text(spec.seal_name))
    return face


# ------------------------------------------------------------------ round seals

def _draw_round(spec: SealSpec, face: FontFace) -> SealDrawing:
    diameter = DIAMETER_MM[spec.seal_type]
    k = diameter / REF_DIAMETER
    radius = diameter / 2
    shapes: list[tuple[PathOps, bool, str]] = []

    ring_inner = radius - RING_WIDTH * k
    shapes.append((circle(0, 0, radius) + circle(0, 0, ring_inner), True, "ring"))
    shapes.append((star(0, 0, STAR_DIAMETER * k / 2), False, "star"))

    org_outer = ring_inner - TEXT_GAP * k
    org_half_angle = _arc_organisation(spec.organisation, face, org_outer, ORG_HEIGHT * k, shapes)
    if spec.seal_name:
        _horizontal_name(spec.seal_name, face, NAME_CENTRE_Y * k, NAME_HEIGHT * k,
                         NAME_MAX_WIDTH * k, shapes)
    if spec.code:
        free = math.pi - org_half_angle  # half of the bottom arc the name leaves free
        _arc_code(spec.code, face, ring_inner - CODE_GAP * k, CODE_HEIGHT * k,
                  CODE_SPACING * k, free, shapes)
    return _finish(spec, face, diameter, diameter, shapes)


def _org_span(n: int) -> float:
    """Degrees of arc the organisation's name covers."""
    if n <= 4:
        return 50.0 * n
    return 210.0 + 30.0 * min(1.0, max(0.0, (n - 8) / 12))


def _arc_organisation(text: str, face: FontFace, outer: float, height: float,
                      shapes: list) -> float:
    """Place the name clockwise over the top; returns the half-angle its ink reaches."""
    n = len(text)
    span = math.radians(_org_span(n))
    step = span / n
    centre_r = outer - height / 2
    # the glyphs' inner corners must not touch: measure the room a quarter in from the inside
    room = step * (centre_r - height / 4)
    width = min(height * ORG_MAX_ASPECT, room * 0.94)
    for i, ch in enumerate(text):
        theta = -span / 2 + (i + 0.5) * step   # clockwise from the top
        up = (math.sin(theta), math.cos(theta))
        right = (math.cos(theta), -math.sin(theta))
        centre = (centre_r * up[0], centre_r * up[1])
        shapes.append((_glyph(face, ch, centre, right, up, width, height), False,
                       "organisation"))
    return span / 2


def _horizontal_name(text: str, face: FontFace, centre_y: float, height: float,
                     max_width: float, shapes: list) -> None:
    n = len(text)
    width = min(height * ORG_MAX_ASPECT, max_width / n)
    gap = min(height * 0.1, (max_width - n * width) / max(1, n - 1)) if n > 1 else 0.0
    total = n * width + (n - 1) * gap
    x = -total / 2 + width / 2
    for ch in text:
        shapes.append((_glyph(face, ch, (x, centre_y), (1, 0), (0, 1), width, height), False,
                       "name"))
        x += width + gap


def _arc_code(text: str, face: FontFace, outer: float, height: float, spacing: float,
              free_half_angle: float, shapes: list) -> None:
    """Code along the bottom, left to right, glyph tops pointing at the centre."""
    centre_r = outer - height / 2
    em_width = height * CODE_ASPECT * face.units_per_em / face.em_box.height
    advances = [face.outline(ch)[1] / face.units_per_em * em_width for ch in text]
    total = sum(advances) + spacing * (len(text) - 1)
    # keep clear of the organisation's last glyphs: at most the free arc less 12°
    limit = max(0.2, 2 * (free_half_angle - math.radians(12))) * centre_r
    squeeze = min(1.0, limit / total)
    s = -total * squeeze / 2  # arc length position, left end at negative
    for ch, adv in zip(text, advances):
        w = adv * squeeze
        alpha = (s + w / 2) / centre_r          # angle from straight down, to the right
        up = (-math.sin(alpha), math.cos(alpha))
        right = (math.cos(alpha), math.sin(alpha))
        centre = (centre_r * math.sin(alpha), -centre_r * math.cos(alpha))
        shapes.append((_glyph(face, ch, centre, right, up, em_width * squeeze, height), False,
                       "code"))
        s += w + spacing * squeeze


# ------------------------------------------------------------------ personal seals

def _personal_text(name: str) -> str:
    return {2: name + "之印", 3: name + "印"}.get(len(name), name)


def _draw_personal(spec: SealSpec, face: FontFace) -> SealDrawing:
    side = PERSONAL_SIDE_MM
    half = side / 2
    inner = half - SQUARE_BORDER
    shapes: list[tuple[PathOps, bool, str]] = [
        (rectangle(-half, -half, half, half) + rectangle(-inner, -inner, inner, inner), True,
         "border")]
    text = _personal_text(spec.seal_name)
    cell = (2 * (inner - SQUARE_PADDING)) / 2
    size = cell - SQUARE_CELL_GAP
    # columns right to left, each top to bottom
    slots = [(cell / 2, cell / 2), (cell / 2, -cell / 2), (-cell / 2, cell / 2),
             (-cell / 2, -cell / 2)]
    for ch, centre in zip(text, slots):
        shapes.append((_glyph(face, ch, centre, (1, 0), (0, 1), size, size), False, "personal"))
    return _finish(spec, face, side, side, shapes)


# ------------------------------------------------------------------ shared

def _glyph(face: FontFace, ch: str, centre: tuple[float, float], right: tuple[float, float],
           up: tuple[float, float], width: float, height: float) -> PathOps:
    """The glyph with its advance centred on `centre`; one em becomes width × height.

    Scaling by the em rather than by the advance keeps a half-width glyph (a Latin letter
    or digit in a name) half as wide as the ideographs around it instead of stretching it.
    """
    ops, advance = face.outline(ch)
    em = face.em_box
    to_unit = Affine.translate(-advance / 2, -(em.bottom + em.height / 2)).then(
        Affine.scale(width / face.units_per_em, height / em.height))
    return to_unit.then(Affine.frame(centre, right, up)).apply_ops(ops)


def _finish(spec: SealSpec, face: FontFace, width_mm: float, height_mm: float,
            shapes: list[tuple[PathOps, bool, str]]) -> SealDrawing:
    to_page = Affine.translate(width_mm / 2, height_mm / 2).then(Affine.scale(MM))
    return SealDrawing(
        width_pt=width_mm * MM,
        height_pt=height_mm * MM,
        color=spec.color,
        shapes=tuple(Shape(to_page.apply_ops(ops), even_odd, role)
                     for ops, even_odd, role in shapes if ops),
        seal_type=spec.seal_type,
        font_path=face.path,
        font_index=face.index,
    )

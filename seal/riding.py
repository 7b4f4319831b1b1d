"""Riding seals (骑缝章) that show: how pages share a seal, for PDF and OFD alike.

Each page's slice of a riding seal is at least `min_slice_mm` wide (default 4 mm): a seal
W mm wide spreads over at most k = ⌊W / min⌋ pages.  When the document has more pages, the seal
is repeated over consecutive groups of pages — as few groups as that allows, their sizes
differing by at most one — so that every page still shows its slice, and each group, read
across its pages' right edges, makes up one whole seal.  Every slice sits at the same distance
from the top of its page (the seal centred on the first page's height).
"""
from __future__ import annotations

import math

__all__ = ["DEFAULT_MIN_SLICE_MM", "riding_groups", "check_min_slice"]

DEFAULT_MIN_SLICE_MM = 4.0


def check_min_slice(min_slice_mm: float) -> float:
    if isinstance(min_slice_mm, bool) or not isinstance(min_slice_mm, (int, float)) or \
            not math.isfinite(min_slice_mm) or min_slice_mm <= 0:
        raise ValueError(f"the riding seal's minimum slice must be a positive number of mm, not {min_slice_mm!r}")
    return float(min_slice_mm)


def riding_groups(pages: int, seal_width_mm: float, min_slice_mm: float = DEFAULT_MIN_SLICE_MM) -> list[range]:
    """The page groups (0-based ranges, in order) that each carry one whole riding seal."""
    check_min_slice(min_slice_mm)
    if pages <= 0:
        return []
    per_seal = max(1, int(seal_width_mm / min_slice_mm + 1e-9))
    if pages <= per_seal:
        return [range(0, pages)]
    groups = math.ceil(pages / per_seal)
    base, extra = divmod(pages, groups)
    out, start = [], 0
    for g in range(groups):
        size = base + (1 if g < extra else 0)
        out.append(range(start, start + size))
        start += size
    return out

"""GB/T 9704-2012 page geometry, in PDF points (1/72 inch), depths measured down from the page's top.

§5.2.1 A4; §5.2.2 天头 37 mm, 订口 28 mm, 版心 156 mm × 225 mm; §5.2.3 3号 type;
§5.2.4 22 lines of 28 characters filling the text block.  We read "filling" as Word's
document grid does: the block is 22 line cells of 225/22 mm, each line's em box centred
in its cell, and 28 character cells of 156/28 mm (a 3号 character with −0.21 pt of
tracking).  Every element below is placed on those cells or by the distances the
standard states (the header 35 mm below the block's top, the red line 4 mm below the
number, the page number's dash 7 mm below the block …).
"""
from __future__ import annotations

MM = 72 / 25.4
PAGE_W = 210 * MM
PAGE_H = 297 * MM
TOP = 37 * MM                   # 天头: the text block's top edge, from the page's top
LEFT = 28 * MM                  # 订口
BLOCK_W = 156 * MM
BLOCK_H = 225 * MM
BOTTOM = TOP + BLOCK_H          # depth of the block's bottom edge
RIGHT = LEFT + BLOCK_W
LINES, CHARS = 22, 28
PITCH = BLOCK_H / LINES         # line cell height: 10.227 mm = 28.99 pt
CHAR = BLOCK_W / CHARS          # character cell of 3号 text: 5.571 mm = 15.79 pt

#: Chinese type sizes (字号) in points
SIZES = {"初号": 42.0, "小初": 36.0, "一号": 26.0, "小一": 24.0, "二号": 22.0, "小二": 18.0,
         "三号": 16.0, "小三": 15.0, "四号": 14.0, "小四": 12.0, "五号": 10.5}
BODY = SIZES["三号"]
TITLE = SIZES["二号"]
SMALL = SIZES["四号"]           # 版记 and page numbers
TRACKING = CHAR - BODY          # negative: 28 characters of 16 pt fill 156 mm

#: the em box in our subset fonts: ascent 0.88 em above the baseline, descent 0.12 below
ASCENT, DESCENT = 0.88, 0.12

HEADER_BELOW_BLOCK_TOP = 35 * MM       # §7.2.4 发文机关标志 top edge below the block's top
RED_LINE_BELOW_NUMBER = 4 * MM         # §7.2.7
PAGE_NUMBER_BELOW_BLOCK = 7 * MM       # §7.5 the dash 7 mm below the block's bottom
LETTER_HEADER_TOP = 30 * MM            # §10.1 from the page's top edge
LETTER_LINE_LENGTH = 170 * MM
LETTER_BOTTOM_LINE = 20 * MM           # from the page's bottom edge
SEAL_DIAMETER = 42 * MM                # an official seal
NAME_BELOW_CENTRE = 1.0 * MM           # the name's centre below the seal's centre (the date lower still)
SEAL_GAP = 4 * MM                      # joint seals: not touching


def baseline(cell_top: float, size: float, pitch: float = PITCH) -> float:
    """The baseline depth of text of `size` whose em box is centred in the cell starting at `cell_top`."""
    return cell_top + (pitch - size) / 2 + ASCENT * size


def y_pdf(depth: float) -> float:
    return PAGE_H - depth

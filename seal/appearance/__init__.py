"""Seal pictures: a red seal drawn as vector paths from CJK glyph outlines, or an
administrator's transparent PNG.

    drawing = draw_seal(SealSpec("official", "某某市人民政府"))
    drawing.pdf_content()   # content-stream operators, paths only, no font resources
    drawing.svg(); drawing.png(dpi=300)
    write_preview(drawing, "seal.pdf")
"""
from .drawing import SealDrawing, Shape
from .errors import AppearanceError
from .fonts import find_cjk_face, find_cjk_font
from .image import ImageSeal, PdfImage, drawing_from_png
from .layout import draw_seal
from .preview import preview_pdf, write_preview
from .spec import DIAMETER_MM, PERSONAL_SIDE_MM, SEAL_TYPES, SealSpec

__all__ = [
    "DIAMETER_MM",
    "PERSONAL_SIDE_MM",
    "SEAL_TYPES",
    "AppearanceError",
    "ImageSeal",
    "PdfImage",
    "SealDrawing",
    "SealSpec",
    "Shape",
    "draw_seal",
    "drawing_from_png",
    "find_cjk_face",
    "find_cjk_font",
    "preview_pdf",
    "write_preview",
]

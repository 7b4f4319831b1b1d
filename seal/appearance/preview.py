"""Writing a seal picture to a file for a look at it: PNG, SVG or a one-page PDF."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pikepdf

from pki.keyfiles import write_file_atomic

from .drawing import SealDrawing
from .errors import AppearanceError
from .image import ImageSeal

PREVIEW_SUFFIXES = (".png", ".svg", ".pdf")


def write_preview(drawing: SealDrawing | ImageSeal, path: str | os.PathLike[str], *,
                  dpi: int = 300) -> Path:
    """Write `drawing` to `path`, the format chosen by the suffix; returns the path.

    The PDF is one page exactly the seal's size.  The file appears whole or not at all.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".png":
        data = drawing.png(dpi) if isinstance(drawing, SealDrawing) else drawing.png()
    elif suffix == ".svg":
        data = drawing.svg().encode("utf-8")
    elif suffix == ".pdf":
        data = preview_pdf(drawing)
    else:
        raise AppearanceError(f"cannot tell the preview format from {target.name!r}; "
                              f"use one of {', '.join(PREVIEW_SUFFIXES)}", path=str(target))
    write_file_atomic(target, data, mode=0o644)
    return target


def preview_pdf(drawing: SealDrawing | ImageSeal) -> bytes:
    """A one-page PDF whose page is exactly the seal's box."""
    pdf = pikepdf.new()
    box = [0, 0, round(drawing.width_pt, 3), round(drawing.height_pt, 3)]
    resources = pikepdf.Dictionary()
    if isinstance(drawing, SealDrawing):
        content = drawing.pdf_content()
    else:
        image = drawing.pdf_image()
        # raw samples; pikepdf flate-compresses every stream when saving
        smask = pikepdf.Stream(pdf, image.alpha, Type=pikepdf.Name.XObject,
                               Subtype=pikepdf.Name.Image, Width=image.width,
                               Height=image.height, ColorSpace=pikepdf.Name.DeviceGray,
                               BitsPerComponent=8)
        xobject = pikepdf.Stream(pdf, image.rgb, Type=pikepdf.Name.XObject,
                                 Subtype=pikepdf.Name.Image, Width=image.width,
                                 Height=image.height, ColorSpace=pikepdf.Name.DeviceRGB,
                                 BitsPerComponent=8, SMask=smask)
        resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Seal=xobject))
        content = f"q {box[2]} 0 0 {box[3]} 0 0 cm /Seal Do Q\n".encode("ascii")
    page = pikepdf.Dictionary(Type=pikepdf.Name.Page, MediaBox=box, Resources=resources,
                              Contents=pikepdf.Stream(pdf, content))
    pdf.pages.append(pikepdf.Page(page))
    out = io.BytesIO()
    # soft masks (SMask) are PDF 1.4
    pdf.save(out, compress_streams=True, min_version="1.4")
    return out.getvalue()

"""A small OFD writer for text documents: the bodies of demos, tests and benchmarks.

`text_ofd(pages)` makes an OFD (GB/T 33190) whose pages hold lines of text as TextObjects in one
font named by family (readers substitute a local CJK face), A4 by default.  Lines are tuples
(text, x_mm, baseline_mm, size_mm); a bare string goes under the previous line.
"""
from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from xml.sax.saxutils import escape

__all__ = ["text_ofd"]

Line = tuple[str, float, float, float]


def _lines(page: Sequence[str | Line]) -> list[Line]:
    out: list[Line] = []
    y = 30.0
    for item in page:
        if isinstance(item, str):
            out.append((item, 25.0, y, 5.0))
            y += 9.0
        else:
            out.append(item)
            y = item[2] + 9.0
    return out


def text_ofd(pages: Sequence[Sequence[str | Line]], *, size_mm: tuple[float, float] = (210.0, 297.0),
             font: str = "SimSun") -> bytes:
    """The OFD bytes of `pages` (each a sequence of lines, see the module docstring)."""
    w, h = size_mm
    ns = 'xmlns:ofd="http://www.ofdspec.org/2016"'
    buf = io.BytesIO()
    next_id = 2
    page_entries = []
    contents = []
    for index, page in enumerate(pages):
        page_id = next_id
        next_id += 1
        objects = []
        for text, x, baseline, size in _lines(page):
            width = size * len(text)
            objects.append(f'<ofd:TextObject ID="{next_id}" Boundary="{x:g} {baseline - size:g} {width:g} {size * 1.4:g}" '
                           f'Font="1" Size="{size:g}"><ofd:FillColor Value="0 0 0"/><ofd:TextCode X="0" Y="{size:g}" '
                           f'DeltaX="g {max(0, len(text) - 1)} {size:g}">{escape(text)}</ofd:TextCode></ofd:TextObject>')
            next_id += 1
        layer_id = next_id
        next_id += 1
        contents.append((f"Doc_0/Pages/Page_{index}/Content.xml",
                         f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Page {ns}><ofd:Content>'
                         f'<ofd:Layer ID="{layer_id}">{"".join(objects)}</ofd:Layer></ofd:Content></ofd:Page>'))
        page_entries.append(f'<ofd:Page ID="{page_id}" BaseLoc="Pages/Page_{index}/Content.xml"/>')
    document = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Document {ns}><ofd:CommonData>'
                f"<ofd:MaxUnitID>{next_id}</ofd:MaxUnitID><ofd:PageArea><ofd:PhysicalBox>0 0 {w:g} {h:g}"
                "</ofd:PhysicalBox></ofd:PageArea><ofd:PublicRes>PublicRes.xml</ofd:PublicRes></ofd:CommonData>"
                f'<ofd:Pages>{"".join(page_entries)}</ofd:Pages></ofd:Document>')
    public = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Res {ns} BaseLoc="Res"><ofd:Fonts>'
              f'<ofd:Font ID="1" FontName="{escape(font)}" FamilyName="{escape(font)}"/></ofd:Fonts></ofd:Res>')
    ofd = (f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:OFD {ns} Version="1.1" DocType="OFD"><ofd:DocBody>'
           "<ofd:DocInfo><ofd:DocID>yinxin-sample</ofd:DocID><ofd:Creator>yinxin</ofd:Creator></ofd:DocInfo>"
           "<ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>")
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [("OFD.xml", ofd), ("Doc_0/Document.xml", document), ("Doc_0/PublicRes.xml", public),
                           *contents]:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data.encode("utf-8"))
    return buf.getvalue()

"""XML of an OFD, parsed with lxml and nothing resolved: no DTD loaded, no entity expanded, no
network; a document that declares a DOCTYPE at all is refused (OFD never needs one)."""
from __future__ import annotations

import io
import re
from typing import Iterator

from lxml import etree

from .errors import OfdStructureError, UnsafeXml

__all__ = ["OFD_NS", "parse", "iterparse", "local", "find", "findall", "qname"]

OFD_NS = "http://www.ofdspec.org/2016"
_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=False)


def _refuse_dtd(tree: etree._ElementTree, what: str) -> None:
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise UnsafeXml(f"{what} declares a DOCTYPE (entities or external references): refused", file=what)


def parse(data: bytes, what: str) -> etree._Element:
    """The root element of `data`; UnsafeXml for a DOCTYPE, OfdStructureError for broken XML."""
    if _DOCTYPE.search(data, 0, 65536) is not None:
        raise UnsafeXml(f"{what} declares a DOCTYPE (entities or external references): refused", file=what)
    try:
        tree = etree.parse(io.BytesIO(data), _parser())
    except etree.XMLSyntaxError as exc:
        raise OfdStructureError(f"{what} is not well-formed XML ({exc})", file=what) from None
    _refuse_dtd(tree, what)
    return tree.getroot()


def iterparse(stream: io.IOBase, what: str, tag: str) -> Iterator[etree._Element]:
    """The elements named `tag` (any namespace) of a large XML file, each cleared after use."""
    context = etree.iterparse(stream, events=("start", "end"), resolve_entities=False, no_network=True,
                              load_dtd=False, huge_tree=False, remove_comments=True)
    checked = False
    try:
        for event, element in context:
            if not checked:
                _refuse_dtd(element.getroottree(), what)
                checked = True
            if event == "end" and local(element) == tag:
                yield element
                element.clear(keep_tail=False)
    except etree.XMLSyntaxError as exc:
        raise OfdStructureError(f"{what} is not well-formed XML ({exc})", file=what) from None


def local(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def qname(element: etree._Element, name: str) -> str:
    """`name` in the namespace of `element` (OFD files use the ofd: prefix; some none)."""
    tag = element.tag if isinstance(element.tag, str) else ""
    return f"{tag[:tag.index('}') + 1]}{name}" if tag.startswith("{") else name


def find(element: etree._Element, *path: str) -> etree._Element | None:
    node: etree._Element | None = element
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if local(c) == name), None)
    return node


def findall(element: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in element if local(c) == name]

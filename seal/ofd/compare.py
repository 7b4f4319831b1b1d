"""What sealing changed in an OFD: the document flow's check that a sealed file is the
signed-off one plus seals, and nothing else."""
from __future__ import annotations

from lxml import etree

from ..errors import SealError
from . import xmlsafe
from .package import OfdPackage
from .verify import _signature_entries

__all__ = ["sealing_changes"]


def _without_signatures(package: OfdPackage) -> bytes:
    root = package.xml("OFD.xml")
    for doc_body in xmlsafe.findall(root, "DocBody"):
        for element in xmlsafe.findall(doc_body, "Signatures"):
            doc_body.remove(element)
    return etree.tostring(root, method="c14n")


def sealing_changes(before: bytes, after: bytes) -> list[str]:
    """What `after` changed of `before` beyond adding seals (empty: only seals were added).

    Every file of `before` must be in `after` byte for byte, except Signatures.xml (the list
    seals extend) and OFD.xml, which may differ only by the Signatures reference a first seal
    adds; new files must belong to the signatures that list names."""
    problems: list[str] = []
    try:
        with OfdPackage(before) as old, OfdPackage(after) as new:
            body = new.doc_bodies()[0]
            signature_files: set[str] = set()
            if body.signatures is not None and new.exists(body.signatures):
                signature_files.add(body.signatures)
                for entry in _signature_entries(new, body.signatures):
                    signature_files |= entry.files | {entry.path}
            for name in old.names:
                if name in signature_files:
                    continue
                if name == "OFD.xml":
                    if _without_signatures(old) != _without_signatures(new):
                        problems.append("OFD.xml of the sealed file differs from the signed-off one beyond the "
                                        "seals' reference")
                    continue
                if not new.exists(name) or old.digest(name) != new.digest(name):
                    problems.append(f"the sealed file changed {name}, which the signer approved")
            added = [n for n in new.names if not old.exists(n) and n not in signature_files]
            if added:
                problems.append("the sealed file adds files that belong to no seal: " + ", ".join(added[:10]))
    except SealError as exc:
        problems.append(f"the OFD cannot be compared with the signed-off one: {exc.message}")
    return problems

"""What a seal picture says: its type, its texts, its font and colour (validated)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import AppearanceError

SEAL_TYPES = ("official", "contract", "finance", "special", "personal")
ROUND_TYPES = ("official", "contract", "finance", "special")

#: diameters in mm: 42 for the official seal (公章), 40 for special-purpose seals
#: (合同专用章, 财务专用章 and other 专用章), after GA 241 / the State Council rules on seals
DIAMETER_MM = {"official": 42.0, "contract": 40.0, "finance": 40.0, "special": 40.0}
#: side of the square personal seal (私章/名章) in mm: the common 2 cm stamp
PERSONAL_SIDE_MM = 20.0

MAX_ORGANISATION = 24
MAX_SEAL_NAME = 10
MAX_CODE = 24
_CODE_RE = re.compile(r"[0-9A-Z-]+")


@dataclass(frozen=True)
class SealSpec:
    """The texts and style of one seal picture.

    - round seals ("official", "contract", "finance", "special"): `organisation` is arced
      along the top (1..24 characters), `seal_name` (e.g. 合同专用章) sits horizontally
      below the star — optional for "official", required for the special-purpose types —
      and `code` (digits, capital letters, hyphens: an organisation or seal code) runs
      along the bottom arc if given;
    - "personal": a square name stamp; `seal_name` is the person's name (2 to 4
      characters), `organisation` is not drawn and `code` must be empty.
    `font_path` overrides the CJK font fontconfig would find; `font_index` picks a face
    in a collection (default: the Simplified-Chinese face).
    """

    seal_type: str
    organisation: str
    seal_name: str = ""
    code: str = ""
    font_path: str | None = None
    color: tuple[int, int, int] = (230, 0, 18)
    font_index: int | None = None

    def __post_init__(self) -> None:
        if self.seal_type not in SEAL_TYPES:
            raise AppearanceError(
                f"unknown seal type {self.seal_type!r}; expected one of {', '.join(SEAL_TYPES)}",
                field="seal_type", value=str(self.seal_type))
        _check_text(self.organisation, "organisation", MAX_ORGANISATION)
        _check_text(self.seal_name, "seal_name", MAX_SEAL_NAME)
        if not isinstance(self.code, str):
            raise TypeError("code must be a str")
        if self.seal_type == "personal":
            if not 2 <= len(self.seal_name) <= 4:
                raise AppearanceError(
                    "a personal seal needs the person's name of 2 to 4 characters as seal_name",
                    field="seal_name", value=self.seal_name)
            if self.code:
                raise AppearanceError("a personal seal carries no code", field="code")
        else:
            if not self.organisation:
                raise AppearanceError("the organisation name is empty", field="organisation")
            if self.seal_type != "official" and not self.seal_name:
                raise AppearanceError(
                    f"a {self.seal_type} seal needs its seal name (e.g. 合同专用章)",
                    field="seal_name")
            if self.code and (len(self.code) > MAX_CODE or not _CODE_RE.fullmatch(self.code)):
                raise AppearanceError(
                    f"the code must be 1 to {MAX_CODE} digits, capital letters or hyphens",
                    field="code", value=self.code)
        if self.font_path is not None and (not isinstance(self.font_path, str) or not self.font_path):
            raise AppearanceError("font_path must be a non-empty path or None", field="font_path")
        if self.font_index is not None and (not isinstance(self.font_index, int)
                                            or isinstance(self.font_index, bool)
                                            or self.font_index < 0):
            raise AppearanceError("font_index must be a face number >= 0", field="font_index")
        if (not isinstance(self.color, tuple) or len(self.color) != 3
                or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255
                           for c in self.color)):
            raise AppearanceError("color must be three integers 0..255", field="color",
                                  value=str(self.color))

    @property
    def is_round(self) -> bool:
        return self.seal_type in ROUND_TYPES


def _check_text(value: object, field: str, limit: int) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a str")
    if len(value) > limit:
        raise AppearanceError(f"{field} is too long for a seal: {len(value)} characters, "
                              f"at most {limit}", field=field, value=value)
    bad = [ch for ch in value if unicodedata.category(ch)[0] in "CZ"]
    if bad:
        raise AppearanceError(f"{field} contains spaces or control characters",
                              field=field, value=value)

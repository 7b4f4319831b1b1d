"""Errors of GB/T 9704 typesetting: a branch under `docflow.DocflowError`.

Each names what is wrong and carries its data (the template, the element, the line, the characters)."""
from __future__ import annotations

from ..errors import DocflowError


class TypesetError(DocflowError):
    """The document cannot be typeset as GB/T 9704 prescribes."""


class TemplateError(TypesetError):
    """A red-header template is invalid: unknown field, a file it names is missing, no font for a role."""


class BodyError(TypesetError):
    """The structured body is not valid: an unknown element or front-matter field, a bad heading."""


class FitError(TypesetError):
    """Text does not fit where GB/T 9704 puts it (the 发文机关标志 wider than the text block, …)."""


class MissingGlyphs(TypesetError):
    """The fonts of the template lack characters the document uses (each one is named)."""


class TypesetMismatch(TypesetError):
    """The typeset version is not the signed-off content plus the registry's fields."""

    exit_code = 1

"""GB/T 9704-2012 typesetting: red-header templates, the structured body, the layout engine,
number-block stamping of finished PDFs, PDF/A-2b output, and the check that a typeset
version is the signed-off content plus the registry's fields.

Public API (imported on first use, PEP 562)::

    from docflow.typeset import (load_template_dir, default_template, parse_body, manuscript, typeset,
                                 Manuscript, Fields, Layout, stamp_number_block, check_typeset)
    t = default_template()
    m, fields = manuscript(parse_body(text), issuers=["北京市测试局"])
    result = typeset(t, m, fields)            # result.pdf (PDF/A-2b), result.layout (seal places, field boxes)
"""
from __future__ import annotations

from pki.lazy import lazy_exports

_LAZY = {
    "Template": "template", "Header": "template", "load_template_dir": "template", "parse_template": "template",
    "default_template": "template", "default_template_dir": "template", "template_from_snapshot": "template",
    "VARIANTS": "template", "VARIANT_NAMES": "template",
    "Manuscript": "body", "Fields": "body", "Block": "body", "InlineAttachment": "body", "ParsedBody": "body",
    "parse_body": "body", "manuscript": "body",
    "typeset": "layout", "Typeset": "layout", "Layout": "layout", "SealPlace": "layout", "Box": "layout",
    "stamp_number_block": "stamp", "check_typeset": "check", "make_specimen": "specimen", "SPECIMEN": "specimen",
    "ResolvedFont": "fonts", "ROLES": "fonts",
    "TypesetError": "errors", "TemplateError": "errors", "BodyError": "errors", "FitError": "errors",
    "MissingGlyphs": "errors", "TypesetMismatch": "errors",
}
__all__ = sorted(_LAZY)


__getattr__ = lazy_exports(__name__, _LAZY)

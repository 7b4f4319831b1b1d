"""Typesetting in the document flow: the drafter's typeset draft, the registry's typeset version,
and the sealing check.

* `draft` — a structured body is typeset on the organisation's template with the registry's
  fields still empty (the number line and the date reserved); this is what is reviewed and
  signed off.
* `prepare_registration` / `write_registration` — the registry's step (文印室登记编号排版)
  makes a new version: the signed-off content with 发文字号, 签发人 and 成文日期 (from the
  sign-off) and 印发日期 (the day of registration) — typeset again from the same source,
  or, for a body that came as a finished PDF, stamped with the number block.  The version
  is checked (`check.check_typeset`) before it is written; the flow records both versions
  and the layout (the seal's place).
* `sealable` — the sealing guard (and `send`): the bytes to seal are the registered version,
  which must be the signed-off content plus exactly those fields (checked again), or, for a
  document registered without typesetting, the signed-off version itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Sequence

import sqlalchemy as sa

from pki.store import to_json

from ..errors import FlowStateError, IntegrityFailure
from .body import Fields, Manuscript, manuscript, parse_body
from .check import check_typeset, sources_match
from .errors import TypesetError, TypesetMismatch
from .layout import Layout, SealPlace, Typeset, typeset
from .store import doc_typeset
from .template import Template, default_template, template_from_snapshot


def org_template(org: Any) -> Template:
    return template_from_snapshot(org.template) if org.template else default_template()


@dataclass(frozen=True)
class Draft:
    pdf: bytes
    manuscript: Manuscript
    row: Mapping[str, Any]      # doc_typeset values but doc_id and version


def _manuscript(org: Any, kind: str, source: str, given: Mapping[str, Any]) -> Manuscript:
    m, _ = manuscript(parse_body(source), allow_registry_fields=False, issuers=[org.name], kind=kind, **given)
    if m.issuers != (org.name,):
        raise TypesetError(f"发文机关 {', '.join(m.issuers)}: a document of {org.name} is issued by {org.name}",
                           field="issuers")
    return m


def draft(org: Any, *, kind: str, source: str, created: datetime, title: str | None = None,
          main_recipients: Sequence[str] = (), copy_to: Sequence[str] = (), note: str | None = None,
          urgency: str | None = None, attachments: Sequence[str] = ()) -> Draft:
    """The drafter's structured body typeset with the registry's fields empty."""
    given = {"title": title, "main_to": tuple(main_recipients), "cc": tuple(copy_to), "note": note,
             "urgency": urgency, "attachments": tuple(attachments)}
    m = _manuscript(org, kind, source, given)
    template = org_template(org)
    result = typeset(template, m, Fields(), created=created)
    return Draft(result.pdf, m, _row("draft", None, template, m.variant, source, Fields(), result.layout, created))


def _row(purpose: str, base: int | None, template: Template, variant: str, source: str | None, fields: Fields,
         layout: Layout, created: datetime) -> dict[str, Any]:
    return {"purpose": purpose, "base_version": base, "template": template.name, "template_digest": template.digest,
            "variant": variant, "source": source, "fields": to_json(fields.to_dict()),
            "layout": to_json(layout.to_dict()), "created_at": created}


_TYPESET_INSERT = doc_typeset.insert()
_TYPESET_OF = sa.select(doc_typeset).where(doc_typeset.c.doc_id == sa.bindparam("doc_id"),
                                           doc_typeset.c.version == sa.bindparam("version"))


def record(conn: Any, doc_id: int, version: int, row: Mapping[str, Any]) -> None:
    conn.execute(_TYPESET_INSERT, {"doc_id": doc_id, "version": version, **row})


_TYPESET_OF_ANY = sa.select(doc_typeset).where(doc_typeset.c.doc_id == sa.bindparam("doc_id"),
                                               doc_typeset.c.version.in_(sa.bindparam("versions", expanding=True)))


def row_of(conn: Any, doc_id: int, version: int) -> Mapping[str, Any] | None:
    return conn.execute(_TYPESET_OF, {"doc_id": doc_id, "version": version}).mappings().first()


def rows_of(conn: Any, doc_id: int, versions: Sequence[int]) -> dict[int, Mapping[str, Any]]:
    """`row_of` for several versions, in one statement; a version never typeset is absent."""
    found = conn.execute(_TYPESET_OF_ANY, {"doc_id": doc_id, "versions": sorted(set(versions))}).mappings()
    return {r["version"]: r for r in found}


# --------------------------------------------------------------------------- registration

@dataclass(frozen=True)
class Prepared:
    number: str
    fields: Fields
    result: Typeset
    source: str | None
    template: Template
    variant: str
    signed: bytes
    base_version: int


def _fields(elements: Any, number: str) -> Fields:
    return Fields(doc_number=number, signers=(elements.signer,) if elements.signer else (), date=elements.date,
                  printed_on=elements.printed_on)


def _make(d: Any, draft_row: Mapping[str, Any] | None, template: Template, signed: bytes, fields: Fields,
          created: datetime) -> Typeset:
    upward = d.row["kind"] == "upward"
    if draft_row is not None and draft_row["source"] is not None:
        e = d.elements
        m = _manuscript(d.org, d.row["kind"], draft_row["source"],
                        {"title": e.title, "main_to": e.main_recipients, "cc": e.copy_to, "note": e.note,
                         "urgency": e.urgency, "attachments": e.attachments})
        return typeset(template, m, fields, created=created)
    from .stamp import stamp_number_block
    return stamp_number_block(signed, template, organisation=d.org.name, fields=fields, upward=upward)


def prepare_registration(conn: Any, d: Any, signed: bytes | None, elements: Any, number: str, guard: Any,
                         created: datetime) -> Prepared | None:
    """Typeset (or stamp) the signed-off version with the registry's fields and check it; problems go
    to the guard.  `number` is the 发文字号 the registration will assign (checked again on writing)."""
    if signed is None:
        return None
    base = d.row["signed_off_version"]
    draft_row = row_of(conn, d.id, base)
    template = org_template(d.org)
    fields = _fields(elements, number)
    try:
        result = _make(d, draft_row, template, signed, fields, created)
    except TypesetError as exc:
        guard.fail(type(exc), f"typesetting: {exc.message}")
        return None
    problems = check_typeset(signed, result.pdf, result.layout, fields)
    for p in problems:
        guard.fail(TypesetMismatch, f"the typeset version is not the signed-off content plus the registry's "
                                    f"fields: {p}")
    if problems:
        return None
    source = draft_row["source"] if draft_row is not None else None
    return Prepared(number, fields, result, source, template, result.layout.variant, signed, base)


def write_registration(conn: Any, d: Any, prepared: Prepared, elements: Any, version: int, created: datetime
                       ) -> tuple[bytes, Mapping[str, Any]]:
    """The registered version's bytes and its doc_typeset row (made again if the number moved meanwhile)."""
    number = elements.doc_number
    result = prepared.result
    fields = prepared.fields
    if number != prepared.number:
        fields = _fields(elements, number)
        result = _make(d, row_of(conn, d.id, prepared.base_version), prepared.template, prepared.signed, fields,
                       created)
        problems = check_typeset(prepared.signed, result.pdf, result.layout, fields)
        if problems:
            raise TypesetMismatch("the typeset version is not the signed-off content plus the registry's fields: "
                                  + "; ".join(problems), problems=problems)
    row = _row("registered", prepared.base_version, prepared.template, result.layout.variant, prepared.source, fields,
               result.layout, created)
    record(conn, d.id, version, row)
    return result.pdf, row


# --------------------------------------------------------------------------- sealing

def seal_base(d: Any) -> int:
    """The version a seal goes (or went) on: the one before the sealed version, else the current one."""
    return d.row["sealed_version"] - 1 if d.row["sealed_version"] else d.row["current_version"]


def sealable(flow: Any, conn: Any, d: Any, guard: Any,
             read: Mapping[int, Mapping[str, Any]]) -> tuple[bytes | None, SealPlace | None]:
    """The bytes a seal goes on, and the place the layout reserved for this organisation's seal.

    After typesetting registration that is the registered version, checked to be the signed-off
    content plus 发文字号, 签发人, 成文日期 and 印发日期 (`check.check_typeset`, the recorded
    sources and fields); otherwise the signed-off version.  `read`: the signed-off and base
    versions' rows as `flow._versions` read them (`seal_base` names the base)."""
    signed_no = d.row["signed_off_version"]
    if signed_no is None:
        return None, None
    base_no = seal_base(d)
    signed = flow._intact(conn, d.id, signed_no, guard, expect_sha256=d.row["signed_off_sha256"], read=read)
    if base_no == signed_no:
        return signed, None
    typeset = rows_of(conn, d.id, (base_no, signed_no))
    row = typeset.get(base_no)
    if row is None or row["purpose"] != "registered" or row["base_version"] != signed_no:
        guard.fail(FlowStateError, f"document {d.id} changed after sign-off (version {base_no} is neither the "
                                   f"signed-off version {signed_no} nor its registered typesetting)")
        return None, None
    data = flow._intact(conn, d.id, base_no, guard, read=read)
    if data is None or signed is None:
        return None, None
    fields = Fields.from_dict(json.loads(row["fields"]))
    e = d.elements
    want = Fields(doc_number=e.doc_number, signers=(e.signer,) if e.signer else (), date=e.date,
                  printed_on=e.printed_on)
    problems = []
    if fields != want:
        problems.append(f"its recorded fields {fields.to_dict()} are not the document's {want.to_dict()}")
    problems += list(sources_match(typeset.get(signed_no), row))
    layout = Layout.from_dict(json.loads(row["layout"]))
    problems += check_typeset(signed, data, layout, fields)
    for p in problems:
        guard.fail(IntegrityFailure if "recorded" in p else TypesetMismatch,
                   f"the typeset version {base_no} is not the signed-off version {signed_no} plus the registry's "
                   f"fields: {p}")
    return (None, None) if problems else (data, layout.seal_place(d.org.name))

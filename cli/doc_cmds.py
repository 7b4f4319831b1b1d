"""`yinxin org …` and `yinxin doc …`: thin calls of the docflow package's API."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from pki.fileio import write_file_atomic

from .common import (Context, acting, json_option, open_home, operator_option, pass_ctx, read_input, read_password,
                     session_option)
from .main import cli
from .seal_cmds import placement_options


def _flow(ctx: Context):  # type: ignore[no-untyped-def]
    from docflow import DocumentFlow  # registers the docflow tables before the home opens
    return DocumentFlow(open_home(ctx))


def _people(org: Any, ids: Any) -> str:
    names = []
    for pid in ids:
        names.append(org.person(pid).label() if org.has_person(pid) else pid)
    return ", ".join(names) or "nobody"


def _status(flow: Any, doc: Any) -> str:
    org = flow.organisation(doc.organisation)
    if doc.state == "in_flow" or doc.state == "draft":
        return f"{doc.step_title}, waiting for {_people(org, doc.pending)}"
    return {"sent": "sent", "done": "done (办结)", "archived": "archived"}.get(doc.state, doc.state)


# ============================================================================ org

@cli.group("org")
def org_group() -> None:
    """The organisation directory: organisations, departments, people and roles."""


@org_group.command("load")
@click.argument("file", type=click.Path(dir_okay=False))
@session_option
@operator_option
@json_option
@pass_ctx
def org_load(ctx: Context, file: str, session_file: str | None, operator: str | None) -> None:
    """Load an organisation from its YAML file (an admin; loading again updates it; audited).  Its people
    become accounts; people no longer in the file lose theirs at once."""
    flow = _flow(ctx)
    result = flow.load_organisation(file, actor=acting(ctx, flow.home, session_file, claimed=operator))
    org = result.organisation
    verb = "loaded" if result.created else ("updated" if result.changed else "unchanged")
    lines = [f"organisation {org.name} {verb} (version {result.version}, {len(org.people)} people, "
             f"seal {org.seal or '-'})"] + [f"note: {n}" for n in result.notes]
    ctx.emit(result.to_dict(), "\n".join(lines))


@org_group.command("show")
@click.argument("name")
@json_option
@pass_ctx
def org_show(ctx: Context, name: str) -> None:
    """Show an organisation: people, departments with their heads, roles, routes."""
    data = _flow(ctx).organisation_record(name)
    lines = [f"{data['name']}  (代字 {data['code']}, seal {data['seal'] or '-'}, version {data['version']})"]
    for dept, info in data["departments"].items():
        lines.append(f"  {dept}: heads {', '.join(info['heads']) or '-'}; people {', '.join(info['people'])}")
    for role, ids in data["roles"].items():
        lines.append(f"  {role}: {', '.join(ids) or '-'}")
    for kind, route in data["routes"].items():
        lines.append(f"  route {kind}: {route['name']}: " + " → ".join(s["title"] for s in route["steps"]))
    ctx.emit(data, "\n".join(lines))


@org_group.command("template")
@click.argument("name")
@click.option("--check", is_flag=True, help="Render a specimen page of every variant with this machine's fonts.")
@click.option("--variant", type=click.Choice(["file", "letter", "minutes"]), multiple=True,
              help="With --check: only these variants (文件式 file, 信函式 letter, 纪要式 minutes).")
@click.option("--out", type=click.Path(file_okay=False), help="With --check: write the specimen PDFs here.")
@json_option
@pass_ctx
def org_template(ctx: Context, name: str, check: bool, variant: tuple[str, ...], out: str | None) -> None:
    """Show an organisation's red-header template; --check typesets a specimen with it."""
    from docflow.typeset.registry import org_template as template_of
    org = _flow(ctx).organisation(name)
    template = template_of(org)
    fonts = template.resolve_fonts()
    data: dict[str, Any] = {"organisation": org.name, "template": template.name, "digest": template.digest,
                            "source": template.source, "variants": list(template.variants),
                            "fonts": {r: f.to_dict() for r, f in fonts.items()}}
    lines = [f"{org.name}: template {template.name} ({template.source or 'default'}, sha256 {template.digest[:16]}…)"]
    for role, f in fonts.items():
        lines.append(f"  {role:<13}{f.family} ({f.path}#{f.index})" + (f"  fall-back for {template.fonts[role][0]}"
                                                                       if f.fallback else ""))
    if check:
        from docflow.typeset import make_specimen
        specimens = []
        for v in variant or tuple(template.variants):
            result = make_specimen(template, org.name, variant=v)
            item = {"variant": v, "pages": result.layout.pages, "seal_places": [
                s.to_dict() for s in result.layout.seal_places]}
            if out:
                path = Path(out) / f"{v}.pdf"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_file_atomic(path, result.pdf, mode=0o644)
                item["file"] = str(path)
            specimens.append(item)
            lines.append(f"  specimen {v}: {result.layout.pages} pages" + (f", {item['file']}" if out else ""))
        data["specimens"] = specimens
    ctx.emit(data, "\n".join(lines))


@org_group.command("list")
@json_option
@pass_ctx
def org_list(ctx: Context) -> None:
    """List the organisations of this home."""
    orgs = _flow(ctx).organisations()
    ctx.emit({"organisations": [{"name": o.name, "code": o.code, "seal": o.seal, "people": len(o.people)}
                                for o in orgs]},
             "\n".join(f"{o.name}\t{o.code}\t{o.seal or '-'}\t{len(o.people)} people" for o in orgs)
             or "no organisations")


# ============================================================================ doc

@cli.group("doc")
def doc_group() -> None:
    """Official documents: draft, review, sign off, register, seal, send, receive, archive."""


@doc_group.command("new")
@click.option("--kind", required=True, type=click.Choice(["upward", "downward", "parallel"]),
              help="上行文 (upward), 下行文 (downward) or 平行文 (parallel).")
@click.option("--title", help="标题 (required unless the body's front matter gives it).")
@click.option("--file", "--pdf", "pdf_file", type=click.Path(dir_okay=False),
              help="The body (正文) as a finished PDF or OFD (told by content).")
@click.option("--body", "body_file", type=click.Path(dir_okay=False),
              help="The body as structured text (UTF-8), typeset on the organisation's template.")
@click.option("--drafter", help="The session's account (checked): the drafter (拟稿人) is who is logged in.")
@click.option("--attach", "attach", multiple=True, type=click.Path(dir_okay=False),
              help="An attachment file (repeatable); never the body itself.")
@click.option("--declare", "declared", multiple=True,
              help="An attachment the document declares (附件说明), by file name or stem (repeatable).")
@click.option("--main-to", "main_to", multiple=True, help="主送机关 (repeatable).")
@click.option("--cc", multiple=True, help="抄送机关 (repeatable).")
@click.option("--urgency", help="紧急程度: 特急, 加急 (telegrams: 特提, 平急).")
@click.option("--classification", help="密级: only 无 is accepted; classified content never enters the system.")
@click.option("--note", help="附注.")
@click.option("--to", "to", help="The department reviewer, when several heads could review.")
@session_option
@json_option
@pass_ctx
def doc_new(ctx: Context, kind: str, title: str | None, pdf_file: str | None, body_file: str | None,
            drafter: str | None, attach: tuple[str, ...],
            declared: tuple[str, ...], main_to: tuple[str, ...], cc: tuple[str, ...], urgency: str | None,
            classification: str | None, note: str | None, to: str | None, session_file: str | None) -> None:
    """Draft a document and submit it to the first step of its route (a signed decision); prints its id."""
    from docflow import Attachment
    pdf, body = _body_inputs(pdf_file, body_file)
    if body is None and not title:
        raise click.UsageError("--title is required with --file (--pdf)")
    flow = _flow(ctx)
    actor = acting(ctx, flow.home, session_file, claimed=drafter, claim="--drafter")
    attachments = [Attachment(Path(p).name, read_input(p, "attachment")) for p in attach]
    doc = flow.new_document(kind=kind, title=title, pdf=pdf, body=body, actor=actor,
                            attachments=attachments, declared_attachments=declared, main_recipients=main_to,
                            copy_to=cc, urgency=urgency, classification=classification, note=note, to=to)
    if not ctx.json:
        click.echo(f"document {doc.id}: {_status(flow, doc)}", err=True)
    ctx.emit(doc.to_dict(), str(doc.id))


def _body_inputs(pdf_file: str | None, body_file: str | None) -> tuple[bytes | None, str | None]:
    if (pdf_file is None) == (body_file is None):
        raise click.UsageError("give the body as --file FILE (PDF or OFD) or as --body FILE (structured text), "
                               "one of the two")
    if pdf_file is not None:
        return read_input(pdf_file, "body"), None
    try:
        return None, read_input(body_file, "body").decode("utf-8")
    except UnicodeDecodeError:
        raise click.UsageError(f"the body {body_file} is not UTF-8 text") from None


@doc_group.command("todo")
@click.option("--user", help="A person id (default: the session's account).")
@session_option
@json_option
@pass_ctx
def doc_todo(ctx: Context, user: str | None, session_file: str | None) -> None:
    """What waits for a user: steps to act on, the inbox (receivers), returned deliveries (secretaries)."""
    flow = _flow(ctx)
    if user is None:
        user = acting(ctx, flow.home, session_file).account_id
    items = flow.todo(user)
    lines = []
    for i in items:
        where = {"step": i.step_title, "inbox": f"收文 from {i.organisation} ({i.detail})",
                 "returned": f"returned by {i.organisation}: {i.detail}"}[i.what]
        lines.append(f"{i.doc_id}\t{i.kind}\t{where}\t{i.title}\t{i.since:%Y-%m-%d %H:%M}")
    ctx.emit({"user": user, "items": [i.to_dict() for i in items]}, "\n".join(lines) or "nothing to do")


@doc_group.command("act")
@click.argument("doc", type=int)
@click.option("--user", help="The session's account (checked; the actor comes from --session).")
@click.option("--action", required=True, type=click.Choice(["approve", "return", "forward", "sign-off", "register"]))
@click.option("--to", "to", help="The next handler where the route leaves a choice (a person; for the "
                                 "distribute step of incoming documents, the handling department).")
@click.option("--opinion", help="The opinion (required on approval steps and for a return).")
@session_option
@json_option
@pass_ctx
def doc_act(ctx: Context, doc: int, user: str | None, action: str, to: str | None, opinion: str | None,
            session_file: str | None) -> None:
    """Act on the step a document is at."""
    flow = _flow(ctx)
    actor = acting(ctx, flow.home, session_file, claimed=user, claim="--user")
    result = flow.act(doc, actor=actor, action=action, opinion=opinion, to=to)
    extra = ""
    if action == "sign-off":
        extra = f" (签发人 {result.elements.signer}, 成文日期 {result.elements.date})"
    elif action == "register" and result.elements.doc_number:
        extra = f" (发文字号 {result.elements.doc_number})"
    elif action == "register" and result.elements.received_number:
        extra = f" (收文编号 {result.elements.received_number})"
    ctx.emit(result.to_dict(), f"document {doc}: {action} by {actor.account_id}{extra}; now {_status(flow, result)}")


@doc_group.command("revise")
@click.argument("doc", type=int)
@click.option("--user", help="The session's account (checked; the actor comes from --session).")
@click.option("--file", "--pdf", "pdf_file", type=click.Path(dir_okay=False),
              help="The new body as a finished PDF or OFD.")
@click.option("--body", "body_file", type=click.Path(dir_okay=False), help="The new body as structured text.")
@click.option("--note", help="What changed.")
@session_option
@json_option
@pass_ctx
def doc_revise(ctx: Context, doc: int, user: str | None, pdf_file: str | None, body_file: str | None,
               note: str | None, session_file: str | None) -> None:
    """A new version of the body; after sign-off it goes back to the signer."""
    pdf, body = _body_inputs(pdf_file, body_file)
    flow = _flow(ctx)
    actor = acting(ctx, flow.home, session_file, claimed=user, claim="--user")
    result = flow.revise(doc, actor=actor, pdf=pdf, body=body, note=note)
    ctx.emit(result.to_dict(), f"document {doc}: version {result.current_version} "
                               f"(sha256 {result.digests.sha256[:16]}…); now {_status(flow, result)}")


def _placement(page: int | None, at: str | None, anchor: str | None, field: str | None) -> Any:
    from seal.pdf_placement import AnchorText, AtPosition, ExistingField
    chosen = [x for x in (at, anchor, field) if x is not None]
    if len(chosen) > 1:
        raise click.UsageError("give one of --at, --anchor, --field")
    if page is not None and at is None:
        raise click.UsageError("--page goes with --at X,Y")
    if at is not None:
        try:
            x, y = (float(v) for v in at.split(","))
        except ValueError:
            raise click.UsageError("--at takes X,Y in millimetres from the page's lower-left corner") from None
        try:
            return AtPosition(page if page is not None else -1, x, y)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if anchor is not None:
        try:
            return AnchorText(anchor)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if field is not None:
        return ExistingField(field)
    return None


@doc_group.command("seal")
@click.argument("doc", type=int)
@click.option("--user", help="The session's account (checked; the actor comes from --session).")
@click.option("--seal", "seal_name", required=True, help="The organisation's seal.")
@click.option("--password-file", type=click.Path(dir_okay=False),
              help="The seal password (else $YINXIN_SEAL_PASSWORD or a prompt).")
@placement_options
@session_option
@json_option
@pass_ctx
def doc_seal(ctx: Context, doc: int, user: str | None, seal_name: str, password_file: str | None, page: int | None,
             at: str | None, anchor: str | None, field: str | None, riding: bool, riding_min_mm: float,
             session_file: str | None) -> None:
    """Seal the signed-off, registered document with the organisation's seal.

    Without a placement option the seal goes over the organisation's name (its last occurrence: the
    signature line), which GB/T 9704 wants pressed together with the date; --at without --page
    means the last page."""
    placement = _placement(page, at, anchor, field)
    flow = _flow(ctx)
    actor = acting(ctx, flow.home, session_file, claimed=user, claim="--user")
    password = read_password(password_file, env="YINXIN_SEAL_PASSWORD", prompt="Seal password")
    assert password is not None
    result = flow.seal(doc, actor=actor, seal=seal_name, password=password, placement=placement, riding=riding,
                       riding_min_mm=riding_min_mm)
    ctx.emit(result.to_dict(), f"document {doc}: sealed with {seal_name} (version {result.current_version}, "
                               f"sha256 {result.digests.sha256[:16]}…); now {_status(flow, result)}")


@doc_group.command("send")
@click.argument("doc", type=int)
@click.option("--user", help="The session's account (checked; the actor comes from --session).")
@click.option("--to", "to", required=True, multiple=True, help="A recipient organisation (repeatable).")
@session_option
@json_option
@pass_ctx
def doc_send(ctx: Context, doc: int, user: str | None, to: tuple[str, ...], session_file: str | None) -> None:
    """Verify the seal on the outgoing bytes again and send to organisations' inboxes."""
    flow = _flow(ctx)
    result = flow.send(doc, actor=acting(ctx, flow.home, session_file, claimed=user, claim="--user"), to=list(to))
    ctx.emit(result.to_dict(), f"document {doc} ({result.elements.doc_number}) sent to {', '.join(to)}; "
                               "the seal verified on the outgoing bytes")


@doc_group.command("open")
@click.argument("doc", type=int)
@click.option("--user", help="The session's account (checked; the actor comes from --session).")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the delivered PDF here.")
@session_option
@json_option
@pass_ctx
def doc_open(ctx: Context, doc: int, user: str | None, out: str | None, session_file: str | None) -> None:
    """Open a delivered document (the sender can no longer recall it)."""
    flow = _flow(ctx)
    actor = acting(ctx, flow.home, session_file, claimed=user, claim="--user")
    data = flow.open(doc, actor=actor)
    if out:
        write_file_atomic(Path(out), data, mode=0o644)
    from docflow import Digests
    ctx.emit({"doc": doc, "user": actor.account_id, "out": out, **Digests.of(data).to_dict()},
             f"document {doc} opened by {actor.account_id}" + (f"; written to {out}" if out else ""))


@doc_group.command("recall")
@click.argument("doc", type=int)
@click.option("--user", help="The session's account (checked; the actor comes from --session).")
@session_option
@json_option
@pass_ctx
def doc_recall(ctx: Context, doc: int, user: str | None, session_file: str | None) -> None:
    """Recall a sent document while no recipient has opened it."""
    flow = _flow(ctx)
    result = flow.recall(doc, actor=acting(ctx, flow.home, session_file, claimed=user, claim="--user"))
    ctx.emit(result.to_dict(), f"document {doc} recalled; now {_status(flow, result)}")


@doc_group.command("receive")
@click.argument("doc", type=int)
@click.option("--user", help="The session's account (checked; the actor comes from --session).")
@session_option
@json_option
@pass_ctx
def doc_receive(ctx: Context, doc: int, user: str | None, session_file: str | None) -> None:
    """Verify a delivered document and receive it into the 收文 route (or return it with the reason)."""
    from docflow import VerificationFailed
    flow = _flow(ctx)
    receipt = flow.receive(doc, actor=acting(ctx, flow.home, session_file, claimed=user, claim="--user"))
    if not receipt.accepted:
        if ctx.json:
            click.echo(json.dumps(receipt.to_dict(), ensure_ascii=False, indent=2, default=str))
        raise VerificationFailed(f"document {doc} does not verify and was returned to the sender: "
                                 + "; ".join(receipt.problems), doc=doc, problems=list(receipt.problems))
    ctx.emit(receipt.to_dict(), f"document {doc} received by {receipt.organisation} at "
                                f"{receipt.at:%Y-%m-%d %H:%M:%S} UTC; the seal verified; incoming document "
                                f"{receipt.incoming_doc_id}")


def _archive_timestamper(flow: Any, tsa_password_file: str | None, *, required: bool = False):  # type: ignore[no-untyped-def]
    """The home's archive TSA (``tsa:`` in config.yaml, else its only TSA), its key password from
    --tsa-password-file, $YINXIN_TSA_PASSWORD or a prompt."""
    from pki.tsa import home_timestamper

    def password(name: str) -> bytes:
        pw = read_password(tsa_password_file, env="YINXIN_TSA_PASSWORD", prompt=f"Password of TSA {name}")
        assert pw is not None
        return pw
    stamper = home_timestamper(flow.home, password)
    if stamper is None and required:
        raise click.UsageError("this home has no TSA (yinxin tsa init) and config.yaml names none (tsa: URL)")
    return stamper


@doc_group.command("archive")
@click.argument("doc", type=int)
@click.option("--user", help="The session's account (checked; the actor comes from --session).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Also write the archived PDF and the verification reports into this directory.")
@click.option("--tsa-password-file", type=click.Path(dir_okay=False),
              help="Password of the home's TSA key (else $YINXIN_TSA_PASSWORD or a prompt): the archived file "
                   "gets PAdES B-LTA when the home has a TSA or config.yaml names one (tsa:).")
@session_option
@json_option
@pass_ctx
def doc_archive(ctx: Context, doc: int, user: str | None, out: str | None, tsa_password_file: str | None,
                session_file: str | None) -> None:
    """Archive a finished document with its log and verification reports (append-only)."""
    flow = _flow(ctx)
    actor = acting(ctx, flow.home, session_file, claimed=user, claim="--user")
    record = flow.archive(doc, actor=actor, timestamper=_archive_timestamper(flow, tsa_password_file))
    written = _write_archive(flow, doc, out) if out else []
    lta = record.record.get("archive_timestamp")
    ctx.emit(record.to_dict() | {"written": written},
             f"document {doc} archived ({len(record.reports)} verification reports, sha256 "
             f"{record.digests.sha256[:16]}…)"
             + (f"; archive timestamp {lta['time']} by {lta['tsa']}" if lta else "; no archive timestamp (no TSA)")
             + "".join(f"\n  {w}" for w in written))


@doc_group.command("archive-renew")
@click.option("--user", help="The session's account (checked; the actor comes from --session): a secretary renews "
                             "the archived documents of their organisations.")
@click.option("--within-days", type=int, default=365, show_default=True,
              help="Renew where the newest archive timestamp's certificate ends within this many days.")
@click.option("--doc", "docs", type=int, multiple=True, help="Only these documents (repeatable).")
@click.option("--tsa-password-file", type=click.Path(dir_okay=False),
              help="Password of the home's TSA key (else $YINXIN_TSA_PASSWORD or a prompt).")
@session_option
@json_option
@pass_ctx
def doc_archive_renew(ctx: Context, user: str | None, within_days: int, docs: tuple[int, ...],
                      tsa_password_file: str | None, session_file: str | None) -> None:
    """Renew archive timestamps (fresh validation data and a new document timestamp) before they
    lapse: the secretary's decision, signed like the others."""
    if within_days < 0:
        raise click.UsageError("--within-days is not negative")
    flow = _flow(ctx)
    actor = acting(ctx, flow.home, session_file, claimed=user, claim="--user")
    stamper = _archive_timestamper(flow, tsa_password_file, required=True)
    results = flow.renew_archives(actor=actor, timestamper=stamper, within_days=within_days,
                                  doc_ids=list(docs) if docs else None)
    renewed = [r for r in results if r.renewed]
    ctx.emit({"renewed": len(renewed), "documents": [r.to_dict() for r in results]},
             f"{len(renewed)} of {len(results)} archived document(s) renewed"
             + "".join(f"\n  document {r.doc_id}: {r.detail}" for r in results))


def _write_archive(flow: Any, doc: int, out: str) -> list[str]:
    record, data = flow.archived(doc)
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = "ofd" if bytes(data[:4]) == b"PK\x03\x04" else "pdf"
    pdf_path, report_path = directory / f"document-{doc}.{suffix}", directory / f"document-{doc}-archive.json"
    write_file_atomic(pdf_path, data, mode=0o644)
    write_file_atomic(report_path, json.dumps(record.to_dict(), ensure_ascii=False, indent=2,
                                              default=str).encode(), mode=0o644)
    return [str(pdf_path), str(report_path)]


@doc_group.command("show")
@click.argument("doc", type=int)
@click.option("--out", type=click.Path(dir_okay=False), help="Write the PDF (current or --version) here.")
@click.option("--version", "version", type=int, help="With --out: which version.")
@json_option
@pass_ctx
def doc_show(ctx: Context, doc: int, out: str | None, version: int | None) -> None:
    """Show a document: elements, state, versions with digests, attachments, deliveries."""
    from docflow.elements import LABELS
    flow = _flow(ctx)
    d = flow.show(doc)
    if out:
        write_file_atomic(Path(out), flow.pdf(doc, version), mode=0o644)
    data = d.to_dict() | ({"out": out} if out else {})
    lines = [f"document {d.id}  {d.organisation}  {d.kind}  {d.route_name}  state {d.state}"]
    if d.state in ("in_flow", "draft"):
        lines.append(f"  step: {_status(flow, d)}")
    for key, value in d.elements.to_dict().items():
        if value not in (None, [], ""):
            lines.append(f"  {LABELS.get(key, key)}: {', '.join(value) if isinstance(value, list) else value}")
    for v in d.versions:
        marks = [m for m, n in (("signed off", d.signed_off_version), ("sealed", d.sealed_version)) if n == v.number]
        lines.append(f"  version {v.number} ({v.purpose}{', ' + ', '.join(marks) if marks else ''}): "
                     f"sha256 {v.digests.sha256} sm3 {v.digests.sm3} {v.digests.size} bytes")
    for a in d.attachments:
        lines.append(f"  附件 {a.position}: {a.name} sha256 {a.digests.sha256}")
    for x in d.deliveries:
        lines.append(f"  delivery to {x.organisation}: {x.state}" + (f" ({x.reason})" if x.reason else ""))
    if out:
        lines.append(f"  written to {out}")
    ctx.emit(data, "\n".join(lines))


@doc_group.command("log")
@click.argument("doc", type=int)
@click.option("--verify", is_flag=True, help="Check every signed decision (signature, the signer's certificate "
                                             "then, the chain of records, the log): exit 1 naming the first "
                                             "bad record.")
@json_option
@pass_ctx
def doc_log(ctx: Context, doc: int, verify: bool) -> None:
    """The document's actions: who, when, which step, the opinion, the digest of the version acted on,
    and the number of each action's signed decision."""
    flow = _flow(ctx)
    entries = flow.log(doc)
    lines = [f"{e.seq}\t{e.at:%Y-%m-%d %H:%M:%S}\t{e.actor}\t{e.action}\t{e.step or '-'}\t"
             f"{e.opinion or ''}\tv{e.version} {(e.sha256 or '')[:16]}"
             + (f"\tsigned #{e.decision_seq}" if e.decision_seq is not None else "\tunsigned") for e in entries]
    if not verify:
        ctx.emit({"doc": doc, "log": [e.to_dict() for e in entries]}, "\n".join(lines))
        return
    from pki.accounts.errors import DecisionVerificationFailed
    report = flow.verify_log(doc)
    marks = {r.seq: "OK" if r.ok else "BAD" for r in report.records}
    lines = [line + (f"\t{marks.get(e.decision_seq, '')}" if e.decision_seq is not None else "")
             for line, e in zip(lines, entries)]
    data = {"doc": doc, "log": [e.to_dict() for e in entries], "verification": report.to_dict()}
    if not report.ok:
        if ctx.json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        else:
            click.echo("\n".join(lines))
        raise DecisionVerificationFailed(f"document {doc}: {report.first_problem}", doc=doc)
    ctx.emit(data, "\n".join(lines) + f"\nall {report.signed} signed decisions verify "
                                       f"(signatures, certificates at the time of each act, the chain, the log)")


@doc_group.command("evidence")
@click.argument("doc", type=int)
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="A new (or empty) directory for the bundle.")
@json_option
@pass_ctx
def doc_evidence(ctx: Context, doc: int, out: str) -> None:
    """Write the evidence a third party checks with OpenSSL alone: each act's exact signed bytes,
    signature and certificate, the document's versions, the CA certificates, the CRLs and verify.sh."""
    bundle = _flow(ctx).evidence(doc, out)
    ctx.emit(bundle.to_dict(), f"document {doc}: {bundle.acts} signed acts, versions "
                               f"{', '.join(map(str, bundle.versions))}, CAs {', '.join(bundle.cas)} → {out}\n"
                               f"check it: sh {Path(out) / 'verify.sh'}")

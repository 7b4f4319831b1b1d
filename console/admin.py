"""Administration pages: accounts (create, disable, enable, unlock, reset password, roles), seals
(list, picture, password change by the custodian, unlock by another administrator), organisations
(load a directory file), audit events (filter, export CSV).

Every act is the library's, with the actor's rights checked there (an admin for accounts); where a
library call does not take an actor yet, the page checks the role first.
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from . import ops
from .errors import ConsoleError, bad_request
from .web import Who, console_of, page, redirect, render, run, secret_field, text_field, upload_field, with_headers

ROLE_LABELS = {"admin": "系统管理员", "ca_operator": "CA操作员", "ra_officer": "RA审核员", "seal_admin": "印章管理员（系统）"}
ACCOUNT_OPS = {"disable": "已停用", "enable": "已启用", "unlock": "已解锁", "password": "已重置初始口令",
               "roles": "角色已修改", "create": "已创建"}


def _require(console: Any, who: Who, *roles: str) -> None:
    console.accounts.require(who.actor, any_of=roles)


# =========================================================================== accounts

@page
async def accounts_page(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    items = await run(console.accounts.list, actor=who.actor)
    orgs = await run(console.flow.organisations)
    return render(request, "admin_accounts.html", {
        "title": "账户管理", "accounts": items, "roles": ROLE_LABELS, "organisations": [o.name for o in orgs],
        "done": ACCOUNT_OPS.get(request.query_params.get("done", "")),
        "subject": request.query_params.get("account")}, who=who)


def _roles(form: FormData) -> list[str]:
    return [r for r in form.getlist("roles") if isinstance(r, str) and r]


@page
async def accounts_create(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    account_id = text_field(form, "account", required=True, max_length=64) or ""
    await run(console.accounts.create, account_id, name=text_field(form, "name", required=True, max_length=100) or "",
              roles=_roles(form), organisation=text_field(form, "organisation", max_length=200),
              id_number=text_field(form, "id_number", max_length=64),
              password=secret_field(form, "initial_password", required=True), actor=who.actor)
    return redirect(request, f"/admin/accounts?done=create&account={account_id}")


@page
async def accounts_act(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    account_id = request.path_params["account_id"]
    op = request.path_params["op"]
    accounts = console.accounts
    if op in ("disable", "enable", "unlock"):
        await run(getattr(accounts, op), account_id, actor=who.actor)
    elif op == "password":
        await run(accounts.set_password, account_id, secret_field(form, "initial_password", required=True) or b"",
                  actor=who.actor)
    elif op == "roles":
        await run(accounts.set_roles, account_id, _roles(form), actor=who.actor)
    else:
        raise ConsoleError(404, "not_found", f"no account operation {op!r}")
    return redirect(request, f"/admin/accounts?done={op}&account={account_id}")


# =========================================================================== seals

def _visible_seals(console: Any, who: Who) -> list[Any]:
    roles = who.actor.roles
    if "seal_admin" in roles:
        console.accounts.require(who.actor)
        return console.registry.list()
    return ops.my_seals(console, who)


@page
async def seals_page(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    items = await run(_visible_seals, console, who)
    return render(request, "admin_seals.html", {
        "title": "印章", "seals": items, "done": {"password": "印章密码已修改", "unlock": "印章已解锁"}.get(
            request.query_params.get("done", "")), "subject": request.query_params.get("seal")}, who=who)


@page
async def seal_password(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    name = request.path_params["name"]
    record = await run(ops.custodian_seal, console, who, name)
    old = secret_field(form, "old_password", required=True) or b""
    new = secret_field(form, "new_password", required=True) or b""
    if new != secret_field(form, "new_password_confirm"):
        raise ConsoleError(422, "invalid", "两次输入的新密码不一致")
    await run(console.registry.change_password, record.name, old, new, actor=who.actor)
    return redirect(request, f"/admin/seals?done=password&seal={name}")


@page
async def seal_unlock(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    name = request.path_params["name"]
    await run(console.registry.unlock, name, actor=who.actor)
    return redirect(request, f"/admin/seals?done=unlock&seal={name}")


# =========================================================================== organisations

@page
async def organisations_page(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    await run(_require, console, who, "admin")
    orgs = [await run(console.flow.organisation_record, o.name) for o in await run(console.flow.organisations)]
    return render(request, "admin_orgs.html", {"title": "机构", "organisations": orgs,
                                               "done": request.query_params.get("done")}, who=who)


def _load_organisation(console: Any, who: Who, data: bytes, name: str) -> Any:
    import yaml
    try:
        parsed = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        raise ConsoleError(422, "invalid", f"{name}: not a YAML organisation file (UTF-8)") from None
    return console.flow.load_organisation_data(parsed, actor=who.actor, source=f"console:{name}")


@page
async def organisations_load(request: Request, who: Who, form: FormData) -> Response:
    console = console_of(request)
    upload = form.get("file")
    data = await upload_field(form, "file") or b""
    if len(data) > 1024 * 1024:
        raise ConsoleError(413, "too_large", "an organisation file is at most 1 MiB")
    name = getattr(upload, "filename", None) or "organisation.yaml"
    result = await run(_load_organisation, console, who, data, name)
    verb = "loaded" if result.created else ("updated" if result.changed else "unchanged")
    return redirect(request, f"/admin/organisations?done={verb}")


# =========================================================================== audit

AUDIT_FIELDS = ("seq", "at", "actor", "action", "target", "client", "details", "result_digest", "hash")


def _audit_query(console: Any, who: Who, request: Request) -> tuple[list[Any], dict[str, str]]:
    from pki import audit
    _require(console, who, "admin")
    q = request.query_params
    filters = {k: (q.get(k) or "").strip() for k in ("actor", "action", "target", "since", "until")}

    def day(value: str, what: str) -> datetime | None:
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise bad_request(f"{what} is a date (YYYY-MM-DD) or a time") from None
        if parsed.tzinfo is None:
            from docflow import CHINA_TIME
            parsed = parsed.replace(tzinfo=CHINA_TIME)
        return parsed

    since = day(filters["since"], "since")
    until = day(filters["until"], "until")
    if until is not None and len(filters["until"]) <= 10:
        until += timedelta(days=1)          # a date means the whole day
    try:
        limit = min(max(int(q.get("limit") or 200), 1), 100_000)
    except ValueError:
        raise bad_request("limit is a whole number") from None
    events = audit.search(console.home.store, actor=filters["actor"] or None, action=filters["action"] or None,
                          target=filters["target"] or None, since=since, until=until, limit=limit)
    return events, filters


@page
async def audit_page(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    events, filters = await run(_audit_query, console, who, request)
    return render(request, "admin_audit.html", {"title": "审计日志", "events": events, "filters": filters,
                                                "query": request.url.query}, who=who)


@page
async def audit_csv(request: Request, who: Who, form: None) -> Response:
    console = console_of(request)
    import json
    events, _ = await run(_audit_query, console, who, request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_FIELDS)
    for e in events:
        request_info = e.details.get("request") if isinstance(e.details.get("request"), dict) else {}
        writer.writerow([e.seq, e.at.isoformat(), e.actor, e.action, e.target, request_info.get("client", ""),
                         json.dumps(dict(e.details), ensure_ascii=False, sort_keys=True), e.result_digest or "",
                         e.hash])
    data = "\ufeff" + out.getvalue()        # a BOM: spreadsheet programs then read UTF-8
    response = Response(data.encode("utf-8"), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": 'attachment; filename="audit.csv"'})
    return with_headers(request, response)


__all__ = ["accounts_page", "accounts_create", "accounts_act", "seals_page", "seal_password", "seal_unlock",
           "organisations_page", "organisations_load", "audit_page", "audit_csv"]

"""The organisation directory: organisations, departments, people and their roles.

One YAML file per organisation (see ``policies/examples/``)::

    name: 北京市测试局
    code: 京测                    # 发文机关代字 for 发文字号 (default: the name)
    seal: official-sm2            # the organisation's official seal in this home
    routes: [my-upward.yaml]      # optional: route files overriding the defaults, relative to this file
    template: templates/bj        # optional: the red-header template directory (docflow.typeset), relative
    signatures: all               # optional: the actions signed with the actor's certificate (default
                                  # all; or a list such as [approve, sign-off, seal, send])
    people:
      - {id: sun,  name: 孙拟稿, department: 业务处}
      - {id: chen, name: 陈处长, department: 业务处, head: true}
      - {id: li,   name: 李副局长, roles: [leader]}

Validated completely on load: unknown fields, duplicate ids, unknown roles,
``head`` without a department, and every route in effect checked against the
people (`routes.check_route_for`).  The seal need not exist yet when the file is
loaded (an organisation is usually set up before its seal is made); it must
exist, be this organisation's and be usable when a document is sealed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import DirectoryError
from .routes import KINDS, ROLES, Route, check_route_for, load_route_file, routes_by_kind

_ORG_FIELDS = {"name", "code", "seal", "people", "routes", "description", "template", "signatures"}
#: every action of the flow that leaves a log entry; each is a signed decision unless the
#: organisation's `signatures:` leaves it out (`check` is the drafter's check, an approve at that step)
SIGNABLE_ACTIONS = ("new", "approve", "return", "forward", "sign-off", "register", "revise", "seal", "send",
                    "recall", "open", "receive", "receive_refused", "archive", "archive-renew")
_PERSON_FIELDS = {"id", "name", "department", "head", "roles"}
_PERSON_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    organisation: str
    department: str | None = None
    head: bool = False
    roles: frozenset[str] = frozenset()

    def label(self) -> str:
        return f"{self.name}({self.id})"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.department:
            data["department"] = self.department
        if self.head:
            data["head"] = True
        if self.roles:
            data["roles"] = sorted(self.roles)
        return data


@dataclass(frozen=True)
class Organisation:
    name: str
    code: str
    seal: str | None
    people: tuple[Person, ...]
    routes: Mapping[str, Route] = field(default_factory=dict)   # the route in effect for each kind
    description: str = ""
    template: Mapping[str, Any] | None = None   # snapshot of its red-header template (None: the default)
    #: the actions its people sign with their own certificate (all of SIGNABLE_ACTIONS by default)
    signed_actions: frozenset[str] = frozenset(SIGNABLE_ACTIONS)

    def signs(self, action: str) -> bool:
        return action in self.signed_actions

    def person(self, person_id: str) -> Person:
        for p in self.people:
            if p.id == person_id:
                return p
        raise DirectoryError(f"{person_id!r} is not a person of {self.name}", person=person_id,
                             organisation=self.name)

    def has_person(self, person_id: str) -> bool:
        return any(p.id == person_id for p in self.people)

    def with_role(self, role: str) -> tuple[Person, ...]:
        return tuple(p for p in self.people if role in p.roles)

    @property
    def departments(self) -> tuple[str, ...]:
        seen: list[str] = []
        for p in self.people:
            if p.department and p.department not in seen:
                seen.append(p.department)
        return tuple(seen)

    def heads(self, department: str) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.department == department and p.head)

    def route(self, kind: str) -> Route:
        try:
            return self.routes[kind]
        except KeyError:
            raise DirectoryError(f"{self.name} has no route for kind {kind!r}", kind=kind,
                                 organisation=self.name) from None

    def definition(self) -> dict[str, Any]:
        """The organisation as data (what is stored and shown), routes included."""
        data = {"name": self.name, "code": self.code, "seal": self.seal, "description": self.description,
                "people": [p.to_dict() for p in self.people],
                "routes": {k: r.to_data() | {"source": r.source} for k, r in sorted(self.routes.items())},
                **({"template": dict(self.template)} if self.template else {})}
        if self.signed_actions != frozenset(SIGNABLE_ACTIONS):     # absent: all (as before signatures existed)
            data["signatures"] = sorted(self.signed_actions)
        return data

    def to_dict(self) -> dict[str, Any]:
        data = self.definition()
        data["departments"] = {d: {"heads": [p.id for p in self.heads(d)],
                                   "people": [p.id for p in self.people if p.department == d]}
                               for d in self.departments}
        data["roles"] = {r: [p.id for p in self.with_role(r)] for r in ROLES}
        if self.template:
            data["template"] = {"name": self.template["name"], "source": self.template["source"],
                                "digest": self.template["digest"], "files": sorted(self.template["files"])}
        return data


def parse_organisation(data: Any, *, source: str, default_routes: Mapping[str, Route],
                       base_dir: Path | None = None) -> Organisation:
    """A validated organisation from the mapping of its file; DirectoryError/RouteError name the problem."""
    if not isinstance(data, Mapping):
        raise DirectoryError(f"{source}: an organisation file is a mapping (name, seal, people)", file=source)
    unknown = set(map(str, data)) - _ORG_FIELDS
    if unknown:
        raise DirectoryError(f"{source}: unknown field(s) {', '.join(sorted(unknown))}", file=source)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DirectoryError(f"{source}: the organisation needs a name", file=source, field="name")
    name = name.strip()
    code = data.get("code", name)
    if not isinstance(code, str) or not code.strip():
        raise DirectoryError(f"{source}: code (发文机关代字) must be text", file=source, field="code")
    seal = data.get("seal")
    if seal is not None and (not isinstance(seal, str) or not seal.strip()):
        raise DirectoryError(f"{source}: seal must be the name of a seal", file=source, field="seal")
    raw_people = data.get("people")
    if not isinstance(raw_people, list) or not raw_people:
        raise DirectoryError(f"{source}: people must list the organisation's people", file=source,
                             field="people")
    people: list[Person] = []
    seen: set[str] = set()
    for n, raw in enumerate(raw_people, 1):
        where = f"{source}: person {n}"
        if not isinstance(raw, Mapping):
            raise DirectoryError(f"{where}: a person is a mapping with id and name", file=source, person=n)
        extra = set(map(str, raw)) - _PERSON_FIELDS
        if extra:
            raise DirectoryError(f"{where}: unknown field(s) {', '.join(sorted(extra))}", file=source, person=n)
        pid = raw.get("id")
        if not isinstance(pid, str) or not _PERSON_ID.fullmatch(pid):
            raise DirectoryError(f"{where}: id must be letters, digits, '.', '-' or '_' starting with a letter",
                                 file=source, person=n, field="id")
        where = f"{source}: person {pid}"
        if pid in seen:
            raise DirectoryError(f"{where}: id {pid!r} is used twice", file=source, person=pid)
        seen.add(pid)
        pname = raw.get("name")
        if not isinstance(pname, str) or not pname.strip():
            raise DirectoryError(f"{where}: name is missing", file=source, person=pid, field="name")
        dept = raw.get("department")
        if dept is not None and (not isinstance(dept, str) or not dept.strip()):
            raise DirectoryError(f"{where}: department must be text", file=source, person=pid)
        head = raw.get("head", False)
        if not isinstance(head, bool):
            raise DirectoryError(f"{where}: head is true or false", file=source, person=pid, field="head")
        if head and not dept:
            raise DirectoryError(f"{where}: head: true needs a department", file=source, person=pid)
        roles_raw = raw.get("roles", [])
        if isinstance(roles_raw, str):
            roles_raw = [roles_raw]
        if not isinstance(roles_raw, list) or not all(isinstance(r, str) for r in roles_raw):
            raise DirectoryError(f"{where}: roles must be a list", file=source, person=pid, field="roles")
        bad = [r for r in roles_raw if r not in ROLES]
        if bad:
            raise DirectoryError(f"{where}: unknown role(s) {', '.join(map(repr, bad))} "
                                 f"(known: {', '.join(ROLES)})", file=source, person=pid, roles=bad)
        people.append(Person(id=pid, name=pname.strip(), organisation=name,
                             department=dept.strip() if dept else None, head=head, roles=frozenset(roles_raw)))
    routes = dict(default_routes)
    raw_routes = data.get("routes") or []
    if isinstance(raw_routes, str):
        raw_routes = [raw_routes]
    if not isinstance(raw_routes, list) or not all(isinstance(r, str) for r in raw_routes):
        raise DirectoryError(f"{source}: routes lists route files", file=source, field="routes")
    own = routes_by_kind([load_route_file((base_dir or Path(".")) / r) for r in raw_routes])
    routes.update(own)
    missing = [k for k in KINDS if k not in routes]
    if missing:
        raise DirectoryError(f"{source}: no route for kind(s) {', '.join(missing)}", file=source)
    template = None
    if data.get("template") is not None:
        if not isinstance(data["template"], str) or not data["template"].strip():
            raise DirectoryError(f"{source}: template is the path of a template directory", file=source)
        from .typeset.template import load_template_dir
        loaded = load_template_dir((base_dir or Path(".")) / data["template"])
        loaded.resolve_fonts()          # a template naming fonts this machine lacks is refused now
        template = loaded.snapshot()
    org = Organisation(name=name, code=code.strip(), seal=seal.strip() if seal else None,
                       people=tuple(people), routes=routes, description=str(data.get("description") or ""),
                       template=template, signed_actions=_signed_actions(data.get("signatures", "all"), source))
    for route in {id(r): r for r in routes.values()}.values():
        check_route_for(route, org)
    return org


def _signed_actions(value: Any, source: str) -> frozenset[str]:
    if value == "all":
        return frozenset(SIGNABLE_ACTIONS)
    if value == "none" or value == []:
        return frozenset()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DirectoryError(f"{source}: signatures is all, none or a list of actions", file=source,
                             field="signatures")
    unknown = [v for v in value if v not in SIGNABLE_ACTIONS]
    if unknown:
        raise DirectoryError(f"{source}: signatures: unknown action(s) {', '.join(map(repr, unknown))} (known: "
                             f"{', '.join(SIGNABLE_ACTIONS)})", file=source, field="signatures")
    return frozenset(value)


def load_organisation_file(path: str | Path, default_routes: Mapping[str, Route]) -> Organisation:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DirectoryError(f"cannot read organisation file {p}: {exc.strerror}", file=str(p)) from None
    except yaml.YAMLError:
        raise DirectoryError(f"{p}: not valid YAML", file=str(p)) from None
    return parse_organisation(data, source=str(p), default_routes=default_routes, base_dir=p.parent)


def organisation_from_text(text: str) -> Organisation:
    """An organisation from its stored definition (JSON), parsed once per distinct definition: every
    operation of the flow reads the document's organisation, and the definitions rarely change."""
    return _organisation_from_text(text)


@lru_cache(maxsize=64)
def _organisation_from_text(text: str) -> Organisation:
    import json
    return organisation_from_definition(json.loads(text))


def organisation_from_definition(data: Mapping[str, Any]) -> Organisation:
    """An organisation as stored by `Organisation.definition` (validated when it was loaded)."""
    from .routes import parse_route
    routes: dict[str, Route] = {}
    parsed: dict[str, Route] = {}
    for kind, rdata in data["routes"].items():
        rdata = dict(rdata)
        source = rdata.pop("source", "") or f"stored route {rdata.get('name')}"
        key = f"{source}|{rdata.get('name')}"
        if key not in parsed:
            parsed[key] = parse_route(rdata, source)
        routes[kind] = parsed[key]
    people = tuple(Person(id=p["id"], name=p["name"], organisation=data["name"], department=p.get("department"),
                          head=bool(p.get("head", False)), roles=frozenset(p.get("roles", ())))
                   for p in data["people"])
    return Organisation(name=data["name"], code=data["code"], seal=data.get("seal"), people=people,
                        routes=routes, description=data.get("description") or "", template=data.get("template"),
                        signed_actions=_signed_actions(data.get("signatures", "all"), data["name"]))

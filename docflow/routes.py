"""Approval routes: which steps a document of a kind goes through, and who acts at each.

Routes are declared in YAML (``policies/routes/*.yaml``; an organisation may ship
its own files) and validated completely when loaded: an unknown role, a step
type the engine does not know, an outgoing route without sign-off, seal or
send, a drafter asked to approve — each is refused with the file and the step
named.  Whether a route can work for an *organisation* (every role it names
held by someone, every department with a head) is checked by
`check_route_for` when the organisation is loaded, and again for each document.

A route file::

    name: 上行文
    kinds: [upward]
    steps:
      - {id: department_review, title: 部门负责人核稿, type: review, who: department_head}
      - {id: office_check, title: 办公室负责人把关, type: review, who: {role: office_head}}
      - {id: leader_review, title: 主管局领导审阅, type: review, who: {role: leader}, countersign: true}
      - {id: sign_off, title: 局长签发, type: sign_off, who: {role: director}}
      - ...

`who` is ``drafter``, ``department_head`` (a head or deputy of the drafter's
department; another head when the drafter is one; the drafter, recorded as an
exception, when they are the only head), ``handling_department`` (the heads of
the department the secretary distributed an incoming document to), or
``{role: R}`` / ``{roles: [R, ...]}``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import yaml

from .errors import RouteError

if TYPE_CHECKING:
    from .directory import Organisation

#: roles a person can hold in an organisation (DOMAIN.md "Official-document flows")
ROLES: dict[str, str] = {
    "office_head": "办公室负责人",
    "leader": "主管局领导",
    "director": "局长",
    "registry": "文印室",
    "seal_custodian": "印章管理员",
    "secretary": "办公室秘书",
    "receiver": "收文员",
}

OUTGOING_KINDS = ("upward", "downward", "parallel")
KINDS = OUTGOING_KINDS + ("incoming",)
KIND_TITLES = {"upward": "上行文", "downward": "下行文", "parallel": "平行文", "incoming": "收文"}

#: step types of outgoing routes, and of incoming ones
OUTGOING_STEP_TYPES = ("review", "sign_off", "register", "seal", "check", "send")
INCOMING_STEP_TYPES = ("sign_for", "propose", "read", "distribute", "handle", "close")
#: steps that approve: an opinion is always required and the drafter never acts on them
APPROVAL_TYPES = frozenset({"review", "sign_off", "propose", "read", "handle"})
#: the CLI verb that completes a step of each type (`forward` also moves countersign/read steps on)
COMPLETING_ACTION = {"review": "approve", "sign_off": "sign-off", "register": "register", "check": "approve",
                     "sign_for": "register", "propose": "approve", "read": "approve",
                     "distribute": "forward", "handle": "approve", "close": "approve"}
#: steps a handler may send back to the drafter from
RETURNABLE_TYPES = frozenset({"review", "sign_off", "register", "seal", "send"})

WHO_KINDS = ("drafter", "department_head", "handling_department", "roles")
_STEP_FIELDS = {"id", "title", "type", "who", "countersign", "opinion"}
_ROUTE_FIELDS = {"name", "kinds", "steps", "description"}
_ID = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Who:
    """Who may act on a step (before excluding the drafter and those who already acted)."""

    kind: str
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in WHO_KINDS:
            raise ValueError(f"unknown who {self.kind!r}")
        if (self.kind == "roles") != bool(self.roles):
            raise ValueError("roles are given exactly when who is 'roles'")

    def describe(self) -> str:
        if self.kind == "roles":
            return "/".join(f"{r}({ROLES[r]})" for r in self.roles)
        return {"drafter": "the drafter", "department_head": "a head of the drafter's department",
                "handling_department": "the heads of the handling department"}[self.kind]

    def to_data(self) -> Any:
        return {"roles": list(self.roles)} if self.kind == "roles" else self.kind


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    type: str
    who: Who
    countersign: bool = False
    opinion_required: bool = False

    @property
    def approval(self) -> bool:
        return self.type in APPROVAL_TYPES

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "title": self.title, "type": self.type, "who": self.who.to_data()}
        if self.countersign:
            data["countersign"] = True
        data["opinion"] = "required" if self.opinion_required else "optional"
        return data


@dataclass(frozen=True)
class Route:
    name: str
    kinds: tuple[str, ...]
    steps: tuple[Step, ...]
    source: str = ""
    description: str = ""

    @property
    def incoming(self) -> bool:
        return self.kinds == ("incoming",)

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise RouteError(f"route {self.name} has no step {step_id!r}", route=self.name, step=step_id)

    def index(self, step_id: str) -> int:
        return self.steps.index(self.step(step_id))

    def after(self, step_id: str) -> Step | None:
        i = self.index(step_id)
        return self.steps[i + 1] if i + 1 < len(self.steps) else None

    def first_of(self, step_type: str) -> Step | None:
        return next((s for s in self.steps if s.type == step_type), None)

    def roles(self) -> set[str]:
        return {r for s in self.steps for r in s.who.roles}

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kinds": list(self.kinds),
                                "steps": [s.to_data() for s in self.steps]}
        if self.description:
            data["description"] = self.description
        return data


# --------------------------------------------------------------------------- parsing

def _who(value: Any, where: str) -> Who:
    if isinstance(value, str):
        if value in ("drafter", "department_head", "handling_department"):
            return Who(value)
        if value in ROLES:
            return Who("roles", (value,))
        raise RouteError(f"{where}: unknown who {value!r} (drafter, department_head, handling_department, "
                         f"or {{role: ...}} with one of: {', '.join(ROLES)})", field="who", value=value)
    if isinstance(value, Mapping) and len(value) == 1 and ("role" in value or "roles" in value):
        raw = value.get("role", value.get("roles"))
        roles = [raw] if isinstance(raw, str) else raw
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
            raise RouteError(f"{where}: who names no role: a step nobody may act on", field="who")
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            raise RouteError(f"{where}: unknown role(s) {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(ROLES)})", field="who", roles=unknown)
        if len(set(roles)) != len(roles):
            raise RouteError(f"{where}: a role is named twice", field="who")
        return Who("roles", tuple(roles))
    raise RouteError(f"{where}: who must be drafter, department_head, handling_department, "
                     "{role: R} or {roles: [R, ...]}", field="who")


def parse_route(data: Any, source: str) -> Route:
    """A validated route from the mapping of a route file; RouteError names file, step and field."""
    if not isinstance(data, Mapping):
        raise RouteError(f"{source}: a route file is a mapping with name, kinds and steps", file=source)
    unknown = set(map(str, data)) - _ROUTE_FIELDS
    if unknown:
        raise RouteError(f"{source}: unknown field(s) {', '.join(sorted(unknown))}", file=source)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RouteError(f"{source}: a route needs a name", file=source, field="name")
    kinds_raw = data.get("kinds")
    kinds = [kinds_raw] if isinstance(kinds_raw, str) else kinds_raw
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds):
        raise RouteError(f"{source}: kinds must list document kinds ({', '.join(KINDS)})", file=source,
                         field="kinds")
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise RouteError(f"{source}: unknown kind(s) {', '.join(map(repr, bad))} (one of: {', '.join(KINDS)})",
                         file=source, field="kinds")
    if "incoming" in kinds and len(kinds) > 1:
        raise RouteError(f"{source}: an incoming route cannot also serve outgoing kinds", file=source,
                         field="kinds")
    incoming = kinds == ["incoming"]
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RouteError(f"{source}: a route needs steps", file=source, field="steps")
    allowed_types = INCOMING_STEP_TYPES if incoming else OUTGOING_STEP_TYPES
    steps: list[Step] = []
    for n, raw in enumerate(raw_steps, 1):
        where = f"{source}: step {n}"
        if not isinstance(raw, Mapping):
            raise RouteError(f"{where}: a step is a mapping", file=source, step=n)
        extra = set(map(str, raw)) - _STEP_FIELDS
        if extra:
            raise RouteError(f"{where}: unknown field(s) {', '.join(sorted(extra))}", file=source, step=n)
        step_id = raw.get("id")
        if not isinstance(step_id, str) or not _ID.fullmatch(step_id) or step_id == "draft":
            raise RouteError(f"{where}: id must be lower-case letters, digits and _ (not 'draft')",
                             file=source, step=n, field="id")
        where = f"{source}: step {step_id}"
        step_type = raw.get("type")
        if step_type not in allowed_types:
            raise RouteError(f"{where}: type {step_type!r} is not a step of "
                             f"{'an incoming' if incoming else 'an outgoing'} route "
                             f"(one of: {', '.join(allowed_types)})", file=source, step=step_id, field="type")
        if "who" not in raw:
            raise RouteError(f"{where}: who acts is missing: a step nobody may act on", file=source,
                             step=step_id, field="who")
        who = _who(raw["who"], where)
        title = raw.get("title", step_id)
        if not isinstance(title, str) or not title.strip():
            raise RouteError(f"{where}: title must be text", file=source, step=step_id, field="title")
        countersign = raw.get("countersign", False)
        if not isinstance(countersign, bool):
            raise RouteError(f"{where}: countersign is true or false", file=source, step=step_id)
        opinion = raw.get("opinion", "required" if step_type in APPROVAL_TYPES else "optional")
        if opinion not in ("required", "optional"):
            raise RouteError(f"{where}: opinion is required or optional", file=source, step=step_id)
        if step_type in APPROVAL_TYPES and opinion != "required":
            raise RouteError(f"{where}: an approval step always needs a saved opinion", file=source,
                             step=step_id, field="opinion")
        steps.append(Step(id=step_id, title=title.strip(), type=step_type, who=who, countersign=countersign,
                          opinion_required=opinion == "required"))
    route = Route(name=name.strip(), kinds=tuple(kinds), steps=tuple(steps), source=source,
                  description=str(data.get("description") or ""))
    _check_structure(route)
    return route


def _check_structure(route: Route) -> None:
    src = route.source
    ids = [s.id for s in route.steps]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise RouteError(f"{src}: step id(s) {', '.join(dup)} used twice", file=src)
    for s in route.steps:
        where = f"{src}: step {s.id}"
        if s.who.kind == "drafter" and s.type != "check":
            raise RouteError(f"{where}: the drafter never acts on a {s.type} step (only on a check)",
                             file=src, step=s.id)
        if s.type == "check" and s.who.kind != "drafter":
            raise RouteError(f"{where}: a check step is the drafter's", file=src, step=s.id)
        if s.who.kind == "handling_department" and s.type != "handle":
            raise RouteError(f"{where}: handling_department acts only on a handle step", file=src, step=s.id)
        if s.type == "handle" and s.who.kind != "handling_department":
            raise RouteError(f"{where}: a handle step is the handling department's", file=src, step=s.id)
        if s.who.kind == "department_head" and (route.incoming or s.type != "review"):
            raise RouteError(f"{where}: department_head reviews outgoing drafts only", file=src, step=s.id)
        if s.countersign and (s.type not in ("review", "read") or s.who.kind != "roles"):
            raise RouteError(f"{where}: countersigning is for review/read steps of a role", file=src, step=s.id)
        if s.type == "read" and s.who.kind != "roles":
            raise RouteError(f"{where}: a read step names the roles that read", file=src, step=s.id)
    types = [s.type for s in route.steps]

    def once(t: str) -> int:
        n = types.count(t)
        if n != 1:
            raise RouteError(f"{src}: route {route.name} needs exactly one {t} step (has {n})",
                             file=src, step_type=t)
        return types.index(t)

    if route.incoming:
        if types[0] != "sign_for":
            raise RouteError(f"{src}: an incoming route starts with the secretary's sign_for step", file=src)
        if types[-1] != "close":
            raise RouteError(f"{src}: an incoming route ends with a close step", file=src)
        once("sign_for")
        once("close")
        if "handle" in types:
            if "distribute" not in types or types.index("distribute") > types.index("handle"):
                raise RouteError(f"{src}: a handle step needs a distribute step before it", file=src)
        return
    sign_off, register, seal, send = once("sign_off"), once("register"), once("seal"), once("send")
    if not any(t == "review" for t in types[:sign_off]):
        raise RouteError(f"{src}: at least one review step comes before sign-off", file=src)
    if any(t == "review" for t in types[sign_off:]):
        raise RouteError(f"{src}: review steps come before sign-off", file=src)
    if not sign_off < register < seal < send:
        raise RouteError(f"{src}: the order is sign_off, register, seal, send "
                         "(no sealing before sign-off and registration)", file=src)
    if send != len(types) - 1:
        raise RouteError(f"{src}: send is the last step", file=src)
    if "check" not in types[seal:send]:
        raise RouteError(f"{src}: the drafter checks the sealed document (a check step) between seal and send",
                         file=src)


def load_route_file(path: str | Path) -> Route:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RouteError(f"cannot read route file {p}: {exc.strerror}", file=str(p)) from None
    except yaml.YAMLError:
        raise RouteError(f"{p}: not valid YAML", file=str(p)) from None
    return parse_route(data, str(p))


def routes_by_kind(routes: list[Route]) -> dict[str, Route]:
    out: dict[str, Route] = {}
    for route in routes:
        for kind in route.kinds:
            if kind in out:
                raise RouteError(f"kind {kind} has two routes: {out[kind].source} and {route.source}",
                                 kind=kind)
            out[kind] = route
    return out


def load_default_routes(policy_dir: str | Path) -> dict[str, Route]:
    """The routes of ``<policy_dir>/routes/*.yaml``, one per kind; every kind must be covered."""
    directory = Path(policy_dir) / "routes"
    if not directory.is_dir():
        raise RouteError(f"no routes directory in policy directory {policy_dir}", file=str(directory))
    routes = routes_by_kind([load_route_file(p) for p in sorted(directory.glob("*.yaml"))])
    missing = [k for k in KINDS if k not in routes]
    if missing:
        raise RouteError(f"{directory}: no route for kind(s) {', '.join(missing)}", file=str(directory))
    return routes


def check_route_for(route: Route, org: "Organisation") -> None:
    """Refuse a route that cannot work in `org`: a role nobody holds, a department without a head."""
    for s in route.steps:
        if s.who.kind == "roles":
            holders = [p for r in s.who.roles for p in org.with_role(r)]
            if not holders:
                raise RouteError(f"route {route.name} ({route.source}), step {s.id} ({s.title}): nobody in "
                                 f"{org.name} holds {s.who.describe()}: a step nobody may act on",
                                 route=route.name, step=s.id, organisation=org.name)
        if s.who.kind == "department_head":
            headless = [d for d in org.departments if not org.heads(d)]
            if headless:
                raise RouteError(f"route {route.name}, step {s.id} ({s.title}): department(s) "
                                 f"{', '.join(headless)} of {org.name} have no head (head: true), so a draft "
                                 "from there could not be reviewed", route=route.name, step=s.id,
                                 organisation=org.name, departments=headless)
        if s.who.kind == "handling_department" and not any(org.heads(d) for d in org.departments):
            raise RouteError(f"route {route.name}, step {s.id}: {org.name} has no department with a head "
                             "to handle documents", route=route.name, step=s.id, organisation=org.name)

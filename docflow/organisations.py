"""The organisation directory in the home's database: loading (and updating) organisation files, lookups.

A person id names one person in the whole home — and is that person's account (pki.accounts): loading
a file makes an account for every person in it (an admin then sets each an initial password) and
disables, at once, the accounts of people no longer in it.  An update of an organisation may not
strand work: people that open documents wait on, or that drafted them, stay.  Loading is an admin's act.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pki import audit
from pki.home import Home
from pki.store import to_json

from . import store as t
from .directory import (Organisation, Person, load_organisation_file, organisation_from_text,
                        parse_organisation)
from .errors import DirectoryError
from .model import Guard, LoadResult
from .routes import Route, load_default_routes

if TYPE_CHECKING:
    from pki.accounts.actor import Actor


OPEN_STATES = ("draft", "in_flow")


#: asked by many acts: built once
_ORG_BY_NAME = sa.select(t.doc_organisations).where(t.doc_organisations.c.name == sa.bindparam("name"))
_ORG_OF_PERSON = (sa.select(t.doc_organisations.c.definition, t.doc_organisations.c.id)
                  .join(t.doc_people, t.doc_people.c.org_id == t.doc_organisations.c.id)
                  .where(t.doc_people.c.person_id == sa.bindparam("user")))
_ORG_ID = sa.select(t.doc_organisations.c.id).where(t.doc_organisations.c.name == sa.bindparam("name"))


class OrganisationsMixin:
    """Organisations of one home."""

    home: Home

    def default_routes(self) -> dict[str, Route]:
        return load_default_routes(self.home.profiles.directory)

    def load_organisation(self, path: str | Path, *, actor: "Actor") -> LoadResult:
        """Load (or update) an organisation from its YAML file (an admin's act; audited)."""
        self._admin(actor)
        org = load_organisation_file(path, self.default_routes())
        return self._store_organisation(org, actor=actor, source=str(path))

    def load_organisation_data(self, data: Mapping[str, Any], *, actor: "Actor", source: str = "<data>",
                               base_dir: Path | None = None) -> LoadResult:
        self._admin(actor)
        org = parse_organisation(data, source=source, default_routes=self.default_routes(), base_dir=base_dir)
        return self._store_organisation(org, actor=actor, source=source)

    def _admin(self, actor: "Actor") -> None:
        from pki.accounts.accounts import Accounts
        Accounts.of(self.home).require(actor, any_of=("admin",))

    def _store_organisation(self, org: Organisation, *, actor: "Actor", source: str) -> LoadResult:
        import hashlib
        from pki.accounts.accounts import Accounts
        definition = org.definition()
        canonical = to_json(definition)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        notes: list[str] = []
        guard = Guard()
        if org.seal:
            from seal.errors import SealNotFound
            from seal.records import SealRegistry
            try:
                record = SealRegistry(self.home).get(org.seal)
            except SealNotFound:
                notes.append(f"seal {org.seal} is not in this home yet: documents of {org.name} cannot be "
                             "sealed until it is created")
            else:
                guard.require(record.organisation == org.name, DirectoryError,
                              f"seal {org.seal} belongs to {record.organisation}, not to {org.name}")
        else:
            notes.append(f"{org.name} names no seal: its documents cannot be sealed or sent")
        ids = [p.id for p in org.people]
        with self.home.store.read() as conn:
            existing = conn.execute(sa.select(t.doc_organisations).where(
                t.doc_organisations.c.name == org.name)).mappings().first()
            org_id = existing["id"] if existing else None
            taken = conn.execute(sa.select(t.doc_people.c.person_id, t.doc_organisations.c.name)
                                 .join(t.doc_organisations, t.doc_organisations.c.id == t.doc_people.c.org_id)
                                 .where(t.doc_people.c.person_id.in_(ids))).all()
            for pid, other in taken:
                guard.require(other == org.name, DirectoryError,
                              f"person id {pid!r} already belongs to {other}: a person id names one person "
                              "in the whole home")
            if existing is not None:
                self._check_reload(conn, existing["id"], org, guard)
        guard.raise_if_any(organisation=org.name, file=source)
        now = self.home.clock.now()
        changed = existing is None or existing["digest"] != digest
        version = 1 if existing is None else existing["version"] + (1 if changed else 0)
        with self.home.store.transaction() as conn:
            values = dict(code=org.code, seal=org.seal, definition=canonical, digest=digest, version=version,
                          loaded_at=now, loaded_by=actor.account_id)
            if existing is None:
                org_id = self.home.store.insert(conn, t.doc_organisations, name=org.name, **values)
            else:
                conn.execute(sa.update(t.doc_organisations).where(t.doc_organisations.c.id == org_id)
                             .values(**values))
                conn.execute(sa.delete(t.doc_people).where(t.doc_people.c.org_id == org_id))
            for pid in ids:
                conn.execute(t.doc_people.insert().values(person_id=pid, org_id=org_id))
            synced = Accounts.of(self.home).sync_organisation(conn, org.name, [(p.id, p.name) for p in org.people],
                                                              actor=actor, at=now)
            audit.append(conn, at=now, actor=actor.account_id, action="org.load", target=f"org:{org.name}",
                         details={"version": version, "created": existing is None, "changed": changed,
                                  "previous_digest": existing["digest"] if existing else None,
                                  "people": len(ids), "seal": org.seal, "file": source, "accounts": synced},
                         result_digest=digest)
        if synced["created"]:
            notes.append(f"accounts made for {len(synced['created'])} people: an admin sets each an initial "
                         "password (yinxin account set-password)")
        if synced["disabled"]:
            notes.append(f"accounts disabled (no longer in the file): {', '.join(synced['disabled'])}")
        return LoadResult(organisation=org, version=version, created=existing is None, changed=changed,
                          digest=digest, notes=tuple(notes))

    def _check_reload(self, conn: Connection, org_id: int, org: Organisation, guard: Guard) -> None:
        """An update may not strand work: pending handlers and drafters of open documents stay."""
        pending = conn.execute(sa.select(t.doc_pending.c.doc_id, t.doc_pending.c.person_id)
                               .join(t.doc_documents, t.doc_documents.c.id == t.doc_pending.c.doc_id)
                               .where(t.doc_documents.c.org_id == org_id)).all()
        for doc_id, pid in pending:
            guard.require(org.has_person(pid), DirectoryError,
                          f"{pid} is removed but document {doc_id} waits on them")
        drafters = conn.execute(sa.select(t.doc_documents.c.id, t.doc_documents.c.drafter)
                                .where(t.doc_documents.c.org_id == org_id,
                                       t.doc_documents.c.state.in_(OPEN_STATES + ("sent",)))).all()
        for doc_id, pid in drafters:
            if pid is not None:
                guard.require(org.has_person(pid), DirectoryError,
                              f"{pid} is removed but drafted document {doc_id}, which is still open")

    def organisation(self, name: str) -> Organisation:
        with self.home.store.read() as conn:
            return self._organisation(conn, name)[0]

    def _organisation(self, conn: Connection, name: str) -> tuple[Organisation, int]:
        """The organisation named `name` and its row's id, read in the caller's transaction."""
        row = conn.execute(_ORG_BY_NAME, {"name": name}).mappings().first()
        if row is None:
            raise DirectoryError(f"no organisation named {name!r} (load it with yinxin org load)",
                                 organisation=name)
        return organisation_from_text(row["definition"]), row["id"]

    def organisation_record(self, name: str) -> dict[str, Any]:
        """The organisation with its directory version, digest and load time."""
        with self.home.store.read() as conn:
            row = conn.execute(sa.select(t.doc_organisations).where(
                t.doc_organisations.c.name == name)).mappings().first()
        if row is None:
            raise DirectoryError(f"no organisation named {name!r} (load it with yinxin org load)",
                                 organisation=name)
        org = organisation_from_text(row["definition"])
        return {**org.to_dict(), "version": row["version"], "digest": row["digest"],
                "loaded_at": row["loaded_at"].isoformat(), "loaded_by": row["loaded_by"]}

    def organisations(self) -> list[Organisation]:
        with self.home.store.read() as conn:
            rows = conn.execute(sa.select(t.doc_organisations.c.definition)
                                .order_by(t.doc_organisations.c.id)).all()
        return [organisation_from_text(r[0]) for r in rows]

    def whois(self, user: str) -> tuple[Organisation, Person]:
        with self.home.store.read() as conn:
            return self._whois(conn, user)

    def _whois(self, conn: Connection, user: str) -> tuple[Organisation, Person]:
        org, person, _ = self._whois_with_id(conn, user)
        return org, person

    def _whois_with_id(self, conn: Connection, user: str) -> tuple[Organisation, Person, int]:
        """`_whois`, and the id of the organisation's row."""
        row = conn.execute(_ORG_OF_PERSON, {"user": user}).first()
        if row is None:
            raise DirectoryError(f"{user!r} is nobody in the organisation directory", person=user)
        org = organisation_from_text(row[0])
        return org, org.person(user), row[1]

    def _org_by_id(self, conn: Connection, org_id: int) -> Organisation:
        row = conn.execute(sa.select(t.doc_organisations.c.definition)
                           .where(t.doc_organisations.c.id == org_id)).first()
        return organisation_from_text(row[0])

    def _org_id(self, conn: Connection, name: str) -> int | None:
        return conn.execute(_ORG_ID, {"name": name}).scalar()


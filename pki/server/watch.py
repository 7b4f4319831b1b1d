"""Seeing other processes' status changes quickly and cheaply.

Revocations, holds and releases are committed by other processes (`yinxin ca
revoke`, the library in another program, another node on PostgreSQL).  The
status service must notice them within a bound, without a query per request:

* On SQLite, ``PRAGMA data_version`` on one held connection changes exactly
  when another connection commits; reading it costs microseconds.  Only then
  does the watch query anything.  (Other engines query on every poll.)
* The query reads certificates whose ``status_changed_at`` is at or after the
  newest change seen so far minus `margin`, through ``ix_certificates_changed``,
  and compares each row with what it saw before.  The margin covers a writer
  that took its timestamp before a later writer committed (a status change's
  time is taken before its transaction waits for the write lock; SQLite gives
  up after its 30 s busy timeout).  A row can also change status without a new
  timestamp (issuance turns ``reserved`` into ``issued``), which the comparison
  catches too.
* When more rows than `limit` changed at once (a bulk import), the watch
  reports everything as changed rather than tracking each.

It also reports which CAs published a new CRL.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Iterable

import sqlalchemy as sa

from ..store import certificates, crls



@dataclass
class Changes:
    serials: set[tuple[int, str]] = field(default_factory=set)   # (ca_id, serial)
    everything: bool = False
    crls: set[int] = field(default_factory=set)                   # ca_ids with a new CRL

    def __bool__(self) -> bool:
        return bool(self.serials or self.everything or self.crls)


class ChangeWatch:
    """Poll for committed status changes of the given CAs (one instance per process)."""

    def __init__(self, engine: sa.engine.Engine, ca_ids: Iterable[int], *,
                 margin: timedelta = timedelta(seconds=60), limit: int = 10_000) -> None:
        self.engine = engine
        self.ca_ids = tuple(ca_ids)
        self.margin = margin
        self.limit = limit
        self._conn = engine.connect()
        self._sqlite = engine.dialect.name == "sqlite"
        self._data_version: int | None = None
        self._seen: dict[tuple[int, str], tuple[str, datetime]] = {}
        self._newest: dict[int, datetime | None] = {}
        self._crl_numbers: dict[int, int | None] = {}
        self._prime()

    def close(self) -> None:
        self._conn.close()

    def _version(self) -> int | None:
        if not self._sqlite:
            return None
        return self._conn.exec_driver_sql("PRAGMA data_version").scalar()

    def _prime(self) -> None:
        self._data_version = self._version()
        c = certificates.c
        for ca_id in self.ca_ids:
            newest = self._conn.execute(sa.select(sa.func.max(c.status_changed_at))
                                        .where(c.ca_id == ca_id)).scalar()
            self._newest[ca_id] = newest
            if newest is not None:
                for serial, status, changed in self._recent(ca_id, newest - self.margin):
                    self._seen[(ca_id, serial)] = (status, changed)
        self._crl_numbers = self._latest_crls()

    def _recent(self, ca_id: int, since: datetime) -> list[Any]:
        c = certificates.c
        return self._conn.execute(sa.select(c.serial, c.status, c.status_changed_at)
                                  .where(c.ca_id == ca_id, c.status_changed_at >= since)
                                  .limit(self.limit + 1)).all()

    def _latest_crls(self) -> dict[int, int | None]:
        rows = self._conn.execute(sa.select(crls.c.ca_id, sa.func.max(crls.c.number))
                                  .where(crls.c.ca_id.in_(self.ca_ids)).group_by(crls.c.ca_id)).all()
        found = {ca_id: number for ca_id, number in rows}
        return {ca_id: found.get(ca_id) for ca_id in self.ca_ids}

    def poll(self) -> Changes:
        """What changed since the last poll (nothing, cheaply, when nobody committed)."""
        changes = Changes()
        version = self._version()
        if self._sqlite and version == self._data_version:
            return changes
        self._data_version = version
        c = certificates.c
        for ca_id in self.ca_ids:
            newest = self._conn.execute(sa.select(sa.func.max(c.status_changed_at))
                                        .where(c.ca_id == ca_id)).scalar()
            previous = self._newest.get(ca_id)
            if newest is None:
                continue
            # from the older of the last newest and this newest, minus the margin
            start = min(newest, previous) if previous is not None else newest
            rows = self._recent(ca_id, start - self.margin) if previous is not None else \
                self._recent(ca_id, datetime.min.replace(tzinfo=newest.tzinfo))
            self._newest[ca_id] = newest
            if len(rows) > self.limit:
                changes.everything = True
                self._seen = {k: v for k, v in self._seen.items() if k[0] != ca_id}
                continue
            for serial, status, changed in rows:
                key = (ca_id, serial)
                if self._seen.get(key) != (status, changed):
                    self._seen[key] = (status, changed)
                    changes.serials.add(key)
            horizon = newest - self.margin
            self._seen = {k: v for k, v in self._seen.items() if k[0] != ca_id or v[1] >= horizon}
        numbers = self._latest_crls()
        changes.crls = {ca_id for ca_id, number in numbers.items() if number != self._crl_numbers.get(ca_id)}
        self._crl_numbers = numbers
        return changes

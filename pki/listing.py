"""The light read path of the read-only listings (`yinxin ca list`, `yinxin ca cas`): the
standard library's `sqlite3` on the home's SQLite file opened read-only — no SQLAlchemy, no
cryptography, no YAML — so that a listing starts in a fraction of the library path's time.

It applies only where it gives exactly what `CertificateAuthority(Home.open(home)).list()` /
`.cas()` give:

* the home's database is the default SQLite file `HOME/yinxin.db`, which exists: no database URL
  given (`database=`, ``YINXIN_DATABASE``) and none in config.yaml;
* no policy directory is named (``YINXIN_POLICY_DIR``, ``policy_dir:``), so that opening the home
  could not fail on a policy file;
* config.yaml, if there is one, is a list of plain ``key: value`` lines (anything richer is left
  to YAML on the library path, with its errors);
* the stored schema version is `SCHEMA_VERSION`: no migration pending, not a newer yinxin's.

Anywhere else (PostgreSQL, a schema to migrate, no database yet, a database this process cannot
read) the functions return None and the caller takes the library path.  The queries are the
library's: same columns, filters (`LIKE … ESCAPE '/'` for the subject, as SQLAlchemy's
``contains(autoescape=True)``; ``not_after <= now`` compared as the text SQLAlchemy stores),
ordering and errors; tests compare both paths on the same homes.
"""
from __future__ import annotations

import os
import re
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TypeVar

from .clock import SYSTEM_CLOCK, Clock
from .errors import NotFound, PolicyError
from .records import (CA_COLUMNS, CERTIFICATE_COLUMNS, CERTIFICATE_TIMES, SCHEMA_VERSION, CaInfo,
                      CertificateRecord, ca_info, certificate_record, from_stored_time, to_stored_time)

__all__ = ["list_cas", "list_certificates", "sqlite_database"]

T = TypeVar("T")

#: `CertificateAuthority.list`'s statuses
STATUSES = ("reserved", "issued", "held", "revoked", "expired")

#: a line of config.yaml the light path understands: a top-level key and a plain one-line value
#: that YAML reads as a scalar (no quotes, flow collections, anchors, tags, block scalars, ": ")
_CONFIG_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?:[ \t]+(?![-?:,\[\]{}#&*!|>'\"%@`])"
                          r"(?:[^:#\s]|:(?!\s|$)|[ \t]+(?![#\s]))*)?[ \t]*(?:[ \t]#.*)?")
_COMMENT = re.compile(r"[ \t]*(?:#.*)?")


def _config_keys(text: str) -> set[str] | None:
    """The top-level keys of a config.yaml made of plain `key: value` lines, comments and blank
    lines; None for anything else (YAML decides, on the library path)."""
    keys = set()
    for line in text.split("\n"):
        if _COMMENT.fullmatch(line):
            continue
        match = _CONFIG_LINE.fullmatch(line)
        if match is None:
            return None
        keys.add(match.group(1))
    return keys


def sqlite_database(home: str | os.PathLike[str], database: str | None = None) -> Path | None:
    """The home's SQLite file when the light path applies to it (see the module's docstring),
    else None."""
    if database or os.environ.get("YINXIN_DATABASE") or os.environ.get("YINXIN_POLICY_DIR"):
        return None
    directory = Path(home).expanduser()
    try:
        config = (directory / "config.yaml").read_bytes().decode("utf-8")
    except FileNotFoundError:
        config = ""
    except (OSError, UnicodeDecodeError):
        return None
    keys = _config_keys(config)
    if keys is None or "database" in keys or "policy_dir" in keys:
        return None
    db = directory / "yinxin.db"
    return db if db.is_file() else None


def _read(home: str | os.PathLike[str], database: str | None, read: Callable[[sqlite3.Connection], T]) -> T | None:
    """`read(connection)` in one read transaction on the home's SQLite file opened read-only, when
    the light path applies and the schema is current; else None."""
    db = sqlite_database(home, database)
    if db is None:
        return None
    try:
        conn = sqlite3.connect(db.absolute().as_uri() + "?mode=ro", uri=True, timeout=30.0, isolation_level=None)
    except sqlite3.Error:
        return None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("BEGIN")
        (version,) = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        if version != SCHEMA_VERSION:
            return None
        return read(conn)
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def stored_time_text(value: datetime) -> str:
    """An aware datetime as the text SQLAlchemy's SQLite DateTime stores (naive UTC)."""
    naive = to_stored_time(value)
    assert naive is not None
    return (f"{naive.year:04d}-{naive.month:02d}-{naive.day:02d} "
            f"{naive.hour:02d}:{naive.minute:02d}:{naive.second:02d}.{naive.microsecond:06d}")


def stored_time(text: str | None) -> datetime | None:
    """The stored text of a time as the aware UTC datetime SQLAlchemy's SQLite DateTime and
    `UtcDateTime` return."""
    return None if text is None else from_stored_time(datetime.fromisoformat(text))


def _like_contains(text: str) -> str:
    """SQLAlchemy's ``contains(text, autoescape=True)`` parameter: `/` escapes `/`, `%` and `_`."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


def list_certificates(home: str | os.PathLike[str], *, database: str | None = None, status: str | None = None,
                      subject: str | None = None, ca: str | None = None,
                      clock: Clock = SYSTEM_CLOCK) -> list[CertificateRecord] | None:
    """`CertificateAuthority.list(status=, subject=, ca=)` on the light path; None where it does
    not apply (the caller then opens the home).  Raises what the library raises: PolicyError for an
    unknown status, NotFound for an unknown CA."""
    def read(conn: sqlite3.Connection) -> list[CertificateRecord]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            if status not in STATUSES:
                raise PolicyError(f"unknown status {status!r} (reserved, issued, held, revoked, expired)",
                                  field="status")
            if status == "expired":
                where.append("c.not_after <= ?")
                params.append(stored_time_text(clock.now()))
            else:
                where.append("c.status = ?")
                params.append(status)
        if subject:
            where.append("(c.subject LIKE '%' || ? || '%' ESCAPE '/')")
            params.append(_like_contains(subject))
        if ca is not None:
            found = conn.execute("SELECT id FROM cas WHERE name = ?", (ca,)).fetchone()
            if found is None:
                raise NotFound(f"no CA named {ca!r}", ca=ca)
            where.append("c.ca_id = ?")
            params.append(found["id"])
        columns = ", ".join(f"c.{name}" for name in CERTIFICATE_COLUMNS)
        query = (f"SELECT {columns}, cas.name AS ca_name FROM certificates AS c JOIN cas ON cas.id = c.ca_id"
                 + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY c.id")
        records = []
        for row in conn.execute(query, params):
            values = dict(zip(row.keys(), row))
            for name in CERTIFICATE_TIMES:
                values[name] = stored_time(values[name])
            records.append(certificate_record(values))
        return records
    return _read(home, database, read)


def list_cas(home: str | os.PathLike[str], *, database: str | None = None) -> list[CaInfo] | None:
    """`CertificateAuthority.cas()` on the light path; None where it does not apply."""
    def read(conn: sqlite3.Connection) -> list[CaInfo]:
        rows = conn.execute(f"SELECT {', '.join(CA_COLUMNS)} FROM cas ORDER BY id").fetchall()
        names = {r["id"]: r["name"] for r in rows}
        return [ca_info(r, names.get(r["parent_id"])) for r in rows]
    return _read(home, database, read)

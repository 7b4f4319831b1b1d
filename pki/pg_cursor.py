"""psycopg's cursor, with each result's description made once per shape of result.

psycopg builds `Cursor.description` anew on every access: a `Column` per column, its name decoded
and its type looked up (~30 µs for a row of 20 columns).  SQLAlchemy asks for it once per statement,
and an act of the document flow runs ~20 statements, many over wide rows.  The columns depend only
on what the server says of each column (name, type oid, modifier, size) and on the connection (its
encoding, its types), so `DescribedCursor` keeps them per connection and shape of result.
tests/test_pg_cursor.py compares its descriptions with psycopg's own.

`BinaryResultCursor` (the cursor of `Store.read()`'s connections) also asks for results in binary:
a document version's PDF arrives as its bytes, not as hex text twice its size that psycopg then
decodes (a 70 KB version: 385 µs a read in text, 106 µs in binary, measured over TCP on 127.0.0.1).
The reads select yinxin's own columns — integers, text, timestamps, booleans, bytes — whose Python
values psycopg's binary loaders give exactly as its text loaders do (the test compares them); the
write connections, which also reflect the schema in migrations, keep text.
"""
from __future__ import annotations

import weakref
from typing import Any

import psycopg

_Shape = tuple[tuple[bytes | None, int, int, int], ...]

#: the columns of each shape of result seen on a connection (forgotten with the connection)
_SHAPES: "weakref.WeakKeyDictionary[Any, dict[_Shape, tuple[Any, ...]]]" = weakref.WeakKeyDictionary()
_KEEP = 1024          # shapes per connection: far more than yinxin's statements; cleared when reached


class DescribedCursor(psycopg.Cursor):  # type: ignore[type-arg]
    """A psycopg cursor whose `description` is psycopg's own, remembered per connection and shape."""

    @property
    def description(self) -> list[Any] | None:
        result = self.pgresult
        if result is None or not result.nfields:
            return super().description
        shape = tuple((result.fname(i), result.ftype(i), result.fmod(i), result.fsize(i))
                      for i in range(result.nfields))
        known = _SHAPES.get(self.connection)
        if known is None:
            known = _SHAPES[self.connection] = {}
        columns = known.get(shape)
        if columns is None:
            if len(known) >= _KEEP:
                known.clear()
            columns = known[shape] = tuple(super().description or ())
        return list(columns)


class BinaryResultCursor(DescribedCursor):
    """`DescribedCursor`, its results in binary format."""

    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(connection, *args, **kwargs)
        self.format = psycopg.pq.Format.BINARY

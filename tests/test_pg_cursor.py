"""pki.pg_cursor: the descriptions of results, remembered per connection and shape, are psycopg's own."""
from __future__ import annotations

import psycopg

from pki.pg_cursor import DescribedCursor

from pg_fixture import new_pg_database, pg_url  # noqa: F401 - fixture

QUERIES = [
    "SELECT 1 AS one, 'x'::text AS t",
    "SELECT 2 AS one, 'y'::text AS t",                                  # the same shape again
    "SELECT 1 AS one, 'x'::varchar(12) AS t",                           # another modifier: another shape
    "SELECT '2026-12-06 12:00+00'::timestamptz AS at, '\\x00ff'::bytea AS data, 1.5::numeric(10, 2) AS amount, true AS ok, NULL AS nothing",
    "SELECT n, n::text AS label FROM generate_series(1, 3) AS n",
    "SELECT 1 AS \"名称\"",
    "SELECT",                                                           # a result with no columns
    "SELECT * FROM described WHERE false",
    "INSERT INTO described VALUES (1, 'a')",                            # no result set
    "INSERT INTO described VALUES (2, 'b') RETURNING id, label",
]


def _describe(cursor: psycopg.Cursor) -> list[tuple] | None:  # type: ignore[type-arg]
    if cursor.description is None:
        return None
    return [(tuple(c), c.type_display) for c in cursor.description]


def test_descriptions_are_psycopgs_own(pg_url: str) -> None:  # noqa: F811
    database = new_pg_database("described")
    url = database.url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as plain, \
            psycopg.connect(url, autocommit=True, cursor_factory=DescribedCursor) as described:
        plain.execute("CREATE TABLE described (id integer, label varchar(20))")
        for _ in range(2):                                              # the second time from the memo
            for query in QUERIES:
                expected, got = plain.execute(query), described.execute(query)
                assert isinstance(got, DescribedCursor)
                assert _describe(got) == _describe(expected), query
                if got.description:
                    assert got.fetchall() == expected.fetchall(), query
        # after ALTER TABLE the same query has another shape: described anew
        for conn in (plain, described):
            conn.execute("ALTER TABLE described ALTER COLUMN label TYPE varchar(40)")
        query = "SELECT * FROM described"
        assert _describe(described.execute(query)) == _describe(plain.execute(query))
        assert "varchar(40)" in _describe(described.execute(query))[1][1]


def test_binary_results_are_the_values_text_results_give(pg_url: str) -> None:  # noqa: F811
    """`Store.read()`'s cursor asks for binary results: every type yinxin's tables hold (and what its
    reads compute: counts, string_agg, casts) comes back as the same Python value as in text."""
    import os
    from pki.pg_cursor import BinaryResultCursor
    database = new_pg_database("binary")
    url = database.url.replace("postgresql+psycopg://", "postgresql://", 1)
    pdf = os.urandom(50_000)
    with psycopg.connect(url, autocommit=True) as plain, \
            psycopg.connect(url, autocommit=True, cursor_factory=BinaryResultCursor) as binary:
        plain.execute("CREATE TABLE kinds (id integer, big bigint, label varchar(20), body text, ok boolean, "
                      "at timestamp without time zone, data bytea)")
        plain.execute("INSERT INTO kinds VALUES (1, 9007199254740993, '发文', '{\"a\": [1, \"二\"]}', true, "
                      "'2026-12-06 12:34:56.789012', %s), (2, NULL, NULL, '', false, '2026-01-01 00:00', '')",
                      (pdf,))
        queries = QUERIES + [
            "SELECT * FROM kinds ORDER BY id",
            "SELECT count(*), string_agg(label, ' '), max(big), CAST(max(at) AS VARCHAR) FROM kinds",
            "SELECT (SELECT data FROM kinds WHERE id = 1) AS pdf, (SELECT count(*) FROM kinds WHERE ok) AS n",
        ]
        plain.execute("CREATE TABLE described (id integer, label varchar(20))")
        for query in queries:
            expected, got = plain.execute(query), binary.execute(query)
            assert isinstance(got, BinaryResultCursor) and got.format == psycopg.pq.Format.BINARY
            assert _describe(got) == _describe(expected), query
            if got.description:
                rows = got.fetchall()
                assert rows == expected.fetchall(), query
                assert [[type(v) for v in r] for r in rows] == [[type(v) for v in r] for r in plain.execute(query)]
        assert binary.execute("SELECT data FROM kinds WHERE id = 1").fetchone()[0] == pdf

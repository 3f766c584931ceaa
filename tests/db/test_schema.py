"""The schema has one declaration: the SQLAlchemy metadata matches the migrated database.

Two checks against a freshly migrated database of its own:

* Alembic's comparison (configured exactly as ``migrations/env.py`` configures it) finds no
  difference in tables, columns, types, nullability, indexes, unique constraints and foreign
  keys;
* what Alembic does not look into (CHECK constraints, partial-index predicates, expression
  and descending indexes, primary keys, UNLOGGED and partitioned tables) is compared as
  PostgreSQL itself renders it, after creating the metadata in a schema of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text

from geo_service.db.engine import make_engine
from geo_service.db.models import Base
from geo_service.db.schema import include_object, schema_differences
from tests.conftest import make_database

SCRATCH = "metadata_check"


@pytest.fixture(scope="module")
def fresh_engine() -> Iterator[Engine]:
    """A database migrated to head and nothing else (no demo city, no tests' writes)."""
    eng = make_engine(make_database("geo_test_schema"))
    yield eng
    eng.dispose()


def test_alembic_finds_no_difference_between_metadata_and_migrations(
    fresh_engine: Engine,
) -> None:
    with fresh_engine.connect() as conn:
        differences = schema_differences(conn)
    assert differences == [], "\n".join(map(repr, differences))


def _catalogue(conn: Connection, schema: str) -> dict[str, set[str]]:
    """Each table's kind, primary key, CHECK/FK/unique constraints and index definitions, as
    PostgreSQL renders them, with the schema name taken out."""
    rows = conn.execute(
        text(
            """
            SELECT c.relname AS tbl, 'kind ' || c.relkind::text || c.relpersistence::text
                   || coalesce(' ' || pg_get_partkeydef(c.oid), '') AS item
            FROM pg_class c
            WHERE c.relnamespace = CAST(:s AS regnamespace) AND c.relkind IN ('r', 'p')
              AND NOT c.relispartition
            UNION ALL
            SELECT t.relname, 'constraint ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
            FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid
            WHERE t.relnamespace = CAST(:s AS regnamespace) AND NOT t.relispartition
            UNION ALL
            SELECT t.relname, 'index ' || i.relname || ' ' || pg_get_indexdef(i.oid)
            FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            JOIN pg_class t ON t.oid = x.indrelid
            WHERE t.relnamespace = CAST(:s AS regnamespace) AND NOT t.relispartition
            """
        ),
        {"s": schema},
    ).all()
    found: dict[str, set[str]] = {}
    for table, item in rows:
        if table == "alembic_version" or not include_object(None, table, "table", True, None):
            continue  # Alembic's own bookkeeping, and what the comparison leaves out
        found.setdefault(table, set()).add(re.sub(rf"\b{re.escape(schema)}\.", "", item))
    return found


def test_postgres_renders_metadata_and_migrations_alike(fresh_engine: Engine) -> None:
    # The metadata created in a scratch schema of the same database (PostGIS lives in public),
    # then both schemas described by PostgreSQL.
    with fresh_engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCRATCH} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCRATCH}"))
        conn.execute(text(f"SET LOCAL search_path = {SCRATCH}, public"))
        scratch = conn.execution_options(schema_translate_map={None: SCRATCH})
        Base.metadata.create_all(scratch)
        declared = _catalogue(conn, SCRATCH)
        migrated = _catalogue(conn, "public")
        conn.execute(text(f"DROP SCHEMA {SCRATCH} CASCADE"))
    assert declared.keys() == migrated.keys()
    mismatches = {
        table: {"only declared": declared[table] - items, "only migrated": items - declared[table]}
        for table, items in migrated.items()
        if items != declared[table]
    }
    assert not mismatches, mismatches


def test_year_partitions_made_at_run_time_are_left_out_of_the_comparison(
    fresh_engine: Engine,
) -> None:
    with fresh_engine.connect() as conn, conn.begin() as tx:
        conn.execute(text("SELECT incident_cum_year_cover(2031, 2032)"))
        made = conn.execute(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'incident_cum_year'::regclass")
        ).scalar_one()
        differences = schema_differences(conn)
        tx.rollback()
    assert made == 2
    assert differences == [], "\n".join(map(repr, differences))


def test_the_comparison_sees_a_table_the_metadata_lacks(fresh_engine: Engine) -> None:
    # the rule leaves out partitions and PostGIS's table, not everything
    with fresh_engine.connect() as conn, conn.begin() as tx:
        conn.execute(text("CREATE TABLE stray (id integer PRIMARY KEY)"))
        conn.execute(text("CREATE INDEX ix_stray_partition_like ON incidents (priority)"))
        differences = schema_differences(conn)
        tx.rollback()
    kinds = sorted((d[0], d[1].name) for d in differences if isinstance(d, tuple))
    assert kinds == [("remove_index", "ix_stray_partition_like"), ("remove_table", "stray")]

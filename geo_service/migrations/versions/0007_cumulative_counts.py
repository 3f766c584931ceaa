"""Cumulative incident counts per res-8 cell, one array per cell and year, so that a heatmap
for any whole-day window reads two array elements per cell (``cum[until] - cum[since]``)
instead of one row per cell and day. Also nets the rollup triggers on UPDATE: an update that
changes neither cell, time, category nor priority (a status change) touches no rollup.

``incident_cum_year.cum[i]`` is the number of incidents in ``cell`` reported on or before day
``i`` of ``year`` (UTC), counted from the beginning. Invariant: every cell has a row for each
year from its first incident's year to the latest year of any incident, so a missing row
before a cell's first year means 0 and no other row is ever missing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DAY = "(reported_at AT TIME ZONE 'UTC')::date"
MONTH = "date_trunc('month', reported_at AT TIME ZONE 'UTC')::date"
# table: (cell resolution, time bucket, keeps category and priority)
TABLES = {
    "incident_rollup_day": (10, DAY, True),
    "incident_rollup_month": (8, MONTH, True),
    "incident_total_day": (8, DAY, False),
    "incident_total_month": (8, MONTH, False),
}
INSERTED = (("new_rows", ""),)
DELETED = (("old_rows", "-"),)
UPDATED = (("new_rows", ""), ("old_rows", "-"))


def _delta(res: int, bucket: str, dims: bool, sources: tuple) -> str:
    """Net count change per key over the transition tables (keys that net to 0 dropped)."""
    extra = ", category, priority" if dims else ""
    groups = "1, 2, 3, 4" if dims else "1, 2"
    parts = " UNION ALL ".join(
        f"SELECT h3_parent(h3, {res}) AS cell, {bucket} AS bucket{extra}, {sign}count(*) AS n "
        f"FROM {source} GROUP BY {groups}"
        for source, sign in sources
    )
    return f"SELECT cell, bucket{extra}, sum(n)::int AS n FROM ({parts}) x GROUP BY {groups} HAVING sum(n) <> 0"


def _apply(table: str, res: int, bucket: str, dims: bool, sources: tuple) -> str:
    key = "cell, bucket" + (", category, priority" if dims else "")
    times = " UNION ALL ".join(f"SELECT reported_at FROM {source}" for source, _ in sources)
    # only the buckets this statement touched, not the whole table
    purge = f"DELETE FROM {table} WHERE n = 0 AND bucket IN (SELECT {bucket} FROM ({times}) t);"
    # ORDER BY the key: concurrent writers lock rollup rows in the same order (no deadlock).
    return f"""
      INSERT INTO {table} AS r ({key}, n)
      SELECT * FROM ({_delta(res, bucket, dims, sources)}) d ORDER BY {key}
      ON CONFLICT ({key}) DO UPDATE SET n = r.n + EXCLUDED.n;
    """ + (purge if sources != INSERTED else "")


def _cumulative(sources: tuple) -> str:
    """Apply the net change per (cell, day) to the yearly cumulative arrays."""
    d = f"SELECT cell, bucket AS day, n FROM ({_delta(8, DAY, False, sources)}) x"
    days_in = "(make_date(y + 1, 1, 1) - make_date(y, 1, 1))"
    return f"""
      SELECT max(year) INTO old_max FROM incident_cum_year;
      SELECT max(extract(year FROM day))::int INTO new_max FROM ({d}) d;
      IF new_max IS NOT NULL THEN
        gmax := greatest(coalesce(old_max, new_max), new_max);
        IF old_max IS NOT NULL AND gmax > old_max THEN
          -- a new year: every cell carries its total into it
          INSERT INTO incident_cum_year (cell, year, cum)
          SELECT l.cell, y, array_fill(l.v, ARRAY[{days_in}])
          FROM (SELECT cell, cum[array_upper(cum, 1)] AS v FROM incident_cum_year
                WHERE year = old_max) l
          CROSS JOIN generate_series(old_max + 1, gmax) AS y
          ON CONFLICT DO NOTHING;
        END IF;
        -- rows the changed cells lack: 0 before a cell's first year, its total after its last
        INSERT INTO incident_cum_year (cell, year, cum)
        SELECT s.cell, y, array_fill(CASE WHEN h.l IS NOT NULL AND y > h.l THEN h.v ELSE 0 END,
                                     ARRAY[{days_in}])
        FROM (SELECT cell, min(extract(year FROM day))::int AS y0 FROM ({d}) d GROUP BY cell) s
        LEFT JOIN LATERAL (
            SELECT year AS l, cum[array_upper(cum, 1)] AS v FROM incident_cum_year r
            WHERE r.cell = s.cell ORDER BY year DESC LIMIT 1) h ON true
        CROSS JOIN LATERAL generate_series(s.y0, gmax) AS y
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING;
        -- increments: a running sum of the change per cell over every day from its first
        -- changed day to the end of the latest year, added element by element
        WITH d AS ({d}),
        span AS (SELECT cell, min(extract(year FROM day))::int AS y0 FROM d GROUP BY cell),
        inc AS (
            SELECT s.cell, g::date AS day,
                   sum(coalesce(d.n, 0)) OVER (PARTITION BY s.cell ORDER BY g) AS c
            FROM span s
            CROSS JOIN LATERAL generate_series(make_date(s.y0, 1, 1), make_date(gmax, 12, 31),
                                               interval '1 day') AS g
            LEFT JOIN d ON d.cell = s.cell AND d.day = g::date
        ),
        arr AS (
            SELECT cell, extract(year FROM day)::int AS year, array_agg(c::int ORDER BY day) AS inc
            FROM inc GROUP BY 1, 2
        ),
        locked AS (
            SELECT r.cell, r.year FROM incident_cum_year r JOIN arr USING (cell, year)
            ORDER BY r.cell, r.year FOR UPDATE OF r
        )
        UPDATE incident_cum_year r
        SET cum = (SELECT array_agg(u.a + u.b ORDER BY u.i)
                   FROM unnest(r.cum, arr.inc) WITH ORDINALITY AS u(a, b, i))
        FROM arr, locked
        WHERE r.cell = arr.cell AND r.year = arr.year
          AND locked.cell = arr.cell AND locked.year = arr.year;
      END IF;
    """


def _function(name: str, sources: tuple, *, cumulative: bool = True) -> None:
    rollups = "".join(_apply(t, r, b, dims, sources) for t, (r, b, dims) in TABLES.items())
    cum = _cumulative(sources) if cumulative else ""
    op.execute(
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"DECLARE old_max int; new_max int; gmax int; "
        f"BEGIN {rollups} {cum} RETURN NULL; END $$"
    )


FUNCTIONS = {
    "incident_rollup_insert": INSERTED,
    "incident_rollup_delete": DELETED,
    "incident_rollup_update": UPDATED,
}


def upgrade() -> None:
    op.create_table(
        "incident_cum_year",
        sa.Column("cell", sa.BigInteger, nullable=False),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("cum", sa.ARRAY(sa.Integer), nullable=False),
        sa.PrimaryKeyConstraint("cell", "year"),
    )
    op.create_index("ix_incident_cum_year_year", "incident_cum_year", ["year", "cell"])
    for name, sources in FUNCTIONS.items():
        _function(name, sources)
    # Backfill from what is there: the insert path with the whole table as its new rows.
    op.execute(
        "DO $$ DECLARE old_max int; new_max int; gmax int; BEGIN "
        + _cumulative(INSERTED).replace("new_rows", "incidents")
        + " END $$"
    )


def downgrade() -> None:
    for name, sources in FUNCTIONS.items():
        _function(name, sources, cumulative=False)
    op.drop_table("incident_cum_year")

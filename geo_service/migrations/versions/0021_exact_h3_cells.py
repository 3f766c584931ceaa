"""Exact H3 cells: each incident stores its own cell at every served resolution (issue 16).

Until now an incident stored one res-11 cell and every coarser resolution was its parent
(``h3_parent``). H3's hierarchy does not nest exactly, so about 7% of city points were
counted in a res-8 cell whose hexagon does not contain them. Now:

* ``incidents.h3_6`` .. ``h3_10`` hold ``h3.latlng_to_cell(lat, lon, res)`` (filled here in
  Python batches with h3, the one H3 implementation; PostGIS has none), NOT NULL, so a writer
  that forgets them fails loudly instead of counting a point in the wrong place;
* the rollups hold each point's exact cell of **every** resolution they serve, in one row:
  ``cell`` is the finest (``incident_rollup_day``: res 10; the others: res 8) and
  ``c9`` .. ``c6`` the coarser ones, all in the key (a point's coarse cell is not a function
  of its fine cell: H3 does not nest). A write adds one row per incident and bucket, as with
  one resolution; a read at res r groups by that column. ``incident_cum_year`` stays at res 8
  (exact cells now), so the hot whole-city res-8 read scans no more rows than before;
* the trigger functions of 0007 (with 0013's partition cover) are rebuilt from the exact
  columns, and every rollup and cumulative array is recomputed from the incidents.

Revision ID: 0021
Revises: 0020 (or the latest of 0019/0018 present: those are written alongside this one)
Create Date: 2026-11-30
"""

import h3.api.basic_int as h3i
import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

EXACT = range(6, 11)
BATCH_ROWS = 50_000
DAY = "(reported_at AT TIME ZONE 'UTC')::date"
MONTH = "date_trunc('month', reported_at AT TIME ZONE 'UTC')::date"
# table: (its cell columns: the finest resolution as ``cell``, each coarser one as ``c<res>``;
# time bucket; keeps category and priority). One row per incident and bucket, whatever the
# number of resolutions: the coarser cells ride along as key columns (a point's coarse cell
# is not a function of its fine one, H3 does not nest), so a write costs what it did with one
# resolution, and a read at res r groups by that column.
TABLES = {
    "incident_rollup_day": ((10, 9, 8, 7, 6), DAY, True),
    "incident_rollup_month": ((8, 7, 6), MONTH, True),
    "incident_total_day": ((8, 7, 6), DAY, False),
    "incident_total_month": ((8, 7, 6), MONTH, False),
}
CUM = (8,)
# Before this revision (0007 + 0013): one resolution per table, parents of the res-11 cell.
OLD_TABLES = {
    "incident_rollup_day": ((10,), DAY, True),
    "incident_rollup_month": ((8,), MONTH, True),
    "incident_total_day": ((8,), DAY, False),
    "incident_total_month": ((8,), MONTH, False),
}
OLD_CUM = (8,)
INSERTED = (("new_rows", ""),)
DELETED = (("old_rows", "-"),)
UPDATED = (("new_rows", ""), ("old_rows", "-"))
FUNCTIONS = {
    "incident_rollup_insert": INSERTED,
    "incident_rollup_delete": DELETED,
    "incident_rollup_update": UPDATED,
}
ROLLUP_INDEXES = ("incident_rollup_day", "incident_rollup_month")
PRIMARY_KEYS = {
    "incident_rollup_day": ("cell", "bucket", "category", "priority"),
    "incident_rollup_month": ("cell", "bucket", "category", "priority"),
    "incident_total_day": ("bucket", "cell"),
    "incident_total_month": ("bucket", "cell"),
}


def _exact(res: int) -> str:
    return f"h3_{res}"


def _parent(res: int) -> str:
    return f"h3_parent(h3, {res})"


def _columns(resolutions: tuple) -> list[str]:
    """The rollup's cell columns: ``cell`` (the first, finest resolution), then ``c<res>``."""
    return ["cell", *(f"c{res}" for res in resolutions[1:])]


def _delta(cell, resolutions: tuple, bucket: str, dims: bool, sources: tuple) -> str:  # noqa: ANN001
    """Net count change per key over the transition tables (keys that net to 0 dropped)."""
    extra = ", category, priority" if dims else ""
    names = _columns(resolutions)
    cells = ", ".join(
        f"{cell(res)} AS {name}" for res, name in zip(resolutions, names, strict=True)
    )
    width = len(names) + 1 + (2 if dims else 0)
    groups = ", ".join(str(i) for i in range(1, width + 1))
    parts = " UNION ALL ".join(
        f"SELECT {cells}, {bucket} AS bucket{extra}, {sign}count(*) AS n "
        f"FROM {source} GROUP BY {groups}"
        for source, sign in sources
    )
    return (
        f"SELECT {', '.join(names)}, bucket{extra}, sum(n)::int AS n FROM ({parts}) x "
        f"GROUP BY {groups} HAVING sum(n) <> 0"
    )


def _apply(cell, table: str, spec: tuple, sources: tuple) -> str:  # noqa: ANN001
    resolutions, bucket, dims = spec
    key = ", ".join(_columns(resolutions)) + ", bucket" + (", category, priority" if dims else "")
    times = " UNION ALL ".join(f"SELECT reported_at FROM {source}" for source, _ in sources)
    # only the buckets this statement touched, not the whole table
    purge = f"DELETE FROM {table} WHERE n = 0 AND bucket IN (SELECT {bucket} FROM ({times}) t);"
    # ORDER BY the key: concurrent writers lock rollup rows in the same order (no deadlock).
    return f"""
      INSERT INTO {table} AS r ({key}, n)
      SELECT * FROM ({_delta(cell, resolutions, bucket, dims, sources)}) d ORDER BY {key}
      ON CONFLICT ({key}) DO UPDATE SET n = r.n + EXCLUDED.n;
    """ + (purge if sources != INSERTED else "")


def _reshape(tables: dict) -> None:
    """Give each rollup the cell columns of ``tables`` and a primary key over all of them
    (rows are recomputed afterwards: the tables are emptied first)."""
    for table, (resolutions, _, _) in tables.items():
        op.execute(f"TRUNCATE {table}")
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        for res in range(6, 10):
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS c{res}")
        extra = _columns(resolutions)[1:]
        for name in extra:
            op.execute(f"ALTER TABLE {table} ADD COLUMN {name} bigint NOT NULL")
        key = ", ".join([*PRIMARY_KEYS[table], *extra])
        op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({key})")


def _cumulative(cell, resolutions: tuple, sources: tuple) -> str:  # noqa: ANN001
    """Apply the net change per (cell, day) to the yearly cumulative arrays (as 0007, with
    0013's partition cover for the statements that add rows)."""
    d = f"SELECT cell, bucket AS day, n FROM ({_delta(cell, resolutions, DAY, False, sources)}) x"
    days_in = "(make_date(y + 1, 1, 1) - make_date(y, 1, 1))"
    cover = (
        " PERFORM incident_cum_year_cover(least(old_max + 1, (SELECT min(extract(year FROM "
        "reported_at AT TIME ZONE 'UTC'))::int FROM new_rows)), gmax);"
        if sources != DELETED
        else ""
    )
    return f"""
      SELECT max(year) INTO old_max FROM incident_cum_year;
      SELECT max(extract(year FROM day))::int INTO new_max FROM ({d}) d;
      IF new_max IS NOT NULL THEN
        gmax := greatest(coalesce(old_max, new_max), new_max);{cover}
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


def _functions(cell, tables: dict, cum: tuple) -> None:  # noqa: ANN001
    for name, sources in FUNCTIONS.items():
        rollups = "".join(_apply(cell, t, spec, sources) for t, spec in tables.items())
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"DECLARE old_max int; new_max int; gmax int; "
            f"BEGIN {rollups} {_cumulative(cell, cum, sources)} RETURN NULL; END $$"
        )


def _recompute(cell, tables: dict, cum: tuple) -> None:  # noqa: ANN001
    """Every rollup and cumulative array again from the incidents (the insert path with the
    whole table as its new rows)."""
    op.execute(f"TRUNCATE {', '.join(tables)}, incident_cum_year")
    for table, spec in tables.items():
        op.execute(_apply(cell, table, spec, INSERTED).replace("new_rows", "incidents"))
    op.execute(
        "DO $$ DECLARE old_max int; new_max int; gmax int; BEGIN "
        + _cumulative(cell, cum, INSERTED).replace("new_rows", "incidents")
        + " END $$"
    )


def _fill_exact_cells() -> None:
    """Each incident's own cell at res 6..10, with h3, in batches (keyset on id)."""
    conn = op.get_bind()
    last = None
    while True:
        rows = conn.execute(
            sa.text(
                "SELECT id, ST_X(location), ST_Y(location) FROM incidents "
                "WHERE CAST(:last AS uuid) IS NULL OR id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": BATCH_ROWS},
        ).all()
        if not rows:
            return
        ids = [r[0] for r in rows]
        lon = [float(r[1]) for r in rows]
        lat = [float(r[2]) for r in rows]
        cells = {
            f"c{res}": np.fromiter(
                (h3i.latlng_to_cell(b, a, res) for a, b in zip(lon, lat, strict=True)),
                dtype=np.int64,
                count=len(rows),
            ).tolist()
            for res in EXACT
        }
        sets = ", ".join(f"h3_{res} = u.c{res}" for res in EXACT)
        arrays = ", ".join(f"CAST(:c{res} AS bigint[])" for res in EXACT)
        names = ", ".join(f"c{res}" for res in EXACT)
        conn.execute(
            sa.text(
                f"UPDATE incidents i SET {sets} "
                f"FROM unnest(CAST(:ids AS uuid[]), {arrays}) AS u(id, {names}) "
                "WHERE i.id = u.id"
            ),
            {"ids": ids, **cells},
        )
        last = ids[-1]


def upgrade() -> None:
    """Add and fill the exact cells, rebuild the triggers, recompute every rollup."""
    for res in EXACT:
        op.add_column("incidents", sa.Column(f"h3_{res}", sa.BigInteger, nullable=True))
    # the fill changes no rollup key: keep the (old) triggers out of it
    op.execute("ALTER TABLE incidents DISABLE TRIGGER incidents_rollup_update")
    _fill_exact_cells()
    op.execute("ALTER TABLE incidents ENABLE TRIGGER incidents_rollup_update")
    for res in EXACT:
        op.alter_column("incidents", f"h3_{res}", nullable=False)
    _reshape(TABLES)
    _functions(_exact, TABLES, CUM)
    _recompute(_exact, TABLES, CUM)


def downgrade() -> None:
    """Back to parents of the res-11 cell (0013's triggers and rollups), columns dropped."""
    _reshape(OLD_TABLES)
    _functions(_parent, OLD_TABLES, OLD_CUM)
    _recompute(_parent, OLD_TABLES, OLD_CUM)
    for res in EXACT:
        op.drop_column("incidents", f"h3_{res}")

"""Rollups count days of the deployment's time zone, and say which (issue 19).

Until now every rollup bucket was a UTC day or month (``reported_at AT TIME ZONE 'UTC'``):
in Wuhan a day's incidents from 00:00 to 08:00 fell in the day before. Now:

* ``rollup_calendar`` (one row) records the IANA zone the rollups and the cumulative arrays
  are built in. This revision records ``UTC``, which is what they hold;
* the trigger functions read that zone once per statement and bucket every incident by its
  local day and month (``(reported_at AT TIME ZONE zone)::date``), the cumulative arrays by
  local day of the local year;
* ``incident_rollups_rebuild(zone)`` rebuilds every rollup and cumulative array in ``zone``
  in one transaction (writers of incidents wait; readers see the old rollups until it
  commits) and records the zone. ``geo-service migrate`` calls it right after the
  migrations whenever the recorded zone is not ``GEO_TIMEZONE`` (``db/rollups.py``), so a
  new database and a changed ``GEO_TIMEZONE`` both end with rollups of the deployment's days;
* ``rollup_zone_is(zone)`` raises SQLSTATE ``GZ001`` when the rollups are of another zone:
  the heatmap's statements call it, so a process whose ``GEO_TIMEZONE`` differs from the
  rollups' answers a 503 naming the fix instead of mixing two calendars.

The statements are those of 0021, with the zone in place of ``'UTC'``.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-30
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

SQLSTATE = "GZ001"


def _day(zone: str) -> str:
    return f"(reported_at AT TIME ZONE {zone})::date"


def _month(zone: str) -> str:
    return f"date_trunc('month', reported_at AT TIME ZONE {zone})::date"


def _tables(zone: str) -> dict:
    """As 0021: table -> (its cell resolutions, finest first; bucket; category/priority)."""
    return {
        "incident_rollup_day": ((10, 9, 8, 7, 6), _day(zone), True),
        "incident_rollup_month": ((8, 7, 6), _month(zone), True),
        "incident_total_day": ((8, 7, 6), _day(zone), False),
        "incident_total_month": ((8, 7, 6), _month(zone), False),
    }


INSERTED = (("new_rows", ""),)
DELETED = (("old_rows", "-"),)
UPDATED = (("new_rows", ""), ("old_rows", "-"))
FUNCTIONS = {
    "incident_rollup_insert": INSERTED,
    "incident_rollup_delete": DELETED,
    "incident_rollup_update": UPDATED,
}
# the trigger functions' variable holding the zone (read once per statement)
ZONE_VARIABLE = "local_zone"


def _columns(resolutions: tuple) -> list[str]:
    return ["cell", *(f"c{res}" for res in resolutions[1:])]


def _delta(resolutions: tuple, bucket: str, dims: bool, sources: tuple) -> str:
    """Net count change per key over the transition tables (keys that net to 0 dropped)."""
    extra = ", category, priority" if dims else ""
    names = _columns(resolutions)
    cells = ", ".join(f"h3_{res} AS {name}" for res, name in zip(resolutions, names, strict=True))
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


def _apply(table: str, spec: tuple, sources: tuple) -> str:
    resolutions, bucket, dims = spec
    key = ", ".join(_columns(resolutions)) + ", bucket" + (", category, priority" if dims else "")
    times = " UNION ALL ".join(f"SELECT reported_at FROM {source}" for source, _ in sources)
    purge = f"DELETE FROM {table} WHERE n = 0 AND bucket IN (SELECT {bucket} FROM ({times}) t);"
    return f"""
      INSERT INTO {table} AS r ({key}, n)
      SELECT * FROM ({_delta(resolutions, bucket, dims, sources)}) d ORDER BY {key}
      ON CONFLICT ({key}) DO UPDATE SET n = r.n + EXCLUDED.n;
    """ + (purge if sources != INSERTED else "")


def _cumulative(zone: str, sources: tuple) -> str:
    """The yearly cumulative arrays of res-8 cells (0007, 0013, 0021), by local day."""
    day = _day(zone)
    d = f"SELECT cell, bucket AS day, n FROM ({_delta((8,), day, False, sources)}) x"
    days_in = "(make_date(y + 1, 1, 1) - make_date(y, 1, 1))"
    cover = (
        " PERFORM incident_cum_year_cover(least(old_max + 1, (SELECT min(extract(year FROM "
        f"reported_at AT TIME ZONE {zone}))::int FROM new_rows)), gmax);"
        if sources != DELETED
        else ""
    )
    return f"""
      SELECT max(year) INTO old_max FROM incident_cum_year;
      SELECT max(extract(year FROM day))::int INTO new_max FROM ({d}) d;
      IF new_max IS NOT NULL THEN
        gmax := greatest(coalesce(old_max, new_max), new_max);{cover}
        IF old_max IS NOT NULL AND gmax > old_max THEN
          INSERT INTO incident_cum_year (cell, year, cum)
          SELECT l.cell, y, array_fill(l.v, ARRAY[{days_in}])
          FROM (SELECT cell, cum[array_upper(cum, 1)] AS v FROM incident_cum_year
                WHERE year = old_max) l
          CROSS JOIN generate_series(old_max + 1, gmax) AS y
          ON CONFLICT DO NOTHING;
        END IF;
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


def _functions(zone: str, declare: str) -> None:
    for name, sources in FUNCTIONS.items():
        rollups = "".join(_apply(t, spec, sources) for t, spec in _tables(zone).items())
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"DECLARE old_max int; new_max int; gmax int;{declare} "
            f"BEGIN {rollups} {_cumulative(zone, sources)} RETURN NULL; END $$"
        )


def _rebuild_body() -> str:
    """Every rollup and cumulative array again from the incidents, in ``new_zone``."""
    tables = _tables(ZONE_VARIABLE)
    inserts = "".join(
        _apply(t, spec, INSERTED).replace("new_rows", "incidents") for t, spec in tables.items()
    )
    cumulative = _cumulative(ZONE_VARIABLE, INSERTED).replace("new_rows", "incidents")
    return f"""
      -- an unknown zone fails here, before anything changes
      PERFORM now() AT TIME ZONE new_zone;
      -- writers of incidents wait until this commits, so no row is counted in the old zone
      LOCK TABLE incidents IN SHARE MODE;
      LOCK TABLE rollup_calendar IN EXCLUSIVE MODE;
      TRUNCATE {", ".join(tables)}, incident_cum_year;
      UPDATE rollup_calendar SET zone = new_zone, built_at = now();
      {inserts}
      {cumulative}
    """


def upgrade() -> None:
    """Record the rollups' zone (UTC, what they hold), read it in the triggers, and add the
    rebuild and the readers' check."""
    op.execute(
        "CREATE TABLE rollup_calendar ("
        " id boolean PRIMARY KEY DEFAULT true CONSTRAINT rollup_calendar_id_check CHECK (id),"
        " zone text NOT NULL,"
        " built_at timestamptz NOT NULL DEFAULT now())"
    )
    op.execute("INSERT INTO rollup_calendar (zone) VALUES ('UTC')")
    op.execute(
        f"""
        CREATE FUNCTION rollup_zone_is(expected text) RETURNS boolean
        LANGUAGE plpgsql STABLE SET search_path = public, pg_temp AS $$
        DECLARE built text := (SELECT zone FROM rollup_calendar);
        BEGIN
          IF built IS DISTINCT FROM expected THEN
            RAISE EXCEPTION USING ERRCODE = '{SQLSTATE}',
              MESSAGE = format('the rollups count days of %s, not of %s', built, expected),
              HINT = 'run geo-service migrate with GEO_TIMEZONE set: it rebuilds them';
          END IF;
          RETURN true;
        END $$
        """
    )
    op.execute(
        "CREATE FUNCTION incident_rollups_rebuild(new_zone text) RETURNS void "
        "LANGUAGE plpgsql SET search_path = public, pg_temp AS $$ "
        f"DECLARE old_max int; new_max int; gmax int; {ZONE_VARIABLE} text := new_zone; "
        f"BEGIN {_rebuild_body()} END $$"
    )
    # the triggers read the zone once per statement: the rows of one statement share a day
    _functions(ZONE_VARIABLE, f" {ZONE_VARIABLE} text := (SELECT zone FROM rollup_calendar);")
    # the application reads the zone; only the owner (migrate) rebuilds and records it
    op.execute("REVOKE EXECUTE ON FUNCTION incident_rollups_rebuild(text) FROM PUBLIC")
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'geo_app') THEN "
        "GRANT SELECT ON rollup_calendar TO geo_app; "
        "REVOKE INSERT, UPDATE, DELETE ON rollup_calendar FROM geo_app; "
        "GRANT EXECUTE ON FUNCTION rollup_zone_is(text) TO geo_app; END IF; END $$"
    )


def downgrade() -> None:
    """Back to UTC days (rebuilt when they were of another zone) and 0021's functions."""
    op.execute(
        "DO $$ BEGIN IF (SELECT zone FROM rollup_calendar) <> 'UTC' THEN "
        "PERFORM incident_rollups_rebuild('UTC'); END IF; END $$"
    )
    _functions("'UTC'", "")
    op.execute("DROP FUNCTION incident_rollups_rebuild(text)")
    op.execute("DROP FUNCTION rollup_zone_is(text)")
    op.execute("DROP TABLE rollup_calendar")

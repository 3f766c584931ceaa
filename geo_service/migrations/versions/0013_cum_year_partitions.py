"""Partition ``incident_cum_year`` by year.

A heatmap over any whole-day window reads one year of the cumulative arrays (two elements
per cell). In one table that year's rows sit among every other year's, and a whole-city read
visits every page; with a partition per year it reads that year's pages only, found at
execution time (the year is ``least(asked, latest)``, so pruning happens at executor start).

Partitions are created on demand: the incident triggers call
``incident_cum_year_cover(lo, hi)`` before they add rows for a year, which creates
``incident_cum_year_y<year>`` when missing (under an advisory lock, once per year). Deleting
incidents never needs a new year, so only the insert and update triggers call it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The line of the 0007 trigger functions after which new years' rows may be inserted.
ANCHOR = "gmax := greatest(coalesce(old_max, new_max), new_max);"
# New rows go to the years from the earliest changed one, or the year after the latest so
# far (every cell carries its total into a new year), to gmax.
COVER = (
    " PERFORM incident_cum_year_cover(least(old_max + 1, (SELECT min(extract(year FROM "
    "reported_at AT TIME ZONE 'UTC'))::int FROM new_rows)), gmax);"
)
CALLERS = ("incident_rollup_insert", "incident_rollup_update")


def _patch_functions(old: str, new: str) -> None:
    """Rewrite the named trigger functions' bodies, replacing ``old`` by ``new`` once."""
    for name in CALLERS:
        op.execute(
            f"""
            DO $$ DECLARE src text := pg_get_functiondef('{name}'::regproc); BEGIN
              IF position({_literal(old)} IN src) = 0 THEN
                RAISE EXCEPTION '{name}: anchor not found';
              END IF;
              EXECUTE replace(src, {_literal(old)}, {_literal(new)});
            END $$
            """
        )


def _literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION incident_cum_year_cover(lo int, hi int) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE y int;
        BEGIN
          IF lo IS NULL OR hi IS NULL THEN RETURN; END IF;
          FOR y IN lo..hi LOOP
            IF to_regclass(format('incident_cum_year_y%s', y)) IS NULL THEN
              -- concurrent writers: one creates, the others find it made
              PERFORM pg_advisory_xact_lock(hashtext('incident_cum_year_cover'));
              EXECUTE format('CREATE TABLE IF NOT EXISTS incident_cum_year_y%s '
                             'PARTITION OF incident_cum_year FOR VALUES FROM (%s) TO (%s)',
                             y, y, y + 1);
            END IF;
          END LOOP;
        END $$
        """
    )
    op.execute("ALTER TABLE incident_cum_year RENAME TO incident_cum_year_flat")
    op.execute("ALTER INDEX ix_incident_cum_year_year RENAME TO ix_incident_cum_year_flat_year")
    op.execute(
        "ALTER TABLE incident_cum_year_flat "
        "RENAME CONSTRAINT incident_cum_year_pkey TO incident_cum_year_flat_pkey"
    )
    op.execute(
        """
        CREATE TABLE incident_cum_year (
            cell bigint NOT NULL,
            year integer NOT NULL,
            cum integer[] NOT NULL,
            PRIMARY KEY (cell, year)
        ) PARTITION BY RANGE (year)
        """
    )
    # max(year) (the latest year) stays an index probe per partition
    op.execute("CREATE INDEX ix_incident_cum_year_year ON incident_cum_year (year)")
    op.execute(
        "SELECT incident_cum_year_cover(min(year), max(year)) FROM incident_cum_year_flat"
    )
    op.execute(
        "INSERT INTO incident_cum_year SELECT * FROM incident_cum_year_flat ORDER BY year, cell"
    )
    op.execute("DROP TABLE incident_cum_year_flat")
    _patch_functions(ANCHOR, ANCHOR + COVER)


def downgrade() -> None:
    _patch_functions(ANCHOR + COVER, ANCHOR)
    op.execute(
        "CREATE TABLE incident_cum_year_flat "
        "(cell bigint NOT NULL, year integer NOT NULL, cum integer[] NOT NULL)"
    )
    op.execute("INSERT INTO incident_cum_year_flat SELECT * FROM incident_cum_year")
    op.execute("DROP TABLE incident_cum_year")  # with its partitions
    op.execute("ALTER TABLE incident_cum_year_flat RENAME TO incident_cum_year")
    op.execute("ALTER TABLE incident_cum_year ADD PRIMARY KEY (cell, year)")
    op.execute("CREATE INDEX ix_incident_cum_year_year ON incident_cum_year (year, cell)")
    op.execute("DROP FUNCTION incident_cum_year_cover(int, int)")

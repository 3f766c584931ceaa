"""Incident rollups for heatmaps: per res-10 cell x day x category x priority, and per res-8
cell x month x category x priority; kept by statement-level triggers in the incident's own
transaction (one set-based upsert per statement, whatever wrote the rows).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = {
    # table: (cell resolution, time bucket expression)
    "incident_rollup_day": (10, "(reported_at AT TIME ZONE 'UTC')::date"),
    "incident_rollup_month": (8, "date_trunc('month', reported_at AT TIME ZONE 'UTC')::date"),
}


def _apply(table: str, res: int, bucket: str, source: str, sign: str) -> str:
    # ORDER BY the key: concurrent writers then lock rollup rows in the same order (no deadlock).
    return f"""
      INSERT INTO {table} AS r (cell, bucket, category, priority, n)
      SELECT h3_parent(h3, {res}), {bucket}, category, priority, {sign}count(*)
      FROM {source} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
      ON CONFLICT (cell, bucket, category, priority) DO UPDATE SET n = r.n + EXCLUDED.n;
    """


def upgrade() -> None:
    for table in TABLES:
        op.create_table(
            table,
            sa.Column("cell", sa.BigInteger, nullable=False),
            sa.Column("bucket", sa.Date, nullable=False),
            sa.Column("category", sa.String(64), nullable=False),
            sa.Column("priority", sa.SmallInteger, nullable=False),
            sa.Column("n", sa.Integer, nullable=False),
            sa.PrimaryKeyConstraint("cell", "bucket", "category", "priority"),
        )
        op.create_index(f"ix_{table}_bucket", table, ["bucket"])
    adds = "".join(_apply(t, r, b, "new_rows", "") for t, (r, b) in TABLES.items())
    subs = "".join(_apply(t, r, b, "old_rows", "-") for t, (r, b) in TABLES.items())
    purge = "".join(f"DELETE FROM {t} WHERE n = 0;" for t in TABLES)
    op.execute(f"""
        CREATE FUNCTION incident_rollup_insert() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {adds} RETURN NULL; END $$""")
    op.execute(f"""
        CREATE FUNCTION incident_rollup_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {subs} {purge} RETURN NULL; END $$""")
    op.execute(f"""
        CREATE FUNCTION incident_rollup_update() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN {subs} {adds} {purge} RETURN NULL; END $$""")
    op.execute("CREATE TRIGGER incidents_rollup_insert AFTER INSERT ON incidents "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT "
               "EXECUTE FUNCTION incident_rollup_insert()")
    op.execute("CREATE TRIGGER incidents_rollup_delete AFTER DELETE ON incidents "
               "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT "
               "EXECUTE FUNCTION incident_rollup_delete()")
    op.execute("CREATE TRIGGER incidents_rollup_update AFTER UPDATE ON incidents "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
               "EXECUTE FUNCTION incident_rollup_update()")
    # Backfill what is already there.
    for table, (res, bucket) in TABLES.items():
        op.execute(_apply(table, res, bucket, "incidents", "").replace(
            f"INSERT INTO {table} AS r", f"INSERT INTO {table} AS r"))


def downgrade() -> None:
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS incidents_rollup_{name} ON incidents")
        op.execute(f"DROP FUNCTION IF EXISTS incident_rollup_{name}()")
    for table in TABLES:
        op.drop_table(table)

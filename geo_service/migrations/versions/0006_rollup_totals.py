"""Rollup totals per res-8 cell and day / month, without category and priority, for the common
unfiltered heatmap (a fraction of the rows of the per-category rollups).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
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


def _apply(table: str, res: int, bucket: str, dims: bool, source: str, sign: str) -> str:
    extra = ", category, priority" if dims else ""
    key = "cell, bucket" + extra
    groups = "1, 2, 3, 4" if dims else "1, 2"
    # ORDER BY the key: concurrent writers lock rollup rows in the same order (no deadlock).
    return f"""
      INSERT INTO {table} AS r ({key}, n)
      SELECT h3_parent(h3, {res}), {bucket}{extra}, {sign}count(*)
      FROM {source} GROUP BY {groups} ORDER BY {groups}
      ON CONFLICT ({key}) DO UPDATE SET n = r.n + EXCLUDED.n;
    """


def _functions(tables: dict) -> None:
    adds = "".join(_apply(t, r, b, d, "new_rows", "") for t, (r, b, d) in tables.items())
    subs = "".join(_apply(t, r, b, d, "old_rows", "-") for t, (r, b, d) in tables.items())
    purge = "".join(f"DELETE FROM {t} WHERE n = 0;" for t in tables)
    op.execute(f"CREATE OR REPLACE FUNCTION incident_rollup_insert() RETURNS trigger "
               f"LANGUAGE plpgsql AS $$ BEGIN {adds} RETURN NULL; END $$")
    op.execute(f"CREATE OR REPLACE FUNCTION incident_rollup_delete() RETURNS trigger "
               f"LANGUAGE plpgsql AS $$ BEGIN {subs} {purge} RETURN NULL; END $$")
    op.execute(f"CREATE OR REPLACE FUNCTION incident_rollup_update() RETURNS trigger "
               f"LANGUAGE plpgsql AS $$ BEGIN {subs} {adds} {purge} RETURN NULL; END $$")


def upgrade() -> None:
    for table in ("incident_total_day", "incident_total_month"):
        op.create_table(
            table,
            sa.Column("cell", sa.BigInteger, nullable=False),
            sa.Column("bucket", sa.Date, nullable=False),
            sa.Column("n", sa.Integer, nullable=False),
            sa.PrimaryKeyConstraint("bucket", "cell"),
        )
    _functions(TABLES)
    for table in ("incident_total_day", "incident_total_month"):
        res, bucket, dims = TABLES[table]
        op.execute(_apply(table, res, bucket, dims, "incidents", ""))


def downgrade() -> None:
    _functions({k: v for k, v in TABLES.items() if v[2]})
    op.drop_table("incident_total_month")
    op.drop_table("incident_total_day")

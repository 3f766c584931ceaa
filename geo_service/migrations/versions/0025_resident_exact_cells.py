"""Exact H3 cells of households and rental units (issue 16), as 0021 did for incidents.

Until now a household or rental unit stored one res-11 cell (``h3``) and its per-cell
aggregates (``/households/aggregate?res=5..10``) and the planning atoms (res 9, 10) counted
it in ``h3_parent(h3, res)``. H3's hierarchy does not nest exactly, so a few percent of homes
were counted in a hexagon that does not contain them, and a plan built from atoms counted
them in a new grid whose polygon does not hold them. Now:

* ``households.h3_5`` .. ``h3_10`` and ``rental_units.h3_5`` .. ``h3_10`` hold
  ``h3.latlng_to_cell(lat, lon, res)`` (h3, the one H3 implementation: PostGIS has none),
  filled here in Python batches keyed on id, then NOT NULL so a writer that forgets them
  fails loudly;
* nothing derived is stored from them: the aggregates and atoms are computed at read time,
  and their disclosure keys (``'h3:' || cell``, ``'atom:' || cell || ':' || grid``) name
  the published cell, not its records, so they stay as they are.

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-30
"""

import h3.api.basic_int as h3i
import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

TABLES = ("households", "rental_units")
# geo.h3cells.RESIDENT_RESOLUTIONS, copied: a migration does not change with the package
RESOLUTIONS = range(5, 11)
BATCH_ROWS = 50_000


def _fill(table: str) -> None:
    """Each row's own cell at res 5..10, in batches (keyset on id, one UPDATE a batch)."""
    conn = op.get_bind()
    last = 0
    names = ", ".join(f"c{res}" for res in RESOLUTIONS)
    arrays = ", ".join(f"CAST(:c{res} AS bigint[])" for res in RESOLUTIONS)
    sets = ", ".join(f"h3_{res} = u.c{res}" for res in RESOLUTIONS)
    while True:
        rows = conn.execute(
            sa.text(
                f"SELECT id, ST_X(location), ST_Y(location) FROM {table} "
                "WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": BATCH_ROWS},
        ).all()
        if not rows:
            return
        ids = [int(r[0]) for r in rows]
        lon = [float(r[1]) for r in rows]
        lat = [float(r[2]) for r in rows]
        cells = {
            f"c{res}": np.fromiter(
                (h3i.latlng_to_cell(y, x, res) for x, y in zip(lon, lat, strict=True)),
                dtype=np.int64,
                count=len(rows),
            ).tolist()
            for res in RESOLUTIONS
        }
        conn.execute(
            sa.text(
                f"UPDATE {table} t SET {sets} "
                f"FROM unnest(CAST(:ids AS bigint[]), {arrays}) AS u(id, {names}) "
                "WHERE t.id = u.id"
            ),
            {"ids": ids, **cells},
        )
        last = ids[-1]


def upgrade() -> None:
    """Add the exact cell columns, fill them for existing rows, then make them NOT NULL."""
    for table in TABLES:
        for res in RESOLUTIONS:
            op.add_column(table, sa.Column(f"h3_{res}", sa.BigInteger, nullable=True))
        _fill(table)
        for res in RESOLUTIONS:
            op.alter_column(table, f"h3_{res}", nullable=False)


def downgrade() -> None:
    """Drop the exact cells (reads go back to parents of ``h3``)."""
    for table in TABLES:
        for res in RESOLUTIONS:
            op.drop_column(table, f"h3_{res}")

"""Kept grids keep their row ids across a publish (issue 18): the references to ``areas`` may
be checked at commit.

Publishing a version moved every household, rental unit and responder from the rows of the
old version to those of the new one, although a redraw of one community keeps nearly every
grid as it was: a rewrite of every record (about 20 s for 500,000 incidents on two cores).
Now the rows of the new version that keep a grid as it was (same code, same polygon) take over
the old rows' ids, and the old rows take fresh ones, so the records of kept grids need no
change at all; only records of redrawn grids are moved. The swap passes through a moment where
the records point at an id no row has yet, so the foreign keys to ``areas`` become
``DEFERRABLE`` (still checked at each statement unless a transaction defers them, as publishing
does), and responders get the index on their home grid that the check of a changed area id
(and every "workers of these grids" query) needs.

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-30
"""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# (table, constraint) of every foreign key to areas.id
REFERENCES = (
    ("incidents", "incidents_grid_id_fkey"),
    ("responders", "responders_home_grid_id_fkey"),
    ("areas", "areas_parent_id_fkey"),
    ("households", "households_grid_id_fkey"),
    ("rental_units", "rental_units_grid_id_fkey"),
)


def upgrade() -> None:
    for table, name in REFERENCES:
        op.execute(f"ALTER TABLE {table} ALTER CONSTRAINT {name} DEFERRABLE INITIALLY IMMEDIATE")
    op.create_index("ix_responders_home_grid", "responders", ["home_grid_id"])


def downgrade() -> None:
    op.drop_index("ix_responders_home_grid", "responders")
    for table, name in REFERENCES:
        op.execute(f"ALTER TABLE {table} ALTER CONSTRAINT {name} NOT DEFERRABLE")

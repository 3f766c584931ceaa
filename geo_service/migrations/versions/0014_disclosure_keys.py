"""Disclosure control: per-record keys for fixed random rounding (issue 13).

Every household and every rental unit gets ``dc_key``, a permanent random integer in
``[0, 2**32)``: the record key of the cell-key method (``services/disclosure.py``). The column
default draws it for every new row, so the COPY-based bulk loads (demo city, imports), which
name their columns, get one without knowing of it. ``ADD COLUMN`` with a volatile default
rewrites the table and evaluates the default once per existing row.

Crosswalk rows written on publish carry ``key_sum``, the sum of the moved records' keys, so a
move can be published consistently later; rows written before this revision get a fixed key
derived from their id (stable, but not record-based).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

KEY_DEFAULT = "floor(random() * 4294967296)::bigint"


def upgrade() -> None:
    """Add the record keys and the crosswalk key sums."""
    for table in ("households", "rental_units"):
        op.execute(f"ALTER TABLE {table} ADD COLUMN dc_key bigint NOT NULL DEFAULT {KEY_DEFAULT}")
    op.execute("ALTER TABLE boundary_crosswalks ADD COLUMN key_sum numeric")
    op.execute(
        "UPDATE boundary_crosswalks SET key_sum = "
        "('x' || substr(md5('crosswalk:' || id::text), 1, 8))::bit(32)::bigint "
        "WHERE entity IN ('households', 'rental_units')"
    )


def downgrade() -> None:
    """Drop the keys."""
    op.execute("ALTER TABLE boundary_crosswalks DROP COLUMN key_sum")
    for table in ("households", "rental_units"):
        op.execute(f"ALTER TABLE {table} DROP COLUMN dc_key")

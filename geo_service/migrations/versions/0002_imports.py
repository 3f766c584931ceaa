"""Importer support: stable external references for idempotent re-imports, boundary crosswalks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The source system's id of a row, so importing the same file twice adds nothing.
    for table in ("households", "rental_units"):
        op.add_column(table, sa.Column("external_ref", sa.String(200)))
        op.create_unique_constraint(f"uq_{table}_external_ref", table, ["external_ref"])

    # Which new grids received the entities of each old grid when a version was published.
    op.create_table(
        "boundary_crosswalks",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("from_version_id", sa.Integer,
                  sa.ForeignKey("boundary_versions.id", ondelete="CASCADE")),
        sa.Column("to_version_id", sa.Integer,
                  sa.ForeignKey("boundary_versions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("old_grid_id", sa.Integer),
        sa.Column("new_grid_id", sa.Integer),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
    )
    op.create_index("ix_crosswalk_versions", "boundary_crosswalks",
                    ["from_version_id", "to_version_id"])


def downgrade() -> None:
    op.drop_table("boundary_crosswalks")
    for table in ("households", "rental_units"):
        op.drop_constraint(f"uq_{table}_external_ref", table)
        op.drop_column(table, "external_ref")

"""Scheduled switch-overs (issue 18): a boundary version published for a future moment.

A version published with an ``effective_from`` in the future is ``scheduled``: lookups for a
moment at or after it (``at=``) answer from it, while the version in force stays in force,
with its households, rental units, responders and incidents, until the moment comes; then the
service's switch-over task publishes it as any other (re-attribution, crosswalk, audit).

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-30
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("ck_version_status", "boundary_versions", type_="check")
    op.create_check_constraint(
        "ck_version_status",
        "boundary_versions",
        "status IN ('draft', 'scheduled', 'published', 'retired')",
    )


def downgrade() -> None:
    op.execute("UPDATE boundary_versions SET status = 'draft' WHERE status = 'scheduled'")
    op.drop_constraint("ck_version_status", "boundary_versions", type_="check")
    op.create_check_constraint(
        "ck_version_status",
        "boundary_versions",
        "status IN ('draft', 'published', 'retired')",
    )

"""The application may refresh the planner statistics of ``areas`` (found by a new user).

Publishing and importing write many ``areas`` rows in one transaction and then join them with
records and workers; without fresh statistics the planner takes the new rows for one and picks
nested loops (38.6 s, cancelled by the statement timeout, for the re-homing overlaps of a
freshly imported Chicago; 0.11 s after ``ANALYZE areas``). ``ANALYZE`` needs the table's
owner, so under the application role (``geo_app``) publishing's own ``ANALYZE areas`` was
skipped with a warning. ``analyze_areas()`` runs it as the owner (``SECURITY DEFINER``, a fixed
``search_path``), and the application may call it.

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-30
"""

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``analyze_areas()`` and let the application role run it."""
    op.execute(
        """
        CREATE FUNCTION analyze_areas() RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER
        SET search_path = public, pg_temp
        AS $$ BEGIN ANALYZE areas; END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION analyze_areas() FROM PUBLIC")
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'geo_app') THEN "
        "GRANT EXECUTE ON FUNCTION analyze_areas() TO geo_app; END IF; END $$"
    )


def downgrade() -> None:
    """Drop the function."""
    op.execute("DROP FUNCTION analyze_areas()")

"""Area polygons in RFC 7946 ring order (issue 16): exterior rings counter-clockwise, holes
clockwise, so every GeoJSON answer that reads them (areas, OGC items, heatmaps and hot spots
by grid, planner drafts) is what the GeoJSON specification asks (§3.1.6) without a per-request
cost. A trigger keeps every later write in that order, whichever path writes the area
(imports, planning drafts, the demo loader).

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-30
"""

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION areas_rfc7946_rings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.geom IS NOT NULL THEN
    NEW.geom := ST_ForcePolygonCCW(NEW.geom);
  END IF;
  RETURN NEW;
END $$
"""


def upgrade() -> None:
    """Reorder the stored rings and keep new ones in order."""
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER areas_rfc7946_rings BEFORE INSERT OR UPDATE OF geom ON areas "
        "FOR EACH ROW EXECUTE FUNCTION areas_rfc7946_rings()"
    )
    op.execute("UPDATE areas SET geom = ST_ForcePolygonCCW(geom) WHERE NOT ST_IsPolygonCCW(geom)")


def downgrade() -> None:
    """Drop the trigger (the stored order stays: it is valid either way for PostGIS)."""
    op.execute("DROP TRIGGER IF EXISTS areas_rfc7946_rings ON areas")
    op.execute("DROP FUNCTION IF EXISTS areas_rfc7946_rings()")

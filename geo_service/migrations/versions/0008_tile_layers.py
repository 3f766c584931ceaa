"""Computed tile layers (heatmap, hot spots, incident aggregates) materialised per build, so a
tile is one indexed read like any table layer, instead of handing the cells to PostGIS as
arrays on every request. UNLOGGED: a cache, rebuilt on demand, never worth WAL or replicas.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE UNLOGGED TABLE tile_layers (
            key text PRIMARY KEY,
            made timestamptz NOT NULL DEFAULT now()
        );
        CREATE UNLOGGED TABLE tile_layer_cells (
            key text NOT NULL REFERENCES tile_layers (key) ON DELETE CASCADE,
            h3 text NOT NULL,
            count integer NOT NULL,
            z double precision,
            p_fdr double precision,
            class text,
            geom geometry(Polygon, 3857) NOT NULL
        );
        CREATE INDEX ix_tile_layer_cells_key ON tile_layer_cells (key);
        CREATE INDEX ix_tile_layer_cells_geom ON tile_layer_cells USING gist (geom);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE tile_layer_cells; DROP TABLE tile_layers;")

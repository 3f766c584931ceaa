"""Batch analytics: runs over the exported GeoParquet dataset (local or on a Dask cluster) and
their results, written back here so the API, OGC API and tiles serve them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE batch_runs (
            id serial PRIMARY KEY,
            kind text NOT NULL
                CHECK (kind IN ('heatmap', 'hotspots', 'emerging', 'workload', 'reattribute',
                                'proposals')),
            engine text NOT NULL CHECK (engine IN ('local', 'dask')),
            params jsonb NOT NULL,
            summary jsonb NOT NULL DEFAULT '{}'::jsonb,
            partitions integer NOT NULL,
            seconds double precision NOT NULL,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX ix_batch_runs_kind ON batch_runs (kind, id DESC);

        -- heatmap, hotspots and emerging: one row per H3 cell, hexagon kept in web mercator
        -- so a tile is one indexed read
        CREATE TABLE batch_cells (
            run_id integer NOT NULL REFERENCES batch_runs (id) ON DELETE CASCADE,
            cell bigint NOT NULL,
            h3 text NOT NULL,
            count bigint NOT NULL,
            z double precision,
            p double precision,
            p_fdr double precision,
            class text,
            pattern text,
            trend_z double precision,
            trend_p double precision,
            geom geometry(Polygon, 3857) NOT NULL,
            PRIMARY KEY (run_id, cell)
        );
        CREATE INDEX ix_batch_cells_geom ON batch_cells USING gist (geom);

        CREATE TABLE batch_workload (
            run_id integer NOT NULL REFERENCES batch_runs (id) ON DELETE CASCADE,
            grid_id integer NOT NULL,
            incident_hours double precision NOT NULL,
            incidents bigint NOT NULL,
            households bigint NOT NULL,
            rental_units bigint NOT NULL,
            area_km2 double precision NOT NULL,
            index double precision NOT NULL,
            PRIMARY KEY (run_id, grid_id)
        );

        CREATE TABLE batch_crosswalk (
            run_id integer NOT NULL REFERENCES batch_runs (id) ON DELETE CASCADE,
            entity text NOT NULL,
            old_grid_id integer,
            new_grid_id integer,
            count bigint NOT NULL
        );
        CREATE INDEX ix_batch_crosswalk_run ON batch_crosswalk (run_id);
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE batch_crosswalk; DROP TABLE batch_workload; DROP TABLE batch_cells; "
        "DROP TABLE batch_runs;"
    )

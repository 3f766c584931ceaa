"""The road network for travel times: one row per noded segment (a LineString between two
intersections), with its speed and direction.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "road_segments",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("external_ref", sa.String(200), nullable=False, unique=True),
        sa.Column("name", sa.String(200)),
        sa.Column("class", sa.String(32)),
        sa.Column("speed_kmh", sa.Float, nullable=False),
        # 1: only from the first vertex to the last; -1: only the other way; 0: both
        sa.Column("oneway", sa.SmallInteger, nullable=False, server_default="0"),
        sa.Column("length_m", sa.Float, nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.Geometry("LINESTRING", srid=4326, spatial_index=True),
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("speed_kmh > 0 AND speed_kmh <= 200", name="ck_road_speed"),
        sa.CheckConstraint("oneway IN (-1, 0, 1)", name="ck_road_oneway"),
        sa.CheckConstraint("length_m >= 0", name="ck_road_length"),
    )


def downgrade() -> None:
    op.drop_table("road_segments")

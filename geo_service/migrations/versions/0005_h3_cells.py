"""H3 cell polygons, filled on first use, so tiles join to geometry in SQL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "h3_cells",
        sa.Column("res", sa.SmallInteger, nullable=False),
        sa.Column("cell", sa.BigInteger, nullable=False),
        sa.Column("geom", geoalchemy2.Geometry("POLYGON", srid=4326, spatial_index=False),
                  nullable=False),
        sa.PrimaryKeyConstraint("res", "cell"),
    )


def downgrade() -> None:
    op.drop_table("h3_cells")

"""Categories carry a name per language and may be retired (issue 19, "Running a Chinese city").

``names`` is a JSON object of BCP 47 tag -> name (``{"en": "Traffic and parking", "zh-CN":
"交通与停车"}``); ``name`` stays the English (default) name, so every reader of it keeps
working. ``retired_at`` marks a category no new incident may take: its incidents and history
stay, and it can be brought back. The demo taxonomy gets its Chinese names.

Revision ID: 0029
Revises: 0031
Create Date: 2026-11-30
"""

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0029"
down_revision = "0031"  # chained after main's newest when rebased (was 0027)
branch_labels = None
depends_on = None

# The names grid offices use for the demo taxonomy (网格化社会治理 event classes).
DEMO_NAMES_ZH = {
    "disputes": "邻里家庭纠纷",
    "public_order": "治安秩序与噪声",
    "safety_hazard": "安全隐患（消防、燃气、建筑）",
    "sanitation": "环境卫生与垃圾",
    "facilities": "公共设施维修",
    "traffic": "交通与停车",
    "social_assistance": "社会救助与探访",
}


def upgrade() -> None:
    op.add_column(
        "categories",
        sa.Column("names", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.add_column("categories", sa.Column("retired_at", sa.DateTime(timezone=True)))
    op.create_check_constraint(
        "ck_category_names_object", "categories", "jsonb_typeof(names) = 'object'"
    )
    op.execute("UPDATE categories SET names = jsonb_build_object('en', name)")
    for code, name in DEMO_NAMES_ZH.items():
        op.execute(
            sa.text(
                "UPDATE categories SET names = names || CAST(:names AS jsonb) WHERE code = :code"
            ).bindparams(names=json.dumps({"zh-CN": name}, ensure_ascii=False), code=code)
        )


def downgrade() -> None:
    op.drop_constraint("ck_category_names_object", "categories", type_="check")
    op.drop_column("categories", "retired_at")
    op.drop_column("categories", "names")

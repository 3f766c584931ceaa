"""Areas carry a name per language (issue 19, "Running a Chinese city").

``names`` is a JSON object of BCP 47 tag -> name (``{"en": "Anhe Community", "zh-CN":
"安和社区"}``), as categories have since 0029; ``name`` stays the name as imported, so every
reader of it keeps working. Every area gets its ``name`` as ``en``; a demo city's areas
(romanized names such as "Hongqing District", "Anhe Grid 7") also get their Chinese names,
built from the same syllable -> character table as the demo generator
(``geo_service/demo/geography.py``), copied here so this migration never changes.

Revision ID: 0036
Revises: 0033
Create Date: 2026-11-30
"""

import re

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None

SYLLABLES = (
    "Hong Qing Ming Hua Jin Long Ping An Xin Feng Yang He Shan Lin Guang Tai Yun Bai Chang Fu "
    "Kang Le Mei Nan Rui Shun Tian Wen Xiang Yu"
).split()
CHARACTERS = dict(zip(SYLLABLES, "洪青明华金龙平安新丰阳和山林光泰云白长福康乐梅南瑞顺天文祥玉", strict=True))
SUFFIX = {"District": "区", "Street": "街道", "Community": "社区"}
ROMANIZED = re.compile(r"([A-Z][a-z]+) (District|Street|Community|Grid)(?: (\d+))?")


def _chinese(name: str) -> str | None:
    match = ROMANIZED.fullmatch(name)
    if match is None:
        return None
    word, level, number = match.groups()
    for cut in range(1, len(word)):
        first, second = word[:cut], word[cut:].capitalize()
        if first in CHARACTERS and second in CHARACTERS:
            stem = CHARACTERS[first] + CHARACTERS[second]
            if level == "Grid":
                return f"{stem}社区第{number}网格" if number else None
            return None if number else stem + SUFFIX[level]
    return None


def upgrade() -> None:
    op.add_column(
        "areas",
        sa.Column("names", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )
    op.create_check_constraint("ck_area_names_object", "areas", "jsonb_typeof(names) = 'object'")
    op.execute("UPDATE areas SET names = jsonb_build_object('en', name)")
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT DISTINCT name FROM areas "
            "WHERE name ~ '^[A-Z][a-z]+ (District|Street|Community|Grid)( [0-9]+)?$'"
        )
    ).scalars()
    pairs = [(name, zh) for name in rows if (zh := _chinese(name))]
    if pairs:
        conn.execute(
            sa.text(
                "UPDATE areas a SET names = a.names || jsonb_build_object('zh-CN', n.zh) "
                "FROM unnest(CAST(:names AS text[]), CAST(:zh AS text[])) AS n(name, zh) "
                "WHERE a.name = n.name"
            ),
            {"names": [p[0] for p in pairs], "zh": [p[1] for p in pairs]},
        )


def downgrade() -> None:
    op.drop_constraint("ck_area_names_object", "areas", type_="check")
    op.drop_column("areas", "names")

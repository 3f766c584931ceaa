"""The schema's single declaration and how Alembic compares it with a database.

``geo_service.db.models`` declares every table, index and constraint. The Alembic environment
(``migrations/env.py``) and the schema test configure their comparison from here, so both
leave out the same things: :func:`include_object` skips what is not ours (PostGIS's
``spatial_ref_sys``) and what is made at run time (the year partitions of
``incident_cum_year``). Trigger functions, triggers, grants and roles are not metadata objects;
they live in the migrations only.
"""

from __future__ import annotations

import re
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from geo_service.db.models import CUM_YEAR_PARTITION_PATTERN, Base

# Tables in the database that are not (and must not be) in the metadata.
NOT_OURS = frozenset({"spatial_ref_sys"})
_PARTITION = re.compile(CUM_YEAR_PARTITION_PATTERN)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Whether Alembic compares ``obj``: everything but PostGIS's table and year partitions."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    if table is None:
        return True
    return table not in NOT_OURS and not _PARTITION.fullmatch(table)


def compare_options() -> dict[str, Any]:
    """``context.configure`` options shared by migrations/env.py and the schema check."""
    return {
        "target_metadata": Base.metadata,
        "include_object": include_object,
        "compare_type": True,
    }


def schema_differences(connection: Connection) -> list[Any]:
    """Alembic's differences between the database on ``connection`` and the metadata.

    Empty when every table, column (type, nullability), index, unique constraint and foreign
    key of the migrated database is declared in ``geo_service.db.models`` and vice versa.
    """
    context = MigrationContext.configure(connection, opts=compare_options())
    return list(compare_metadata(context, Base.metadata))

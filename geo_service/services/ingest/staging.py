"""Staging: COPY an import's rows into a temporary table, then move them into place.

A staging table is ``LIKE`` its target and dropped at commit, so one import is one
transaction whatever its size. Table and key names come from the writers' fixed tables,
never from a request; values travel only through COPY (``db.bulk.copy_frame``).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from sqlalchemy import Connection, text

from geo_service.db.bulk import copy_frame


def stage(conn: Connection, table: str, frame: pd.DataFrame, chunk: Callable[[int], None]) -> str:
    """COPY ``frame`` into a temporary copy of ``table``; return the staging table's name."""
    staging = f"staging_{table}"
    conn.execute(
        text(f"CREATE TEMP TABLE {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    )
    copy_frame(conn, staging, frame, progress=chunk)
    return staging


def insert_new(
    conn: Connection, table: str, frame: pd.DataFrame, key: str, chunk: Callable[[int], None]
) -> int:
    """Stage ``frame`` and insert the rows whose ``key`` is not there yet; return how many."""
    staging = stage(conn, table, frame, chunk)
    cols = ", ".join(frame.columns)
    return conn.execute(
        text(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} "
            f"ON CONFLICT ({key}) DO NOTHING"
        )
    ).rowcount

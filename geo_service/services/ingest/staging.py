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
from geo_service.ingest.rows import CONTENT_KEY_PREFIX, CONTENT_KEY_TAIL


def stage(conn: Connection, table: str, frame: pd.DataFrame, chunk: Callable[[int], None]) -> str:
    """COPY ``frame`` into a temporary copy of ``table``; return the staging table's name."""
    staging = f"staging_{table}"
    conn.execute(
        text(f"CREATE TEMP TABLE {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    )
    copy_frame(conn, staging, frame, progress=chunk)
    return staging


def insert_new(
    conn: Connection,
    table: str,
    frame: pd.DataFrame,
    key: str,
    chunk: Callable[[int], None],
    *,
    content_keys: bool = False,
) -> int:
    """Stage ``frame`` and insert the rows whose ``key`` is not there yet; return how many.

    With ``content_keys`` a row keyed by its content (``import:sha1-<hash>-<n>``) is also
    there when an earlier import stored it under the file's name (``<source>:sha1-<hash>-<n>``,
    the keys before they left the name out), from whichever file.
    """
    staging = stage(conn, table, frame, chunk)
    return insert_staged(conn, table, staging, list(frame.columns), key, content_keys=content_keys)


def insert_staged(
    conn: Connection,
    table: str,
    staging: str,
    columns: list[str],
    key: str,
    *,
    content_keys: bool = False,
) -> int:
    """Insert the staged rows whose ``key`` is not in ``table`` yet (as ``insert_new``)."""
    if content_keys and _has_content_keys(conn, staging, key):
        conn.execute(
            text(
                f"DELETE FROM {staging} s USING {table} t "
                f"WHERE s.{key} LIKE :content "
                f"AND substring(t.{key} from CAST(:tail AS text)) = substr(s.{key}, :skip)"
            ),
            {
                "content": CONTENT_KEY_PREFIX + "sha1-%",
                "tail": CONTENT_KEY_TAIL,
                "skip": len(CONTENT_KEY_PREFIX) + 1,
            },
        )
    cols = ", ".join(columns)
    return conn.execute(
        text(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} "
            f"ON CONFLICT ({key}) DO NOTHING"
        )
    ).rowcount


def _has_content_keys(conn: Connection, staging: str, key: str) -> bool:
    return bool(
        conn.execute(
            text(f"SELECT EXISTS (SELECT 1 FROM {staging} WHERE {key} LIKE :content)"),
            {"content": CONTENT_KEY_PREFIX + "sha1-%"},
        ).scalar_one()
    )


def fill_known(
    conn: Connection,
    table: str,
    staging: str,
    key: str,
    column: str,
    *,
    content_keys: bool = False,
) -> int:
    """Set ``column`` of the rows already in ``table`` from the staged rows of the same
    ``key`` where the staged value is given (not NULL) and differs; return how many changed.

    A value the file leaves blank keeps what is stored (a re-import never erases). With
    ``content_keys`` a row stored under the older form of its content key is matched too
    (as ``insert_staged`` does).
    """
    changed = conn.execute(
        text(
            f"UPDATE {table} t SET {column} = s.{column} FROM {staging} s "
            f"WHERE t.{key} = s.{key} AND s.{column} IS NOT NULL "
            f"AND t.{column} IS DISTINCT FROM s.{column}"
        )
    ).rowcount
    if content_keys and _has_content_keys(conn, staging, key):
        changed += conn.execute(
            text(
                f"UPDATE {table} t SET {column} = s.{column} FROM {staging} s "
                f"WHERE s.{key} LIKE :content AND t.{key} NOT LIKE :content "
                f"AND substring(t.{key} from CAST(:tail AS text)) = substr(s.{key}, :skip) "
                f"AND s.{column} IS NOT NULL AND t.{column} IS DISTINCT FROM s.{column}"
            ),
            {
                "content": CONTENT_KEY_PREFIX + "sha1-%",
                "tail": CONTENT_KEY_TAIL,
                "skip": len(CONTENT_KEY_PREFIX) + 1,
            },
        ).rowcount
    return changed

"""Bulk writes through PostgreSQL COPY (no row-by-row ORM inserts on bulk paths)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

if TYPE_CHECKING:  # pandas and pyarrow load in ~0.4 s: only bulk paths need them
    import pandas as pd
    import pyarrow as pa

COPY_CHUNK_ROWS = 100_000


def ewkb_hex(geoms: Sequence[shapely.Geometry] | np.ndarray, srid: int = 4326) -> np.ndarray:
    """Hex EWKB of each geometry with its SRID, the text form COPY accepts for geometry."""
    arr = shapely.set_srid(np.asarray(geoms, dtype=object), srid)
    return shapely.to_wkb(arr, hex=True, include_srid=True)


def point_ewkb_hex(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Hex EWKB of WGS84 points."""
    return ewkb_hex(shapely.points(np.asarray(lon, float), np.asarray(lat, float)))


def lift_statement_timeout(conn: Connection) -> None:
    """Bulk work may run for minutes: lift the API's statement timeout for this transaction."""
    conn.execute(text("SET LOCAL statement_timeout = 0"))


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame, *, progress=None) -> int:
    """COPY ``frame`` (columns named as the table's) into ``table`` on the connection's
    transaction, in chunks. Returns the number of rows written.

    Rows are serialised by Arrow's CSV writer (C++), which also gets PostgreSQL's CSV rules
    right: an empty string is written quoted (""), a missing value as an empty field (NULL).
    A frame with a column of lists (a ``text[]`` column such as responders' skills) is written
    row by row by psycopg instead, whose adapters turn each list into an array value with
    every element escaped (Arrow's CSV writer has no array type, and an array literal built
    by hand breaks on ``}``, ``"``, ``\\`` or a skill named ``NULL``). Such frames are small.
    """
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    raw = conn.connection.driver_connection  # the psycopg connection inside this transaction
    assert raw is not None, "COPY needs a live DBAPI connection"
    import pyarrow as pa
    import pyarrow.csv as pacsv

    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    if any(pa.types.is_list(f.type) or pa.types.is_large_list(f.type) for f in arrow.schema):
        return _copy_rows(raw, table, columns, arrow, progress)
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            for start in range(0, len(frame), COPY_CHUNK_ROWS):
                chunk = arrow.slice(start, COPY_CHUNK_ROWS)
                buffer = io.BytesIO()
                pacsv.write_csv(chunk, buffer, options)
                copy.write(buffer.getbuffer())
                if progress is not None:
                    progress(chunk.num_rows)
    return len(frame)


def _copy_rows(raw: Any, table: str, columns: str, arrow: pa.Table, progress: Any) -> int:
    """COPY an Arrow table through psycopg's ``write_row`` (its adapters escape every value)."""
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for start in range(0, arrow.num_rows, COPY_CHUNK_ROWS):
                chunk = arrow.slice(start, COPY_CHUNK_ROWS)
                for row in zip(*(column.to_pylist() for column in chunk.columns), strict=True):
                    copy.write_row(row)
                if progress is not None:
                    progress(chunk.num_rows)
    return arrow.num_rows


def reserve_ids(conn: Connection, sequence: str, n: int) -> np.ndarray:
    """Take ``n`` ids from a sequence, so parents can be referenced before they are copied."""
    rows = conn.execute(
        text("SELECT nextval(CAST(:seq AS regclass)) FROM generate_series(1, :n)"),
        {"seq": sequence, "n": n},
    ).scalars()
    return np.fromiter(rows, dtype=np.int64, count=n)

"""Bulk writes through PostgreSQL COPY (no row-by-row ORM inserts on bulk paths)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely
from sqlalchemy import Connection, text

COPY_CHUNK_ROWS = 100_000


def ewkb_hex(geoms: Sequence[shapely.Geometry] | np.ndarray, srid: int = 4326) -> np.ndarray:
    """Hex EWKB of each geometry with its SRID, the text form COPY accepts for geometry."""
    arr = shapely.set_srid(np.asarray(geoms, dtype=object), srid)
    return shapely.to_wkb(arr, hex=True, include_srid=True)


def point_ewkb_hex(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Hex EWKB of WGS84 points."""
    return ewkb_hex(shapely.points(np.asarray(lon, float), np.asarray(lat, float)))


def pg_array(values: Sequence[Sequence[str]]) -> list[str]:
    """Render lists of simple strings as PostgreSQL array literals."""
    return ["{" + ",".join(v) + "}" for v in values]


def lift_statement_timeout(conn: Connection) -> None:
    """Bulk work may run for minutes: lift the API's statement timeout for this transaction."""
    conn.execute(text("SET LOCAL statement_timeout = 0"))


def copy_frame(conn: Connection, table: str, frame: pd.DataFrame, *, progress=None) -> int:
    """COPY ``frame`` (columns named as the table's) into ``table`` on the connection's
    transaction, in chunks. Returns the number of rows written.

    Rows are serialised by Arrow's CSV writer (C++), which also gets PostgreSQL's CSV rules
    right: an empty string is written quoted (""), a missing value as an empty field (NULL).
    """
    columns = ", ".join(f'"{c}"' for c in frame.columns)
    raw = conn.connection.driver_connection  # the psycopg connection inside this transaction
    assert raw is not None, "COPY needs a live DBAPI connection"
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
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


def reserve_ids(conn: Connection, sequence: str, n: int) -> np.ndarray:
    """Take ``n`` ids from a sequence, so parents can be referenced before they are copied."""
    rows = conn.execute(
        text("SELECT nextval(CAST(:seq AS regclass)) FROM generate_series(1, :n)"),
        {"seq": sequence, "n": n},
    ).scalars()
    return np.fromiter(rows, dtype=np.int64, count=n)

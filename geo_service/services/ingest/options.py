"""What an import is asked to do: the options of ``import_file`` and its limits."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from geo_service.i18n import format_message
from geo_service.ingest.defaults import EDGE_TOLERANCE_M
from geo_service.ingest.readers import ImportFileError
from geo_service.ingest.uploads import ReadLimits
from geo_service.ingest.validate import CHECKS

KINDS = tuple(CHECKS)
KEY_CHARS = 200  # stable keys (external_ref, idempotency_key) and version names: varchar(200)
SOURCE_NAME_CHARS = 100  # the key prefix; leaves 100 characters for the source's own id
# progress(step, done, total): steps are read, validate, assign and write.
Progress = Callable[[str, int, int | None], None]


def cli_option(name: str) -> str:
    """How the CLI names the option of ``ImportOptions`` field ``name``: ``--parent-level``.

    >>> cli_option("parent_level")
    '--parent-level'
    """
    return "--" + name.replace("_", "-")


@dataclass
class ImportOptions:
    """How to read and interpret a file (the CLI's options and the HTTP form fields)."""

    crs: str | None = None
    field_map: dict[str, str] = field(default_factory=dict)  # source column -> our field
    constants: dict[str, str] = field(default_factory=dict)  # our field -> value for all rows
    category_map: dict[str, str] | None = None  # source category -> our category code
    # IANA zone of naive times in the file; None: the deployment's (GEO_TIMEZONE)
    tz: str | None = None
    # strptime formats of naive times, tried per row in order (``--date-format``, repeatable)
    date_formats: list[str] = field(default_factory=list)
    # A local time that occurs twice (the fall-back hour of daylight saving time):
    # "earliest" | "latest" | "reject". A time in the spring-forward gap is always rejected.
    ambiguous_time: str = "reject"
    layer: str | None = None
    swap_xy: bool = False  # the file's x/y (lon/lat) are the other way round
    encoding: str | None = None  # of a Shapefile's DBF text; default: .cpg, else detected
    status: str = "reported"  # incidents: status of rows that carry none
    source_name: str | None = None  # prefix of stable keys; default: the file's stem
    rejects_path: Path | None = None
    # Points outside every area but within this many metres of one are given to the nearest
    # area (boundary streets geocode onto the line) and counted in the report.
    edge_tolerance_m: float = EDGE_TOLERANCE_M
    # Share of rejected rows (0..1) above which nothing is written; 1.0 never refuses.
    max_rejected_share: float = 1.0
    # A CRS whose transformation to WGS84 is only approximate (PROJ "ballpark", tens of
    # metres) is refused unless the user accepts the approximation.
    accept_approximate_transform: bool = False
    # boundaries
    level: str | None = None
    parent_level: str | None = None
    version_id: int | None = None
    version_name: str | None = None
    dissolve: bool = False  # merge features that share a code into one multipolygon
    max_features: int = 5_000_000
    max_vertices: int = 50_000
    max_uncompressed_bytes: int = ReadLimits.max_uncompressed_bytes
    max_compression_ratio: float = ReadLimits.max_compression_ratio
    # What reports and messages call the file (an upload: the client's name, never the
    # server's copy); default: the file's own name.
    file_name: str | None = None
    # How the caller names an option in its refusals (the field name -> the caller's words):
    # the CLI's ``--level``, the HTTP form's "form field level" (api/routes/imports.py).
    option_name: Callable[[str], str] = cli_option


def read_mapping_csv(path: Path) -> dict[str, str]:
    """Read a two-column CSV (source value, our value) such as a category map: UTF-8 with or
    without a BOM (Excel's "CSV UTF-8"), else GB18030 (Excel's "CSV" on a Chinese Windows).

    Raises
    ------
    ImportFileError
        The file is missing, unreadable, or a line has fewer than two columns.
    """
    if not path.is_file():
        raise ImportFileError(format_message("{path} does not exist", path=path))
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes every byte sequence
        raise ImportFileError(format_message("{name}: not UTF-8 or GB18030 text", name=path.name))
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r and not r[0].startswith("#")]
    if rows and rows[0][0].strip().lower() in ("source", "from", "src"):
        rows = rows[1:]
    if any(len(r) < 2 for r in rows):
        raise ImportFileError(
            format_message("{name}: every line needs two columns: source,ours", name=path.name)
        )
    return {r[0].strip(): r[1].strip() for r in rows}

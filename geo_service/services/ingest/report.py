"""What an import took and what it refused: the report, and rejecting rows on the way."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo_service.errors import InvalidInputError
from geo_service.i18n import N_, format_message
from geo_service.ingest.validate import Checked


@dataclass
class ImportReport:
    """What an import took and what it refused."""

    kind: str
    file: str
    read: int
    accepted: int
    inserted: int
    already_present: int
    rejected: int
    rejected_by_reason: dict[str, int]
    reject_file: str | None
    ignored_columns: list[str]
    version_id: int | None = None
    # rows already present whose fields the file changed (households: the address)
    updated: int = 0
    merged_parts: int = 0
    encoding: str | None = None  # of a Shapefile's DBF text, as given or detected
    dimensions_dropped: list[str] = field(default_factory=list)  # "Z", "M": stored 2D
    # What was assumed to read the file, for the person checking the import: keys such as
    # encoding, crs, transformation, transformation_accuracy_m, tz, ambiguous_time,
    # date_formats, layer, truncated_columns, dimensions_dropped, edge_snapped.
    assumptions: dict[str, Any] = field(default_factory=dict)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    # The reject file's text (RFC 4180 CSV, no BOM): None when nothing was rejected.
    rejects_csv: str | None = None

    @property
    def rejected_share(self) -> float:
        """Rejected rows over rows read, 0..1 (0 for an empty file)."""
        return self.rejected / self.read if self.read else 0.0

    def as_dict(self, max_rejects: int = 1000) -> dict[str, Any]:
        """JSON-ready summary (at most ``max_rejects`` reject rows inline)."""
        body = dict(self.__dict__)
        body["rejects"] = self.rejects[:max_rejects]
        return body


class RejectedShareExceededError(InvalidInputError):
    """More of the file's rows were rejected than ``--max-rejected-share`` allows: nothing was
    written. The problem body carries ``rejected_share``, ``max_rejected_share``, ``read``,
    ``rejected``, ``rejected_by_reason`` and ``rejects_csv``; ``reject_file`` is the file the
    rejects were written to (the CLI shows it; never sent over HTTP)."""

    code = "rejected-share-exceeded"
    title = N_("Too many rows rejected")

    def __init__(
        self, report: ImportReport, limit: float, option: str = "--max-rejected-share"
    ) -> None:
        share = report.rejected_share
        super().__init__(
            format_message(
                "{file}: {rejected} of {read} rows rejected ({share}), above the limit "
                "{option} {limit} ({limit_share}); nothing was written",
                file=report.file,
                rejected=f"{report.rejected:,}",
                read=f"{report.read:,}",
                share=f"{share:.1%}",
                option=option,
                limit=f"{limit:g}",
                limit_share=f"{limit:.1%}",
            ),
            read=report.read,
            rejected=report.rejected,
            rejected_share=share,
            max_rejected_share=limit,
            rejected_by_reason=report.rejected_by_reason,
            rejects_csv=report.rejects_csv,
        )
        self.reject_file = report.reject_file


def rejects_table(
    frame: pd.DataFrame, report: ImportReport, source_names: dict[str, str]
) -> pd.DataFrame:
    """The rejected rows for people: ``row``, ``reason``, then ``source_<column>`` for each of
    the file's own columns with the values as read.

    ``row`` is the 1-based feature number of the file; in a CSV/TSV/TXT or Excel table the
    header row is not counted (row 1 is the first data row, line 2 of a CSV). A column the
    import renamed (``--map``, coordinate columns read as lon/lat) is shown under its name in
    the file (``source_names``: our name -> the file's); the geometry column is left out.
    """
    rej = pd.DataFrame(report.rejects, columns=["row", "reason"])
    values = pd.DataFrame(frame.drop(columns=frame.geometry.name, errors="ignore"))
    # the readers' own bookkeeping (``__geometry_error__``, ``__row_error__``) is no column
    # of the file
    values = values.drop(columns=[c for c in values.columns if str(c).startswith("__")])
    values = values.rename(columns=source_names)
    # reindex, not loc: a row number the frame no longer holds shows empty values, never fails
    original = values.reindex(rej.row.to_numpy() - 1).reset_index(drop=True)
    original = original.astype(object).where(original.notna(), "").astype(str)
    return pd.concat([rej, original.add_prefix("source_")], axis=1)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: object) -> object:
    """A cell a spreadsheet would run as a formula (``=cmd|...``, ``@SUM``, ``+1``, ``-1+1``)
    prefixed with ``'`` so that Excel and LibreOffice show it as text (OWASP, "CSV
    Injection"); plain negative numbers stay as they are.

    >>> _inert("=HYPERLINK(1)"), _inert("-12.5"), _inert("@SUM(1)"), _inert("a")
    ("'=HYPERLINK(1)", '-12.5', "'@SUM(1)", 'a')
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def rejects_csv_text(table: pd.DataFrame) -> str:
    """``table`` as RFC 4180 CSV text (CRLF line ends, quoted where needed), every cell that
    would start a formula made inert (``_inert``): clerks open this file in Excel."""
    return table.map(_inert).to_csv(index=False, lineterminator="\r\n")


def reject(checked: Checked, rows: np.ndarray, reasons: np.ndarray) -> None:
    """Add ``rows`` (their numbers in the file) to the rejects, each with its reason."""
    extra = pd.DataFrame({"row": rows, "reason": reasons})
    checked.rejects = pd.concat([checked.rejects, extra], ignore_index=True)


def build_report(
    kind: str,
    path: Path,
    frame: pd.DataFrame,
    checked: Checked,
    *,
    accepted: int,
    inserted: int,
    version_id: int | None = None,
) -> ImportReport:
    """The report of one import: counts, and the rejects in file order."""
    rejects = checked.rejects.sort_values("row", kind="stable")
    return ImportReport(
        kind=kind,
        file=path.name,
        read=len(frame),
        accepted=accepted,
        inserted=inserted,
        already_present=accepted - inserted,
        rejected=len(rejects),
        rejected_by_reason=dict(Counter(_reason_class(r) for r in rejects.reason)),
        reject_file=None,
        ignored_columns=[],
        version_id=version_id,
        rejects=[{"row": int(r.row), "reason": r.reason} for r in rejects.itertuples()],
    )


def _reason_class(reason: str) -> str:
    """Group reasons for the summary: drop the quoted value and row references (a Chinese
    reason's full-width colon and semicolon too)."""
    return re.split(r"[:;：；]| '", reason)[0]

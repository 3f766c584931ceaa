"""What an import took and what it refused: the report, and rejecting rows on the way."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

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
    merged_parts: int = 0
    encoding: str | None = None  # of a Shapefile's DBF text, as given or detected
    dimensions_dropped: list[str] = field(default_factory=list)  # "Z", "M": stored 2D
    rejects: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, max_rejects: int = 1000) -> dict[str, Any]:
        """JSON-ready summary (at most ``max_rejects`` reject rows inline)."""
        body = dict(self.__dict__)
        body["rejects"] = self.rejects[:max_rejects]
        return body


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
    """Group reasons for the summary: drop the quoted value and row references."""
    return re.split(r"[:;]| '", reason)[0]

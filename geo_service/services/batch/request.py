"""What a batch run is asked to compute: the kinds and one request type for CLI, tests and bench.

Light on purpose: the API's read side and the CLI import it without the engines or Dask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from geo_service.errors import InvalidInputError
from geo_service.geo.bbox import BBox
from geo_service.geo.h3cells import check_served_resolution
from geo_service.i18n import format_message, gettext
from geo_service.instants import check_window, localize_fields
from geo_service.services.layers.emerging import CALENDAR_BINS
from geo_service.services.planning.workload import Weights

KINDS = ("heatmap", "hotspots", "emerging", "workload", "reattribute", "proposals")
CELL_KINDS = ("heatmap", "hotspots", "emerging")  # runs that store H3 cells (layers)
REGRID_KINDS = ("incidents", "households", "rental-units")  # what reattribute moves


@dataclass(frozen=True)
class BatchRequest:
    """One batch computation and its parameters (the API's names and defaults)."""

    kind: str
    dataset: Path
    res: int = 8
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    k: int = 1
    fdr: bool = True
    bin: str = "month"
    window_days: int = 90
    bbox: BBox | None = None  # heatmap: the cells whose hexagons intersect it
    version_id: int | None = None  # reattribute: the boundary version to assign to
    scope: tuple[str, ...] = field(default_factory=tuple)  # proposals: community codes
    weights: Weights = field(default_factory=Weights)

    def __post_init__(self) -> None:
        """Read naive bounds as local time."""
        localize_fields(self, "since", "until")

    def check(self) -> None:
        """Refuse what makes no sense, with the reason."""
        if self.kind not in KINDS:
            raise InvalidInputError(
                format_message("kind must be one of {values}", values=", ".join(KINDS))
            )
        check_served_resolution(self.res)
        if not 1 <= self.k <= 3:
            raise InvalidInputError(gettext("k must be 1, 2 or 3"))
        if self.bin not in CALENDAR_BINS:
            raise InvalidInputError(
                format_message("bin must be one of {values}", values=", ".join(CALENDAR_BINS))
            )
        if not 1 <= self.window_days <= 3660:
            raise InvalidInputError(gettext("window_days must be 1..3660"))
        check_window(self.since, self.until)
        if self.kind == "reattribute" and self.version_id is None:
            raise InvalidInputError(gettext("reattribute needs --version (the boundary version)"))
        if self.kind == "proposals" and not self.scope:
            raise InvalidInputError(
                gettext("proposals need at least one --scope community or street")
            )
        if self.bbox is not None:
            b = self.bbox
            if not (-180 <= b.minx < b.maxx <= 180 and -90 <= b.miny < b.maxy <= 90):
                raise InvalidInputError(gettext("bbox must be minlon,minlat,maxlon,maxlat"))
        self.weights.check()
        if self.kind != "proposals" and not (self.dataset / "incidents").is_dir():
            raise InvalidInputError(
                format_message(
                    "no exported dataset at {dataset}: run 'geo-service export incidents --to "
                    "{dataset}' first",
                    dataset=self.dataset,
                )
            )

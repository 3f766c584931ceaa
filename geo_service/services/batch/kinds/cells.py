"""The cell kinds: heatmap, hot spots and emerging hot spots over the partitioned dataset.

Counts are reduced per partition file; the Gi* statistics run per block of study cells (one
res-3 parent each) with a halo of neighbours from other blocks, so block edges are exact and
the answer equals the in-database services' (``services.layers``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from geo_service.analytics import partitioned as part
from geo_service.analytics.emerging import classify_emerging
from geo_service.analytics.hotspots import classify, fdr_bh
from geo_service.errors import InvalidInputError
from geo_service.geo.h3cells import cells_in_bbox
from geo_service.i18n import gettext
from geo_service.services.batch.dataset import partition_files
from geo_service.services.batch.engine import Compute, task
from geo_service.services.batch.request import BatchRequest
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.layers.emerging import CalendarBins, calendar_bins
from geo_service.services.layers.hotspots import study_cells


def _counts(req: BatchRequest, files: list[str], compute: Compute) -> pd.Series:
    tasks = [task(part.cell_counts, f, req.res, req.since, req.until, req.category) for f in files]
    parts = [s for s in compute(tasks) if len(s)]
    if not parts:
        return pd.Series(dtype=np.int64)
    return pd.concat(parts).groupby(level=0).sum().sort_index()


def heatmap(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    """Incidents per cell at ``req.res`` (only cells intersecting ``req.bbox`` when given)."""
    files = partition_files(req.dataset, "incidents", req.since, req.until, req.bbox)
    counts = _counts(req, files, compute)
    if req.bbox is not None and len(counts):
        counts = counts[cells_in_bbox(counts.index.to_numpy(np.int64), req.bbox)]
    frame = pd.DataFrame({"cell": counts.index.to_numpy(np.int64), "count": counts.to_numpy()})
    return {"cells": frame, "partitions": len(files), "summary": {"incidents": int(counts.sum())}}


def _study(req: BatchRequest, session: Session, observed: np.ndarray) -> np.ndarray:
    cells = study_cells(session, version_in_force(session), req.res)
    return np.union1d(cells, observed.astype(np.int64))


def hotspots(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    """Gi* per cell of the study area, FDR over the whole area as in-process."""
    files = partition_files(req.dataset, "incidents", req.since, req.until)
    counts = _counts(req, files, compute)
    cells = _study(req, session, counts.index.to_numpy())
    values = counts.reindex(cells, fill_value=0).to_numpy(np.float64)
    if len(cells) < 3:
        raise InvalidInputError(gettext("too few cells in the study area for Gi*"))
    moments = part.Moments.of(values)
    position = pd.Series(np.arange(len(cells)), index=cells)
    pieces = part.blocks(cells, req.k)
    tasks = [
        task(
            part.block_gi_star_z,
            own,
            halo,
            values[position[np.concatenate([own, halo])].to_numpy()],
            moments,
            req.k,
        )
        for own, halo in pieces
    ]
    z = np.zeros(len(cells))
    for (own, _), block_z in zip(pieces, compute(tasks), strict=True):
        z[position[own].to_numpy()] = block_z
    p = 2.0 * _norm_sf(np.abs(z))
    p_fdr = fdr_bh(p)  # over the whole study area, as in-process: FDR is global
    frame = pd.DataFrame(
        {
            "cell": cells,
            "count": values.astype(np.int64),
            "z": z,
            "p": p,
            "p_fdr": p_fdr,
            "class": classify(z, p_fdr if req.fdr else p),
        }
    )
    hot = int(frame["class"].str.startswith("Hot").sum())
    return {
        "cells": frame,
        "partitions": len(files),
        "summary": {"cells": len(cells), "blocks": len(pieces), "hot_cells": hot},
    }


def _norm_sf(x: np.ndarray) -> np.ndarray:
    from scipy import stats

    return stats.norm.sf(x)


def _bins(req: BatchRequest) -> CalendarBins:
    """The calendar bins of the API's emerging hot spots (``GEO_TIMEZONE``), so that a batch
    run and ``/hotspots/emerging`` over one window analyse the same bins."""
    from zoneinfo import ZoneInfo

    from geo_service.runtime import current

    zone = ZoneInfo(current().settings.api.timezone)
    return calendar_bins(
        req.bin, since=req.since, until=req.until, zone=zone, now=datetime.now(UTC)
    )


def emerging(req: BatchRequest, session: Session, compute: Compute) -> dict[str, Any]:
    """The emerging hot spot pattern per cell over the calendar bins of ``req.bin`` in the
    deployment's time zone (as ``/hotspots/emerging``), partial edges left out and reported."""
    calendar = _bins(req)
    bins = calendar.count
    edges = [e.astimezone(UTC) for e in calendar.edges]
    files = partition_files(req.dataset, "incidents", edges[0], edges[-1])
    tasks = [task(part.cell_bin_counts, f, req.res, edges, req.category) for f in files]
    parts = [f for f in compute(tasks) if len(f)]
    long = (
        pd.concat(parts).groupby(["cell", "bin"])["count"].sum()
        if parts
        else pd.Series(dtype=np.int64)
    )
    observed = long.index.get_level_values(0).unique().to_numpy() if len(long) else np.array([])
    cells = _study(req, session, observed)
    if len(cells) < 3:
        raise InvalidInputError(gettext("too few cells for emerging hot spot analysis"))
    position = pd.Series(np.arange(len(cells)), index=cells)
    cube = np.zeros((len(cells), bins))
    if len(long):
        rows = position[long.index.get_level_values(0)].to_numpy()
        np.add.at(cube, (rows, long.index.get_level_values(1).to_numpy()), long.to_numpy())
    moments = part.Moments.of(cube.reshape(-1))
    pieces = part.blocks(cells, req.k)
    tasks = [
        task(
            part.block_space_time_z,
            own,
            halo,
            cube[position[np.concatenate([own, halo])].to_numpy()],
            moments,
            req.k,
        )
        for own, halo in pieces
    ]
    z = np.zeros((len(cells), bins))
    for (own, _), block_z in zip(pieces, compute(tasks), strict=True):
        z[position[own].to_numpy()] = block_z
    result = classify_emerging(z, fdr=req.fdr)
    frame = pd.DataFrame(
        {
            "cell": cells,
            "count": cube.sum(axis=1).astype(np.int64),
            "pattern": result.patterns,
            "trend_z": result.trend_z,
            "trend_p": result.trend_p,
        }
    )
    found = frame.pattern[frame.pattern != "No Pattern Detected"].value_counts().to_dict()
    return {
        "cells": frame,
        "partitions": len(files),
        "summary": {
            "cells": len(cells),
            "bins": bins,
            "bin": req.bin,
            "start": calendar.edges[0].isoformat(),
            "end": calendar.edges[-1].isoformat(),
            "until": calendar.until.isoformat(),
            "timezone": calendar.zone.key,
            "trimmed": calendar.trimmed,
            "patterns": {str(k): int(v) for k, v in found.items()},
        },
    }

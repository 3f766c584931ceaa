"""Emerging hot spots: incident counts per H3 cell and time bin -> ArcGIS pattern per cell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import InvalidInputError
from geo_service.geo.h3cells import cell_feature, exact_column
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.layers.hotspots import RESOLUTIONS, study_cells

BIN_DAYS = {"week": 7, "month": 30}
MAX_BINS = 120


def emerging(
    session: Session,
    *,
    res: int = 8,
    bin: str = "month",  # noqa: A002
    since: datetime | None = None,
    until: datetime | None = None,
    category: str | None = None,
    k: int = 1,
    scope: Scope | None = None,
) -> dict[str, Any]:
    """Pattern per cell over bins counted back from ``until`` (the last bin ends at ``until``)."""
    # scipy and pandas load on first use, not with the API
    from geo_service.analytics.emerging import emerging_hotspots
    from geo_service.analytics.hotspots import h3_ring_weights

    if res not in RESOLUTIONS:
        raise InvalidInputError(f"res must be {RESOLUTIONS.start}..{RESOLUTIONS.stop - 1}")
    if bin not in BIN_DAYS:
        raise InvalidInputError("bin must be week or month")
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=365)
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None:
            raise InvalidInputError(f"{name} must carry a timezone offset (e.g. Z)")
    width = timedelta(days=BIN_DAYS[bin])
    bins = int((until - since) / width)
    if bins < 4:
        raise InvalidInputError("the window must span at least 4 bins")
    if bins > MAX_BINS:
        raise InvalidInputError(f"at most {MAX_BINS} bins; widen the bin or shorten the window")
    start = until - bins * width
    params: dict[str, Any] = {
        "res": res,
        "start": start,
        "until": until,
        "width": width.total_seconds(),
        "category": category,
    }
    scoped = scope is not None and not scope.unrestricted
    rows = session.execute(
        text(
            # each point's own cell at res (0021), an identifier of a fixed set
            f"SELECT {exact_column(res)} AS cell, "
            "floor(extract(epoch FROM reported_at - :start) / :width)::int AS b, count(*) "
            "FROM incidents WHERE reported_at >= :start AND reported_at < :until "
            "AND (CAST(:category AS text) IS NULL OR category = :category) "
            + ("AND grid_id = ANY(:grids) " if scoped else "")
            + "GROUP BY 1, 2"
        ),
        {**params, **({"grids": sorted(scope.grid_ids or ())} if scoped and scope else {})},
    ).all()
    cells = (
        np.array([], dtype=np.int64)
        if scoped
        else study_cells(session, version_in_force(session), res)
    )
    cells = np.union1d(cells, np.array(sorted({int(r[0]) for r in rows}), dtype=np.int64))
    if len(cells) < 3:
        raise InvalidInputError("too few cells for emerging hot spot analysis")
    index = {int(c): i for i, c in enumerate(cells.tolist())}
    cube = np.zeros((len(cells), bins))
    for cell, b, n in rows:
        cube[index[int(cell)], min(int(b), bins - 1)] += n
    result = emerging_hotspots(cube, h3_ring_weights(cells, k))
    features = [
        cell_feature(
            cell,
            {
                "pattern": str(result.patterns[i]),
                "count": int(cube[i].sum()),
                "trend_z": round(float(result.trend_z[i]), 4),
                "trend_p": float(result.trend_p[i]),
                "hot_bins": int(result.hot[i].sum()),
                "cold_bins": int(result.cold[i].sum()),
            },
        )
        for i, cell in enumerate(cells.tolist())
    ]
    return {
        "type": "FeatureCollection",
        "features": features,
        "parameters": {
            "res": res,
            "bin": bin,
            "bins": bins,
            "k": k,
            "start": start.isoformat(),
            "until": until.isoformat(),
            "category": category,
        },
    }

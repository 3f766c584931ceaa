"""Hot spot layers: incident counts per H3 cell or per grid -> Gi* -> GeoJSON.

The study area is every cell of the chosen resolution that covers the city (cells with no
incidents included, as Gi* requires), plus any cell holding an incident whose centre falls
just outside the outline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import h3
import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.db.engine import database_name
from geo_service.errors import InvalidInputError
from geo_service.geo.h3cells import (
    cell_feature,
    check_served_resolution,
    exact_column,
)
from geo_service.i18n import format_message, gettext, names_language
from geo_service.instants import check_window, localize_fields
from geo_service.runtime import current
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force

METHODS = ("analytic", "permutation")


@dataclass(frozen=True)
class HotspotQuery:
    """What to test: resolution, window, category, neighbourhood and inference."""

    res: int = 8
    since: datetime | None = None
    until: datetime | None = None
    category: str | None = None
    k: int = 1
    method: str = "analytic"
    permutations: int = 999
    fdr: bool = True

    def __post_init__(self) -> None:
        """Read naive bounds as local time."""
        localize_fields(self, "since", "until")

    def check(self) -> None:
        """Refuse what makes no sense, with the reason."""
        check_served_resolution(self.res)
        if not 1 <= self.k <= 3:
            raise InvalidInputError(gettext("k must be 1, 2 or 3"))
        if self.method not in METHODS:
            raise InvalidInputError(
                format_message("method must be one of {values}", values=", ".join(METHODS))
            )
        if not 99 <= self.permutations <= 9999:
            raise InvalidInputError(gettext("permutations must be between 99 and 9999"))
        check_window(self.since, self.until)


def _filters(q: HotspotQuery, scope: Scope | None) -> tuple[str, dict[str, Any]]:
    clauses = ["TRUE"]
    params: dict[str, Any] = {}
    if q.since is not None:
        clauses.append("reported_at >= :since")
        params["since"] = q.since
    if q.until is not None:
        clauses.append("reported_at < :until")
        params["until"] = q.until
    if q.category is not None:
        clauses.append("category = :category")
        params["category"] = q.category
    if scope is not None and not scope.unrestricted:
        clauses.append("grid_id = ANY(:grids)")
        params["grids"] = sorted(scope.grid_ids or ())
    return " AND ".join(clauses), params


def study_cells(session: Session, version: int, res: int) -> np.ndarray:
    """The H3 cells at ``res`` covering the grids of a boundary version (sorted int64): the
    study area of hot spots, including cells with no incidents, as Gi* requires."""
    key = (database_name(session), version, res)
    cache = current().caches.study_cells
    cells = cache.get(key)
    if cells is None:
        outline = session.execute(
            text(
                "SELECT ST_AsGeoJSON(ST_Union(geom)) FROM areas "
                "WHERE version_id = :v AND level = 'grid'"
            ),
            {"v": version},
        ).scalar_one()
        shape = h3.geo_to_h3shape(json.loads(outline))
        found = [h3.str_to_int(c) for c in h3.h3shape_to_cells(shape, res)]
        cells = np.array(sorted(found), dtype=np.int64)
        cache.put(key, cells)
    return cells


def h3_hotspots(session: Session, q: HotspotQuery, *, scope: Scope | None = None) -> dict[str, Any]:
    """Gi* on incident counts per H3 cell: one feature per cell of the study area."""
    # scipy and pandas load on first use, not with the API process
    from geo_service.analytics.hotspots import gi_star, h3_ring_weights

    q.check()
    where, params = _filters(q, scope)
    rows = session.execute(
        text(
            # each point's own cell at res (0021), an identifier of a fixed set
            f"SELECT {exact_column(q.res)} AS cell, count(*) FROM incidents "
            f"WHERE {where} GROUP BY 1"
        ),
        params,
    ).all()
    counted = {int(c): int(n) for c, n in rows}
    cells = study_cells(session, version_in_force(session), q.res)
    if scope is not None and not scope.unrestricted:
        cells = np.array(sorted(counted), dtype=np.int64)  # a jurisdiction: its own cells
    cells = np.union1d(cells, np.fromiter(counted, dtype=np.int64, count=len(counted)))
    counts = np.array([counted.get(int(c), 0) for c in cells], dtype=np.float64)
    if len(cells) < 3:
        raise InvalidInputError(gettext("too few cells in the study area for Gi*"))
    result = gi_star(
        counts, h3_ring_weights(cells, q.k), method=q.method, permutations=q.permutations, fdr=q.fdr
    )
    features = [
        cell_feature(cell, _props(counts[i], result, i)) for i, cell in enumerate(cells.tolist())
    ]
    return _collection(features, q, len(cells))


def grid_hotspots(
    session: Session, q: HotspotQuery, *, scope: Scope | None = None
) -> dict[str, Any]:
    """Gi* on incident counts per grid of the current version (queen contiguity)."""
    import geopandas as gpd
    from libpysal.weights import Queen

    from geo_service.analytics.hotspots import binary_star_weights, gi_star

    q.check()
    where, params = _filters(q, scope)
    version = version_in_force(session)
    rows = session.execute(
        text(
            f"""
        SELECT a.id, a.code, coalesce(a.names ->> :lang, a.name) AS name,
               ST_AsBinary(a.geom) AS wkb,
               ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, 0.00002), 6) AS geometry,
               coalesce(c.n, 0) AS n
        FROM areas a LEFT JOIN (SELECT grid_id, count(*) AS n FROM incidents
                                WHERE {where} GROUP BY grid_id) c ON c.grid_id = a.id
        WHERE a.version_id = :v AND a.level = 'grid' ORDER BY a.id
        """
        ),
        # grid names in the request's language (areas.names)
        {"v": version, "lang": names_language(), **params},
    ).all()
    if scope is not None and not scope.unrestricted:
        rows = [r for r in rows if scope.has_grid(r.id)]
    if len(rows) < 3:
        raise InvalidInputError(gettext("too few grids in the study area for Gi*"))
    frame = gpd.GeoDataFrame(
        geometry=gpd.GeoSeries.from_wkb([bytes(r.wkb) for r in rows]), crs=4326
    )
    queen = Queen.from_dataframe(frame, use_index=False, silence_warnings=True)
    counts = np.array([r.n for r in rows], dtype=np.float64)
    result = gi_star(
        counts,
        binary_star_weights(queen.sparse),
        method=q.method,
        permutations=q.permutations,
        fdr=q.fdr,
    )
    features = [
        {
            "type": "Feature",
            "id": r.id,
            "geometry": json.loads(r.geometry),
            "properties": {
                "id": r.id,
                "code": r.code,
                "name": r.name,
                **_props(counts[i], result, i),
            },
        }
        for i, r in enumerate(rows)
    ]
    return _collection(features, q, len(rows))


def _props(count: float, result: Any, i: int) -> dict[str, Any]:
    return {
        "count": int(count),
        "z": round(float(result.z[i]), 6),
        "p": float(result.p[i]),
        "p_fdr": float(result.p_fdr[i]),
        "class": str(result.classes[i]),
    }


def _collection(features: list[dict[str, Any]], q: HotspotQuery, n: int) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": features,
        "parameters": {
            "res": q.res,
            "k": q.k,
            "method": q.method,
            "permutations": q.permutations if q.method == "permutation" else 0,
            "fdr": q.fdr,
            "cells": n,
            "since": q.since.isoformat() if q.since else None,
            "until": q.until.isoformat() if q.until else None,
            "category": q.category,
        },
    }

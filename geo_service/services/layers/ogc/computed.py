"""Computed layers (heatmap, hot spots, emerging hot spots): computed once per parameter set
and paged from that one result.

A client reading an OGC collection asks for it a page at a time (GDAL 3.6: 10 features a
page), and recomputing Gi* for every page made copying the hot spot layer take 42 s over
114 requests (issue 16). The whole layer is therefore computed once per (collection, window,
the caller's grids, boundary version; for the emerging layer also its latest incident, which
places its default window) and kept in the runtime's ``ogc_layers`` cache
(cachetools TTL, ``OGC_LAYER_TTL_S``): a page walk sees one consistent result, and new
incidents show once the entry has expired. ``GEO_OGC_LAYER_CACHE=false`` turns it off.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from h3.api.basic_int import str_to_int
from sqlalchemy.orm import Session

from geo_service.db.engine import database_name
from geo_service.errors import InvalidInputError
from geo_service.geo.bbox import BBox
from geo_service.geo.h3cells import cells_in_bbox
from geo_service.i18n import gettext
from geo_service.runtime import current, expensive
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries.versions import version_in_force
from geo_service.services.layers.emerging import emerging
from geo_service.services.layers.heatmap import HeatmapQuery, h3_heatmap
from geo_service.services.layers.hotspots import HotspotQuery, h3_hotspots
from geo_service.services.layers.ogc.catalogue import incident_time_range

RES = 8
EMERGING_BIN = "month"


@dataclass(frozen=True)
class ComputedLayer:
    """A layer's features in their served order, and the same features by ``id``."""

    features: list[dict[str, Any]]
    by_id: dict[str, dict[str, Any]] = field(repr=False)
    made: datetime = field(default_factory=lambda: datetime.now(UTC))

    def in_bbox(self, bbox: BBox | None) -> list[dict[str, Any]]:
        """The features whose hexagon intersects ``bbox`` (``cells_in_bbox``), or all."""
        if bbox is None or not self.features:
            return self.features
        cells = np.array([str_to_int(f["properties"]["h3"]) for f in self.features], dtype=np.int64)
        inside = cells_in_bbox(cells, bbox)
        return [f for f, keep in zip(self.features, inside.tolist(), strict=True) if keep]


def _present(session: Session, cid: str, scope: Scope | None) -> datetime | None:
    """The emerging layer's "now": just past the latest incident the caller sees, so that
    its default window (the whole months before the month of that incident, ``emerging``'s
    default) shows data whatever today's date is; None for the other layers."""
    if not cid.startswith("emerging"):
        return None
    last = incident_time_range(session, scope)[1]
    return None if last is None else last + timedelta(microseconds=1)


def _compute(
    session: Session,
    cid: str,
    since: datetime | None,
    until: datetime | None,
    scope: Scope | None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    if cid.startswith("heatmap"):
        q = HeatmapQuery(res=RES, since=since, until=until)
        return list(h3_heatmap(session, q, scope=scope)["features"])
    if cid.startswith("hotspots"):
        hq = HotspotQuery(res=RES, since=since, until=until)
        return list(h3_hotspots(session, hq, scope=scope)["features"])
    layer = emerging(
        session, res=RES, bin=EMERGING_BIN, since=since, until=until, k=1, scope=scope, now=now
    )
    return list(layer["features"])


def computed_layer(
    session: Session,
    cid: str,
    *,
    since: datetime | None,
    until: datetime | None,
    scope: Scope | None,
) -> ComputedLayer:
    """The whole layer ``cid`` for a window and the caller's scope, from the cache when it was
    computed in the last ``OGC_LAYER_TTL_S`` seconds.

    Raises
    ------
    InvalidInputError
        An instant instead of an interval, or a window the analysis refuses.
    """
    if since is not None and since == until:
        raise InvalidInputError(gettext("give a datetime interval (start/end) for this layer"))
    now = _present(session, cid, scope)
    runtime = current()
    use_cache = runtime.settings.api.ogc_layer_cache
    key = (
        database_name(session),
        cid,
        since,
        until,
        now,
        None if scope is None else scope.grid_ids,
        version_in_force(session),
    )
    if use_cache:
        hit = runtime.caches.ogc_layers.get(key)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
    # one computation per key at a time: a second request for the same layer waits for it
    with runtime.builds.hold(("ogc-layer", key)) if use_cache else nullcontext():
        if use_cache:
            hit = runtime.caches.ogc_layers.get(key)
            if hit is not None:
                return hit  # type: ignore[no-any-return]
        # a miss computes the whole layer: one of the caller's expensive-work slots, as the
        # layer's own route (/hotspots, /hotspots/emerging) takes (429/503 when none is free)
        with expensive(None if scope is None else scope.principal.user_id):
            features = _compute(session, cid, since, until, scope, now)
        layer = ComputedLayer(features, {str(f["id"]): f for f in features})
        if use_cache:
            runtime.caches.ogc_layers.put(key, layer)
        return layer

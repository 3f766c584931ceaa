"""The batch computations, one function per kind: ``(request, session, compute) -> result``.

A result holds a frame (``cells``, ``workload`` or ``crosswalk``), the number of partitions
read and a JSON summary; ``services.batch.store`` writes it. Proposals store their own draft
version and are run by ``services.batch.execute.run_batch`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from geo_service.services.batch.engine import Compute
from geo_service.services.batch.kinds.cells import emerging, heatmap, hotspots
from geo_service.services.batch.kinds.grids import reattribute, workload
from geo_service.services.batch.request import BatchRequest

Computation = Callable[[BatchRequest, Session, Compute], dict[str, Any]]
COMPUTATIONS: dict[str, Computation] = {
    "heatmap": heatmap,
    "hotspots": hotspots,
    "emerging": emerging,
    "workload": workload,
    "reattribute": reattribute,
}

"""The proposals kind: redraw many communities at once, one independent task per community.

Unlike the other kinds it writes to the database itself: ``services.planning``'s ``propose``
stores the redrawn grids as a draft boundary version; the engine only computes the
partitions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from geo_service.analytics.regionalize import partition
from geo_service.services.batch.engine import Compute, task
from geo_service.services.batch.request import BatchRequest
from geo_service.services.planning.proposals import ProposalRequest, propose


def proposals(engine: Engine, req: BatchRequest, compute: Compute, *, actor: str) -> dict[str, Any]:
    """Propose new grids for every community of ``req.scope``; the run's summary (the draft
    version and the workload balance before and after)."""

    def run_all(jobs: list[dict[str, Any]]) -> list[Any]:
        return compute([task(partition, **job) for job in jobs])

    proposal = ProposalRequest(
        parent_codes=list(req.scope), weights=req.weights, window_days=req.window_days
    )
    out = propose(engine, proposal, actor=actor, run_partitions=run_all)
    metrics = out["metrics"]
    return {
        "version_id": out["version_id"],
        "workload_before": metrics["workload_before"],
        "workload_after": metrics["workload_after"],
        "contiguous_share": metrics["contiguous_share"],
        "parents": len(metrics["parents"]),
    }

"""Background jobs: a row per job with status, progress and result, run in the runtime's job
thread (one at a time per process, so a heavy proposal never starves requests; the thread
starts on the first submit, and an app's shutdown lets queued jobs finish).

A job interrupted by a restart is marked failed when the next process starts. A job is seen
only by the user who started it and by admins; anyone else gets the 404 of a missing id.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, text

from geo_service.errors import GeoServiceError, NotFoundError
from geo_service.i18n import format_message
from geo_service.runtime import current
from geo_service.services.access.scope import Scope

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5

Work = Callable[[Callable[[float, str], None]], dict[str, Any]]


def submit(
    engine: Engine,
    kind: str,
    request: dict[str, Any],
    actor: str,
    work: Work,
    *,
    owner_id: int | None,
) -> str:
    """Queue ``work(progress)``; return the job id at once. ``owner_id``: the user who may
    read it (None: a system job, admins only)."""
    with engine.begin() as conn:
        job_id = conn.execute(
            text(
                "INSERT INTO jobs (kind, request, created_by, owner_user_id) "
                "VALUES (:k, CAST(:r AS jsonb), :a, :o) RETURNING id"
            ),
            {"k": kind, "r": json.dumps(request, default=str), "a": actor, "o": owner_id},
        ).scalar_one()
    current().submit(_run, engine, job_id, work)
    return str(job_id)


def _set(engine: Engine, job_id: Any, **values: Any) -> None:
    sets = ", ".join(
        f"{k} = CAST(:{k} AS jsonb)" if k in ("result", "error") else f"{k} = :{k}" for k in values
    )
    params = {
        k: json.dumps(v, default=str) if k in ("result", "error") else v for k, v in values.items()
    }
    with engine.begin() as conn:
        conn.execute(
            text(f"UPDATE jobs SET {sets}, updated_at = now() WHERE id = :id"),
            {**params, "id": job_id},
        )


def _run(engine: Engine, job_id: Any, work: Work) -> None:
    _set(engine, job_id, status="running", message="started")
    last = [0.0]

    def progress(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S:
            last[0] = now
            _set(
                engine,
                job_id,
                progress=round(min(max(fraction, 0.0), 1.0), 3),
                message=message[:500],
            )

    try:
        result = work(progress)
    except GeoServiceError as exc:
        _set(
            engine,
            job_id,
            status="failed",
            message=exc.detail[:500],
            error={"status": exc.status, "code": exc.code, "detail": exc.detail},
        )
    except Exception as exc:  # noqa: BLE001 - a job must end in a state, whatever happened
        log.exception("job %s failed", job_id)
        _set(
            engine,
            job_id,
            status="failed",
            message="internal error",
            error={"status": 500, "code": "internal-error", "detail": type(exc).__name__},
        )
    else:
        _set(engine, job_id, status="done", progress=1.0, message="done", result=result)


def get_job(engine: Engine, job_id: str, *, scope: Scope) -> dict[str, Any]:
    """A job's state: status, progress, message, and its result or error when it ended.

    Only for the user who started it and for admins: for anyone else it does not exist.
    """
    try:
        ident = uuid.UUID(job_id)
    except ValueError:
        raise NotFoundError(format_message("no job {job_id!r}", job_id=job_id)) from None
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT id, kind, status, progress, message, result, error, created_by, "
                    "created_at, updated_at FROM jobs WHERE id = :id "
                    "AND (CAST(:admin AS boolean) OR owner_user_id = :user)"
                ),
                {
                    "id": ident,
                    "admin": scope.principal.role == "admin",
                    "user": scope.principal.user_id,
                },
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFoundError(format_message("no job {job_id!r}", job_id=job_id))
    out = {k: v for k, v in dict(row).items() if v is not None or k in ("result", "error")}
    out["id"] = str(row["id"])
    for k in ("created_at", "updated_at"):
        out[k] = row[k].isoformat()
    if row["status"] != "done":
        out.pop("result", None)
    if row["status"] != "failed":
        out.pop("error", None)
    return out


def fail_interrupted(engine: Engine) -> int:
    """Mark jobs a previous process left running as failed (at start-up)."""
    with engine.begin() as conn:
        return conn.execute(
            text(
                "UPDATE jobs SET status = 'failed', message = 'interrupted by a restart', "
                'error = \'{"status": 503, "code": "interrupted", '
                '"detail": "the service restarted while the job ran; submit it again"}\', '
                "updated_at = now() WHERE status IN ('queued', 'running') "
                "AND updated_at < now() - interval '1 minute'"
            )
        ).rowcount

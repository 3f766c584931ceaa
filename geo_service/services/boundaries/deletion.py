"""Deleting a draft boundary version: what a proposal, an import or a planner's page left behind
and nobody will publish. Only drafts go (a published, scheduled or retired version is history
records and lookups depend on); their areas go with them (``ON DELETE CASCADE``). Nothing is
filed under a draft's grids, so no record moves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text

from geo_service.errors import ConflictError, NotFoundError, PermissionDeniedError
from geo_service.i18n import format_message
from geo_service.services.access.audit import record_audit
from geo_service.services.access.scope import Scope
from geo_service.services.boundaries import jurisdiction

# The row locked for the whole transaction: a publish, an edit or a second delete of the same
# version waits for this one and then finds it gone (404), or finds it published first (409).
_LOCK = text("SELECT id, name, status FROM boundary_versions WHERE id = :v FOR UPDATE")
_PROPOSED_BY = text(
    "SELECT 1 FROM audit_log WHERE entity = 'boundary_version' AND entity_id = :v "
    "AND action = 'propose' AND who = :who LIMIT 1"
)
_DELETE = text(
    "WITH gone AS (DELETE FROM areas WHERE version_id = :v RETURNING level) "
    "SELECT level, count(*) FROM gone GROUP BY level"
)
_DELETE_VERSION = text("DELETE FROM boundary_versions WHERE id = :v")


def delete_draft(engine: Engine, version_id: int, *, actor: str, scope: Scope) -> dict[str, Any]:
    """Delete draft ``version_id`` and its areas, audited (action ``delete``), in one
    transaction; return ``{"version_id", "name", "status": "deleted", "areas": {level: n}}``.

    Callers bound to an area may delete only the drafts they proposed themselves (the
    ``propose`` audit row names them), and see no version without an area in their
    jurisdiction; others may delete any draft. Raises NotFoundError (404) for an unknown
    version or one with nothing in the caller's area (worded as unknown);
    PermissionDeniedError (403) for a bound caller's draft someone else proposed (or an
    import); ConflictError (409) unless the version is a draft. Nothing is written on error.
    """
    missing = format_message("boundary version {version_id} does not exist", version_id=version_id)
    with engine.begin() as conn:
        version = conn.execute(_LOCK, {"v": version_id}).mappings().first()
        if version is None:
            raise NotFoundError(missing)
        if not scope.unrestricted:
            if not jurisdiction.visible_area_ids(conn, scope, version_id):
                raise NotFoundError(missing)  # as a missing version, as elsewhere
            if conn.execute(_PROPOSED_BY, {"v": str(version_id), "who": actor}).first() is None:
                raise PermissionDeniedError(
                    format_message(
                        "boundary version {version_id} was not proposed by you: a user bound to "
                        "an area deletes only their own proposals",
                        version_id=version_id,
                    )
                )
        if version["status"] != "draft":
            raise ConflictError(
                format_message(
                    "boundary version {version_id} is {status}: only drafts are deleted",
                    version_id=version_id,
                    status=version["status"],
                )
            )
        areas = {str(level): int(n) for level, n in conn.execute(_DELETE, {"v": version_id})}
        conn.execute(_DELETE_VERSION, {"v": version_id})
        record_audit(
            conn,
            who=actor,
            action="delete",
            entity="boundary_version",
            entity_id=str(version_id),
            diff={"name": version["name"], "areas": areas},
        )
    return {
        "version_id": version_id,
        "name": version["name"],
        "status": "deleted",
        "areas": areas,
    }

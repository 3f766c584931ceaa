"""The boundary versions there are: list them with their area counts, read one by id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, text

from geo_service.errors import NotFoundError
from geo_service.i18n import format_message


def list_versions(engine: Engine) -> list[dict[str, Any]]:
    """Every boundary version, newest first, with its area counts per level."""
    with engine.connect() as conn:
        rows = (
            conn.execute(
                text(
                    """
            SELECT v.id, v.name, v.status, v.effective_from, v.effective_to, v.notes,
                   v.created_at,
                   coalesce(jsonb_object_agg(c.level, c.n) FILTER (WHERE c.level IS NOT NULL),
                            '{}'::jsonb) AS areas
            FROM boundary_versions v
            LEFT JOIN (SELECT version_id, level, count(*) AS n FROM areas
                       GROUP BY version_id, level) c ON c.version_id = v.id
            GROUP BY v.id ORDER BY v.id DESC
            """
                )
            )
            .mappings()
            .all()
        )
    return [_version_dict(r) for r in rows]


def _version_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in ("effective_from", "effective_to", "created_at"):
        out[key] = out[key].isoformat() if out.get(key) else None
    return out


def read_version(conn: Connection, version_id: int) -> dict[str, Any]:
    """The ``boundary_versions`` row of ``version_id``; NotFoundError when there is none."""
    row = (
        conn.execute(text("SELECT * FROM boundary_versions WHERE id = :v"), {"v": version_id})
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(
            format_message("boundary version {version_id} does not exist", version_id=version_id)
        )
    return dict(row)

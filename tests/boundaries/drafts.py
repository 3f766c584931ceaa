"""Draft boundary versions for tests: copies of a version's areas, parents relinked by code
(the demo city's hierarchy, top down)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

LEVELS = ("district", "street", "community", "grid")


def copy_areas(
    conn: Connection,
    draft: int,
    version: int,
    level: str,
    *,
    skip: Iterable[str] = (),
    only: str | None = None,
) -> None:
    """Copy the areas of ``level`` of ``version`` into ``draft`` in id order, each under the
    draft's area with its parent's code: all but the codes in ``skip``; with ``only``, just
    the codes that start with it (that area and what lies under it)."""
    conn.execute(
        text(
            "INSERT INTO areas (version_id, level, code, name, parent_id, geom, area_m2) "
            "SELECT :d, a.level, a.code, a.name, "
            "  (SELECT n.id FROM areas n JOIN areas p ON p.code = n.code "
            "   WHERE n.version_id = :d AND p.id = a.parent_id), a.geom, a.area_m2 "
            "FROM areas a WHERE a.version_id = :v AND a.level = :level "
            "AND NOT a.code = ANY(:skip) "
            "AND (CAST(:only AS text) IS NULL OR a.code LIKE :only || '%') ORDER BY a.id"
        ),
        {"d": draft, "v": version, "level": level, "skip": list(skip), "only": only},
    )


def new_draft(
    conn: Connection,
    version: int,
    name: str,
    *,
    skip: Iterable[str] = (),
    only: str | None = None,
) -> int:
    """A draft named ``name`` copying the areas of ``version`` at every level (``copy_areas``
    with ``skip`` and ``only``)."""
    draft = conn.execute(
        text("INSERT INTO boundary_versions (name, status) VALUES (:n, 'draft') RETURNING id"),
        {"n": name},
    ).scalar_one()
    for level in LEVELS:
        copy_areas(conn, draft, version, level, skip=skip, only=only)
    return int(draft)

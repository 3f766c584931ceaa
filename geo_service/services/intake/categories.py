"""The category taxonomy as a grid office manages it: names per language, targets, handling
effort, retiring and restoring (issue 19).

A category's ``code`` is its stable key (incidents, rollups, imports and Open311 name it); what
people read is its name in their language (``names``, BCP 47 tag -> name; ``name`` is the
English one). A retired category takes no new incident; its incidents and history stay, and
it can be restored. Every change writes an audit row with the before and after state, in the
change's transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import ConflictError, InvalidInputError, NotFoundError
from geo_service.i18n import ENGLISH, LANGUAGES, N_, format_message, localized
from geo_service.services.access.audit import record_audit

CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_NAME_CHARS = 200
# Bounds of what a grid office sets: effort per incident, and the two targets.
HANDLING_EFFORT_MIN = (1, 7 * 24 * 60)
RESOLUTION_TARGET_MIN = (1, 365 * 24 * 60)
RESPONSE_TARGET_S = (1, 7 * 86400)
SETTABLE = (
    "group",
    "default_priority",
    "handling_effort_min",
    "response_target_s",
    "resolution_target_min",
)

_COLUMNS = (
    'code, name, names, "group", default_priority, handling_effort_min, response_target_s, '
    "resolution_target_min, retired_at"
)


def _public(row: Any) -> dict[str, Any]:
    names = dict(row.names or {})
    names.setdefault(ENGLISH, row.name)
    return {
        "code": row.code,
        "name": localized(names, row.name),
        "names": names,
        "group": row.group,
        "default_priority": row.default_priority,
        "handling_effort_min": row.handling_effort_min,
        "response_target_s": row.response_target_s,
        "resolution_target_min": row.resolution_target_min,
        "retired": row.retired_at is not None,
        "retired_at": None if row.retired_at is None else row.retired_at.isoformat(),
    }


def list_categories(session: Session, *, include_retired: bool = False) -> list[dict[str, Any]]:
    """Every category (in use only, unless ``include_retired``), by code, its ``name`` in the
    current language (geo_service/i18n.py)."""
    rows = session.execute(
        text(
            f"SELECT {_COLUMNS} FROM categories "
            "WHERE CAST(:all AS boolean) OR retired_at IS NULL ORDER BY code"
        ),
        {"all": include_retired},
    ).all()
    return [_public(r) for r in rows]


def read_category(session: Session, code: str, *, lock: bool = False) -> dict[str, Any]:
    """One category; ``NotFoundError`` when no category has ``code``."""
    row = session.execute(
        text(f"SELECT {_COLUMNS} FROM categories WHERE code = :code" + (" FOR UPDATE" * lock)),
        {"code": code},
    ).one_or_none()
    if row is None:
        raise NotFoundError(format_message("no category has the code {code}", code=repr(code)))
    return _public(row)


def _checked_names(names: Mapping[str, str]) -> dict[str, str]:
    checked: dict[str, str] = {}
    for tag, name in names.items():
        if tag not in LANGUAGES:
            raise InvalidInputError(
                format_message(
                    "names: {tag} is not a served language ({languages})",
                    tag=repr(tag),
                    languages=", ".join(LANGUAGES),
                )
            )
        value = (name or "").strip()
        if not value or len(value) > MAX_NAME_CHARS:
            raise InvalidInputError(
                format_message(
                    "names.{tag}: a name of 1 to {n} characters", tag=tag, n=MAX_NAME_CHARS
                )
            )
        checked[tag] = value
    return checked


def _check_bounds(values: Mapping[str, Any]) -> None:
    bounds = {
        "handling_effort_min": HANDLING_EFFORT_MIN,
        "resolution_target_min": RESOLUTION_TARGET_MIN,
        "response_target_s": RESPONSE_TARGET_S,
        "default_priority": (1, 4),
    }
    for field, (low, high) in bounds.items():
        value = values.get(field)
        if value is None:
            if field in ("handling_effort_min", "default_priority") and field in values:
                raise InvalidInputError(format_message("{field} may not be empty", field=field))
            continue
        if not low <= int(value) <= high:
            raise InvalidInputError(
                format_message(
                    "{field} must be {low}..{high}, got {value}",
                    field=field,
                    low=low,
                    high=high,
                    value=value,
                )
            )
    group = values.get("group")
    if "group" in values and (not group or len(str(group)) > 64):
        raise InvalidInputError(format_message("group: 1 to 64 characters"))


def create_category(session: Session, fields: Mapping[str, Any], *, actor: str) -> dict[str, Any]:
    """A new category from ``code``, ``names`` (English required), ``group``,
    ``default_priority`` (1..4), ``handling_effort_min`` and optional targets; audited.

    Raises
    ------
    InvalidInputError
        A malformed code, a name missing or too long, a value out of its bounds (422).
    ConflictError
        A category with this code exists, retired or not (409).
    """
    code = str(fields.get("code") or "")
    if not CODE.match(code):
        raise InvalidInputError(
            format_message(
                "code: lower-case letters, digits and _ (1 to 64, a letter first), got {code}",
                code=repr(code),
            )
        )
    names = _checked_names(fields.get("names") or {})
    if ENGLISH not in names:
        raise InvalidInputError(format_message("names.en: the English name is required"))
    values = {field: fields.get(field) for field in SETTABLE}
    values["group"] = values["group"] or "other"
    values["default_priority"] = values["default_priority"] or 3
    _check_bounds(values)
    if values["handling_effort_min"] is None:
        raise InvalidInputError(format_message("handling_effort_min is required"))
    exists = session.execute(
        text("SELECT 1 FROM categories WHERE code = :code"), {"code": code}
    ).first()
    if exists:
        raise ConflictError(format_message("a category with the code {code} exists", code=code))
    session.execute(
        text(
            'INSERT INTO categories (code, name, names, "group", default_priority, '
            "handling_effort_min, response_target_s, resolution_target_min) VALUES (:code, "
            ":name, CAST(:names AS jsonb), :group, :default_priority, :handling_effort_min, "
            ":response_target_s, :resolution_target_min)"
        ),
        {"code": code, "name": names[ENGLISH], "names": _json(names), **values},
    )
    after = read_category(session, code)
    record_audit(
        session,
        who=actor,
        action="create",
        entity="categories",
        entity_id=code,
        diff={"after": _state(after)},
    )
    session.commit()
    return after


def update_category(
    session: Session, code: str, changes: Mapping[str, Any], *, actor: str
) -> dict[str, Any]:
    """Rename (``names``: the languages given are replaced, the others kept; the English name
    is also ``name``) and set ``group``, ``default_priority``, ``handling_effort_min``,
    ``response_target_s``, ``resolution_target_min`` (null clears a target); audited.

    Raises
    ------
    NotFoundError
        No category has ``code`` (404).
    InvalidInputError
        Nothing to change, an unknown language, an empty name, a value out of bounds (422).
    """
    before = read_category(session, code, lock=True)
    names = _checked_names(changes.get("names") or {})
    values = {field: changes[field] for field in SETTABLE if field in changes}
    if not names and not values:
        raise InvalidInputError(format_message("nothing to change"))
    _check_bounds(values)
    merged = {**before["names"], **names}
    assignments = ", ".join(f'"{field}" = :{field}' for field in values)
    session.execute(
        text(
            "UPDATE categories SET names = CAST(:names AS jsonb), name = :name"
            + (f", {assignments}" if assignments else "")
            + " WHERE code = :code"
        ),
        {"code": code, "names": _json(merged), "name": merged[ENGLISH], **values},
    )
    after = read_category(session, code)
    record_audit(
        session,
        who=actor,
        action="update",
        entity="categories",
        entity_id=code,
        diff={"before": _state(before), "after": _state(after)},
    )
    session.commit()
    return after


def set_retired(session: Session, code: str, retired: bool, *, actor: str) -> dict[str, Any]:
    """Retire a category (no new incident may take it) or restore it; audited.

    Raises
    ------
    NotFoundError
        No category has ``code`` (404).
    ConflictError
        It is already retired (or already in use, to restore) (409).
    """
    before = read_category(session, code, lock=True)
    if before["retired"] == retired:
        message = (
            N_("category {code} is already retired") if retired else N_("category {code} is in use")
        )
        raise ConflictError(format_message(message, code=repr(code)))
    session.execute(
        text(
            "UPDATE categories SET retired_at = CASE WHEN :retired THEN now() END "
            "WHERE code = :code"
        ),
        {"code": code, "retired": retired},
    )
    after = read_category(session, code)
    record_audit(
        session,
        who=actor,
        action="retire" if retired else "restore",
        entity="categories",
        entity_id=code,
        diff={"before": _state(before), "after": _state(after)},
    )
    session.commit()
    return after


def _state(category: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit row keeps of a category (its name in the current language is not)."""
    return {k: v for k, v in category.items() if k != "name"}


def _json(value: Mapping[str, str]) -> str:
    import json

    return json.dumps(dict(value), ensure_ascii=False)

"""The category taxonomy: ``GET /categories``, ``POST /categories``,
``PATCH /categories/{code}``, ``POST /categories/{code}/retire|restore`` (issue 19).

Reading needs ``incidents:read``; every change needs ``categories:write`` (admins), rides a
key, a token or the sign-in session with its CSRF token, and is audited by the service.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from geo_service.api.deps import ActorDep, SessionDep, require
from geo_service.api.schemas.intake import (
    CategoriesPublic,
    CategoryCreate,
    CategoryPublic,
    CategoryUpdate,
)
from geo_service.services.access.scope import Scope
from geo_service.services.intake import categories as service

router = APIRouter(prefix="/categories", tags=["categories"])
ReadScope = Annotated[Scope, Depends(require("incidents:read"))]
WriteScope = Annotated[Scope, Depends(require("categories:write"))]
Code = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=CategoriesPublic)
def read_categories(
    session: SessionDep,
    scope: ReadScope,
    include_retired: Annotated[bool, Query(description="also the retired ones")] = False,
) -> dict[str, Any]:
    """Every category in use (with ``include_retired``, all), by code, named in the request's
    language."""
    data = service.list_categories(session, include_retired=include_retired)
    return {"data": data, "count": len(data)}


@router.post("", response_model=CategoryPublic, status_code=201)
def create_category(
    session: SessionDep, scope: WriteScope, actor: ActorDep, body: CategoryCreate
) -> dict[str, Any]:
    """A new category (409 when the code exists, retired or not)."""
    return service.create_category(session, body.model_dump(), actor=actor)


@router.patch("/{code}", response_model=CategoryPublic)
def update_category(
    session: SessionDep, scope: WriteScope, actor: ActorDep, code: Code, body: CategoryUpdate
) -> dict[str, Any]:
    """Rename a category in one or more languages, set its targets and handling effort."""
    return service.update_category(session, code, body.model_dump(exclude_unset=True), actor=actor)


@router.post("/{code}/retire", response_model=CategoryPublic)
def retire_category(
    session: SessionDep, scope: WriteScope, actor: ActorDep, code: Code
) -> dict[str, Any]:
    """No new incident may take this category (409 when already retired); its incidents and
    history stay."""
    return service.set_retired(session, code, True, actor=actor)


@router.post("/{code}/restore", response_model=CategoryPublic)
def restore_category(
    session: SessionDep, scope: WriteScope, actor: ActorDep, code: Code
) -> dict[str, Any]:
    """Bring a retired category back into use (409 when it is in use)."""
    return service.set_retired(session, code, False, actor=actor)

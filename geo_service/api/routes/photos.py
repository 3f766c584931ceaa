"""Incident photos: ``POST /incidents/{id}/photos`` (idempotent), ``GET`` the list, one
photo or its thumbnail (issue 20)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from geo_service.api.deps import ActorDep, SessionDep, SettingsDep, require
from geo_service.api.schemas.intake import PhotoPublic, PhotosPublic
from geo_service.services.access.scope import Scope
from geo_service.services.intake import photos as photo_service
from geo_service.services.intake.photo_store import PhotoStore, photo_store

router = APIRouter(prefix="/incidents", tags=["incidents"])


def get_photo_store(request: Request) -> PhotoStore:
    """The process's photo store (``GEO_PHOTOS_*``), made on first use."""
    state = request.app.state
    store = getattr(state, "photo_store", None)
    if store is None:
        settings = state.settings
        store = state.photo_store = photo_store(settings.photos, settings.database.data_dir)
    return store


StoreDep = Annotated[PhotoStore, Depends(get_photo_store)]


@router.post(
    "/{incident_id}/photos",
    status_code=201,
    response_model=PhotoPublic,
    response_description="the photo, stored without EXIF",
    responses={
        200: {
            "model": PhotoPublic,
            "description": "replay of the same Idempotency-Key, or the same bytes already "
            "stored on this incident: the stored photo",
        },
        413: {"description": "over GEO_PHOTOS_MAX_BYTES or GEO_PHOTOS_MAX_PIXELS"},
        415: {"description": "not a JPEG, PNG or WebP image (judged by content)"},
    },
)
def create_photo(
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    actor: ActorDep,
    scope: Annotated[Scope, Depends(require("incidents:write"))],
    incident_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="a JPEG, PNG or WebP photo")],
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=200)
    ] = None,
) -> JSONResponse:
    """Attach a photo to an incident you see: re-encoded upright as a JPEG with no EXIF (GPS
    and device data removed), with a thumbnail; audited. The same user's Idempotency-Key
    again, or the same bytes (SHA-256) already stored on this incident, answers the stored
    photo (200, its ``Location``) and stores and audits nothing."""
    limits = settings.photos
    data = file.file.read(limits.max_bytes + 1)
    photo, created = photo_service.add_photo(
        session,
        store,
        incident_id,
        data,
        scope=scope,
        actor=actor,
        idempotency_key=idempotency_key,
        max_bytes=limits.max_bytes,
        max_pixels=limits.max_pixels,
        thumbnail_px=limits.thumbnail_px,
    )
    headers = {"Location": photo["url"]}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(photo, status_code=201 if created else 200, headers=headers)


@router.get("/{incident_id}/photos", response_model=PhotosPublic, response_description="the photos")
def read_photos(
    session: SessionDep,
    scope: Annotated[Scope, Depends(require("incidents:describe"))],
    incident_id: uuid.UUID,
) -> dict[str, Any]:
    """The incident's photos (roles that read incidents with their descriptions, in their
    area; 403 for analysts and planners, 404 outside your area)."""
    return photo_service.list_photos(session, incident_id, scope=scope)


@router.get(
    "/{incident_id}/photos/{photo_id}",
    response_class=Response,
    responses={
        200: {
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the JPEG",
        }
    },
)
def read_photo(
    session: SessionDep,
    store: StoreDep,
    scope: Annotated[Scope, Depends(require("incidents:describe"))],
    incident_id: uuid.UUID,
    photo_id: uuid.UUID,
    size: Annotated[
        Literal["full", "thumbnail"], Query(description="the photo or its thumbnail")
    ] = "full",
) -> Response:
    """One photo as a JPEG (or its thumbnail), to the same callers as the list."""
    data = photo_service.read_photo(
        session, store, incident_id, photo_id, thumbnail=size == "thumbnail", scope=scope
    )
    return Response(
        data,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )

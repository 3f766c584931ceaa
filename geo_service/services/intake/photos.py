"""Incident photos (issue 20): taken on a grid worker's phone, kept without what identifies
the phone or the place it was taken from.

A photo is accepted by its content (JPEG, PNG or WebP as Pillow reads it; 415 otherwise),
up to ``max_bytes`` (413) and ``max_pixels`` decoded (413, before decoding: a decompression
bomb is refused by its header). It is turned upright by its EXIF orientation and re-encoded
as a JPEG with no metadata at all (Pillow writes EXIF, XMP and ICC only when asked, and we do
not ask), so GPS position, device make and model and timestamps are gone from the stored file;
a thumbnail of ``thumbnail_px`` on the longer side is stored beside it. Photos are shown to
whoever may read the incident with its description (``incidents:describe``: dispatchers, the
grid's worker, admins; not analysts or planners, who see incidents as data points) and go with
the incident: rows by CASCADE, files by ``sweep_orphan_photos``.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo_service.errors import (
    IdempotencyKeyReusedError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    UnsupportedMediaError,
)
from geo_service.i18n import format_message, gettext
from geo_service.services.access.audit import record_audit
from geo_service.services.access.scope import Scope
from geo_service.services.intake.incidents import visible_to
from geo_service.services.intake.photo_store import PhotoStore

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
JPEG_QUALITY = 85


def clean_image(
    data: bytes, *, max_pixels: int, thumbnail_px: int
) -> tuple[bytes, bytes, int, int]:
    """The photo re-encoded as an upright JPEG without metadata, its thumbnail, width and
    height (pixels).

    Raises UnsupportedMediaError (415) for content that is not a JPEG, PNG or WebP image,
    LimitExceededError (413) over ``max_pixels``. Method: Pillow's ``ImageOps.exif_transpose``,
    then a fresh ``Image.save(format="JPEG")`` given no ``exif``/``icc_profile`` (Pillow
    handbook, "Image file formats: JPEG").
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # a header past twice Pillow's own limit
        raise LimitExceededError(
            format_message(
                "the photo's header claims more than {limit:,} pixels: refused unread",
                limit=max_pixels,
            )
        ) from exc
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UnsupportedMediaError(gettext("a photo must be a JPEG, PNG or WebP image")) from exc
    if image.format not in ACCEPTED_FORMATS:
        raise UnsupportedMediaError(
            format_message(
                "a photo must be a JPEG, PNG or WebP image, not {value}",
                value=image.format or "unknown",
            )
        )
    width, height = image.size
    if width * height > max_pixels:
        raise LimitExceededError(
            format_message(
                "the photo has {width} x {height} pixels; at most {max_pixels:,} are accepted",
                width=width,
                height=height,
                max_pixels=max_pixels,
            )
        )
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError) as exc:  # truncated or corrupt data
        raise UnsupportedMediaError(
            gettext("the photo cannot be read (truncated or damaged)")
        ) from exc
    if upright.mode in ("RGBA", "LA", "P"):
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        upright = flat
    elif upright.mode != "RGB":
        upright = upright.convert("RGB")
    full = io.BytesIO()
    upright.save(full, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    thumb = upright.copy()
    thumb.thumbnail((thumbnail_px, thumbnail_px))
    small = io.BytesIO()
    thumb.save(small, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return full.getvalue(), small.getvalue(), upright.width, upright.height


def _incident_for_photos(session: Session, incident_id: uuid.UUID, scope: Scope) -> None:
    """404 unless the caller sees the incident (another area's reads as missing); 403 for a
    role that may not see descriptions and photos."""
    scope.require("incidents:describe")
    row = session.execute(
        text("SELECT grid_id, responder_id FROM incidents WHERE id = :id"), {"id": incident_id}
    ).first()
    if row is None or not visible_to(scope, row.grid_id, row.responder_id):
        raise NotFoundError(
            format_message("incident {incident_id} does not exist", incident_id=incident_id)
        )


_COLUMNS = (
    "id, incident_id, content_type, width, height, bytes, thumbnail_bytes, created_at, storage_key"
)


def _public(row: Any) -> dict[str, Any]:
    base = f"/incidents/{row.incident_id}/photos/{row.id}"
    return {
        "id": str(row.id),
        "incident_id": str(row.incident_id),
        "content_type": row.content_type,
        "width": row.width,
        "height": row.height,
        "bytes": row.bytes,
        "thumbnail_bytes": row.thumbnail_bytes,
        "created_at": row.created_at.isoformat(),
        "url": base,
        "thumbnail_url": f"{base}?size=thumbnail",
    }


def _keyed(session: Session, user_id: int, key: str) -> Any:
    return session.execute(
        text(f"SELECT {_COLUMNS} FROM incident_photos WHERE uploaded_by = :u AND request_key = :k"),
        {"u": user_id, "k": key},
    ).first()


def _same_content(session: Session, incident_id: uuid.UUID, digest: str) -> Any:
    return session.execute(
        text(
            f"SELECT {_COLUMNS} FROM incident_photos WHERE incident_id = :i AND content_sha256 = :h"
        ),
        {"i": incident_id, "h": digest},
    ).first()


def add_photo(
    session: Session,
    store: PhotoStore,
    incident_id: uuid.UUID,
    data: bytes,
    *,
    scope: Scope,
    actor: str,
    idempotency_key: str | None,
    max_bytes: int,
    max_pixels: int,
    thumbnail_px: int,
) -> tuple[dict[str, Any], bool]:
    """Store a photo of an incident; return it and whether it was stored now (False: the
    same user's ``idempotency_key`` again, or the same bytes already stored on this incident
    by anyone, with or without a key: answered with the stored photo, nothing stored or
    audited).

    Needs ``incidents:write`` and ``incidents:describe`` and an incident the caller sees (404
    otherwise); 413 over ``max_bytes`` or ``max_pixels``, 415 for what is not a JPEG, PNG or
    WebP, 422 for an empty file. Audited (``create incident_photo``) in the row's transaction.
    """
    scope.require("incidents:write")
    _incident_for_photos(session, incident_id, scope)
    user = scope.principal.user_id
    if idempotency_key is not None:
        done = _keyed(session, user, idempotency_key)
        if done is not None:
            if done.incident_id != incident_id:
                raise IdempotencyKeyReusedError(
                    format_message(
                        "this Idempotency-Key was used for a photo of incident {incident_id}",
                        incident_id=done.incident_id,
                    )
                )
            return _public(done), False
    if not data:
        raise InvalidInputError(gettext("the photo is empty"))
    if len(data) > max_bytes:
        raise LimitExceededError(
            format_message("a photo may be at most {max_bytes:,} bytes", max_bytes=max_bytes)
        )
    # judged on the bytes as sent: an offline queue repeating an upload sends the same bytes
    digest = hashlib.sha256(data).hexdigest()
    same = _same_content(session, incident_id, digest)
    if same is not None:
        return _public(same), False
    full, thumb, width, height = clean_image(data, max_pixels=max_pixels, thumbnail_px=thumbnail_px)
    photo_id = uuid.uuid4()
    key = f"{incident_id}/{photo_id}.jpg"
    thumb_key = f"{incident_id}/{photo_id}.thumb.jpg"
    store.put(key, full, "image/jpeg")
    store.put(thumb_key, thumb, "image/jpeg")
    stored = session.execute(
        text(
            "INSERT INTO incident_photos (id, incident_id, storage_key, content_type, width, "
            "height, bytes, thumbnail_bytes, uploaded_by, request_key, content_sha256) "
            "VALUES (:id, :i, :key, 'image/jpeg', :w, :h, :b, :tb, :u, :rk, :sha) "
            f"ON CONFLICT DO NOTHING RETURNING {_COLUMNS}"
        ),
        {
            "id": photo_id,
            "i": incident_id,
            "key": key,
            "w": width,
            "h": height,
            "b": len(full),
            "tb": len(thumb),
            "u": user,
            "rk": idempotency_key,
            "sha": digest,
        },
    ).first()
    if stored is None:  # the same key or content won a race: keep the winner's photo only
        session.rollback()
        store.delete(key)
        store.delete(thumb_key)
        winner = (
            _keyed(session, user, idempotency_key) if idempotency_key is not None else None
        ) or _same_content(session, incident_id, digest)
        if winner is None:
            raise IdempotencyKeyReusedError(
                gettext("this Idempotency-Key is in use; retry the request")
            )
        return _public(winner), False
    photo = _public(stored)
    record_audit(
        session,
        who=actor,
        action="create",
        entity="incident_photo",
        entity_id=str(photo_id),
        diff={
            "after": {k: photo[k] for k in ("incident_id", "width", "height", "bytes")},
            "idempotency_key": idempotency_key,
        },
    )
    session.commit()
    return photo, True


def list_photos(session: Session, incident_id: uuid.UUID, *, scope: Scope) -> dict[str, Any]:
    """The incident's photos, oldest first (``data``, ``count``); 404/403 as ``add_photo``."""
    _incident_for_photos(session, incident_id, scope)
    rows = session.execute(
        text(f"SELECT {_COLUMNS} FROM incident_photos WHERE incident_id = :i ORDER BY created_at"),
        {"i": incident_id},
    ).all()
    return {"data": [_public(r) for r in rows], "count": len(rows)}


def read_photo(
    session: Session,
    store: PhotoStore,
    incident_id: uuid.UUID,
    photo_id: uuid.UUID,
    *,
    thumbnail: bool,
    scope: Scope,
) -> bytes:
    """The stored JPEG (or its thumbnail); 404 for a photo not of this incident."""
    _incident_for_photos(session, incident_id, scope)
    key = session.execute(
        text("SELECT storage_key FROM incident_photos WHERE id = :p AND incident_id = :i"),
        {"p": photo_id, "i": incident_id},
    ).scalar_one_or_none()
    if key is None:
        raise NotFoundError(
            format_message(
                "photo {photo_id} of incident {incident_id} does not exist",
                photo_id=photo_id,
                incident_id=incident_id,
            )
        )
    try:
        return store.get(key.replace(".jpg", ".thumb.jpg") if thumbnail else key)
    except FileNotFoundError as exc:
        raise NotFoundError(
            format_message("photo {photo_id} is no longer stored", photo_id=photo_id)
        ) from exc


def sweep_orphan_photos(session: Session, store: PhotoStore) -> int:
    """Delete stored files whose photo row is gone (its incident was deleted: rows go by
    CASCADE, files by this sweep); the number of files deleted."""
    kept = set(session.execute(text("SELECT storage_key FROM incident_photos")).scalars())
    gone = 0
    for key in list(store.keys()):
        if key.replace(".thumb.jpg", ".jpg") not in kept:
            store.delete(key)
            gone += 1
    return gone

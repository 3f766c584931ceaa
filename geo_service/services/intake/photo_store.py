"""Where incident photos are kept: one interface, the local filesystem by default.

``PhotoStore`` is all the photo service knows of storage: ``put``, ``get``, ``delete`` and
``keys`` (for the sweep of files whose incident is gone). ``LocalPhotoStore`` writes under a
directory (the embedded default, ``$GEO_DATA_DIR/photos``); ``S3PhotoStore`` writes to an
S3-compatible bucket with boto3 (imported only when chosen; ``pip install boto3``), the
production option documented in README ("Photos"). Keys are made by the service
(``<incident uuid>/<photo uuid>.jpg``), never from what a client sent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from geo_service.settings import PhotoSettings

_KEY = re.compile(r"^[0-9a-f-]{36}/[0-9a-f-]{36}(\.thumb)?\.jpg$")


def _checked(key: str) -> str:
    if not _KEY.match(key):  # keys are the service's own: anything else is a bug, not input
        raise ValueError(f"not a photo key: {key!r}")
    return key


class PhotoStore(Protocol):
    """A place to keep photo files by key."""

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` (replacing what was there)."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; FileNotFoundError when there are none."""

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing when it is not there)."""

    def keys(self) -> Iterator[str]:
        """Every key held."""


class LocalPhotoStore:
    """Photos as files under ``root`` (mode 0600 files in 0700 directories)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write the file atomically (a temporary name, then a rename)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        partial.replace(path)

    def get(self, key: str) -> bytes:
        """The file's bytes."""
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        """Remove the file, and its directory once empty."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass  # other photos of the incident are still there

    def keys(self) -> Iterator[str]:
        """Every photo file under the root."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("*/*.jpg"):
            key = f"{path.parent.name}/{path.name}"
            if _KEY.match(key):
                yield key


class S3PhotoStore:
    """Photos in an S3-compatible bucket (objects ``<prefix><key>``), through boto3."""

    def __init__(self, bucket: str, *, prefix: str = "photos/", endpoint_url: str | None = None):
        import boto3  # only when chosen: the embedded default needs no AWS library

        self.bucket = bucket
        self.prefix = prefix
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """PutObject."""
        self.client.put_object(
            Bucket=self.bucket, Key=self.prefix + _checked(key), Body=data, ContentType=content_type
        )

    def get(self, key: str) -> bytes:
        """GetObject; FileNotFoundError for NoSuchKey."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + _checked(key))
        except self.client.exceptions.NoSuchKey as exc:
            raise FileNotFoundError(key) from exc
        return bytes(answer["Body"].read())

    def delete(self, key: str) -> None:
        """DeleteObject."""
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + _checked(key))

    def keys(self) -> Iterator[str]:
        """ListObjectsV2 under the prefix, page by page."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(self.prefix) :]
                if _KEY.match(key):
                    yield key


def photo_store(settings: PhotoSettings, data_dir: Path) -> PhotoStore:
    """The store ``settings`` names: local under ``settings.dir`` (default
    ``data_dir/photos``) or S3 (``GEO_PHOTOS_S3_BUCKET`` required)."""
    if settings.storage == "s3":
        if not settings.s3_bucket:
            raise ValueError("GEO_PHOTOS_STORAGE=s3 needs GEO_PHOTOS_S3_BUCKET")
        return S3PhotoStore(
            settings.s3_bucket, prefix=settings.s3_prefix, endpoint_url=settings.s3_endpoint_url
        )
    return LocalPhotoStore(settings.dir or Path(data_dir) / "photos")

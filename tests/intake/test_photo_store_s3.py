"""The S3-compatible photo store (issue 20) against a real S3 API: moto's standalone server
(``moto[server]``, a dev dependency) on a loopback port, spoken to over HTTP by boto3 exactly
as MinIO, Ceph or OSS would be (``GEO_PHOTOS_S3_ENDPOINT_URL``). The store's own contract
(put, get, delete, keys; a missing key is FileNotFoundError; keys not the service's refused),
``photo_store`` choosing it from the settings, and a photo through the API: stored without
EXIF in the bucket, served to the grid's worker, its objects gone once its incident is."""

from __future__ import annotations

import io
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.demo.city import DemoCity
from geo_service.services.intake.photo_store import S3PhotoStore, photo_store
from geo_service.services.intake.photos import sweep_orphan_photos
from geo_service.settings import PhotoSettings
from tests.dispatch.test_field_app import (
    busiest_grid,
    make_worker,
    new_incident,
    photo_with_exif,
    upload,
)

BUCKET = "geo-photos"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3-compatible server on a free loopback port, its URL."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh bucket (credentials from the usual AWS environment variables), its client."""
    import boto3

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "geo-test"),
        ("AWS_SECRET_ACCESS_KEY", "geo-test-secret"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield client
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _objects(client: Any) -> list[str]:
    return sorted(i["Key"] for i in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_the_s3_store_keeps_gets_lists_and_deletes_over_the_s3_api(
    s3_endpoint: str, bucket: Any
) -> None:
    store = S3PhotoStore(BUCKET, prefix="photos/", endpoint_url=s3_endpoint)
    key = f"{uuid.uuid4()}/{uuid.uuid4()}.jpg"
    store.put(key, b"\xff\xd8 a jpeg", "image/jpeg")
    assert store.get(key) == b"\xff\xd8 a jpeg"
    head = bucket.head_object(Bucket=BUCKET, Key=f"photos/{key}")
    assert head["ContentType"] == "image/jpeg"
    # keys: only the service's own under the prefix (another object in the bucket is not one)
    bucket.put_object(Bucket=BUCKET, Key="photos/readme.txt", Body=b"x")
    bucket.put_object(Bucket=BUCKET, Key="elsewhere/" + key, Body=b"x")
    assert list(store.keys()) == [key]
    store.delete(key)
    with pytest.raises(FileNotFoundError):
        store.get(key)
    store.delete(key)  # deleting what is not there is nothing
    with pytest.raises(ValueError, match="not a photo key"):
        store.put("../../etc/passwd", b"x", "image/jpeg")
    assert "photos/" + key not in _objects(bucket)


def test_photo_store_chooses_s3_from_the_settings(s3_endpoint: str, bucket: Any) -> None:
    chosen = photo_store(
        PhotoSettings(storage="s3", s3_bucket=BUCKET, s3_endpoint_url=s3_endpoint),
        data_dir=Path("."),
    )
    assert isinstance(chosen, S3PhotoStore) and chosen.prefix == "photos/"
    with pytest.raises(ValueError, match="GEO_PHOTOS_S3_BUCKET"):
        photo_store(PhotoSettings(storage="s3"), data_dir=Path("."))


def test_a_photo_through_the_api_lands_in_the_bucket_without_exif_and_goes_with_its_incident(
    client: TestClient, engine: Engine, loaded_city: DemoCity, s3_endpoint: str, bucket: Any
) -> None:
    state = client.app.state  # type: ignore[attr-defined]
    saved = getattr(state, "photo_store", None)
    store = S3PhotoStore(BUCKET, prefix="photos/", endpoint_url=s3_endpoint)
    state.photo_store = store
    try:
        worker = make_worker(engine, busiest_grid(loaded_city), "field-s3")
        iid = new_incident(client, loaded_city, worker["code"])
        answer = upload(client, iid, photo_with_exif(), worker["headers"], key="s3-photo-1")
        assert answer.status_code == 201, answer.text
        photo = answer.json()
        objects = _objects(bucket)
        assert objects == sorted(
            [f"photos/{iid}/{photo['id']}.jpg", f"photos/{iid}/{photo['id']}.thumb.jpg"]
        )
        for key in objects:
            data = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            assert dict(Image.open(io.BytesIO(data)).getexif()) == {}
            assert b"PhoneMaker" not in data
        served = client.get(photo["url"], headers=worker["headers"])
        assert served.status_code == 200 and served.content.startswith(b"\xff\xd8")
        # refused input writes nothing to the bucket
        assert upload(client, iid, b"%PDF-1.4 no", worker["headers"]).status_code == 415
        assert _objects(bucket) == objects
        # the incident goes: its rows by CASCADE, its objects by the sweep
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM incidents WHERE id = :i"), {"i": iid})
        with Session(engine) as session:
            assert sweep_orphan_photos(session, store) == 2
        assert _objects(bucket) == []
    finally:
        state.photo_store = saved

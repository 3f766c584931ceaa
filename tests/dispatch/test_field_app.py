"""The grid worker in the field (issue 20), through the API: the sign-in page on a phone, pages
answering a page (not raw JSON) to a browser that may not see them, lifecycle actions and
reports sent again by an offline queue done once (Idempotency-Key), resolution codes, photos
without EXIF served only to those who may see the incident, household visits for the grid's
own worker only, and every write audited. The clock is held wherever a decision reads it."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from geo_service.demo.city import DemoCity
from geo_service.services.access.auth import create_key, create_user
from geo_service.services.intake.photo_store import LocalPhotoStore
from geo_service.services.intake.photos import sweep_orphan_photos
from tests.conftest import as_role, grid_point, problem

# 10:00 in Wuhan on a Monday: the held clock of the visit tests (today is 2026-03-02 there)
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
HTML = {"Accept": "text/html,application/xhtml+xml"}


def busiest_grid(city: DemoCity) -> str:
    """The grid with the most households (where ``role_keys['grid_worker']`` works)."""
    return str(city.households.grid_code.value_counts().index[0])


def make_worker(engine: Engine, code: str, name: str) -> dict[str, Any]:
    """A grid worker's user, linked to a new available responder homed in grid ``code``, with
    a key; the grid's id and a point inside it."""
    with engine.begin() as conn:
        rid, grid_id = conn.execute(
            text(
                "INSERT INTO responders (callsign, kind, status, home_grid_id) "
                "SELECT :n, 'grid_worker', 'available', a.id FROM areas a "
                "JOIN boundary_versions v ON v.id = a.version_id "
                "WHERE a.code = :c AND v.status = 'published' RETURNING id, home_grid_id"
            ),
            {"n": name, "c": code},
        ).one()
    with Session(engine) as session:
        user = create_user(
            session,
            name=name,
            role="grid_worker",
            area_code=code,
            actor="tests",
            responder_callsign=name,
        )
        key = create_key(session, user, actor="tests")[1]
        session.commit()
    return {"id": rid, "grid_id": grid_id, "code": code, "headers": {"X-API-Key": key}}


@pytest.fixture
def worker(engine: Engine, loaded_city: DemoCity) -> dict[str, Any]:
    """The busiest grid's worker with their own responder."""
    return make_worker(engine, busiest_grid(loaded_city), "field-worker")


@pytest.fixture
def other_worker(engine: Engine, loaded_city: DemoCity) -> dict[str, Any]:
    """Another grid's worker."""
    codes = [c for c in loaded_city.areas[loaded_city.areas.level == "grid"].code]
    other = next(c for c in codes if c != busiest_grid(loaded_city))
    return make_worker(engine, other, "other-worker")


def new_incident(client: TestClient, city: DemoCity, code: str, **extra: Any) -> str:
    """A reported incident in grid ``code`` (filed by the admin client); its id."""
    lon, lat, _ = grid_point(city, code)
    made = client.post(
        "/incidents",
        json={"category": "sanitation", "location": {"lon": lon, "lat": lat}, **extra},
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def audit_count(engine: Engine, action: str, entity_id: str, entity: str = "incident") -> int:
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM audit_log "
                "WHERE action = :a AND entity_id = :e AND entity = :t"
            ),
            {"a": action, "e": entity_id, "t": entity},
        ).scalar_one()


def incident_row(engine: Engine, iid: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                text(
                    "SELECT status, responder_id, escalation_level, resolution_code, "
                    "accepted_at, arrived_at FROM incidents WHERE id = :i"
                ),
                {"i": iid},
            )
            .mappings()
            .one()
        )


# --- pages on a phone, and pages a role may not open ---------------------------------------------


def test_sign_in_page_fits_a_phone(client: TestClient) -> None:
    page = client.get("/login", headers={"X-API-Key": ""})
    assert page.status_code == 200
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    css = client.get("/static/pages/login.css").text
    assert "font-size: 16px" in css  # no zoom on focus on a phone
    assert "min-height: 48px" in css  # a thumb-sized button


@pytest.mark.parametrize(
    ("role", "path"),
    [("analyst", "/map/dispatch"), ("planner", "/map/dispatch"), ("dispatcher", "/app")],
)
def test_a_page_a_role_may_not_open_answers_a_page(
    client: TestClient, role_keys: dict, role: str, path: str
) -> None:
    page = client.get(path, headers={**as_role(role_keys, role), **HTML})
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "This page is not for your role" in page.text
    assert 'href="/app"' in page.text and 'action="/logout"' in page.text
    assert "content-security-policy" in page.headers
    # an API client (no text/html) still gets the problem document
    raw = client.get(path, headers=as_role(role_keys, role))
    assert problem(raw)["code"] == "forbidden"


def test_the_forbidden_page_speaks_the_browsers_language(
    client: TestClient, role_keys: dict
) -> None:
    headers = {**as_role(role_keys, "analyst"), **HTML, "Accept-Language": "zh-CN,zh;q=0.9"}
    page = client.get("/map/dispatch", headers=headers)
    assert page.status_code == 403 and '<html lang="zh-CN">' in page.text
    assert "此页面不对您的角色开放" in page.text and "换一个身份登录" in page.text
    assert "This page is not for your role" not in page.text
    assert "Sign in as someone else" not in page.text


def test_the_forbidden_page_escapes_what_it_shows(client: TestClient, role_keys: dict) -> None:
    from geo_service.web.pages import render_page

    shown = render_page("forbidden.html", detail="<script>x</script>", path="/x")
    assert "<script>x</script>" not in shown and "&lt;script&gt;" in shown


def test_the_phone_page_for_its_worker(
    client: TestClient, worker: dict, loaded_city: DemoCity
) -> None:
    page = client.get("/app", headers={**worker["headers"], **HTML})
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert f'data-responder="{worker["id"]}"' in page.text
    assert f'data-grid-id="{worker["grid_id"]}"' in page.text
    assert 'data-status="available"' in page.text
    assert 'name="viewport"' in page.text and 'rel="manifest"' in page.text
    assert '<option value="sanitation"' in page.text
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    worker_js = client.get("/app/sw.js")
    assert worker_js.headers["service-worker-allowed"] == "/app"
    assert worker_js.headers["content-type"].startswith("text/javascript")
    manifest = client.get("/app/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    body = manifest.json()
    assert body["start_url"] == "/app" and body["display"] == "standalone"
    for icon in body["icons"]:
        assert client.get(icon["src"]).status_code == 200


# --- lifecycle actions sent again are done once ---------------------------------------------------


def test_an_action_sent_again_with_its_key_is_done_once(
    client: TestClient, engine: Engine, loaded_city: DemoCity, worker: dict
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    sent = client.post(f"/incidents/{iid}/dispatch", json={"responder_id": worker["id"]})
    assert sent.status_code == 200, sent.text
    key = {"Idempotency-Key": f"accept-{uuid.uuid4()}"}
    first = client.post(f"/incidents/{iid}/accept", headers={**worker["headers"], **key})
    again = client.post(f"/incidents/{iid}/accept", headers={**worker["headers"], **key})
    assert first.status_code == again.status_code == 200, again.text
    assert again.json()["status"] == "accepted"
    assert again.json()["accepted_at"] == first.json()["accepted_at"]
    assert audit_count(engine, "accept", iid) == 1
    # without the key, a second accept is what it always was: a 409 naming what is allowed
    plain = client.post(f"/incidents/{iid}/accept", headers=worker["headers"])
    assert problem(plain)["allowed_actions"] == ["arrive", "resolve", "cancel", "escalate"]
    # the same key for another action is refused, and does nothing
    reused = client.post(f"/incidents/{iid}/arrive", headers={**worker["headers"], **key})
    assert problem(reused)["code"] == "idempotency-key-reused"
    assert incident_row(engine, iid)["status"] == "accepted"
    # keys are per user: the admin's equal key is another request (and a 409 here)
    other = client.post(f"/incidents/{iid}/accept", headers=key)
    assert other.status_code == 409
    # escalate twice with one key climbs once
    up = {"Idempotency-Key": f"up-{uuid.uuid4()}"}
    for _ in range(2):
        answer = client.post(
            f"/incidents/{iid}/escalate",
            json={"note": "needs the community office"},
            headers={**worker["headers"], **up},
        )
        assert answer.status_code == 200, answer.text
    assert incident_row(engine, iid)["escalation_level"] == 1
    assert audit_count(engine, "escalate", iid) == 1


def test_resolve_keeps_its_resolution_code(
    client: TestClient, engine: Engine, loaded_city: DemoCity, worker: dict
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    client.post(f"/incidents/{iid}/dispatch", json={"responder_id": worker["id"]})
    client.post(f"/incidents/{iid}/accept", headers=worker["headers"])
    # a resolution code on another action: 422 and nothing written
    wrong = client.post(
        f"/incidents/{iid}/arrive", json={"resolution_code": "settled"}, headers=worker["headers"]
    )
    assert problem(wrong)["status"] == 422
    assert incident_row(engine, iid)["arrived_at"] is None
    unknown = client.post(
        f"/incidents/{iid}/resolve", json={"resolution_code": "magic"}, headers=worker["headers"]
    )
    assert problem(unknown)["status"] == 422
    assert incident_row(engine, iid)["status"] == "accepted"
    done = client.post(
        f"/incidents/{iid}/resolve",
        json={"resolution_code": "settled", "note": "talked to both neighbours"},
        headers=worker["headers"],
    )
    assert done.status_code == 200, done.text
    assert done.json()["resolution_code"] == "settled"
    assert incident_row(engine, iid)["resolution_code"] == "settled"
    with engine.connect() as conn:
        diff = conn.execute(
            text("SELECT diff FROM audit_log WHERE action = 'resolve' AND entity_id = :i"),
            {"i": iid},
        ).scalar_one()
    assert diff["after"] == {"status": "resolved", "resolution_code": "settled"}
    assert diff["note"] == "talked to both neighbours"
    listed = client.get("/incidents", params={"grid_id": worker["grid_id"], "status": "resolved"})
    assert iid in {f["id"] for f in listed.json()["features"]}


def test_a_report_sent_again_is_one_incident_from_a_grid_worker(
    client: TestClient, engine: Engine, loaded_city: DemoCity, worker: dict
) -> None:
    lon, lat, _ = grid_point(loaded_city, worker["code"])
    body = {
        "category": "facilities",
        "priority": 3,
        "description": "broken streetlight at the gate",
        "location": {"lon": lon, "lat": lat},
        "source": "grid_worker",
    }
    key = {"Idempotency-Key": f"report-{uuid.uuid4()}"}
    first = client.post("/incidents", json=body, headers={**worker["headers"], **key})
    again = client.post("/incidents", json=body, headers={**worker["headers"], **key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["source"] == "grid_worker"
    with engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM incidents WHERE description = :d"),
            {"d": body["description"]},
        ).scalar_one()
    assert n == 1 and audit_count(engine, "create", first.json()["id"]) == 1


# --- photos ---------------------------------------------------------------------------------------


def photo_with_exif(size: tuple[int, int] = (1200, 900), fmt: str = "JPEG") -> bytes:
    """A photo carrying a phone's EXIF: make, model, time and a GPS position, rotated 90°
    by its orientation tag (so the stored photo is upright: height > width)."""
    image = Image.new("RGB", size, (200, 120, 40))
    for x in range(0, size[0], 40):
        image.paste((20, 60, 160), (x, 0, x + 10, size[1]))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X12"  # Model
    exif[0x0132] = "2026:03:02 09:58:00"  # DateTime
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (30.0, 35.0, 24.0)
    gps[3], gps[4] = "E", (114.0, 18.0, 0.0)
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif)
    return out.getvalue()


@pytest.fixture
def photo_dir(client: TestClient, tmp_path: Path) -> Iterator[Path]:
    """The app's photo store in a directory of the test's own."""
    state = client.app.state  # type: ignore[attr-defined]
    saved = getattr(state, "photo_store", None)
    state.photo_store = LocalPhotoStore(tmp_path / "photos")
    yield tmp_path / "photos"
    state.photo_store = saved


def upload(
    client: TestClient, iid: str, data: bytes, headers: dict, key: str | None = None, name="p.jpg"
) -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(
        f"/incidents/{iid}/photos",
        files={"file": (name, data, "image/jpeg")},
        headers={**headers, **extra},
    )


def test_a_photo_is_stored_upright_without_exif_once(
    client: TestClient, engine: Engine, loaded_city: DemoCity, worker: dict, photo_dir: Path
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    original = photo_with_exif()
    assert b"PhoneMaker" in original and Image.open(io.BytesIO(original)).getexif()
    key = f"photo-{uuid.uuid4()}"
    first = upload(client, iid, original, worker["headers"], key)
    assert first.status_code == 201, first.text
    again = upload(client, iid, original, worker["headers"], key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    photo = first.json()
    assert (photo["width"], photo["height"]) == (900, 1200)  # turned upright by its tag
    stored = list(photo_dir.glob("*/*.jpg"))
    assert len(stored) == 2  # the photo and its thumbnail, once
    served = client.get(photo["url"], headers=worker["headers"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    for data in (served.content, *(p.read_bytes() for p in stored)):
        image = Image.open(io.BytesIO(data))
        assert dict(image.getexif()) == {}
        assert "exif" not in image.info and "icc_profile" not in image.info
        assert b"PhoneMaker" not in data and b"Model X12" not in data
    thumb = client.get(photo["thumbnail_url"], headers=worker["headers"])
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
    listed = client.get(f"/incidents/{iid}/photos", headers=worker["headers"]).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == photo["id"]
    assert audit_count(engine, "create", photo["id"], "incident_photo") == 1


def test_the_same_photo_sent_twice_without_a_key_is_stored_once(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    worker: dict,
    role_keys: dict,
    photo_dir: Path,
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    original = photo_with_exif()
    first = upload(client, iid, original, worker["headers"])
    assert first.status_code == 201, first.text
    photo = first.json()
    again = upload(client, iid, original, worker["headers"])
    assert again.status_code == 200, again.text
    assert again.json() == photo
    assert again.headers["Location"] == photo["url"] == first.headers["Location"]
    # the same bytes from the dispatcher, under a key of their own: still the one photo
    keyed = upload(client, iid, original, as_role(role_keys, "dispatcher"), f"k-{uuid.uuid4()}")
    assert keyed.status_code == 200 and keyed.json()["id"] == photo["id"]
    # other bytes are another photo; the same bytes on another incident are that incident's
    other = upload(client, iid, photo_with_exif(size=(1000, 800)), worker["headers"])
    assert other.status_code == 201 and other.json()["id"] != photo["id"]
    iid2 = new_incident(client, loaded_city, worker["code"])
    elsewhere = upload(client, iid2, original, worker["headers"])
    assert elsewhere.status_code == 201 and elsewhere.json()["incident_id"] == iid2
    listed = client.get(f"/incidents/{iid}/photos", headers=worker["headers"]).json()
    assert [p["id"] for p in listed["data"]] == [photo["id"], other.json()["id"]]
    assert len(list(photo_dir.glob(f"{iid}/*.jpg"))) == 4  # two photos and their thumbnails
    assert audit_count(engine, "create", photo["id"], "incident_photo") == 1
    with engine.connect() as conn:
        audited = conn.execute(
            text("SELECT count(*) FROM audit_log WHERE entity = 'incident_photo'")
        ).scalar_one()
        hashes = conn.execute(
            text("SELECT content_sha256 FROM incident_photos WHERE id = :p"), {"p": photo["id"]}
        ).scalar_one()
    assert audited == 3  # the first, the other bytes, the other incident's
    assert hashes == hashlib.sha256(original).hexdigest()


def claims_pixels(width: int, height: int) -> bytes:
    """A small JPEG whose start-of-frame header is rewritten to claim ``width`` x ``height``."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(out, format="JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")  # SOF0: length(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_photos_bad_input_is_refused_and_writes_nothing(
    client: TestClient, engine: Engine, loaded_city: DemoCity, worker: dict, photo_dir: Path
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    not_image = upload(client, iid, b"%PDF-1.4 not a photo", worker["headers"])
    assert problem(not_image)["status"] == 415
    gif = io.BytesIO()
    Image.new("RGB", (10, 10)).save(gif, format="GIF")
    assert problem(upload(client, iid, gif.getvalue(), worker["headers"]))["status"] == 415
    truncated = photo_with_exif()[:2000]
    assert problem(upload(client, iid, truncated, worker["headers"]))["status"] == 415
    # a decompression bomb: 50 M pixels in a few kB, refused by its header
    bomb = io.BytesIO()
    Image.new("L", (10_000, 5_000)).save(bomb, format="PNG", optimize=True)
    assert len(bomb.getvalue()) < 200_000
    assert problem(upload(client, iid, bomb.getvalue(), worker["headers"]))["status"] == 413
    # a JPEG whose frame header claims 65000 x 65000 (past Pillow's own bomb limit, which
    # raises before our check could run: it was a 500)
    assert (
        problem(upload(client, iid, claims_pixels(65_000, 65_000), worker["headers"]))["status"]
        == 413
    )
    assert problem(upload(client, iid, b"", worker["headers"]))["status"] == 422
    missing = upload(client, str(uuid.uuid4()), photo_with_exif(), worker["headers"])
    assert problem(missing)["status"] == 404
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM incident_photos")).scalar_one()
    assert rows == 0 and not list(photo_dir.glob("*/*"))


def test_a_photo_over_the_size_limit_is_413(
    client: TestClient, loaded_city: DemoCity, worker: dict, photo_dir: Path
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    limit = client.app.state.settings.photos.max_bytes  # type: ignore[attr-defined]
    big = photo_with_exif() + b"\0" * limit  # a valid JPEG with trailing bytes past the limit
    answer = upload(client, iid, big, worker["headers"])
    assert answer.status_code == 413
    assert not list(photo_dir.glob("*/*"))


def test_photos_are_served_only_to_those_who_may_see_the_incident(
    client: TestClient,
    engine: Engine,
    loaded_city: DemoCity,
    worker: dict,
    other_worker: dict,
    role_keys: dict,
    photo_dir: Path,
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    photo = upload(client, iid, photo_with_exif(), worker["headers"]).json()
    url, listing = photo["url"], f"/incidents/{iid}/photos"
    # another grid's worker: the incident does not exist for them
    assert problem(client.get(url, headers=other_worker["headers"]))["status"] == 404
    assert problem(client.get(listing, headers=other_worker["headers"]))["status"] == 404
    other = upload(client, iid, photo_with_exif(), other_worker["headers"])
    assert problem(other)["status"] == 404
    # analysts and planners see incidents as data points: no photos
    for role in ("analyst", "planner", "analyst@district"):
        assert problem(client.get(url, headers=as_role(role_keys, role)))["status"] == 403
        assert problem(client.get(listing, headers=as_role(role_keys, role)))["status"] == 403
    # the dispatcher reads the incident with its description: the photo too
    assert client.get(url, headers=as_role(role_keys, "dispatcher")).status_code == 200
    # a photo id of another incident is 404 under this one
    iid2 = new_incident(client, loaded_city, worker["code"])
    assert client.get(f"/incidents/{iid2}/photos/{photo['id']}").status_code == 404
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM incident_photos")).scalar_one() == 1


def test_photos_go_with_their_incident(
    client: TestClient, engine: Engine, loaded_city: DemoCity, worker: dict, photo_dir: Path
) -> None:
    iid = new_incident(client, loaded_city, worker["code"])
    keep = new_incident(client, loaded_city, worker["code"])
    upload(client, iid, photo_with_exif(), worker["headers"])
    kept = upload(client, keep, photo_with_exif(), worker["headers"]).json()
    assert len(list(photo_dir.glob("*/*.jpg"))) == 4
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents WHERE id = :i"), {"i": iid})
    with Session(engine) as session:
        assert sweep_orphan_photos(session, LocalPhotoStore(photo_dir)) == 2
    left = sorted(p.name for p in photo_dir.glob("*/*.jpg"))
    assert left == sorted([f"{kept['id']}.jpg", f"{kept['id']}.thumb.jpg"])


# --- household visits -----------------------------------------------------------------------------


@pytest.fixture
def held_clock(client: TestClient) -> Iterator[datetime]:
    clock = client.app.state.runtime.clock  # type: ignore[attr-defined]
    clock.set(T0)
    yield T0
    clock.release()


@pytest.fixture
def visits_restored(engine: Engine) -> Iterator[None]:
    """Remove the visits a test records and put the households' flags back."""
    with engine.connect() as conn:
        flags = conn.execute(
            text("SELECT id, elderly_living_alone, needs_assistance FROM households")
        ).all()
    yield
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM household_visits"))
        conn.execute(
            text(
                "UPDATE households SET elderly_living_alone = :e, needs_assistance = :n "
                "WHERE id = :id AND (elderly_living_alone IS DISTINCT FROM :e "
                "OR needs_assistance IS DISTINCT FROM :n)"
            ),
            [{"id": f.id, "e": f.elderly_living_alone, "n": f.needs_assistance} for f in flags],
        )


def grid_households(engine: Engine, grid_id: int) -> list[int]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT id FROM households WHERE grid_id = :g ORDER BY id"), {"g": grid_id}
            ).scalars()
        )


def test_visits_record_once_and_list_what_is_due(
    client: TestClient,
    engine: Engine,
    worker: dict,
    held_clock: datetime,
    visits_restored: None,
) -> None:
    homes = grid_households(engine, worker["grid_id"])
    assert len(homes) >= 3
    listed = client.get(
        "/households/visits", params={"grid_id": worker["grid_id"]}, headers=worker["headers"]
    ).json()
    assert listed["today"] == "2026-03-02" and listed["period_days"] == 90
    assert listed["due"] == listed["count"] == len(homes)
    key = {"Idempotency-Key": f"visit-{uuid.uuid4()}"}
    body = {
        "visited_on": "2026-03-02",
        "outcome": "met",
        "elderly_living_alone": True,
        "needs_assistance": False,
    }
    path = f"/households/{homes[0]}/visits"
    first = client.post(path, json=body, headers={**worker["headers"], **key})
    again = client.post(path, json=body, headers={**worker["headers"], **key})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    # an old visit to another household: outside a 30-day period, within 90
    old = client.post(
        f"/households/{homes[1]}/visits",
        json={"visited_on": "2026-01-20", "outcome": "no_answer"},
        headers=worker["headers"],
    )
    assert old.status_code == 201, old.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM household_visits")).scalar_one() == 2
        flags = conn.execute(
            text("SELECT elderly_living_alone, needs_assistance FROM households WHERE id = :h"),
            {"h": homes[0]},
        ).one()
    assert tuple(flags) == (True, False)
    assert audit_count(engine, "create", str(first.json()["id"]), "household_visit") == 1
    rows = client.get(
        "/households/visits",
        params={"grid_id": worker["grid_id"], "period_days": 30},
        headers=worker["headers"],
    ).json()
    by_id = {r["id"]: r for r in rows["data"]}
    assert by_id[homes[0]]["last_visit_on"] == "2026-03-02" and not by_id[homes[0]]["due"]
    assert by_id[homes[1]]["last_visit_on"] == "2026-01-20" and by_id[homes[1]]["due"]
    assert by_id[homes[2]]["last_visit_on"] is None and by_id[homes[2]]["due"]
    assert rows["due"] == len(homes) - 1
    assert rows["data"][-1]["id"] == homes[0]  # longest unvisited first
    due = client.get(
        "/households/visits",
        params={"grid_id": worker["grid_id"], "due_only": "true"},
        headers=worker["headers"],
    ).json()
    assert homes[0] not in {r["id"] for r in due["data"]} and due["count"] == len(homes) - 2
    mine = client.get(
        "/households/visits/coverage", params={"period_days": 90}, headers=worker["headers"]
    ).json()
    assert mine["grids"] == [
        {
            "grid_id": worker["grid_id"],
            "code": worker["code"],
            "name": mine["grids"][0]["name"],
            "households": len(homes),
            "visited": 2,
            "coverage": round(2 / len(homes), 4),
            "exact": True,
        }
    ]


def test_visits_bad_input_writes_nothing(
    client: TestClient, engine: Engine, worker: dict, held_clock: datetime, visits_restored: None
) -> None:
    home = grid_households(engine, worker["grid_id"])[0]
    path = f"/households/{home}/visits"
    bad = [
        {"visited_on": "2026-03-03", "outcome": "met"},  # tomorrow in Wuhan
        {"visited_on": "2024-01-01", "outcome": "met"},  # more than a year back
        {"visited_on": "2026-03-01", "outcome": "chatted"},
        {"visited_on": "not a date", "outcome": "met"},
        {"visited_on": "2026-03-01", "outcome": "met", "name": "Li"},  # no other fields
        {"outcome": "met"},
    ]
    for body in bad:
        assert problem(client.post(path, json=body, headers=worker["headers"]))["status"] == 422
    assert problem(client.post("/households/999999999/visits", json=bad[0]))["status"] == 404
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM household_visits")).scalar_one() == 0


def test_household_rows_and_visits_stay_with_the_grids_own_worker(
    client: TestClient,
    engine: Engine,
    worker: dict,
    other_worker: dict,
    role_keys: dict,
    held_clock: datetime,
    visits_restored: None,
) -> None:
    home = grid_households(engine, worker["grid_id"])[0]
    listing = {"grid_id": worker["grid_id"]}
    visit = {"visited_on": "2026-03-01", "outcome": "met"}
    # another grid's worker: no rows, and the household does not exist for them
    got = client.get("/households/visits", params=listing, headers=other_worker["headers"])
    assert problem(got)["status"] == 403
    wrote = client.post(f"/households/{home}/visits", json=visit, headers=other_worker["headers"])
    assert problem(wrote)["status"] == 404
    # dispatchers and analysts: no rows, no visits
    for role in ("dispatcher", "analyst", "planner", "dispatcher@community"):
        headers = as_role(role_keys, role)
        got = client.get("/households/visits", params=listing, headers=headers)
        assert problem(got)["status"] == 403, role
        wrote = client.post(f"/households/{home}/visits", json=visit, headers=headers)
        assert problem(wrote)["status"] == 403, role
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM household_visits")).scalar_one() == 0
    # the aggregate is for everyone with households:aggregate, rounded for those without rows
    for n in range(3):
        client.post(
            f"/households/{grid_households(engine, worker['grid_id'])[n]}/visits",
            json=visit,
            headers=worker["headers"],
        )
    seen = client.get("/households/visits/coverage", headers=as_role(role_keys, "analyst")).json()
    grid = next(g for g in seen["grids"] if g["grid_id"] == worker["grid_id"])
    assert grid["exact"] is False
    assert grid["households"] is None or grid["households"] % 5 == 0
    assert grid["visited"] is None or grid["visited"] % 5 == 0
    assert {"id", "lon", "lat"}.isdisjoint(grid)
    exact = client.get("/households/visits/coverage").json()  # the admin sees rows
    admin_grid = next(g for g in exact["grids"] if g["grid_id"] == worker["grid_id"])
    assert admin_grid["exact"] is True and admin_grid["visited"] == 3


def test_visit_dates_follow_the_held_clock_in_the_citys_zone(
    client: TestClient, engine: Engine, worker: dict, visits_restored: None
) -> None:
    clock = client.app.state.runtime.clock  # type: ignore[attr-defined]
    # 23:30 UTC on 1 March is 07:30 on 2 March in Wuhan: the 2nd is today there
    clock.set(datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    try:
        home = grid_households(engine, worker["grid_id"])[0]
        answer = client.post(
            f"/households/{home}/visits",
            json={
                "visited_on": (date(2026, 3, 1) + timedelta(days=1)).isoformat(),
                "outcome": "met",
            },
            headers=worker["headers"],
        )
        assert answer.status_code == 201, answer.text
    finally:
        clock.release()


def test_sweep_photos_command_deletes_the_files_of_deleted_incidents(
    client: TestClient,
    engine: Engine,
    app_database_url: str,
    loaded_city: DemoCity,
    worker: dict,
    photo_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from geo_service.cli.main import app as cli

    iid = new_incident(client, loaded_city, worker["code"])
    upload(client, iid, photo_with_exif(), worker["headers"])
    monkeypatch.setenv("GEO_DATABASE_URL", app_database_url)  # as the application role
    monkeypatch.setenv("GEO_PHOTOS_DIR", str(photo_dir))
    kept = CliRunner().invoke(cli, ["sweep-photos"])
    assert kept.exit_code == 0, kept.output
    assert "deleted 0 photo file(s)" in kept.output
    assert len(list(photo_dir.glob("*/*.jpg"))) == 2
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM incidents WHERE id = :i"), {"i": iid})
    swept = CliRunner().invoke(cli, ["sweep-photos"])
    assert swept.exit_code == 0 and "deleted 2 photo file(s)" in swept.output
    assert not list(photo_dir.glob("*/*.jpg"))


def test_a_grid_worker_is_busy_only_while_holding_an_incident(
    client: TestClient, engine: Engine, loaded_city: DemoCity, worker: dict
) -> None:
    """Busy with nothing in hand would hide an idle worker from dispatch (a fresh user set it
    from the phone's API): a 409, nothing written; holding an incident, busy is theirs."""
    path = f"/responders/{worker['id']}"
    idle = client.patch(path, json={"status": "busy"}, headers=worker["headers"])
    assert problem(idle)["status"] == 409 and problem(idle)["assigned"] is False
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM responders WHERE id = :i"), {"i": worker["id"]}
        ).scalar_one()
    assert status == "available"
    iid = new_incident(client, loaded_city, worker["code"])
    sent = client.post(f"/incidents/{iid}/dispatch", json={"responder_id": worker["id"]})
    assert sent.status_code == 200, sent.text
    holding = client.patch(path, json={"status": "busy"}, headers=worker["headers"])
    assert holding.status_code == 200 and holding.json()["status"] == "busy"

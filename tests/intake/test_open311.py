"""Open311 GeoReport v2, checked against the request and response examples of the
specification (http://wiki.open311.org/GeoReport_v2)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from tests.conftest import as_role, grid_point

# The specification's examples, verbatim.
SPEC_SERVICE = {
    "service_code": "001",
    "service_name": "Cans left out 24x7",
    "description": "Garbage or recycling cans that have been left out for more than 24 hours "
    "after collection. Violators will be cited.",
    "metadata": False,
    "type": "realtime",
    "keywords": "lorem, ipsum, dolor",
    "group": "sanitation",
}
SPEC_POST = (
    "api_key=xyz&service_code=001&lat=37.76524078&long=-122.4212043&address_string=1234+5th+street"
    "&email=smit333%40sfgov.edu&device_id=tt222111&account_id=123456&first_name=john"
    "&last_name=smith&phone=111111111&description=A+large+sinkhole+is+destroying+the+street"
    "&media_url=http%3A%2F%2Fmyimages.com%2F1234.png"
)
SPEC_POST_RESPONSE = {"service_request_id": 293944, "service_notice": "…", "account_id": None}
SPEC_REQUEST = {
    "service_request_id": 638344,
    "status": "closed",
    "status_notes": "Duplicate request.",
    "service_name": "Sidewalk and Curb Issues",
    "service_code": "006",
    "description": None,
    "agency_responsible": None,
    "service_notice": None,
    "requested_datetime": "2010-04-14T06:37:38-08:00",
    "updated_datetime": "2010-04-14T06:37:38-08:00",
    "expected_datetime": "2010-04-15T06:37:38-08:00",
    "address": "8TH AVE and JUDAH ST",
    "address_id": 545483,
    "zipcode": 94122,
    "lat": 37.762221815,
    "long": -122.4651145,
    "media_url": "http://city.gov.s3.amazonaws.com/requests/media/638344.jpg",
}


def _form(lon: float, lat: float, key: str, code: str = "sanitation") -> dict[str, str]:
    form = dict(parse_qsl(SPEC_POST))
    form.update(api_key=key, service_code=code, lat=str(lat), long=str(lon))
    return form


def test_discovery_and_services_follow_the_spec(client: TestClient) -> None:
    found = client.get("/open311/v2/discovery.json").json()
    endpoint = found["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert {"text/xml", "application/json"} <= set(endpoint["formats"])
    services = TestClient(client.app).get("/open311/v2/services.json").json()  # public
    assert services and all(set(s) == set(SPEC_SERVICE) for s in services)
    assert {"sanitation", "traffic"} <= {s["service_code"] for s in services}


def test_post_get_and_find_a_request(
    client: TestClient, loaded_city: DemoCity, role_keys: dict, engine: Engine
) -> None:
    lon, lat, code = grid_point(loaded_city)
    anonymous = TestClient(client.app)  # the key travels in the form, as in the spec
    made = anonymous.post(
        "/open311/v2/requests.json", data=_form(lon, lat, role_keys["dispatcher"])
    )
    assert made.status_code == 201, made.text
    (receipt,) = made.json()
    assert set(receipt) == set(SPEC_POST_RESPONSE)
    rid = receipt["service_request_id"]
    with engine.connect() as conn:  # the contact fields were not kept anywhere
        stored = conn.execute(
            text("SELECT row_to_json(i)::text FROM incidents i WHERE id = CAST(:i AS uuid)"),
            {"i": rid},
        ).scalar_one()
    for personal in ("smit333", "john", "smith", "111111111", "tt222111", "123456"):
        assert personal not in stored
    assert "sinkhole" in stored
    now = datetime.now(UTC)
    listed = client.get(
        "/open311/v2/requests.json",
        params={
            "start_date": (now - timedelta(hours=1)).isoformat(),
            "end_date": (now + timedelta(minutes=1)).isoformat(),
            "status": "open",
        },
    ).json()
    mine = next(r for r in listed if r["service_request_id"] == rid)
    assert set(SPEC_REQUEST) <= set(mine)
    assert mine["status"] == "open" and mine["service_code"] == "sanitation"
    assert mine["grid"]["code"] == code and mine["community"]["code"] == code.rsplit("-", 1)[0]
    assert abs(mine["lat"] - lat) < 1e-9 and abs(mine["long"] - lon) < 1e-9
    (one,) = client.get(f"/open311/v2/requests/{rid}.json").json()
    assert one == mine
    closed = client.get(
        "/open311/v2/requests.json", params={"service_request_id": rid, "status": "closed"}
    ).json()
    assert [r["service_request_id"] for r in closed] == [rid]  # ids win over other filters
    codes = client.get("/open311/v2/requests.json", params={"service_code": "traffic"}).json()
    assert all(r["service_code"] == "traffic" for r in codes)


def _spec_error(response, status: int) -> str:  # noqa: ANN001
    """Assert the GeoReport v2 error list with this status; return its description."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    (error,) = response.json()
    assert set(error) == {"code", "description"} and error["code"] == status
    assert error["description"]
    return error["description"]


def test_the_receipt_speaks_the_clients_language(
    client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    anonymous = TestClient(client.app)
    form = _form(lon, lat, role_keys["dispatcher"])
    (chinese,) = anonymous.post(
        "/open311/v2/requests.json", data=form, headers={"Accept-Language": "zh-CN"}
    ).json()
    (english,) = anonymous.post(
        "/open311/v2/requests.json", data=form, headers={"Accept-Language": "en"}
    ).json()
    assert chinese["service_notice"].startswith("已受理") and "办理" in chinese["service_notice"]
    assert english["service_notice"].startswith("Received;")
    # a request read back names its service and status in the reader's language
    (read,) = client.get(
        f"/open311/v2/requests/{chinese['service_request_id']}.json",
        headers={"Accept-Language": "zh-CN"},
    ).json()
    assert read["service_name"] == "环境卫生与垃圾" and read["status_notes"] == "已上报"
    (read_en,) = client.get(
        f"/open311/v2/requests/{chinese['service_request_id']}.json",
        headers={"Accept-Language": "en"},
    ).json()
    assert read_en["status_notes"] == "reported" and read_en["service_name"] != "环境卫生与垃圾"


def test_bad_requests_answer_the_open311_error_list(
    client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    anonymous = TestClient(client.app)
    key = role_keys["dispatcher"]
    before = client.get("/open311/v2/requests.json").json()
    spec_as_is = anonymous.post(  # San Francisco, service 001: neither exists here
        "/open311/v2/requests.json",
        content=SPEC_POST.replace("xyz", key),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert "category" in _spec_error(spec_as_is, 400)
    cases = [
        (_form(lon, lat, key, code="potholes"), 400),
        (_form(-122.42, 37.76, key), 400),  # outside the city
        ({k: v for k, v in _form(lon, lat, key).items() if k not in ("lat", "long")}, 400),
        ({**_form(lon, lat, key), "lat": "north"}, 400),
        ({**_form(lon, lat, key), "media_url": "file:///etc/passwd"}, 400),
        ({**_form(lon, lat, key), "attribute[danger]": "maybe"}, 400),
        ({**_form(lon, lat, key), "attribute[colour]": "red"}, 400),
        (_form(lon, lat, "gs_nope_nope"), 403),  # the specification: invalid api_key
        ({k: v for k, v in _form(lon, lat, key).items() if k != "api_key"}, 403),
        (_form(lon, lat, role_keys["analyst"]), 403),  # may not file requests
    ]
    for form, status in cases:
        _spec_error(anonymous.post("/open311/v2/requests.json", data=form), status)
    assert client.get("/open311/v2/requests.json").json() == before  # nothing was written
    for params in (
        {"status": "pending"},
        {"start_date": "2026-W01-4"},  # a naive time is local time (issue 19); this is none
        {"service_request_id": "638344"},
    ):
        _spec_error(client.get("/open311/v2/requests.json", params=params), 400)
    _spec_error(client.get("/open311/v2/requests/00000000-0000-0000-0000-000000000000.json"), 404)
    _spec_error(client.get("/open311/v2/services/potholes.json"), 404)
    _spec_error(anonymous.get("/open311/v2/requests.json"), 403)  # reads need a key by default
    _spec_error(client.get("/open311/v2/requests.csv"), 400)
    worker = client.get("/open311/v2/requests.json", headers=as_role(role_keys, "grid_worker"))
    assert worker.status_code == 200  # their own grid only

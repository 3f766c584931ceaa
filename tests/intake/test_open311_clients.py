"""Open311 GeoReport v2 as real clients speak it (issue 17): XML on every endpoint, the
``georeport`` client from PyPI against a running server, requests shaped as FixMyStreet sends
them, what the client sent kept and returned, and the public read mode."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import xmltodict
from fastapi.testclient import TestClient
from georeport import GeoReport
from sqlalchemy import Engine, text

from geo_service.api.app import create_app
from geo_service.demo.city import DemoCity
from geo_service.settings import AuthSettings, Settings
from tests.conftest import grid_point

PHOTO = "https://photos.example.org/report/1234.jpg"


def _fms_form(lon: float, lat: float, key: str, **extra: str) -> dict[str, str]:
    """A POST as FixMyStreet's Open311 client sends it (perllib/Open311.pm): the key and the
    jurisdiction in the form, contact fields, address and photo, and attribute[...] answers."""
    form = {
        "api_key": key,
        "jurisdiction_id": "wuhan.example.gov",
        "service_code": "sanitation",
        "lat": f"{lat:.6f}",
        "long": f"{lon:.6f}",
        "description": "Rubbish piled at the corner for three days",
        "address_string": "江汉路 12号 (Jianghan Rd 12)",
        "email": "citizen@example.org",
        "first_name": "Li",
        "last_name": "Wei",
        "phone": "13800000000",
        "media_url": PHOTO,
        "attribute[landmark]": "opposite the bus stop",
        "attribute[danger]": "no",
    }
    return {**form, **extra}


def test_every_endpoint_speaks_xml(
    client: TestClient, loaded_city: DemoCity, role_keys: dict
) -> None:
    anonymous = TestClient(client.app)
    discovery = xmltodict.parse(anonymous.get("/open311/v2/discovery.xml").content)["discovery"]
    formats = discovery["endpoints"]["endpoint"]["formats"]["format"]
    assert "text/xml" in formats and "application/json" in formats
    services = xmltodict.parse(anonymous.get("/open311/v2/services.xml").content)
    listed = services["services"]["service"]
    assert {s["service_code"] for s in listed} >= {"sanitation", "traffic"}
    assert {s["metadata"] for s in listed} == {"true"}  # booleans as the spec writes them
    definition = xmltodict.parse(anonymous.get("/open311/v2/services/sanitation.xml").content)[
        "service_definition"
    ]
    attributes = definition["attributes"]["attribute"]
    assert [a["code"] for a in attributes] == ["landmark", "danger"]
    assert [v["key"] for v in attributes[1]["values"]["value"]] == ["yes", "no"]
    lon, lat, _ = grid_point(loaded_city)
    made = anonymous.post("/open311/v2/requests.xml", data=_fms_form(lon, lat, role_keys["admin"]))
    assert made.status_code == 201, made.text
    assert made.headers["content-type"].startswith("text/xml")
    receipt = xmltodict.parse(made.content)["service_requests"]["request"]
    rid = receipt["service_request_id"]
    assert receipt["service_notice"] and receipt["account_id"] is None
    one = xmltodict.parse(client.get(f"/open311/v2/requests/{rid}.xml").content)
    request = one["service_requests"]["request"]
    assert request["service_request_id"] == rid
    assert request["address"] == "江汉路 12号 (Jianghan Rd 12)"
    assert request["media_url"] == PHOTO
    assert request["status"] == "open"
    bad = anonymous.get("/open311/v2/requests/00000000-0000-0000-0000-000000000000.xml")
    assert bad.status_code == 403  # no key: the specification's 403, as XML
    error = xmltodict.parse(bad.content)["errors"]["error"]
    assert error["code"] == "403" and error["description"]


def test_what_the_client_sent_is_kept_and_contact_fields_are_not(
    client: TestClient, loaded_city: DemoCity, role_keys: dict, engine: Engine
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    anonymous = TestClient(client.app)
    made = anonymous.post("/open311/v2/requests.json", data=_fms_form(lon, lat, role_keys["admin"]))
    assert made.status_code == 201, made.text
    rid = made.json()[0]["service_request_id"]
    (shown,) = client.get(f"/open311/v2/requests/{rid}.json").json()
    assert shown["address"] == "江汉路 12号 (Jianghan Rd 12)" and shown["media_url"] == PHOTO
    with engine.connect() as conn:
        kept = conn.execute(
            text(
                "SELECT row_to_json(d)::text FROM service_request_details d "
                "WHERE incident_id = CAST(:i AS uuid)"
            ),
            {"i": rid},
        ).scalar_one()
        incident = conn.execute(
            text("SELECT row_to_json(i)::text FROM incidents i WHERE id = CAST(:i AS uuid)"),
            {"i": rid},
        ).scalar_one()
    assert "opposite the bus stop" in kept and "wuhan.example.gov" in kept
    for personal in ("citizen@example.org", "13800000000", '"Li"', "Wei"):
        assert personal not in kept and personal not in incident


def test_a_configured_jurisdiction_refuses_another(
    settings: Settings, role_keys: dict, loaded_city: DemoCity
) -> None:
    auth = settings.auth.model_copy(update={"open311_jurisdiction": "wuhan.example.gov"})
    with TestClient(create_app(settings.model_copy(update={"auth": auth}))) as c:
        assert c.get("/open311/v2/services.json?jurisdiction_id=wuhan.example.gov").is_success
        other = c.get("/open311/v2/services.json?jurisdiction_id=sfgov.org")
        assert other.status_code == 404 and other.json()[0]["code"] == 404
        lon, lat, _ = grid_point(loaded_city)
        form = _fms_form(lon, lat, role_keys["admin"], jurisdiction_id="sfgov.org")
        assert c.post("/open311/v2/requests.json", data=form).status_code == 404


@pytest.fixture(scope="module")
def public_server(settings: Settings, loaded_city: DemoCity) -> Iterator[str]:
    """A server with the public read mode on, for a client that sends no key."""
    import uvicorn

    auth = AuthSettings(**{**settings.auth.model_dump(), "open311_public_read": True})
    app = create_app(settings.model_copy(update={"auth": auth}))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(400):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}/open311/v2"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_the_georeport_client_reads_everything(
    public_server: str,
    client: TestClient,
    loaded_city: DemoCity,
    role_keys: dict,
    output_format: str,
) -> None:
    lon, lat, _ = grid_point(loaded_city)
    made = client.post("/open311/v2/requests.json", data=_fms_form(lon, lat, role_keys["admin"]))
    rid = made.json()[0]["service_request_id"]
    geo = GeoReport(public_server, jurisdiction="wuhan.example.gov", output_format=output_format)
    services = geo.get_service_list()
    assert "sanitation" in {s["service_code"] for s in services}
    definition = geo.get_service_definition("sanitation")
    assert definition["service_code"] == "sanitation"
    requests_ = geo.get_service_requests(service_code="sanitation", status="open")
    requests_ = requests_ if isinstance(requests_, list) else [requests_]
    assert rid in {r["service_request_id"] for r in requests_}
    one = geo.get_service_request(rid)
    assert one["service_request_id"] == rid and one["service_code"] == "sanitation"
    # public fields only: no description, address, photo or handling area; ~100 m location
    for hidden in ("description", "address", "media_url"):
        assert one[hidden] in (None, "")
    assert "grid" not in one and "community" not in one
    assert abs(float(one["lat"]) - round(lat, 3)) < 1e-9


def test_without_public_read_a_keyless_client_is_refused(
    client: TestClient, loaded_city: DemoCity
) -> None:
    anonymous = TestClient(client.app)
    response = anonymous.get("/open311/v2/requests.json")
    assert response.status_code == 403
    assert response.json()[0]["code"] == 403

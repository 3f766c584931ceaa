"""The API against its own OpenAPI document (schemathesis), three ways:

- every operation declares a typed schema for its success answers (a model, not a free-form
  object; HTML, tiles and files declare their media type);
- every operation, called once with valid input, answers 2xx with a body that matches the
  schema it declares (so every declared model is checked against a real body);
- property-based fuzzing as admin and analyst: no 5xx, and every response conforms (all of
  schemathesis' checks but "valid data is accepted"). Bounded: a few examples per operation,
  derandomised, so the run takes about a minute.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from PIL import Image
from schemathesis.checks import positive_data_acceptance
from sqlalchemy import Engine, text

from geo_service.demo.city import DemoCity
from geo_service.vocabulary import OPEN_INCIDENT_STATUSES
from tests.conftest import as_role, grid_point

EXAMPLES_PER_OPERATION = 12
TIMEOUT_S = 120  # heavy layers on a busy machine (the default of 10 s fails for load alone)
# Operations that change the city for every later test (a published version cannot be
# unpublished) are fuzzed for input validation only: their bodies never pass validation here.
# multipart uploads: covered by the import and photo tests
SKIP = {("POST", "/imports/{kind}"), ("POST", "/incidents/{incident_id}/photos")}
JSON_TYPES = ("application/json", "application/geo+json")
# Answered with 2xx on valid input nowhere in this file, and why.
NOT_CALLED = {
    ("POST", "/boundaries/versions/{version_id}/publish"): "publishing cannot be undone",
    # it needs a version scheduled by a publish, which this file never makes (above); the
    # service is tested in tests/boundaries/test_boundary_versions.py, refusals in
    # tests/boundaries/test_unschedule_api.py
    ("POST", "/boundaries/versions/{version_id}/unschedule"): "needs a scheduled version",
    # it needs a draft and a point in a street block next to another grid of its parent;
    # moves and refusals are tested in tests/planning/test_block_edits.py
    ("POST", "/boundaries/versions/{version_id}/edits"): "needs a draft's block by a grid",
}


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method.upper(), path, operation


def _untyped(schema: dict[str, Any] | None, media_type: str) -> str | None:
    """Why ``schema`` does not type a ``media_type`` body (None when it does)."""
    if not schema:
        return "no schema"
    if media_type in JSON_TYPES:
        if "$ref" in schema:
            return None
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            whys = [_untyped(b, media_type) for b in branches if b.get("type") != "null"]
            return next((why for why in whys if why), None)
        if schema.get("type") == "array" and schema.get("items"):
            return _untyped(schema["items"], media_type)
        if schema.get("type") == "object" and schema.get("properties"):
            return None
        return f"free-form {schema}"
    if schema.get("type") == "string":  # HTML pages, tiles, files
        return None
    return f"unexpected {schema}"


def test_every_operation_declares_a_typed_success_schema(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    missing = []
    for method, path, operation in _operations(spec):
        ok = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        if not ok:
            missing.append(f"{method} {path}: no 2xx response")
        for status, response in ok.items():
            content = response.get("content") or {}
            if not content:
                missing.append(f"{method} {path} {status}: no media type")
            for media_type, body in content.items():
                why = _untyped(body.get("schema"), media_type)
                if why:
                    missing.append(f"{method} {path} {status} {media_type}: {why}")
    assert not missing, "\n".join(missing)


# --- every operation once, with valid input ------------------------------------------------


def _insert_runs(engine: Engine) -> dict[str, int]:
    """A batch run of each read shape (cells, workload rows, crosswalk rows, proposals),
    written directly: the batch tests cover computing them."""
    runs = {}
    with engine.begin() as conn:
        grid_id, cell, h3_name = conn.execute(
            text(
                "SELECT a.id, h3_parent(i.h3, 8), to_hex(h3_parent(i.h3, 8)) FROM incidents i "
                "JOIN areas a ON a.id = i.grid_id LIMIT 1"
            )
        ).one()
        for kind, summary in (
            ("hotspots", {"cells": 1}),
            ("workload", {"max_over_mean": 1.0}),
            ("reattribute", {"rows": {"households": 3}, "changed_grid_ids": {}}),
            ("proposals", {"drafts": []}),
        ):
            runs[kind] = conn.execute(
                text(
                    "INSERT INTO batch_runs (kind, engine, params, summary, partitions, seconds,"
                    " created_by) VALUES (:k, 'local', CAST(:p AS jsonb), CAST(:s AS jsonb), 1,"
                    " 0.5, 'tests') RETURNING id"
                ),
                {
                    "k": kind,
                    "p": json.dumps({"res": 8, "window_days": 90, "weights": {}}),
                    "s": json.dumps(summary),
                },
            ).scalar_one()
        conn.execute(
            text(
                "INSERT INTO batch_cells (run_id, cell, h3, count, z, p, p_fdr, class, geom) "
                "VALUES (:r, :c, :h, 4, 2.5, 0.01, 0.02, 'Hot Spot - 95% Confidence', "
                "ST_Transform(ST_Buffer(ST_SetSRID(ST_MakePoint(0, 0), 4326), 0.001), 3857))"
            ),
            {"r": runs["hotspots"], "c": cell, "h": h3_name},
        )
        conn.execute(
            text("INSERT INTO batch_workload VALUES (:r, :g, 12.5, 10, 40, 3, 0.25, 20.75)"),
            {"r": runs["workload"], "g": grid_id},
        )
        conn.execute(
            text("INSERT INTO batch_crosswalk VALUES (:r, 'households', :g, :g, 40)"),
            {"r": runs["reattribute"], "g": grid_id},
        )
    return runs


def _insert_jobs(engine: Engine) -> list[str]:
    """Jobs in each state a client can meet."""
    now = datetime.now(UTC)
    rows = [
        ("running", 0.5, "atomizing", None, None),
        ("done", 1.0, None, {"version_id": 1, "metrics": {"grids": 3}}, None),
        (
            "failed",
            1.0,
            "internal error",
            None,
            {"status": 500, "code": "internal-error", "detail": "RuntimeError"},
        ),
    ]
    ids = []
    with engine.begin() as conn:
        for status, progress, message, result, error in rows:
            ids.append(
                str(
                    conn.execute(
                        text(
                            "INSERT INTO jobs (kind, status, progress, message, request, result,"
                            " error, created_by, created_at, updated_at) VALUES ('proposal', :s,"
                            " :p, :m, '{}', CAST(:r AS jsonb), CAST(:e AS jsonb), 'tests', :t,"
                            " :t) RETURNING id"
                        ),
                        {
                            "s": status,
                            "p": progress,
                            "m": message,
                            "r": None if result is None else json.dumps(result),
                            "e": None if error is None else json.dumps(error),
                            "t": now,
                        },
                    ).scalar_one()
                )
            )
    return ids


class Caller:
    """Calls operations by (method, path) and validates each answer against its schema."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
        self.operations = {
            (op.method.upper(), op.path): op
            for op in (r.ok() for r in self.schema.get_all_operations())
        }
        self.base_url = base_url
        self.headers = headers
        self.called: set[tuple[str, str]] = set()
        self.failures: list[str] = []

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        """``kwargs``: path_parameters, query, body, media_type (as schemathesis' Case)."""
        operation = self.operations[(method, path)]
        self.called.add((method, path))
        case = operation.Case(**kwargs)
        response = case.call(base_url=self.base_url, headers=self.headers, timeout=TIMEOUT_S)
        return self.check(case.formatted_path, operation, response, case)

    def check(
        self, label: str, operation: Any, response: requests.Response, case: Any = None
    ) -> requests.Response | None:
        """Record a failure unless ``response`` is 2xx and conforms."""
        if not 200 <= response.status_code < 300:
            self.failures.append(f"{label} -> {response.status_code}: {response.text[:300]}")
            return None
        try:
            if case is not None:
                case.validate_response(response, excluded_checks=[positive_data_acceptance])
            else:
                operation.validate_response(response)
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            self.failures.append(f"{label}: {exc}"[:2000])
        return response


def _call_everything(call: Caller, engine: Engine, city: DemoCity, live_server: str) -> None:
    lon, lat, grid_code = grid_point(city)
    with engine.connect() as conn:
        grid_id, community_id, community_code, version = conn.execute(
            text(
                "SELECT g.id, c.id, c.code, g.version_id FROM areas g "
                "JOIN areas c ON c.id = g.parent_id WHERE g.code = :g "
                "AND g.version_id = (SELECT max(version_id) FROM areas)"
            ),
            {"g": grid_code},
        ).one()
        category = conn.execute(text("SELECT code FROM categories LIMIT 1")).scalar_one()
        responder_id, responder_status = conn.execute(
            text("SELECT id, status FROM responders ORDER BY id LIMIT 1")
        ).one()
        incident_id = str(
            conn.execute(text("SELECT id FROM incidents ORDER BY reported_at LIMIT 1")).scalar()
        )
    week_ago = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    get: Callable[..., requests.Response | None] = lambda path, **kw: call("GET", path, **kw)  # noqa: E731

    # health, auth, areas, incidents, dispatch, households, boundaries, audit, open311
    get("/health")
    call(
        "POST",
        "/auth/token",
        body={"grant_type": "client_credentials", "client_secret": call.headers["X-API-Key"]},
        media_type="application/x-www-form-urlencoded",
    )
    get("/areas", query={"level": "community"})
    get("/areas/lookup", query={"lon": lon, "lat": lat})
    get("/areas/{area_id}", path_parameters={"area_id": grid_id})
    created = call(
        "POST",
        "/incidents",
        body={"category": category, "location": {"lon": lon, "lat": lat}},
        media_type="application/json",
    )
    new_id = created.json()["id"] if created is not None else incident_id
    get("/incidents", query={"limit": 5})
    get("/incidents/{incident_id}", path_parameters={"incident_id": incident_id})
    get("/incidents/{incident_id}/candidates", path_parameters={"incident_id": new_id})
    # the dispatcher's console: counts, a page, and a reassignment between two free responders
    get("/console/summary")
    get("/console/incidents", query={"limit": 5})
    get("/console/incidents", query={"limit": 5, "view": "resolved"})
    get("/console/incidents/{incident_id}", path_parameters={"incident_id": new_id})
    with engine.connect() as conn:
        free = (
            conn.execute(
                text(
                    "SELECT id FROM responders r WHERE status = 'available' AND NOT EXISTS "
                    "(SELECT 1 FROM incidents i WHERE i.responder_id = r.id "
                    "AND i.status = ANY(:open)) ORDER BY id LIMIT 2"
                ),
                {"open": list(OPEN_INCIDENT_STATUSES)},
            )
            .scalars()
            .all()
        )
    call(
        "POST",
        "/incidents/{incident_id}/{action}",
        path_parameters={"incident_id": new_id, "action": "dispatch"},
        body={"responder_id": free[0]},
        media_type="application/json",
    )
    call(
        "POST",
        "/console/incidents/{incident_id}/reassign",
        path_parameters={"incident_id": new_id},
        body={"responder_id": free[1], "note": "schema test"},
        media_type="application/json",
    )
    call(
        "POST",
        "/incidents/{incident_id}/{action}",
        path_parameters={"incident_id": new_id, "action": "cancel"},
        body={"note": "schema test"},
        media_type="application/json",
    )
    call(
        "POST",
        "/responders/positions",
        body={"positions": [{"id": responder_id, "lon": lon, "lat": lat, "at": week_ago}]},
        media_type="application/json",
    )
    get("/responders")
    get("/responders/nearest", query={"lon": lon, "lat": lat})
    call(
        "PATCH",
        "/responders/{responder_id}",
        path_parameters={"responder_id": responder_id},
        body={"status": responder_status},
        media_type="application/json",
    )
    get("/households", query={"grid_id": grid_id})
    get("/households/aggregate", query={"level": "community"})
    get("/boundaries/versions")
    get("/boundaries/versions/{version_id}/validation", path_parameters={"version_id": version})
    call(
        "POST",
        "/boundaries/versions/{version_id}/validate",
        path_parameters={"version_id": version},
    )
    get("/boundaries/versions/{a}/diff/{b}", path_parameters={"a": version, "b": version})
    get(
        "/boundaries/versions/{version_id}/export",
        path_parameters={"version_id": version},
        query={"format": "csv", "level": "community"},
    )
    get("/audit", query={"limit": 5})
    # the category taxonomy (issue 19): the test's own category, removed again by the caller
    get("/categories", query={"include_retired": True})
    call(
        "POST",
        "/categories",
        body={
            "code": "schema_test",
            "names": {"en": "Schema test", "zh-CN": "模式测试"},
            "handling_effort_min": 10,
        },
        media_type="application/json",
    )
    code = {"code": "schema_test"}
    call(
        "PATCH",
        "/categories/{code}",
        path_parameters=code,
        body={"names": {"zh-CN": "模式测试二"}, "resolution_target_min": 60},
        media_type="application/json",
    )
    call("POST", "/categories/{code}/retire", path_parameters=code)
    call("POST", "/categories/{code}/restore", path_parameters=code)
    json_ = {"fmt": "json"}
    get("/open311/v2/discovery.{fmt}", path_parameters=json_)
    get("/open311/v2/services.{fmt}", path_parameters=json_)
    get(
        "/open311/v2/services/{service_code}.{fmt}",
        path_parameters={**json_, "service_code": category},
    )
    get("/open311/v2/requests.{fmt}", path_parameters=json_)
    posted = call(
        "POST",
        "/open311/v2/requests.{fmt}",
        path_parameters=json_,
        body={
            "service_code": category,
            "lat": lat,
            "long": lon,
            "description": "schema test",
            "address_string": "1 Test Road",
            "media_url": "https://photos.example.org/1.jpg",
        },
        media_type="application/x-www-form-urlencoded",
    )
    request_id = posted.json()[0]["service_request_id"] if posted is not None else incident_id
    get(
        "/open311/v2/requests/{request_id}.{fmt}",
        path_parameters={**json_, "request_id": request_id},
    )

    # layers: heatmaps, hot spots, tiles, OGC API - Features, map pages
    runs = _insert_runs(engine)
    get("/heatmap/h3")
    get("/heatmap/h3", query={"format": "json", "res": 7})
    get("/heatmap/h3", query={"res": 9, "bbox": f"{lon - 0.01},{lat - 0.01},{lon},{lat}"})
    get("/heatmap/grids", query={"level": "community"})
    get("/hotspots", query={"res": 7})
    get("/hotspots", query={"res": 7, "method": "permutation", "permutations": 99})
    get("/hotspots/grids")
    get("/hotspots/emerging", query={"res": 7})
    get("/hotspots/download", query={"res": 7})
    get("/hotspots/download", query={"res": 7, "format": "gpkg"})
    get("/hotspots/emerging/download", query={"res": 7, "format": "csv-xy"})
    get("/heatmap/download", query={"res": 7, "format": "fgb"})
    get("/tiles/{layer}.json", path_parameters={"layer": "heatmap"})
    get(
        "/tiles/{layer}/{z}/{x}/{y}.mvt",
        path_parameters={"layer": "grids", "z": 0, "x": 0, "y": 0},
    )
    for page in ("/map", "/map/heatmap", "/map/dispatch", "/map/planner"):
        get(page)
    get("/")
    get("/conformance")
    get("/collections")
    get("/collections/{collection_id}", path_parameters={"collection_id": "grids"})
    for collection in ("grids", "heatmap-h3-res8", "hotspots-h3-res8", "batch-hotspots"):
        get(
            "/collections/{collection_id}/items",
            path_parameters={"collection_id": collection},
            query={"limit": 3, "datetime": f"{week_ago}/.."},
        )
    get(
        "/collections/{collection_id}/items/{feature_id}",
        path_parameters={"collection_id": "grids", "feature_id": str(grid_id)},
    )

    # batch runs (the OGC batch collection above serves the newest hotspots run) and jobs
    get("/analytics/runs")
    for run_id in runs.values():
        get("/analytics/runs/{run_id}", path_parameters={"run_id": run_id})
    for job_id in _insert_jobs(engine):
        get("/jobs/{job_id}", path_parameters={"job_id": job_id})

    # the managers' reports (issue 19): the JSON at two levels, a file, the page
    get("/reports/performance")
    get("/reports/performance", query={"level": "community", "since": week_ago[:10]})
    get("/reports/performance", query={"format": "csv"})
    get("/reports")

    # planning: workload at two levels, and a proposal job followed to its end
    get("/workload")
    get("/workload", query={"level": "community"})
    get("/workload", query={"version_id": version})
    accepted = call(
        "POST",
        "/boundaries/proposals",
        body={"scope": [community_code]},
        media_type="application/json",
    )
    if accepted is not None:
        job_id = accepted.json()["job_id"]
        deadline = time.time() + 120
        while time.time() < deadline:
            job = get("/jobs/{job_id}", path_parameters={"job_id": job_id})
            if job is None or job.json()["status"] in ("done", "failed"):
                break
            time.sleep(0.5)
        if job is not None and job.json()["status"] == "done":  # the draft it left, deleted
            call(
                "DELETE",
                "/boundaries/versions/{version_id}",
                path_parameters={"version_id": job.json()["result"]["version_id"]},
            )

    # the grid worker's page, household visits and incident photos (issue 20)
    get("/app")
    get("/households/visits", query={"grid_id": grid_id})
    get("/households/visits/coverage")
    with engine.connect() as conn:
        home, today = conn.execute(
            text(
                "SELECT (SELECT id FROM households WHERE grid_id = :g ORDER BY id LIMIT 1), "
                "CAST(timezone('Asia/Shanghai', now()) AS date)"
            ),
            {"g": grid_id},
        ).one()
    visit = call(
        "POST",
        "/households/{household_id}/visits",
        path_parameters={"household_id": home},
        body={"visited_on": today.isoformat(), "outcome": "met"},  # no flags: none change
        media_type="application/json",
    )
    if visit is not None:  # visits are not among the tables tests clean up
        with engine.begin() as conn:
            conn.execute(
                text("DELETE FROM household_visits WHERE id = :v"), {"v": visit.json()["id"]}
            )
    photo_op = call.operations[("POST", "/incidents/{incident_id}/photos")]
    call.called.add(("POST", "/incidents/{incident_id}/photos"))
    jpeg = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 140, 200)).save(jpeg, format="JPEG")
    stored = call.check(
        f"POST /incidents/{new_id}/photos",
        photo_op,
        requests.post(
            f"{live_server}/incidents/{new_id}/photos",
            headers=call.headers,
            timeout=TIMEOUT_S,
            files={"file": ("schema-test.jpg", jpeg.getvalue(), "image/jpeg")},
        ),
    )
    get("/incidents/{incident_id}/photos", path_parameters={"incident_id": new_id})
    get("/incidents/{incident_id}/escalations", path_parameters={"incident_id": new_id})
    if stored is not None:
        get(
            "/incidents/{incident_id}/photos/{photo_id}",
            path_parameters={"incident_id": new_id, "photo_id": stored.json()["id"]},
            query={"size": "thumbnail"},
        )

    # ingest: a multipart upload (schemathesis' Case does not build multipart bodies)
    operation = call.operations[("POST", "/imports/{kind}")]
    call.called.add(("POST", "/imports/{kind}"))
    csv = (
        "category,lon,lat,reported_at,description\n"
        f"{category},{lon},{lat},{week_ago},schema test\n"
        f"no-such-category,{lon},{lat},{week_ago},rejected\n"
    )
    upload = requests.post(
        f"{live_server}/imports/incidents",
        headers=call.headers,
        timeout=TIMEOUT_S,
        files={"file": ("schema-test.csv", csv.encode(), "text/csv")},
    )
    call.check("POST /imports/incidents", operation, upload)


def test_every_operation_answers_valid_input_with_its_declared_schema(
    live_server: str, role_keys: dict[str, str], engine: Engine, loaded_city: DemoCity
) -> None:
    call = Caller(live_server, as_role(role_keys, "admin"))
    with engine.connect() as conn:
        started = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    try:
        with categories_restored(engine):
            _call_everything(call, engine, loaded_city, live_server)
    finally:
        with engine.begin() as conn:  # jobs are not among the tables tests clean up
            conn.execute(text("DELETE FROM jobs WHERE created_at >= :t"), {"t": started})
    # a planner sees homes through disclosure control: rounded counts, nulls where 0
    planner = Caller(live_server, as_role(role_keys, "planner"))
    runs = _insert_runs(engine)
    planner("GET", "/workload")
    planner("GET", "/analytics/runs")
    for kind in ("workload", "reattribute"):
        planner("GET", "/analytics/runs/{run_id}", path_parameters={"run_id": runs[kind]})
    call.failures += [f"as planner: {f}" for f in planner.failures]
    not_called = set(call.operations) - call.called - set(NOT_CALLED)
    assert not not_called, f"operations never called with valid input: {sorted(not_called)}"
    assert not call.failures, "\n\n".join(call.failures)


# --- fuzzing -------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "analyst"])
def test_api_conforms_to_its_openapi_under_fuzzing(
    live_server: str, role_keys: dict[str, str], role: str, engine: Engine
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server}/openapi.json")
    headers = as_role(role_keys, role)
    failures: list[str] = []
    operations = 0
    with categories_restored(engine):  # admins' fuzzed POST /categories may create some
        operations = _fuzz_all(schema, live_server, headers, failures)
    assert operations >= 15
    assert not failures, "\n\n".join(failures)


def _fuzz_all(schema: Any, live_server: str, headers: dict[str, str], failures: list[str]) -> int:
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(base_url=live_server, headers=headers, timeout=TIMEOUT_S)
            # the limits are out of the way here (tests/conftest.py settings): a 429 would
            # mean an operation was not exercised
            assert response.status_code != 429, f"{case.method} {case.formatted_path} -> 429"
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: "
                f"{response.text[:300]}"
            )
            # Schema-valid is not always domain-valid (a category must exist, a point must
            # lie in the city), so "valid data is accepted" is the one check left out.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect all operations' failures
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:1500])
    return operations


@contextmanager
def categories_restored(engine: Engine) -> Iterator[None]:
    """Categories as they were: the tests' and the fuzzer's own removed (with what was filed
    under them), the existing ones' names, targets and retirement put back."""
    with engine.connect() as conn:
        saved = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM categories"))]
    try:
        yield
    finally:
        codes = [r["code"] for r in saved]
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM incidents WHERE NOT (category = ANY(:c))"), {"c": codes})
            conn.execute(text("DELETE FROM categories WHERE NOT (code = ANY(:c))"), {"c": codes})
            for row in saved:
                conn.execute(
                    text(
                        "UPDATE categories SET name = :name, names = CAST(:names AS jsonb), "
                        "handling_effort_min = :handling_effort_min, response_target_s = "
                        ":response_target_s, resolution_target_min = :resolution_target_min, "
                        "default_priority = :default_priority, retired_at = :retired_at "
                        "WHERE code = :code"
                    ),
                    {**row, "names": json.dumps(row["names"], ensure_ascii=False)},
                )

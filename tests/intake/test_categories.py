"""The category taxonomy managed through the API and the CLI (issue 19): names per language,
renaming one language at a time, retiring and restoring, targets and handling effort; every
change authenticated, authorized, audited; bad input a 4xx problem that writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from geo_service.cli.main import app as cli
from geo_service.demo.city import DemoCity
from tests.conftest import as_role, grid_point, problem

ZH = {"Accept-Language": "zh-CN"}
NOISE = {
    "code": "noise",
    "names": {"en": "Noise complaints", "zh-CN": "噪声扰民"},
    "group": "order",
    "default_priority": 3,
    "handling_effort_min": 35,
    "resolution_target_min": 240,
}


@pytest.fixture
def taxonomy(engine: Engine) -> Iterator[None]:
    """Put the categories back as they were (the tests rename, retire and add some)."""
    with engine.connect() as conn:
        saved = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM categories"))]
    yield
    with engine.begin() as conn:
        codes = [r["code"] for r in saved]
        # incidents of the tests' own categories (clean_writes would remove them later)
        conn.execute(
            text("DELETE FROM incidents WHERE NOT (category = ANY(:codes))"), {"codes": codes}
        )
        conn.execute(
            text("DELETE FROM categories WHERE NOT (code = ANY(:codes))"), {"codes": codes}
        )
        for row in saved:
            conn.execute(
                text(
                    'UPDATE categories SET name = :name, names = CAST(:names AS jsonb), "group" '
                    "= :group, default_priority = :default_priority, handling_effort_min = "
                    ":handling_effort_min, response_target_s = :response_target_s, "
                    "resolution_target_min = :resolution_target_min, retired_at = :retired_at "
                    "WHERE code = :code"
                ),
                {**row, "names": _json(row["names"])},
            )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _audits(engine: Engine, code: str) -> list[tuple[str, str, dict]]:
    with engine.connect() as conn:
        return [
            (r.who, r.action, r.diff)
            for r in conn.execute(
                text(
                    "SELECT who, action, diff FROM audit_log WHERE entity = 'categories' "
                    "AND entity_id = :code ORDER BY id"
                ),
                {"code": code},
            )
        ]


def _count(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT count(*) FROM categories")).scalar_one(),
            conn.execute(
                text("SELECT count(*) FROM audit_log WHERE entity = 'categories'")
            ).scalar_one(),
        )


def test_list_names_categories_in_the_callers_language(client: TestClient) -> None:
    zh = client.get("/categories", headers=ZH)
    assert zh.status_code == 200, zh.text
    body = zh.json()
    assert body["count"] == len(body["data"]) >= 7
    traffic = next(c for c in body["data"] if c["code"] == "traffic")
    assert traffic["name"] == "交通与停车"
    assert traffic["names"] == {"en": "Traffic and parking", "zh-CN": "交通与停车"}
    assert traffic["retired"] is False and traffic["retired_at"] is None
    en = client.get("/categories", headers={"Accept-Language": "en"}).json()
    assert next(c for c in en["data"] if c["code"] == "traffic")["name"] == "Traffic and parking"


def test_create_rename_set_targets_retire_and_restore(
    client: TestClient, engine: Engine, taxonomy: None, loaded_city: DemoCity
) -> None:
    made = client.post("/categories", json=NOISE, headers=ZH)
    assert made.status_code == 201, made.text
    assert made.json()["name"] == "噪声扰民"
    assert made.json()["handling_effort_min"] == 35

    # rename in one language: the other stays; `name` follows the English one
    renamed = client.patch("/categories/noise", json={"names": {"zh-CN": "噪音投诉"}}, headers=ZH)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["names"] == {"en": "Noise complaints", "zh-CN": "噪音投诉"}
    targets = client.patch(
        "/categories/noise",
        json={"handling_effort_min": 50, "response_target_s": 300, "resolution_target_min": None},
    )
    assert targets.status_code == 200, targets.text
    assert (targets.json()["handling_effort_min"], targets.json()["response_target_s"]) == (50, 300)
    assert targets.json()["resolution_target_min"] is None
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT name, handling_effort_min FROM categories WHERE code = 'noise'")
        ).one()
    assert tuple(row) == ("Noise complaints", 50)

    # retired: listed only on request, and no new incident may take it
    retired = client.post("/categories/noise/retire")
    assert retired.status_code == 200 and retired.json()["retired"] is True
    assert "noise" not in {c["code"] for c in client.get("/categories").json()["data"]}
    everything = client.get("/categories?include_retired=true").json()["data"]
    assert "noise" in {c["code"] for c in everything}
    lon, lat, _ = grid_point(loaded_city)
    refused = client.post(
        "/incidents", json={"category": "noise", "location": {"lon": lon, "lat": lat}}, headers=ZH
    )
    assert refused.status_code == 422
    assert problem(refused)["detail"] == "事件类别 'noise' 已停用"
    again = client.post("/categories/noise/retire")
    assert again.status_code == 409
    restored = client.post("/categories/noise/restore")
    assert restored.status_code == 200 and restored.json()["retired"] is False
    filed = client.post(
        "/incidents", json={"category": "noise", "location": {"lon": lon, "lat": lat}}
    )
    assert filed.status_code == 201, filed.text

    audits = _audits(engine, "noise")
    assert [a[1] for a in audits] == ["create", "update", "update", "retire", "restore"]
    assert all(who.startswith("test-admin") for who, _, _ in audits)
    assert audits[1][2]["before"]["names"]["zh-CN"] == "噪声扰民"
    assert audits[1][2]["after"]["names"]["zh-CN"] == "噪音投诉"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({**NOISE, "code": "Noise!"}, 422),  # code pattern
        ({**NOISE, "names": {"zh-CN": "噪声扰民"}}, 422),  # English name required
        ({**NOISE, "names": {"en": "Noise", "fr": "Bruit"}}, 422),  # unserved language
        ({**NOISE, "names": {"en": ""}}, 422),  # empty name
        ({**NOISE, "names": {"en": "x" * 201}}, 422),  # too long
        ({**NOISE, "default_priority": 5}, 422),
        ({**NOISE, "handling_effort_min": 0}, 422),
        ({**NOISE, "resolution_target_min": -1}, 422),
        ({**NOISE, "colour": "red"}, 422),  # unknown member
        ({**NOISE, "code": "traffic"}, 409),  # exists
    ],
)
def test_bad_creates_are_problems_that_write_nothing(
    client: TestClient, engine: Engine, taxonomy: None, body: dict, status: int
) -> None:
    before = _count(engine)
    answer = client.post("/categories", json=body)
    assert answer.status_code == status, answer.text
    problem(answer)
    assert _count(engine) == before


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/categories/traffic", {}, 422),  # nothing to change
        ("/categories/traffic", {"names": {"de": "Verkehr"}}, 422),
        ("/categories/traffic", {"names": {"zh-CN": "  "}}, 422),
        ("/categories/traffic", {"handling_effort_min": None}, 422),
        ("/categories/traffic", {"default_priority": 0}, 422),
        ("/categories/traffic", {"response_target_s": 10**9}, 422),
        ("/categories/no_such_thing", {"handling_effort_min": 10}, 404),
    ],
)
def test_bad_updates_are_problems_that_write_nothing(
    client: TestClient, engine: Engine, taxonomy: None, path: str, body: dict, status: int
) -> None:
    with engine.connect() as conn:
        before = conn.execute(text("SELECT * FROM categories ORDER BY code")).all()
    audits = _count(engine)
    answer = client.patch(path, json=body)
    assert answer.status_code == status, answer.text
    problem(answer)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT * FROM categories ORDER BY code")).all() == before
    assert _count(engine) == audits


def test_retiring_an_unknown_category_is_404(client: TestClient, taxonomy: None) -> None:
    assert client.post("/categories/nope/retire").status_code == 404
    assert client.post("/categories/traffic/restore").status_code == 409  # in use already


@pytest.mark.parametrize("role", ["dispatcher", "planner", "analyst", "grid_worker"])
def test_only_admins_change_categories(
    client: TestClient, engine: Engine, role_keys: dict[str, str], role: str, taxonomy: None
) -> None:
    before = _count(engine)
    headers = as_role(role_keys, role)
    for answer in (
        client.post("/categories", json=NOISE, headers=headers),
        client.patch("/categories/traffic", json={"handling_effort_min": 5}, headers=headers),
        client.post("/categories/traffic/retire", headers=headers),
    ):
        assert answer.status_code == 403, answer.text
        assert problem(answer)["code"] == "forbidden"
    assert _count(engine) == before
    assert client.get("/categories", headers=headers).status_code == 200  # all may read


def test_changes_need_credentials(client: TestClient, engine: Engine, taxonomy: None) -> None:
    before = _count(engine)
    answer = client.post("/categories", json=NOISE, headers={"X-API-Key": ""})
    assert answer.status_code == 401
    assert client.get("/categories", headers={"X-API-Key": ""}).status_code == 401
    assert _count(engine) == before


def test_cli_creates_renames_sets_and_retires(
    app_database_url: str, engine: Engine, taxonomy: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEO_DATABASE_URL", app_database_url)
    monkeypatch.setenv("GEO_LOCALE", "zh_CN")
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "categories",
            "create",
            "graffiti",
            "--name",
            "en=Graffiti",
            "--name",
            "zh-CN=乱涂乱画",
            "--effort",
            "25",
            "--resolution-min",
            "2880",
        ],
    )
    assert made.exit_code == 0, made.output
    assert "乱涂乱画" in made.output and "使用中" in made.output
    renamed = runner.invoke(
        cli, ["categories", "set", "graffiti", "--name", "zh-CN=违规涂鸦", "--effort", "30"]
    )
    assert renamed.exit_code == 0, renamed.output
    retired = runner.invoke(cli, ["categories", "retire", "graffiti"])
    assert retired.exit_code == 0 and "已停用" in retired.output
    twice = runner.invoke(cli, ["categories", "retire", "graffiti"])
    assert twice.exit_code == 1 and "事件类别 'graffiti' 已经停用" in twice.output
    bad = runner.invoke(cli, ["categories", "set", "graffiti", "--name", "fr=Tags"])
    assert bad.exit_code == 1 and "不是支持的语言" in bad.output
    listed = runner.invoke(cli, ["categories", "list", "--retired", "--json"])
    assert listed.exit_code == 0, listed.output
    import json

    row = next(c for c in json.loads(listed.output) if c["code"] == "graffiti")
    assert row["names"] == {"en": "Graffiti", "zh-CN": "违规涂鸦"}
    assert (row["handling_effort_min"], row["resolution_target_min"], row["retired"]) == (
        30,
        2880,
        True,
    )
    assert [a[1] for a in _audits(engine, "graffiti")] == ["create", "update", "retire"]
    assert _audits(engine, "graffiti")[0][0] == "geo-service categories"

"""Routes that declare a typed ``response_model`` send their service's dict through
``DictJSONResponse``: the bytes must be what FastAPI sent when the route returned the dict."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from geo_service.api.responses import DictJSONResponse

BODY: dict[str, Any] = {
    "nan": float("nan"),
    "small": 1e-07,
    "large": 1e16,
    "text": '中文 "quoted" \\ </script>',
    "list": [1, 2.5, None, True],
    "nested": {"z": 0.1 + 0.2, "a": -0.0},
}


def test_dict_json_response_is_byte_for_byte_what_fastapi_sends_for_a_dict() -> None:
    app = FastAPI()

    @app.get("/returned")
    def returned() -> dict[str, Any]:
        return BODY

    @app.get("/wrapped")
    def wrapped() -> DictJSONResponse:
        return DictJSONResponse(BODY)

    with TestClient(app) as client:
        before, after = client.get("/returned"), client.get("/wrapped")
    assert after.status_code == before.status_code == 200
    assert after.headers["content-type"] == before.headers["content-type"]
    assert after.content == before.content
    assert after.json()["nan"] is None

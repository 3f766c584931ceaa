"""The simulator's only way into geo-service: its public HTTP API, as devices and dispatchers
use it (``POST /incidents``, ``/incidents/{id}/candidates``, lifecycle actions,
``POST /responders/positions``, ``PATCH /responders/{id}``, the OGC grids collection and the
Open311 service list). Any ``httpx.Client`` works: a real server's or FastAPI's TestClient.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

MAX_POSITIONS = 5000  # fixes in one POST /responders/positions (the API's batch limit)


@dataclass
class Tally:
    """What the API answered: requests by endpoint and status class, for the soak report."""

    calls: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    too_many: int = 0  # answers 429: the account's request budget was spent
    waited_s: float = 0.0  # seconds waited as Retry-After asked

    def note(self, what: str, response: httpx.Response) -> None:
        """Count one response; keep the first lines of any 5xx."""
        self.calls[f"{what} {response.status_code // 100}xx"] += 1
        self.too_many += response.status_code == 429
        if response.status_code >= 500 and len(self.server_errors) < 50:
            self.server_errors.append(f"{what}: {response.status_code} {response.text[:200]}")


class ApiError(RuntimeError):
    """An answer the simulator cannot go on from (a 5xx, or a 4xx it did not expect)."""


MAX_WAIT_S = 60.0  # the longest one Retry-After is honoured for
MAX_RETRIES = 5  # 429s in a row on one request, then its 429 is the answer


def retry_after_s(response: httpx.Response, default: float = 1.0) -> float:
    """Seconds a 429 asks the client to wait (``Retry-After`` in delta-seconds,
    RFC 9110 section 10.2.3; an HTTP-date or none: ``default``), at most ``MAX_WAIT_S``."""
    try:
        seconds = float(response.headers.get("Retry-After", default))
    except ValueError:
        seconds = default
    return min(max(seconds, 0.0), MAX_WAIT_S)


class Gateway:
    """The public API calls the simulator makes, each counted in ``tally``.

    A request answered 429 (over the account's request budget) is sent again after the wait
    its ``Retry-After`` asks for, up to ``MAX_RETRIES`` times: the simulator never storms a
    server that asked it to slow down. ``sleep`` is how it waits (``time.sleep``; tests pass
    their own).
    """

    def __init__(
        self,
        client: httpx.Client,
        tally: Tally | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.tally = tally or Tally()
        self.sleep = sleep

    def _send(self, what: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(MAX_RETRIES + 1):
            response = self.client.request(method, url, **kwargs)
            self.tally.note(what, response)
            if response.status_code != 429 or attempt == MAX_RETRIES:
                break
            wait = retry_after_s(response)
            self.tally.waited_s += wait
            self.sleep(wait)
        return response

    def grids(self) -> list[dict[str, Any]]:
        """Every grid of the version in force, as GeoJSON features (OGC API - Features)."""
        features: list[dict[str, Any]] = []
        url: str | None = "/collections/grids/items?limit=1000"
        while url:
            response = self._send("grids", "GET", url)
            if response.status_code != 200:
                raise ApiError(f"GET {url}: {response.status_code} {response.text[:300]}")
            body = response.json()
            features += body["features"]
            url = next((x["href"] for x in body.get("links", []) if x["rel"] == "next"), None)
        return features

    def categories(self) -> list[str]:
        """The service codes a citizen may report (Open311 ``services.json``)."""
        response = self._send("services", "GET", "/open311/v2/services.json")
        if response.status_code != 200:
            raise ApiError(f"GET services: {response.status_code} {response.text[:300]}")
        return [s["service_code"] for s in response.json()]

    def responders(self) -> list[dict[str, Any]]:
        """The responders the key may see (GeoJSON features of ``GET /responders``)."""
        response = self._send("responders", "GET", "/responders")
        if response.status_code != 200:
            raise ApiError(f"GET /responders: {response.status_code} {response.text[:300]}")
        return list(response.json()["features"])

    def report(
        self, category: str, lon: float, lat: float, key: str, source: str = "citizen"
    ) -> dict[str, Any] | None:
        """Report an incident (idempotent by ``key``); None when refused with a 4xx."""
        response = self._send(
            "report",
            "POST",
            "/incidents",
            json={"category": category, "location": {"lon": lon, "lat": lat}, "source": source},
            headers={"Idempotency-Key": key},
        )
        if response.status_code >= 500:
            raise ApiError(f"POST /incidents: {response.status_code} {response.text[:300]}")
        return response.json() if response.status_code in (200, 201) else None

    def open_incidents(self, pages: int = 4) -> list[dict[str, Any]]:
        """Open incidents, most urgent first (the console's first ``pages`` pages of 500:
        ``id``, ``status``, ``responder_id``, ``lon``, ``lat``, ``category``)."""
        items: list[dict[str, Any]] = []
        offset: int | None = 0
        for _ in range(pages):
            response = self._send(
                "console", "GET", "/console/incidents", params={"limit": 500, "offset": offset}
            )
            if response.status_code >= 500:
                raise ApiError(
                    f"GET /console/incidents: {response.status_code} {response.text[:300]}"
                )
            if response.status_code != 200:
                break
            page = response.json()
            items += page["items"]
            offset = page["next_offset"]
            if offset is None:
                break
        return items

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        """One incident as it is now (``GET /incidents/{id}``: status, responder, escalations
        with who made them); None when it is gone or refused."""
        response = self._send("incident", "GET", f"/incidents/{incident_id}")
        if response.status_code >= 500:
            raise ApiError(f"GET /incidents: {response.status_code} {response.text[:300]}")
        return response.json() if response.status_code == 200 else None

    def candidates(self, incident_id: str) -> list[dict[str, Any]]:
        """Responders to send, best first, by road travel time."""
        response = self._send(
            "candidates",
            "GET",
            f"/incidents/{incident_id}/candidates",
            params={"k": 5, "by": "travel_time"},
        )
        if response.status_code >= 500:
            raise ApiError(f"candidates: {response.status_code} {response.text[:300]}")
        return list(response.json()["candidates"]) if response.status_code == 200 else []

    def act(
        self,
        incident_id: str,
        action: str,
        responder_id: int | None = None,
        outcome: str | None = None,
        note: str | None = None,
    ) -> bool:
        """A lifecycle action; False when the incident's state or the responder refused it
        (409, e.g. another dispatcher was faster). ``outcome``: how a dispute ended, on
        resolve; ``note``: why, on escalate."""
        given = {"responder_id": responder_id, "outcome": outcome, "note": note}
        body: dict[str, Any] | None = {k: v for k, v in given.items() if v is not None} or None
        response = self._send(action, "POST", f"/incidents/{incident_id}/{action}", json=body)
        if response.status_code >= 500:
            raise ApiError(f"{action}: {response.status_code} {response.text[:300]}")
        return response.status_code == 200

    def positions(self, fixes: list[tuple[int, float, float, datetime]]) -> set[int]:
        """Report position fixes, in batches of at most ``MAX_POSITIONS``; return the ids the
        server found off duty (a batch naming one is refused whole with a 409: it is sent
        again without them, and the caller learns their status)."""
        off_duty: set[int] = set()
        for start in range(0, len(fixes), MAX_POSITIONS):
            chunk = fixes[start : start + MAX_POSITIONS]
            for _ in range(2):
                body = {
                    "positions": [
                        {"id": rid, "lon": lon, "lat": lat, "at": at.isoformat()}
                        for rid, lon, lat, at in chunk
                    ]
                }
                response = self._send("positions", "POST", "/responders/positions", json=body)
                if response.status_code >= 500:
                    raise ApiError(f"positions: {response.status_code} {response.text[:300]}")
                if response.status_code != 409:
                    break
                found = {int(i) for i in response.json().get("off_duty", ())}
                off_duty |= found
                chunk = [fix for fix in chunk if fix[0] not in found]
                if not found or not chunk:
                    break
        return off_duty

    def set_status(self, responder_id: int, status: str) -> bool:
        """Set a responder's status (on or off duty); False when refused."""
        response = self._send(
            "status", "PATCH", f"/responders/{responder_id}", json={"status": status}
        )
        if response.status_code >= 500:
            raise ApiError(f"status: {response.status_code} {response.text[:300]}")
        return response.status_code == 200

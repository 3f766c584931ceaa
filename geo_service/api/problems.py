"""RFC 9457 problem-details responses for every error the API can answer with."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo_service.api.open311_format import error_response, format_of
from geo_service.errors import DatabaseUnavailableError, GeoServiceError
from geo_service.web.pages import render_page

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("geo_service.api")


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A JSON response with the problem+json media type; under ``/open311/v2/`` the
    GeoReport v2 error list instead (``[{code, description}]`` or ``<errors>``, as the URL's
    format asks, with 400/403/404 as the specification names them)."""
    instance = str(body.get("instance", ""))
    if "/open311/v2/" in instance:
        return error_response(body["status"], body["detail"], format_of(instance), headers)
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


OGC_TAG = "ogc-api-features"


def _on_ogc_route(request: Request) -> bool:
    """Whether the request matched an OGC API - Features route, where invalid parameters
    answer 400 (/req/core/query-param-invalid), not 422."""
    route = request.scope.get("route")
    return route is not None and OGC_TAG in (getattr(route, "tags", None) or [])


def _on_page_route(request: Request) -> bool:
    """Whether a browser asked for one of the HTML pages (``/map/...``, ``/app``): a route
    declared with ``response_class=HTMLResponse``, fetched by GET with ``Accept: text/html``."""
    route = request.scope.get("route")
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("accept", "")
        and route is not None
        and getattr(route, "response_class", None) is HTMLResponse
    )


def _forbidden_page(request: Request, detail: str) -> Response:
    """A person whose role may not open a page gets a page saying so, with where to go
    instead and a way to sign in as someone else (not a raw JSON problem)."""
    body = render_page("forbidden.html", detail=detail, path=request.url.path)
    return HTMLResponse(body, status_code=403, headers={"Cache-Control": "no-store"})


def _generic(status: int, title: str, detail: str, code: str, instance: str) -> dict[str, Any]:
    return {
        "type": f"https://geo-service.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }


def install_problem_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors, HTTP errors and database faults to problems."""

    @app.exception_handler(GeoServiceError)
    async def _domain(request: Request, exc: GeoServiceError) -> Response:
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.detail)
        headers = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="geo-service", ApiKey header="X-API-Key"'
            if "text/html" in request.headers.get("accept", "") and request.method == "GET":
                # A person in a browser: send them to sign in, then back.
                return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if exc.status == 403 and _on_page_route(request):
            return _forbidden_page(request, exc.detail)
        if "retry_after" in exc.extra:
            headers["Retry-After"] = str(max(1, round(float(exc.extra["retry_after"]))))
        body = exc.problem(request.url.path)
        if body["status"] == 422 and _on_ogc_route(request):
            body["status"] = 400
        return problem_response(body, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type")}
            for err in exc.errors()
        ]
        detail = (
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
            or "invalid request"
        )
        status = 400 if _on_ogc_route(request) else 422
        body = _generic(status, "Invalid request", detail, "validation-error", request.url.path)
        body["errors"] = errors
        return problem_response(body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        return problem_response(
            _generic(exc.status_code, title, detail, code, request.url.path),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def _db_down(request: Request, exc: OperationalError) -> Response:
        if "statement timeout" in str(exc.orig) or "canceling statement" in str(exc.orig):
            body = _generic(
                503,
                "Query took too long",
                "the query exceeded the statement timeout; narrow the request (bbox, time window)",
                "query-timeout",
                request.url.path,
            )
            return problem_response(body, headers={"Retry-After": "5"})
        log.warning("database unavailable: %s", exc.orig)
        err = DatabaseUnavailableError("the database is unreachable; retry shortly")
        return problem_response(err.problem(request.url.path), headers={"Retry-After": "5"})

    def _internal(request: Request) -> Response:
        # Internals never leak: the detail is the same for every unexpected failure.
        return problem_response(
            _generic(
                500,
                "Internal error",
                "an internal error occurred",
                "internal-error",
                request.url.path,
            )
        )

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> Response:
        if isinstance(exc, DataError) and "NUL (0x00)" in str(exc.orig):
            # psycopg refuses the value before sending it, so nothing was written; any text
            # field of any route can carry one, so it is answered here once for all.
            body = _generic(
                422,
                "Invalid request",
                "text values may not contain NUL (0x00) characters",
                "validation-error",
                request.url.path,
            )
            return problem_response(body)
        log.exception("database error", exc_info=exc)
        return _internal(request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return _internal(request)

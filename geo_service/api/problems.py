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
from geo_service.i18n import ENGLISH, N_, current_language, format_message, gettext
from geo_service.web.pages import render_page

PROBLEM_JSON = "application/problem+json"
# Starlette's own details of an unknown route or method, for the catalogue (_generic
# translates every detail)
STARLETTE = (N_("Not Found"), N_("Method Not Allowed"))
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
        "title": gettext(title),  # marked with N_ where they are written
        "status": status,
        "detail": gettext(detail),
        "code": code,
        "instance": instance,
    }


# pydantic's messages of the usual validation errors, by error type, so that a 422 reads in
# the request's language; placeholders are the error's ``ctx`` (pydantic-core's own names).
# English keeps pydantic's text exactly; another type, or a ctx without a placeholder's value,
# keeps it too.
VALIDATION_MESSAGES = {
    "missing": N_("Field required"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "greater_than": N_("Input should be greater than {gt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "less_than": N_("Input should be less than {lt}"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "int_parsing": N_("Input should be a valid integer"),
    "int_from_float": N_("Input should be a valid integer"),
    "float_parsing": N_("Input should be a valid number"),
    "bool_parsing": N_("Input should be a valid boolean"),
    "literal_error": N_("Input should be {expected}"),
    "enum": N_("Input should be {expected}"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "json_invalid": N_("JSON decode error"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_attributes_type": N_("Input should be a valid dictionary or object"),
    "list_type": N_("Input should be a valid list"),
    "string_type": N_("Input should be a valid string"),
    "uuid_parsing": N_("Input should be a valid UUID"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime"),
    "datetime_parsing": N_("Input should be a valid datetime"),
    "datetime_type": N_("Input should be a valid datetime"),
    "date_parsing": N_("Input should be a valid date"),
    "date_from_datetime_parsing": N_("Input should be a valid date"),
    "date_type": N_("Input should be a valid date"),
    "int_type": N_("Input should be a valid integer"),
    "float_type": N_("Input should be a valid number"),
    "bool_type": N_("Input should be a valid boolean"),
    "decimal_parsing": N_("Input should be a valid decimal"),
    "finite_number": N_("Input should be a finite number"),
    "multiple_of": N_("Input should be a multiple of {multiple_of}"),
    "too_short": N_("Input should have at least {min_length} items, not {actual_length}"),
    "too_long": N_("Input should have at most {max_length} items, not {actual_length}"),
    "url_parsing": N_("Input should be a valid URL"),
    "uuid_type": N_("Input should be a valid UUID"),
    # our own validators raise ValueError with a message already in the request's language
    "value_error": N_("Value error, {error}"),
    "assertion_error": N_("Assertion failed, {error}"),
}
# ``expected`` of enum / literal_error is pydantic's English list ("'a', 'b' or 'c'")
_CHOICES = ("enum", "literal_error")


def _message(error: dict[str, Any]) -> str:
    """A validation error's message in the request's language (pydantic's own in English)."""
    text = str(error.get("msg", ""))
    template = VALIDATION_MESSAGES.get(str(error.get("type")))
    if template is None or current_language() == ENGLISH:
        return text
    ctx = dict(error.get("ctx") or {})
    if error.get("type") in _CHOICES and isinstance(ctx.get("expected"), str):
        first, sep, last = ctx["expected"].rpartition(" or ")
        if sep:
            ctx["expected"] = format_message("{first} or {last}", first=first, last=last)
    try:
        return format_message(template, **ctx)
    except (KeyError, IndexError, ValueError):
        return text


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
            {"loc": list(err.get("loc", ())), "msg": _message(err), "type": err.get("type")}
            for err in exc.errors()
        ]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors
        ) or N_("invalid request")
        status = 400 if _on_ogc_route(request) else 422
        body = _generic(status, N_("Invalid request"), detail, "validation-error", request.url.path)
        body["errors"] = errors
        return problem_response(body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        title = {404: N_("Not found"), 405: N_("Method not allowed")}.get(
            exc.status_code, N_("HTTP error")
        )
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
                N_("Query took too long"),
                N_(
                    "the query exceeded the statement timeout; narrow the request (bbox, "
                    "time window)"
                ),
                "query-timeout",
                request.url.path,
            )
            return problem_response(body, headers={"Retry-After": "5"})
        log.warning("database unavailable: %s", exc.orig)
        err = DatabaseUnavailableError(N_("the database is unreachable; retry shortly"))
        return problem_response(err.problem(request.url.path), headers={"Retry-After": "5"})

    def _internal(request: Request) -> Response:
        # Internals never leak: the detail is the same for every unexpected failure.
        return problem_response(
            _generic(
                500,
                N_("Internal error"),
                N_("an internal error occurred"),
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
                N_("Invalid request"),
                N_("text values may not contain NUL (0x00) characters"),
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

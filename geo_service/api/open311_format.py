"""Open311 GeoReport v2 on the wire: the same data as XML (which the specification requires)
or JSON, and the specification's error list.

XML is written by ``xmltodict`` (the library GeoReport clients such as ``georeport`` parse it
with), after turning values into the specification's text: ``true``/``false`` for booleans,
an empty element for null. Element names follow the specification's examples
(http://wiki.open311.org/GeoReport_v2): ``services/service``,
``service_requests/request``, ``service_definition/attributes/attribute/values/value``,
``discovery/endpoints/endpoint/formats/format`` and ``errors/error``.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
import xmltodict
from fastapi import Response

Format = Literal["json", "xml"]
XML = "text/xml; charset=utf-8"  # the specification's examples; clients accept it


def _text(value: Any) -> Any:  # noqa: ANN401 - any JSON value
    """A JSON value as xmltodict should write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text(v) for v in value]
    return str(value)


def _xml(document: dict[str, Any]) -> bytes:
    return xmltodict.unparse(_text(document), encoding="utf-8", pretty=False).encode("utf-8")


def as_xml_document(kind: str, data: Any) -> dict[str, Any]:  # noqa: ANN401
    """Wrap a JSON answer in the specification's XML element tree.

    >>> as_xml_document("services", [{"service_code": "a"}])
    {'services': {'service': [{'service_code': 'a'}]}}
    """
    if kind == "services":
        return {"services": {"service": data}}
    if kind == "requests":
        return {"service_requests": {"request": data}}
    if kind == "errors":
        return {"errors": {"error": data}}
    if kind == "service_definition":
        attributes = [
            {**a, "values": {"value": a["values"]} if a["values"] else None}
            for a in data["attributes"]
        ]
        return {
            "service_definition": {
                "service_code": data["service_code"],
                "attributes": {"attribute": attributes},
            }
        }
    if kind == "discovery":
        endpoints = [{**e, "formats": {"format": e["formats"]}} for e in data["endpoints"]]
        return {"discovery": {**data, "endpoints": {"endpoint": endpoints}}}
    raise ValueError(f"unknown Open311 document {kind!r}")


def respond(kind: str, data: Any, fmt: str, status_code: int = 200) -> Response:  # noqa: ANN401
    """The answer in the format the URL asked for (``.xml`` or ``.json``)."""
    if fmt == "xml":
        return Response(_xml(as_xml_document(kind, data)), status_code, media_type=XML)
    return Response(orjson.dumps(data), status_code, media_type="application/json")


def error_status(status: int) -> int:
    """The status an Open311 client expects: the specification names 400 (bad or missing
    arguments), 403 (invalid api_key) and 404 (not found); 401 and 422 map onto them.

    >>> error_status(422), error_status(401), error_status(404), error_status(503)
    (400, 403, 404, 503)
    """
    return {401: 403, 409: 400, 422: 400}.get(status, status)


def error_response(
    status: int, description: str, fmt: str, headers: dict[str, str] | None = None
) -> Response:
    """The specification's error body, ``[{"code": …, "description": …}]`` or
    ``<errors><error><code/><description/></error></errors>``, with the mapped status."""
    code = error_status(status)
    body = [{"code": code, "description": description}]
    response = respond("errors", body, fmt, status_code=code)
    if headers:
        response.headers.update(headers)
    return response


def format_of(path: str) -> Format:
    """The format an Open311 URL asks for: ``…/requests.xml`` is XML, anything else JSON.

    >>> format_of("/open311/v2/requests.xml"), format_of("/open311/v2/services")
    ('xml', 'json')
    """
    return "xml" if path.rstrip("/").lower().endswith(".xml") else "json"

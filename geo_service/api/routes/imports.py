"""``POST /imports/{kind}``: the importers over HTTP (multipart upload).

The report's model (api/schemas/ingest.py) is declared for the OpenAPI document; the body is
sent as the service builds it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from geo_service.api.deps import ActorDep, ScopeDep
from geo_service.api.responses import DictJSONResponse
from geo_service.api.schemas import Problem
from geo_service.api.schemas.ingest import ImportReportPublic, RejectedShareProblem
from geo_service.errors import InvalidInputError, LimitExceededError
from geo_service.i18n import format_message, gettext
from geo_service.ingest.defaults import EDGE_TOLERANCE_M
from geo_service.ingest.uploads import (
    UnsupportedFileError,
    check_client_filename,
    save_upload,
    upload_workspace,
)
from geo_service.services.access.scope import Scope

if TYPE_CHECKING:
    from geo_service.services.ingest.imports import ImportOptions, ImportReport

log = logging.getLogger(__name__)
router = APIRouter(prefix="/imports", tags=["imports"])
Kind = Literal["boundaries", "incidents", "households", "rental-units", "responders", "roads"]


def _import_upload(
    engine: Engine,
    kind: str,
    file: UploadFile,
    options: ImportOptions,
    *,
    actor: str,
    scope: Scope | None,
) -> ImportReport:
    """Copy the upload into a private workspace, import it, and remove the workspace on every
    path out (the sweep at start-up covers a process killed in between)."""
    from geo_service.services.ingest.imports import import_file

    with upload_workspace() as workspace:
        path = save_upload(file.file, workspace)
        options.rejects_path = workspace / "rejects.csv"
        try:
            return import_file(engine, kind, path, options, actor=actor, scope=scope)
        except (UnsupportedFileError, LimitExceededError) as exc:
            # 4xx are not logged by the problem handler; these may be probes, so say who.
            log.warning("import %s by %s refused: %s", kind, actor, exc.detail)
            raise


def _pairs(values: list[str] | None, name: str) -> dict[str, str]:
    out = {}
    for value in values or []:
        if "=" not in value:
            raise InvalidInputError(
                format_message(
                    "{name} takes SRC=FIELD pairs, got {value!r}", name=name, value=value
                )
            )
        left, right = value.split("=", 1)
        out[left.strip()] = right.strip()
    return out


def _form_field(name: str) -> str:
    """How an HTTP caller is told of an import option: the form field that sets it."""
    return format_message("form field {name}", name=name)


@router.post(
    "/{kind}",
    response_model=ImportReportPublic,
    responses={
        415: {
            "model": Problem,
            "description": "Not an accepted format (judged by content)",
            "content": {"application/problem+json": {}},
        },
        422: {
            "model": RejectedShareProblem,
            "description": "Invalid input, or more rows rejected than max_rejected_share "
            "allows (code rejected-share-exceeded: nothing written; the counts by reason and "
            "the rejects as CSV in the body)",
            "content": {"application/problem+json": {}},
        },
    },
)
async def create_import(
    request: Request,
    actor: ActorDep,
    scope: ScopeDep,
    kind: Kind,
    file: Annotated[
        UploadFile,
        File(
            description="GeoJSON, GPKG, zipped Shapefile, GeoParquet, KML/KMZ, or "
            "CSV/TSV/TXT/.xlsx/.xls with lon/lat (format judged by content)"
        ),
    ],
    crs: Annotated[str | None, Form()] = None,
    map: Annotated[  # noqa: A002
        list[str] | None,
        Form(
            description="SRC=FIELD, repeatable; SRC may join columns with '+' "
            "('date+time=reported_at'; 'YEAR+MONTH+DAY+HOUR+MINUTE=reported_at' builds a time "
            "from parts), as the CLI's --map"
        ),
    ] = None,
    set: Annotated[list[str] | None, Form(description="FIELD=VALUE, repeatable")] = None,  # noqa: A002
    category_map: Annotated[list[str] | None, Form(description="SRC=CATEGORY, repeatable")] = None,
    tz: Annotated[
        str | None,
        Form(description="IANA time zone of naive times (default: the deployment's, GEO_TIMEZONE)"),
    ] = None,
    date_format: Annotated[
        list[str] | None, Form(description="strptime format of naive times, repeatable")
    ] = None,
    ambiguous_time: Annotated[
        Literal["earliest", "latest", "reject"],
        Form(description="a local time that occurs twice (DST fall-back)"),
    ] = "reject",
    layer: Annotated[str | None, Form()] = None,
    swap_xy: Annotated[bool, Form(description="the file's lon/lat (x/y) are swapped")] = False,
    encoding: Annotated[
        str | None, Form(description="text encoding of a Shapefile DBF or a CSV/TSV/TXT")
    ] = None,
    status: Annotated[str, Form()] = "reported",
    source_name: Annotated[str | None, Form()] = None,
    level: Annotated[str | None, Form()] = None,
    parent_level: Annotated[str | None, Form()] = None,
    version: Annotated[int | None, Form(ge=1, le=2_147_483_647)] = None,
    version_name: Annotated[str | None, Form()] = None,
    dissolve: Annotated[bool, Form()] = False,
    edge_tolerance: Annotated[
        float, Form(ge=0, le=1000, description="metres: points this close go to the nearest grid")
    ] = EDGE_TOLERANCE_M,
    max_rejected_share: Annotated[
        float, Form(ge=0, le=1, description="above this share of rejects nothing is written")
    ] = 1.0,
    accept_approximate_transform: Annotated[
        bool, Form(description="accept a datum shift known only to tens of metres")
    ] = False,
) -> DictJSONResponse:
    """Import an uploaded file; the answer lists what was taken and every rejected row.

    Rows outside the caller's area are rejected; boundary files need a user bound to no area.
    The report counts the rejects by reason (``rejected_by_reason``) and carries all of them
    as CSV (``rejects_csv``); over ``max_rejected_share`` the import is refused with a 422
    problem carrying the same, and nothing is written.
    """
    scope.require(f"imports:{kind}")
    if kind == "boundaries":
        scope.require_unrestricted(gettext("importing boundaries"))
    # The client's name is only shown back (and names stable keys); the server's copy has a
    # fixed name in a private workspace, so '.', '..', 300 characters or a NUL cannot reach a
    # path.
    filename = check_client_filename(file.filename)
    limits = request.app.state.settings.limits
    # The importers pull in geopandas, pandas and GDAL (~0.5 s): loaded on the first import,
    # not when the API starts.
    from geo_service.services.ingest.imports import ImportOptions

    options = ImportOptions(
        crs=crs,
        field_map=_pairs(map, "map"),
        constants=_pairs(set, "set"),
        category_map=_pairs(category_map, "category_map") if category_map else None,
        tz=tz,
        date_formats=list(date_format or []),
        ambiguous_time=ambiguous_time,
        layer=layer,
        swap_xy=swap_xy,
        encoding=encoding,
        status=status,
        source_name=source_name,  # default: the file name's stem
        level=level,
        parent_level=parent_level,
        version_id=version,
        version_name=version_name,
        dissolve=dissolve,
        edge_tolerance_m=edge_tolerance,
        max_rejected_share=max_rejected_share,
        accept_approximate_transform=accept_approximate_transform,
        max_features=limits.features_per_upload,
        max_vertices=limits.vertices_per_geometry,
        max_uncompressed_bytes=limits.upload_uncompressed_bytes,
        max_compression_ratio=limits.upload_compression_ratio,
        file_name=filename,
        option_name=_form_field,
    )
    # Copy, import and clean-up all run in the threadpool: none of it blocks the event loop.
    report = await run_in_threadpool(
        _import_upload,
        request.app.state.engine,
        kind,
        file,
        options,
        actor=actor,
        scope=None if scope.unrestricted else scope,
    )
    body = report.as_dict()
    body["reject_file"] = None  # a server-side temp file means nothing to the client
    return DictJSONResponse(body)

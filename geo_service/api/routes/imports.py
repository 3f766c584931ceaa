"""``POST /imports/{kind}``: the importers over HTTP (multipart upload)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from geo_service.api.deps import ActorDep, ScopeDep
from geo_service.errors import InvalidInputError
from geo_service.services.imports import ImportOptions, import_file

router = APIRouter(prefix="/imports", tags=["imports"])
Kind = Literal["boundaries", "incidents", "households", "rental-units", "responders", "roads"]


def _pairs(values: list[str] | None, name: str) -> dict[str, str]:
    out = {}
    for value in values or []:
        if "=" not in value:
            raise InvalidInputError(f"{name} takes SRC=FIELD pairs, got {value!r}")
        left, right = value.split("=", 1)
        out[left.strip()] = right.strip()
    return out


@router.post("/{kind}")
async def create_import(
    request: Request,
    actor: ActorDep,
    scope: ScopeDep,
    kind: Kind,
    file: Annotated[
        UploadFile,
        File(description="GeoJSON, GPKG, zipped Shapefile, GeoParquet, or CSV/TSV with lon/lat"),
    ],
    crs: Annotated[str | None, Form()] = None,
    map: Annotated[list[str] | None, Form(description="SRC=FIELD, repeatable")] = None,  # noqa: A002
    set: Annotated[list[str] | None, Form(description="FIELD=VALUE, repeatable")] = None,  # noqa: A002
    category_map: Annotated[list[str] | None, Form(description="SRC=CATEGORY, repeatable")] = None,
    tz: Annotated[str, Form()] = "UTC",
    date_format: Annotated[str | None, Form()] = None,
    layer: Annotated[str | None, Form()] = None,
    status: Annotated[str, Form()] = "reported",
    source_name: Annotated[str | None, Form()] = None,
    level: Annotated[str | None, Form()] = None,
    parent_level: Annotated[str | None, Form()] = None,
    version: Annotated[int | None, Form(ge=1, le=2_147_483_647)] = None,
    version_name: Annotated[str | None, Form()] = None,
    dissolve: Annotated[bool, Form()] = False,
) -> dict[str, Any]:
    """Import an uploaded file; the answer lists what was taken and every rejected row.

    Rows outside the caller's area are rejected; boundary files need a user bound to no area.
    """
    scope.require(f"imports:{kind}")
    if kind == "boundaries":
        scope.require_unrestricted("importing boundaries")
    filename = Path(file.filename or "upload").name
    with tempfile.TemporaryDirectory(prefix="geo-import-") as tmp:
        path = Path(tmp) / filename
        with path.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        options = ImportOptions(
            crs=crs,
            field_map=_pairs(map, "map"),
            constants=_pairs(set, "set"),
            category_map=_pairs(category_map, "category_map") if category_map else None,
            tz=tz,
            date_format=date_format,
            layer=layer,
            status=status,
            source_name=source_name or Path(filename).name.split(".")[0],
            rejects_path=Path(tmp) / "rejects.csv",
            level=level,
            parent_level=parent_level,
            version_id=version,
            version_name=version_name,
            dissolve=dissolve,
            max_features=request.app.state.settings.limits.features_per_upload,
            max_vertices=request.app.state.settings.limits.vertices_per_geometry,
        )
        report = await run_in_threadpool(
            import_file,
            request.app.state.engine,
            kind,
            path,
            options,
            actor=actor,
            scope=None if scope.unrestricted else scope,
        )
    body = report.as_dict()
    body["reject_file"] = None  # a server-side temp file means nothing to the client
    return body

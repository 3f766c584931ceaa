"""Chicago's police districts, beats and 2019 crimes, imported through the service's own
importer: the README's walk-through on real data nobody here wrote, shared by the tests, the
benchmarks and the notebook so that all of them read the files the same way.

The files are the City of Chicago's open data (see ``shared/data/README``):
``chicago_district_bounds.geojson`` (``dist_num``, ``dist_label``),
``chicago_beat_bounds.geojson`` (``beat_num``) and ``chicago_crimes_2019_sample50k.csv.gz``
(``primary_type``, ``date`` in America/Chicago local time, ``longitude``/``latitude``).
Beats are the grids and districts their parents; several polygons of one code are one
area (``dissolve``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from geo_service.services.boundaries.publish import publish_version
from geo_service.services.ingest.imports import (
    ImportOptions,
    ImportReport,
    import_file,
    read_mapping_csv,
)

#: Chicago's primary crime types mapped to the service's categories (in the checkout).
CATEGORY_MAP = Path(__file__).resolve().parents[2] / "data" / "category_maps" / "chicago_crimes.csv"
ZONE = "America/Chicago"
DISTRICTS = "chicago_district_bounds.geojson"
BEATS = "chicago_beat_bounds.geojson"
CRIMES = "chicago_crimes_2019_sample50k.csv.gz"


def crime_options(rejects_path: Path) -> ImportOptions:
    """How a file of Chicago crimes (the sample's columns) imports: ``primary_type`` is the
    category (mapped by :data:`CATEGORY_MAP`), ``date`` the local report time, every row a
    closed case; rows refused are written to ``rejects_path``."""
    return ImportOptions(
        field_map={"primary_type": "category", "date": "reported_at"},
        category_map=read_mapping_csv(CATEGORY_MAP),
        tz=ZONE,
        status="closed",
        rejects_path=rejects_path,
    )


def import_police_areas(
    engine: Engine,
    chicago: Path,
    workdir: Path,
    *,
    effective_from: datetime | None,
    version_name: str = "Chicago police 2019",
    actor: str,
) -> tuple[ImportReport, ImportReport]:
    """Import the districts and, as their grids, the beats into one draft version, and
    publish it from ``effective_from`` (``None``: leave it a draft).

    ``chicago`` is the folder holding the files; rejects go to ``workdir``. Returns the two
    import reports (the version id is ``districts.version_id``). Publishing is forced (the
    published beats leave small gaps and overlaps the validation lists)."""
    districts = import_file(
        engine,
        "boundaries",
        chicago / DISTRICTS,
        ImportOptions(
            level="district",
            field_map={"dist_num": "code", "dist_label": "name"},
            version_name=version_name,
            dissolve=True,
            rejects_path=workdir / "districts.rejects.csv",
        ),
        actor=actor,
    )
    beats = import_file(
        engine,
        "boundaries",
        chicago / BEATS,
        ImportOptions(
            level="grid",
            parent_level="district",
            version_id=districts.version_id,
            field_map={"beat_num": "code"},
            dissolve=True,
            rejects_path=workdir / "beats.rejects.csv",
        ),
        actor=actor,
    )
    if effective_from is not None:
        assert districts.version_id is not None
        publish_version(engine, districts.version_id, effective_from, actor=actor, force=True)
    return districts, beats


def import_crimes(engine: Engine, chicago: Path, workdir: Path, *, actor: str) -> ImportReport:
    """Import the 2019 crimes sample (about 50,000 rows) as closed incidents."""
    return import_file(
        engine,
        "incidents",
        chicago / CRIMES,
        crime_options(workdir / "crimes.rejects.csv"),
        actor=actor,
    )

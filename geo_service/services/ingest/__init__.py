"""The ingest room.

Ingest: importing files from other systems into the database (reading lives in
geo_service.ingest). ``imports.import_file`` is the entry point; ``options`` and ``report``
are its contract, ``points`` / ``writers`` / ``roads`` / ``boundaries`` write each kind,
``staging`` COPYs rows into temporary tables. Grid assignment is the boundaries room's
(``services.boundaries.assignment``).
"""

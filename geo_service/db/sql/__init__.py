"""Long SQL statements as package resources (``db/sql/<name>.sql``), loaded by name.

A statement that is more than a line or two lives in its own ``.sql`` file, where it reads
(and diffs) as SQL, with its comments. Values are always bound parameters (``:name``), never
formatted in; the vocabulary (``geo_service.vocabulary``) is bound too (``= ANY(:open)``).
Whole-line ``--`` comments document the statement and are dropped when it is loaded.

>>> sql("scope_jurisdiction").compile().params
{'root': None}
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

from sqlalchemy import TextClause, text

_NAME = re.compile(r"[a-z][a-z0-9_]*")


@cache
def sql_source(name: str) -> str:
    """The text of ``<name>.sql`` (for a statement a caller completes, e.g. with a WHERE)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a statement name: {name!r}")
    path = files(__name__).joinpath(f"{name}.sql")
    if not path.is_file():
        raise LookupError(f"no statement {name!r} in geo_service/db/sql/")
    source = path.read_text(encoding="utf-8")
    # Whole-line comments go: a ``:word`` in prose must not become a bound parameter.
    return "\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith("--"))


@cache
def sql(name: str) -> TextClause:
    """The statement ``<name>.sql`` as a ``text()`` clause with its bound parameters."""
    return text(sql_source(name))

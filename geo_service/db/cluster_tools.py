"""PostgreSQL's own programs: finding the server binaries, and dump / restore (pg_dump,
pg_restore) of a database by URL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from geo_service.errors import ClusterError, MissingSystemPackageError
from geo_service.i18n import format_message

PG_MAJOR = 15


def server_bindir() -> Path:
    """Directory of initdb / pg_ctl: ``GEO_PG_BINDIR``, Debian's, or ``pg_config``'s."""
    explicit = os.environ.get("GEO_PG_BINDIR")
    if explicit:
        if (Path(explicit) / "initdb").exists() and (Path(explicit) / "pg_ctl").exists():
            return Path(explicit)
        raise MissingSystemPackageError(
            format_message(
                "GEO_PG_BINDIR={explicit} holds no initdb/pg_ctl: apt-get install "
                "postgresql-{pg_major} postgresql-{pg_major}-postgis-3",
                explicit=explicit,
                pg_major=PG_MAJOR,
            )
        )
    candidates = [Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise MissingSystemPackageError(
        format_message(
            "PostgreSQL {pg_major} server binaries not found: apt-get install "
            "postgresql-{pg_major} postgresql-{pg_major}-postgis-3",
            pg_major=PG_MAJOR,
        )
    )


def check_postgis(bindir: Path) -> None:
    """Fail with the package to install when PostGIS is missing for ``bindir``'s server."""
    out = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True)
    sharedir = (
        Path(out.stdout.strip())
        if out.returncode == 0
        else Path(f"/usr/share/postgresql/{PG_MAJOR}")
    )
    if not (sharedir / "extension" / "postgis.control").exists():
        raise MissingSystemPackageError(
            format_message(
                "PostGIS is not installed for PostgreSQL {pg_major}: apt-get install "
                "postgresql-{pg_major}-postgis-3",
                pg_major=PG_MAJOR,
            )
        )


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as libpq (pg_dump, psql) understands it."""
    return "postgresql://" + url.split("://", 1)[1]


def client_binary(name: str) -> str:
    """Path of a client program (pg_dump, pg_restore): the server's, else the one on PATH."""
    try:
        return str(server_bindir() / name)
    except MissingSystemPackageError:
        found = shutil.which(name)
        if found is None:
            raise
        return found


def backup(url: str, target: Path) -> int:
    """Dump the database at ``url`` to ``target`` (pg_dump custom format); return its size."""
    proc = subprocess.run(
        [
            client_binary("pg_dump"),
            "--format=custom",
            "--no-owner",
            f"--file={target}",
            libpq_url(url),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise ClusterError(
            format_message(
                "{program} failed: {error}",
                program="pg_dump",
                error=proc.stderr.strip().splitlines()[-1],
            )
        )
    return target.stat().st_size


def restore(url: str, source: Path) -> None:
    """Restore a custom-format dump into the database at ``url`` (run it as the owner role),
    replacing what is there; the database's extensions are kept, not re-created."""
    if not source.exists():
        raise ClusterError(format_message("{source} does not exist", source=source))
    listing = subprocess.run(
        [client_binary("pg_restore"), "--list", str(source)], capture_output=True, text=True
    )
    if listing.returncode != 0:
        lines = [ln for ln in listing.stderr.strip().splitlines() if ln]
        raise ClusterError(
            format_message(
                "{program} failed: {error}",
                program="pg_restore",
                error=(lines[-1] if lines else "unknown error"),
            )
        )
    # Extensions belong to the superuser, who made them when the database was created: the
    # owner role that restores may neither drop nor re-create them nor write PostGIS's
    # catalogue (spatial_ref_sys), so they stay as they are.
    entries = [
        line
        for line in listing.stdout.splitlines()
        if not re.search(
            r"^\d+; \d+ \d+ (EXTENSION|COMMENT - EXTENSION|TABLE DATA public spatial_ref_sys) ",
            line,
        )
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".list") as toc:
        toc.write("\n".join(entries) + "\n")
        toc.flush()
        proc = subprocess.run(
            [
                client_binary("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--single-transaction",
                f"--use-list={toc.name}",
                f"--dbname={libpq_url(url)}",
                str(source),
            ],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln]
        raise ClusterError(
            format_message(
                "{program} failed: {error}",
                program="pg_restore",
                error=(lines[-1] if lines else "unknown error"),
            )
        )

"""The embedded default database: a private PostgreSQL 15 + PostGIS cluster under ``GEO_DATA_DIR``.

No library manages a throw-away PostgreSQL cluster with a privilege drop for root and a
relocation when the server user cannot reach the checkout (testing.postgresql and pytest-postgresql
assume a non-root user and a reachable directory), so this module drives ``initdb`` / ``pg_ctl``
itself. Roles and credentials are ``cluster_roles``; finding PostgreSQL's programs and
dump / restore are ``cluster_tools``.

Layout under the data directory (default ``./.geo-service/``)::

    credentials      a random password per role, one ``role password`` a line (0600, owner of
                     the checkout); a file of one bare line (older clusters) is the superuser's
    port             the TCP port the cluster listens on (127.0.0.1 only)
    cluster/         owned by the server user: pgdata/, run/ (unix socket), server.log
    cluster-location when ``cluster/`` had to live elsewhere: the path where it lives
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo as psycopg_conninfo

from geo_service.db.cluster_roles import (
    ROLE,
    ROLES,
    RoleName,
    ensure_credentials,
    ensure_owned_database,
    ensure_roles,
    prepare_schema,
    read_credentials,
)
from geo_service.db.cluster_tools import check_postgis, server_bindir
from geo_service.errors import ClusterError
from geo_service.i18n import format_message, gettext

SERVER_USER = os.environ.get("GEO_PG_USER", "postgres")
FALLBACK_ROOT = Path("/var/lib/geo-service")
# Unix socket paths are limited to 107 bytes; past that the cluster listens on TCP only.
MAX_SOCKET_DIR = 80

SERVER_CONF = """
# geo-service embedded cluster
listen_addresses = '127.0.0.1'
shared_buffers = '256MB'
work_mem = '32MB'
maintenance_work_mem = '512MB'
max_wal_size = '4GB'
checkpoint_timeout = '15min'
max_connections = 200
jit = off
timezone = 'UTC'
logging_collector = off
"""


def _is_root() -> bool:
    return os.geteuid() == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class ClusterStatus:
    """What ``geo-service db status`` reports."""

    running: bool
    data_dir: Path
    cluster_dir: Path
    port: int | None
    url: str | None


class EmbeddedCluster:
    """A private PostgreSQL cluster living under one data directory.

    ``start()`` creates and starts it (``geo-service db start``); ``url()`` then gives each
    role's URL of a database on it.

    Examples
    --------
    >>> import tempfile
    >>> cluster = EmbeddedCluster(Path(tempfile.mkdtemp()) / ".geo-service")
    >>> cluster.status().running
    False
    >>> cluster.url("geo")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    geo_service.errors.ClusterError: the embedded cluster has never been started: ...
    """

    def __init__(self, data_dir: Path, *, log=None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self._log = log or (lambda msg: print(msg, file=sys.stderr))

    # --- locations -------------------------------------------------------------------------
    @property
    def cluster_dir(self) -> Path:
        """Directory owned by the server user (``cluster/`` or its fallback location)."""
        pointer = self.data_dir / "cluster-location"
        if pointer.exists():
            return Path(pointer.read_text().strip())
        return self.data_dir / "cluster"

    @property
    def pgdata(self) -> Path:
        """The PostgreSQL data directory."""
        return self.cluster_dir / "pgdata"

    @property
    def socket_dir(self) -> Path | None:
        """Directory of the unix socket, or None when the path would be too long."""
        run = self.cluster_dir / "run"
        return run if len(str(run)) <= MAX_SOCKET_DIR else None

    @property
    def port(self) -> int | None:
        """The recorded TCP port, if the cluster was ever started."""
        path = self.data_dir / "port"
        return int(path.read_text().strip()) if path.exists() else None

    def ensure_credentials(self) -> None:
        """Give every role a random password in the credentials file (kept, once made)."""
        ensure_credentials(self.data_dir)

    def password(self, role: RoleName = "admin") -> str:
        """Password of ``role`` (the superuser by default)."""
        name = ROLES[role]
        try:
            return read_credentials(self.data_dir)[name]
        except KeyError:
            raise ClusterError(
                format_message(
                    "no password for role {name} in {value}: geo-service db start",
                    name=name,
                    value=self.data_dir / "credentials",
                )
            ) from None

    def url(self, database: str = "geo", role: RoleName = "admin") -> str:
        """SQLAlchemy URL of ``database`` on this cluster, logged in as ``role``.

        ``admin`` is the superuser (creating roles and databases only); ``owner`` runs
        migrations; ``app`` is what the API and the CLI use; ``purge`` deletes audit rows.
        """
        if self.port is None:
            raise ClusterError(
                gettext("the embedded cluster has never been started: geo-service db start")
            )
        return (
            f"postgresql+psycopg://{ROLES[role]}:{quote(self.password(role), safe='')}"
            f"@127.0.0.1:{self.port}/{database}"
        )

    # --- running commands as the server user ----------------------------------------------
    def _as_server_user(self, argv: list[str]) -> list[str]:
        if _is_root():
            return ["runuser", "-u", SERVER_USER, "--", *argv]
        return argv

    def _run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self._as_server_user(argv), capture_output=True, text=True)
        if check and proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise ClusterError(
                format_message(
                    "{program} failed: {error}", program=Path(argv[0]).name, error=" | ".join(tail)
                )
            )
        return proc

    def _server_user_can_reach(self, path: Path) -> bool:
        """Whether the server user can traverse every directory down to ``path``."""
        if not _is_root():
            return os.access(path, os.X_OK)
        probe = subprocess.run(
            ["runuser", "-u", SERVER_USER, "--", "test", "-x", str(path)], capture_output=True
        )
        return probe.returncode == 0

    def _ensure_server_user(self) -> None:
        if not _is_root():
            return
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            subprocess.run(
                [
                    "useradd",
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    SERVER_USER,
                ],
                check=True,
            )

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if (self.data_dir / "cluster-location").exists() or (self.data_dir / "cluster").exists():
            return
        cluster = self.data_dir / "cluster"
        if _is_root():
            # The server user needs to traverse every ancestor of the data dir. Make the
            # data dir itself reachable; if an ancestor is closed (a 0700 home), relocate.
            os.chmod(self.data_dir, 0o711)
            if not self._server_user_can_reach(self.data_dir):
                digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
                cluster = FALLBACK_ROOT / digest / "cluster"
                self._log(
                    f"geo-service: user '{SERVER_USER}' cannot reach {self.data_dir} "
                    f"(a parent directory is closed); the cluster lives in {cluster} instead"
                )
                FALLBACK_ROOT.mkdir(parents=True, exist_ok=True)
                os.chmod(FALLBACK_ROOT, 0o755)
                (self.data_dir / "cluster-location").write_text(str(cluster) + "\n")
        cluster.mkdir(parents=True, exist_ok=True)
        if _is_root():
            shutil.chown(cluster, SERVER_USER, SERVER_USER)
            if cluster.parent != self.data_dir:
                shutil.chown(cluster.parent, SERVER_USER, SERVER_USER)
        os.chmod(cluster, 0o700)

    # --- lifecycle -------------------------------------------------------------------------
    def initialised(self) -> bool:
        """Whether initdb has run."""
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster with initdb (once)."""
        bindir = server_bindir()
        check_postgis(bindir)
        self._ensure_server_user()
        self._prepare_dirs()
        self.ensure_credentials()
        if self.initialised():
            return
        pwfile = self.cluster_dir / ".pwfile"
        pwfile.write_text(self.password() + "\n")
        if _is_root():
            shutil.chown(pwfile, SERVER_USER, SERVER_USER)
        os.chmod(pwfile, 0o600)
        try:
            self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    ROLE,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    f"--pwfile={pwfile}",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = self.pgdata / "postgresql.conf"
        with conf.open("a") as fh:
            fh.write(SERVER_CONF)

    def running(self) -> bool:
        """Whether the postmaster of this cluster is alive."""
        if not self.initialised():
            return False
        proc = self._run(
            [str(server_bindir() / "pg_ctl"), "status", "-D", str(self.pgdata)], check=False
        )
        return proc.returncode == 0

    def start(self, database: str = "geo") -> str:
        """Start the cluster (idempotent), make sure the roles and ``database`` exist, and return
        the superuser's URL of it (see :meth:`url` for the other roles')."""
        self.init()
        if not self.running():
            port = self.port
            if port is None or not _port_is_free(port):
                port = _free_port()
                (self.data_dir / "port").write_text(f"{port}\n")
            socket_dir = self.socket_dir
            options = f"-p {port} -c listen_addresses=127.0.0.1"
            if socket_dir is not None:
                socket_dir.mkdir(exist_ok=True)
                if _is_root():
                    shutil.chown(socket_dir, SERVER_USER, SERVER_USER)
                options += f" -k {socket_dir}"
            else:
                options += " -c unix_socket_directories=''"
            # pg_ctl itself removes a stale postmaster.pid whose process is gone.
            self._run(
                [
                    str(server_bindir() / "pg_ctl"),
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.cluster_dir / "server.log"),
                    "-o",
                    options,
                ]
            )
        self.ensure_database(database)
        return self.url(database)

    def ensure_database(self, database: str) -> None:
        """Create the roles and ``database`` (owned by the owner role) on the running cluster
        unless they exist; bring a database made before the roles under the owner role."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
            raise ClusterError(
                format_message("invalid database name: {database!r}", database=database)
            )
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            ensure_roles(conn, self.password)
            ensure_owned_database(conn, database)
        with psycopg.connect(self._conninfo(database), autocommit=True) as conn:
            prepare_schema(conn)

    def drop_database(self, database: str) -> None:
        """Drop ``database`` (closing its connections) if it exists. It destroys data."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
            raise ClusterError(
                format_message("invalid database name: {database!r}", database=database)
            )
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )

    def _conninfo(self, database: str) -> str:
        return psycopg_conninfo(
            host="127.0.0.1",
            port=self.port,
            user=ROLE,
            dbname=database,
            password=self.password("admin"),
        )

    def stop(self) -> bool:
        """Stop the cluster; return whether it was running."""
        if not self.running():
            return False
        self._run(
            [str(server_bindir() / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.pgdata)]
        )
        return True

    def status(self, database: str = "geo") -> ClusterStatus:
        """Report whether the cluster runs, where, and its URL."""
        running = self.running()
        return ClusterStatus(
            running=running,
            data_dir=self.data_dir,
            cluster_dir=self.cluster_dir,
            port=self.port,
            url=self.url(database) if self.port is not None else None,
        )

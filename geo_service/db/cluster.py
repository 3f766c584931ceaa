"""The embedded default database: a private PostgreSQL 15 + PostGIS cluster under ``GEO_DATA_DIR``.

No library manages a throw-away PostgreSQL cluster with a privilege drop for root and a
relocation when the server user cannot reach the checkout (testing.postgresql and pytest-postgresql
assume a non-root user and a reachable directory), so this module drives ``initdb`` / ``pg_ctl``
itself.

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
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo as psycopg_conninfo

from geo_service.errors import ClusterError, MissingSystemPackageError

PG_MAJOR = 15
SERVER_USER = os.environ.get("GEO_PG_USER", "postgres")
# The cluster's bootstrap superuser: it only creates the roles below and the databases.
ROLE = "geo"
# Least privilege (issue 13): migrations run as the owner of the schema; the API and the CLI
# connect as the application role (DML, audit rows insert-only); only the purge role may delete
# audit rows. The names are fixed: migration 0017 grants to them and the audit trigger checks
# membership of PURGE_ROLE.
OWNER_ROLE = "geo_owner"
APP_ROLE = "geo_app"
PURGE_ROLE = "geo_purge"
RoleName = Literal["admin", "owner", "app", "purge"]
ROLES: dict[str, str] = {
    "admin": ROLE,
    "owner": OWNER_ROLE,
    "app": APP_ROLE,
    "purge": PURGE_ROLE,
}
# Extensions PostgreSQL lets only a superuser create (PostGIS is not "trusted").
SUPERUSER_EXTENSIONS = ("postgis", "pgcrypto")
FALLBACK_ROOT = Path("/var/lib/geo-service")
# Unix socket paths are limited to 107 bytes; past that the cluster listens on TCP only.
MAX_SOCKET_DIR = 80

# Hand every object of schema public that the superuser owns (tables, sequences not tied to a
# column, functions, types; extension members excepted) to the owner role. Run on every start:
# it is a few catalogue reads when there is nothing to do.
TRANSFER_OWNERSHIP = sql.SQL("""
DO $$
DECLARE
  owner text := {owner};
  obj record;
BEGIN
  FOR obj IN
    SELECT c.oid::regclass::text AS name, c.relkind
    FROM pg_class c
    WHERE c.relnamespace = 'public'::regnamespace
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND pg_get_userbyid(c.relowner) <> owner
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.deptype = 'e')
      -- a serial/identity sequence follows its table
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                      AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                      AND d.deptype IN ('a', 'i') AND c.relkind = 'S')
    ORDER BY c.relkind = 'S'
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE obj.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                        WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                        ELSE 'TABLE' END,
                   obj.name, owner);
  END LOOP;
  FOR obj IN
    SELECT p.oid::regprocedure::text AS name, p.prokind
    FROM pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace
      AND pg_get_userbyid(p.proowner) <> owner
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE obj.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
                        ELSE 'FUNCTION' END, obj.name, owner);
  END LOOP;
  FOR obj IN
    SELECT t.oid::regtype::text AS name
    FROM pg_type t
    WHERE t.typnamespace = 'public'::regnamespace
      AND t.typtype IN ('e', 'd', 'r')
      AND pg_get_userbyid(t.typowner) <> owner
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                      AND d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO %I', obj.name, owner);
  END LOOP;
END $$
""")

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


def _bindir() -> Path:
    explicit = os.environ.get("GEO_PG_BINDIR")
    if explicit:
        if (Path(explicit) / "initdb").exists() and (Path(explicit) / "pg_ctl").exists():
            return Path(explicit)
        raise MissingSystemPackageError(
            f"GEO_PG_BINDIR={explicit} holds no initdb/pg_ctl: "
            f"apt-get install postgresql-{PG_MAJOR} postgresql-{PG_MAJOR}-postgis-3"
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
        f"PostgreSQL {PG_MAJOR} server binaries not found: "
        f"apt-get install postgresql-{PG_MAJOR} postgresql-{PG_MAJOR}-postgis-3"
    )


def _check_postgis(bindir: Path) -> None:
    out = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True)
    sharedir = (
        Path(out.stdout.strip())
        if out.returncode == 0
        else Path(f"/usr/share/postgresql/{PG_MAJOR}")
    )
    if not (sharedir / "extension" / "postgis.control").exists():
        raise MissingSystemPackageError(
            f"PostGIS is not installed for PostgreSQL {PG_MAJOR}: "
            f"apt-get install postgresql-{PG_MAJOR}-postgis-3"
        )


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

    Examples
    --------
    >>> cluster = EmbeddedCluster(Path(".geo-service"))  # doctest: +SKIP
    >>> cluster.start()  # doctest: +SKIP
    >>> cluster.url("geo")  # doctest: +SKIP
    'postgresql+psycopg://geo:...@127.0.0.1:54321/geo'
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

    def _credentials(self) -> dict[str, str]:
        """Passwords by role name, as the credentials file keeps them."""
        path = self.data_dir / "credentials"
        if not path.exists():
            return {}
        out: dict[str, str] = {}
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) == 1:  # the one bare line of a cluster made before the roles
                out[ROLE] = fields[0]
            elif len(fields) == 2:
                out[fields[0]] = fields[1]
        return out

    def ensure_credentials(self) -> None:
        """Give every role a random password in the credentials file (kept, once made)."""
        known = self._credentials()
        if all(name in known for name in ROLES.values()):
            return
        for name in ROLES.values():
            known.setdefault(name, secrets.token_urlsafe(24))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "credentials"
        tmp = path.with_name("credentials.tmp")
        tmp.unlink(missing_ok=True)
        # created 0600 from the start: the passwords are never readable by others
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{name} {pw}\n" for name, pw in known.items())
        os.replace(tmp, path)

    def password(self, role: RoleName = "admin") -> str:
        """Password of ``role`` (the superuser by default)."""
        name = ROLES[role]
        try:
            return self._credentials()[name]
        except KeyError:
            raise ClusterError(
                f"no password for role {name} in {self.data_dir / 'credentials'}: "
                "geo-service db start"
            ) from None

    def url(self, database: str = "geo", role: RoleName = "admin") -> str:
        """SQLAlchemy URL of ``database`` on this cluster, logged in as ``role``.

        ``admin`` is the superuser (creating roles and databases only); ``owner`` runs
        migrations; ``app`` is what the API and the CLI use; ``purge`` deletes audit rows.
        """
        if self.port is None:
            raise ClusterError("the embedded cluster has never been started: geo-service db start")
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
            raise ClusterError(f"{Path(argv[0]).name} failed: " + " | ".join(tail))
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
        bindir = _bindir()
        _check_postgis(bindir)
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
        proc = self._run([str(_bindir() / "pg_ctl"), "status", "-D", str(self.pgdata)], check=False)
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
                    str(_bindir() / "pg_ctl"),
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
            raise ClusterError(f"invalid database name: {database!r}")
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            self._ensure_roles(conn)
            owner = conn.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if owner is None:
                try:
                    conn.execute(
                        sql.SQL("CREATE DATABASE {} OWNER {}").format(
                            sql.Identifier(database), sql.Identifier(OWNER_ROLE)
                        )
                    )
                except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    pass  # another process made it just now
            elif owner[0] != OWNER_ROLE:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                        sql.Identifier(database), sql.Identifier(OWNER_ROLE)
                    )
                )
        with psycopg.connect(self._conninfo(database), autocommit=True) as conn:
            for extension in SUPERUSER_EXTENSIONS:
                conn.execute(
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension))
                )
            # A cluster started before the roles existed: its tables belong to the superuser.
            conn.execute(TRANSFER_OWNERSHIP.format(owner=sql.Literal(OWNER_ROLE)))

    def drop_database(self, database: str) -> None:
        """Drop ``database`` (closing its connections) if it exists. It destroys data."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", database):
            raise ClusterError(f"invalid database name: {database!r}")
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

    def _ensure_roles(self, conn: psycopg.Connection) -> None:
        """Create the owner, application and purge roles, or reset their attributes and
        passwords to what the credentials file says (idempotent)."""
        for key in ("owner", "app", "purge"):
            name = ROLES[key]
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            attributes = sql.SQL(
                " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                "PASSWORD {}"
            ).format(sql.Identifier(name), sql.Literal(self.password(key)))
            if not exists:
                try:
                    conn.execute(sql.SQL("CREATE") + attributes)
                    continue
                except psycopg.errors.DuplicateObject:  # another process made it just now
                    pass
            conn.execute(sql.SQL("ALTER") + attributes)

    def stop(self) -> bool:
        """Stop the cluster; return whether it was running."""
        if not self.running():
            return False
        self._run([str(_bindir() / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.pgdata)])
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


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as libpq (pg_dump, psql) understands it."""
    return "postgresql://" + url.split("://", 1)[1]


def _client_binary(name: str) -> str:
    try:
        return str(_bindir() / name)
    except MissingSystemPackageError:
        found = shutil.which(name)
        if found is None:
            raise
        return found


def backup(url: str, target: Path) -> int:
    """Dump the database at ``url`` to ``target`` (pg_dump custom format); return its size."""
    proc = subprocess.run(
        [
            _client_binary("pg_dump"),
            "--format=custom",
            "--no-owner",
            f"--file={target}",
            libpq_url(url),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise ClusterError("pg_dump failed: " + proc.stderr.strip().splitlines()[-1])
    return target.stat().st_size


def restore(url: str, source: Path) -> None:
    """Restore a custom-format dump into the database at ``url`` (run it as the owner role),
    replacing what is there; the database's extensions are kept, not re-created."""
    if not source.exists():
        raise ClusterError(f"{source} does not exist")
    listing = subprocess.run(
        [_client_binary("pg_restore"), "--list", str(source)], capture_output=True, text=True
    )
    if listing.returncode != 0:
        lines = [ln for ln in listing.stderr.strip().splitlines() if ln]
        raise ClusterError("pg_restore failed: " + (lines[-1] if lines else "unknown error"))
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
                _client_binary("pg_restore"),
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
        raise ClusterError("pg_restore failed: " + (lines[-1] if lines else "unknown error"))

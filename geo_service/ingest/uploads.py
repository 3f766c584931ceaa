"""Files from outside, handled as untrusted input (pure: no database, no HTTP).

- Every upload lives in its own private directory under one known root
  (``<tempdir>/geo-service-uploads/geo-upload-<pid>-*``), removed on every path; directories left
  by a process that died mid-import are swept at start-up (``sweep_stale_uploads``).
- The stored name never comes from the client (``check_client_filename`` only vets the name
  shown back in reports).
- The format is decided by the content (``sniff``), against an allow-list; GDAL never sees a
  file the sniffer did not recognise, so no VRT, no ``CSV:``/``/vsi*`` indirection, no driver
  picked by the client's suffix.
- Decompression is streamed through ``CappedReader``: a byte cap and an expansion-ratio cap,
  enforced while reading, so a decompression bomb is refused after a few MB, not parsed whole.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import stat
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, NoReturn
from xml.parsers import expat

from geo_service.errors import InvalidInputError, LimitExceededError
from geo_service.i18n import N_, format_message, gettext

log = logging.getLogger(__name__)

UPLOAD_ROOT_NAME = "geo-service-uploads"
WORKSPACE_PREFIX = "geo-upload-"
SNIFF_BYTES = 64 * 1024
COPY_CHUNK = 1024 * 1024
MAX_CLIENT_NAME = 255
# Below this many unpacked bytes the expansion ratio is not judged: tiny, very repetitive
# files (a header and a few rows) legitimately compress far better than real data.
RATIO_FLOOR_BYTES = 1_000_000
MAX_ZIP_MEMBERS = 1_000  # a shapefile zip holds a handful; a huge directory is itself a bomb
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
SHAPEFILE_MAGIC = b"\x00\x00\x27\x0a"  # file code 9994, big-endian
GPKG_APPLICATION_IDS = (b"GPKG", b"GP10", b"GP11")
UTF8_BOM = b"\xef\xbb\xbf"
CRS_KEY = re.compile(rb'"crs"\s*:', re.IGNORECASE)  # GDAL matches member names caselessly
# JSON may spell any character as \uXXXX: "\u0063rs" is "crs" to GDAL. No serializer escapes
# ASCII letters or "/", so refusing those escapes keeps the checks below unbypassable.
ESCAPED_ASCII = re.compile(rb"\\u00(?:[46][1-9a-f]|[57][0-9a]|2f)", re.IGNORECASE)
# GDAL dataset-name indirection (`/vsicurl/`, `/vsizip/`, ...) has no business inside a file.
GDAL_INDIRECTION = re.compile(rb"/vsi[a-z0-9_]*/", re.IGNORECASE)
# SQLite functions a GDAL-opened database could call to reach files or the network.
VIRTUAL_TABLE = re.compile(r"\bVIRTUAL\s+TABLE\b", re.IGNORECASE)
RTREE = re.compile(r"\bUSING\s+rtree\s*\(", re.IGNORECASE)
SQLITE_ESCAPES = re.compile(r"\b(ogr_\w+|load_extension|readfile|writefile|fts3_tokenizer)\s*\(")


class ImportFileError(InvalidInputError):
    """The file as a whole cannot be imported (format, CRS, missing columns)."""

    code = "import-file-error"
    title = N_("File cannot be imported")


class UnsupportedFileError(ImportFileError):
    """The file is not one of the accepted formats (judged by its content)."""

    status = 415
    code = "unsupported-file"
    title = N_("Unsupported file")


@dataclass(frozen=True)
class ReadLimits:
    """Caps enforced while a file is read."""

    max_features: int = 5_000_000
    max_uncompressed_bytes: int = 2_000_000_000
    max_compression_ratio: float = 100.0


@dataclass(frozen=True)
class Sniffed:
    """What the content of a file is: one of ``CONTENT_KINDS``, and whether it was gzipped."""

    kind: str
    gzipped: bool = False


CONTENT_KINDS = (
    "geojson",
    "gpkg",
    "shapefile",
    "shapefile-zip",
    "geoparquet",
    "table",
    "xlsx",
    "kml",
    "kmz",
)
# The root element of a KML document: <kml> in the OGC KML 2.2 namespace or one of Google
# Earth's (KML 2.0-2.2 as Google Earth wrote them before OGC adopted it).
KML_NAMESPACES = (
    "http://www.opengis.net/kml/2.2",
    "http://earth.google.com/kml/2.0",
    "http://earth.google.com/kml/2.1",
    "http://earth.google.com/kml/2.2",
)


# --- the private workspace ---------------------------------------------------------------


def upload_root() -> Path:
    """The one directory every upload workspace lives in (created private, 0700), one per
    system user: ``<tempdir>/geo-service-uploads-<uid>``."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    root = Path(tempfile.gettempdir()) / f"{UPLOAD_ROOT_NAME}-{uid}"
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.lstat()
    # A shared /tmp: refuse a root someone else made (or a symlink planted in its place).
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{root} is not a directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise OSError(f"{root} belongs to another user")
    return root


@contextmanager
def upload_workspace() -> Iterator[Path]:
    """A private directory for one upload, removed on every path out (exceptions included)."""
    path = Path(tempfile.mkdtemp(prefix=f"{WORKSPACE_PREFIX}{os.getpid()}-", dir=upload_root()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def sweep_stale_uploads(max_age_s: float = 24 * 3600) -> int:
    """Remove workspaces of processes that are gone (or older than ``max_age_s``).

    Called at start-up: an import killed mid-way (kill -9, power loss) leaves its copy of the
    upload (for households, residents' locations) behind; no other path removes it.
    Returns how many workspaces were removed.
    """
    try:
        root = upload_root()
    except OSError:
        log.warning("upload directory unusable; nothing swept", exc_info=True)
        return 0
    removed = 0
    now = time.time()
    for entry in root.iterdir():
        match = re.fullmatch(rf"{WORKSPACE_PREFIX}(\d+)-.*", entry.name)
        try:
            old = now - entry.lstat().st_mtime > max_age_s
        except FileNotFoundError:
            continue
        if match and not old and _pid_alive(int(match.group(1))):
            continue  # another live worker's import in flight
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    if removed:
        log.info("swept %d left-over upload workspace(s) from %s", removed, root)
    return removed


def check_client_filename(name: str | None) -> str:
    """The client's file name, vetted for showing back (never used to build a path).

    Refuses empty names, ``.``/``..``, names over 255 characters, path separators and control
    characters (NUL included) with a 422.
    """
    message = gettext(
        "the uploaded file's name must be 1 to 255 characters, not '.' or '..', "
        "without path separators or control characters"
    )
    if not name or name in (".", "..") or len(name) > MAX_CLIENT_NAME:
        raise InvalidInputError(message)
    if "/" in name or "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidInputError(message)
    return name


def save_upload(source: IO[bytes], workspace: Path) -> Path:
    """Copy an upload into ``workspace`` under a fixed internal name; return its path."""
    target = workspace / "upload.bin"
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, COPY_CHUNK)
    return target


# --- capped reading ------------------------------------------------------------------------


class _CountingReader(io.RawIOBase):
    """Counts the compressed bytes a decompressor has consumed."""

    def __init__(self, inner: IO[bytes]) -> None:
        self._inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


class CappedReader(io.RawIOBase):
    """A binary stream that raises LimitExceededError once too many bytes come out of it, or
    once they outgrow ``max_compression_ratio`` times the compressed bytes read so far."""

    def __init__(
        self,
        inner: IO[bytes],
        *,
        limits: ReadLimits,
        name: str,
        compressed_bytes: Callable[[], int] | None = None,
    ) -> None:
        self._inner = inner
        self._limits = limits
        self._name = name
        self._compressed = compressed_bytes
        self.count = 0

    def readable(self) -> bool:
        """A CappedReader is read, never written."""
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer
        """Fill ``buffer`` from the inner stream, then hold the caps."""
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        check_unpacked(
            self.count, self._compressed() if self._compressed else None, self._limits, self._name
        )
        return len(data)


def check_unpacked(unpacked: int, compressed: int | None, limits: ReadLimits, name: str) -> None:
    """Raise LimitExceededError when ``unpacked`` bytes pass the byte or the ratio cap."""
    if unpacked > limits.max_uncompressed_bytes:
        raise LimitExceededError(
            format_message(
                "{name} unpacks to more than {max_uncompressed_bytes:,} bytes; split the file",
                name=name,
                max_uncompressed_bytes=limits.max_uncompressed_bytes,
            )
        )
    if (
        compressed is not None
        and unpacked > RATIO_FLOOR_BYTES
        and unpacked > limits.max_compression_ratio * max(compressed, 1)
    ):
        raise LimitExceededError(
            format_message(
                "{name} expands more than {max_compression_ratio:g} times when unpacked (a "
                "decompression bomb?); refused",
                name=name,
                max_compression_ratio=limits.max_compression_ratio,
            )
        )


@contextmanager
def open_text_stream(
    path: Path, *, gzipped: bool, limits: ReadLimits, name: str
) -> Iterator[IO[bytes]]:
    """The bytes of a (possibly gzipped) text file through a ``CappedReader``."""
    with path.open("rb") as raw:
        if gzipped:
            counting = _CountingReader(raw)  # type: ignore[arg-type]
            inner = gzip.GzipFile(fileobj=io.BufferedReader(counting), mode="rb")
            capped = CappedReader(
                inner,  # type: ignore[arg-type]
                limits=limits,
                name=name,
                compressed_bytes=lambda: counting.count,
            )
        else:
            capped = CappedReader(raw, limits=limits, name=name)  # type: ignore[arg-type]
        yield io.BufferedReader(capped, buffer_size=COPY_CHUNK)  # type: ignore[arg-type]


# --- sniffing -------------------------------------------------------------------------------


def _refuse(name: str, why: str) -> UnsupportedFileError:
    log.warning("refused file %r: %s", name, why)
    return UnsupportedFileError(
        format_message(
            "{name}: {why}. Accepted: GeoJSON, GeoPackage, zipped Shapefile, GeoParquet, "
            "KML/KMZ, CSV/TSV/TXT (optionally gzipped) or Excel .xlsx/.xls with lon/lat columns",
            name=name,
            why=why,
        )
    )


def sniff(path: Path, *, name: str) -> Sniffed:
    """Decide what a file is from its first bytes; refuse anything not on the allow-list."""
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head:
        raise _refuse(name, gettext("the file is empty"))
    if head.startswith(b"SQLite format 3\x00"):
        if head[68:72] not in GPKG_APPLICATION_IDS:
            raise _refuse(
                name, gettext("an SQLite database that is not a GeoPackage is not accepted")
            )
        return Sniffed("gpkg")
    if head.startswith(b"PAR1"):
        return Sniffed("geoparquet")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return Sniffed("xlsx" if _is_xlsx(path) else "kmz" if _is_kmz(path) else "shapefile-zip")
    if head.startswith(OLE2_MAGIC):
        return Sniffed("xls")  # a legacy Office file: the reader opens only Excel workbooks
    if head.startswith(SHAPEFILE_MAGIC):
        return Sniffed("shapefile")
    gzipped = head.startswith(b"\x1f\x8b")
    if gzipped:
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(SNIFF_BYTES)
        except (OSError, EOFError, zlib_error()):
            raise _refuse(name, gettext("a damaged gzip file")) from None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # UTF-16 text with its BOM: Excel's "Unicode Text" (a TSV), a UTF-16 CSV. Only a
        # table is read so (GDAL is never given UTF-16 GeoJSON or KML).
        start = head.decode("utf-16", errors="ignore").lstrip("\ufeff").lstrip()
        if start.startswith(("<", "{", "[")):
            raise _refuse(name, gettext("UTF-16 text other than a CSV/TSV table is not accepted"))
        return Sniffed("table", gzipped=gzipped)
    if b"\x00" in head:
        raise _refuse(name, gettext("binary content of an unknown kind is not accepted"))
    text = head.lstrip(UTF8_BOM).lstrip()
    if text.startswith(b"<"):
        if _is_kml(head, name):
            if gzipped:
                raise _refuse(name, gettext("gzipped KML is not accepted; send the .kml or a .kmz"))
            return Sniffed("kml")
        raise _refuse(name, gettext("XML other than KML (a GDAL VRT, GML, ...) is not accepted"))
    if text.startswith(b"{"):
        if gzipped:
            raise _refuse(name, gettext("gzipped GeoJSON is not accepted; send it unzipped"))
        return Sniffed("geojson")
    if text.startswith(b"["):
        raise _refuse(name, gettext("a JSON array is not GeoJSON"))
    return Sniffed("table", gzipped=gzipped)


OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy Office files (.xls, .doc)
XLSX_WORKBOOK = "xl/workbook.xml"


def _is_xlsx(path: Path) -> bool:
    """An Excel workbook: a zip (of a sane member count) holding ``xl/workbook.xml``."""
    entries = _zip_entry_count(path)
    if entries is None or entries >= min(MAX_ZIP_MEMBERS, 0xFFFF):
        return False  # left to the zip reader, which refuses it with the reason
    try:
        with zipfile.ZipFile(path) as archive:
            return XLSX_WORKBOOK in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def check_xlsx(path: Path, *, limits: ReadLimits, name: str) -> None:
    """Refuse a workbook whose members unpack past the byte or ratio caps (before openpyxl
    opens it; zipfile never reads past a member's declared size)."""
    with zipfile.ZipFile(path) as archive:
        unpacked = sum(m.file_size for m in archive.infolist())
    check_unpacked(unpacked, path.stat().st_size, limits, name)


def zlib_error() -> type[Exception]:
    """zlib's error class (gzip raises it for corrupt streams)."""
    import zlib

    return zlib.error


def check_geojson(path: Path, *, name: str) -> None:
    """Refuse a GeoJSON file that names GDAL virtual file systems (``/vsi...``) or carries a
    linked CRS (GDAL fetches ``"crs": {"type": "link"|"url"}`` over HTTP); read in 1 MB steps.
    """
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(COPY_CHUNK):
            window = tail + chunk
            if GDAL_INDIRECTION.search(window):
                raise _refuse(name, gettext("the file names GDAL virtual file systems (/vsi...)"))
            if ESCAPED_ASCII.search(window):
                raise _refuse(
                    name, gettext("letters or '/' written as \\u escapes are not accepted")
                )
            if CRS_KEY.search(window):
                resume = fh.tell()
                fh.seek(resume - len(window))
                _check_crs_members(fh.read(len(window) + SNIFF_BYTES), name)
                fh.seek(resume)
            tail = chunk[-64:]


_UNDECODED = object()


def _check_crs_members(data: bytes, name: str) -> None:
    """Every ``"crs": {...}`` in ``data`` must name its CRS (type name or EPSG), not link it."""
    text = data.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    for match in re.finditer(r'"crs"\s*:\s*', text, re.IGNORECASE):
        try:
            value, _ = decoder.raw_decode(text, match.end())
        except json.JSONDecodeError:
            value = _UNDECODED
        kinds = (
            [v for k, v in value.items() if k.lower() == "type"] if isinstance(value, dict) else []
        )
        if value is _UNDECODED or (
            isinstance(value, dict)
            and (
                not kinds
                or not all(isinstance(k, str) and k.lower() in ("name", "epsg") for k in kinds)
            )
        ):
            raise _refuse(
                name, gettext("a GeoJSON 'crs' may only name a CRS; linked CRSs are not fetched")
            )


def check_geopackage(path: Path, *, name: str) -> None:
    """Refuse a GeoPackage with views, virtual tables other than its R-tree indexes, or SQL
    that calls functions able to reach files or the network (read with Python's sqlite3,
    read-only and immutable, before GDAL opens it)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            rows = db.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        raise _refuse(name, gettext("a damaged GeoPackage")) from None
    for kind, _, sql in rows:
        sql = sql or ""
        if kind == "view":
            raise _refuse(name, gettext("a GeoPackage with views is not accepted"))
        if VIRTUAL_TABLE.search(sql) and not RTREE.search(sql):
            raise _refuse(name, gettext("a GeoPackage with virtual tables is not accepted"))
        if SQLITE_ESCAPES.search(sql):
            raise _refuse(
                name, gettext("a GeoPackage whose SQL calls external functions is not accepted")
            )


def check_shapefile(path: Path, *, name: str) -> None:
    """Refuse a .shp whose header is not a shapefile's."""
    with path.open("rb") as fh:
        if fh.read(4) != SHAPEFILE_MAGIC:
            raise _refuse(name, gettext("the .shp is not a shapefile"))


def _zip_entry_count(path: Path) -> int | None:
    """Entries in a zip's central directory, from its end record (None: no record found)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(max(0, size - 65_557))
        tail = fh.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    return struct.unpack("<H", tail[at + 10 : at + 12])[0]


@contextmanager
def _damaged_zip_refused(name: str) -> Iterator[None]:
    """Unpack inside this: what a damaged or encrypted zip raises becomes a refusal of
    ``name`` (the library's own words only in the log)."""
    try:
        yield
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        RuntimeError,
        NotImplementedError,
        EOFError,
        OSError,
        zlib_error(),
    ) as exc:
        log.warning("zip %s unreadable: %s", name, exc)
        raise _refuse(name, gettext("a damaged or encrypted zip file")) from None


def extract_shapefile(
    path: Path, into: Path, *, layer: str | None, limits: ReadLimits, name: str
) -> Path:
    """Copy one shapefile's parts out of a zip into ``into`` under fixed names, streamed with
    the byte and ratio caps; return the path of its .shp. Other members are never opened."""
    entries = _zip_entry_count(path)
    if entries is None:
        raise _refuse(name, gettext("a damaged zip file"))
    if entries >= min(MAX_ZIP_MEMBERS, 0xFFFF):
        raise _refuse(
            name,
            format_message(
                "a zip with more than {limit} members is not accepted", limit=MAX_ZIP_MEMBERS
            ),
        )
    with _damaged_zip_refused(name):
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            by_lower = {m.filename.lower(): m for m in members}
            shps = [m for m in members if m.filename.lower().endswith(".shp")]
            if layer is not None:
                shps = [m for m in shps if PurePosixPath(m.filename).stem == layer]
            if not shps:
                raise _refuse(
                    name,
                    format_message("the zip holds no shapefile named {layer!r}", layer=layer)
                    if layer
                    else gettext("the zip holds no shapefile"),
                )
            if len(shps) > 1:
                raise _refuse(
                    name, gettext("the zip holds several shapefiles; name one with layer")
                )
            stem = shps[0].filename[: -len(".shp")].lower()
            total = 0
            for suffix in SHAPEFILE_PARTS:
                member = by_lower.get(stem + suffix)
                if member is None:
                    continue
                target = into / f"layer{suffix}"
                with archive.open(member) as src, target.open("wb") as out:
                    written = 0
                    while chunk := src.read(COPY_CHUNK):
                        written += len(chunk)
                        total += len(chunk)
                        out.write(chunk)
                        check_unpacked(total, None, limits, name)
                        check_unpacked(written, member.compress_size, limits, name)
    shp = into / "layer.shp"
    check_shapefile(shp, name=name)
    return shp


# --- KML and KMZ (Google Earth) ------------------------------------------------------------
# Read with Python's expat (the standard library's XML parser, also GDAL's) before GDAL sees
# the file: a DOCTYPE is refused outright, so no DTD, internal or external entity is ever
# expanded (the XXE and "billion laughs" attacks need one). defusedxml does the same with a
# dependency more; this is three handlers. NetworkLinks are counted, never followed: GDAL
# does not fetch them and its network access is off (readers.GDAL_HARDENING).


class _KmlRoot(Exception):  # noqa: N818 - a signal, not an error
    """Raised by the sniffing parser at the first element: its namespace and name."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


def _kml_parser(name: str) -> expat.XMLParserType:
    """An expat parser (namespaces split by a space) that refuses DTDs and entities."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def no_doctype(*_: object) -> NoReturn:
        raise _refuse(name, gettext("XML with a DOCTYPE (a DTD or entities) is not accepted"))

    parser.StartDoctypeDeclHandler = no_doctype
    parser.EntityDeclHandler = no_doctype
    parser.ExternalEntityRefHandler = no_doctype
    return parser


def _is_kml_root(tag: str) -> bool:
    namespace, _, local = tag.rpartition(" ")
    return local == "kml" and namespace in KML_NAMESPACES


# An XML declaration's encoding. expat reads UTF-8, UTF-16, Latin-1 and ASCII itself; a KML
# written in GBK/GB18030 or Big5 (Chinese tools do) is decoded by Python's codecs instead.
XML_ENCODING = re.compile(
    rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([\w.:-]+)["']"""
)
EXPAT_ENCODINGS = ("utf-8", "utf-16", "iso8859-1", "ascii")


def xml_encoding(head: bytes) -> str | None:
    """The Python codec of the encoding ``head``'s XML declaration names, when expat cannot
    read it itself (GBK, GB18030, Big5, ...); None for UTF-8/UTF-16/Latin-1/ASCII, no
    declaration, or an encoding Python does not know (then expat refuses the file)."""
    match = XML_ENCODING.match(head)
    if match is None:
        return None
    try:
        codec = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    return None if codec in EXPAT_ENCODINGS else codec


def xml_to_utf8(path: Path, target: Path, encoding: str, *, name: str) -> Path:
    """Copy an XML file declared in ``encoding`` to ``target`` as UTF-8 (its declaration
    saying so), streamed 1 MB at a time, so that expat and GDAL can read it."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as src, target.open("w", encoding="utf-8") as out:
            first = True
            while True:
                chunk = src.read(COPY_CHUNK)
                data = decoder.decode(chunk, final=not chunk)
                if first:
                    data = re.sub(
                        r"""(<\?xml[^>]*?encoding\s*=\s*["'])[\w.:-]+""", r"\1UTF-8", data, count=1
                    )
                    first = False
                out.write(data)
                if not chunk:
                    break
    except UnicodeDecodeError:
        raise ImportFileError(
            format_message(
                "cannot read {name}: it is not a readable KML file (not {encoding} text, as its "
                "XML declaration says)",
                name=name,
                encoding=encoding,
            )
        ) from None
    return target


def _is_kml(head: bytes, name: str) -> bool:
    """The first element of ``head`` is a KML root; a DOCTYPE before it is refused."""
    parser = _kml_parser(name)

    def first(tag: str, _attrs: object) -> None:
        raise _KmlRoot(tag)

    parser.StartElementHandler = first
    encoding = xml_encoding(head)
    try:
        if encoding:  # a str is parsed as UTF-8 whatever the declaration says
            parser.Parse(codecs.decode(head, encoding, errors="ignore"), False)
        else:
            parser.Parse(head, False)
    except _KmlRoot as root:
        return _is_kml_root(root.tag)
    except expat.ExpatError:
        return False
    return False


def check_kml(path: Path, *, name: str) -> int:
    """Parse a whole KML document (1 MB at a time) before GDAL opens it: its root must be
    ``kml`` in a KML namespace, with no DOCTYPE. Returns how many NetworkLinks it holds
    (never followed). Raises UnsupportedFileError (415) for a DOCTYPE or another root,
    ImportFileError (422) for XML that is not well-formed."""
    parser = _kml_parser(name)
    tags: list[str] = []  # the root, then every NetworkLink

    def start(tag: str, _attrs: object) -> None:
        if not tags:
            tags.append(tag)
            if not _is_kml_root(tag):
                raise _refuse(name, gettext("XML other than KML is not accepted"))
        elif tag.endswith(" NetworkLink"):
            tags.append(tag)

    parser.StartElementHandler = start
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(COPY_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except expat.ExpatError as exc:
        log.warning("KML %r not well-formed: %s", name, exc)
        raise ImportFileError(
            format_message(
                "cannot read {name}: it is not a readable KML file (not well-formed XML at line "
                "{lineno})",
                name=name,
                lineno=exc.lineno,
            )
        ) from None
    return len(tags) - 1 if tags else 0


def _kml_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".kml")]


def kmz_other_documents(path: Path) -> list[str]:
    """The .kml members of a KMZ besides its main document (``doc.kml``), which the import
    does not read (KML 2.2 / Google's KMZ rule: the root doc.kml is the document; others are
    reached only through NetworkLinks, never fetched here). Listed in the import's
    assumptions so that a KMZ with several documents is not read silently in part."""
    with zipfile.ZipFile(path) as archive:
        names = [m.filename for m in _kml_members(archive)]
    main = [n for n in names if PurePosixPath(n).name.lower() == "doc.kml"]
    return [n for n in names if n not in main] if len(main) == 1 else []


def _is_kmz(path: Path) -> bool:
    """A KMZ: a zip (of a sane member count) holding a .kml and no shapefile."""
    entries = _zip_entry_count(path)
    if entries is None or entries >= min(MAX_ZIP_MEMBERS, 0xFFFF):
        return False  # left to the zip reader, which refuses it with the reason
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n.lower() for n in archive.namelist()]
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return any(n.endswith(".kml") for n in names) and not any(n.endswith(".shp") for n in names)


def extract_kml(path: Path, into: Path, *, limits: ReadLimits, name: str) -> Path:
    """Copy the document of a KMZ (its ``doc.kml``, else its only .kml) into ``into`` as
    ``doc.kml``, streamed with the byte and ratio caps; return its path. Other members
    (images, models, a second .kml) are never opened."""
    target = into / "doc.kml"
    with _damaged_zip_refused(name):
        with zipfile.ZipFile(path) as archive:
            kmls = _kml_members(archive)
            main = [m for m in kmls if PurePosixPath(m.filename).name.lower() == "doc.kml"]
            chosen = main if len(main) == 1 else kmls
            if len(chosen) != 1:
                listed = ", ".join(repr(m.filename) for m in kmls[:20])
                raise _refuse(
                    name,
                    format_message(
                        "the KMZ holds several .kml files ({listed}) and no single doc.kml",
                        listed=listed,
                    ),
                )
            member = chosen[0]
            with archive.open(member) as src, target.open("wb") as out:
                written = 0
                while chunk := src.read(COPY_CHUNK):
                    written += len(chunk)
                    out.write(chunk)
                    check_unpacked(written, member.compress_size, limits, name)
    return target

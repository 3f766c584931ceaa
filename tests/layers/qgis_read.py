"""Load geo-service's OGC API - Features layers in real QGIS and print what QGIS read as JSON.

Run by Debian's ``/usr/bin/python3`` (PyQGIS lives there, not in the project's virtualenv), from
tests/layers/test_qgis.py::

    GEO_QGIS_KEY=gs_... /usr/bin/python3 tests/layers/qgis_read.py SPEC_JSON

SPEC_JSON: ``{"url": ..., "auth": "x-api-key" | "bearer" | "none", "profile": DIR,
"layers": [{"id": "grids", "bbox": [x0, y0, x1, y1] | null, "sample": 3}]}``.

Layers load through the "OAPIF" provider (QGIS's WFS provider for OGC API - Features), URI
``url='http://host:port' typename='grids' pageSize='1000'`` (plus ``restrictToRequestBBOX='1'``
to send the view's ``bbox``). Debian's QGIS 3.22 cannot send the API key by itself: its data
source URIs take no ``http-header:`` parameters, and its authentication methods (Basic, ESRI
token, identity certificate, PKI paths, PKCS#12) send neither ``X-API-Key`` nor a bearer key;
the OGC routes need ``layers:read`` even with ``GEO_PUBLIC_LAYERS``. So the key is added by a
request preprocessor on QGIS's network access manager (``QgsNetworkAccessManager.
setRequestPreprocessor``), the PyQGIS way a plugin or a startup script would do it. Every URL
QGIS asked for, and every HTTP status it got, is reported too.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any


def _plain(value: Any) -> Any:
    """A JSON-able copy of an attribute value (NULL -> None, Qt date/times -> ISO text)."""
    if value is None:
        return None
    if hasattr(value, "isNull") and value.isNull():
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "toString"):
        try:
            return value.toString("yyyy-MM-ddTHH:mm:ss")
        except TypeError:
            return value.toString()
    return str(value)


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from qgis.core import (
        Qgis,
        QgsApplication,
        QgsFeatureRequest,
        QgsNetworkAccessManager,
        QgsRectangle,
        QgsVectorLayer,
    )
    from qgis.PyQt.QtNetwork import QNetworkRequest

    os.makedirs(spec["profile"], exist_ok=True)
    app = QgsApplication([], False, spec["profile"])
    app.setPrefixPath("/usr", True)
    app.initQgis()

    key = os.environ.get("GEO_QGIS_KEY", "")
    asked: list[str] = []
    lock = threading.Lock()

    def add_credentials(request: Any) -> None:
        # called for every request QGIS makes, from whichever thread downloads
        with lock:
            asked.append(request.url().toString())
        if spec["auth"] == "x-api-key":
            request.setRawHeader(b"X-API-Key", key.encode())
        elif spec["auth"] == "bearer":
            request.setRawHeader(b"Authorization", f"Bearer {key}".encode())

    QgsNetworkAccessManager.setRequestPreprocessor(add_credentials)
    # Every answer, as the main thread's manager reports them for every thread's requests
    answered: list[list[Any]] = []
    status = QNetworkRequest.HttpStatusCodeAttribute
    QgsNetworkAccessManager.instance().finished.connect(
        lambda reply: answered.append([reply.request().url().toString(), reply.attribute(status)])
    )
    messages: list[str] = []  # QGIS's message log: why a layer did not load
    app.messageLog().messageReceived.connect(
        lambda message, tag, level: messages.append(f"{tag}: {message}")
    )

    out: dict[str, Any] = {"qgis": Qgis.QGIS_VERSION, "layers": {}}
    for wanted in spec["layers"]:
        cid = wanted["id"]
        uri = f"url='{spec['url']}' typename='{cid}' pageSize='{wanted.get('page_size', 1000)}'"
        if wanted.get("restrict_to_bbox"):
            uri += " restrictToRequestBBOX='1'"
        layer = QgsVectorLayer(uri, cid, "OAPIF")
        info: dict[str, Any] = {"uri": uri, "valid": layer.isValid()}
        if not layer.isValid():
            # (why: see "answered" and "messages"; touching its error() or its provider
            # crashes PyQGIS 3.22)
            out["layers"][cid] = info
            continue
        if wanted.get("bbox"):
            # first, as when a map opens on a part of the layer (later reads may use the
            # features QGIS has cached); exact intersection, as the API's bbox filter
            x0, y0, x1, y1 = wanted["bbox"]
            request = QgsFeatureRequest().setFilterRect(QgsRectangle(x0, y0, x1, y1))
            request.setFlags(QgsFeatureRequest.ExactIntersect)
            info["in_bbox"] = sum(1 for _ in layer.getFeatures(request))
        features = list(layer.getFeatures())
        extent = layer.extent()
        info.update(
            feature_count=layer.featureCount(),
            read=len(features),
            fields=[f.name() for f in layer.fields()],
            geometry_type=layer.geometryType(),
            crs=layer.crs().authid(),
            extent=[extent.xMinimum(), extent.yMinimum(), extent.xMaximum(), extent.yMaximum()],
            with_geometry=sum(1 for f in features if f.hasGeometry()),
            sample=[
                {name: _plain(f[name]) for name in layer.fields().names()}
                for f in features[: wanted.get("sample", 3)]
            ],
        )
        out["layers"][cid] = info
        del features, layer
    app.processEvents()
    with lock:
        out["asked"] = list(asked)
    out["answered"] = answered
    out["messages"] = messages
    print(json.dumps(out))
    app.exitQgis()


if __name__ == "__main__":
    main()

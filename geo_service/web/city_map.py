"""The city overview page (``/map``): grids coloured by recent incidents, with the hierarchy.

folium writes feature properties into tooltips as HTML (``innerHTML``), so every string that
comes from the database is HTML-escaped here before folium sees it (issue 13: a grid named
``<img onerror=...>`` ran script in an admin's browser). Escaped strings hold no ``<``, so no
value can close the page's ``<script>`` either; the page's own inline scripts carry the
response's CSP nonce.
"""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np

from geo_service.i18n import N_, current_language, format_message
from geo_service.i18n import gettext as _
from geo_service.web.pages import add_nonce, render_page, tile_source

STATIC_PREFIX = "/static/vendor/leaflet"
# ColorBrewer YlOrRd, 6 classes.
PALETTE = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
LEVEL_NAMES = {"community": N_("Community"), "street": N_("Street"), "district": N_("District")}
LEVEL_BOUNDARIES = {
    "community": N_("Community boundaries"),
    "street": N_("Street boundaries"),
    "district": N_("District boundaries"),
}
OUTLINE_STYLE = {
    "community": {"color": "#555555", "weight": 1.2, "fillOpacity": 0},
    "street": {"color": "#1f3b73", "weight": 2.2, "fillOpacity": 0},
    "district": {"color": "#000000", "weight": 3.5, "fillOpacity": 0},
}


def quantile_breaks(values: np.ndarray, classes: int = len(PALETTE)) -> list[float]:
    """Upper bounds of ``classes`` quantile classes (unique, ascending)."""
    if len(values) == 0:
        return [0.0]
    qs = np.quantile(values, np.linspace(0, 1, classes + 1)[1:])
    return sorted(set(float(q) for q in qs))


def _escaped(collection: dict[str, Any]) -> dict[str, Any]:
    """A copy of a FeatureCollection whose string properties are HTML-escaped."""
    return {
        **collection,
        "features": [
            {
                **feature,
                "properties": {
                    key: html.escape(value) if isinstance(value, str) else value
                    for key, value in feature["properties"].items()
                },
            }
            for feature in collection["features"]
        ],
    }


def render_city_map(
    layers: dict[str, Any],
    *,
    tiles: str | None = "OpenStreetMap",
    nonce: str | None = None,
    basemaps: str | None = None,
) -> str:
    """Render the overview map as a standalone HTML page (Leaflet served locally); with
    ``nonce``, every inline script tag carries it (for a CSP without 'unsafe-inline').

    With ``basemaps`` (the JSON of ``web.basemaps.base_maps``) the page gets the switcher of
    the other map pages (``static/pages/basemaps.js``, started by ``city_map.js``) instead of
    folium's one tile layer ``tiles``.
    """
    import folium  # heavy; only the map pages need it

    grids = _escaped(layers["grid"])
    until = html.escape(str(layers["until"]))
    window_days = int(layers["window_days"])
    counts = np.array([f["properties"]["incidents"] for f in grids["features"]], dtype=float)
    breaks = quantile_breaks(counts)

    def colour(n: float) -> str:
        idx = int(np.searchsorted(breaks, n, side="left"))
        return PALETTE[min(idx, len(PALETTE) - 1)]

    centre = _centre(grids)
    fmap = folium.Map(
        location=centre, zoom_start=11, tiles=None, control_scale=True, zoom_snap=0.25
    )
    # Serve Leaflet ourselves: no CDN at run time, and nothing else folium would pull in.
    fmap.default_js = [("leaflet", f"{STATIC_PREFIX}/leaflet.js")]
    fmap.default_css = [("leaflet_css", f"{STATIC_PREFIX}/leaflet.css")]
    source = tile_source(tiles) if tiles and basemaps is None else None
    if source:
        # The same tiles as the other pages (and the CSP's img-src); folium wants a name.
        folium.TileLayer(
            source["url"], name=_("Base map"), attr=html.escape(source["attribution"])
        ).add_to(fmap)

    folium.GeoJson(
        grids,
        name=format_message(
            "Grids: incidents, {days} days to {until}", days=window_days, until=until
        ),
        style_function=lambda f: {
            "fillColor": colour(f["properties"]["incidents"]),
            "color": "#777777",
            "weight": 0.5,
            "fillOpacity": 0.7,
        },
        highlight_function=lambda f: {"weight": 2.5, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(
            fields=["name", "code", "incidents"],
            aliases=[
                html.escape(_("Grid")),
                html.escape(_("Code")),
                html.escape(format_message("Incidents ({days} d)", days=window_days)),
            ],
        ),
    ).add_to(fmap)
    for level in ("community", "street", "district"):
        if not layers[level]["features"]:
            continue  # not every city has every level (Chicago: districts and beats only)
        style = OUTLINE_STYLE[level]
        folium.GeoJson(
            _escaped(layers[level]),
            name=html.escape(_(LEVEL_BOUNDARIES[level])),
            style_function=lambda f, s=style: s,
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "code"],
                aliases=[html.escape(_(LEVEL_NAMES[level])), html.escape(_("Code"))],
            ),
            show=level != "community",
        ).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    bounds = _bounds(grids)
    if bounds:
        fmap.fit_bounds(bounds)
    root: Any = fmap.get_root()  # a branca Figure
    root.html.add_child(folium.Element(_legend(breaks, window_days, until)))
    root.html.add_child(
        folium.Element(render_page("_language.html", floating=True))  # the language switch
    )
    root.header.add_child(folium.Element(render_page("city_map_head.html")))
    # before folium's script makes the layer control: on a phone it is made folded
    root.html.add_child(folium.Element(render_page("city_map_phone.html")))
    if basemaps is not None:
        root.html.add_child(
            folium.Element(render_page("city_map_basemaps.html", basemaps=basemaps))
        )
    page = root.render()
    # the page's language, for assistive technology and the CJK font rule (i18n.css)
    page = re.sub(r"<html(?=[\s>])", f'<html lang="{current_language()}"', page, count=1)
    return add_nonce(page, nonce) if nonce else page


def _bounds(collection: dict[str, Any]) -> list[list[float]] | None:
    coords = [pt for f in collection["features"] for pt in _outer_ring(f["geometry"])]
    if not coords:
        return None
    arr = np.array(coords)
    return [
        [float(arr[:, 1].min()), float(arr[:, 0].min())],
        [float(arr[:, 1].max()), float(arr[:, 0].max())],
    ]


def _outer_ring(geom: dict[str, Any]) -> list[list[float]]:
    if geom["type"] == "MultiPolygon":
        return [pt for poly in geom["coordinates"] for pt in poly[0]]
    return geom["coordinates"][0]


def _centre(collection: dict[str, Any]) -> list[float]:
    step = max(1, len(collection["features"]) // 200)
    coords = [pt for f in collection["features"][::step] for pt in _outer_ring(f["geometry"])]
    if not coords:
        return [30.59, 114.30]
    arr = np.array(coords)
    return [float(arr[:, 1].mean()), float(arr[:, 0].mean())]


def _legend(breaks: list[float], window_days: int, until: str) -> str:
    """The legend box (a Jinja2 template, autoescaped like every page)."""
    rows = []
    lower = -1.0
    for i, upper in enumerate(breaks):
        colour = PALETTE[min(i, len(PALETTE) - 1)]
        first = int(lower) + 1
        label = f"{first}" if first >= int(upper) else f"{first} – {int(upper)}"
        rows.append((colour, label))
        lower = upper
    return render_page("city_map_legend.html", rows=rows, window_days=window_days, until=until)

"""The base maps the Leaflet pages offer, and what each page needs to draw on them (issue 19).

Chinese grid offices read their streets on Chinese base maps. Tianditu (天地图, the national
platform) draws in CGCS2000, which is WGS84 to within centimetres at a city's scale, so our
WGS84 overlays land on it as they are. Amap/Gaode (高德) and Tencent (腾讯) draw in GCJ-02,
a few hundred metres off (about 590 m in Wuhan): on those the pages draw every overlay shifted
into GCJ-02 and turn clicks back into WGS84 (``static/pages/basemaps.js``), so the API is
always spoken to in WGS84.

Tile URL templates are the providers' public XYZ/WMTS endpoints as the Leaflet plugins of
record use them (Leaflet.ChineseTmsProviders; Tianditu's WMTS ``*_w`` layers, Web Mercator,
subdomains t0-t7, key in ``tk``, http://lbs.tianditu.gov.cn/server/MapService.html). Tencent
numbers tile rows from the bottom (TMS), hence Leaflet's ``{-y}``.

China's rules on publishing maps (《地图管理条例》, 《公开地图内容表示规范》) want the map
approval number (审图号) of the base map shown with it; each Chinese provider shows its own
under its maps, and Tianditu its logo and its surveying qualification (甲测资字1100471) as
well (its JS API v4's copyright control). The numbers are settings (``GEO_TIANDITU_APPROVAL``,
``GEO_AMAP_APPROVAL``, ``GEO_TENCENT_APPROVAL``): a provider's changes when its maps are
reviewed again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import quote

from geo_service.settings import MapSettings
from geo_service.web.pages import OSM_TILES, tile_origin, tile_source

_TIANDITU = (
    "https://t{s}.tianditu.gov.cn/%(layer)s_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=%(layer)s&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={tk}"
)
AMAP_URL = (
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
    "&x={x}&y={y}&z={z}"
)
TENCENT_URL = "https://rt{s}.map.gtimg.com/tile?z={z}&x={x}&y={-y}&styleid=1&scene=0"


@dataclass(frozen=True)
class TileLayer:
    """One tile layer of a base map: a Leaflet URL template, its subdomains, its zooms."""

    url: str
    subdomains: str = ""
    max_native_zoom: int = 18


@dataclass(frozen=True)
class Logo:
    """A provider's logo shown in the attribution, as the provider's own map API shows it."""

    url: str
    width: int
    height: int
    alt: str


# Tianditu's JS API v4 draws this logo (53 x 22 px) in its copyright control; it is served
# from Tianditu's own host, which the pages' CSP allows whenever Tianditu is offered.
TIANDITU_LOGO = Logo("https://api.tianditu.gov.cn/v4.0/image/logo.png", 53, 22, "天地图")
TIANDITU_ATTRIBUTION = "© 天地图 Tianditu - 甲测资字1100471"


@dataclass(frozen=True)
class Provider:
    """A built-in base map: names, datum, layers (base first, then annotation), attribution."""

    id: str
    name: str
    name_zh: str
    crs: Literal["wgs84", "gcj02"]
    layers: tuple[TileLayer, ...]
    attribution: str
    attribution_url: str
    origin: str  # the host its images come from, for the pages' CSP img-src
    needs_tianditu_key: bool = False
    approval_setting: str = ""  # the MapSettings member holding its 审图号, if it has one
    logo: Logo | None = None


def _tianditu(id: str, name: str, name_zh: str, base: str, annotation: str) -> Provider:
    """A Tianditu base map: its WMTS base layer and annotation layer (``vec``/``cva``,
    ``img``/``cia``), on the key, with Tianditu's logo and 审图号."""
    return Provider(
        id,
        name,
        name_zh,
        "wgs84",
        tuple(TileLayer(_TIANDITU % {"layer": layer}, "01234567") for layer in (base, annotation)),
        TIANDITU_ATTRIBUTION,
        "https://www.tianditu.gov.cn",
        "https://*.tianditu.gov.cn",
        needs_tianditu_key=True,
        approval_setting="tianditu_approval",
        logo=TIANDITU_LOGO,
    )


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "osm",
        "OpenStreetMap",
        "OpenStreetMap",
        "wgs84",
        (TileLayer(OSM_TILES, max_native_zoom=19),),
        "© OpenStreetMap contributors",
        "https://www.openstreetmap.org/copyright",
        "https://tile.openstreetmap.org",
    ),
    _tianditu("tianditu-vec", "Tianditu streets", "天地图 矢量", "vec", "cva"),
    _tianditu("tianditu-img", "Tianditu imagery", "天地图 影像", "img", "cia"),
    Provider(
        "amap",
        "Amap (GCJ-02)",
        "高德地图 (GCJ-02)",
        "gcj02",
        (TileLayer(AMAP_URL, "1234"),),
        "© 高德地图 AutoNavi",
        "https://www.amap.com",
        "https://*.is.autonavi.com",
        approval_setting="amap_approval",
    ),
    Provider(
        "tencent",
        "Tencent Maps (GCJ-02)",
        "腾讯地图 (GCJ-02)",
        "gcj02",
        (TileLayer(TENCENT_URL, "0123"),),
        "© 腾讯地图 Tencent",
        "https://map.qq.com",
        "https://*.map.gtimg.com",
        approval_setting="tencent_approval",
    ),
)
# the plain background: no tiles, so no host and nothing to attribute
NO_BASE_MAP = Provider("none", "No base map", "无底图", "wgs84", (), "", "", "")
NEEDS_KEY = {
    "en": "needs a Tianditu key: set GEO_TIANDITU_KEY",
    "zh": "需要天地图密钥：请设置 GEO_TIANDITU_KEY",
}


def offered_ids(maps: MapSettings, tiles_setting: str) -> list[str]:
    """The base maps the pages offer, in order: ``GEO_MAP_BASEMAPS`` when set, else what
    ``GEO_MAP_TILES`` implies. With OpenStreetMap (the default) every built-in base map is
    offered; with a tile server of its own (an offline network) only that one, and with
    'none' none, so the pages' images come only from hosts the deployment chose."""
    if maps.map_basemaps:
        return list(dict.fromkeys(maps.map_basemaps))
    source = tile_source(tiles_setting)
    if source is None:
        return ["none"]
    if source["url"] != OSM_TILES:
        return ["configured", "none"]
    return [p.id for p in PROVIDERS] + ["none"]


def image_origins(maps: MapSettings, tiles_setting: str) -> tuple[str, ...]:
    """The hosts of the offered built-in base maps, for the pages' CSP ``img-src`` (the
    configured tile server's own host is added by ``pages.content_security_policy``)."""
    offered = set(offered_ids(maps, tiles_setting))
    origins = [p.origin for p in PROVIDERS if p.id in offered]
    if "configured" in offered:
        source = tile_source(tiles_setting)
        origin = tile_origin(source["url"]) if source else None
        if origin:
            origins.append(origin)
    return tuple(origins)


def base_maps(maps: MapSettings, tiles_setting: str) -> dict[str, Any]:
    """The base maps a page offers, as the JSON its ``data-basemaps`` carries.

    Parameters
    ----------
    maps : MapSettings
        ``GEO_TIANDITU_KEY``, ``GEO_MAP_TILES_CRS``, ``GEO_MAP_BASEMAPS``, ``GEO_MAP_BASEMAP``.
    tiles_setting : str
        ``GEO_MAP_TILES``: the ``configured`` choice (a URL template or an xyzservices name,
        as ``pages.tile_source`` reads it); OpenStreetMap's own tiles are the ``osm`` choice.

    Returns
    -------
    dict
        ``{"default": id, "choices": [{"id", "name", "name_zh", "crs": "wgs84"|"gcj02",
        "layers": [{"url", "subdomains", "max_native_zoom"}], "attribution",
        "attribution_url", "approval": "" | "GS(…)…号", "logo": None | {"url", "width",
        "height", "alt"}, "disabled": None | {"en", "zh"}}]}``, in the order of
        ``offered_ids``. A Tianditu choice without a key has no layers and says why it is
        disabled; the key, when set, is in its URLs (a browser-side key). The default is
        ``GEO_MAP_BASEMAP`` when offered and usable, else the first usable choice.
    """
    source = tile_source(tiles_setting)
    choices: dict[str, dict[str, Any]] = {}
    if source is not None and source["url"] != OSM_TILES:
        configured = Provider(
            "configured",
            "Configured tiles",
            "配置的底图",
            maps.map_tiles_crs,
            (TileLayer(source["url"], "abc", max_native_zoom=19),),
            source["attribution"],
            "",
            tile_origin(source["url"]) or "",
        )
        choices["configured"] = _choice(configured, maps)
    for provider in (*PROVIDERS, NO_BASE_MAP):
        choices[provider.id] = _choice(provider, maps)
    offered = [choices[i] for i in offered_ids(maps, tiles_setting) if i in choices]
    usable = [c["id"] for c in offered if c["disabled"] is None]
    default = next((i for i in (maps.map_basemap, *usable) if i in usable), "none")
    return {"default": default, "choices": offered}


def _choice(provider: Provider, maps: MapSettings) -> dict[str, Any]:
    tianditu_key = maps.tianditu_key
    disabled = NEEDS_KEY if provider.needs_tianditu_key and not tianditu_key else None
    key = quote(tianditu_key, safe="")
    layers = [
        {
            # only a Tianditu URL holds the key (a configured URL is taken as it is written)
            "url": layer.url.replace("{tk}", key) if provider.needs_tianditu_key else layer.url,
            "subdomains": layer.subdomains,
            "max_native_zoom": layer.max_native_zoom,
        }
        for layer in provider.layers
    ]
    return {
        "id": provider.id,
        "name": provider.name,
        "name_zh": provider.name_zh,
        "crs": provider.crs,
        "layers": [] if disabled else layers,
        "attribution": provider.attribution,
        "attribution_url": provider.attribution_url,
        "approval": getattr(maps, provider.approval_setting) if provider.approval_setting else "",
        "logo": asdict(provider.logo) if provider.logo else None,
        "disabled": disabled,
    }

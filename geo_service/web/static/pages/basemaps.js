"use strict";
// The base-map switcher of the Leaflet pages (issue 19); loads after leaflet.js and gcoord,
// before common.js, whose baseLayer(map) hands over to attachBaseMaps(map) (on /map, the
// folium page, city_map.js does).
//
// The choices come from the server (web/basemaps.py) in <div id="basemaps" data-basemaps>:
// OpenStreetMap, Tianditu streets (vec + cva) and imagery (img + cia), Amap and Tencent, the
// configured tiles, none. A Tianditu choice without a key is shown disabled, saying why.
//
// GCJ-02 base maps (Amap, Tencent, GCJ-02 configured tiles): the one implementation is the
// map's CRS. Leaflet projects every position it draws through map.options.crs and turns
// every screen position it reports back through the same CRS, so a Web Mercator of
// GCJ-02 positions (WGS84 -> GCJ-02 by gcoord, then spherical Mercator) shifts every
// overlay (GeoJSON, markers, popups, fitBounds, setView) onto the GCJ-02 streets, and every
// click, getCenter and getBounds comes back in WGS84 (GCJ-02 -> WGS84 by gcoord's iterated
// inverse, within 1e-6 degrees). The pages keep speaking WGS84 to the API.
const BASEMAP_KEY = "geo-service.basemap";
const MERCATOR = L.Projection.SphericalMercator;

const GCJ02_PROJECTION = {
  R: MERCATOR.R,
  MAX_LATITUDE: MERCATOR.MAX_LATITUDE,
  bounds: MERCATOR.bounds,
  project(latlng) {
    const [lng, lat] = gcoord.transform([latlng.lng, latlng.lat], gcoord.WGS84, gcoord.GCJ02);
    return MERCATOR.project(L.latLng(lat, lng));
  },
  unproject(point) {
    const shifted = MERCATOR.unproject(point);
    const [lng, lat] = gcoord.transform([shifted.lng, shifted.lat], gcoord.GCJ02, gcoord.WGS84);
    return L.latLng(lat, lng);
  },
};
// EPSG:3857's tile grid and scales, positions taken through GCJ-02 on the way.
const GCJ02_MERCATOR = L.extend({}, L.CRS.EPSG3857, {code: "GCJ02:3857", projection: GCJ02_PROJECTION});

const BASEMAPS = (() => {
  const holder = document.getElementById("basemaps");
  try { return JSON.parse(holder ? holder.dataset.basemaps : "null"); } catch (err) { return null; }
})();
const basemapState = {maps: [], id: null, layers: new Map(), selects: []};

const basemapInChinese = () => (document.documentElement.lang || "").toLowerCase().startsWith("zh");
function basemapLabel(choice) {
  const zh = basemapInChinese();
  const name = zh ? choice.name_zh : choice.name;
  if (!choice.disabled) return name;
  return `${name} (${zh ? choice.disabled.zh : choice.disabled.en})`;
}

// Attribution goes into Leaflet's control as HTML: every value escaped (this file also runs
// on the folium page, without common.js).
const basemapEsc = (s) => String(s ?? "").replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
// A Chinese provider's map approval number (审图号) is shown as the rules word it, in either
// language; Tianditu's logo leads its line, as its own JS API shows it.
const basemapHttps = (url) => /^https:\/\//.test(url || "");
function basemapAttribution(choice) {
  if (!choice.attribution) return "";
  const url = choice.attribution_url;
  const link = (inner) => (basemapHttps(url) ? `<a href="${basemapEsc(url)}">${inner}</a>` : inner);
  const logo = choice.logo && basemapHttps(choice.logo.url)
    ? link(`<img class="basemap-logo" src="${basemapEsc(choice.logo.url)}" ` +
           `width="${Number(choice.logo.width) || 53}" height="${Number(choice.logo.height) || 22}" ` +
           `alt="${basemapEsc(choice.logo.alt)}" style="vertical-align:middle">`) + " "
    : "";
  const approval = choice.approval
    ? ` - <span class="basemap-approval">审图号：${basemapEsc(choice.approval)}</span>`
    : "";
  return logo + link(basemapEsc(choice.attribution)) + approval;
}

function basemapChoice(id) {
  const usable = BASEMAPS.choices.filter((c) => !c.disabled);
  return usable.find((c) => c.id === id) || usable.find((c) => c.id === BASEMAPS.default) ||
         usable[0] || null;
}

// Draw ``choice`` under ``map``: its tile layers (base, then annotation) and its CRS. A map
// already showing something is re-projected at the same WGS84 centre and zoom.
function showBasemap(map, choice) {
  const old = basemapState.layers.get(map);
  if (old) map.removeLayer(old);
  const crs = choice && choice.crs === "gcj02" ? GCJ02_MERCATOR : L.CRS.EPSG3857;
  if (map.options.crs !== crs) {
    const view = map._loaded ? [map.getCenter(), map.getZoom()] : null;
    map.options.crs = crs;
    if (view) map.setView(view[0], view[1], {reset: true});
  }
  const group = L.layerGroup((choice ? choice.layers : []).map((layer, i) => L.tileLayer(layer.url, {
    subdomains: layer.subdomains || "abc",
    maxZoom: 19,
    maxNativeZoom: layer.max_native_zoom || 18,
    attribution: i === 0 ? basemapAttribution(choice) : "",
  })));
  group.addTo(map);  // in order: the annotation layer lies over its base
  fitAttribution(map);
  basemapState.layers.set(map, group);
  map.getContainer().dataset.basemap = choice ? choice.id : "none";
  map.getContainer().dataset.basemapCrs = choice ? choice.crs : "wgs84";
}

// The attribution stays one line on a phone (the pages' panels sit just above it, and a
// second line would run under the bottom-left controls): smaller type there, and the
// provider's marks (logo, 审图号) kept whole rather than cut.
function fitAttribution(map) {
  const control = map.attributionControl;
  if (!control) return;
  const box = control.getContainer();
  const narrow = map.getSize().x < 600;
  box.style.fontSize = narrow ? "10px" : "";
  box.style.whiteSpace = narrow ? "nowrap" : "";
  box.style.maxWidth = narrow ? "100vw" : "";
  if (narrow) control.setPrefix(false);  // Leaflet's own credit: its licence asks for none here
  // the attribution line spans a phone's width: the bottom-left controls stand on it
  const left = map.getContainer().querySelector(".leaflet-bottom.leaflet-left");
  if (left) left.style.bottom = narrow ? "24px" : "";
}

// Choose a base map for every map of the page (the planner's two move together).
function chooseBasemap(id) {
  const choice = basemapChoice(id);
  basemapState.id = choice ? choice.id : "none";
  for (const map of basemapState.maps) showBasemap(map, choice);
  for (const select of basemapState.selects) select.value = basemapState.id;
  try { localStorage.setItem(BASEMAP_KEY, basemapState.id); } catch (err) { /* private mode */ }
}

const BasemapControl = L.Control.extend({
  options: {position: "topleft"},
  onAdd() {
    const box = L.DomUtil.create("div", "leaflet-bar basemap-switch");
    box.style.cssText = "background:#fff;padding:3px 5px;font:12px/1.4 sans-serif";
    const select = L.DomUtil.create("select", "", box);
    select.setAttribute("aria-label", basemapInChinese() ? "底图" : "base map");
    select.name = "basemap";
    // a disabled choice's reason is long: it stays in the menu, the closed menu stays small
    select.style.maxWidth = this.options.position === "bottomleft" ? "8.5em" : "11em";
    for (const choice of BASEMAPS.choices) {
      const option = L.DomUtil.create("option", "", select);
      option.value = choice.id;
      option.textContent = basemapLabel(choice);
      option.disabled = Boolean(choice.disabled);
      if (choice.disabled) option.title = basemapLabel(choice);
    }
    select.value = basemapState.id;
    L.DomEvent.disableClickPropagation(box);
    L.DomEvent.on(select, "change", () => chooseBasemap(select.value));
    basemapState.selects.push(select);
    return box;
  },
});

// Called by common.js's baseLayer(map, options) right after L.map(): before the map has a
// view. options.position puts the menu where the page has room (the phone page: top right).
function attachBaseMaps(map, options = {}) {
  if (!BASEMAPS) return;
  basemapState.maps.push(map);
  if (basemapState.id === null) {
    let saved = null;
    try { saved = localStorage.getItem(BASEMAP_KEY); } catch (err) { /* private mode */ }
    const choice = basemapChoice(saved);
    basemapState.id = choice ? choice.id : "none";
  }
  showBasemap(map, basemapChoice(basemapState.id));
  // under the zoom buttons; on a phone the pages' own panels fill the top: at the bottom left
  const position = options.position || (map.getSize().x < 600 ? "bottomleft" : "topleft");
  if (BASEMAPS.choices.length > 1) new BasemapControl({position}).addTo(map);
}

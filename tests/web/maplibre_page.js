// A web map on another origin, as an analyst would build it: geo-service's vector tile layers
// (TileJSON sources) and an OGC API Features items page (a GeoJSON source), the API key sent
// as a header by MapLibre's transformRequest. tests/layers/test_maplibre.py reads `window.report`.
// Query: ?api=<geo-service base URL>&key=<API key>&collection=<OGC collection>&lon=&lat=&zoom=
"use strict";

const query = new URLSearchParams(window.location.search);
const api = query.get("api");
const key = query.get("key");
const collection = query.get("collection");
const report = {
  errors: [],
  sourcesLoaded: {},
  tileRequests: 0,
  preflight: null,
  rendered: null,
  webgl: null,
};
window.report = report;

// A request with the key header is not "simple": the browser sends an OPTIONS preflight first.
fetch(`${api}/tiles/grids.json`, { headers: { "X-API-Key": key } })
  .then((response) => { report.preflight = response.status; })
  .catch((error) => { report.preflight = String(error); });

const map = new maplibregl.Map({
  container: "map",
  center: [Number(query.get("lon")), Number(query.get("lat"))],
  zoom: Number(query.get("zoom")),
  fadeDuration: 0,
  attributionControl: false,
  transformRequest: (url) => {
    if (!url.startsWith(api)) return { url };
    if (url.includes(".mvt")) report.tileRequests += 1;
    return { url, headers: { "X-API-Key": key } };
  },
  style: {
    version: 8,
    sources: {
      heatmap: { type: "vector", url: `${api}/tiles/heatmap.json` },
      grids: { type: "vector", url: `${api}/tiles/grids.json` },
      incidents: { type: "vector", url: `${api}/tiles/incidents.json` },
      items: { type: "geojson", data: `${api}/collections/${collection}/items?limit=1000` },
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": "#f3f1ec" } },
      {
        id: "heatmap", type: "fill", source: "heatmap", "source-layer": "heatmap",
        paint: {
          "fill-color": ["interpolate", ["linear"], ["get", "count"],
            1, "#ffffb2", 5, "#fecc5c", 15, "#fd8d3c", 40, "#e31a1c"],
          "fill-opacity": 0.55,
        },
      },
      {
        id: "items", type: "line", source: "items",
        paint: { "line-color": "#6a3d9a", "line-width": 2 },
      },
      {
        id: "grids", type: "line", source: "grids", "source-layer": "grids",
        paint: { "line-color": "#252525", "line-width": 1 },
      },
      {
        id: "incidents", type: "circle", source: "incidents", "source-layer": "incidents",
        filter: ["==", ["geometry-type"], "Point"],
        paint: {
          "circle-radius": 4,
          "circle-color": ["match", ["get", "priority"], 1, "#b2182b", 2, "#ef8a62", "#2166ac"],
          "circle-stroke-color": "#ffffff",
          "circle-stroke-width": 1,
        },
      },
    ],
  },
});

map.on("error", (event) => {
  report.errors.push(String((event.error && event.error.message) || event.error || event));
});
map.on("sourcedata", (event) => {
  if (event.isSourceLoaded && event.sourceId) report.sourcesLoaded[event.sourceId] = true;
});
map.on("load", () => {
  const gl = map.painter && map.painter.context && map.painter.context.gl;
  report.webgl = gl ? gl.getParameter(gl.VERSION) : null;
});
map.on("idle", () => {
  const count = (layer) => map.queryRenderedFeatures({ layers: [layer] }).length;
  report.rendered = {
    heatmap: count("heatmap"),
    grids: count("grids"),
    incidents: count("incidents"),
    items: count("items"),
  };
});

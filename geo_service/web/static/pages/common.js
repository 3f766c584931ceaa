// Shared by the map pages (issue 13): page settings come from data- attributes of <body>
// (the Content-Security-Policy allows no inline script), every value from the server is
// escaped before it goes into HTML, and writes carry the session's CSRF token.
"use strict";

const PAGE = document.body.dataset;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (n) => (Number.isFinite(Number(n)) ? Number(n) : "");
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
// The page's language (issue 19): <html lang>, and the translations of this script's strings
// from the server's gettext catalogue ("pages" domain) in data-i18n. t("{n} open", {n: 3})
// translates, then fills {name} placeholders; the result is text: it still goes through esc()
// or textContent like any other value.
const LANG = document.documentElement.lang || "en";
const I18N = (() => { try { return JSON.parse(PAGE.i18n || "{}"); } catch (err) { return {}; } })();
function t(message, values = {}) {
  return (I18N[message] || message).replace(/\{(\w+)\}/g,
    (whole, name) => (name in values ? String(values[name]) : whole));
}

// A required field left empty says so in the page's language, not in the browser's own
// ("Please fill out this field."); typing or choosing clears it.
const FILL_IN = t("Please fill in this field.");
document.addEventListener("invalid", (e) => {
  const field = e.target;
  if (field.validity && field.validity.valueMissing) field.setCustomValidity(FILL_IN);
}, true);
for (const type of ["input", "change"]) {
  document.addEventListener(type, (e) => {
    const field = e.target;
    if (field.setCustomValidity && field.validationMessage === FILL_IN) field.setCustomValidity("");
  }, true);
}

// An area's name in the page's language: the server's `display_name` (chosen by the
// request's language), else its `names` for the page's language, else its `name`.
function areaName(props) {
  const names = (props && props.names) || {};
  return (props && props.display_name) || names[LANG] || names[LANG.split("-")[0]] ||
    (props && props.name) || "";
}

// Leaflet's own control words in the page's language, and a metric scale bar (Chinese and
// metric maps: Leaflet's default also shows miles), for every map the page makes after this.
if (typeof L !== "undefined") {
  L.Control.Zoom.prototype.options.zoomInTitle = t("Zoom in");
  L.Control.Zoom.prototype.options.zoomOutTitle = t("Zoom out");
  L.Control.Scale.prototype.options.imperial = false;
}

// options: {position} of the base-map menu (basemaps.js; a Leaflet control position)
function baseLayer(map, options = {}) {
  if (typeof attachBaseMaps === "function") return attachBaseMaps(map, options);  // basemaps.js
  if (!PAGE.tiles) return;
  const tiles = JSON.parse(PAGE.tiles);
  L.tileLayer(tiles.url, {maxZoom: 19, attribution: esc(tiles.attribution)}).addTo(map);
}

async function api(path, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = {...(options.headers || {})};
  if (!SAFE_METHODS.has(method)) headers["X-CSRF-Token"] = PAGE.csrf || "";
  const response = await fetch(path, {credentials: "same-origin", ...options, headers});
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error(body.detail || t("HTTP {status}", {status: response.status}));
    err.status = response.status;  // a page may act on a 409 (read the thing again)
    err.problem = body;
    throw err;
  }
  return body;
}

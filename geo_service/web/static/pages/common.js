// Shared by the map pages (issue 13): page settings come from data- attributes of <body>
// (the Content-Security-Policy allows no inline script), every value from the server is
// escaped before it goes into HTML, and writes carry the session's CSRF token.
"use strict";

const PAGE = document.body.dataset;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (n) => (Number.isFinite(Number(n)) ? Number(n) : "");
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function baseLayer(map) {
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
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

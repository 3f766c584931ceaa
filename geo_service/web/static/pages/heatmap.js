"use strict";
// Heatmap and hot spots (/map/heatmap); loads after common.js.
// PAGE.end: the local day after the newest incident's (GEO_TIMEZONE). Windows are whole local
// days: they are sent as dates, which the server reads as local midnight; the arithmetic is
// on dates (UTC midnights here), so no browser time zone enters it.
const END = new Date(`${PAGE.end}T00:00:00Z`);
const DAY_MS = 86400000;
const isoDay = (date) => date.toISOString().slice(0, 10);
const HEAT = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"];
const CLASS_COLOURS = {
  "Hot Spot - 99% Confidence": "#d7191c", "Hot Spot - 95% Confidence": "#f46d43",
  "Hot Spot - 90% Confidence": "#fdae61", "Not Significant": null,
  "Cold Spot - 90% Confidence": "#abd9e9", "Cold Spot - 95% Confidence": "#74add1",
  "Cold Spot - 99% Confidence": "#2c7bb6"};
// What a class or pattern (ArcGIS's English names: the data's values) is called on the page.
const CLASS_LABELS = {
  "Hot Spot - 99% Confidence": t("Hot Spot - 99% Confidence"),
  "Hot Spot - 95% Confidence": t("Hot Spot - 95% Confidence"),
  "Hot Spot - 90% Confidence": t("Hot Spot - 90% Confidence"),
  "Not Significant": t("Not Significant"),
  "Cold Spot - 90% Confidence": t("Cold Spot - 90% Confidence"),
  "Cold Spot - 95% Confidence": t("Cold Spot - 95% Confidence"),
  "Cold Spot - 99% Confidence": t("Cold Spot - 99% Confidence"),
  "New Hot Spot": t("New Hot Spot"), "Consecutive Hot Spot": t("Consecutive Hot Spot"),
  "Intensifying Hot Spot": t("Intensifying Hot Spot"),
  "Persistent Hot Spot": t("Persistent Hot Spot"),
  "Diminishing Hot Spot": t("Diminishing Hot Spot"), "Sporadic Hot Spot": t("Sporadic Hot Spot"),
  "Oscillating Hot Spot": t("Oscillating Hot Spot"),
  "Historical Hot Spot": t("Historical Hot Spot"),
  "New Cold Spot": t("New Cold Spot"), "Consecutive Cold Spot": t("Consecutive Cold Spot"),
  "Intensifying Cold Spot": t("Intensifying Cold Spot"),
  "Persistent Cold Spot": t("Persistent Cold Spot"),
  "Diminishing Cold Spot": t("Diminishing Cold Spot"),
  "Sporadic Cold Spot": t("Sporadic Cold Spot"),
  "Oscillating Cold Spot": t("Oscillating Cold Spot"),
  "Historical Cold Spot": t("Historical Cold Spot"),
};
const label = (name) => CLASS_LABELS[name] || name;
const map = L.map("map", {zoomSnap: 0.25});
baseLayer(map);
const outlines = L.geoJSON(null, {style: {color: "#444", weight: 0.6, fill: false},
                                  interactive: false}).addTo(map);
const cells = L.geoJSON(null).addTo(map);

function untilDate() {
  const weeksBack = Number($("week").max) - Number($("week").value);
  return new Date(END.getTime() - weeksBack * 7 * DAY_MS);
}
function params() {
  const until = untilDate();
  const since = new Date(until.getTime() - Number($("window").value) * DAY_MS);
  const p = new URLSearchParams({res: 8, since: isoDay(since), until: isoDay(until)});
  if ($("category").value) p.set("category", $("category").value);
  // the last local day in the window (until is the midnight after it)
  $("until-label").textContent = isoDay(new Date(until.getTime() - DAY_MS));
  return p;
}
function quantiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return [1, 2, 3, 4, 5].map((k) => sorted[Math.floor(k / 6 * (sorted.length - 1))]);
}
function legend(rows) {
  $("legend").innerHTML = rows.map(([colour, label]) =>
    `<div><span style="background:${esc(colour)}"></span>${esc(label)}</div>`).join("");
}
const PATTERN_COLOURS = {
  "New Hot Spot": "#fdae61", "Consecutive Hot Spot": "#f46d43",
  "Intensifying Hot Spot": "#a50026", "Persistent Hot Spot": "#d73027",
  "Diminishing Hot Spot": "#fee090", "Sporadic Hot Spot": "#f9d057",
  "Oscillating Hot Spot": "#e08214", "Historical Hot Spot": "#b35806",
  "New Cold Spot": "#abd9e9", "Consecutive Cold Spot": "#74add1",
  "Intensifying Cold Spot": "#313695", "Persistent Cold Spot": "#4575b4",
  "Diminishing Cold Spot": "#e0f3f8", "Sporadic Cold Spot": "#91bfdb",
  "Oscillating Cold Spot": "#8073ac", "Historical Cold Spot": "#542788"};
// The newest batch run of a kind ('geo-service analytics run'): time controls do not apply.
async function batchRun(kind) {
  const runs = await fetch(`/analytics/runs?kind=${kind}&limit=1`, {credentials: "same-origin"});
  if (!runs.ok) return {error: runs.status};
  const newest = (await runs.json()).data[0];
  if (!newest) return {error: t("no {kind} run yet", {kind})};
  const response = await fetch(`/analytics/runs/${newest.id}?limit=100000`,
                               {credentials: "same-origin"});
  return response.ok ? {data: await response.json()} : {error: response.status};
}
function showBatch(data, kind) {
  const run = data.run;
  const key = kind === "emerging" ? "pattern" : "class";
  const colours = kind === "emerging" ? PATTERN_COLOURS : CLASS_COLOURS;
  data.features = data.features.filter((f) => colours[f.properties[key]]);
  cells.options.style = (f) => ({fillColor: colours[f.properties[key]], fillOpacity: 0.75,
                                 color: "#666", weight: 0.4});
  const present = new Set(data.features.map((f) => f.properties[key]));
  legend(Object.entries(colours).filter(([k, c]) => c && present.has(k))
    .map(([k, c]) => [c, label(k)]));
  const window = [run.params.since, run.params.until].map((t) => (t || "…").slice(0, 10));
  $("status").textContent = t("batch run {id} ({engine}, {window}): {cells} cells with a pattern",
                              {id: run.id, engine: run.engine, window: window.join(" – "),
                               cells: data.features.length});
  cells.addData(data);
  cells.eachLayer((layer) => {
    const p = layer.feature.properties;
    layer.bindTooltip(`${esc(label(p[key]))}<br>${esc(t("{n} incidents", {n: num(p.count)}))}` +
                      (p.z !== undefined ? `, z = ${esc(p.z.toFixed(2))}` : ""));
  });
}
let generation = 0;
async function refresh() {
  const mine = ++generation;
  $("status").textContent = t("loading…");
  const choice = $("layer").value;
  // a stored run has its own window and category: the live controls do not apply to it
  for (const id of ["category", "window", "week"]) $(id).disabled = choice.startsWith("batch-");
  if (choice.startsWith("batch-")) {
    const kind = choice.slice(6);
    const got = await batchRun(kind);
    if (mine !== generation) return;
    cells.clearLayers();
    if (got.error) { $("status").textContent = t("batch layer: {error}", {error: got.error}); return; }
    showBatch(got.data, kind);
    return;
  }
  const heat = choice === "heat";
  const url = heat ? `/heatmap/h3?${params()}` : `/hotspots?${params()}`;
  const response = await fetch(url, {credentials: "same-origin"});
  if (mine !== generation) return;
  if (!response.ok) { $("status").textContent = t("error {status}", {status: response.status}); return; }
  const data = await response.json();
  if (mine !== generation) return;  // a newer choice came while this body was read
  cells.clearLayers();
  if (heat) {
    const breaks = quantiles(data.features.map((f) => f.properties.count));
    const colour = (n) => HEAT[breaks.filter((b) => n > b).length];
    cells.options.style = (f) => ({fillColor: colour(f.properties.count), fillOpacity: 0.7,
                                   color: "#888", weight: 0.3});
    // small counts repeat a break: a class between two equal breaks is empty (no "2 – 1")
    const rows = [];
    HEAT.forEach((c, i) => {
      const lo = i === 0 ? null : breaks[i - 1] + 1;
      const hi = i < 5 ? breaks[i] : null;
      if (lo !== null && hi !== null && lo > hi) return;
      rows.push([c, lo === null ? `≤ ${hi}` : hi === null ? `> ${breaks[4]}` :
                    lo === hi ? `${lo}` : `${lo} – ${hi}`]);
    });
    legend(rows);
    $("status").textContent = t("{total} incidents in {cells} cells",
                                {total: data.total, cells: data.features.length});
  } else {
    data.features = data.features.filter((f) => CLASS_COLOURS[f.properties.class]);
    cells.options.style = (f) => ({fillColor: CLASS_COLOURS[f.properties.class],
                                   fillOpacity: 0.75, color: "#666", weight: 0.4});
    legend(Object.entries(CLASS_COLOURS).filter(([, c]) => c).map(([k, c]) => [c, label(k)]));
    $("status").textContent = t("{n} significant cells", {n: data.features.length});
  }
  cells.addData(data);
  cells.eachLayer((layer) => {
    const p = layer.feature.properties;
    const incidents = esc(t("{n} incidents", {n: num(p.count)}));
    layer.bindTooltip(heat ? `${esc(p.h3)}<br>${incidents}` :
      `${esc(p.class_label || label(p.class))}<br>${incidents}, z = ${esc(p.z.toFixed(2))}, ` +
      `p(FDR) = ${esc(p.p_fdr.toExponential(1))}`);
  });
}
// The outlines the user may see, at the coarsest level that has any: communities for the city's
// staff, a grid worker's own grid (an area-bound user sees no community). The map is fitted
// to them; with none at all (an empty city), to the cells once they load, else the world.
async function visibleOutlines() {
  for (const level of ["community", "grid"]) {
    const response = await fetch(`/areas?level=${level}`, {credentials: "same-origin"});
    const body = response.ok ? await response.json() : null;
    if (body && Array.isArray(body.features) && body.features.length) return body;
  }
  return null;
}
visibleOutlines().then(async (found) => {
  if (found) outlines.addData(found);
  const bounds = outlines.getBounds();
  // on a phone the controls fill the top of the map: fit below them
  const top = map.getSize().x < 600 ? $("controls").offsetHeight + 10 : 0;
  if (bounds.isValid()) map.fitBounds(bounds, {paddingTopLeft: [0, top]}); else map.fitWorld();
  await refresh();
  const drawn = cells.getBounds();
  if (!bounds.isValid() && drawn.isValid()) map.fitBounds(drawn);
});
for (const id of ["category", "window", "week", "layer"]) $(id).addEventListener("change", refresh);

"use strict";
// The planner's page (/map/planner); loads after common.js. Every figure in a table comes
// from GET /workload (today's version, or the draft's by version_id) so the table, the
// colours and the balance agree, and a hand edit is measured the same way at once.
const SCALE = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"];
const LEVELS = ["district", "street", "community"];
const LEVEL_NAMES = {district: t("district"), street: t("street"), community: t("community"),
                     grid: t("grid")};
const MOVED = {block: t("block"), cell: t("cell")};  // what a hand edit moved
// Words of the tables, translated once (t() inside a template literal escapes extraction)
const TEXT = {
  today: t("today"),
  draft: t("draft"),
  draftNow: t("draft now"),
  asProposed: t("as proposed"),
  proposal: t("proposal"),
  keep: t("keep this grid as it is"),
  lock: t("lock"),
  grid: t("grid"),
  households: t("households"),
  homes: t("homes"),
  workloadHours: t("workload, hours"),
  workH: t("work h"),
  shareOfMean: t("share of the mean of its parent's grids"),
  pctMean: t("% mean"),
  ha: t("ha"),
  continues: t("continues: today's grid it carries on, as proposed; for a grid edited by hand, the one it covers more than half of, else shares most area with"),
  from: t("from"),
  delta: t("workload minus that of today's grid it continues"),
  colour: t("colour: a grid's share of the mean of its parent's grids"),
  unavoidable: t("(the whole area redrawn: no plan holds more)"),
  boundsBroken: t("Bounds broken as proposed"),
  countsSet: t("Grid counts set by the bounds"),
  maxMean: t("max / mean"),
  lockedKept: t("locked: kept as it is"),
  cv: t("CV"),
  gini: t("Gini"),
};
const TERMS = ["incidents", "households", "rental_units", "travel"];
const EXPORTS = [["gpkg", "GeoPackage"], ["shp", "Shapefile"], ["geojson", "GeoJSON"],
                 ["csv", "CSV"], ["csv-xy", t("CSV (lon/lat)")]];
const JSON_HEADERS = {"Content-Type": "application/json"};

function makeMap(id) {
  const map = L.map(id, {zoomSnap: 0.25});
  baseLayer(map);
  return map;
}
const maps = {today: makeMap("today"), proposal: makeMap("proposal")};
const layers = {today: L.geoJSON(null).addTo(maps.today), proposal: L.geoJSON(null).addTo(maps.proposal)};
let syncing = false;  // the two maps move together
for (const [a, b] of [["today", "proposal"], ["proposal", "today"]]) {
  maps[a].on("move", () => {
    if (syncing) return;
    syncing = true;
    maps[b].setView(maps[a].getCenter(), maps[a].getZoom(), {animate: false});
    syncing = false;
  });
}

const state = {
  areas: {},            // level -> areas of the version in force, by code
  scope: null,          // the area chosen (a feature of the version in force)
  today: null,          // {work, grids}
  draft: null,          // {id, metrics, scopeId, work, grids, edits, touched, published, inForce}
  locked: new Set(),    // codes of today's grids the next proposal keeps
};
let loading = 0;        // generation of the latest load: older answers are dropped

// --- small helpers ---------------------------------------------------------------------
function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}
function numberIn(id) {
  const value = $(id).value.trim();
  if (value === "") return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}
function weights() { return Object.fromEntries(TERMS.map((t) => [t, numberIn(`w-${t}`) ?? 1])); }
function windowDays() { return Math.round(numberIn("window") ?? 90); }
function tolerance() {
  return state.draft ? state.draft.metrics.tolerance ?? 0.05 : (numberIn("tolerance") ?? 5) / 100;
}
function figuresQuery() {
  const q = new URLSearchParams({level: "grid", window_days: windowDays()});
  for (const [term, w] of Object.entries(weights())) q.set(`w_${term}`, w);
  return q;
}
const byCode = (a, b) => a.properties.code.localeCompare(b.properties.code);
const fixed = (n, d = 1) => (Number.isFinite(Number(n)) && n !== null ? Number(n).toFixed(d) : "–");
const hectares = (km2) => fixed(km2 * 100, 1);
const pct = (share, d = 0) => (share == null ? "–" : `${(share * 100).toFixed(d)}%`);
function signed(n) {
  if (!Number.isFinite(n)) return "";
  const s = Math.abs(n) < 0.05 ? "0.0" : Math.abs(n).toFixed(1);
  return n >= 0.05 ? `+${s}` : n <= -0.05 ? `−${s}` : s;
}
// The codes' common stem up to a dash ("D01-S01-C01-"): tables show the rest.
function stemOf(codes) {
  if (!codes.length) return "";
  let stem = codes[0];
  for (const c of codes) while (!c.startsWith(stem)) stem = stem.slice(0, -1);
  return stem.slice(0, stem.lastIndexOf("-") + 1);
}
let stem = "";
const short = (code) => (code && code.startsWith(stem) ? code.slice(stem.length) : code ?? "");

// --- loading ----------------------------------------------------------------------------
async function measure(parentId, versionId = null) {
  const q = figuresQuery();
  q.set("parent_id", parentId);
  if (versionId) q.set("version_id", versionId);
  return api(`/workload?${q}`);
}
function parentIds(work) {
  return work.parents.map((p) => p.parent_id).filter((id) => Number.isInteger(id));
}
async function gridsUnder(ids, version = null) {
  const v = version ? `&version=${num(version)}` : "";
  const parts = await Promise.all(ids.map((id) => api(`/areas?level=grid&parent_id=${num(id)}${v}`)));
  return {type: "FeatureCollection", features: parts.flatMap((p) => p.features).sort(byCode)};
}
async function loadAreaLists() {
  const lists = await Promise.all(LEVELS.map((level) => api(`/areas?level=${level}`)));
  LEVELS.forEach((level, i) => { state.areas[level] = lists[i].features.sort(byCode); });
  const have = LEVELS.filter((level) => state.areas[level].length);
  const keep = $("level").value;
  $("level").innerHTML = have.map((l) => `<option value="${esc(l)}">${esc(LEVEL_NAMES[l] || l)}</option>`).join("");
  $("level").value = have.includes(keep) ? keep : have.includes("community") ? "community" : have[0];
}
function fillAreas(keepCode = null) {
  const areas = state.areas[$("level").value] || [];
  $("area").innerHTML = areas.map((a) =>
    `<option value="${esc(a.properties.code)}">${esc(a.properties.code)} ${esc(areaName(a.properties))}</option>`).join("");
  if (keepCode && areas.some((a) => a.properties.code === keepCode)) $("area").value = keepCode;
}
function chosenArea() {
  return (state.areas[$("level").value] || []).find((a) => a.properties.code === $("area").value);
}
function fitToScope() {
  const bounds = layers.today.getBounds();
  if (!bounds.isValid()) return;
  const shown = $("today-box").style.display === "none" ? maps.proposal : maps.today;
  shown.fitBounds(bounds, {animate: false});
}
async function loadToday() {
  const gen = ++loading;
  const area = chosenArea();
  if (!area) return;
  state.scope = area;
  state.locked.clear();
  state.draft = null;
  layers.proposal.clearLayers();
  maps.proposal.closePopup();
  $("published").innerHTML = "";
  $("propose").disabled = true;
  setStatus(t("loading {area}…", {area: area.properties.code}));
  try {
    const work = await measure(area.id);
    const grids = await gridsUnder(parentIds(work));
    if (gen !== loading) return;
    state.today = {work, grids};
    layers.today.clearLayers().addData(grids);
    fitToScope();
    $("target").placeholder = String(grids.features.length);
    $("target").title = t("today: {n} grids", {n: grids.features.length});
    render();
    setStatus(t("{n} grids under {area} today", {n: grids.features.length, area: area.properties.code}));
  } catch (err) {
    if (gen === loading) setStatus(t("failed: {error}", {error: err.message}), true);
  } finally {
    if (gen === loading) $("propose").disabled = false;
  }
}
async function remeasure() {  // weights or window changed: the same lines, new figures
  if (!state.today) return;
  const gen = ++loading;
  setStatus(t("measuring…"));
  try {
    const today = await measure(state.scope.id);
    const d = state.draft;
    const draft = d && !d.published ? await measure(d.scopeId, d.id) : null;
    if (gen !== loading) return;
    state.today.work = today;
    if (draft) d.work = draft;
    render();
    setStatus(t("figures over {days} days with the weights set", {days: windowDays()}));
  } catch (err) {
    if (gen === loading) setStatus(t("failed: {error}", {error: err.message}), true);
  }
}

// --- proposing --------------------------------------------------------------------------
function proposalBody(area) {
  const body = {
    scope: [area.properties.code],
    weights: weights(),
    tolerance: (numberIn("tolerance") ?? 5) / 100,
    window_days: windowDays(),
    locked_grids: [...state.locked].sort(),
  };
  const target = numberIn("target");
  if (target) body.target_grids = Math.round(target);
  const constraints = {};
  if (numberIn("hh-min") !== null) constraints.households_min = Math.round(numberIn("hh-min"));
  if (numberIn("hh-max") !== null) constraints.households_max = Math.round(numberIn("hh-max"));
  if (numberIn("area-max") !== null) constraints.area_max_m2 = numberIn("area-max") * 1e4;
  if (Object.keys(constraints).length) body.constraints = constraints;
  return body;
}
// Proposing again replaces the draft this page proposed before: it is deleted once the new one
// is shown, so re-proposing leaves no pile of drafts behind (a published one stays, and if the
// server keeps it, the status says why).
async function discardDraft(id) {
  try {
    await api(`/boundaries/versions/${num(id)}`, {method: "DELETE"});
    return " " + t("(draft {id} deleted)", {id});
  } catch (err) {
    return " " + t("(draft {id} kept: {error})", {id, error: err.message});
  }
}
async function propose() {
  const area = state.scope;
  if (!area) return;
  const previous = state.draft && !state.draft.published ? state.draft.id : null;
  for (const id of ["propose", "level", "area"]) $(id).disabled = true;
  setStatus(t("queued…"));
  try {
    const body = proposalBody(area);
    const queued = await api("/boundaries/proposals", {
      method: "POST", body: JSON.stringify(body), headers: JSON_HEADERS,
    });
    let job;
    do {
      await new Promise((r) => setTimeout(r, 400));
      job = await api(queued.href);
      setStatus(`${job.status} ${Math.round((job.progress || 0) * 100)}% ${job.message || ""}`);
    } while (job.status === "queued" || job.status === "running");
    if (job.status !== "done") throw new Error(job.error ? job.error.detail : job.status);
    await showProposal(area, job.result, body.locked_grids);
    const discarded = previous === null ? "" : await discardDraft(previous);
    setStatus(t("draft version {id}", {id: job.result.version_id}) + discarded);
  } catch (err) {
    setStatus(t("failed: {error}", {error: err.message}), true);
  } finally {
    for (const id of ["propose", "level", "area"]) $(id).disabled = false;
  }
}
async function showProposal(area, result, locked) {
  const level = area.properties.level;
  const twins = await api(`/areas?level=${encodeURIComponent(level)}&version=${num(result.version_id)}`);
  const twin = twins.features.find((f) => f.properties.code === area.properties.code);
  if (!twin) throw new Error(`${area.properties.code} is not in draft ${result.version_id}`);
  const work = await measure(twin.id, result.version_id);
  const grids = await gridsUnder(parentIds(work), result.version_id);
  // which grid of today each new grid continues: as proposed, then as each hand edit says
  const continues = {};
  for (const p of result.metrics.parents) for (const g of p.grids || []) continues[g.code] = g.continues;
  state.draft = {id: result.version_id, metrics: result.metrics, scopeId: twin.id, work, grids,
                 continues, edits: 0, touched: new Set(), published: null, inForce: null,
                 busy: false, locked: new Set(locked)};
  layers.proposal.clearLayers().addData(grids);
  $("override-reason").value = "";
  $("published").innerHTML = "";
  $("settings").open = false;  // the draft's table matters now; the settings fold away
  render();
}

// --- figures ----------------------------------------------------------------------------
// Each grid's figures with its share of the mean of its parent's grids (the band is per
// parent). A proposal balances the grids it redraws: grids it kept (locked) are left out of
// the mean, as the service leaves them out of the band.
function figures(work, kept = new Set()) {
  const sums = {};
  for (const a of work.areas) {
    if (kept.has(a.code)) continue;
    const s = (sums[a.parent_id] ??= {total: 0, n: 0});
    s.total += a.index;
    s.n += 1;
  }
  return Object.fromEntries(work.areas.map((a) => {
    const s = sums[a.parent_id];
    const mean = s && s.n ? s.total / s.n : 0;
    return [a.code, {...a, kept: kept.has(a.code), ratio: mean > 0 ? a.index / mean : null}];
  }));
}
const AT_FLOOR = 0.005;  // as the service: within 0.5% of the floor counts as at it
function bandStatus(maxOverMean, floor, tol) {
  if (maxOverMean <= 1 + tol + 1e-9) return "within";
  if (Number.isFinite(floor) && maxOverMean <= floor * (1 + AT_FLOOR)) return "at_floor";
  return "outside";
}
function worst(statuses) {
  return statuses.includes("outside") ? "outside" : statuses.includes("at_floor") ? "at_floor" : "within";
}
function floors(metrics) {
  return Object.fromEntries(metrics.parents.map((p) => [p.parent, p.lowest_possible_max_over_mean ?? 1]));
}
// The draft's balance now, per parent, from GET /workload over the grids the proposal
// redrew (its locked grids left out, as the proposal's own status does): changes with every
// hand edit.
function liveStatus(d, figs) {
  const floor = floors(d.metrics);
  const per = d.work.parents.map((p) => {
    const ratios = Object.values(figs)
      .filter((g) => g.parent_id === p.parent_id && !g.kept && g.ratio != null).map((g) => g.ratio);
    const max = ratios.length ? Math.max(...ratios) : p.max_over_mean;
    return {code: p.parent_code, max, status: bandStatus(max, floor[p.parent_code] ?? 1, tolerance())};
  });
  return {per, status: worst(per.map((p) => p.status)), max: Math.max(...per.map((p) => p.max))};
}
function describe(status) {
  const band = `±${Math.round(tolerance() * 1000) / 10}%`;
  return {within: t("within {band}", {band}), at_floor: t("at its floor (no contiguous plan does better)"),
          outside: t("outside {band}: publishing needs a reason", {band})}[status] ?? String(status ?? "");
}
// Bounds the planner set that a grid of the draft breaks now (households as published).
function broken(grid, bounds) {
  const out = [];
  if (!bounds) return out;
  const hh = grid.households;
  if (bounds.households_min != null && hh != null && hh < bounds.households_min) out.push("households");
  if (bounds.households_max != null && hh != null && hh > bounds.households_max) out.push("households");
  const m2 = grid.area_km2 * 1e6;
  if (bounds.area_max_m2 != null && m2 > bounds.area_max_m2) out.push("area");
  if (bounds.area_min_m2 != null && m2 < bounds.area_min_m2) out.push("area");
  return out;
}

// --- drawing ----------------------------------------------------------------------------
function cuts() { const t = tolerance(); return [0.8, 1 - t, 1 + t, 1.2]; }
function colour(ratio) {
  return ratio == null ? "#ddd" : SCALE[cuts().filter((c) => ratio > c).length];
}
function paint(side, figs, marked) {
  layers[side].setStyle((f) => {
    const mark = marked.has(f.properties.code);
    return {fillColor: colour(figs[f.properties.code]?.ratio), fillOpacity: 0.8,
            color: mark ? (side === "today" ? "#444" : "#d97706") : "#333",
            weight: mark ? 3 : 1, dashArray: mark && side === "today" ? "6 4" : null};
  });
  layers[side].eachLayer((l) => {
    const g = figs[l.feature.properties.code];
    const text = `${esc(l.feature.properties.code)}: ${esc(t("{hours} h", {hours: g ? fixed(g.index) : "–"}))}` +
      (g && g.ratio != null ? ` ${esc(t("(share of the mean: {pct}%)", {pct: Math.round(g.ratio * 100)}))}` : "");
    if (l.getTooltip()) l.setTooltipContent(text); else l.bindTooltip(text, {sticky: true});
  });
}
function render() {
  const today = state.today, d = state.draft;
  if (!today) return;
  const todayFigs = figures(today.work);
  const draftFigs = d ? figures(d.work, d.locked) : {};
  stem = stemOf([...Object.keys(todayFigs), ...Object.keys(draftFigs)]);
  paint("today", todayFigs, state.locked);
  if (d) paint("proposal", draftFigs, d.touched);
  const live = d ? liveStatus(d, draftFigs) : null;
  if (d) d.live = live;
  renderBalance(today, d, live);
  renderMetrics(d);
  renderTodayGrids(todayFigs);
  renderDraft(d, draftFigs, todayFigs);
  renderLegend();
  $("locked-note").textContent = state.locked.size
    ? t("Keeping {n} grid(s) as they are: {codes}", {n: state.locked.size, codes: [...state.locked].sort().join(", ")})
    : t("Tick grids in today's table to keep them as they are.");
  $("balance-note").textContent = t("{days} days", {days: windowDays()});
}
function row(label, before, after, good, cls = "") {
  return `<tr><td>${esc(label)}</td><td>${esc(before)}</td>` +
    (after === undefined ? "" : `<td class="${esc(good ? "better" : cls)}">${esc(after)}</td>`) + "</tr>";
}
function renderBalance(today, d, live) {
  const before = Object.fromEntries(today.work.parents.map((p) => [p.parent_code, p]));
  const after = d ? Object.fromEntries(d.work.parents.map((p) => [p.parent_code, p])) : {};
  const codes = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  const many = codes.length > 1;
  // never green outside the band: neither the draft's now nor, before hand edits, the
  // proposal's own (which decides whether publishing needs a reason)
  const mayBeGood = live && live.status !== "outside" && (d.edits > 0 || d.metrics.status !== "outside");
  const cell = (p, key, digits) => (p ? fixed(p[key], digits) : "–");
  const liveOf = live ? Object.fromEntries(live.per.map((p) => [p.code, p.status])) : {};
  const tone = (code) => (liveOf[code] === "within" && !mayBeGood ? "" : `status-${liveOf[code] ?? ""}`);
  let html = `<tr><th></th><th>${esc(TEXT.today)}</th>${d ? `<th>${esc(d.edits ? TEXT.draftNow : TEXT.draft)}</th>` : ""}</tr>`;
  html += row(t("grids"), today.work.areas.length, d ? d.work.areas.length : undefined, false);
  const locks = d && d.locked.size > 0;
  const liveMax = live ? Object.fromEntries(live.per.map((p) => [p.code, p.max])) : {};
  for (const code of codes) {
    const b = before[code], a = after[code];
    const label = many ? `${TEXT.maxMean} ${short(code) || code}` : TEXT.maxMean;
    const good = mayBeGood && !locks && a && b && a.max_over_mean < b.max_over_mean;
    html += row(label, cell(b, "max_over_mean", 3), d ? cell(a, "max_over_mean", 3) : undefined,
                good, locks ? "" : tone(code));
    if (locks && code in liveMax) {  // the band the proposal kept: its redrawn grids
      html += row(t("{label}, redrawn grids", {label}), "", fixed(liveMax[code], 3), false, tone(code));
    }
  }
  const stat = (w, key) => (many ? w.overall?.[key] : w.parents[0]?.[key]);
  for (const [label, key] of [[TEXT.cv, "cv"], [TEXT.gini, "gini"]]) {
    const b = stat(today.work, key), a = d ? stat(d.work, key) : undefined;
    html += row(many ? t("{label} (all grids)", {label}) : label, fixed(b, 3), d ? fixed(a, 3) : undefined,
                mayBeGood && a < b);
  }
  $("balance").innerHTML = html;
  if (!d) {
    $("verdict").innerHTML = "";
    $("violations").innerHTML = "";
    return;
  }
  const m = d.metrics;
  const proposedMax = Math.max(...m.parents.map((p) => p.after?.max_over_mean ?? 0));
  const locked = d.locked.size ? t(", {n} locked grid(s) left out", {n: d.locked.size}) : "";
  // The proposal's own status decides whether publishing needs a reason; once edited by
  // hand, only GET /workload can say where the draft stands.
  let said = `<div>${esc(t("Proposed:"))} <span id="proposed-status" class="status-${esc(m.status)}">` +
    `${esc(describe(m.status))}</span> <span class="muted">(${esc(TEXT.maxMean)} ${esc(fixed(proposedMax, 3))}${esc(locked)})</span></div>`;
  if (d.edits) {
    said += `<div>${esc(t("After {n} hand edit(s):", {n: d.edits}))} <span id="live-status" ` +
      `class="status-${esc(live.status)}">${esc(describe(live.status))}</span> <span class="muted">` +
      `(${esc(t("max / mean {value} by GET /workload", {value: fixed(live.max, 3)}))}${esc(locked)})</span></div>`;
  } else if (Math.abs(live.max - proposedMax) >= 0.0005) {
    said += `<div class="muted">${esc(t("GET /workload gives max / mean {value} for the same grids: it rounds each grid's households as published, the proposal its blocks'.", {value: fixed(live.max, 3)}))}</div>`;
  }
  $("verdict").innerHTML = said;
  const violations = m.constraints?.violations ?? [];
  $("violations").innerHTML = violations.map((v) => {
    const area = String(v.constraint).startsWith("area");
    const show = (x) => (area ? `${fixed(x / 1e4, 1)} ha` : fixed(x, v.constraint === "compactness_min" ? 3 : 0));
    const why = v.unavoidable ? ` ${TEXT.unavoidable}` : "";
    return `<li>${esc(v.grid)}: ${esc(String(v.constraint).replace("_", " "))} ${esc(show(v.limit))}, has ${esc(show(v.value))}${esc(why)}</li>`;
  }).join("") + m.parents.filter((p) => p.grid_count_set_by).map((p) => {
    const said = t("{parent}: {after} grids instead of {asked}, as {bound} allows", {parent: p.parent,
      after: p.grids_after, asked: p.grids_asked, bound: String(p.grid_count_set_by).replace("_", " ")});
    return `<li>${esc(said)}</li>`;
  }).join("");
  if (violations.length) $("violations").insertAdjacentHTML("afterbegin", `<b>${esc(TEXT.boundsBroken)}</b>`);
  else if (m.parents.some((p) => p.grid_count_set_by)) $("violations").insertAdjacentHTML("afterbegin", `<b>${esc(TEXT.countsSet)}</b>`);
}
function renderMetrics(d) {
  if (!d) { $("metrics").innerHTML = ""; return; }
  const m = d.metrics;
  const floor = Math.max(...m.parents.map((p) => p.lowest_possible_max_over_mean ?? 1));
  const s = m.stability || {};
  $("metrics").innerHTML = `<tr><th>${esc(TEXT.asProposed)}</th><th>${esc(TEXT.today)}</th><th>${esc(TEXT.proposal)}</th></tr>
    ${row(t("Polsby-Popper (mean)"), fixed(m.polsby_popper_before, 3), fixed(m.polsby_popper_after, 3), false)}
    ${row(t("borders on roads"), pct(m.border_on_roads_before), pct(m.border_on_roads_after), false)}
    ${row(t("contiguous"), "", pct(m.contiguous_share), false)}
    ${row(t("households moved"), "", pct(s.households_moved_share, 1), false)}
    ${row(t("rental units moved"), "", pct(s.rental_units_moved_share, 1), false)}
    ${row(t("incident history moved"), "", pct(s.history_moved_share, 1), false)}
    ${floor > 1.0005 ? row(t("lowest possible max / mean"), "", fixed(floor, 3), false) : ""}`;
}
function renderTodayGrids(figs) {
  const codes = Object.keys(figs).sort();
  $("today-grids").innerHTML =
    `<tr><th title="${esc(TEXT.keep)}">${esc(TEXT.lock)}</th><th class="code" title="${esc(t("codes after {stem}", {stem}))}">${esc(TEXT.grid)}</th>` +
    `<th title="${esc(TEXT.households)}">${esc(TEXT.homes)}</th><th title="${esc(TEXT.workloadHours)}">${esc(TEXT.workH)}</th>` +
    `<th title="${esc(TEXT.shareOfMean)}">${esc(TEXT.pctMean)}</th><th>${esc(TEXT.ha)}</th></tr>` +
    codes.map((code) => {
      const g = figs[code];
      const locked = state.locked.has(code);
      const keepIt = t("keep {code} as it is", {code});
      return `<tr data-code="${esc(code)}" class="${locked ? "locked" : ""}">` +
        `<td><input type="checkbox" class="lock" data-code="${esc(code)}" aria-label="${esc(keepIt)}"${locked ? " checked" : ""}></td>` +
        `<td class="code" title="${esc(code)}">${esc(short(code))}</td>` +
        `<td class="households">${esc(g.households ?? "–")}</td>` +
        `<td class="workload">${esc(fixed(g.index))}</td>` +
        `<td>${esc(g.ratio == null ? "–" : Math.round(g.ratio * 100))}</td>` +
        `<td class="area">${esc(hectares(g.area_km2))}</td></tr>`;
    }).join("");
}
// Publishing asks why when the proposal ended outside its band (the server's rule) or when
// hand edits have taken it outside.
function needsReason(d) {
  return d.metrics.status === "outside" || (d.edits > 0 && d.live?.status === "outside");
}
function renderDraft(d, figs, todayFigs) {
  $("draft-box").hidden = !d;
  $("edit-hint").hidden = !d || !!d.published;
  if (!d) {
    $("proposal-title").textContent = TEXT.proposal;
    $("publish").disabled = true;
    return;
  }
  $("proposal-title").textContent = d.published
    ? t("version {id}, published", {id: d.id})
    : d.edits ? t("draft {id}, {n} hand edit(s)", {id: d.id, n: d.edits}) : t("draft {id}", {id: d.id});
  const continues = d.continues;
  const tol = tolerance();
  const bounds = d.metrics.constraints;
  const codes = Object.keys(figs).sort();
  $("draft-note").textContent = stem ? `(${t("codes after {stem}", {stem})})` : "";
  $("proposal-grids").innerHTML =
    `<tr><th class="code">${esc(TEXT.grid)}</th><th title="${esc(TEXT.continues)}">${esc(TEXT.from)}</th>` +
    `<th title="${esc(TEXT.households)}">${esc(TEXT.homes)}</th><th title="${esc(TEXT.workloadHours)}">${esc(TEXT.workH)}</th>` +
    `<th title="${esc(TEXT.shareOfMean)}">${esc(TEXT.pctMean)}</th>` +
    `<th title="${esc(TEXT.delta)}">Δ h</th><th>${esc(TEXT.ha)}</th></tr>` +
    codes.map((code) => {
      const g = figs[code];
      // a grid the proposal did not redraw (locked) is today's grid itself
      const from = code in continues ? continues[code] : code in todayFigs ? code : null;
      const was = from ? todayFigs[from] : null;
      const band = g.ratio == null || g.kept ? "" : g.ratio > 1 + tol + 1e-9 ? "over" : g.ratio < 1 - tol - 1e-9 ? "under" : "";
      const bad = g.kept ? [] : broken(g, bounds);
      const cls = d.touched.has(code) ? "edited" : g.kept ? "locked" : "";
      return `<tr data-code="${esc(code)}" class="${cls}"${g.kept ? ` title="${esc(TEXT.lockedKept)}"` : ""}>` +
        `<td class="code" title="${esc(code)}">${esc(short(code))}</td>` +
        `<td class="continues" data-continues="${esc(from ?? "")}">${from === null ? esc(t("new")) : g.kept ? esc(t("locked")) : from === code ? esc(t("same code")) : esc(short(from))}</td>` +
        `<td class="households ${bad.includes("households") ? "over" : ""}">${esc(g.households ?? "–")}</td>` +
        `<td class="workload ${band}">${esc(fixed(g.index))}</td>` +
        `<td class="${band}">${esc(g.ratio == null ? "–" : Math.round(g.ratio * 100))}</td>` +
        `<td class="delta">${was ? esc(signed(g.index - was.index)) : ""}</td>` +
        `<td class="area ${bad.includes("area") ? "over" : ""}">${esc(hectares(g.area_km2))}</td></tr>`;
    }).join("");
  const q = figuresQuery();
  $("export").innerHTML = esc(t("Download the draft:")) + " " + EXPORTS.map(([format, label]) =>
    `<a download href="/boundaries/versions/${esc(num(d.id))}/export?format=${esc(format)}&amp;${esc(q.toString())}">${esc(label)}</a>`).join("");
  $("reason-box").hidden = !needsReason(d) || !!d.published;
  $("publish").disabled = !!d.published || d.busy;
}
function renderLegend() {
  const c = cuts();
  const p = (x) => `${Math.round(x * 1000) / 10}%`;
  const band = `±${Math.round(tolerance() * 1000) / 10}%`;
  $("legend").innerHTML = `<div class="muted">${esc(TEXT.colour)}</div>` +
    SCALE.map((colour, i) => `<div><span style="background:${colour}"></span>` +
      esc(i === 0 ? t("under {p}", {p: p(c[0])}) : i < 4 ? `${p(c[i - 1])}–${p(c[i])}${i === 2 ? " " + t("(the {band} band)", {band}) : ""}` : t("over {p}", {p: p(c[3])})) +
      "</div>").join("");
}

// --- hand edits -------------------------------------------------------------------------
function vertexKeys(feature) {
  if (!feature._keys) {
    const keys = new Set();
    const walk = (c) => (typeof c[0] === "number" ? keys.add(`${c[0].toFixed(7)},${c[1].toFixed(7)}`) : c.forEach(walk));
    walk(feature.geometry.coordinates);
    Object.defineProperty(feature, "_keys", {value: keys, enumerable: false});
  }
  return feature._keys;
}
function ringsOf(latlngs) {
  return latlngs[0] instanceof L.LatLng ? [latlngs] : latlngs.flatMap(ringsOf);
}
function distancePx(layer, at) {
  let best = Infinity;
  for (const ring of ringsOf(layer.getLatLngs())) {
    const pts = ring.map((ll) => maps.proposal.latLngToLayerPoint(ll));
    for (let i = 0; i < pts.length; i++) {
      best = Math.min(best, L.LineUtil.pointToSegmentDistance(at, pts[i], pts[(i + 1) % pts.length]));
    }
  }
  return best;
}
// The grids a block of ``layer`` at ``latlng`` could join: those sharing a border with it
// (two or more vertices in common), nearest to the click first.
function neighbours(layer, latlng) {
  const own = vertexKeys(layer.feature);
  const at = maps.proposal.latLngToLayerPoint(latlng);
  const found = [];
  layers.proposal.eachLayer((other) => {
    const p = other.feature.properties;
    if (other === layer || p.parent_id !== layer.feature.properties.parent_id) return;
    let shared = 0;
    for (const k of vertexKeys(other.feature)) if (own.has(k) && ++shared >= 2) break;
    found.push({code: p.code, touches: shared >= 2, px: distancePx(other, at)});
  });
  const touching = found.filter((f) => f.touches);
  return (touching.length ? touching : found).sort((a, b) => a.px - b.px).slice(0, 8);
}
function offerMoves(e) {
  const d = state.draft;
  if (!d || d.published || d.busy) return;
  const layer = e.propagatedFrom || e.layer;
  const from = layer.feature.properties.code;
  const figs = figures(d.work, d.locked);
  const box = document.createElement("div");
  box.className = "moves";
  const title = d.locked.has(from)
    ? t("Move the street block here out of {grid} (locked) to:", {grid: short(from)})
    : t("Move the street block here out of {grid} to:", {grid: short(from)});
  box.innerHTML = `<b>${esc(title)}</b>` +
    neighbours(layer, e.latlng).map((n) => {
      const g = figs[n.code];
      return `<button type="button" class="move-to" data-grid="${esc(n.code)}">${esc(short(n.code))}` +
        (g ? ` · ${esc(fixed(g.index))} h (${esc(Math.round((g.ratio ?? 0) * 100))}%)` : "") +
        `${d.locked.has(n.code) ? ` · ${esc(t("locked"))}` : ""}${n.touches ? "" : ` · ${esc(t("may not touch"))}`}</button>`;
    }).join("");
  box.addEventListener("click", (ev) => {
    const button = ev.target.closest("button.move-to");
    if (!button) return;
    maps.proposal.closePopup();
    moveBlock(e.latlng, button.dataset.grid);
  });
  L.popup({maxWidth: 280}).setLatLng(e.latlng).setContent(box).openOn(maps.proposal);
}
async function moveBlock(latlng, to) {
  const d = state.draft;
  d.busy = true;
  $("publish").disabled = true;
  setStatus(t("moving the block to {grid}…", {grid: to}));
  try {
    const done = await api(`/boundaries/versions/${num(d.id)}/edits`, {
      method: "POST", headers: JSON_HEADERS,
      body: JSON.stringify({lon: latlng.lng, lat: latlng.lat, to_grid: to}),
    });
    for (const g of done.grids) {
      const i = d.grids.features.findIndex((f) => f.properties.code === g.code);
      if (i >= 0) d.grids.features[i] = {...d.grids.features[i], geometry: g.geometry};
      d.continues[g.code] = g.continues;  // the edit can change which grid of today it carries on
    }
    layers.proposal.clearLayers().addData(d.grids);
    d.edits += 1;
    d.touched = new Set([done.moved.from, done.moved.to]);
    const what = t("a {kind} of {ha} ha from {from} to {to}", {kind: MOVED[done.moved.kind] || done.moved.kind,
      ha: fixed(done.moved.area_m2 / 1e4, 2), from: done.moved.from, to: done.moved.to});
    render();
    setStatus(t("moved {what}; measuring…", {what}));
    d.work = await measure(d.scopeId, d.id);
    render();
    setStatus(t("moved {what}; table and balance updated", {what}));
  } catch (err) {
    setStatus(t("not moved: {error}", {error: err.message}), true);
  } finally {
    d.busy = false;
    if (state.draft === d) $("publish").disabled = !!d.published;
  }
}

// --- publishing -------------------------------------------------------------------------
async function publish() {
  const d = state.draft;
  if (!d || d.published) return;
  const reason = $("override-reason").value.trim();
  if (needsReason(d) && reason.length < 3) {
    setStatus(t("the balance is outside its band: say why it is published anyway"), true);
    $("override-reason").focus();
    return;
  }
  if (!confirm(t("Publish draft version {id} for the whole city from now?", {id: d.id}))) return;
  const body = {effective_from: new Date().toISOString()};
  if (needsReason(d)) body.override_reason = reason;
  $("publish").disabled = true;
  setStatus(t("publishing…"));
  try {
    const done = await api(`/boundaries/versions/${num(d.id)}/publish`, {
      method: "POST", body: JSON.stringify(body), headers: JSON_HEADERS,
    });
    d.published = done;
    setStatus(t("published version {id}; measuring the plan in force…", {id: done.version_id}));
    // the plan in force now, over the same history: records re-attributed to its grids
    d.inForce = await measure(d.scopeId);
    render();
    renderPublished(d);
    await loadAreaLists();  // the areas in force have new ids now
    fillAreas(state.scope.properties.code);
    setStatus(t("published version {id}", {id: done.version_id}));
  } catch (err) {
    if (!d.published) $("publish").disabled = false;
    setStatus(`${d.published ? t("published, but") : t("not published:")} ${err.message}`, true);
  }
}
function list(items) {
  return items.length ? items.map((x) => esc(x)).join(", ") : `<span class="muted">${esc(t("none"))}</span>`;
}
function renderPublished(d) {
  const done = d.published;
  const workers = done.grid_workers || {vacant_grids: [], shared_grids: [], unhomed_workers: []};
  const users = done.users || {rebound: [], unbound: []};
  const perParent = (work) => Object.fromEntries(work.parents.map((p) => [p.parent_code, p]));
  const before = perParent(state.today.work), located = perParent(d.work);
  const max = (p) => esc(p ? fixed(p.max_over_mean, 3) : "–");
  const rows = d.inForce.parents.map((p) =>
    `<tr><td>${esc(p.parent_code)}</td><td>${max(before[p.parent_code])}</td>` +
    `<td>${max(located[p.parent_code])}</td><td class="max">${max(p)}</td>` +
    `<td>${esc(fixed(p.cv, 3))}</td></tr>`).join("");
  const incidents = (work) => work.areas.reduce((n, a) => n + (a.incidents || 0), 0);
  const counted = incidents(d.inForce), all = incidents(d.work);
  $("published").innerHTML = `<div class="box" id="published-result">
    <b>${esc(t("Published version {id}", {id: done.version_id}))}</b>, ${esc(t("in force from {when}", {when: new Date(done.effective_from).toLocaleString(LANG)}))}
    <h3>${esc(t("Grid workers to settle"))}</h3>
    <table id="rehoming">
      <tr><td>${esc(t("vacant grids"))}</td><td class="vacant wrap">${list(workers.vacant_grids)}</td></tr>
      <tr><td>${esc(t("shared grids"))}</td><td class="shared wrap">${list(workers.shared_grids.map((s) => `${s.code} (${s.workers.join(", ")})`))}</td></tr>
      <tr><td>${esc(t("unhomed workers"))}</td><td class="unhomed wrap">${list(workers.unhomed_workers || [])}</td></tr>
      <tr><td>${esc(t("users re-bound"))}</td><td>${esc(users.rebound.length)}</td></tr>
      <tr><td>${esc(t("users left unbound"))}</td><td>${esc(users.unbound.length)}</td></tr>
    </table>
    <h3>${esc(t("Balance over the same {days} days", {days: d.inForce.window_days}))}</h3>
    <table id="in-force-balance"><tr><th>${esc(TEXT.maxMean)}</th><th>${esc(t("old plan"))}</th><th>${esc(TEXT.draft)}</th><th>${esc(t("in force"))}</th><th>${esc(TEXT.cv)}</th></tr>${rows}</table>
    <div class="muted wrap">${esc(t("in force: GET /workload of the version in force, records by the grid they are filed under ({counted} incidents in the window); draft: the same grids measured before publishing, records where they lie ({all} incidents).", {counted: num(counted), all: num(all)}))}
      ${counted < all ? esc(t("Incidents reported before the switch stay filed under the old grids, so the plan in force counts only those since.")) : ""}</div>
    <div class="muted">${esc(t("Choose an area again to plan from the version in force."))}</div></div>`;
}

// --- wiring -----------------------------------------------------------------------------
function view() {
  const v = document.querySelector("input[name=view]:checked").value;
  $("today-box").style.display = v === "proposal" ? "none" : "";
  $("proposal-box").style.display = v === "today" ? "none" : "";
  for (const m of Object.values(maps)) m.invalidateSize();
}
$("today-grids").addEventListener("change", (ev) => {
  const box = ev.target.closest("input.lock");
  if (!box) return;
  if (box.checked) state.locked.add(box.dataset.code); else state.locked.delete(box.dataset.code);
  render();
});
$("level").addEventListener("change", () => { fillAreas(); loadToday(); });
$("area").addEventListener("change", loadToday);
$("propose").addEventListener("click", propose);
$("publish").addEventListener("click", publish);
layers.proposal.on("click", offerMoves);
for (const id of ["window", ...TERMS.map((t) => `w-${t}`)]) $(id).addEventListener("change", remeasure);
$("tolerance").addEventListener("change", () => { if (!state.draft) render(); });
for (const r of document.querySelectorAll("input[name=view]")) r.addEventListener("change", view);
window.addEventListener("resize", () => { for (const m of Object.values(maps)) m.invalidateSize(); });
loadAreaLists().then(() => { fillAreas(); return loadToday(); })
  .catch((err) => setStatus(t("failed: {error}", {error: err.message}), true));

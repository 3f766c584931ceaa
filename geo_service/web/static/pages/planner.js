"use strict";
// The planner's page (/map/planner); loads after common.js.
const SCALE = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"];
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
let draft = null;
let loads = {today: {}, proposal: {}};

// Classes relative to the mean grid workload (the same before and after: the work does not
// change, only the lines), so the middle class is the ±5% band a proposal aims for.
const SHARES = [0.8, 0.95, 1.05, 1.2];
function breaks() {
  const today = Object.values(loads.today);
  const mean = today.reduce((a, b) => a + b, 0) / Math.max(today.length, 1);
  return SHARES.map((share) => share * mean);
}
function colour(value, cuts) { return SCALE[cuts.filter((c) => value > c).length]; }
function paint() {
  const cuts = breaks();
  for (const side of ["today", "proposal"]) {
    layers[side].setStyle((f) => ({fillColor: colour(loads[side][f.properties.code] ?? 0, cuts),
                                   fillOpacity: 0.8, color: "#333", weight: 1}));
    layers[side].eachLayer((l) => l.bindTooltip(
      `${esc(l.feature.properties.code)}: ${(loads[side][l.feature.properties.code] ?? 0).toFixed(1)} h`));
  }
  const pct = (i) => `${Math.round(SHARES[i] * 100)}%`;
  const hours = (i) => `${cuts[i].toFixed(1)} h`;
  $("legend").innerHTML = SCALE.map((c, i) => `<div><span style="background:${c}"></span>` +
    (i === 0 ? `under ${pct(0)} of the mean (${hours(0)})`
     : i < 4 ? `${pct(i - 1)}–${pct(i)}${i === 2 ? " (the ±5% band)" : ""}`
     : `over ${pct(3)} (${hours(3)})`) + "</div>").join("");
}
async function loadToday() {
  const code = $("community").value;
  const community = communities.find((c) => c.properties.code === code);
  const [grids, work] = await Promise.all([
    api(`/areas?level=grid&parent_id=${community.id}`),
    api(`/workload?level=grid&parent_id=${community.id}`),
  ]);
  loads.today = Object.fromEntries(work.areas.map((a) => [a.code, a.index]));
  loads.proposal = {};
  layers.today.clearLayers().addData(grids);
  layers.proposal.clearLayers();
  maps.today.fitBounds(layers.today.getBounds());
  paint();
  const p = work.parents[0] || {};
  $("balance").innerHTML = `<tr><th></th><th>today</th><th>proposal</th></tr>
    <tr><td>grids</td><td>${num(grids.features.length)}</td><td></td></tr>
    <tr><td>max / mean</td><td>${esc(p.max_over_mean ?? "")}</td><td></td></tr>
    <tr><td>CV</td><td>${esc(p.cv ?? "")}</td><td></td></tr>`;
  $("publish").disabled = true;
  draft = null;
}
function row(label, before, after, lowerIsBetter = true, mayBeGood = true) {
  // mayBeGood: false keeps an improvement that still misses its goal from showing as good
  const better = mayBeGood && (lowerIsBetter ? after < before : after > before);
  return `<tr><td>${esc(label)}</td><td>${esc(before)}</td><td class="${better ? "better" : ""}">${esc(after)}</td></tr>`;
}
async function propose() {
  const body = {scope: [$("community").value]};
  if ($("target").value) body.target_grids = Number($("target").value);
  $("status").textContent = "queued…";
  $("propose").disabled = true;
  try {
    const queued = await api("/boundaries/proposals", {
      method: "POST", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json"},
    });
    let job;
    do {
      await new Promise((r) => setTimeout(r, 400));
      job = await api(queued.href);
      $("status").textContent = `${job.status} ${Math.round((job.progress || 0) * 100)}% ${job.message || ""}`;
    } while (job.status === "queued" || job.status === "running");
    if (job.status !== "done") throw new Error(job.error ? job.error.detail : job.status);
    await showProposal(job.result);
    $("status").textContent = `draft version ${job.result.version_id}`;
  } catch (err) {
    $("status").textContent = `failed: ${err.message}`;
  } finally {
    $("propose").disabled = false;
  }
}
async function showProposal(result) {
  draft = result.version_id;
  const m = result.metrics;
  const code = $("community").value;
  const parents = await api(`/areas?level=community&version=${draft}`);
  const parent = parents.features.find((f) => f.properties.code === code);
  const grids = await api(`/areas?level=grid&parent_id=${parent.id}&version=${draft}`);
  loads.proposal = Object.assign({}, ...m.parents.map((p) => p.workload_by_grid));
  for (const f of grids.features) {  // locked grids keep today's workload
    if (!(f.properties.code in loads.proposal)) loads.proposal[f.properties.code] = loads.today[f.properties.code] ?? 0;
  }
  layers.proposal.clearLayers().addData(grids);
  paint();
  const b = m.workload_before, a = m.workload_after;
  const floor = Math.max(...m.parents.map((p) => p.lowest_possible_max_over_mean ?? 1));
  $("balance").innerHTML = `<tr><th></th><th>today</th><th>proposal</th></tr>
    ${row("grids", m.parents[0].grids_before, grids.features.length, false)}
    ${row("max / mean", b.max_over_mean, a.max_over_mean, true, m.status !== "outside")}
    ${row("CV", b.cv, a.cv)}
    ${row("Gini", b.gini, a.gini)}
    ${row("Polsby-Popper", m.polsby_popper_before, m.polsby_popper_after, false)}
    ${floor > 1.0005 ? `<tr><td title="the community is in separate pieces: no contiguous plan does better">lowest possible max / mean</td><td></td><td>${esc(floor.toFixed(3))}</td></tr>` : ""}
    <tr><td>contiguous</td><td></td><td>${num(Math.round(m.contiguous_share * 100))}%</td></tr>
    <tr><td>households moved</td><td></td><td>${esc((m.stability.households_moved_share * 100).toFixed(1))}%</td></tr>
    <tr><td>incident history moved</td><td></td><td>${esc((m.stability.history_moved_share * 100).toFixed(1))}%</td></tr>`;
  const band = `±${Math.round((m.tolerance ?? 0.05) * 1000) / 10}%`;
  const said = {within: `within ${band}`, at_floor: "at its floor (no contiguous plan does better)",
    outside: `outside ${band}: publishing needs a reason`}[m.status] ?? "";
  $("balance").innerHTML += `<tr><td>balance</td><td></td><td class="status-${esc(m.status ?? "")}">${esc(said)}</td></tr>`;
  status = m.status;
  $("publish").disabled = false;
}
let status = null;
async function publish() {
  if (!draft || !confirm(`Publish draft version ${draft} for the whole city from now?`)) return;
  const body = {effective_from: new Date().toISOString()};
  if (status === "outside") {
    const reason = prompt("The balance is outside the band. Why publish it anyway? (kept in the audit log)");
    if (!reason || reason.trim().length < 3) return;
    body.override_reason = reason.trim();
  }
  try {
    const done = await api(`/boundaries/versions/${draft}/publish`, {
      method: "POST", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json"},
    });
    $("published").textContent = `published version ${done.version_id ?? draft}`;
    $("publish").disabled = true;
  } catch (err) {
    $("published").textContent = `not published: ${err.message}`;
  }
}
function view() {
  const v = document.querySelector("input[name=view]:checked").value;
  $("today-box").style.display = v === "proposal" ? "none" : "";
  $("proposal-box").style.display = v === "today" ? "none" : "";
  for (const m of Object.values(maps)) m.invalidateSize();
}
let communities = [];
api("/areas?level=community").then(async (d) => {
  communities = d.features.sort((a, b) => a.properties.code.localeCompare(b.properties.code));
  $("community").innerHTML = communities.map((c) =>
    `<option value="${esc(c.properties.code)}">${esc(c.properties.code)} ${esc(c.properties.name)}</option>`).join("");
  await loadToday();
});
$("community").addEventListener("change", loadToday);
$("propose").addEventListener("click", propose);
$("publish").addEventListener("click", publish);
for (const r of document.querySelectorAll("input[name=view]")) r.addEventListener("change", view);

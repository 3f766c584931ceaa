"use strict";
// The dispatcher's live map (/map/dispatch); loads after common.js.
// Writes ride the session cookie with its CSRF token (common.js api()).
const POLL_MS = Number(PAGE.pollMs);
const COLOURS = {1: "#d7191c", 2: "#f57c00", 3: "#c9a400", 4: "#2c7bb6"};
const OPEN = "reported,dispatched,accepted,on_scene";
const map = L.map("map", {zoomSnap: 0.25});
baseLayer(map);
const grids = L.geoJSON(null, {style: {color: "#666", weight: 0.5, fill: false},
                               interactive: false}).addTo(map);
// Responders under incidents: an incident is what a dispatcher clicks.
map.createPane("responders").style.zIndex = 390;
const responderLayer = L.layerGroup().addTo(map);
const incidentLayer = L.layerGroup().addTo(map);
let selected = null;
let incidents = [];

function age(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return s < 3600 ? `${Math.round(s / 60)} min` : s < 172800 ? `${Math.round(s / 3600)} h`
                  : `${Math.round(s / 86400)} d`;
}
async function refresh() {
  try {
    const [open, overdue, responders] = await Promise.all([
      api(`/incidents?status=${OPEN}&limit=500`),
      api(`/incidents?status=${OPEN}&overdue=true&limit=500`),
      api("/responders"),
    ]);
    const late = new Set(overdue.features.map((f) => f.id));
    incidents = open.features.map((f) => ({...f.properties, lon: f.geometry.coordinates[0],
                                           lat: f.geometry.coordinates[1],
                                           overdue: late.has(f.id)}));
    incidents.sort((a, b) => (b.overdue - a.overdue) || (a.priority - b.priority) ||
                             a.reported_at.localeCompare(b.reported_at));
    drawIncidents();
    drawResponders(responders.features);
    $("count").textContent = `(${incidents.length}, ${late.size} overdue)`;
    $("clock").textContent = `updated ${new Date().toLocaleTimeString()}`;
    if (selected) showDetail(selected, false);
  } catch (err) {
    $("clock").textContent = `update failed: ${err.message}`;
  }
}
function drawIncidents() {
  incidentLayer.clearLayers();
  $("list").innerHTML = "";
  for (const inc of incidents) {
    const marker = L.circleMarker([inc.lat, inc.lon], {
      radius: 9 - inc.priority, color: inc.overdue ? "#000" : "#fff", weight: inc.overdue ? 3 : 1,
      fillColor: COLOURS[inc.priority], fillOpacity: inc.status === "reported" ? 0.95 : 0.45,
      className: `incident incident-${inc.id}${inc.overdue ? " overdue" : ""}`,
    }).addTo(incidentLayer);
    marker.bindTooltip(`${esc(inc.category)} · P${num(inc.priority)} · ${esc(inc.status)}`);
    marker.on("click", () => showDetail(inc.id, true));
    const row = document.createElement("tr");
    row.className = `row${inc.overdue ? " overdue" : ""}${inc.id === selected ? " selected" : ""}`;
    row.dataset.id = inc.id;
    row.innerHTML = `<td><span class="pill p${num(inc.priority)}">${num(inc.priority)}</span></td>
      <td>${esc(inc.category)}</td><td>${esc(inc.grid ? inc.grid.code : "")}</td>
      <td class="${inc.overdue ? "late" : ""}">${age(inc.reported_at)}</td>
      <td>${esc(inc.status)}${inc.escalation_level ? ` ↑${esc(inc.escalated_to)}` : ""}</td>`;
    row.addEventListener("click", () => showDetail(inc.id, true));
    $("list").appendChild(row);
  }
}
function drawResponders(features) {
  responderLayer.clearLayers();
  for (const f of features) {
    if (!f.geometry) continue;
    const p = f.properties;
    const fill = p.stale ? "#fff" : p.status === "available" ? "#1a9850" : "#555";
    L.circleMarker([f.geometry.coordinates[1], f.geometry.coordinates[0]], {
      radius: 4, color: "#333", weight: 1, fillColor: fill, fillOpacity: 1,
      className: `responder responder-${p.id}`, pane: "responders",
    }).bindTooltip(`${esc(p.callsign)} (${esc(p.kind)}) · ${esc(p.status)}` +
                   (p.stale ? " · stale position" : "")).addTo(responderLayer);
  }
}
async function showDetail(id, fetchCandidates) {
  selected = id;
  const inc = incidents.find((i) => i.id === id) || await api(`/incidents/${id}`);
  for (const row of document.querySelectorAll("tr.row")) {
    row.classList.toggle("selected", row.dataset.id === id);
  }
  const box = $("detail");
  box.style.display = "block";
  const head = `<b>${esc(inc.category)}</b> <span class="pill p${num(inc.priority)}">P${num(inc.priority)}</span>
    <span class="status">${esc(inc.status)}</span>${inc.overdue ? ' <span class="late">overdue</span>' : ""}
    <div class="muted">${esc(inc.grid ? inc.grid.name : "")} · reported ${age(inc.reported_at)} ago
    ${inc.possible_duplicate_of ? " · possible duplicate" : ""}</div>
    <div>${esc(inc.description || "")}</div>`;
  if (!fetchCandidates) {
    box.querySelector(".head").innerHTML = head;
    return;
  }
  box.innerHTML = `<div class="head">${head}</div><div id="candidates" class="muted">finding responders…</div>
    <div><button id="escalate">escalate</button><button id="cancel">cancel</button></div>
    <div id="result"></div>`;
  $("escalate").onclick = () => act(id, "escalate", {note: "escalated from the dispatch map"});
  $("cancel").onclick = () => act(id, "cancel", {});
  if (inc.status !== "reported") {
    $("candidates").textContent = inc.responder_id ? `assigned to responder ${inc.responder_id}` : "";
    return;
  }
  let found;
  try {
    found = await api(`/incidents/${id}/candidates?k=5&by=travel_time`);
  } catch (err) {  // no road network loaded: straight-line distance
    found = await api(`/incidents/${id}/candidates?k=5`);
  }
  $("candidates").innerHTML = `<table>${found.candidates.map((c) => `<tr>
      <td>${esc(c.callsign)}${c.own_grid_worker ? " ★" : ""}<div class="muted">${esc(c.kind)}</div></td>
      <td>${num(Math.round(c.distance_m))} m<div class="muted">ETA ${num(Math.round(c.eta_s / 60))} min</div></td>
      <td><button class="dispatch" data-responder="${num(c.id)}">dispatch</button></td></tr>`).join("")}
    </table><div class="muted">target: dispatched within ${num(found.target_s / 60)} min; ★ the grid's own worker</div>`;
  for (const button of document.querySelectorAll("button.dispatch")) {
    button.onclick = () => act(id, "dispatch", {responder_id: Number(button.dataset.responder)});
  }
}
async function act(id, action, body) {
  try {
    const done = await api(`/incidents/${id}/${action}`, {
      method: "POST", body: JSON.stringify(body),
      headers: {"Content-Type": "application/json"},
    });
    $("result").textContent = `${action}: now ${done.status}` +
      (done.escalation_level ? ` (with the ${done.escalated_to})` : "");
    const inc = incidents.find((i) => i.id === id);
    if (inc) { inc.status = done.status; }
    document.querySelector("#detail .status").textContent = done.status;
    await refresh();
  } catch (err) {
    $("result").innerHTML = `<span class="late">${esc(err.message)}</span>`;
  }
}
api("/areas?level=grid").then((d) => {
  grids.addData(d);
  map.fitBounds(grids.getBounds());
  refresh();
  setInterval(refresh, POLL_MS);
});

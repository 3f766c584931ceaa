"use strict";
// The dispatcher's console (/map/dispatch); loads after common.js.
// One full load of the open incidents (/console/incidents, paged by the server, urgency
// first) and of the resolved ones waiting to be closed (view=resolved), then the changes
// pushed over server-sent events (/console/stream). Counts are the server's. The open detail
// follows the stream (someone else may dispatch or accept it first); an action refused with
// a 409 reads the incident again (/console/incidents/{id}) and says why. Writes ride the session cookie with its CSRF token (common.js api()).
// Every value from the server goes into the page as text (el() below), never as HTML.
const PAGE_SIZE = Number(PAGE.pageSize) || 50;
const COLOURS = {1: "#d7191c", 2: "#f57c00", 3: "#c9a400", 4: "#2c7bb6"};
const ANNOUNCE_KEY = "geo-service.dispatch.announce";
const map = L.map("map", {zoomSnap: 0.25});
// Who escalated, when the service itself did (escalations' `by`): said in the page's words;
// a person's name stays as the audit log writes it.
const ACTORS = {
  "scheduler": t("the overdue sweep"),
  "geo-service escalate": t("the overdue sweep"),
  "migration 0035": t("recorded from the history"),
  "history": t("recorded from the history"),
  "system": t("the system"),
};
baseLayer(map);
const grids = L.geoJSON(null, {style: {color: "#666", weight: 0.5, fill: false},
                               interactive: false}).addTo(map);
// Responders under incidents: an incident is what a dispatcher clicks.
map.createPane("responders").style.zIndex = 390;
const responderLayer = L.layerGroup().addTo(map);
const incidentLayer = L.layerGroup().addTo(map);
const incidents = new Map();   // id -> the console's item (open)
const resolvedIncidents = new Map();  // id -> the console's item (resolved, to close)
const OPEN_STATES = ["reported", "dispatched", "accepted", "on_scene"];
let view = "open";             // which list is shown: "open" or "resolved"
const markers = new Map();     // id -> Leaflet marker
const responders = new Map();  // id -> {data, marker}
const pinned = new Set();      // new priority-1 incidents not yet looked at: on top
let ordered = [];
let pageStart = 0;
let selected = null;
let skewMs = 0;                // the server's clock minus this browser's
let lastEventId = null;
let source = null;
let streamOpens = 0;           // how often the stream (re)connected

// --- small helpers -------------------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else if (k.startsWith("data-")) node.dataset[k.slice(5)] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined && c !== false) {
      node.append(c instanceof Node ? c : String(c));
    }
  }
  return node;
}
const serverNow = () => Date.now() + skewMs;
function clockFrom(iso) { if (iso) skewMs = Date.parse(iso) - Date.now(); }
function mss(seconds) {  // 75 -> "1:15", 3725 -> "1:02:05"
  const s = Math.round(Math.abs(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, "0");
  return (seconds < 0 ? "-" : "") + (h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`);
}
function age(iso) {
  const s = Math.max(0, (serverNow() - Date.parse(iso)) / 1000);
  return s < 3600 ? t("{n} min", {n: Math.round(s / 60)})
       : s < 172800 ? t("{n} h", {n: Math.round(s / 3600)}) : t("{n} d", {n: Math.round(s / 86400)});
}
function lateness(seconds) {  // past or before a target: m:ss within the hour, else h and min
  const s = Math.abs(seconds);
  if (s < 3600) return mss(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h < 48 ? t("{h} h {m}", {h, m: String(m).padStart(2, "0")})
                : t("{d} d {h} h", {d: Math.floor(h / 24), h: h % 24});
}
// only an open incident can be late (a resolved one waits to be closed, no target left)
function lateS(inc) {
  return inc.due_at && OPEN_STATES.includes(inc.status) ? (serverNow() - Date.parse(inc.due_at)) / 1000 : null;
}
function isOverdue(inc) { const l = lateS(inc); return l !== null && l > 0; }
function pill(priority) { return el("span", {class: `pill p${num(priority)}`}, num(priority)); }
const fmt = new Intl.NumberFormat(LANG);
// The lifecycle's states and stages (the API's values) as the page names them.
const STATES = {reported: t("reported"), dispatched: t("dispatched"), accepted: t("accepted"),
                on_scene: t("on scene"), resolved: t("resolved"), closed: t("closed"),
                cancelled: t("cancelled"), dispatch: t("dispatch"), resolve: t("resolve"),
                available: t("available"), busy: t("busy"), off_duty: t("off duty"),
                grid: t("grid"), community: t("community"), street: t("street"),
                district: t("district")};
const word = (value) => STATES[value] || value;
// The kinds of responder (the API's values, vocabulary.RESPONDER_KINDS) as the page names them.
const KINDS = {grid_worker: t("grid worker"), patrol: t("police patrol"), mediator: t("mediator"),
               fire: t("fire and rescue"), medical: t("medical")};
const kindName = (kind) => KINDS[kind] || kind;
// A category's name in the page's language (the server's category_name), never its code.
const categoryName = (inc) => inc.category_name || inc.category;

// --- the list, urgency first ----------------------------------------------------------------
function sortIncidents() {
  if (view === "resolved") {  // the longest waiting first, as the server orders them
    ordered = [...resolvedIncidents.values()].sort((a, b) =>
      (Date.parse(a.resolved_at || 0) - Date.parse(b.resolved_at || 0)) || a.id.localeCompare(b.id));
    return;
  }
  ordered = [...incidents.values()].sort((a, b) =>
    (pinned.has(b.id) - pinned.has(a.id)) || (a.priority - b.priority) ||
    ((a.due_at ? Date.parse(a.due_at) : Infinity) - (b.due_at ? Date.parse(b.due_at) : Infinity)) ||
    a.id.localeCompare(b.id));
}
function drawList() {
  pageStart = Math.min(pageStart, Math.max(0, Math.floor((ordered.length - 1) / PAGE_SIZE) * PAGE_SIZE));
  const rows = ordered.slice(pageStart, pageStart + PAGE_SIZE).map((inc) => {
    const late = lateS(inc);
    const overdue = late !== null && late > 0;
    const row = el("tr", {
      class: `row${overdue ? " overdue" : ""}${inc.id === selected ? " selected" : ""}` +
             `${pinned.has(inc.id) ? " new" : ""}`,
      "data-id": inc.id, onclick: () => select(inc.id),
    },
      el("td", {}, pill(inc.priority)),
      el("td", {}, categoryName(inc)),
      // the grid by its name, its code on hover
      el("td", {class: "grid", title: inc.grid_code || ""}, inc.grid_name || inc.grid_code || ""),
      el("td", {}, age(inc.reported_at)),
      el("td", {}, word(inc.status), inc.escalation_level ? ` ↑${word(inc.escalated_to)}` : ""),
      inc.status === "resolved"
        ? el("td", {class: "muted"}, inc.resolved_at ? t("resolved {age} ago", {age: age(inc.resolved_at)}) : "")
        : el("td", {class: overdue ? "late" : "muted",
                    title: t("{stage} target {target}", {stage: word(inc.stage),
                             target: inc.target_s === null ? t("none") : mss(inc.target_s)})},
             late === null ? "" : overdue ? `+${lateness(late)}` : t("in {time}", {time: lateness(-late)})));
    return row;
  });
  $("view-resolved-count").textContent = resolvedIncidents.size ? fmt.format(resolvedIncidents.size) : "";
  $("list").replaceChildren(...rows);
  const total = ordered.length;
  $("range").textContent = total ? t("{first}–{last} of {total}", {first: fmt.format(pageStart + 1),
    last: fmt.format(Math.min(total, pageStart + PAGE_SIZE)), total: fmt.format(total)}) : t("none");
  $("prev").disabled = pageStart === 0;
  $("next").disabled = pageStart + PAGE_SIZE >= total;
}
$("prev").addEventListener("click", () => { pageStart = Math.max(0, pageStart - PAGE_SIZE); drawList(); });
$("next").addEventListener("click", () => { pageStart += PAGE_SIZE; drawList(); });
function showView(name) {
  view = name;
  pageStart = 0;
  $("view-open").setAttribute("aria-selected", String(name === "open"));
  $("view-resolved").setAttribute("aria-selected", String(name === "resolved"));
  document.body.dataset.view = name;
  sortIncidents(); drawList();
}
$("view-open").addEventListener("click", () => showView("open"));
$("view-resolved").addEventListener("click", () => showView("resolved"));

function drawCounts(summary) {
  clockFrom(summary.now);
  $("tab-count").textContent = summary.open ? fmt.format(summary.open) : "";
  $("view-open-count").textContent = fmt.format(summary.open);
  $("counts").replaceChildren(
    el("b", {id: "count-open"}, fmt.format(summary.open)), " ", t("open"), " ",
    el("span", {class: summary.overdue ? "late" : "muted"},
       el("b", {id: "count-overdue"}, fmt.format(summary.overdue)), " ", t("overdue")));
  $("by-priority").replaceChildren(...summary.by_priority.map((p) =>
    el("span", {}, pill(p.priority), " ", t("{open} ({late} late)",
       {open: fmt.format(p.open), late: fmt.format(p.overdue)}))));
}

// --- the map ------------------------------------------------------------------------------
function drawMarker(inc) {
  const old = markers.get(inc.id);
  if (old) incidentLayer.removeLayer(old);
  const overdue = isOverdue(inc);
  const chosen = inc.id === selected;
  const marker = L.circleMarker([inc.lat, inc.lon], {
    radius: 9 - inc.priority + (chosen ? 4 : 0), color: overdue ? "#000" : "#fff",
    weight: overdue ? 3 : 1, fillColor: COLOURS[inc.priority],
    fillOpacity: inc.status === "reported" ? 0.95 : 0.45,
    className: `incident incident-${inc.id}${overdue ? " overdue" : ""}${chosen ? " selected" : ""}`,
  }).addTo(incidentLayer);
  marker.bindTooltip(() => el("span", {}, `${categoryName(inc)} · P${num(inc.priority)} · ${word(inc.status)}`));
  marker.on("click", () => select(inc.id));
  marker.overdue = overdue;
  if (chosen) marker.bringToFront();
  markers.set(inc.id, marker);
}
function dropMarker(id) {
  const m = markers.get(id);
  if (m) incidentLayer.removeLayer(m);
  markers.delete(id);
}
function drawResponder(r) {
  const known = responders.get(r.id);
  if (known) responderLayer.removeLayer(known.marker);
  if (r.lon === null || r.lat === null) { responders.delete(r.id); return; }
  const fill = r.stale ? "#fff" : r.status === "available" ? "#1a9850" : "#555";
  const marker = L.circleMarker([r.lat, r.lon], {
    radius: 4, color: "#333", weight: 1, fillColor: fill, fillOpacity: 1,
    className: `responder responder-${num(r.id)}`, pane: "responders",
  }).bindTooltip(() => el("span", {}, `${r.callsign} (${kindName(r.kind)}) · ${word(r.status)}` +
                                      (r.stale ? ` · ${t("stale position")}` : ""))).addTo(responderLayer);
  responders.set(r.id, {data: r, marker});
}

// --- the phone's two tabs (list, map) ------------------------------------------------------
const PHONE = window.matchMedia("(max-width: 700px)");
function showTab(name) {
  document.body.dataset.tab = name;
  $("tab-list").setAttribute("aria-selected", String(name === "list"));
  $("tab-map").setAttribute("aria-selected", String(name === "map"));
  if (name === "map") map.invalidateSize();
}
$("tab-list").addEventListener("click", () => showTab("list"));
$("tab-map").addEventListener("click", () => showTab("map"));

// --- selecting and acting ------------------------------------------------------------------
function select(id) {
  const previous = selected;
  selected = id;
  pinned.delete(id);
  if (previous && incidents.has(previous)) drawMarker(incidents.get(previous));
  const inc = incidents.get(id) || resolvedIncidents.get(id);
  if (!inc) return;
  if (incidents.has(id)) drawMarker(inc);  // a resolved one has no marker: it is done
  const itsView = incidents.has(id) ? "open" : "resolved";
  if (view !== itsView) showView(itsView);
  map.setView([inc.lat, inc.lon], Math.max(map.getZoom(), 15));
  sortIncidents();
  const index = ordered.findIndex((i) => i.id === id);
  if (index >= 0 && (index < pageStart || index >= pageStart + PAGE_SIZE)) {
    pageStart = Math.floor(index / PAGE_SIZE) * PAGE_SIZE;
  }
  drawList();
  showDetail(inc, previous !== id || $("detail").dataset.id !== id);
  // on a phone the detail (its actions first) is what a chosen incident opens
  if (PHONE.matches) { showTab("list"); $("side").scrollTop = 0; }
  // on a desktop the detail sits above the list: a row chosen far down brings it into view
  else $("detail").scrollIntoView({block: "nearest"});
}
function actionButton(id, action, label) {
  return el("button", {class: `act act-${action}`, "data-action": action,
                       onclick: () => act(id, action, {})}, label);
}
const LABELS = {accept: t("accept (for the responder)"), arrive: t("arrived (for the responder)"),
                resolve: t("resolve"), close: t("close"), escalate: t("escalate"),
                reopen: t("reopen")};
function showDetail(inc, fresh = true) {
  const box = $("detail");
  box.style.display = "block";
  const late = lateS(inc);
  const head = el("div", {class: "head"},
    el("b", {}, categoryName(inc)), " ", pill(inc.priority), " ",
    el("span", {class: "status"}, word(inc.status)),
    late !== null && late > 0 ? el("span", {class: "late"}, " ", t("overdue +{time}", {time: lateness(late)})) : "",
    el("div", {class: "muted"},
       `${inc.grid_name || inc.grid_code || t("no grid")} · ` +
       t("reported {age} ago", {age: age(inc.reported_at)}) + " · " +
       t("{stage} target {target}", {stage: word(inc.stage),
         target: inc.target_s === null ? t("none") : mss(inc.target_s)}) +
       (inc.escalation_level ? " · " + t("with the {level}", {level: word(inc.escalated_to)}) : "")),
    inc.responder_id ? el("div", {}, t("responder: {name}", {name: inc.responder_callsign || inc.responder_id})) : "",
    inc.description ? el("div", {}, inc.description) : "");
  const actions = el("div", {class: "actions"});
  for (const action of inc.actions || []) {
    if (action === "dispatch" || action === "reassign") continue;  // from the candidates
    if (action === "cancel") {
      actions.append(el("button", {id: "cancel", class: "act act-cancel",
                                   onclick: () => confirmCancel(inc.id)}, t("cancel…")));
    } else {
      actions.append(actionButton(inc.id, action, LABELS[action] || action));
    }
  }
  const can = (a) => (inc.actions || []).includes(a);
  const mine = !fresh && box.dataset.id === inc.id;
  const candidates = (mine && box.querySelector(".candidates")) || el("div", {class: "candidates muted"});
  // what was said about the incident as it was (a result, a refusal) goes when it moved on
  const result = (mine && box.dataset.status === inc.status && box.querySelector("#result")) ||
                 el("div", {id: "result"});
  if (can("reassign")) {
    actions.append(el("button", {class: "act act-reassign",
                                 onclick: () => loadCandidates(inc, "reassign", candidates)}, t("reassign…")));
  }
  actions.append(el("button", {class: "act act-map phone-only", onclick: () => showTab("map")},
                    t("show on map")));
  const photos = (mine && box.querySelector(".photos")) || el("div", {class: "photos"});
  const history = (mine && box.querySelector(".history")) || el("ul", {class: "history"});
  box.dataset.id = inc.id;
  box.dataset.status = inc.status;
  box.replaceChildren(head, history, photos, actions, candidates, el("div", {id: "confirm-slot"}), result);
  if (!mine) loadPhotos(inc.id, photos);
  if (!mine || inc.escalation_level > history.children.length) loadHistory(inc.id, history);
  if (!mine && can("dispatch")) loadCandidates(inc, "dispatch", candidates);
  // candidates offered for an action no longer allowed (someone else dispatched, accepted
  // or ended it meanwhile) go: no button is left that the server would refuse
  if (candidates.dataset.for && !can(candidates.dataset.for)) {
    candidates.replaceChildren();
    delete candidates.dataset.for;
  }
}
// what was done and why it climbed (issue 20): the escalations' reasons and the resolution
// note of the single read (GET /incidents/{id}); as text, like every value
async function loadHistory(id, box) {
  let found;
  try {
    found = await api(`/incidents/${encodeURIComponent(id)}`);
  } catch (err) {
    return;
  }
  if (selected !== id) return;
  box.replaceChildren(
    ...(found.escalations || []).map((step) => el("li", {class: "escalation"},
      t("Escalated to the {level}: {reason}", {level: word(step.escalated_to || step.to_level),
                                               reason: step.reason || t("no reason given")}),
      step.by ? el("span", {class: "muted"}, ` · ${ACTORS[step.by] || step.by}`) : "")),
    found.resolution_note ? el("li", {class: "resolution-note"},
      t("What was done: {note}", {note: found.resolution_note})) : "");
}
// the incident's photos (issue 20): thumbnails, each a link to the photo
async function loadPhotos(id, box) {
  let found;
  try {
    found = await api(`/incidents/${encodeURIComponent(id)}/photos`);
  } catch (err) {
    return;  // none to show (or not for this role)
  }
  if (selected !== id) return;
  box.replaceChildren(...found.data.map((p) =>
    el("a", {href: p.url, target: "_blank", rel: "noopener"},
       el("img", {src: p.thumbnail_url, alt: "photo", class: "thumb"}))));
}
async function loadCandidates(inc, action, box) {
  box.dataset.for = action;
  box.replaceChildren(action === "reassign" ? t("finding someone to send instead…") : t("finding responders…"));
  let found;
  try {
    found = await api(`/incidents/${inc.id}/candidates?k=5&by=travel_time`);
  } catch (err) {  // no road network loaded: straight-line distance
    try { found = await api(`/incidents/${inc.id}/candidates?k=5`); } catch (e) {
      box.replaceChildren(el("span", {class: "error"}, e.message)); return;
    }
  }
  if (selected !== inc.id || box.dataset.for !== action) return;  // moved on meanwhile
  const rows = found.candidates.filter((c) => c.id !== inc.responder_id).map((c) => el("tr", {},
    el("td", {}, c.callsign, c.own_grid_worker ? " ★" : "", el("div", {class: "muted kind", "data-kind": c.kind}, kindName(c.kind))),
    el("td", {}, `${fmt.format(Math.round(c.distance_m))} m`,
       el("div", {class: "muted"}, t("ETA {time}", {time: mss(c.eta_s)}))),
    el("td", {}, el("button", {class: action, "data-responder": num(c.id),
      onclick: () => action === "dispatch"
        ? act(inc.id, "dispatch", {responder_id: Number(c.id)})
        : reassign(inc.id, Number(c.id))}, action === "dispatch" ? t("dispatch") : t("send instead")))));
  box.replaceChildren(
    rows.length ? el("table", {}, ...rows) : el("div", {}, t("nobody available nearby")),
    found.kinds ? el("div", {class: "muted kinds"}, t("for this incident: {kinds}",
      {kinds: new Intl.ListFormat(LANG, {type: "disjunction"}).format(found.kinds.map(kindName))})) : "",
    el("div", {class: "muted"},
       t("target: dispatched within {time} of the report; ★ the grid's own worker", {time: mss(found.target_s)})));
}
function confirmCancel(id) {
  const inc = incidents.get(id);
  $("confirm-slot").replaceChildren(el("div", {id: "confirm"},
    t("Cancel this {category} incident? This cannot be undone.", {category: inc ? categoryName(inc) : ""}), " ",
    el("button", {id: "confirm-cancel", onclick: () => act(id, "cancel", {note: "cancelled from the console"})},
       t("yes, cancel it")),
    el("button", {id: "keep", onclick: () => $("confirm-slot").replaceChildren()}, t("keep it"))));
}
function applyDone(id, done, action) {
  $("result").replaceChildren(t("{action}: now {status}", {action: word(action),
                                                            status: word(done.status)}) +
    (done.escalation_level ? " " + t("(with the {level})", {level: word(done.escalated_to)}) : ""));
  const status = document.querySelector("#detail .status");
  if (status) status.textContent = word(done.status);
  if ($("detail").dataset.id === id) $("detail").dataset.status = done.status;  // said: kept
  $("confirm-slot").replaceChildren();
  if (action === "dispatch" || action === "reassign" || action === "cancel") {
    const box = document.querySelector("#detail .candidates");
    if (box) box.replaceChildren();  // the candidate list is spent
  }
  const inc = incidents.get(id) || resolvedIncidents.get(id);
  if (!inc) return;
  if (!OPEN_STATES.includes(done.status)) {
    remove(id, done.status);
    return;
  }
  // the stream brings the full item (stage, target, actions) within a second
  Object.assign(inc, {status: done.status, responder_id: done.responder_id,
                      escalation_level: done.escalation_level, escalated_to: done.escalated_to,
                      actions: []});
  if (resolvedIncidents.delete(id)) incidents.set(id, inc);  // reopened: open again
  sortIncidents(); drawList(); drawMarker(inc);
  const actions = document.querySelector("#detail .actions");
  if (actions) actions.replaceChildren(el("span", {class: "muted"}, t("updating…")));
}
// A refused action: a 409 means someone else moved the incident first (or the responder was
// taken): read it again, show it as it is now, and say why (the server's words, in the
// page's language); any other refusal is said as it is.
async function refused(id, err) {
  if (err.status === 409) await refresh(id);
  const result = $("result");
  if (result && selected === id) result.replaceChildren(el("span", {class: "error refused"}, err.message));
}
async function refresh(id) {
  let inc;
  try {
    inc = await api(`/console/incidents/${encodeURIComponent(id)}`);
  } catch (err) {
    return;  // gone from the caller's area: the error says enough
  }
  place(inc);
  if (selected === id && $("detail").dataset.id === id) showDetail(inc, false);
}
// An item read or pushed goes to the list its state belongs in (open, to close, or none).
function place(inc) {
  if (OPEN_STATES.includes(inc.status)) {
    resolvedIncidents.delete(inc.id);
    incidents.set(inc.id, inc);
    drawMarker(inc);
  } else if (inc.status === "resolved") {
    incidents.delete(inc.id);
    pinned.delete(inc.id);
    dropMarker(inc.id);
    resolvedIncidents.set(inc.id, inc);
  } else {
    remove(inc.id, inc.status);
    return;
  }
  sortIncidents(); drawList();
}
async function act(id, action, body) {
  try {
    const done = await api(`/incidents/${id}/${action}`, {
      method: "POST", body: JSON.stringify(body), headers: {"Content-Type": "application/json"},
    });
    applyDone(id, done, action);
  } catch (err) {
    await refused(id, err);
  }
}
async function reassign(id, responderId) {
  try {
    const done = await api(`/console/incidents/${id}/reassign`, {
      method: "POST", body: JSON.stringify({responder_id: responderId}),
      headers: {"Content-Type": "application/json"},
    });
    applyDone(id, done, "reassign");
  } catch (err) {
    await refused(id, err);
  }
}
// ``keepResolved``: a stream's "no longer open" for one now waiting to be closed (its item
// comes in the same or a later event's ``resolved``).
function remove(id, status, keepResolved = false) {
  incidents.delete(id);
  if (!keepResolved) resolvedIncidents.delete(id);
  pinned.delete(id);
  dropMarker(id);
  sortIncidents(); drawList();
  if (selected === id && !(keepResolved && resolvedIncidents.has(id))) {
    const s = document.querySelector("#detail .status");
    if (s) s.textContent = word(status);
    const actions = document.querySelector("#detail .actions");
    if (actions) {
      actions.replaceChildren(el("span", {class: "muted"}, status === "resolved"
        ? t("resolved: waiting to be closed") : t("{status}: no longer open", {status: word(status)})));
    }
    const box = document.querySelector("#detail .candidates");
    if (box) { box.replaceChildren(); delete box.dataset.for; }
  }
}

// --- announcing a new priority 1 -----------------------------------------------------------
const announce = $("announce");
announce.checked = localStorage.getItem(ANNOUNCE_KEY) === "on";
announce.addEventListener("change", async () => {
  localStorage.setItem(ANNOUNCE_KEY, announce.checked ? "on" : "off");
  if (announce.checked && "Notification" in window && Notification.permission === "default") {
    await Notification.requestPermission();
  }
});
function beep() {
  try {
    const ctx = new AudioContext();
    const tone = ctx.createOscillator();
    const gain = ctx.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.6);
    tone.connect(gain).connect(ctx.destination);
    tone.start(); tone.stop(ctx.currentTime + 0.6);
  } catch (err) { /* no audio device: the banner and notification remain */ }
}
function announceNew(inc) {
  pinned.add(inc.id);
  const banner = $("banner");
  banner.replaceChildren(t("New priority 1: {category} in {grid}",
                           {category: categoryName(inc), grid: inc.grid_name || inc.grid_code || t("no grid")}));
  banner.style.display = "block";
  banner.onclick = () => { banner.style.display = "none"; select(inc.id); };
  if (!announce.checked) return;
  beep();
  if ("Notification" in window && Notification.permission === "granted") {
    const note = new Notification(t("New priority 1 incident"),
                                  {body: `${categoryName(inc)} · ${inc.grid_name || inc.grid_code || ""}`, tag: inc.id});
    note.onclick = () => { window.focus(); select(inc.id); };
  }
}

// --- the stream ----------------------------------------------------------------------------
function onIncidents(data) {
  clockFrom(data.now);
  for (const inc of data.changed) {
    const known = incidents.has(inc.id);  // a resumed stream may repeat what the load had
    incidents.set(inc.id, inc);
    drawMarker(inc);
    if (inc.new && !known && inc.priority === 1) announceNew(inc);
  }
  for (const gone of data.closed) {
    if (incidents.has(gone.id) || resolvedIncidents.has(gone.id)) {
      remove(gone.id, gone.status, gone.status === "resolved");
    }
  }
  for (const inc of data.resolved || []) place(inc);
  // a changed item replaces the resolved one it was (reopened)
  for (const inc of data.changed) resolvedIncidents.delete(inc.id);
  sortIncidents(); drawList();
  const mine = (list) => (list || []).find((i) => i.id === selected);
  const now = selected && (mine(data.changed) || mine(data.resolved));
  if (now && $("detail").dataset.id === selected) showDetail(now, false);
}
function connect() {
  if (source) source.close();
  const since = lastEventId ? `?since=${encodeURIComponent(lastEventId)}` : "";
  source = new EventSource(`/console/stream${since}`);
  const live = $("live");
  source.onopen = () => { streamOpens += 1; live.textContent = t("live"); live.className = "ok"; };
  source.onerror = () => {
    live.textContent = t("reconnecting…"); live.className = "down";
    // the browser retries by itself (with Last-Event-ID); a refused stream is closed for good
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
  };
  const track = (handler) => (message) => {
    lastEventId = message.lastEventId || lastEventId;
    handler(JSON.parse(message.data));
  };
  source.addEventListener("incidents", track(onIncidents));
  source.addEventListener("responders", track((data) => data.changed.forEach(drawResponder)));
  source.addEventListener("summary", track((data) => {
    drawCounts(data);
    $("clock").textContent = t("at {time}", {time: new Date(Date.parse(data.now)).toLocaleTimeString(LANG === "en" ? "en-GB" : LANG)});
  }));
}
// time moves even when nothing changes: overdue is judged again every few seconds
setInterval(() => {
  for (const inc of incidents.values()) {
    const m = markers.get(inc.id);
    if (m && m.overdue !== isOverdue(inc)) drawMarker(inc);
  }
  drawList();
}, 5000);

async function loadResolved() {
  let page = await api(`/console/incidents?view=resolved&limit=1000&offset=0`);
  for (;;) {
    for (const inc of page.items) resolvedIncidents.set(inc.id, inc);
    if (page.next_offset === null) break;
    page = await api(`/console/incidents?view=resolved&limit=1000&offset=${page.next_offset}`);
  }
}
async function loadAll() {
  let offset = 0;
  const first = await api(`/console/incidents?limit=1000&offset=0`);
  drawCounts(first);
  lastEventId = first.event_id;
  // after the first page: the stream resumes from its event id, so a resolve meanwhile is sent
  await loadResolved();
  let page = first;
  for (;;) {
    for (const inc of page.items) incidents.set(inc.id, inc);
    if (page.next_offset === null) break;
    offset = page.next_offset;
    page = await api(`/console/incidents?limit=1000&offset=${offset}`);
  }
  for (const inc of incidents.values()) drawMarker(inc);
  sortIncidents(); drawList();
}
Promise.all([
  api("/areas?level=grid").then((d) => { grids.addData(d); map.fitBounds(grids.getBounds()); }),
  api("/responders").then((d) => d.features.forEach((f) => drawResponder({
    ...f.properties, lon: f.geometry ? f.geometry.coordinates[0] : null,
    lat: f.geometry ? f.geometry.coordinates[1] : null}))),
  loadAll(),
]).then(connect).catch((err) => { $("counts").replaceChildren(el("span", {class: "error"}, err.message)); });

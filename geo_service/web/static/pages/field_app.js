"use strict";
// The grid worker's phone page (/app, issue 20); loads after common.js.
// My tasks come from /console/incidents (scoped by the server: the grid's open incidents and
// those dispatched to me, with each stage's target) and change live over /console/stream.
// Every write goes through the outbox: it is stored on the phone (IndexedDB) first, with an
// Idempotency-Key, and sent in order; without a connection it waits and is sent when the
// connection returns, and the server does each action once however often it is sent.
// Every value from the server goes into the page as text (el() below), never as HTML.

// --- every word of the page, in one place --------------------------------------------------
// Each is a t() call (common.js): Babel extracts it into the "pages" catalogue
// (scripts/update_translations.sh) and the page reads the translations of its language from
// data-i18n; tests/dispatch/test_field_app_language.py fails on a word that is not.
const TEXT = {
  tasks: t("My tasks"),
  report: t("Report"),
  visits: t("Visits"),
  category: t("Category"),
  priority: t("Priority (1 = most urgent)"),
  description: t("What did you find?"),
  location: t("Location:"),
  use_gps: t("Use my GPS"),
  tap_map: t("Or tap the map where it is."),
  photo: t("Photo (optional)"),
  photo_alt: t("Photo"),
  send_report: t("Send report"),
  resolution_code: t("How was it settled?"),
  code_settled: t("Settled on the spot"),
  code_referred: t("Referred to another office"),
  code_no_issue: t("Nothing found"),
  code_duplicate: t("Duplicate of another report"),
  code_other: t("Other"),
  cancel: t("Cancel"),
  confirm: t("Confirm"),
  on_duty: t("On duty"),
  off_duty: t("Off duty"),
  sharing: (s) => t("Sharing my position every {s} s", {s}),
  last_fix: (time) => t(", last sent {time}", {time}),
  not_sharing: t("Not sharing my position"),
  no_responder: t("No responder is linked to your user: ask your office."),
  online: t("Online"),
  offline: t("Offline: what you do is kept on this phone and sent later"),
  waiting: (n) => t("{n} waiting to send", {n}),
  failed: (n) => t("{n} not accepted by the server", {n}),
  retry: t("Send again"),
  discard: t("Discard"),
  discard_confirm: (what) => t("Discard “{what}”? It will not be sent.", {what}),
  all_sent: t("Everything is sent"),
  no_tasks: t("No open tasks in your grid."),
  loading: t("Loading…"),
  from_cache: t("Shown as last loaded (no connection)."),
  take: t("Accept"),
  accept: t("Accept"),
  arrive: t("Arrived"),
  resolve: t("Resolve"),
  escalate: t("Escalate"),
  escalate_to: (level) => t("Escalate to the {level}", {level: say("level")[level] || level}),
  escalate_reason: t("Why does it need the next level?"),
  resolve_note: t("Note (what was done)"),
  left: (time) => t("{time} left", {time}),
  late: (time) => t("{time} late", {time}),
  no_target: t("no target"),
  mine: t("mine"),
  someone_else: (who) => t("with {who}", {who}),
  pending: t("waiting to send"),
  status: {
    reported: t("reported"), dispatched: t("dispatched to me"), accepted: t("accepted"),
    on_scene: t("on scene"), resolved: t("resolved"), closed: t("closed"), cancelled: t("cancelled"),
  },
  level: {grid: t("grid"), community: t("community"), street: t("street"), district: t("district")},
  action_label: {
    dispatch: t("take"), accept: t("accept"), arrive: t("arrived"), resolve: t("resolve"),
    escalate: t("escalate"), report: t("report"), duty: t("duty"), visit: t("visit"),
  },
  need_location: t("Set the location first: GPS or a tap on the map."),
  outside_grid: (grid) => t("This place is outside your grid “{grid}”: a report there is not accepted. Put the point inside the blue outline.", {grid}),
  outside_tag: t("outside my grid"),
  escalation: (level, reason) => t("Escalated to the {level}: {reason}", {level, reason}),
  no_reason: t("no reason given"),
  gps_failed: t("No GPS fix"),
  where: (lon, lat, how) => t("{lat}, {lon} ({how})", {lat: lat.toFixed(5), lon: lon.toFixed(5), how}),
  gps: t("GPS"),
  zoom_in: t("Zoom in"),
  zoom_out: t("Zoom out"),
  map: t("map"),
  report_queued: t("Report kept; it is sent when there is a connection."),
  queued: t("Kept; sent when there is a connection."),
  sent: t("Sent"),
  kept_sent: t("What was kept on this phone has been sent."),
  earlier_refused: t("not sent: the action before it on this incident was refused"),
  refused: (what, why) => t("Not accepted: {what}: {why}", {what, why}),
  sign_in_again: t("Your sign-in has ended: sign in again to send what is waiting."),
  photo_too_big: t("The photo is larger than 10 MB."),
  households_none: t("No households in your grid."),
  last_visit: (date) => t("last visit {date}", {date}),
  never_visited: t("never visited"),
  overdue_visit: (days) => t("not visited within {days} days", {days}),
  record_visit: t("Record a visit"),
  visit_date: t("Date"),
  visit_outcome: t("Outcome"),
  outcome: {met: t("met the household"), no_answer: t("nobody home"), refused: t("refused"),
            moved: t("moved away")},
  elderly_living_alone: t("Elderly living alone"),
  needs_assistance: t("Needs assistance"),
  coverage: (share, days) => t("{share}% visited within {days} days", {share, days}),
  members: (n) => (n === 1 ? t("1 person") : t("{n} people", {n})),
  save_visit: t("Save visit"),
  visit_queued: t("Visit kept; it is sent when there is a connection."),
  sign_out: t("Sign out"),
  sign_out_waiting: (n) => t("{n} still waiting to send: they are sent when you sign in again. Sign out?", {n}),
  someone_elses: (n, who) => t("{n} kept for {who}: sent when they sign in", {n, who}),
};
// the page's own words (TEXT); common.js's t() reads the catalogues of the other pages
const say = (key, ...args) => {
  const v = TEXT[key];
  return typeof v === "function" ? v(...args) : (v ?? key);
};

const ME = Number(PAGE.responder) || null;
const GRID_ID = Number(PAGE.gridId) || null;
const INTERVAL_S = Number(PAGE.intervalS) || 30;
const COLOURS = {1: "#d7191c", 2: "#f57c00", 3: "#c9a400", 4: "#2c7bb6"};
const LEVELS = ["grid", "community", "street", "district"];
const OPEN = new Set(["reported", "dispatched", "accepted", "on_scene"]);
// action -> [states it may leave, state it enters] (as services/dispatch/lifecycle.py)
const MOVES = {
  dispatch: [["reported"], "dispatched"], accept: [["dispatched"], "accepted"],
  arrive: [["accepted"], "on_scene"], resolve: [["accepted", "on_scene"], "resolved"],
};

const categoryName = (task) => task.category_name || task.category;
const MY_GRID = PAGE.gridName || PAGE.gridCode || "";  // the worker's grid by its name

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "onclick") node.addEventListener("click", v);
    else if (k.startsWith("data-")) node.dataset[k.slice(5)] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== null && c !== undefined && c !== false) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}
function newKey() {
  return crypto.randomUUID ? crypto.randomUUID()
    : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}
function mss(seconds) {
  const s = Math.round(Math.abs(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
}
let toastTimer = null;
// what the toast is about: a tab's own warning goes when another tab is shown; a "kept,
// sent later" goes when the outbox has sent it
let toastAbout = null;
function toast(message, about = null) {
  $("toast").textContent = message;
  $("toast").classList.add("on");
  toastAbout = about;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(hideToast, 4000);
}
function hideToast() {
  $("toast").classList.remove("on");
  toastAbout = null;
}
for (const node of document.querySelectorAll("[data-t]")) node.textContent = say(node.dataset.t);

// --- the outbox: IndexedDB, in order, each item with its Idempotency-Key -----------------
const DB_NAME = "geo-service-field";
let dbPromise = null;
function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const open = indexedDB.open(DB_NAME, 1);
      open.onupgradeneeded = () => open.result.createObjectStore("outbox", {keyPath: "seq", autoIncrement: true});
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
  }
  return dbPromise;
}
async function store(mode, work) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const tx = conn.transaction("outbox", mode);
    const request = work(tx.objectStore("outbox"));
    tx.oncomplete = () => resolve(request ? request.result : undefined);
    tx.onerror = () => reject(tx.error);
  });
}
const outboxAll = () => store("readonly", (s) => s.getAll());
const outboxAdd = (item) => store("readwrite", (s) => s.add(item));
const outboxDelete = (seq) => store("readwrite", (s) => s.delete(seq));
const outboxPut = (item) => store("readwrite", (s) => s.put(item));
let waiting = [];          // the outbox as last read

// items belong to the worker who made them: on a shared phone, another's wait for them.
// An item the server refused (a 4xx: the incident was closed meanwhile, the input is no longer
// valid) stays in the outbox with the server's reason (item.refused) until its worker retries
// or discards it: it is not sent again by itself, and nothing is dropped silently.
const OWNER = PAGE.callsign || "";
const isMine = (item) => (item.owner || "") === OWNER;
const mineToSend = (items) => items.filter((item) => isMine(item) && !item.refused);
const mineRefused = (items) => items.filter((item) => isMine(item) && item.refused);
async function queue(item) {
  item.owner = OWNER;
  item.key = item.key || newKey();
  item.created = new Date().toISOString();
  await outboxAdd(item);
  waiting = await outboxAll();
  drawOutbox();
  drawTasks();
  if (households) drawVisits();
  if (navigator.onLine) flush();
  else toast(item.kind === "report" ? say("report_queued") : item.kind === "visit" ? say("visit_queued") : say("queued"), "queued");
}

function headersFor(item, extra = {}) {
  return {"Idempotency-Key": item.key, "X-CSRF-Token": PAGE.csrf || "", ...extra};
}
// "sent", "later" (no connection, server busy, signed out) or {refused: reason}
async function deliver(item) {
  let response;
  try {
    if (item.kind === "report") return await deliverReport(item);
    response = await fetch(item.path, {
      method: item.method, credentials: "same-origin",
      headers: headersFor(item, {"Content-Type": "application/json"}),
      body: JSON.stringify(item.body || {}),
    });
    if (item.kind === "duty" && response.status === 409 && item.body.status === "available") {
      // holding an open incident: on duty means busy until it is resolved
      response = await fetch(item.path, {
        method: "PATCH", credentials: "same-origin",
        headers: headersFor(item, {"Content-Type": "application/json"}),
        body: JSON.stringify({status: "busy"}),
      });
    }
  } catch (err) {
    return "later";  // no connection: the fetch itself failed
  }
  if (item.kind === "duty" && response.ok) {
    // what the server now holds (busy rather than available while holding an incident)
    const now = await response.clone().json().catch(() => null);
    if (now && now.status) serverStatus = now.status;
  }
  return outcome(response);
}
async function outcome(response) {
  if (response.ok) return "sent";
  if (response.status === 401) { toast(say("sign_in_again")); return "later"; }
  if (response.status === 429 || response.status >= 500) return "later";
  const body = await response.json().catch(() => ({}));
  return {refused: body.detail || t("HTTP {status}", {status: response.status})};
}
async function deliverReport(item) {
  const response = await fetch("/incidents", {
    method: "POST", credentials: "same-origin",
    headers: headersFor(item, {"Content-Type": "application/json"}),
    body: JSON.stringify(item.body),
  });
  const result = await outcome(response);
  if (result !== "sent" || !item.photo) return result;
  const incident = await response.json();
  const form = new FormData();
  form.append("file", item.photo, item.photoName || "photo.jpg");
  const upload = await fetch(`/incidents/${encodeURIComponent(incident.id)}/photos`, {
    method: "POST", credentials: "same-origin",
    headers: headersFor({key: `${item.key}:photo`}), body: form,
  });
  return outcome(upload);
}

let flushing = false;
async function flush() {
  if (flushing) return;
  flushing = true;
  let sent = 0;
  let dutySent = false;
  const refusedIncidents = new Set();  // a refused take refuses the accept queued after it
  try {
    for (const item of mineToSend(await outboxAll())) {
      if (item.kind === "action" && refusedIncidents.has(item.incident)) {
        await outboxPut({...item, refused: say("earlier_refused"), refusedAt: new Date().toISOString()});
        continue;
      }
      const result = await deliver(item);
      if (result === "later") break;
      if (result === "sent") {
        await outboxDelete(item.seq);
        sent += 1;
        if (item.kind === "duty") dutySent = true;
      } else {
        if (item.kind === "action") refusedIncidents.add(item.incident);
        await outboxPut({...item, refused: result.refused, refusedAt: new Date().toISOString()});
        toast(say("refused", describe(item), result.refused));
      }
    }
  } finally {
    flushing = false;
    waiting = await outboxAll();
    drawOutbox();
    drawTasks();  // refused actions no longer show as done
    settleDuty();
    // on duty now on the server: the first position goes at once (it was held while the
    // change waited, since the server refuses a fix from an off-duty responder)
    if (dutySent && onDuty) schedulePositions();
  }
  // "kept, sent when there is a connection" is no longer true: say it went
  if (sent && toastAbout === "queued" && !mineToSend(waiting).length) toast(say("kept_sent"));
  if (sent) { loadTasks(); if (households) loadVisits(); }
}
function describe(item) {
  const what = say("action_label")[item.kind === "action" ? item.action : item.kind] || item.kind;
  return item.label ? `${what} · ${item.label}` : what;
}
function drawOutbox() {
  const box = $("outbox");
  const mine = mineToSend(waiting);
  const refusals = mineRefused(waiting);
  const others = waiting.filter((item) => !isMine(item));
  box.hidden = waiting.length === 0;
  const parts = [];
  if (mine.length) parts.push(say("waiting", mine.length));
  if (refusals.length) parts.push(say("failed", refusals.length));
  for (const who of new Set(others.map((item) => item.owner || "?"))) {
    parts.push(say("someone_elses", others.filter((item) => (item.owner || "?") === who).length, who));
  }
  $("outbox-toggle").textContent = parts.join(" · ") || say("all_sent");
  $("outbox-list").replaceChildren(
    ...mine.map((item) => el("li", {class: "waiting", "data-key": item.key}, describe(item))));
  // refused items are always in view, each with the server's reason and what to do with it
  $("outbox-refused").replaceChildren(...refusals.map((item) =>
    el("li", {class: "refused", "data-key": item.key},
       el("div", {class: "reason"}, say("refused", describe(item), item.refused)),
       el("div", {class: "buttons"},
          el("button", {type: "button", class: "retry", onclick: () => retry(item)}, say("retry")),
          el("button", {type: "button", class: "discard", onclick: () => discard(item)}, say("discard"))))));
  box.classList.toggle("has-refusals", refusals.length > 0);
}
async function retry(item) {
  const again = {...item};
  delete again.refused;
  delete again.refusedAt;
  await outboxPut(again);
  waiting = await outboxAll();
  drawOutbox();
  drawTasks();
  if (households) drawVisits();
  settleDuty();
  if (navigator.onLine) flush();
}
async function discard(item) {
  if (!window.confirm(say("discard_confirm", describe(item)))) return;
  await outboxDelete(item.seq);
  waiting = await outboxAll();
  drawOutbox();
  settleDuty();  // a discarded duty change no longer says what the switch shows
}
$("outbox-toggle").addEventListener("click", () => $("outbox").classList.toggle("open"));

function drawNet() {
  $("net").textContent = navigator.onLine ? say("online") : say("offline");
  $("net").className = navigator.onLine ? "online" : "offline";
}
// back online: send what waits and read the tasks anew (they were shown as last loaded)
window.addEventListener("online", () => { drawNet(); flush(); loadTasks(); });
window.addEventListener("offline", drawNet);
setInterval(() => { if (navigator.onLine && mineToSend(waiting).length) flush(); }, 15000);

// signing out forgets what the phone keeps to read offline (tasks, households, photos); what
// waits to be sent stays, and goes when its worker signs in again
$("sign-out-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const left = mineToSend(waiting).length;
  if (left && !window.confirm(say("sign_out_waiting", left))) return;
  await forgetKeptReads();
  e.target.submit();
});
// the service worker forgets first (so a read still on its way is not kept after), then the
// page deletes whatever is left
async function forgetKeptReads() {
  const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (worker) {
    await new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = resolve;
      worker.postMessage("forget", [channel.port2]);
      setTimeout(resolve, 2000);  // a worker that does not answer does not keep the worker in
    });
  }
  if (window.caches) await caches.keys().then((names) => Promise.all(names.map((n) => caches.delete(n))));
}

// --- my tasks --------------------------------------------------------------------------------
let tasks = [];
let skewMs = 0;        // the server's clock minus this phone's
let eventId = null;
let fromCache = false;
const serverNow = () => Date.now() + skewMs;

async function loadTasks() {
  try {
    const response = await fetch("/console/incidents?limit=200", {credentials: "same-origin"});
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const page = await response.json();
    fromCache = response.headers.get("X-From-Cache") === "1";
    if (page.now && !fromCache) skewMs = Date.parse(page.now) - Date.now();
    tasks = page.items;
    eventId = page.event_id;
    connectStream();
    loadPhotos();
    loadEscalations();
  } catch (err) {
    fromCache = true;
  }
  drawTasks();
  // the phone says it is online but the read came from what it kept (the network was not
  // up yet): read again shortly, so "shown as last loaded" does not stay
  clearTimeout(tasksRetry);
  if (fromCache && navigator.onLine) tasksRetry = setTimeout(loadTasks, 5000);
}
let tasksRetry = null;
// the tasks' photos: thumbnails under each task, each a link to the photo
const photos = new Map();  // incident id -> its photos
async function loadPhotos() {
  // asked again while a task has none: a photo may come after its incident (the phone's own
  // report sends it right after, and a dispatcher may add one later)
  const missing = tasks.filter((task) => !(photos.get(task.id) || []).length);
  if (!missing.length) return;
  await Promise.all(missing.map((task) =>
    fetch(`/incidents/${encodeURIComponent(task.id)}/photos`, {credentials: "same-origin"})
      .then((r) => (r.ok ? r.json() : {data: []}))
      .then((found) => photos.set(task.id, found.data))
      .catch(() => {})));
  drawTasks();
}
// why a task climbed: its escalation history (GET /incidents/{id}: from, to, when, who, why),
// asked for again when its level is higher than the history known
const climbs = new Map();  // incident id -> its escalations
async function loadEscalations() {
  const missing = tasks.filter((task) => task.escalation_level > (climbs.get(task.id) || []).length);
  if (!missing.length) return;
  await Promise.all(missing.map((task) =>
    fetch(`/incidents/${encodeURIComponent(task.id)}`, {credentials: "same-origin"})
      .then((r) => (r.ok ? r.json() : null))
      .then((found) => { if (found) climbs.set(task.id, found.escalations || []); })
      .catch(() => {})));
  drawTasks();
}
// what the outbox will do to each incident, applied over the server's state
function pendingByIncident() {
  const pending = new Map();
  for (const item of mineToSend(waiting)) {
    if (item.kind !== "action") continue;
    if (!pending.has(item.incident)) pending.set(item.incident, []);
    pending.get(item.incident).push(item);
  }
  return pending;
}
function shownState(task, pending) {
  let status = task.status, responder = task.responder_id, level = task.escalation_level;
  for (const item of pending) {
    if (item.action === "escalate") { level = Math.min(3, level + 1); continue; }
    const move = MOVES[item.action];
    if (move && move[0].includes(status)) status = move[1];
    if (item.action === "dispatch") responder = ME;
  }
  return {status, responder, level};
}
function actionsFor(task, state, busy) {
  if (!OPEN.has(state.status)) return [];
  const mine = ME !== null && state.responder === ME;
  const actions = [];
  // a responder holds one open incident at a time: take another when this one is done
  // taking a report needs the worker on duty (the server refuses an off-duty responder)
  if (state.status === "reported" && state.responder === null && ME !== null && !busy && onDuty) actions.push("take");
  if (mine && state.status === "dispatched") actions.push("accept");
  if (mine && state.status === "accepted") actions.push("arrive");
  if (mine && (state.status === "accepted" || state.status === "on_scene")) actions.push("resolve");
  if (state.level < 3 && (task.grid_code === PAGE.gridCode || mine)) actions.push("escalate");
  return actions;
}
function timeLeft(task, state) {
  if (!task.due_at) return {text: say("no_target"), late: false};
  // the target of the stage the incident is in now (accepting ends the dispatch stage)
  const seconds = (Date.parse(task.due_at) - serverNow()) / 1000;
  return seconds >= 0 ? {text: say("left", mss(seconds)), late: false}
                      : {text: say("late", mss(seconds)), late: true};
}
function urgency(a, b) {
  const due = (x) => (x.due_at ? Date.parse(x.due_at) : Infinity);
  return (a.priority - b.priority) || (due(a) - due(b)) || a.id.localeCompare(b.id);
}
function drawTasks() {
  const pending = pendingByIncident();
  const states = new Map(tasks.map((task) => [task.id, shownState(task, pending.get(task.id) || [])]));
  const busy = [...states.values()].some((s) => s.responder === ME && OPEN.has(s.status));
  const rows = [...tasks].sort(urgency).map((task) => {
    const waitingHere = pending.get(task.id) || [];
    const state = states.get(task.id);
    const left = timeLeft(task, state);
    const mine = ME !== null && state.responder === ME;
    const buttons = actionsFor(task, state, busy).map((action) =>
      el("button", {type: "button", class: `act act-${action}`, "data-action": action,
                    onclick: () => startAction(task, action, state)},
         action === "escalate" ? say("escalate_to", LEVELS[state.level + 1]) : say(action)));
    return el("li", {class: `task p${Number(task.priority)}${left.late ? " late" : ""}${mine ? " mine" : ""}`,
                     "data-id": task.id, "data-status": state.status},
      el("div", {class: "line1"},
        el("span", {class: "pill", style: `background:${COLOURS[task.priority] || "#666"}`}, Number(task.priority)),
        el("strong", {}, categoryName(task)),
        el("span", {class: `left${left.late ? " late" : ""}`}, left.text)),
      task.description ? el("div", {class: "desc"}, task.description) : null,
      (climbs.get(task.id) || []).length ? el("ul", {class: "escalations"},
        ...climbs.get(task.id).map((step) => el("li", {class: "escalation"},
          say("escalation", say("level")[step.escalated_to || step.to_level] || step.escalated_to || step.to_level, step.reason || say("no_reason"))))) : null,
      (photos.get(task.id) || []).length ? el("div", {class: "photos"},
        ...photos.get(task.id).map((p) => el("a", {href: p.url, target: "_blank", rel: "noopener"},
          el("img", {src: p.thumbnail_url, alt: say("photo_alt"), class: "thumb"})))) : null,
      el("div", {class: "line2"},
        el("span", {class: "status"}, say("status")[state.status] || state.status),
        mine ? el("span", {class: "mine-tag"}, say("mine"))
             : task.responder_callsign ? el("span", {}, say("someone_else", task.responder_callsign)) : null,
        state.level ? el("span", {class: "level", "data-level": LEVELS[state.level]}, say("level")[LEVELS[state.level]]) : null,
        waitingHere.length ? el("span", {class: "pending"}, say("pending")) : null),
      buttons.length ? el("div", {class: "buttons"}, ...buttons) : null);
  });
  $("tasks").replaceChildren(...rows);
  $("task-count").textContent = tasks.length ? String(tasks.length) : "";
  drawTaskMarkers();
  $("tasks-state").textContent = !tasks.length ? (fromCache ? say("from_cache") : say("no_tasks"))
                                              : fromCache ? say("from_cache") : "";
}
setInterval(() => {  // the time left ticks without a reload
  for (const node of document.querySelectorAll("#tasks li.task")) {
    const task = tasks.find((x) => x.id === node.dataset.id);
    if (!task) continue;
    const left = timeLeft(task, null);
    const span = node.querySelector(".left");
    span.textContent = left.text;
    span.classList.toggle("late", left.late);
    node.classList.toggle("late", left.late);
  }
}, 1000);

// accept, arrive, resolve (code and note), escalate (a reason)
let acting = null;
function startAction(task, action, state) {
  if (action === "take") {
    // a report nobody has yet: I send myself (dispatch) and accept, in that order
    queueAction(task, "dispatch", {responder_id: ME});
    queueAction(task, "accept", {});
    return;
  }
  if (action !== "resolve" && action !== "escalate") { queueAction(task, action, {}); return; }
  acting = {task, action};
  $("act-title").textContent = action === "resolve" ? `${say("resolve")} · ${categoryName(task)}`
                                                   : say("escalate_to", LEVELS[state.level + 1]);
  $("act-code").hidden = $("act-code-label").hidden = action !== "resolve";
  $("act-note-label").textContent = action === "resolve" ? say("resolve_note") : say("escalate_reason");
  $("act-note").value = "";
  $("act-note").required = action === "escalate";
  $("act").showModal();
}
$("act").addEventListener("close", () => {
  if ($("act").returnValue !== "ok" || !acting) { acting = null; return; }
  const note = $("act-note").value.trim();
  const body = acting.action === "resolve" ? {resolution_code: $("act-code").value, note: note || null}
                                          : {note: note || null};
  queueAction(acting.task, acting.action, body);
  acting = null;
});
function queueAction(task, action, body) {
  queue({kind: "action", action, incident: task.id, label: categoryName(task), method: "POST",
         path: `/incidents/${encodeURIComponent(task.id)}/${action}`, body});
}

// live: what a dispatcher changes shows up without reloading
let source = null;
let reloadTimer = null;
function connectStream() {
  if (source || !eventId || !navigator.onLine) return;
  source = new EventSource(`/console/stream?since=${encodeURIComponent(eventId)}`);
  source.addEventListener("incidents", () => {
    clearTimeout(reloadTimer);
    reloadTimer = setTimeout(loadTasks, 300);
  });
  source.addEventListener("open", () => { $("net").dataset.live = "1"; });
  source.addEventListener("error", () => {
    $("net").dataset.live = "0";
    if (!navigator.onLine) { source.close(); source = null; }
  });
}

// --- on duty: a position every INTERVAL_S while on duty, never while off ---------------------
// The switch shows the latest wish: a duty change waiting in the outbox (the phone's, newer
// than anything the server knows), else the server's state. The page itself may be a copy
// kept for use offline, so its data-status may be old: until the outbox has been read the
// page shares nothing, and once a duty change is sent the server's answer is what it shows.
let serverStatus = PAGE.status;  // as the page was served, then as the last duty change answered
let onDuty = false;              // decided by settleDuty() once the outbox is read
let dutyKnown = false;
function wishedOnDuty() {
  if (!ME) return false;
  // a change the server refused still says what the worker wanted, and the server did not
  // take it: nothing is shared on it until it is sent again or discarded
  const changes = waiting.filter((item) => isMine(item) && item.kind === "duty");
  if (changes.length) {
    const latest = changes[changes.length - 1];
    return !latest.refused && latest.body.status !== "off_duty";
  }
  return serverStatus !== "" && serverStatus !== "off_duty";
}
function settleDuty() {
  dutyKnown = true;
  const wished = wishedOnDuty();
  const changed = wished !== onDuty;
  onDuty = wished;
  drawDuty();
  if (changed || (onDuty && !positionTimer)) schedulePositions();
}
let positionTimer = null;
let lastFix = null;
function drawDuty() {
  $("duty-input").checked = onDuty;
  $("duty-input").disabled = !ME;
  $("duty-text").textContent = onDuty ? say("on_duty") : say("off_duty");
  $("duty").classList.toggle("on", onDuty);
  $("duty-detail").textContent = !ME ? say("no_responder")
    : onDuty ? say("sharing", INTERVAL_S) + (lastFix ? say("last_fix", lastFix) : "") : say("not_sharing");
}
function sharePosition() {
  if (!dutyKnown || !onDuty || !wishedOnDuty() || !navigator.geolocation) return;
  // a duty change not yet sent: the server still holds the old status (off duty refuses fixes)
  if (mineToSend(waiting).some((item) => item.kind === "duty")) return;
  navigator.geolocation.getCurrentPosition((pos) => {
    if (!onDuty || !wishedOnDuty()) return;  // switched off while the fix was coming
    const fix = {id: ME, lon: pos.coords.longitude, lat: pos.coords.latitude,
                 at: new Date().toISOString()};  // the phone's own clock, as devices stamp fixes
    fetch("/responders/positions", {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": PAGE.csrf || ""},
      body: JSON.stringify({positions: [fix]}),
    }).then((r) => {
      if (r.ok) { lastFix = new Date().toLocaleTimeString(); drawDuty(); }
    }).catch(() => {});  // a fix is for now: one missed without a connection is not kept
  }, () => {}, {enableHighAccuracy: true, maximumAge: 10000, timeout: 20000});
}
function schedulePositions() {
  clearInterval(positionTimer);
  positionTimer = null;
  if (onDuty && dutyKnown) {
    sharePosition();
    positionTimer = setInterval(sharePosition, INTERVAL_S * 1000);
  }
}
$("duty-input").addEventListener("change", async () => {
  onDuty = $("duty-input").checked;
  drawDuty();
  clearInterval(positionTimer);  // nothing more is shared until the wish is in the outbox
  positionTimer = null;
  await queue({kind: "duty", method: "PATCH", path: `/responders/${ME}`,
               body: {status: onDuty ? "available" : "off_duty"},
               label: onDuty ? say("on_duty") : say("off_duty")});
  settleDuty();
});

// a map whose zoom buttons speak the page's language (Leaflet's own titles are English)
function newMap(id, options = {}) {
  const map = L.map(id, {zoomSnap: 0.25, zoomControl: false, ...options});
  L.control.zoom({zoomInTitle: say("zoom_in"), zoomOutTitle: say("zoom_out")}).addTo(map);
  return map;
}

// --- my grid: its outline on the maps, and whether a place lies inside it ------------------------
// The grid as a GeoJSON Feature (GET /areas/{id}, WGS84; the service worker keeps it for use
// offline), asked for once.
let gridPromise = null;
let gridFeature = null;
function myGrid() {
  if (!GRID_ID) return Promise.resolve(null);
  if (!gridPromise) {
    gridPromise = fetch(`/areas/${GRID_ID}`, {credentials: "same-origin"})
      .then((r) => (r.ok ? r.json() : null)).catch(() => null)
      .then((grid) => {
        if (!grid) gridPromise = null;  // asked again next time
        gridFeature = grid;
        return grid;
      });
  }
  return gridPromise;
}
// point in ring by the even-odd rule (a ray cast east from the point: W. R. Franklin, PNPOLY);
// ring: [[lon, lat], ...] as GeoJSON gives it. Degrees are fine at a grid's size.
function ringContains(ring, lon, lat) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i];
    const [xj, yj] = ring[j];
    if ((yi > lat) !== (yj > lat) && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
// true / false, or null while the grid is not known (the server decides then, as always)
function inMyGrid(lon, lat) {
  const shape = gridFeature && gridFeature.geometry;
  if (!shape) return null;
  const polygons = shape.type === "Polygon" ? [shape.coordinates]
    : shape.type === "MultiPolygon" ? shape.coordinates : null;
  if (!polygons) return null;
  return polygons.some(([outer, ...holes]) =>
    ringContains(outer, lon, lat) && !holes.some((hole) => ringContains(hole, lon, lat)));
}
function gridOutline(map) {
  return myGrid().then((grid) => (grid ? L.geoJSON(grid, {
    style: {color: "#1f5f99", weight: 2, fillOpacity: 0.05, className: "grid-outline"},
    interactive: false,
  }).addTo(map) : null));
}

// --- report what I find -------------------------------------------------------------------------
let where = null;
let reportMap = null;
let marker = null;
function setWhere(lon, lat, how) {
  where = {lon, lat, how};
  const outside = inMyGrid(lon, lat) === false;
  $("r-where").replaceChildren(say("where", lon, lat, how === "gps" ? say("gps") : say("map")),
    outside ? el("span", {class: "outside"}, say("outside_tag")) : "");
  if (outside) toast(say("outside_grid", MY_GRID), "tab-report");
  if (reportMap) {
    if (!marker) marker = L.circleMarker([lat, lon], {radius: 9, color: "#d7191c"}).addTo(reportMap);
    marker.setLatLng([lat, lon]);
    marker.setStyle({color: outside ? "#777" : "#d7191c", dashArray: outside ? "4 4" : null});
    reportMap.panTo([lat, lon]);
  }
}
function locate() {
  if (!navigator.geolocation) { toast(say("gps_failed")); return; }
  navigator.geolocation.getCurrentPosition(
    (pos) => setWhere(pos.coords.longitude, pos.coords.latitude, "gps"),
    () => toast(say("gps_failed")), {enableHighAccuracy: true, timeout: 20000});
}
// my tasks on the report map, coloured by priority: what is already reported nearby. WGS84
// positions, as every overlay: on a GCJ-02 base map the map's CRS shifts them (basemaps.js)
let taskLayer = null;
function drawTaskMarkers() {
  if (!taskLayer) return;
  taskLayer.clearLayers();
  for (const task of tasks) {
    if (!Number.isFinite(task.lon) || !Number.isFinite(task.lat)) continue;
    const colour = COLOURS[task.priority] || "#666";
    L.circleMarker([task.lat, task.lon], {radius: 8, weight: 2, color: colour, fillColor: colour,
                                          fillOpacity: 1, interactive: false,
                                          className: `task-marker task-${task.id}`})
      .addTo(taskLayer);
  }
}
function ensureMap() {
  if (reportMap) { reportMap.invalidateSize(); return; }
  reportMap = newMap("r-map", {tap: true});
  baseLayer(reportMap, {position: "topright"});  // the bottom left is the map's, for markers
  reportMap.setView([30.59, 114.30], 15);
  reportMap.on("click", (e) => setWhere(e.latlng.lng, e.latlng.lat, "map"));
  taskLayer = L.layerGroup().addTo(reportMap);
  drawTaskMarkers();
  gridOutline(reportMap).then((outline) => {
    if (!outline) return;
    if (!where) reportMap.fitBounds(outline.getBounds(), {padding: [10, 10]});
    else setWhere(where.lon, where.lat, where.how);  // now known whether it is inside
  });
  if (where) setWhere(where.lon, where.lat, where.how);
}
$("r-gps").addEventListener("click", locate);
$("r-category").addEventListener("change", () => {
  const chosen = $("r-category").selectedOptions[0];
  if (chosen) $("r-priority").value = chosen.dataset.priority;
});
$("r-category").dispatchEvent(new Event("change"));
$("report-form").addEventListener("submit", (e) => {
  e.preventDefault();
  if (!where) { toast(say("need_location")); return; }
  // the server refuses a report outside the worker's grid (403): say so now, keep nothing
  if (inMyGrid(where.lon, where.lat) === false) { toast(say("outside_grid", MY_GRID), "tab-report"); return; }
  const photo = $("r-photo").files[0] || null;
  if (photo && photo.size > 10 * 1024 * 1024) { toast(say("photo_too_big")); return; }
  const category = $("r-category").value;
  queue({kind: "report", method: "POST", path: "/incidents", label: $("r-category").selectedOptions[0].textContent,
         body: {category, priority: Number($("r-priority").value),
                description: $("r-description").value.trim() || null,
                location: {lon: where.lon, lat: where.lat}, source: "grid_worker",
                reported_at: new Date().toISOString()},  // when filed, even if sent hours later
         photo, photoName: photo ? photo.name : null});
  $("r-description").value = "";
  $("r-photo").value = "";
  where = null;
  $("r-where").textContent = "";
  if (marker) { marker.remove(); marker = null; }
  showTab("tasks");
});

// --- household visits ------------------------------------------------------------------------------
let households = null;
function localDate() {  // today on this phone, as the date input wants it
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}
async function loadVisits() {
  if (!GRID_ID) { $("visits-state").textContent = say("households_none"); return; }
  try {
    const response = await fetch(`/households/visits?grid_id=${GRID_ID}`, {credentials: "same-origin"});
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    households = await response.json();
  } catch (err) {
    if (!households) { $("visits-state").textContent = say("from_cache"); return; }
  }
  drawVisits();
}
// the households on a map: red when due, green when visited within the period; a tap on
// one brings its row into view
let visitMap = null;
let homeLayer = null;
let homesFitted = false;
function drawVisitMap(pending) {
  if ($("tab-visits").hidden) return;  // drawn when shown (a hidden map has no size)
  if (!visitMap) {
    visitMap = newMap("v-map");
    baseLayer(visitMap, {position: "topright"});
    gridOutline(visitMap).then((outline) => {  // the grid's outline under the homes
      if (outline && !homesFitted) { visitMap.fitBounds(outline.getBounds(), {padding: [10, 10]}); homesFitted = true; }
    });
    homeLayer = L.layerGroup().addTo(visitMap);
  }
  visitMap.invalidateSize();
  homeLayer.clearLayers();
  const points = households.data.map((h) => {
    const due = h.due && !pending.has(h.id);
    L.circleMarker([h.lat, h.lon], {radius: 7, weight: 1, color: "#fff", fillOpacity: 0.9,
                                    fillColor: due ? "#d7191c" : "#2e7d32",
                                    className: `home home-${Number(h.id)}`})
      .on("click", () => {
        const row = document.querySelector(`li.household[data-id="${Number(h.id)}"]`);
        for (const other of document.querySelectorAll("li.household.chosen")) other.classList.remove("chosen");
        if (row) { row.classList.add("chosen"); row.scrollIntoView({block: "center"}); }
      }).addTo(homeLayer);
    return [h.lat, h.lon];
  });
  if (points.length && !homesFitted) {
    visitMap.fitBounds(points, {padding: [16, 16], maxZoom: 18});
    homesFitted = true;
  }
}
function pendingVisits() {
  const pending = new Map();
  for (const item of mineToSend(waiting)) if (item.kind === "visit") pending.set(item.household, item.body);
  return pending;
}
function drawVisits() {
  if (!households) return;
  const pending = pendingVisits();
  const visited = households.count - households.due;
  $("visits-state").textContent = households.count
    ? say("coverage", Math.round((100 * visited) / households.count), households.period_days)
    : say("households_none");
  drawVisitMap(pending);
  $("households").replaceChildren(...households.data.map((h) => {
    const waitingVisit = pending.get(h.id);
    const last = waitingVisit ? waitingVisit.visited_on : h.last_visit_on;
    return el("li", {class: "household", "data-id": String(h.id)},
      // where to knock first (the address, as imported), the row's number beside it
      el("div", {class: "line1"}, el("strong", {class: "address"}, h.address || `#${Number(h.id)}`),
         h.address ? el("span", {class: "hid"}, `#${Number(h.id)}`) : null,
         el("span", {}, say("members", Number(h.household_size)))),
      el("div", {class: "line2"},
         el("span", {}, last ? say("last_visit", last) : say("never_visited")),
         h.due && !waitingVisit ? el("span", {class: "overdue-visit"}, say("overdue_visit", households.period_days)) : null,
         h.elderly_living_alone ? el("span", {}, say("elderly_living_alone")) : null,
         h.needs_assistance ? el("span", {}, say("needs_assistance")) : null,
         waitingVisit ? el("span", {class: "pending"}, say("pending")) : null),
      el("div", {class: "buttons"},
         el("button", {type: "button", class: "record-visit", onclick: (e) => openVisitForm(e.target.closest("li"), h)},
            say("record_visit"))));
  }));
}
function openVisitForm(li, h) {
  if (li.querySelector("form")) return;
  const outcome = el("select", {name: "outcome"},
    ...Object.entries(say("outcome")).map(([value, label]) => el("option", {value}, label)));
  const day = el("input", {type: "date", name: "visited_on", value: localDate(), max: localDate()});
  const elderly = el("input", {type: "checkbox", name: "elderly_living_alone"});
  const assist = el("input", {type: "checkbox", name: "needs_assistance"});
  elderly.checked = Boolean(h.elderly_living_alone);
  assist.checked = Boolean(h.needs_assistance);
  const form = el("form", {class: "visit-form"},
    el("label", {}, say("visit_date")), day,
    el("label", {}, say("visit_outcome")), outcome,
    el("div", {class: "flags"}, el("label", {}, elderly, say("elderly_living_alone")),
                                el("label", {}, assist, say("needs_assistance"))),
    el("button", {type: "submit", class: "primary"}, say("save_visit")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    queue({kind: "visit", method: "POST", household: h.id, label: h.address ? `${h.address} #${h.id}` : `#${h.id}`,
           path: `/households/${encodeURIComponent(h.id)}/visits`,
           body: {visited_on: day.value, outcome: outcome.value,
                  elderly_living_alone: elderly.checked, needs_assistance: assist.checked}});
    form.remove();
  });
  li.append(form);
}

// --- tabs ------------------------------------------------------------------------------------------
function showTab(name) {
  if (toastAbout && toastAbout.startsWith("tab-") && toastAbout !== `tab-${name}`) hideToast();
  for (const section of document.querySelectorAll("main .tab")) section.hidden = section.id !== `tab-${name}`;
  for (const button of document.querySelectorAll("#tabs button")) button.classList.toggle("on", button.dataset.tab === name);
  if (name === "report") { ensureMap(); if (!where) locate(); }
  if (name === "visits") loadVisits();
}
for (const button of document.querySelectorAll("#tabs button")) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
}

// --- start ----------------------------------------------------------------------------------------
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/app/sw.js", {scope: "/app"}).catch(() => {});
}
drawNet();
drawDuty();
myGrid();  // the grid's outline, for the maps and the check before a report is kept
outboxAll().then((items) => {
  waiting = items;
  drawOutbox();
  drawTasks();
  settleDuty();  // the switch and the positions only now: a queued off-duty wins over the page
  if (navigator.onLine) flush();
});
loadTasks();

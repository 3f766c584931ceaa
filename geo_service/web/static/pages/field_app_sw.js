"use strict";
// The service worker of the grid worker's page (/app, issue 20): the page, its scripts and
// the last task list stay on the phone, so the page opens and shows its tasks without a
// connection. Writes are never touched here: the page's outbox (IndexedDB) keeps them and
// sends them with Idempotency-Keys when the connection returns.
// v2: the base-map switcher's scripts (issue 19); v4: the pages' catalogues, refused items;
// v5: base maps carry their 审图号 and logo (issue 19); v6: the duty switch follows the
// outbox, the grid checked before a report is kept, the phone's layout, escalation reasons;
// v8: the manifest is answered from the cache without a connection, with every icon it names;
// v9: the grid named in the out-of-grid warning, required fields in the page's language
const CACHE = "geo-service-field-v9";
// Responses vary by language (Vary: Accept-Language, Cookie): the phone keeps one copy of each
// and serves it offline whatever headers the request carries (ignoreVary), or nothing matches.
const SHELL = [
  "/app",
  "/app/manifest.webmanifest",
  "/static/pages/common.js",
  "/static/pages/field_app.js",
  "/static/pages/field_app.css",
  "/static/pages/field_app_icon.svg",
  "/static/pages/field_app_icon_192.png",
  "/static/pages/field_app_icon_512.png",
  "/static/vendor/leaflet/leaflet.js",
  "/static/vendor/leaflet/leaflet.css",
  "/static/pages/basemaps.js",
  "/static/vendor/gcoord/gcoord.global.prod.js",
];
// reads kept for use without a connection: the page, its manifest (in the phone's language,
// so network first) and the data it shows
const KEPT_READS = [
  /^\/app$/, /^\/app\/manifest\.webmanifest$/, /^\/console\/incidents$/, /^\/areas\/\d+$/,
  /^\/households\/visits$/,
  /^\/incidents\/[0-9a-f-]+\/photos(\/[0-9a-f-]+)?$/, /^\/incidents\/[0-9a-f-]+$/,
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.filter((n) => n !== CACHE).map((n) => caches.delete(n))))
    .then(() => self.clients.claim()));
});

// Signing out ("forget" from the page) deletes what is kept; a read that was on its way then
// is not kept when it arrives (its generation is gone), and nothing is kept again until the
// page is opened anew (a navigation to /app: the next sign-in), so the reads the page still
// makes while it leaves are not kept either.
let generation = 0;
let forgotten = false;
self.addEventListener("message", (event) => {
  if (event.data !== "forget") return;
  generation += 1;
  forgotten = true;
  event.waitUntil(caches.keys()
    .then((names) => Promise.all(names.map((n) => caches.delete(n))))
    .then(() => { if (event.ports[0]) event.ports[0].postMessage("forgotten"); }));
});
async function keep(request, response, since) {
  if (!response.ok || forgotten || since !== generation) return;
  const cache = await caches.open(CACHE);
  if (since === generation) await cache.put(request, response);
}

async function networkFirst(request) {
  const since = generation;
  try {
    const response = await fetch(request);
    await keep(request, response.clone(), since);
    return response;
  } catch (err) {
    const kept = await caches.match(request, {ignoreVary: true, cacheName: CACHE});
    if (!kept) throw err;
    const headers = new Headers(kept.headers);
    headers.set("X-From-Cache", "1");
    return new Response(await kept.blob(), {status: kept.status, headers});
  }
}
async function cacheFirst(request) {
  // caches.match, not caches.open: looking must not make a cache again after a sign-out
  const kept = await caches.match(request, {ignoreVary: true, cacheName: CACHE});
  if (kept) return kept;
  const since = generation;
  const response = await fetch(request);
  await keep(request, response.clone(), since);
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname === "/app") forgotten = false;
  if (url.pathname.startsWith("/static/")) event.respondWith(cacheFirst(request));
  else if (KEPT_READS.some((re) => re.test(url.pathname))) event.respondWith(networkFirst(request));
});

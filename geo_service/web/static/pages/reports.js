// The managers' page (issue 19): /reports/performance drawn with ECharts. Every value from the
// server goes into the page as text (textContent) or through esc() in chart tooltips.
"use strict";

const LABELS = JSON.parse(PAGE.labels);
const T = (key) => LABELS[key] ?? key;
const PARENT_LEVEL = {grid: "community", community: "street", street: "district", district: null};
const SOURCES = ["citizen", "hotline", "grid_worker", "sensor", "import"];
const STAGES = ["dispatch", "arrival", "resolution"];
const charts = {};

function chart(id) {
  if (!charts[id]) charts[id] = echarts.init($(id), null, {renderer: "canvas"});
  return charts[id];
}

// A share as a percentage with one decimal, or as many more (up to three) as it takes not to
// read 100% or 0% when it is neither (77,064 of 77,344 is 99.6%): periods.percent_text.
function percentText(share) {
  let text = "";
  for (const digits of [1, 2, 3]) {
    text = (100 * share).toFixed(digits);
    if ((share >= 1 || Number(text) < 100) && (share <= 0 || Number(text) > 0)) break;
  }
  return `${text}%`;
}
const pct = (r) => (r && r.rate !== null ? percentText(r.rate) : "–");
const interval = (r) =>
  r && r.rate !== null
    ? `${percentText(r.low).slice(0, -1)}–${percentText(r.high)}, n=${r.denominator}`
    : "n=0";
const WORKERS_SHOWN = 20;  // beyond, the best and the last ten by the ranking (exports.pdf_workers)
let showAllWorkers = false;

// Local calendar days of the deployment's zone (GEO_TIMEZONE), as YYYY-MM-DD strings.
function localToday() {
  return new Intl.DateTimeFormat("en-CA", {timeZone: PAGE.timezone, year: "numeric", month: "2-digit", day: "2-digit"})
    .format(new Date());
}
function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}
function monthStart(day, shift = 0) {
  const d = new Date(`${day.slice(0, 7)}-01T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + shift);
  return d.toISOString().slice(0, 10);
}
// The quick choices: first and last day (both included) of this or last ISO week or month.
function range(name) {
  const today = localToday();
  const monday = addDays(today, -((new Date(`${today}T00:00:00Z`).getUTCDay() + 6) % 7));
  if (name === "this_week") return [monday, addDays(monday, 6)];
  if (name === "last_week") return [addDays(monday, -7), addDays(monday, -1)];
  if (name === "this_month") return [monthStart(today), addDays(monthStart(today, 1), -1)];
  return [monthStart(today, -1), addDays(monthStart(today), -1)];
}
// an instant of the report (RFC 3339 with the zone's offset) as "2026-12-01 01:26 +08:00"
function localStamp(iso) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::[\d.]+)?(Z|[+-]\d{2}:\d{2})$/.exec(iso);
  return m ? `${m[1]} ${m[2]} ${m[3] === "Z" ? "+00:00" : m[3]}` : iso;
}
// the window [since, until) as days, both included, when it is whole local days
function periodText(since, until) {
  const midnight = (iso) => iso.slice(11, 19) === "00:00:00";
  if (midnight(since) && midnight(until)) return `${since.slice(0, 10)} – ${addDays(until.slice(0, 10), -1)}`;
  return `${localStamp(since)} – ${localStamp(until)}`;
}

// a stage's time in the page's language (exports._duration)
function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 3600) return T("duration_min").replace("{n}", (s / 60).toFixed(0));
  if (s < 172800) return T("duration_h").replace("{n}", (s / 3600).toFixed(1));
  return T("duration_days").replace("{n}", (s / 86400).toFixed(1));
}
// a local day of the deployment's zone (YYYY-MM-DD) holding an instant
function localDay(ms) {
  return new Intl.DateTimeFormat("en-CA", {timeZone: PAGE.timezone, year: "numeric", month: "2-digit", day: "2-digit"})
    .format(new Date(ms));
}
// The boxes show the period reported: its first local day and its last (included, as the
// page reads the "to" box: the local day of the instant just before the API's until).
function showReportedDays(report) {
  $("since").value = localDay(Date.parse(report.since));
  $("until").value = localDay(Date.parse(report.until) - 1);
}

async function loadParents() {
  const level = PARENT_LEVEL[$("level").value];
  const select = $("parent");
  const keep = select.value;
  select.replaceChildren(new Option(T("all_areas"), ""));
  if (!level) return;
  const body = await api(`/areas?level=${encodeURIComponent(level)}`);
  const areas = body.features.map((f) => f.properties).sort((a, b) => String(a.code).localeCompare(String(b.code)));
  // display_name: the area's name in the page's language (else the name as imported)
  for (const a of areas) select.append(new Option(`${a.code} ${a.display_name ?? a.name}`, String(a.id)));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

// The view in the address bar (level, parent_id, from, to: the days shown, both included;
// lang), so a report can be bookmarked and shared; read back on load.
function viewParams() {
  const params = new URLSearchParams({level: $("level").value});
  if ($("parent").value) params.set("parent_id", $("parent").value);
  if ($("since").value) params.set("from", $("since").value);
  if ($("until").value) params.set("to", $("until").value);
  return params;
}
function keepLanguageLinks(params) {
  for (const a of document.querySelectorAll(".lang-switch a[hreflang]")) {
    const keep = new URLSearchParams(params);
    keep.set("lang", a.getAttribute("hreflang"));
    a.href = `?${keep}`;
  }
}
function writeUrl() {
  const params = viewParams();
  keepLanguageLinks(params);
  params.set("lang", LANG);
  history.replaceState(null, "", `${location.pathname}?${params}`);
}
function readUrl() {
  const params = new URLSearchParams(location.search);
  const level = params.get("level");
  if (level && [...$("level").options].some((o) => o.value === level)) $("level").value = level;
  const day = /^\d{4}-\d{2}-\d{2}$/;
  if (day.test(params.get("from") || "")) $("since").value = params.get("from");
  if (day.test(params.get("to") || "")) $("until").value = params.get("to");
  const parent = params.get("parent_id");
  if (parent && /^\d+$/.test(parent)) $("parent").replaceChildren(new Option("", parent));
  keepLanguageLinks(viewParams());
}

function query(format) {
  const params = new URLSearchParams({level: $("level").value});
  if ($("parent").value) params.set("parent_id", $("parent").value);
  if ($("since").value) params.set("since", $("since").value);
  // the page's end day is included: the API's window is half-open, so send the next day
  // (its local midnight)
  if ($("until").value) params.set("until", addDays($("until").value, 1));
  if (format) params.set("format", format);
  return `/reports/performance?${params}`;
}

function card(label, value, detail) {
  const div = document.createElement("div");
  div.className = "card";
  for (const [cls, text] of [["label", label], ["value", value], ["detail", detail]]) {
    const span = document.createElement("div");
    span.className = cls;
    span.textContent = text;
    div.append(span);
  }
  return div;
}

// visit coverage (issue 20): published counts (rounded unless you may read the rows)
const visitShare = (v) => (v && v.coverage !== null ? percentText(v.coverage) : "–");
const visitDetail = (v) =>
  v ? `${v.visited ?? "–"} / ${v.households ?? "–"}, ${T("visit_period").replace("{days}", v.period_days)}` : "";

function renderCards(report) {
  const total = report.total;
  const res = total.on_time.resolution;
  // open at the report's as_of (the backlog chart's count), not at the wall clock's now
  const openAt = T("open_at").replace("{as_of}", localStamp(report.as_of));
  $("cards").replaceChildren(
    card(T("received"), String(total.received), `${openAt}: ${total.open_at_as_of}`),
    card(T("closed"), String(total.closed), `${T("handled")}: ${total.handled}`),
    card(T("closure_rate"), pct(total.closure_rate), interval(total.closure_rate)),
    card(T("on_time_resolution"), pct(res.all), interval(res.all)),
    card(T("resolved_in_grid"), pct(total.resolved_in_grid), interval(total.resolved_in_grid)),
    card(T("resolved_in_community"), pct(total.resolved_in_community), interval(total.resolved_in_community)),
    card(T("disputes"), String(total.disputes.received), `${T("mediated")}: ${pct(total.disputes.mediated)}`),
    card(T("reopened"), String(total.reopened), ""),
    card(T("visit_coverage"), visitShare(total.visits), visitDetail(total.visits)),
  );
}

const tooltipRows = (title, rows) =>
  `<b>${esc(title)}</b><br>` + rows.map(([k, v]) => `${esc(k)}: ${esc(v)}`).join("<br>");

// "partial week: 3 of 7 days" (days seen to one decimal, whole ones without)
const partialText = (w) =>
  T("partial_week").replace("{days}", String(+w.days.toFixed(1))).replace("{period_days}", String(w.period_days));
// a partial week's bar (cut by the window, or not over) is drawn pale and hatched
const HATCH = {symbol: "rect", dashArrayX: [1, 0], dashArrayY: [3, 3], rotation: Math.PI / 4, color: "rgba(255,255,255,0.75)"};
const weekBar = (w, value, colour) =>
  w.partial ? {value, itemStyle: {color: colour, opacity: 0.55, decal: HATCH}} : {value, itemStyle: {color: colour}};

function renderWeeks(trends) {
  const weeks = trends.weeks;
  const anyPartial = weeks.some((w) => w.partial);
  chart("chart-weeks").setOption({
    title: {text: T("weekly_trend"), textStyle: {fontSize: 13},
            subtext: anyPartial ? T("partial_legend") : "", subtextStyle: {fontSize: 10}, itemGap: 2},
    tooltip: {
      trigger: "axis",
      formatter: (items) => {
        const w = weeks[items[0].dataIndex];
        const rows = [
          [T("received"), w.received], [T("closed"), w.closed],
          [T("closure_rate"), `${pct(w.closure_rate)} (${interval(w.closure_rate)})`],
          [T("on_time_resolution"), `${pct(w.on_time_resolution)} (${interval(w.on_time_resolution)})`],
        ];
        return tooltipRows(w.start, rows) + (w.partial ? `<br><i>${esc(partialText(w))}</i>` : "");
      },
    },
    legend: {top: anyPartial ? 38 : 22, data: [T("received"), T("closed"), T("closure_rate")]},
    grid: {top: anyPartial ? 72 : 60, left: 20, right: 45, bottom: 30, containLabel: true},
    xAxis: {type: "category", data: weeks.map((w) => w.start.slice(5) + (w.partial ? "*" : ""))},
    yAxis: [{type: "value"}, {type: "value", min: 0, max: 100, axisLabel: {formatter: "{value}%"}}],
    series: [
      {name: T("received"), type: "bar", itemStyle: {color: "#5470c6"},
       data: weeks.map((w) => weekBar(w, w.received, "#5470c6"))},
      {name: T("closed"), type: "bar", itemStyle: {color: "#91cc75"},
       data: weeks.map((w) => weekBar(w, w.closed, "#91cc75"))},
      {name: T("closure_rate"), type: "line", yAxisIndex: 1,
       data: weeks.map((w) => (w.closure_rate.rate === null ? null : +(100 * w.closure_rate.rate).toFixed(1)))},
    ],
  }, true);
}

function renderSources(total) {
  chart("chart-sources").setOption({
    title: {text: T("source"), textStyle: {fontSize: 13}},
    tooltip: {trigger: "item", formatter: (p) => tooltipRows(p.name, [[T("received"), `${p.value} (${p.percent}%)`]])},
    series: [{
      type: "pie", radius: ["35%", "65%"], top: 20,
      data: SOURCES.map((s) => ({name: T(s), value: total.by_source[s] || 0})).filter((d) => d.value > 0),
    }],
  }, true);
}

function renderStages(total) {
  const tiers = ["1", "2", "3", "4"];
  chart("chart-stages").setOption({
    title: {text: T("on_time"), textStyle: {fontSize: 13}},
    tooltip: {
      trigger: "item",
      formatter: (p) => {
        const r = total.on_time[STAGES[p.dataIndex]].tiers[tiers[p.seriesIndex]];
        return tooltipRows(`${p.name} · P${tiers[p.seriesIndex]}`, [[T("on_time"), `${pct(r)} (${interval(r)})`]]);
      },
    },
    legend: {top: 22, data: tiers.map((t) => `P${t}`)},
    grid: {top: 60, left: 20, right: 20, bottom: 30, containLabel: true},
    xAxis: {type: "category", data: STAGES.map((s) => T(`stage_${s}`))},
    yAxis: {type: "value", min: 0, max: 100, axisLabel: {formatter: "{value}%"}},
    series: tiers.map((t) => ({
      name: `P${t}`, type: "bar",
      data: STAGES.map((s) => {
        const r = total.on_time[s].tiers[t];
        return r.rate === null ? null : +(100 * r.rate).toFixed(1);
      }),
    })),
  }, true);
}

function renderBacklog(total) {
  const bands = Object.keys(total.backlog);
  chart("chart-backlog").setOption({
    title: {text: T("backlog"), textStyle: {fontSize: 13}},
    tooltip: {trigger: "axis", formatter: (items) => tooltipRows(items[0].name, [[T("backlog"), items[0].value]])},
    grid: {top: 40, left: 20, right: 20, bottom: 30, containLabel: true},
    xAxis: {type: "category", data: bands},
    yAxis: {type: "value", minInterval: 1},
    series: [{type: "bar", data: bands.map((b) => total.backlog[b]), itemStyle: {color: "#ee6666"}}],
  }, true);
}

function renderAreas(report) {
  // The ranking on resolution on time, best first: the bar is the rate, the whisker its
  // Wilson interval; a small denominator is drawn pale.
  const ranked = report.rankings.on_time_resolution.slice(0, 30);
  const names = ranked.map((r) => r.code);
  chart("chart-areas").setOption({
    title: {text: T("ranking"), textStyle: {fontSize: 13}},
    tooltip: {
      trigger: "item",
      formatter: (p) => {
        const r = ranked[p.dataIndex];
        return tooltipRows(`${r.rank}. ${r.code} ${r.name ?? ""}`, [
          [T("on_time"), pct(r)],
          ["95%", r.rate === null ? "–" : `${percentText(r.low).slice(0, -1)}–${percentText(r.high)}`],
          ["n", r.denominator + (r.small_sample ? ` (${T("small_sample")})` : "")],
        ]);
      },
    },
    grid: {top: 35, left: 10, right: 20, bottom: 25, containLabel: true},
    yAxis: {type: "category", inverse: true, data: names, axisLabel: {fontSize: 10}},
    xAxis: {type: "value", min: 0, max: 100, axisLabel: {formatter: "{value}%"}},
    series: [
      {type: "bar", data: ranked.map((r) => ({
        value: r.rate === null ? null : +(100 * r.rate).toFixed(1),
        itemStyle: {color: r.small_sample ? "#c6d2ee" : "#5470c6"},
      }))},
      {type: "custom", renderItem: (params, api) => {
        const r = ranked[params.dataIndex];
        if (r.rate === null) return null;
        const lo = api.coord([100 * r.low, params.dataIndex]);
        const hi = api.coord([100 * r.high, params.dataIndex]);
        const cap = 5;
        const style = {stroke: "#111", lineWidth: 1.5};
        return {type: "group", children: [
          {type: "line", shape: {x1: lo[0], y1: lo[1], x2: hi[0], y2: hi[1]}, style},
          {type: "line", shape: {x1: lo[0], y1: lo[1] - cap, x2: lo[0], y2: lo[1] + cap}, style},
          {type: "line", shape: {x1: hi[0], y1: hi[1] - cap, x2: hi[0], y2: hi[1] + cap}, style},
        ]};
      }, data: ranked.map((r, i) => [0, i]), encode: {x: 0, y: 1}, z: 10, silent: true},
    ],
  }, true);
}

function renderEscalations(total) {
  const levels = Object.keys(total.escalations.by_level);
  chart("chart-escalations").setOption({
    title: {text: T("escalations"), textStyle: {fontSize: 13}},
    tooltip: {trigger: "axis", formatter: (items) => tooltipRows(items[0].name, [["n", items[0].value]])},
    grid: {top: 40, left: 20, right: 20, bottom: 30, containLabel: true},
    xAxis: {type: "category", data: levels.map((l) => T(`level_${l}`))},
    yAxis: {type: "value", minInterval: 1},
    series: [{type: "bar", data: levels.map((l) => total.escalations.by_level[l]), itemStyle: {color: "#fac858"}}],
  }, true);
}

function fillTable(table, head, rows) {
  const thead = document.createElement("tr");
  for (const h of head) {
    const th = document.createElement("th");
    th.textContent = h;
    thead.append(th);
  }
  const out = [thead];
  for (const row of rows) {
    const tr = document.createElement("tr");
    for (const cell of row) {
      const td = document.createElement("td");
      const rich = typeof cell === "object" && cell !== null;  // {text, title, small}
      td.textContent = rich ? cell.text : cell;
      if (rich && cell.small) td.className = "small";
      if (rich) td.title = cell.title;
      tr.append(td);
    }
    out.push(tr);
  }
  table.replaceChildren(...out);
}

const rateCell = (r) => ({text: pct(r) + (r.small_sample && r.rate !== null ? "*" : ""), title: interval(r), small: r.small_sample});

function renderTables(report) {
  fillTable($("areas"),
    [T("code"), T("name"), T("received"), ...SOURCES.map(T), T("closed"), T("closure_rate"),
     ...STAGES.map((s) => `${T("on_time")}: ${T(`stage_${s}`)}`), T("median"), T("p90"),
     T("resolved_in_grid"), T("disputes"), T("reopened"), T("backlog"), T("visit_coverage")],
    report.areas.map((a) => [
      a.code, a.name, String(a.received), ...SOURCES.map((s) => String(a.by_source[s] ?? 0)),
      String(a.closed), rateCell(a.closure_rate), ...STAGES.map((s) => rateCell(a.on_time[s].all)),
      duration(a.on_time.resolution.times.median_s), duration(a.on_time.resolution.times.p90_s),
      rateCell(a.resolved_in_grid), String(a.disputes.received), String(a.reopened),
      String(Object.values(a.backlog).reduce((x, y) => x + y, 0)),
      {text: visitShare(a.visits), title: visitDetail(a.visits)},
    ]));
  renderWorkers(report);
}

// Every worker up to WORKERS_SHOWN; beyond, the ranked ones (a worker with no case to rate in
// the period is counted apart, never among the last ten): the ten best and the ten last by
// the ranking on resolution on time, with "show all" (the CSV and XLSX always hold every row).
function renderWorkers(report) {
  const all = report.workers;
  const unranked = report.rankings.workers_not_ranked.length;
  let shown = all;
  const many = !showAllWorkers && all.length > WORKERS_SHOWN;
  const byId = new Map(all.map((w) => [w.responder_id, w]));
  const order = report.rankings.workers_on_time_resolution.map((r) => byId.get(r.id));
  const cut = many && order.length > WORKERS_SHOWN;
  if (many) {
    const k = WORKERS_SHOWN / 2;
    shown = cut ? [...order.slice(0, k), null, ...order.slice(-k)] : order;
  }
  $("workers-cut").hidden = !cut;
  $("workers-cut").textContent = cut
    ? T("workers_cut").replace(/\{n\}/g, String(order.length)).replace(/\{k\}/g, String(WORKERS_SHOWN / 2))
    : "";
  $("workers-unranked").hidden = unranked === 0;
  $("workers-unranked").textContent = T("not_ranked").replace("{n}", String(unranked));
  $("workers-all").hidden = !many;
  fillTable($("workers"),
    [T("callsign"), T("grid"), T("assigned"), T("closed"), T("on_time_resolution"), T("median"),
     T("discovered")],
    shown.map((w) => (w === null ? ["…", "", "", "", "", "", ""] : [
      w.callsign, {text: w.grid.name || w.grid.code, title: w.grid.code}, String(w.received), String(w.closed),
      rateCell(w.on_time.resolution.all), duration(w.on_time.resolution.times.median_s),
      String(w.discovered_in_grid),
    ])));
}

let lastReport = null;

async function load() {
  $("status").textContent = T("loading");
  showAllWorkers = false;
  for (const f of ["csv", "xlsx", "pdf"]) $(f).href = query(f);
  try {
    const report = await api(query());
    lastReport = report;
    showReportedDays(report);
    renderCards(report);
    renderWeeks(report.trends);
    renderSources(report.total);
    renderStages(report.total);
    renderBacklog(report.total);
    renderAreas(report);
    renderEscalations(report.total);
    renderTables(report);
    const wow = report.trends.week_over_week;
    const change = wow && wow.received_change_pct !== null ? `; ${T("week_over_week")} ${wow.received_change_pct > 0 ? "+" : ""}${wow.received_change_pct}%` : "";
    $("status").textContent =
      `${T("period")}: ${periodText(report.since, report.until)} (${report.timezone}), ` +
      `${T("as_of")} ${localStamp(report.as_of)}; ${report.areas.length} ${T("areas")}${change}`;
    $("status").dataset.ready = "1";
  } catch (err) {
    $("status").textContent = `${T("error")}: ${err.message}`;
  }
}

$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  writeUrl();
  load();
});
for (const button of document.querySelectorAll("[data-range]")) {
  button.addEventListener("click", () => {
    [$("since").value, $("until").value] = range(button.dataset.range);
    writeUrl();
    load();
  });
}
$("workers-all").addEventListener("click", () => {
  showAllWorkers = true;
  if (lastReport) renderWorkers(lastReport);
});
$("level").addEventListener("change", () => loadParents().catch((e) => ($("status").textContent = e.message)));
window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
readUrl();
loadParents().then(load, (e) => ($("status").textContent = e.message));

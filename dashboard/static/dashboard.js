// samt124 dashboard: polls /api/snapshot and redraws the figures, tables and SVG bar charts.
// No library, no network beyond this server. Persian (RTL, Jalali dates) by default, English
// with the toggle (or ?lang=en).
"use strict";

const TEXT = {
  fa: {
    title: "سامانه ۱۲۴ — داشبورد وزارت", toggle: "English", open: "درخواست‌های باز",
    past_first_response: "گذشته از مهلت پاسخ اول", past_resolution: "گذشته از مهلت رسیدگی",
    past_operational: "گذشته از مهلت عملیاتی", breaches_today: "تخطی‌های امروز",
    breaches_week: "تخطی‌های این هفته", lag: "تأخیر مصرف‌کننده‌ها (پیام)", dead_letters: "نامه‌های مرده",
    backlog_by_province: "درخواست‌های باز به تفکیک استان",
    breaches_by_province: "تخطی‌ها به تفکیک استان (امروز، این هفته)", province: "استان",
    today: "امروز", week: "این هفته", on_time_by_province: "درصد رسیدگی به‌موقع به تفکیک استان",
    requests: "درخواست‌ها", resolution_on_time: "رسیدگی به‌موقع ٪",
    first_response_on_time: "پاسخ اول به‌موقع ٪", alborz_bodies: "البرز: خانه صمت در برابر سازمان صمت",
    body: "مرجع", channels: "حجم به تفکیک کانال", channel: "کانال",
    oldest: "قدیمی‌ترین درخواست‌های گذشته از مهلت", request: "درخواست", holder: "در دست",
    clock: "مهلت", due: "سررسید", overdue_working: "ساعت کاری گذشته از مهلت",
    lag_groups: "تأخیر گروه‌های مصرف‌کننده", group: "گروه", status: "وضعیت", messages: "پیام",
    seconds: "ثانیه", dead_by_reason: "نامه‌های مرده به تفکیک علت", reason: "علت", count: "تعداد",
    first_response_clock: "پاسخ اول", resolution_clock: "رسیدگی", operational_clock: "عملیاتی",
    as_of: (t, d, lag) => `داده‌ها تا ${t} (به وقت تهران) ${d}، تأخیر ${lag}`,
    lag_unknown: "نامعلوم", none: "هیچ", not_loaded: "بارگذاری نشده",
    source_table: "از جدول dead_letters در ClickHouse", source_kafka: "شمارش از تاپیک نامه‌های مرده در Kafka",
    source_none: "بارگذاری نشده (نه جدول dead_letters، نه Kafka در دسترس)",
    cost: (q, ch, ms) => `هزینهٔ آخرین بازخوانی: ${q} پرس‌وجو، ${ch} میلی‌ثانیه در ClickHouse، ${ms} میلی‌ثانیه در کل`,
    unavailable: "داده‌ها در دسترس نیست:", week_of: "هفتهٔ ",
    stale: "آخرین بازخوانی ناموفق بود؛ ارقام زیر از بازخوانی پیشین است:",
  },
  en: {
    title: "124 — the ministry's dashboard", toggle: "فارسی", open: "Open requests",
    past_first_response: "Past first-response deadline", past_resolution: "Past resolution deadline",
    past_operational: "Past operational deadline", breaches_today: "Breaches today",
    breaches_week: "Breaches this week", lag: "Consumer lag (messages)", dead_letters: "Dead letters",
    backlog_by_province: "Open requests by province",
    breaches_by_province: "Breaches by province (today, this week)", province: "Province",
    today: "Today", week: "This week", on_time_by_province: "Resolved on time by province",
    requests: "Requests", resolution_on_time: "Resolution on time %",
    first_response_on_time: "First response on time %",
    alborz_bodies: "Alborz: Khaneh Samt vs the SAMT organization", body: "Body",
    channels: "Volume by channel", channel: "Channel", oldest: "Oldest overdue requests",
    request: "Request", holder: "Held by", clock: "Deadline", due: "Due",
    overdue_working: "Working hours overdue", lag_groups: "Consumer groups' lag", group: "Group",
    status: "Status", messages: "Messages", seconds: "Seconds",
    dead_by_reason: "Dead letters by reason", reason: "Reason", count: "Count",
    first_response_clock: "first response", resolution_clock: "resolution",
    operational_clock: "operational",
    as_of: (t, d, lag) => `as of ${t} (Asia/Tehran) ${d}, lag ${lag}`,
    lag_unknown: "unknown", none: "none", not_loaded: "not loaded",
    source_table: "from the dead_letters table in ClickHouse",
    source_kafka: "counted from the dead-letter topic in Kafka",
    source_none: "not loaded (no dead_letters table, Kafka not reachable)",
    cost: (q, ch, ms) => `last refresh: ${q} queries, ${ch} ms in ClickHouse, ${ms} ms in all`,
    unavailable: "data unavailable:",
    week_of: "week ", stale: "the last refresh failed; the figures below are from the one before:",
  },
};

const PERSIAN_DIGITS = "۰۱۲۳۴۵۶۷۸۹";
let lang = new URLSearchParams(location.search).get("lang") === "en" ? "en" : "fa";
let last = null;

function t(key) { return TEXT[lang][key] ?? key; }

function digits(text) {
  const s = String(text);
  return lang === "fa" ? s.replace(/[0-9]/g, (d) => PERSIAN_DIGITS[+d]).replace(/,/g, "٬").replace(/\./g, "٫") : s;
}

function num(value) {
  if (value === null || value === undefined) return t("lag_unknown");
  return digits(Number(value).toLocaleString("en-US", { maximumFractionDigits: 2 }));
}

function provinceName(row) { return lang === "fa" ? row.name_fa : row.name_en; }

function setFigure(id, value) {
  const el = document.getElementById(id);
  el.textContent = num(value);
  el.dataset.value = value === null || value === undefined ? "" : String(value);
}

function cell(text, value) {
  const td = document.createElement("td");
  td.textContent = text;
  if (value !== undefined) td.dataset.value = String(value);
  return td;
}

function fill(id, rows, render) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement("tr");
    tr.append(...render(row));
    return tr;
  }));
}

const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

// Horizontal bars, labels at the start side (right in Persian), values after the bar.
function bars(id, items, max) {
  const box = document.getElementById(id);
  const rowH = 20, labelW = 150, width = 640, barW = 400;
  const top = max || Math.max(1, ...items.map((i) => i.value));
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${Math.max(rowH, items.length * rowH)}`, role: "img" });
  const rtl = lang === "fa";
  items.forEach((item, n) => {
    const y = n * rowH;
    const w = Math.max(0, (item.value / top) * barW);
    const barX = rtl ? width - labelW - w : labelW;
    svg.append(svgEl("text", { x: rtl ? width - 4 : labelW - 6, y: y + 14, "text-anchor": "end", class: "label", direction: rtl ? "rtl" : "ltr" }, item.label));
    svg.append(svgEl("rect", { x: barX, y: y + 3, width: w, height: rowH - 6, class: "bar" }));
    svg.append(svgEl("text", { x: rtl ? barX - 4 : barX + w + 4, y: y + 14, "text-anchor": rtl ? "end" : "start", class: "value" }, num(item.value)));
  });
  box.replaceChildren(svg);
}

function render(s) {
  const problem = document.getElementById("problem");
  problem.hidden = !s.problem;
  problem.textContent = s.problem ? `${t("stale")} ${s.problem}` : "";
  const lagText = s.lag.available ? num(s.lag.total) : t("lag_unknown");
  const date = lang === "fa" ? digits(s.as_of.jalali_date) : s.as_of.gregorian_date;
  const asof = document.getElementById("asof");
  asof.textContent = t("as_of")(digits(s.as_of.tehran_time), date, lagText);
  asof.dataset.time = s.as_of.tehran_time;
  asof.dataset.utc = s.as_of.utc;
  const national = s.backlog.national;
  for (const key of ["open", "past_first_response", "past_resolution", "past_operational"]) setFigure(key, national[key]);
  setFigure("breaches_today", s.breaches.today.total);
  setFigure("breaches_week", s.breaches.week.total);
  document.getElementById("week_label").textContent = digits(s.breaches.week_label);
  setFigure("lag_total", s.lag.total);
  setFigure("dead_total", s.dead_letters.total);

  bars("chart_backlog", s.backlog.provinces.map((p) => ({ label: provinceName(p), value: p.open })));
  fill("backlog", s.backlog.provinces, (p) => [
    cell(provinceName(p), p.province), cell(num(p.open), p.open),
    cell(num(p.past_first_response), p.past_first_response), cell(num(p.past_resolution), p.past_resolution),
    cell(num(p.past_operational), p.past_operational),
  ]);
  const week = new Map(s.breaches.week.provinces.map((p) => [p.province, p]));
  const today = new Map(s.breaches.today.provinces.map((p) => [p.province, p.breaches]));
  fill("breaches", [...week.values()], (p) => [
    cell(provinceName(p), p.province), cell(num(today.get(p.province) || 0), today.get(p.province) || 0),
    cell(num(p.breaches), p.breaches),
  ]);
  bars("chart_on_time", s.on_time.provinces.map((p) => ({ label: provinceName(p), value: p.resolution_on_time_percent })), 100);
  fill("on_time", s.on_time.provinces, (p) => [
    cell(provinceName(p), p.province), cell(num(p.requests), p.requests),
    cell(num(p.resolution_on_time_percent), p.resolution_on_time_percent),
    cell(num(p.first_response_on_time_percent), p.first_response_on_time_percent),
  ]);
  fill("alborz", s.on_time.alborz_bodies, (b) => [
    cell(b.body, b.body), cell(num(b.requests), b.requests),
    cell(num(b.resolution_on_time_percent), b.resolution_on_time_percent),
    cell(num(b.first_response_on_time_percent), b.first_response_on_time_percent),
  ]);
  bars("chart_channels", s.channels.map((c) => ({ label: c.channel, value: c.requests })));
  fill("channels", s.channels, (c) => [cell(c.channel, c.channel), cell(num(c.requests), c.requests)]);
  fill("oldest", s.oldest_overdue, (r) => [
    cell(r.request_id, r.request_id), cell(provinceName(r), r.province), cell(r.holder, r.holder),
    cell(t(`${r.clock}_clock`), r.clock),
    cell(lang === "fa" ? digits(`${r.due.jalali_date} ${r.due.tehran_time}`) : `${r.due.gregorian_date} ${r.due.tehran_time}`),
    cell(num(r.overdue_working_hours), r.overdue_working_hours),
  ]);
  fill("lag", s.lag.groups, (g) => [
    cell(g.group, g.group), cell(g.status, g.status), cell(num(g.sum_lag), g.sum_lag),
    cell(num(g.max_lag_seconds), g.max_lag_seconds),
  ]);
  document.getElementById("dead_source").textContent = t(`source_${s.dead_letters.source}`);
  fill("dead", s.dead_letters.reasons, (r) => [cell(r.reason, r.reason), cell(num(r.count), r.count)]);
  document.getElementById("cost").textContent = t("cost")(num(s.refresh.queries), num(s.refresh.clickhouse_ms), num(s.refresh.ms));
}

function translate() {
  document.documentElement.lang = lang;
  document.documentElement.dir = lang === "fa" ? "rtl" : "ltr";
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  document.getElementById("lang").textContent = t("toggle");
  if (last) render(last);
}

async function refresh() {
  try {
    const answer = await fetch("/api/snapshot", { cache: "no-store" });
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.error || answer.statusText);
    last = body;
    render(body);
    document.body.dataset.refreshed = String((Number(document.body.dataset.refreshed) || 0) + 1);
  } catch (error) {
    const problem = document.getElementById("problem");
    problem.textContent = `${t("unavailable")} ${error.message}`;
    problem.hidden = false;
  }
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "fa" ? "en" : "fa";
  const url = new URL(location.href);
  url.searchParams.set("lang", lang);
  history.replaceState(null, "", url);
  translate();
});

translate();
refresh();
setInterval(refresh, Number(document.body.dataset.refreshMs) || 5000);

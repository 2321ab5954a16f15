// SPDX-License-Identifier: MIT
// The dashboard: devices and their live readings from /ws, switches over
// the REST API, today's energy and cost, a 24-hour chart per device (SVG,
// drawn here), this month's cost and kasamond's open alerts. Nothing is
// loaded from elsewhere.
"use strict";

const KEY = "kasamond-token";
// costs: this month's per device from /api/costs; today: each device's
// cost so far today from the WebSocket.
// alerts: the open ones by id, from the hello, daemon and alert messages.
const state = { token: localStorage.getItem(KEY), devices: new Map(), ws: null, retry: 1000, costs: {}, today: {},
  alerts: new Map() };
const $ = (id) => document.getElementById(id);

function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  return fetch(path, opts).then(async (r) => {
    const data = r.status === 204 ? null : await r.json().catch(() => null);
    if (!r.ok) throw Object.assign(new Error((data && data.message) || r.statusText), { status: r.status });
    return data;
  });
}

function showError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

function fmt(x, digits) {
  return x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(digits);
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function chart(samples) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 240 60");
  svg.setAttribute("preserveAspectRatio", "none");
  const pts = samples.filter((s) => s.power_avg !== null);
  if (pts.length > 1) {
    const t0 = Date.now() / 1000 - 86400, max = Math.max(1, ...pts.map((s) => s.power_max || s.power_avg));
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.map((s) =>
      `${(((s.timestamp - t0) / 86400) * 240).toFixed(1)},${(58 - (s.power_avg / max) * 56).toFixed(1)}`).join(" "));
    svg.append(line);
  }
  const title = document.createElementNS(ns, "title");
  title.textContent = "power, last 24 hours";
  svg.append(title);
  return svg;
}

function render(d) {
  let card = document.querySelector(`.device[data-id="${d.id}"]`);
  if (!card) {
    card = el("section", { class: "device", "data-id": d.id },
      el("h2", {}, el("span", { class: "alias" }), el("span", { class: "model" })),
      el("div", { class: "power" }),
      el("div", { class: "meta energy" }),
      el("div", { class: "meta cost" }),
      el("button", { class: "switch", type: "button", onclick: () => toggle(d.id) }),
      el("div", { class: "chart-box" }));
    insertSorted(card, d.id);
    if (d.metered) loadChart(d.id);
  }
  card.classList.toggle("outlet", !!d.parent);
  card.classList.toggle("offline", !d.online);
  card.querySelector(".alias").textContent = d.alias;
  card.querySelector(".model").textContent = d.model;
  const m = d.meter;
  card.querySelector(".power").textContent = m ? `${fmt(m.power, 1)} W` : (d.on ? "on" : "off");
  card.querySelector(".energy").textContent = !m ? "" :
    m.energy_today < 1000 ? `today ${fmt(m.energy_today, 1)} Wh` : `today ${fmt(m.energy_today / 1000, 2)} kWh`;
  const cost = state.costs[d.id], today = state.today[d.id];
  card.querySelector(".cost").textContent = [
    today ? `today ${today.today.toFixed(2)} ${today.currency}` : "",
    cost ? `this month ${cost}` : ""].filter((x) => x).join(" · ");
  const sw = card.querySelector(".switch");
  sw.textContent = d.on ? "On" : "Off";
  sw.classList.toggle("on", d.on);
  sw.setAttribute("aria-pressed", d.on ? "true" : "false");
}

// What made it fire, in the rule's unit (org.kasamond.Kasa1.Alert, Value).
function alertValue(a) {
  if (a.value === null || a.value === undefined) return "";
  if (a.kind.startsWith("power-")) return `${fmt(a.value, 1)} W`;
  if (a.kind.startsWith("energy-")) return `${fmt(a.value, 0)} Wh`;
  if (a.kind.startsWith("cost-")) return fmt(a.value, 2);
  return a.value >= 3600 ? `for ${fmt(a.value / 3600, 1)} h` : `for ${fmt(a.value / 60, 0)} min`;
}

function setAlerts(list) {
  state.alerts = new Map((list || []).map((a) => [a.id, a]));
  renderAlerts();
}

function renderAlerts() {
  const items = [...state.alerts.values()].sort((a, b) => a.id - b.id).map((a) => {
    const since = new Date(a.since_usec / 1000).toLocaleString();
    return el("li", { class: `alert ${a.state}`, "data-id": String(a.id) },
      `${a.rule_name}: ${a.alias || a.device} ${alertValue(a)} (since ${since}` +
      `${a.state === "acknowledged" ? ", acknowledged" : ""})`);
  });
  $("alert-list").replaceChildren(...items);
  $("alerts").hidden = items.length === 0;
}

function insertSorted(card, id) {
  const main = $("devices");
  const after = [...main.children].find((c) => c.dataset.id > id);
  main.insertBefore(card, after || null);
}

function updateTotal() {
  let total = 0;
  for (const d of state.devices.values())
    if (d.meter && d.meter.power !== null && !d.parent && d.online) total += d.meter.power;
  $("total-power").textContent = fmt(total, 1);
}

function loadChart(id) {
  const from = Math.floor(Date.now() / 1000) - 86400;
  api("GET", `/api/devices/${id}/stats?from=${from}&resolution=hour`).then((r) => {
    const box = document.querySelector(`.device[data-id="${id}"] .chart-box`);
    if (box) box.replaceChildren(chart(r.samples));
  }).catch(() => {});
}

function loadCosts() {
  const now = new Date(), from = Math.floor(new Date(now.getFullYear(), now.getMonth(), 1) / 1000);
  api("GET", `/api/costs?from=${from}`).then((r) => {
    for (const d of r.devices || [])
      if (d.total !== undefined && d.total !== null) state.costs[d.id] = `${d.total} ${r.currency}`;
    for (const d of state.devices.values()) render(d);
  }).catch(() => {}); // no tariff, or a bridge without costs
}

function toggle(id) {
  const sw = document.querySelector(`.device[data-id="${id}"] .switch`);
  sw.disabled = true;
  api("POST", `/api/devices/${id}/toggle`).then((r) => {
    const d = state.devices.get(id);
    if (d) { d.on = r.on; render(d); }
    showError("");
  }).catch((e) => showError(e.status === 403 ? "This token may not switch (viewer)." : e.message))
    .finally(() => { sw.disabled = false; });
}

function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  ws.onopen = () => { $("status").textContent = "live"; state.retry = 1000; };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === "hello") {
      state.devices.clear();
      $("devices").replaceChildren();
      state.today = {};
      for (const [id, c] of Object.entries(m.costs || {})) if (c) state.today[id] = c;
      for (const d of m.devices) { state.devices.set(d.id, d); render(d); }
      setAlerts(m.alerts);
      $("status").textContent = m.up ? "live" : "kasamond is not running";
    } else if (m.type === "update" || m.type === "added") {
      if (m.cost) state.today[m.id] = m.cost; else delete state.today[m.id];
      state.devices.set(m.id, m.device);
      render(m.device);
    } else if (m.type === "removed") {
      state.devices.delete(m.id);
      const c = document.querySelector(`.device[data-id="${m.id}"]`);
      if (c) c.remove();
    } else if (m.type === "daemon") {
      $("status").textContent = m.up ? "live" : "kasamond is not running";
      setAlerts(m.alerts);
    } else if (m.type === "alert") {
      if (m.event === "resolved") state.alerts.delete(m.alert.id); else state.alerts.set(m.alert.id, m.alert);
      renderAlerts();
    }
    updateTotal();
  };
  ws.onclose = () => {
    $("status").textContent = "reconnecting…";
    // A refused token closes at once: check it over REST before retrying,
    // on a route that always wants one (/api/health may be --open).
    api("GET", "/api/devices").then(() => setTimeout(connect, state.retry)).catch((e) => {
      if (e.status === 401) return logout("The token was refused.");
      setTimeout(connect, state.retry);
    });
    state.retry = Math.min(state.retry * 2, 30000);
  };
}

function logout(msg) {
  localStorage.removeItem(KEY);
  state.token = null;
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  $("devices").replaceChildren();
  setAlerts([]);
  start();
  showError(msg);
}

function start() {
  const login = $("login");
  if (!state.token) {
    login.hidden = false;
    $("logout").hidden = true;
    $("status").textContent = "";
    return;
  }
  login.hidden = true;
  $("logout").hidden = false;
  connect();
  loadCosts();
}

$("login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = $("token").value.trim();
  $("token").value = "";
  api("GET", "/api/devices").then(() => {
    localStorage.setItem(KEY, state.token);
    showError("");
    start();
  }).catch((e) => { state.token = null; showError(e.status === 401 ? "That token was refused." : e.message); });
});
$("logout").addEventListener("click", () => logout(""));
start();

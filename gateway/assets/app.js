// scopegate settings: a small vanilla script over the JSON admin API
// (/admin/v1). No inline script, no innerHTML with data: every node is built
// with createElement, so names and fields from the server are only ever text.
"use strict";

const state = { me: null, outboundBefore: null, newSecret: {} };

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "onclick") el.addEventListener("click", v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = state.me ? state.me.csrf_token : "";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    if (res.status === 401 && path !== "/admin/v1/session") showLogin("Your session has ended; please log in again.");
    throw new ApiError(res.status, data.detail || ("request failed with status " + res.status));
  }
  return data;
}

function flash(text, bad) {
  const el = $("flash");
  el.textContent = text;
  el.classList.toggle("bad", !!bad);
}
function fail(e) { flash(e.message, true); }
const when = (ms) => new Date(ms).toLocaleString();

// ---- login / logout ----
function showLogin(message) {
  state.me = null;
  $("app").hidden = true; $("who").hidden = true; $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("login-firm").focus();
}

async function start() {
  try {
    state.me = await api("GET", "/admin/v1/me");
    showApp();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) fail(e);
    showLogin("");
  }
}

// A connector's consent flow may return the browser to
// /settings?connector=<id>&outcome=<code>; its tab turns the code into a message.
const connectorOutcome = (() => {
  const params = new URLSearchParams(window.location.search);
  const id = params.get("connector");
  if (id === null) return null;
  window.history.replaceState(null, "", window.location.pathname);
  return { id, code: params.get("outcome") || "failed" };
})();

function showApp() {
  const me = state.me;
  $("login").hidden = true; $("app").hidden = false; $("who").hidden = false;
  $("who-firm").textContent = me.firm.name;
  $("who-user").textContent = me.user.name + " (" + me.user.role.replace("_", " ") + ")";
  const manage = me.user.role === "owner" || me.user.role === "admin";
  const audit = manage || me.user.role === "bookkeeper";
  for (const t of document.querySelectorAll(".tab")) {
    const need = t.dataset.role;
    t.hidden = (need === "manage" && !manage) || (need === "audit" && !audit) ||
      false;
  }
  buildPanels();
  if (connectorOutcome && !state.outcomeShown && panelInfo(connectorOutcome.id)) {
    state.outcomeShown = true;
    const id = connectorOutcome.id;
    selectTab(id);
    loadPanelScript(id).then(() => {
      const outcomes = (panels[id] && panels[id].outcomes) || {};
      const [text, bad] = outcomes[connectorOutcome.code] || outcomes.failed || ["Done.", false];
      flash(text, bad);
      $("h-" + id).focus();
    }).catch(fail);
  } else {
    selectTab("integrations");
  }
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    state.me = await api("POST", "/admin/v1/session", {
      firm: $("login-firm").value.trim(), email: $("login-email").value.trim(), password: $("login-password").value });
    $("login-password").value = "";
    flash("");
    showApp();
  } catch (e) {
    $("login-error").textContent = e.message;
  } finally {
    $("login-submit").disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("DELETE", "/admin/v1/session"); } catch (e) { /* already over */ }
  flash("");
  showLogin("You are logged out.");
});

// ---- tabs ----
function selectTab(name) {
  state.newSecret = {};
  for (const t of document.querySelectorAll(".tab")) {
    if (t.dataset.tab === name) t.setAttribute("aria-current", "page"); else t.removeAttribute("aria-current");
  }
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.id !== "tab-" + name;
  const load = { integrations: loadConnectors, outbound: () => loadOutbound(true), ledger: loadLedger, users: loadUsers }[name]
    || (panelInfo(name) ? () => renderPanel(name) : null);
  if (load) load().catch(fail);
}
for (const t of document.querySelectorAll(".tab")) t.addEventListener("click", () => { flash(""); selectTab(t.dataset.tab); });

// ---- connectors' own tabs: each connector's script (same origin) registers a renderer ----
const panels = {};
window.scopegate = { panel(id, impl) { panels[id] = impl; } };
const scripts = {};

function panelInfo(id) { return ((state.me && state.me.panels) || []).find((p) => p.id === id); }

function loadPanelScript(id) {
  if (!scripts[id]) {
    scripts[id] = new Promise((resolve, reject) => {
      const info = panelInfo(id);
      const script = h("script", { src: (info && info.script) || "/settings/connectors/" + encodeURIComponent(id) + ".js" });
      script.addEventListener("load", () => resolve());
      script.addEventListener("error", () => reject(new Error("The " + id + " tab could not be loaded; reload the page.")));
      document.head.append(script);
    });
  }
  return scripts[id];
}

// A tab and a panel per connector that has one, before "Outbound calls".
function buildPanels() {
  const nav = document.querySelector("nav.tabs");
  for (const p of state.me.panels || []) {
    if (document.getElementById("tab-" + p.id)) continue;
    const tab = h("button", { type: "button", class: "tab", "data-tab": p.id }, p.title);
    tab.addEventListener("click", () => { flash(""); selectTab(p.id); });
    nav.insertBefore(tab, nav.querySelector("[data-tab=outbound]"));
    $("tab-outbound").before(h("section", { id: "tab-" + p.id, class: "panel", hidden: true, "aria-labelledby": "h-" + p.id },
      h("h1", { id: "h-" + p.id, tabindex: "-1" }, p.title),
      h("p", { class: "muted" }, p.intro),
      h("div", { id: "panel-" + p.id })));
  }
}

async function renderPanel(id) {
  await loadPanelScript(id);
  const impl = panels[id];
  if (!impl) throw new Error("The " + id + " tab did not register itself; reload the page.");
  const info = panelInfo(id);
  await impl.render($("panel-" + id), { h, api, flash, fail, when, copy, base: info.base || "/admin/v1/connectors/" + encodeURIComponent(id), available: info.available });
}

// ---- integrations ----
function manages() { return state.me && (state.me.user.role === "owner" || state.me.user.role === "admin"); }

async function loadConnectors() {
  const list = await api("GET", "/admin/v1/connectors");
  const root = $("connectors");
  root.replaceChildren(...list.data.map(renderConnector));
  const sel = $("f-connector");
  if (sel.options.length === 1) for (const c of list.data) sel.append(h("option", { value: c.id }, c.name));
  // Connectors with a vendor API take credentials; those that push need none.
  await Promise.all(list.data.filter((c) => c.enabled && manages() && c.credentials).map((c) => loadCredentials(c.id)));
}

function renderConnector(c) {
  const labelId = "switch-label-" + c.id;
  const sw = h("button", { type: "button", class: "switch", role: "switch", "aria-checked": String(c.enabled),
    "aria-labelledby": labelId, id: "switch-" + c.id, disabled: !manages() || null,
    onclick: () => toggle(c) });
  const status = c.needs_reconsent
    ? h("span", { class: "badge warn", id: "status-" + c.id }, "Paused: needs re-consent")
    : h("span", { class: c.enabled ? "badge on" : "badge off", id: "status-" + c.id }, c.enabled ? "On" : "Off");
  const consented = !c.consented
    ? h("p", { class: "muted" }, "Never switched on. Current data contract version: " + c.contract_version + ".")
    : c.enabled
      ? h("p", { class: "muted" }, "Consented to data contract version " + c.consented.contract_version + " on " + when(c.consented.at) + ".")
      : h("p", { class: "muted" }, "Switched off " + when(c.consented.at) + ". Last consented to data contract version " + c.consented.contract_version +
          "; switching on again consents to version " + c.contract_version + ".");
  const receives = c.receives.map((s) => h("div", {},
    h("h3", {}, s.title), s.description ? h("p", { class: "muted" }, s.description) : null,
    h("dl", { class: "fields" }, s.fields.map((f) => [h("dt", {}, f.name), h("dd", {}, f.description)]))));
  const unused = c.enabled && c.unused
    ? h("p", { class: "notice", id: "unused-" + c.id, role: "note" }, "Unused for " + c.unused.days + " days: nothing was shared since " + when(c.unused.since) +
        ". Consider switching it off (grants unused for " + c.unused.threshold_days + " days may be switched off automatically).")
    : null;
  return h("article", { class: "card", id: "connector-" + c.id, "aria-labelledby": "title-" + c.id },
    h("div", { class: "connector-head" },
      h("div", {}, h("h2", { id: "title-" + c.id }, c.name), h("p", {}, c.description)),
      h("div", { class: "switch-row" }, h("span", { id: labelId }, "Share with " + c.name), sw, status)),
    h("div", { id: "switch-off-" + c.id }),
    consented,
    unused,
    c.needs_reconsent ? renderReconsent(c) : null,
    c.choices.length ? renderChoices(c) : null,
    h("h2", {}, "What " + c.name + " receives"),
    receives,
    audits() ? renderSharing(c) : null,
    h("p", { class: "muted" }, "Permissions: " + c.scopes.join(", ")),
    h("div", { id: "credentials-" + c.id }));
}

function audits() { return state.me && (manages() || state.me.user.role === "bookkeeper"); }

// Minimisation choices: part of the consented contract, so a change while on is a consent event.
function renderChoices(c) {
  return h("div", { class: "choices" }, c.choices.map((ch) => {
    const id = "choice-" + c.id + "-" + ch.name;
    const select = h("select", { id, disabled: !manages() || null },
      ch.options.map((o) => h("option", { value: o.name, selected: o.name === ch.chosen || null }, o.label)));
    const save = h("button", { type: "button", class: "ghost", id: id + "-save", disabled: !manages() || null, onclick: () =>
      act(() => api("PUT", "/admin/v1/connectors/" + c.id + "/choices", { [ch.name]: select.value }),
        ch.label + " set" + (c.enabled ? "; recorded as a consent in the consent history." : ".")) }, "Save");
    return h("div", { class: "filters" }, h("div", {}, h("label", { for: id }, ch.label), select), h("div", { class: "actions" }, save));
  }));
}

// Records shared per day (last 30 days), drawn by the gateway; the alt text says the total and the peak day.
function renderSharing(c) {
  const s = c.sharing;
  const alt = s.peak
    ? s.total + " records shared with " + c.name + " in the last " + s.days + " days; peak " + s.peak.records + " on " + new Date(s.peak.day).toISOString().slice(0, 10)
    : "No records shared with " + c.name + " in the last " + s.days + " days";
  return h("figure", { class: "sharing", id: "sharing-" + c.id },
    h("img", { src: "/admin/v1/connectors/" + c.id + "/sharing.svg?t=" + Date.now(), alt, width: "300", height: "65", id: "sharing-chart-" + c.id }),
    h("figcaption", { class: "muted" }, "Records shared per day, last " + s.days + " days: " + alt + "."));
}

function renderReconsent(c) {
  const items = [];
  if (c.changes && c.changes.known) {
    for (const s of c.changes.schemas) {
      for (const f of s.added) items.push(h("li", {}, "New field " + f + " in " + (s.title || s.schema)));
      for (const f of s.removed) items.push(h("li", {}, "Field " + f + " no longer in " + (s.title || s.schema)));
      if (!s.added.length && !s.removed.length) items.push(h("li", {}, "New data set: " + (s.title || s.schema)));
    }
  }
  return h("div", { class: "notice", role: "note" },
    h("strong", {}, "The data contract changed from version " + c.consented.contract_version + " to " + c.contract_version + ". "),
    "Nothing is shared until an admin re-consents.",
    items.length ? h("ul", {}, items) : h("p", {}, "The field descriptions or rules changed; review the list below."),
    manages() ? h("button", { type: "button", id: "reconsent-" + c.id, onclick: () => act(() => api("POST", "/admin/v1/connectors/" + c.id + "/enable"), "Re-consented to version " + c.contract_version + ".") }, "Re-consent to version " + c.contract_version) : null);
}

async function act(fn, message) {
  state.newSecret = {};
  try { await fn(); flash(message); await loadConnectors(); } catch (e) { fail(e); }
}

function toggle(c) {
  if (c.enabled && c.switch_off_options.length) { confirmSwitchOff(c); return; }
  const verb = c.enabled ? "disable" : "enable";
  act(() => api("POST", "/admin/v1/connectors/" + c.id + "/" + verb),
    c.name + (c.enabled ? " switched off; its credentials and tokens are revoked." : " switched on. Issue a credential for the vendor below."));
}

// A connector that offers choices at switch-off (its switch_off_options) asks first.
const optionId = (name) => name.replaceAll("_", "-");

function confirmSwitchOff(c) {
  const box = $("switch-off-" + c.id);
  if (!box) return;
  const cancel = () => { box.replaceChildren(); $("switch-" + c.id).focus(); };
  const choices = () => Object.fromEntries(c.switch_off_options.map((o) => [o.name, $(optionId(o.name)).checked]));
  box.replaceChildren(h("div", { class: "notice", role: "group", "aria-labelledby": "switch-off-title" },
    h("p", { id: "switch-off-title" }, h("strong", {}, "Switch " + c.name + " off?"), " Sharing stops at once."),
    ...c.switch_off_options.map((o) => h("div", { class: "check" },
      h("input", { type: "checkbox", id: optionId(o.name) }),
      h("label", { for: optionId(o.name) }, o.label))),
    h("div", { class: "row-actions" },
      h("button", { type: "button", class: "danger", id: "confirm-switch-off", onclick: () => switchOff(c, choices()) }, "Switch off"),
      h("button", { type: "button", class: "ghost", id: "cancel-switch-off", onclick: cancel }, "Cancel"))));
  $(optionId(c.switch_off_options[0].name)).focus();
}

async function switchOff(c, choices) {
  state.newSecret = {};
  try {
    const r = await api("POST", "/admin/v1/connectors/" + c.id + "/disable", choices);
    const report = r.switch_off || { summary: "", failures: [] };
    const text = c.name + " switched off." + (report.summary ? " " + report.summary : "") +
      (report.failures.length ? " Could not finish for: " + report.failures.join("; ") : "");
    flash(text, report.failures.length > 0);
    await loadConnectors();
    // Also say it next to the switch, which keeps the focus.
    $("switch-off-" + c.id).replaceChildren(h("p", { class: report.failures.length ? "error" : "done", id: "switch-off-result" }, text));
    $("switch-" + c.id).focus();
  } catch (e) { fail(e); }
}

async function loadCredentials(id) {
  const box = $("credentials-" + id);
  const list = await api("GET", "/admin/v1/connectors/" + id + "/credentials");
  const active = list.data.filter((c) => !c.revoked_at);
  const rows = list.data.map((c) => h("tr", {},
    h("td", { class: "mono" }, c.client_id), h("td", {}, when(c.created_at)),
    h("td", {}, c.revoked_at ? h("span", { class: "badge off" }, "Revoked " + when(c.revoked_at)) : h("span", { class: "badge on" }, "Active")),
    h("td", {}, c.revoked_at ? "" : h("div", { class: "row-actions" },
      h("button", { type: "button", class: "ghost", "aria-label": "Rotate " + c.client_id, onclick: () => issue(id, c.client_id) }, "Rotate"),
      h("button", { type: "button", class: "danger", "aria-label": "Revoke " + c.client_id,
        onclick: () => act(() => api("DELETE", "/admin/v1/connectors/" + id + "/credentials/" + c.client_id), "Credential revoked.") }, "Revoke")))));
  box.replaceChildren(
    h("h2", {}, "Vendor credentials"),
    ...(state.newSecret[id] ? [state.newSecret[id]] : []),
    list.data.length ? h("div", { class: "table-wrap" }, h("table", { id: "credentials-table-" + id },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Client id"), h("th", { scope: "col" }, "Issued"), h("th", { scope: "col" }, "State"), h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
      h("tbody", {}, rows))) : h("p", { class: "muted" }, "No credentials yet."),
    h("p", {}, h("button", { type: "button", id: "issue-" + id, onclick: () => issue(id, null) }, active.length ? "Issue another credential" : "Issue credential")));
}

async function issue(id, rotating) {
  try {
    const path = "/admin/v1/connectors/" + id + "/credentials" + (rotating ? "/" + rotating + "/rotate" : "");
    const cred = await api("POST", path);
    state.newSecret[id] = h("div", { class: "secret", role: "region", "aria-label": "New credential" },
      h("strong", {}, "Give these to the vendor now. The secret is shown only this once."),
      h("div", {}, "Client id"), h("code", { id: "new-client-id" }, cred.client_id),
      h("div", {}, "Client secret"), h("code", { id: "new-client-secret" }, cred.client_secret),
      h("button", { type: "button", class: "ghost", id: "copy-secret", onclick: (ev) => copy(cred.client_secret, ev.target) }, "Copy secret"));
    await loadConnectors();
    flash(rotating ? "New credential issued; the old one is revoked." : "Credential issued.");
    $("copy-secret").focus();
  } catch (e) { fail(e); }
}

async function copy(text, button) {
  try { await navigator.clipboard.writeText(text); button.textContent = "Copied"; }
  catch (e) { button.textContent = "Select and copy the secret above"; }
}

// ---- outbound ----
function filterQuery() {
  const q = new URLSearchParams();
  const v = (id) => $(id).value;
  if (v("f-connector")) q.set("connector", v("f-connector"));
  if (v("f-from")) q.set("from", new Date(v("f-from")).toISOString());
  if (v("f-to")) q.set("to", new Date(v("f-to")).toISOString());
  if (v("f-status")) q.set("status", v("f-status"));
  return q;
}

async function loadOutbound(reset) {
  const q = filterQuery();
  if (!reset && state.outboundBefore !== null) q.set("before", state.outboundBefore);
  const page = await api("GET", "/admin/v1/outbound?" + q.toString());
  const body = $("outbound-table").querySelector("tbody");
  // One row per call: the send with its result ("outcome unknown" where none was recorded).
  const rows = page.data.map((r) => h("tr", {},
    h("td", {}, r.seq), h("td", {}, when(r.at)), h("td", {}, r.direction === "inbound" ? "Received" : "Sent"),
    h("td", {}, r.connector), h("td", { class: "mono" }, r.method + " " + r.target),
    h("td", {}, r.fields.join(", ") + " (" + r.record_ids.length + " records)"),
    h("td", {}, r.bytes),
    h("td", {}, r.result === null ? h("span", { class: "badge warn" }, "Outcome unknown")
      : h("span", { class: r.result.status < 400 ? "badge on" : "badge bad" }, r.result.status)),
    h("td", {}, r.result === null ? "" : (r.result.latency_us / 1000).toFixed(1) + " ms")));
  if (reset) body.replaceChildren(...rows); else body.append(...rows);
  state.outboundBefore = page.next_before;
  $("outbound-more").hidden = page.next_before === null;
  $("outbound-empty").hidden = body.children.length > 0;
}
$("outbound-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadOutbound(true).catch(fail); });
$("outbound-more").addEventListener("click", () => loadOutbound(false).catch(fail));

// ---- consent ledger ----
async function loadLedger() {
  const list = await api("GET", "/admin/v1/consent-ledger");
  $("ledger-table").querySelector("tbody").replaceChildren(...list.data.map((e) => h("tr", {},
    h("td", {}, when(e.at)), h("td", {}, e.connector),
    h("td", {}, h("span", { class: e.action === "disable" ? "badge off" : "badge on" },
      { enable: "Switched on", disable: "Switched off", choose: "Choice changed" }[e.action] || e.action)),
    h("td", {}, e.actor + (e.reason ? " (" + e.reason + ")" : "")),
    h("td", {}, "version " + e.contract_version +
      (Object.keys(e.choices).length ? "; " + Object.entries(e.choices).map(([k, v]) => k.replaceAll("_", " ") + ": " + v.replaceAll("_", " ")).join(", ") : "")))));
}

// ---- users ----
async function loadUsers() {
  const list = await api("GET", "/admin/v1/users");
  $("users-table").querySelector("tbody").replaceChildren(...list.data.map((u) => h("tr", {},
    h("td", {}, u.email), h("td", {}, u.name), h("td", {}, u.role.replace("_", " ")),
    h("td", {}, u.disabled_at ? h("span", { class: "badge off" }, "Disabled") : h("span", { class: "badge on" }, "Active")),
    h("td", {}, u.disabled_at || u.id === state.me.user.id ? "" : h("div", { class: "row-actions" },
      h("button", { type: "button", class: "ghost", "aria-label": "Reset password of " + u.email,
        onclick: () => userAction(() => api("POST", "/admin/v1/users/" + u.id + "/reset-password"), "New password for " + u.email, "Password of " + u.email + " reset; their sessions ended.") }, "Reset password"),
      h("button", { type: "button", class: "danger", "aria-label": "Disable " + u.email,
        onclick: () => userAction(() => api("POST", "/admin/v1/users/" + u.id + "/disable"), null, u.email + " disabled; their sessions ended.") }, "Disable"))))));
}

async function userAction(fn, title, done) {
  try {
    const res = await fn();
    $("user-secret").replaceChildren(res && res.password ? h("div", { class: "secret" },
      h("strong", {}, title + " (shown once)"), h("code", { id: "new-user-password" }, res.password),
      h("button", { type: "button", class: "ghost", onclick: (ev) => copy(res.password, ev.target) }, "Copy password")) : "");
    flash(done);
    await loadUsers();
  } catch (e) { fail(e); }
}

$("user-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const body = { email: $("u-email").value.trim(), name: $("u-name").value.trim(), role: $("u-role").value };
  if ($("u-firm-user").value.trim()) body.firm_user_id = $("u-firm-user").value.trim();
  userAction(() => api("POST", "/admin/v1/users", body), "Password for " + body.email, body.email + " added.").then(() => $("user-form").reset());
});

start();

// The audit trail's tab: the firm's access trail (logins, hand-offs, users,
// credentials, tokens, grants, ... with who, when, from where and what),
// newest first, filtered by kind, actor and time, with "Older entries".
"use strict";
(() => {
  const byId = (id) => document.getElementById(id);
  const KINDS = ["login_succeeded", "login_failed", "handoff", "user_added", "user_disabled", "password_reset",
    "credential_issued", "credential_rotated", "credential_revoked", "token_issued", "grant_switched",
    "minimisation_changed", "tripwire_planted", "key_rotated", "firm_terminated", "firm_purged"];
  const label = (kind) => kind.replace(/_/g, " ");

  function describe(what) {
    if (!what || typeof what !== "object") return "";
    return Object.entries(what)
      .map(([k, v]) => k.replace(/_/g, " ") + ": " + (Array.isArray(v) ? v.join(", ") || "none" : typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)))
      .join("; ");
  }

  function query(before) {
    const q = new URLSearchParams();
    if (byId("t-kind").value) q.set("kind", byId("t-kind").value);
    const actor = byId("t-actor").value.trim();
    if (actor) q.set("actor", actor);
    if (byId("t-from").value) q.set("from", String(new Date(byId("t-from").value).getTime()));
    if (byId("t-to").value) q.set("to", String(new Date(byId("t-to").value).getTime()));
    if (before) q.set("before", String(before));
    q.set("limit", "50");
    return q;
  }

  async function load(ctx, before) {
    const { h, api, when, base } = ctx;
    const page = await api("GET", base + "/audit-trail?" + query(before));
    const body = byId("trail-rows");
    if (!before) body.replaceChildren();
    for (const e of page.data) {
      body.append(h("tr", { "data-kind": e.kind },
        h("td", {}, when(e.at)), h("td", {}, h("span", { class: "badge" }, label(e.kind))),
        h("td", { class: "mono" }, e.actor), h("td", { class: "mono" }, e.from), h("td", {}, describe(e.what)),
        h("td", { class: "muted mono" }, String(e.seq))));
    }
    byId("trail-empty").hidden = body.children.length > 0;
    const more = byId("trail-older");
    more.hidden = page.next_before === null || page.next_before === undefined;
    more.onclick = async () => {
      try { await load(ctx, page.next_before); } catch (err) { ctx.fail(err); }
    };
  }

  async function render(root, ctx) {
    const { h, fail } = ctx;
    root.replaceChildren(
      h("form", { id: "trail-form", class: "filters" },
        h("div", {}, h("label", { for: "t-kind" }, "Event"),
          h("select", { id: "t-kind" }, h("option", { value: "" }, "All events"), KINDS.map((k) => h("option", { value: k }, label(k))))),
        h("div", {}, h("label", { for: "t-actor" }, "Who"), h("input", { id: "t-actor", autocomplete: "off", maxlength: "200", placeholder: "email or client id" })),
        h("div", {}, h("label", { for: "t-from" }, "From"), h("input", { id: "t-from", type: "datetime-local" })),
        h("div", {}, h("label", { for: "t-to" }, "To"), h("input", { id: "t-to", type: "datetime-local" })),
        h("div", { class: "actions" }, h("button", { type: "submit", id: "trail-submit" }, "Filter"))),
      h("div", { class: "table-wrap" }, h("table", { id: "trail-table" },
        h("caption", { class: "sr-only" }, "The firm's access trail, newest first"),
        h("thead", {}, h("tr", {}, ["When", "Event", "Who", "From", "What", "#"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", { id: "trail-rows" }))),
      h("p", { id: "trail-empty", class: "muted", hidden: true }, "No entries match."),
      h("p", {}, h("button", { type: "button", id: "trail-older", class: "ghost", hidden: true }, "Older entries")));
    byId("trail-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await load(ctx, null); } catch (e) { fail(e); }
    });
    await load(ctx, null);
  }

  window.scopegate.panel("trail", { render });
})();

// The privacy office's tab: the disclosure report (who received what about a
// client or matter, POPIA s23) and the breach scope (whose data left through
// one grant or credential in a window, POPIA s22), both from the admin API.
"use strict";
(() => {
  const byId = (id) => document.getElementById(id);
  const day = 24 * 3600 * 1000;
  const localInput = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16);

  function table(h, id, caption, head, rows) {
    return h("div", { class: "table-wrap" }, h("table", { id },
      h("caption", { class: "sr-only" }, caption),
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows)));
  }

  function renderDisclosures(ctx, report) {
    const { h, when } = ctx;
    const box = byId("disclosures-result");
    const what = (report.subject.kind === "client" ? "client " : "matter ") + report.subject.id;
    if (!report.recipients.length) {
      box.replaceChildren(h("p", { id: "disclosures-summary" }, "No third party received data about " + what +
        " (" + report.records_about_subject + " records about it in the firm's database)."));
      return;
    }
    box.replaceChildren(
      h("p", { id: "disclosures-summary" }, report.recipients.length + " recipient(s) received data about " + what +
        " (" + report.records_about_subject + " records about it in the firm's database)."),
      table(h, "disclosures-table", "Third parties that received data about " + what,
        ["Connector", "Grant", "Via", "Fields", "First", "Last", "Records", "Calls"],
        report.recipients.map((r) => h("tr", {},
          h("td", {}, r.connector), h("td", { class: "mono" }, r.grant_id),
          h("td", { class: "mono" }, r.credentials.concat(r.accounts).join(", ") || "—"),
          h("td", {}, r.fields.join(", ")), h("td", {}, when(r.first_at)), h("td", {}, when(r.last_at)),
          h("td", {}, r.records), h("td", {}, r.calls)))));
  }

  function breachQuery(format) {
    const q = new URLSearchParams();
    const channel = byId("b-channel").value;
    q.set("channel", channel === "account:" ? "account:" + byId("b-account").value.trim() : channel);
    q.set("since", String(new Date(byId("b-since").value).getTime()));
    if (byId("b-until").value) q.set("until", String(new Date(byId("b-until").value).getTime()));
    if (format) q.set("format", format);
    return q;
  }

  function renderBreach(ctx, scope) {
    const { h, when, base } = ctx;
    const box = byId("breach-result");
    const csv = h("a", { class: "button ghost", id: "breach-csv", href: base + "/privacy/breach-scope?" + breachQuery("csv"), download: "breach-scope.csv" }, "Download CSV");
    const summary = h("p", { id: "breach-summary" }, scope.affected.length + " client(s) to notify: " + scope.calls +
      " call(s) through " + scope.connector + " between " + when(scope.since) + " and " + when(scope.until) + ".");
    box.replaceChildren(summary, scope.note ? h("p", { class: "notice" }, scope.note) : "",
      scope.affected.length ? table(h, "breach-table", "Clients whose data left through the channel",
        ["Client", "Email", "Fields", "First", "Last", "Records"],
        scope.affected.map((a) => h("tr", {},
          h("td", {}, a.client.full_name, h("br"), h("span", { class: "muted mono" }, a.client.id)),
          h("td", {}, a.client.email), h("td", {}, a.fields.join(", ")),
          h("td", {}, when(a.first_at)), h("td", {}, when(a.last_at)), h("td", {}, a.records)))) : "",
      h("p", {}, csv));
  }

  async function render(root, ctx) {
    const { h, api, fail, base } = ctx;
    const connectors = (await api("GET", "/admin/v1/connectors")).data.filter((c) => c.consented);
    const channels = [];
    for (const c of connectors) {
      channels.push(h("option", { value: "grant:" + c.consented.grant_id }, c.name + " (the whole grant)"));
      if (c.credentials) {
        const creds = (await api("GET", "/admin/v1/connectors/" + c.id + "/credentials")).data;
        for (const cred of creds) channels.push(h("option", { value: "credential:" + cred.client_id },
          c.name + ": credential " + cred.client_id + (cred.revoked_at ? " (revoked)" : "")));
      }
    }
    if (connectors.some((c) => c.id === "google-calendar")) {
      channels.push(h("option", { value: "account:" }, "A fee earner's Google account…"));
    }
    const now = Date.now();
    root.replaceChildren(
      h("h2", {}, "Who received data about a person"),
      h("form", { id: "disclosures-form", class: "filters" },
        h("div", {}, h("label", { for: "d-kind" }, "About a"),
          h("select", { id: "d-kind" }, h("option", { value: "client" }, "Client"), h("option", { value: "matter" }, "Matter"))),
        h("div", {}, h("label", { for: "d-id" }, "Id in the practice system"), h("input", { id: "d-id", required: true, autocomplete: "off" })),
        h("div", { class: "actions" }, h("button", { type: "submit", id: "disclosures-submit" }, "Show recipients"))),
      h("div", { id: "disclosures-result", "aria-live": "polite" }),
      h("h2", {}, "Breach scope: whose data left through a channel"),
      channels.length ? h("form", { id: "breach-form", class: "filters" },
        h("div", {}, h("label", { for: "b-channel" }, "Channel"), h("select", { id: "b-channel" }, channels)),
        h("div", { id: "b-account-row", hidden: true }, h("label", { for: "b-account" }, "Google account"),
          h("input", { id: "b-account", type: "email", autocomplete: "off", placeholder: "name@example.com" })),
        h("div", {}, h("label", { for: "b-since" }, "From"), h("input", { id: "b-since", type: "datetime-local", required: true, value: localInput(now - 30 * day) })),
        h("div", {}, h("label", { for: "b-until" }, "To"), h("input", { id: "b-until", type: "datetime-local", value: localInput(now + 60000) })),
        h("div", { class: "actions" }, h("button", { type: "submit", id: "breach-submit" }, "List clients to notify")))
        : h("p", { class: "muted" }, "No integration was ever switched on, so no data left through any channel."),
      h("div", { id: "breach-result", "aria-live": "polite" }));
    byId("disclosures-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const subject = byId("d-kind").value + ":" + byId("d-id").value.trim();
        renderDisclosures(ctx, await api("GET", base + "/privacy/disclosures?subject=" + encodeURIComponent(subject)));
      } catch (e) { fail(e); }
    });
    if (channels.length) byId("b-channel").addEventListener("change", () => {
      const account = byId("b-channel").value === "account:";
      byId("b-account-row").hidden = !account;
      byId("b-account").required = account;
    });
    if (channels.length) byId("breach-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { renderBreach(ctx, await api("GET", base + "/privacy/breach-scope?" + breachQuery(null))); } catch (e) { fail(e); }
    });
  }

  window.scopegate.panel("privacy", { render });
})();

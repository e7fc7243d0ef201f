// The security tab: the firm's security events (a decoy credential used, a
// token probing outside its grant, an id no grant was shown), newest first,
// a page at a time, from the admin API.
"use strict";
(() => {
  const byId = (id) => document.getElementById(id);
  const KINDS = {
    decoy_credential: "Decoy credential used",
    out_of_scope: "Out-of-scope probe",
    forged_id: "Foreign or forged id",
  };

  function row(h, when, e) {
    return h("tr", { class: "security-event", "data-kind": e.kind },
      h("td", {}, when(e.at)),
      h("td", {}, h("span", { class: "badge warn" }, KINDS[e.kind] || e.kind)),
      h("td", {}, e.connector || "—", e.grant_id ? h("br") : "", e.grant_id ? h("span", { class: "muted mono" }, e.grant_id) : ""),
      h("td", { class: "mono" }, e.source_ip || "—"),
      h("td", {}, e.detail));
  }

  async function render(root, ctx) {
    const { h, api, fail, when, base } = ctx;
    const body = h("tbody", { id: "security-events-body" });
    const more = h("button", { type: "button", class: "ghost", id: "security-older", hidden: true }, "Older events");
    const summary = h("p", { id: "security-summary", "aria-live": "polite" });
    let next = null;
    let shown = 0;
    async function load() {
      const page = await api("GET", base + "/security-events?limit=50" + (next ? "&before=" + encodeURIComponent(next) : ""));
      page.events.forEach((e) => body.append(row(h, when, e)));
      shown += page.events.length;
      next = page.next_before;
      more.hidden = !next;
      summary.textContent = shown
        ? shown + " event(s) shown, newest first. Each one is also sent to the operator's alert webhook."
        : "No tripwire has fired: no decoy credential was used, no token probed outside its grant, no foreign id was sent.";
    }
    root.replaceChildren(
      h("h2", {}, "Security events"),
      summary,
      h("div", { class: "table-wrap" }, h("table", { id: "security-events" },
        h("caption", { class: "sr-only" }, "Security events, newest first"),
        h("thead", {}, h("tr", {}, ["When", "What", "Grant", "From", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
        body)),
      h("p", {}, more));
    more.addEventListener("click", async () => { try { await load(); } catch (e) { fail(e); } });
    await load();
  }

  window.scopegate.panel("security", { render });
})();

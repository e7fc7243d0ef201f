// The Google Calendar tab of the settings page: the fee earner's own
// connection, and (for owners and admins) every fee earner's. Loaded by the
// page (same origin, within its CSP) and handed its toolkit: every node is
// built with kit.h, so names and fields from the server are only ever text.
"use strict";

scopegate.panel("google-calendar", {
  outcomes: {
    "connected": ["Google Calendar is connected. Your diary entries will appear in your calendar shortly.", false],
    "denied": ["Google did not grant access; nothing was connected.", true],
    "expired": ["That Google consent link is unknown, already used or expired; connect again.", true],
    "other-browser": ["That Google consent was started in another browser or window; connect again from here.", true],
    "off": ["Google Calendar is switched off for your firm, or its data contract changed; ask an owner or admin.", true],
    "refused": ["Google refused to complete the consent; connect again.", true],
    "held": ["Another settings account holds this practice user's Google Calendar connection; it must be disconnected there (or by an admin) first.", true],
    "failed": ["Connecting Google Calendar failed; try again.", true],
  },

  async render(root, kit) {
    const { h, api, flash, fail, when, base } = kit;
    const render = () => this.render(root, kit);

    function status(s, idPrefix) {
      const rows = [
        ["state", "Status", s.needs_reconsent ? "Needs re-consent" : s.error ? "Error" : "Syncing"],
        ["last-sync", "Last sync", s.last_sync_at ? when(s.last_sync_at) : "Not yet"],
        ["events", "Events in calendar", String(s.events || 0)],
      ];
      if (s.error) rows.push(["error", "Last error", s.error]);
      return h("dl", { class: "fields status-list", id: idPrefix + "-status" },
        rows.map(([id, k, v]) => [h("dt", {}, k), h("dd", { id: idPrefix + "-" + id }, v)]));
    }

    async function connect() {
      try {
        const r = await api("POST", base + "/connect");
        flash("Taking you to Google to approve access…");
        window.location.assign(r.authorize_url);
      } catch (e) { fail(e); }
    }

    async function disconnect() {
      try {
        const deleteEvents = document.getElementById("google-delete-events").checked;
        const r = await api("POST", base + "/disconnect", { delete_events: deleteEvents });
        flash("Google Calendar disconnected" + (deleteEvents ? " and " + r.events_deleted + " events deleted from your calendar" : "") + (r.revoked_at_google ? "; access revoked at Google." : "; Google could not be told, so remove scopegate in your Google account."));
        await render();
        const again = document.getElementById("google-connect");
        if (again) again.focus();
      } catch (e) { fail(e); }
    }

    if (!kit.available) {
      root.replaceChildren(h("div", { class: "card" },
        h("p", { id: "google-unconfigured" }, "Google Calendar is not available: the operator of this gateway has not configured it (no Google client id)."),
        h("p", { class: "muted" }, "Ask whoever runs scopegate for your firm to set it up.")));
      return;
    }
    const s = await api("GET", base + "/connection");
    const me = s.me;
    const own = [h("h2", { id: "google-own-title" }, "Your calendar")];
    if (!s.linked) {
      own.push(h("p", { id: "google-unlinked" }, "Your login is not linked to a user in the practice system, so there is no diary of yours to sync. An owner or admin can set your practice user id."));
    } else if (me.connected) {
      own.push(h("p", { id: "google-connected" }, h("span", { class: me.needs_reconsent || me.error ? "badge warn" : "badge on" }, me.needs_reconsent ? "Needs re-consent" : "Connected"),
        " Your live diary entries are kept in your Google Calendar, carrying only the matter name, the time and the description."));
      own.push(status(me, "google-me"));
      if (me.needs_reconsent) {
        own.push(h("div", { class: "notice", role: "note" },
          "Google no longer accepts scopegate's access to your calendar. Reconnect to resume syncing. ",
          h("button", { type: "button", id: "google-reconnect", onclick: connect }, "Reconnect Google Calendar")));
      }
      own.push(h("h3", {}, "Disconnect"));
      own.push(h("div", { class: "check" },
        h("input", { type: "checkbox", id: "google-delete-events" }),
        h("label", { for: "google-delete-events" }, "Also delete the events scopegate put in my calendar")));
      own.push(h("p", {}, h("button", { type: "button", class: "danger", id: "google-disconnect", onclick: disconnect }, "Disconnect Google Calendar")));
    } else if (!s.firm_enabled) {
      own.push(h("p", { id: "google-firm-off" }, "Google Calendar is not switched on for your firm. An owner or admin switches it on under Integrations; then you can connect your calendar here."));
    } else {
      own.push(h("p", { id: "google-not-connected" }, "Your Google Calendar is not connected. Connecting sends you to Google to approve access to your calendar's events only; scopegate then keeps one event per live diary entry of yours."));
      own.push(h("p", {}, h("button", { type: "button", id: "google-connect", onclick: connect }, "Connect Google Calendar")));
    }
    const cards = [h("section", { class: "card", "aria-labelledby": "google-own-title" }, own)];
    if (s.fee_earners) {
      cards.push(h("section", { class: "card", "aria-labelledby": "google-firm-title" },
        h("h2", { id: "google-firm-title" }, "Fee earners of your firm"),
        s.fee_earners.length ? h("div", { class: "table-wrap" }, h("table", { id: "google-fee-earners" },
          h("caption", { class: "sr-only" }, "Google Calendar connections of your firm's fee earners"),
          h("thead", {}, h("tr", {}, ["Name", "Email", "Connection", "Last sync", "Events", "Error"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", {}, s.fee_earners.map((f) => h("tr", {},
            h("td", {}, f.name), h("td", {}, f.email),
            h("td", {}, !f.connected ? h("span", { class: "badge off" }, "Not connected")
              : f.needs_reconsent ? h("span", { class: "badge warn" }, "Needs re-consent") : h("span", { class: "badge on" }, "Connected")),
            h("td", {}, f.connected && f.last_sync_at ? when(f.last_sync_at) : ""),
            h("td", {}, f.connected ? String(f.events || 0) : ""),
            h("td", {}, f.connected && f.error ? f.error : ""))))))
          : h("p", { class: "muted" }, "No logins are linked to practice-system users yet.")));
    }
    root.replaceChildren(...cards);
  },
});

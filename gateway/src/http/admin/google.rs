//! The Google Calendar part of settings: each fee earner's own connection.
//!
//! WIRE-UP POINT (issue 4, Google Calendar connector, built on another
//! branch). This is the only place the settings page touches Google. When
//! `crate::google` is merged, the lead replaces `available` with `true` and
//! adds to `routes()`:
//!   - `GET  /admin/v1/google/connection` -> for the session's user (`session.user.firm_user_id`),
//!     their status from `google::consent::connection_statuses(&state, session.firm())`
//!     (last sync, events, needs reconsent, error); owners/admins get every fee earner's.
//!   - `POST /admin/v1/google/connect`    -> `{ "authorize_url": google::consent::start(&state, session.firm(), firm_user_id) }`
//!   - `POST /admin/v1/google/disconnect` -> `google::consent::disconnect(...)`
//!
//! Both POSTs go through the [`super::Session`] extractor, so the CSRF check
//! and the firm scoping apply unchanged. `gateway/assets/app.js` already
//! renders this section (function `renderGoogle`) when `me.features.google_calendar`
//! is true, using exactly these three endpoints.

use crate::app::AppState;
use axum::Router;

/// Whether this gateway has the Google Calendar connector (not until issue 4 is merged).
pub fn available(_state: &AppState) -> bool {
    false
}

/// The Google routes; none until issue 4 is merged (see the module doc).
pub fn routes() -> Router<AppState> {
    Router::new()
}

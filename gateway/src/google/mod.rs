//! The Google Calendar connector. A firm switches it on (a grant); each fee
//! earner then connects their own Google account (OAuth authorization code
//! with PKCE), and a background sync keeps one Google event per live diary
//! entry of theirs, carrying only the matter name, the date or time span and
//! the description (schemas under `schemas/google-calendar/`).
//!
//! Modules: `consent` (start, callback, disconnect, statuses), `store`
//! (registry rows), `tokens` (sealed refresh tokens, single-flight refresh),
//! `event_id` (ids Google sees), `reader` (the projected diary columns),
//! `backoff` (retry policy), `calls` (one logged Calendar API call),
//! `sync` (one pass over a connection), `worker` (the durable job loop),
//! `switch_off` (deleting the events the gateway created), `lease` (one
//! instance at a time per connection when instances share a registry).

pub mod backoff;
pub mod calls;
pub mod connector;
pub mod consent;
pub mod event_id;
pub mod lease;
pub mod reader;
pub mod runtime;
pub mod store;
pub mod switch_off;
pub mod sync;
pub mod tokens;
pub mod worker;

/// The connector id (folder under `schemas/`).
pub const CONNECTOR: &str = "google-calendar";
/// The narrowest scope that lets the gateway write events in the user's calendar.
pub const SCOPE: &str = "https://www.googleapis.com/auth/calendar.events";

pub use connector::GoogleCalendar;
pub use runtime::GoogleRuntime;

use crate::catalogue::Catalogue;
use crate::config::GoogleConfig;
use crate::keys::Keyring;
use crate::outbound_log::OutboundLog;
use crate::registry::Registry;
use crate::tenancy::Tenancy;
use std::sync::Arc;

/// What the Google Calendar connector works with: the core's services, its
/// configuration and its runtime. Built by the gateway's wiring (or by a CLI
/// command that needs no listening gateway); it names nothing of the HTTP
/// layer or the application, so the dependency points one way.
pub struct GoogleContext {
    pub registry: Registry,
    pub tenancy: Tenancy,
    pub log: OutboundLog,
    pub keyring: Arc<Keyring>,
    pub catalogue: Catalogue,
    pub config: GoogleConfig,
    pub runtime: Arc<GoogleRuntime>,
}

impl GoogleContext {
    pub fn new(
        registry: Registry,
        tenancy: Tenancy,
        log: OutboundLog,
        keyring: Arc<Keyring>,
        catalogue: Catalogue,
        config: GoogleConfig,
    ) -> Self {
        let runtime = Arc::new(GoogleRuntime::new(
            config.user_rate_per_second,
            config.connect_timeout,
        ));
        Self {
            registry,
            tenancy,
            log,
            keyring,
            catalogue,
            config,
            runtime,
        }
    }
}

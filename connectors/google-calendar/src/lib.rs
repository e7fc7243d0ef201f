//! The Google Calendar connector. A firm switches it on (a grant); each fee
//! earner then connects their own Google account (OAuth authorization code
//! with PKCE), and a background sync keeps one Google event per live diary
//! entry of theirs, carrying only the matter name, the date or time span and
//! the description (schemas under `schemas/google-calendar/`).
//!
//! It depends on the contract alone for firm data and the network: diary
//! entries come through the projected reader, every call to Google (token
//! exchanges included) through the audited sender, and its own state
//! (connections, event mappings, sync leases, the sealed refresh tokens) lives
//! in its grant records.
//!
//! Modules: `settings` (the operator's settings), `context`, `runtime`
//! (in-memory state), `store` (its records), `lease` (one instance at a time
//! per connection), `tokens` (sealed refresh tokens, single-flight refresh),
//! `consent` (start, callback, disconnect, statuses), `event_id` (ids Google
//! sees), `reader` (diary entries), `backoff` (retry policy), `pacing` (the
//! calls' pace under Google's quotas), `calls` (one
//! logged Calendar API call), `sync` (one pass over a connection), `worker`
//! (the durable job loop), `switch_off` (deleting the events the gateway
//! created), `routes` (settings and callback), `cli` (operator commands).

pub mod account;
pub mod backoff;
pub mod calls;
pub mod cleanup;
pub mod cli;
pub mod consent;
pub mod context;
pub mod event_id;
pub mod lease;
pub mod openapi;
pub mod pacing;
pub mod reader;
pub mod routes;
pub mod runtime;
pub mod settings;
pub mod store;
pub mod switch_off;
pub mod sync;
pub mod tokens;
pub mod worker;

use context::Ctx;
use runtime::GoogleRuntime;
use scopegate_contract::{
    BoxFuture, BuiltInContract, Capabilities, Connector, ConnectorError, FirmGrant,
    RecipientAccount, SettingSpec, SettingsPanel, SwitchOffOption,
};
use serde_json::Value;
use std::sync::Arc;

/// The connector id (folder under `schemas/`).
pub const CONNECTOR: &str = "google-calendar";
/// The narrowest scope that lets the gateway write events in the user's calendar.
pub const SCOPE: &str = "https://www.googleapis.com/auth/calendar.events";

/// The Google Calendar connector; one per gateway process.
#[derive(Default)]
pub struct GoogleCalendar {
    runtime: Arc<GoogleRuntime>,
}

impl GoogleCalendar {
    pub fn new() -> Self {
        Self::default()
    }

    /// The connector's context over `caps` (fails when its settings are malformed).
    pub fn context(&self, caps: &Capabilities) -> Result<Ctx, ConnectorError> {
        Ctx::new(caps.clone(), self.runtime.clone())
    }

    /// Runs a pass for every due connection now and waits for them (the demo and tests).
    pub async fn sync_due(&self, caps: &Capabilities) -> Result<(), ConnectorError> {
        worker::run_due(&Arc::new(self.context(caps)?)).await
    }
}

impl Connector for GoogleCalendar {
    fn id(&self) -> &'static str {
        CONNECTOR
    }

    fn contract(&self) -> BuiltInContract {
        BuiltInContract {
            manifest: include_str!("../../../schemas/google-calendar/manifest.json"),
            files: &[
                (
                    "diary-entry.json",
                    include_str!("../../../schemas/google-calendar/diary-entry.json"),
                ),
                (
                    "event.json",
                    include_str!("../../../schemas/google-calendar/event.json"),
                ),
                (
                    "event-time.json",
                    include_str!("../../../schemas/google-calendar/event-time.json"),
                ),
            ],
        }
    }

    fn sealed_purposes(&self) -> &'static [&'static str] {
        &[store::SEAL_REFRESH, store::SEAL_EVENT_SECRET]
    }

    fn switch_off_options(&self) -> &'static [SwitchOffOption] {
        &[
            SwitchOffOption {
                name: "delete_events",
                label: "Also delete the events scopegate created in the fee earners' calendars",
            },
            SwitchOffOption {
                name: switch_off::DISCONNECT_ACCOUNTS,
                label: "Also disconnect every fee earner's Google account (revoke scopegate's access at Google)",
            },
        ]
    }

    fn openapi(&self) -> Option<scopegate_contract::utoipa::openapi::OpenApi> {
        Some(openapi::paths())
    }

    fn settings_routes(&self) -> Option<scopegate_contract::axum::Router<Capabilities>> {
        Some(routes::settings(self.runtime.clone()))
    }

    fn public_routes(&self) -> Option<scopegate_contract::axum::Router<Capabilities>> {
        Some(routes::public(self.runtime.clone()))
    }

    fn settings_panel(&self) -> Option<SettingsPanel> {
        Some(SettingsPanel {
            title: "Google Calendar",
            intro: "Each fee earner connects their own Google account. Your diary entries appear there with only the matter name, the time and the description.",
            script: include_str!("../assets/settings.js"),
        })
    }

    fn settings(&self) -> &'static [SettingSpec] {
        settings::SPECS
    }

    fn available(&self, caps: &Capabilities) -> bool {
        caps.setting("client_id").is_some()
    }

    fn switch_off<'a>(
        &'a self,
        caps: &'a Capabilities,
        grant: FirmGrant,
        chosen: &'a [&'static str],
    ) -> Option<BoxFuture<'a, Result<Value, ConnectorError>>> {
        Some(Box::pin(async move {
            let ctx = self.context(caps)?;
            let report = switch_off::after_switch_off(
                &ctx,
                &grant,
                chosen.contains(&"delete_events"),
                chosen.contains(&switch_off::DISCONNECT_ACCOUNTS),
            )
            .await?;
            Ok(serde_json::to_value(report).expect("report serialises"))
        }))
    }

    fn operator_command<'a>(
        &'a self,
        caps: &'a Capabilities,
        grant: FirmGrant,
        args: &'a [String],
    ) -> Option<BoxFuture<'a, Result<String, ConnectorError>>> {
        Some(Box::pin(async move {
            let ctx = self.context(caps)?;
            cli::run(&ctx, &grant, args).await
        }))
    }

    fn recipient_accounts<'a>(
        &'a self,
        caps: &'a Capabilities,
        grant: FirmGrant,
    ) -> Option<BoxFuture<'a, Result<Vec<RecipientAccount>, ConnectorError>>> {
        Some(Box::pin(async move {
            let ctx = self.context(caps)?;
            account::recipient_accounts(&ctx, &grant).await
        }))
    }

    fn background(&self, caps: Capabilities) -> Option<BoxFuture<'static, ()>> {
        let runtime = self.runtime.clone();
        Some(Box::pin(async move {
            match Ctx::new(caps, runtime) {
                Ok(ctx) => worker::run(Arc::new(ctx)).await,
                Err(e) => tracing::error!(error = %e, "Google Calendar sync not started"),
            }
        }))
    }
}

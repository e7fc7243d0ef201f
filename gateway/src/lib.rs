//! scopegate: the gateway every byte of a law firm's data passes through on
//! its way to a third party. Opt-in per firm and connector, per-grant
//! credentials, schema-driven minimal projections, and a hash-chained
//! outbound log written before anything leaves.
//!
//! # A tour of the rule
//!
//! Firm data leaves only through an active grant, only as its schema's
//! projection, only after a committed outbound record; the firm comes from
//! the credential, never a parameter. Follow one vendor request:
//!
//! 1. [`connectors::registered`] is the list of connectors; nothing else in
//!    this crate names one.
//!    [`app::Application::build`] compiles their contracts into the
//!    [`catalogue`] and asks the core for each connector's
//!    [`scopegate_contract::Capabilities`].
//! 2. [`http::router`] mounts each connector's routes behind
//!    [`http::vendor_auth`]: the bearer token resolves in the [`registry`] to
//!    its grant, and [`capabilities::grant_for_token`] mints the
//!    [`scopegate_contract::FirmGrant`] the handler receives (refused if the
//!    firm consented to an older contract, or the token is another connector's).
//! 3. The connector (its own crate under `connectors/`) can only read through
//!    `ProjectedReader` (the columns its schemas name, in that firm's database,
//!    see [`tenancy`] and [`projection`]), check what it built against its
//!    schema (a `CheckedPayload`), and hand that to `AuditedSender`, which
//!    commits the [`outbound_log`] record of exactly those bytes before
//!    returning the `LoggedBody` its handler must return.
//! 4. Errors come back as `ConnectorError`s, rendered here as
//!    [`http::problem::Problem`]s (RFC 9457).
//!
//! The settings page ([`http::settings`], [`http::admin`], [`accounts`]) is
//! where firms switch grants on and off (the consent ledger), issue
//! credentials and read their outbound log; [`cli`] is the operator's side.

pub mod alert_webhook;
mod allocator;
pub mod app;
pub mod cli;
pub mod config;
pub mod connector_host;
pub mod connectors;
pub mod http;
pub mod metrics;
pub mod outbound_export;
pub mod recipient_accounts;
pub mod service_logs;
pub mod telemetry;

pub use scopegate_core::{
    access_trail, accounts, backup, capabilities, catalogue, clock, keys, outbound_log, privacy,
    projection, registry, reseal, secrets, security, tenancy,
};

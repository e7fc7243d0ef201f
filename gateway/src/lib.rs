//! scopegate: the gateway every byte of a law firm's data passes through on
//! its way to a third party. Opt-in per firm and connector, per-grant
//! credentials, schema-driven minimal projections, and a hash-chained
//! outbound log written before anything leaves.

pub mod accounts;
pub mod app;
pub mod catalogue;
pub mod cli;
pub mod clock;
pub mod config;
pub mod google;
pub mod http;
pub mod keys;
pub mod outbound_log;
pub mod projection;
pub mod registry;
pub mod secrets;
pub mod telemetry;
pub mod tenancy;

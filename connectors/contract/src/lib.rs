//! The contract every scopegate connector speaks, and the only crate a
//! connector depends on for firm data. It holds the capabilities a connector
//! may use, nothing more:
//!
//! * [`Schema`] / [`CheckedPayload`]: a payload that only a schema check makes;
//! * [`FirmGrant`]: an opaque grant handle only the core can mint (from a
//!   resolved token, a settings session or a background lease);
//! * [`ProjectedReader`]: schema-derived reads for that one grant;
//! * [`AuditedSender`]: commit the send record, send exactly the checked
//!   bytes, record the result;
//! * [`LoggedBody`]: what a vendor-facing handler returns, made only by
//!   logging a payload;
//! * [`InboundWriter`]: validated writes (fees), logged as inbound;
//! * [`ConnectorError`]: mapped by the gateway to problem+json;
//! * [`Connector`]: manifest, routes, background work.
//!
//! There is no database driver, firm pool, registry or HTTP client here:
//! a connector that wants firm data has to ask through these traits.

mod capabilities;
mod connector;
mod error;
mod manifest;
mod schema;
mod vendor;

pub use capabilities::{
    AuditedSender, BoxFuture, Capabilities, CapabilityParts, ChangePage, FeeOutcome, GrantLeases,
    InboundWriter, ProjectedReader, Reply,
};
pub use connector::{BuiltInContract, Connector, SwitchOffOption};
pub use error::ConnectorError;
pub use manifest::{canonical_json, ConnectorContract, ContractError, Manifest};
pub use schema::{CheckedPayload, Schema, SchemaViolation};
pub use scopegate_mint::{FirmGrant, LoggedBody, Principal};
pub use vendor::Vendor;

/// Protocol crates connectors share, re-exported so their versions match the gateway's.
pub use axum;
pub use serde_json;
pub use utoipa;

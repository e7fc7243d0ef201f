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
//! * [`PseudonymousIds`]: the record ids each grant's principal is shown;
//! * [`GrantRecords`]: the connector's own records per grant, sealed secrets
//!   bound to the grant, and single-use parked consents;
//! * [`AuditedSender::call`]: a third party's API called by the core (the
//!   connector holds no HTTP client);
//! * [`SettingsUser`]: the signed-in settings user a settings route acts for;
//! * [`ConnectorError`]: mapped by the gateway to problem+json;
//! * [`Connector`]: manifest, routes, background work.
//!
//! There is no database driver, firm pool, registry or HTTP client here:
//! a connector that wants firm data has to ask through these traits.

pub mod calls;
mod capabilities;
pub mod choices;
mod connector;
mod error;
mod future;
mod manifest;
mod records;
mod schema;
mod settings;
mod vendor;

pub use capabilities::{
    AuditedSender, BoxFuture, Capabilities, CapabilityParts, ChangePage, ChangedId, ChangedIds,
    FeeOutcome, GrantIdMap, GrantLeases, InboundWriter, ProjectedReader, PseudonymousIds, Reply,
};
pub use connector::{BuiltInContract, Connector, RecipientAccount, SettingsPanel, SwitchOffOption};
pub use error::ConnectorError;
pub use manifest::{canonical_json, ConnectorContract, ContractError, Manifest};
pub use records::{GrantRecords, Parked, Record, RecordWrite};
pub use schema::{CheckedPayload, Schema, SchemaViolation};
pub use scopegate_mint::{FirmGrant, LoggedBody, Principal};
pub use settings::{Colleague, SettingSpec, SettingsUser};
pub use vendor::Vendor;

/// SHA-256 in lower-case hex: how payloads are named in the outbound log, and
/// the only form in which issued secrets and tokens are stored.
pub fn sha256_hex(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes.as_ref()))
}

/// Compares two secrets (a token, a cookie's value) in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

/// Protocol crates connectors share, re-exported so their versions match the gateway's.
pub use axum;
pub use secrecy;
pub use serde_json;
pub use utoipa;

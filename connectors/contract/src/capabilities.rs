//! What a connector may do with firm data, and nothing more. The core
//! implements these traits for one connector at a time; a connector receives
//! them bundled as [`Capabilities`] (the state of its routes and its
//! background job). Every method takes a [`FirmGrant`] the connector cannot
//! forge, and everything that leaves takes a [`CheckedPayload`].

use crate::calls::{Answer, Call};
use crate::records::GrantRecords;
use crate::{CheckedPayload, ConnectorError, FirmGrant, LoggedBody, Schema};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use crate::future::BoxFuture;

/// Rows read through a projection, oldest change first.
#[derive(Debug, Clone, Default)]
pub struct ChangePage {
    /// Each row holds exactly its schema's fields.
    pub items: Vec<Value>,
    /// The `id` of each row (what the outbound log names).
    pub record_ids: Vec<String>,
    /// More rows changed after the last one.
    pub has_more: bool,
    /// The firm's minimisation variant the rows were read under: `None` for
    /// the schemas as written. A connector that keeps what it sent notices a
    /// changed choice here (and re-sends under the new variant).
    pub variant: Option<String>,
}

/// A row's `id` and `change_seq`, for rows a connector only needs to notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedId {
    pub id: String,
    pub change_seq: i64,
}

/// Rows by id, and how far the table's changes went when they were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedIds {
    pub ids: Vec<ChangedId>,
    /// The table's highest `change_seq`, read before the ids: every row up to
    /// it was there to be read (0 for an empty table). A read bounded by it
    /// afterwards sees the same range.
    pub last_change: i64,
}

/// Reads a firm's database through the connector's table-bound schemas only.
///
/// The filtered reads name a `field` of the schema that is bound to a column
/// of its source table (not of a join) and compare it, as text, with `value`.
pub trait ProjectedReader: Send + Sync {
    /// Rows of `schema` whose `change_seq` is above `after`, at most `limit`.
    fn changes<'a>(
        &'a self,
        grant: &'a FirmGrant,
        schema: &'a str,
        after: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<ChangePage, ConnectorError>>;

    /// As [`ProjectedReader::changes`], only the rows whose `field` is `value`
    /// (e.g. one fee earner's diary entries, without reading the others') and
    /// whose `change_seq` is at most `through`.
    #[allow(clippy::too_many_arguments)]
    fn changes_where<'a>(
        &'a self,
        grant: &'a FirmGrant,
        schema: &'a str,
        field: &'a str,
        value: &'a str,
        after: i64,
        through: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<ChangePage, ConnectorError>>;

    /// The `id` and `change_seq` (fields the schema must have) of rows whose
    /// `change_seq` is above `after` and at most `through`, and whose `field`
    /// is not `value`, oldest first, at most `limit`: rows a connector must
    /// notice leaving its view (an entry handed to another fee earner)
    /// without reading what they hold.
    #[allow(clippy::too_many_arguments)]
    fn changed_ids_where_not<'a>(
        &'a self,
        grant: &'a FirmGrant,
        schema: &'a str,
        field: &'a str,
        value: &'a str,
        after: i64,
        through: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<ChangedIds, ConnectorError>>;
}

/// A response to the grant's principal, as the outbound log names it.
#[derive(Debug, Clone)]
pub struct Reply<'a> {
    pub method: &'a str,
    pub route: &'a str,
    pub status: StatusCode,
    /// Ids of the firm records the body is about.
    pub record_ids: Vec<String>,
}

/// The only way firm data leaves: commit the send record, send exactly the
/// checked bytes, record the result.
pub trait AuditedSender: Send + Sync {
    /// A vendor-facing response body, logged before it is returned.
    fn respond<'a>(
        &'a self,
        grant: &'a FirmGrant,
        reply: Reply<'a>,
        payload: CheckedPayload,
    ) -> BoxFuture<'a, Result<LoggedBody, ConnectorError>>;

    /// A problem (`application/problem+json`) whose detail derives from firm
    /// data (e.g. "no such matter"): logged like any other response.
    fn respond_problem<'a>(
        &'a self,
        grant: &'a FirmGrant,
        reply: Reply<'a>,
        field: &'a str,
        detail: &'a str,
    ) -> BoxFuture<'a, Result<LoggedBody, ConnectorError>>;

    /// POSTs the checked bytes to `url` (JSON) with the core's HTTP client
    /// (timeouts, no redirects); returns the status the receiver answered.
    fn deliver<'a>(
        &'a self,
        grant: &'a FirmGrant,
        url: &'a str,
        record_ids: Vec<String>,
        payload: CheckedPayload,
    ) -> BoxFuture<'a, Result<u16, ConnectorError>>;

    /// Calls a third party's API (see [`crate::calls`]): [`ConnectorError::Stopped`]
    /// when the grant is off (unless the call is a body-less clean-up).
    fn call<'a>(
        &'a self,
        grant: &'a FirmGrant,
        call: Call,
    ) -> BoxFuture<'a, Result<Answer, ConnectorError>>;
}

/// What posting a fee came to.
#[derive(Debug, Clone)]
pub enum FeeOutcome {
    /// Written now; the stored fee, checked against the result schema.
    Created(CheckedPayload),
    /// This idempotency key already posted the same fee: the original.
    Replayed(CheckedPayload),
    /// The fee names a matter this firm does not have.
    UnknownMatter,
    /// The key was used before with a different body.
    KeyReused,
}

/// Validated writes into the firm's database, logged as inbound.
pub trait InboundWriter: Send + Sync {
    /// Posts a fee once per idempotency key; the stored fee comes back checked
    /// against `result_schema`.
    fn post_fee<'a>(
        &'a self,
        grant: &'a FirmGrant,
        route: &'a str,
        fee: CheckedPayload,
        idempotency_key: &'a str,
        result_schema: &'a Schema,
    ) -> BoxFuture<'a, Result<FeeOutcome, ConnectorError>>;
}

/// One grant's view of the firm's record ids (see [`PseudonymousIds`]).
pub trait GrantIdMap: Send + Sync {
    /// The id the grant's principal is shown for the firm record `real`
    /// (`None` when `real` is not a record id: nothing may then be shown).
    fn disguise(&self, real: &str) -> Option<String>;
    /// The firm record id behind an id the principal sent (`None` when it is
    /// not shaped like one). Whether a record has it is for the firm database to say.
    fn reveal(&self, shown: &str) -> Option<String>;
}

/// Record ids as each grant's principal sees them: a keyed, reversible
/// mapping per grant, so two grants never see the same id for one record and
/// a leaked id names the grant it leaked from. Map every id on the way out
/// and back on the way in; the outbound log names the real ids.
pub trait PseudonymousIds: Send + Sync {
    fn for_grant<'a>(
        &'a self,
        grant: &'a FirmGrant,
    ) -> BoxFuture<'a, Result<Arc<dyn GrantIdMap>, ConnectorError>>;
}

/// Background work: the grants to act for, and durable per-grant cursors.
pub trait GrantLeases: Send + Sync {
    /// This connector's enabled, currently-consented grants, as lease handles.
    fn active_grants(&self) -> BoxFuture<'_, Result<Vec<FirmGrant>, ConnectorError>>;
    /// Whether the grant is on now, for the contract the handle names.
    fn is_active<'a>(&'a self, grant: &'a FirmGrant)
        -> BoxFuture<'a, Result<bool, ConnectorError>>;
    /// A named cursor of the grant (0 when never set).
    fn cursor<'a>(
        &'a self,
        grant: &'a FirmGrant,
        name: &'a str,
    ) -> BoxFuture<'a, Result<i64, ConnectorError>>;
    /// Moves a cursor from `from` to `to`; false when another instance moved it first.
    fn advance_cursor<'a>(
        &'a self,
        grant: &'a FirmGrant,
        name: &'a str,
        from: i64,
        to: i64,
    ) -> BoxFuture<'a, Result<bool, ConnectorError>>;
}

/// Everything a connector is given, for one connector.
#[derive(Clone)]
pub struct Capabilities {
    reader: Arc<dyn ProjectedReader>,
    sender: Arc<dyn AuditedSender>,
    inbound: Arc<dyn InboundWriter>,
    leases: Arc<dyn GrantLeases>,
    records: Arc<dyn GrantRecords>,
    ids: Arc<dyn PseudonymousIds>,
    schemas: Arc<BTreeMap<String, Schema>>,
    settings: Arc<BTreeMap<String, String>>,
    secrets: Arc<BTreeMap<String, SecretString>>,
    public_url: Arc<str>,
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// The parts [`Capabilities`] is made of (built by the core).
pub struct CapabilityParts {
    pub reader: Arc<dyn ProjectedReader>,
    pub sender: Arc<dyn AuditedSender>,
    pub inbound: Arc<dyn InboundWriter>,
    pub leases: Arc<dyn GrantLeases>,
    pub records: Arc<dyn GrantRecords>,
    pub ids: Arc<dyn PseudonymousIds>,
    pub schemas: BTreeMap<String, Schema>,
    /// The operator's settings for this connector (`[connector.<id>]`).
    pub settings: BTreeMap<String, String>,
    /// Its secret settings (from the environment only).
    pub secrets: BTreeMap<String, SecretString>,
    /// The URL browsers and third parties reach the gateway at (no trailing `/`).
    pub public_url: String,
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl Capabilities {
    pub fn new(parts: CapabilityParts) -> Self {
        Self {
            reader: parts.reader,
            sender: parts.sender,
            inbound: parts.inbound,
            leases: parts.leases,
            records: parts.records,
            ids: parts.ids,
            schemas: Arc::new(parts.schemas),
            settings: Arc::new(parts.settings),
            secrets: Arc::new(parts.secrets),
            public_url: parts.public_url.trim_end_matches('/').into(),
            stopping: parts.stopping,
        }
    }

    pub fn reader(&self) -> &dyn ProjectedReader {
        self.reader.as_ref()
    }
    pub fn sender(&self) -> &dyn AuditedSender {
        self.sender.as_ref()
    }
    pub fn inbound(&self) -> &dyn InboundWriter {
        self.inbound.as_ref()
    }
    pub fn leases(&self) -> &dyn GrantLeases {
        self.leases.as_ref()
    }
    pub fn records(&self) -> &dyn GrantRecords {
        self.records.as_ref()
    }
    pub fn ids(&self) -> &dyn PseudonymousIds {
        self.ids.as_ref()
    }

    /// One of the connector's compiled schemas (a missing one is a bug: 500).
    pub fn schema(&self, name: &str) -> Result<&Schema, ConnectorError> {
        self.schemas
            .get(name)
            .ok_or_else(|| ConnectorError::Internal(format!("no schema {name}")))
    }

    /// An operator setting of this connector.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// A secret setting of this connector.
    pub fn secret(&self, key: &str) -> Option<&SecretString> {
        self.secrets.get(key)
    }

    /// The URL browsers and third parties reach the gateway at (no trailing `/`).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Whether cookies set for the browser must be `Secure` (the gateway is reached over HTTPS).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// True once the gateway is shutting down.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves when the gateway starts shutting down.
    pub async fn stopped(&self) {
        let mut stopping = self.stopping.clone();
        let _ = stopping.wait_for(|s| *s).await;
    }
}

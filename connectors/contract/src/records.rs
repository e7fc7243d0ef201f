//! A connector's own durable records, kept by the core in the registry: one
//! namespace per grant (so nothing of one firm is reachable from another
//! firm's grant), values as JSON, each entry versioned for compare-and-swap.
//! Secrets a connector must keep (a third party's refresh token) are sealed
//! by the core with the master key, bound to the grant, the record that keeps
//! them and a purpose, so a sealed value copied into another grant's records,
//! or into another record of the same grant, does not open. Single-use
//! parked states carry a browser through a third party's consent screen and
//! back, naming the grant they were parked for.

use crate::future::BoxFuture;
use crate::{ConnectorError, FirmGrant};
use serde_json::Value;
use std::time::Duration;

/// One record of a grant.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub key: String,
    pub value: Value,
    /// 1 when created; each write adds one.
    pub version: i64,
}

/// One change in an all-or-nothing [`GrantRecords::write`].
#[derive(Debug, Clone)]
pub enum RecordWrite {
    /// Sets the value, whatever was there.
    Put { key: String, value: Value },
    /// Sets the value only if the record is at `expected` (`None`: only if absent).
    Swap {
        key: String,
        value: Value,
        expected: Option<i64>,
    },
    /// Removes the record (nothing if absent).
    Delete { key: String },
}

/// A consent parked with [`GrantRecords::park`], taken back once.
#[derive(Debug, Clone)]
pub struct Parked {
    /// The grant it was parked for (whatever its state now: check before use).
    pub grant: FirmGrant,
    pub payload: Vec<u8>,
}

/// The connector's records, its sealed secrets and its parked consents.
pub trait GrantRecords: Send + Sync {
    /// One record.
    fn get<'a>(
        &'a self,
        grant: &'a FirmGrant,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Record>, ConnectorError>>;

    /// The records among `keys` that exist.
    fn get_many<'a>(
        &'a self,
        grant: &'a FirmGrant,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, ConnectorError>>;

    /// Records whose key starts with `prefix`, in key order, after `after`, at most `limit`.
    fn list<'a>(
        &'a self,
        grant: &'a FirmGrant,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Record>, ConnectorError>>;

    /// Applies every write in one transaction; `false` (and nothing written)
    /// when a [`RecordWrite::Swap`] found another version.
    fn write<'a>(
        &'a self,
        grant: &'a FirmGrant,
        writes: Vec<RecordWrite>,
    ) -> BoxFuture<'a, Result<bool, ConnectorError>>;

    /// Seals a secret for this grant and purpose (text safe to keep in a
    /// record), to be kept in the record `record_key` and opened only there.
    fn seal(
        &self,
        grant: &FirmGrant,
        record_key: &str,
        purpose: &str,
        secret: &[u8],
    ) -> Result<String, ConnectorError>;

    /// Opens what [`GrantRecords::seal`] made for the same grant, record and
    /// purpose.
    fn open(
        &self,
        grant: &FirmGrant,
        record_key: &str,
        purpose: &str,
        sealed: &str,
    ) -> Result<Vec<u8>, ConnectorError>;

    /// Parks `payload` (sealed at rest) for `ttl` under a new unguessable state,
    /// `prefix` + random; the state is returned, never stored in plain.
    fn park<'a>(
        &'a self,
        grant: &'a FirmGrant,
        prefix: &'a str,
        payload: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<String, ConnectorError>>;

    /// Takes a parked state back: once, and only before it expires.
    fn take<'a>(&'a self, state: &'a str) -> BoxFuture<'a, Result<Option<Parked>, ConnectorError>>;
}

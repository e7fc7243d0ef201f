//! The two handles that carry authority, and the only functions that make them.
//!
//! * [`FirmGrant`]: "this code may act for firm F through grant G of connector C",
//!   minted by the core from a resolved access token, a settings session or a
//!   background lease: never from a request parameter.
//! * [`LoggedBody`]: a response whose exact bytes already have a committed
//!   send record in the outbound log.
//!
//! Connectors depend on `scopegate-contract`, which re-exports these *types*
//! but not the [`mint`] module. A connector crate does not list this crate as a
//! dependency, so it can hold, read and pass these handles but cannot make
//! one: the fields are private, and the constructors live in [`mint`]
//! (see the compile-fail tests in `connectors/contract/tests/compile_fail/`).

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Who the grant was resolved for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A third party's credential (via its access token).
    Credential(String),
    /// A signed-in settings user of the firm.
    Session(String),
    /// The gateway's own background work for the grant (a sync or export lease).
    Lease(String),
    /// The operator, on the command line (the firm named by `--firm`).
    Operator(String),
}

/// One firm's active grant of one connector, as resolved by the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmGrant {
    grant_id: String,
    firm_id: String,
    connector: String,
    schema_hash: String,
    scopes: Vec<String>,
    principal: Principal,
    /// The registry generation the core resolved it under, when it read one.
    resolved_under: Option<i64>,
}

impl FirmGrant {
    pub fn grant_id(&self) -> &str {
        &self.grant_id
    }
    pub fn firm_id(&self) -> &str {
        &self.firm_id
    }
    pub fn connector(&self) -> &str {
        &self.connector
    }
    /// The data contract the firm consented to (hash of manifest and schemas).
    pub fn schema_hash(&self) -> &str {
        &self.schema_hash
    }
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
    pub fn principal(&self) -> &Principal {
        &self.principal
    }
    /// The registry generation the core resolved this handle under (an
    /// access token's); what the core read under it may be reused while the
    /// generation stands.
    pub fn resolved_under(&self) -> Option<i64> {
        self.resolved_under
    }
    /// How the outbound log names who the data went to.
    pub fn recipient(&self) -> String {
        match &self.principal {
            Principal::Credential(id) => format!("credential {id}"),
            Principal::Session(id) => format!("settings user {id}"),
            Principal::Lease(id) => format!("lease {id}"),
            Principal::Operator(actor) => format!("operator {actor}"),
        }
    }
}

/// A response body already recorded in the outbound log (send and result).
#[derive(Debug)]
pub struct LoggedBody {
    status: StatusCode,
    content_type: &'static str,
    bytes: Vec<u8>,
    send_seq: i64,
    headers: Vec<(HeaderName, &'static str)>,
}

impl LoggedBody {
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The exact bytes that will be sent (and whose SHA-256 the log holds).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The `seq` of its send record in the firm's outbound log.
    pub fn send_seq(&self) -> i64 {
        self.send_seq
    }
    /// Adds a fixed header. Only `'static` text: a header cannot carry firm data.
    pub fn with_header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for LoggedBody {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for (name, value) in self.headers {
            headers.append(name, HeaderValue::from_static(value));
        }
        response
    }
}

/// The constructors. Only the core depends on this crate directly.
pub mod mint {
    use super::*;

    /// Mints a grant handle; the caller (the core) has checked that the grant is
    /// enabled and consented at `schema_hash`, for the firm its principal belongs to.
    pub fn grant(
        grant_id: &str,
        firm_id: &str,
        connector: &str,
        schema_hash: &str,
        scopes: Vec<String>,
        principal: Principal,
    ) -> FirmGrant {
        FirmGrant {
            grant_id: grant_id.to_string(),
            firm_id: firm_id.to_string(),
            connector: connector.to_string(),
            schema_hash: schema_hash.to_string(),
            scopes,
            principal,
            resolved_under: None,
        }
    }

    /// The same handle, resolved under registry generation `generation`.
    pub fn resolved_under(grant: FirmGrant, generation: i64) -> FirmGrant {
        FirmGrant {
            resolved_under: Some(generation),
            ..grant
        }
    }

    /// Wraps bytes whose send record `send_seq` is committed.
    pub fn logged_body(
        status: StatusCode,
        content_type: &'static str,
        bytes: Vec<u8>,
        send_seq: i64,
    ) -> LoggedBody {
        LoggedBody {
            status,
            content_type,
            bytes,
            send_seq,
            headers: Vec::new(),
        }
    }
}

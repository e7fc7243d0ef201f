// A vendor-facing handler returns firm data it never logged.
use scopegate_contract::axum::http::StatusCode;
use scopegate_contract::{ConnectorError, LoggedBody};

async fn handler() -> Result<LoggedBody, ConnectorError> {
    let secret_rows = b"{\"id_number\":\"8001015009087\"}".to_vec();
    Ok(LoggedBody::from((StatusCode::OK, secret_rows)))
}

fn main() {}

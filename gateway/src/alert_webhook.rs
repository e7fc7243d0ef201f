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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use scopegate_core::security::{EventKind, NewSecurityEvent};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A receiver that answers 503 to the first two attempts, then takes the event.
    #[tokio::test]
    async fn a_failed_delivery_is_retried_with_backoff_and_signed() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let (got, mut received) = mpsc::unbounded_channel::<(String, Vec<u8>)>();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post({
                let attempts = attempts.clone();
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                    if attempts.fetch_add(1, Ordering::SeqCst) < 2 {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let signed = headers[SIGNATURE_HEADER].to_str().unwrap().to_string();
                    got.send((signed, body.to_vec())).unwrap();
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let key = "a-webhook-key-of-some-length";
        let (queue, _task) = start(AlertWebhook {
            url: url.into(),
            key: key.to_string().into(),
        });
        let event = SecurityEvent::new(NewSecurityEvent {
            firm_id: "firm-a".into(),
            kind: EventKind::DecoyCredential,
            grant_id: None,
            connector: None,
            tripwire_id: Some("t1".into()),
            source_ip: None,
            detail: "decoy".into(),
        });
        let started = std::time::Instant::now();
        queue.send(event.clone()).await.unwrap();
        let (signed, body) = tokio::time::timeout(Duration::from_secs(5), received.recv())
            .await
            .unwrap()
            .unwrap();
        // Two waits: 250 ms, then 500 ms.
        assert!(started.elapsed() >= Duration::from_millis(750));
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert_eq!(signed, signature(key.as_bytes(), &body));
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent["id"], event.id.as_str());
        assert_eq!(sent["kind"], "decoy_credential");
    }
}

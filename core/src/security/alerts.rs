//! Raising an alert: the event is logged at error level, counted, handed to
//! the webhook queue (bounded: when it is full the webhook is dropped with a
//! log line, the event is still stored and counted) and stored in the
//! registry by a task of its own, so the request that tripped it answers as
//! fast as it would have without the tripwire.

use super::events::{NewSecurityEvent, SecurityEvent};
use crate::registry::Registry;
use tokio::sync::mpsc;

/// How many events may wait for the webhook at once.
pub const WEBHOOK_QUEUE: usize = 1024;

/// Where alerts go; cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    registry: Registry,
    webhook: Option<mpsc::Sender<SecurityEvent>>,
}

impl Alerts {
    /// Alerts stored in `registry`, and queued for the webhook when there is one.
    pub fn new(registry: Registry, webhook: Option<mpsc::Sender<SecurityEvent>>) -> Self {
        Self { registry, webhook }
    }

    /// Raises `event` without waiting for anything; returns it as raised.
    pub fn raise(&self, event: NewSecurityEvent) -> SecurityEvent {
        let event = SecurityEvent::new(event);
        tracing::error!(
            event_id = %event.id,
            kind = event.kind.as_str(),
            firm_id = %event.firm_id,
            grant_id = event.grant_id.as_deref().unwrap_or("-"),
            connector = event.connector.as_deref().unwrap_or("-"),
            tripwire_id = event.tripwire_id.as_deref().unwrap_or("-"),
            source_ip = event.source_ip.as_deref().unwrap_or("-"),
            detail = %event.detail,
            "security event"
        );
        metrics::counter!("scopegate_security_events_total", "kind" => event.kind.as_str())
            .increment(1);
        metrics::counter!("scopegate_tripwire_alerts_total").increment(1);
        if let Some(queue) = &self.webhook {
            if let Err(e) = queue.try_send(event.clone()) {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "the webhook queue is full",
                    mpsc::error::TrySendError::Closed(_) => "the webhook sender has stopped",
                };
                tracing::warn!(event_id = %event.id, "security event not sent to the alert webhook: {why}");
                metrics::counter!("scopegate_alert_webhook_dropped_total").increment(1);
            }
        }
        let registry = self.registry.clone();
        let stored = event.clone();
        tokio::spawn(async move {
            if let Err(e) = registry.insert_security_event(&stored).await {
                tracing::error!(event_id = %stored.id, error = %e, "security event could not be stored");
            }
        });
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::EventKind;

    fn probe(n: usize) -> NewSecurityEvent {
        NewSecurityEvent {
            firm_id: "firm-a".into(),
            kind: EventKind::OutOfScope,
            grant_id: Some("grant-a".into()),
            connector: Some("accounting".into()),
            tripwire_id: None,
            source_ip: None,
            detail: format!("probe {n}"),
        }
    }

    #[tokio::test]
    async fn a_full_webhook_queue_drops_the_webhook_but_every_event_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("registry.db").display());
        let registry = Registry::connect_and_migrate(&url).await.unwrap();
        sqlx::query("INSERT INTO firms (id, name, data_url, created_at) VALUES ('firm-a', 'A', 'sqlite://x', 0)")
            .execute(registry.pool())
            .await
            .unwrap();
        let (queue, mut webhook) = mpsc::channel(1);
        let alerts = Alerts::new(registry.clone(), Some(queue));
        let raised: Vec<SecurityEvent> = (0..3).map(|n| alerts.raise(probe(n))).collect();
        assert_eq!(webhook.recv().await.unwrap(), raised[0]);
        assert!(
            webhook.try_recv().is_err(),
            "the queue held one; the rest were dropped"
        );
        let stored = loop {
            let page = registry.security_events("firm-a", None, 10).await.unwrap();
            if page.events.len() == 3 {
                break page.events;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        for event in &raised {
            assert!(stored.contains(event), "{event:?}");
        }
    }
}

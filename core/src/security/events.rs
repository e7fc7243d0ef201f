//! Security-event rows: what tripped, for which firm (and grant), when.
//! Read per firm only, newest first, a page at a time.

use crate::clock::now_ms;
use crate::registry::{Registry, StoreResult};
use sqlx::Row;

/// What tripped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A decoy credential was presented at the token endpoints.
    DecoyCredential,
    /// A valid token asked for a route or scope its grant does not have.
    OutOfScope,
    /// An id that maps back to no record of the grant's firm (another grant's, or made up).
    ForgedId,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [Self::DecoyCredential, Self::OutOfScope, Self::ForgedId];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DecoyCredential => "decoy_credential",
            Self::OutOfScope => "out_of_scope",
            Self::ForgedId => "forged_id",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// An event about to be raised (see [`crate::security::Alerts::raise`]).
#[derive(Debug, Clone)]
pub struct NewSecurityEvent {
    pub firm_id: String,
    pub kind: EventKind,
    pub grant_id: Option<String>,
    pub connector: Option<String>,
    pub tripwire_id: Option<String>,
    pub source_ip: Option<String>,
    /// What happened, in words; never a secret.
    pub detail: String,
}

/// A raised security event, as stored, listed and sent to the webhook.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SecurityEvent {
    pub id: String,
    pub firm_id: String,
    pub kind: EventKind,
    pub grant_id: Option<String>,
    pub connector: Option<String>,
    pub tripwire_id: Option<String>,
    pub source_ip: Option<String>,
    pub detail: String,
    /// Unix milliseconds.
    pub at: i64,
}

impl SecurityEvent {
    /// Stamps a new event with its id and time.
    pub fn new(event: NewSecurityEvent) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            firm_id: event.firm_id,
            kind: event.kind,
            grant_id: event.grant_id,
            connector: event.connector,
            tripwire_id: event.tripwire_id,
            source_ip: event.source_ip,
            detail: event.detail,
            at: now_ms(),
        }
    }
}

/// One page of a firm's events, newest first.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventPage {
    pub events: Vec<SecurityEvent>,
    /// Pass back as `before` for the next (older) page; none when this was the last.
    pub next_before: Option<String>,
}

/// The position of an event in newest-first order, as a cursor: `<at>.<id>`.
fn cursor(event: &SecurityEvent) -> String {
    format!("{}.{}", event.at, event.id)
}

/// Reads a cursor made by [`cursor`]; `None` when it is not one.
pub fn parse_cursor(text: &str) -> Option<(i64, String)> {
    let (at, id) = text.split_once('.')?;
    let at = at.parse::<i64>().ok().filter(|at| *at >= 0)?;
    uuid::Uuid::parse_str(id).ok()?;
    Some((at, id.to_string()))
}

impl Registry {
    /// Stores a raised event.
    pub async fn insert_security_event(&self, event: &SecurityEvent) -> StoreResult<()> {
        sqlx::query("INSERT INTO security_events (id, firm_id, kind, grant_id, connector, tripwire_id, source_ip, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&event.id).bind(&event.firm_id).bind(event.kind.as_str()).bind(&event.grant_id)
            .bind(&event.connector).bind(&event.tripwire_id).bind(&event.source_ip).bind(&event.detail).bind(event.at)
            .execute(self.pool()).await?;
        Ok(())
    }

    /// The firm's events older than `before` (all when none), newest first, at most `limit`.
    pub async fn security_events(
        &self,
        firm_id: &str,
        before: Option<(i64, String)>,
        limit: i64,
    ) -> StoreResult<EventPage> {
        let (at, id) = before.unwrap_or((i64::MAX, String::new()));
        let rows = sqlx::query("SELECT id, firm_id, kind, grant_id, connector, tripwire_id, source_ip, detail, at FROM security_events WHERE firm_id = $1 AND (at < $2 OR (at = $2 AND id < $3) OR $3 = '') ORDER BY at DESC, id DESC LIMIT $4")
            .bind(firm_id).bind(at).bind(&id).bind(limit + 1)
            .fetch_all(self.pool()).await?;
        let mut events: Vec<SecurityEvent> = rows
            .iter()
            .filter_map(|r| {
                Some(SecurityEvent {
                    id: r.get("id"),
                    firm_id: r.get("firm_id"),
                    kind: EventKind::parse(&r.get::<String, _>("kind"))?,
                    grant_id: r.get("grant_id"),
                    connector: r.get("connector"),
                    tripwire_id: r.get("tripwire_id"),
                    source_ip: r.get("source_ip"),
                    detail: r.get("detail"),
                    at: r.get("at"),
                })
            })
            .collect();
        let more = events.len() as i64 > limit;
        events.truncate(limit as usize);
        let next_before = if more {
            events.last().map(cursor)
        } else {
            None
        };
        Ok(EventPage {
            events,
            next_before,
        })
    }
}

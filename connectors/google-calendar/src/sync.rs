//! One sync pass over a connection: read the fee earner's diary entries
//! changed since the connection's cursor, and make Google match them, entry
//! by entry, with at most `user_concurrency` calls in flight.
//!
//! Idempotent by construction: the event id is derived from the diary id, the
//! intents of a batch's inserts are committed before any insert (so a crash
//! leaves mappings to retry, and a retried insert answering 409 `duplicate`
//! becomes an update; a later deletion still finds the event), and each
//! entry's last-sent content hash means an unchanged entry costs no call.
//! A batch's results and the cursor past it are committed together, and the
//! next batch is read while the current one's calls are in flight.
//!
//! When the firm changes a minimisation choice (e.g. the matter number as the
//! event title), the next pass notices the new variant on its first read and
//! starts over from the first entry: every event whose content changed (its
//! title) is updated, the others cost no call.

use crate::calls::{Answer, CallError, Caller, Op, Purpose};
use crate::context::Ctx;
use crate::event_id;
use crate::reader::{self, DiaryRow};
use crate::store::{self, Connection};
use crate::tokens::{TokenError, TokenSource};
use chrono::{TimeZone, Utc};
use futures::StreamExt;
use google_calendar3::api::{Event, EventDateTime};
use scopegate_contract::{CheckedPayload, FirmGrant, Schema};
use std::sync::Arc;

/// The user's own entries a batch holds at most (each may cost a call).
const BATCH: usize = 100;
/// Other fee earners' entries a batch reads at most, by id only (see `reader`);
/// past them the batch ends.
const READ_MAX: usize = 2000;

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PassReport {
    pub entries: u64,
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    pub unchanged: u64,
    /// Entries Google refused for good (skipped; the first reason becomes the connection's last error).
    pub refused: u64,
    pub first_refusal: Option<String>,
}

/// The registry change an entry's sync calls for (written with its batch).
enum Effect {
    Sent(String, String, String),
    Removed(String),
    None,
}

enum Outcome {
    Inserted,
    Updated,
    Deleted,
    Unchanged,
    Refused(String),
}

/// The token source of a connection (cached for the process).
pub fn token_source(
    ctx: &Ctx,
    grant: &FirmGrant,
    connection: &Connection,
) -> Result<Arc<TokenSource>, CallError> {
    if let Some(source) = ctx.runtime.token_source(&connection.id) {
        if connection.refresh_token_sealed.as_deref() == Some(source.sealed.as_str()) {
            return Ok(source);
        }
        // Reconnected since this source was cached (maybe through another instance).
        ctx.runtime.forget(&connection.id);
    }
    let source = TokenSource::open(&ctx.caps, grant, connection).map_err(|e| match e {
        TokenError::InvalidGrant => CallError::NeedsReconsent,
        other => CallError::Failed(other.to_string()),
    })?;
    Ok(ctx.runtime.keep_token_source(source))
}

/// Runs one pass over `user`'s connection; the caller must hold its claim.
pub async fn run_pass(ctx: &Ctx, grant: &FirmGrant, user: &str) -> Result<PassReport, CallError> {
    let connection = store::connection_for_user(&ctx.caps, grant, user)
        .await?
        .filter(|c| c.status == "active")
        .ok_or(CallError::Stopped)?;
    if !ctx.caps.leases().is_active(grant).await? {
        return Err(CallError::Stopped);
    }
    let tokens = token_source(ctx, grant, &connection)?;
    let secret = store::grant_secret(&ctx.caps, grant).await?;
    let caller = Caller::new(ctx, grant, &connection, &tokens, Purpose::Sync);
    let event_schema = ctx.caps.schema("event")?;
    let mut cursor = connection.cursor;
    let mut variant = connection.variant.clone();
    let mut report = PassReport::default();
    let mut refusals = Vec::new();
    // The next batch, read while this one's calls are in flight.
    let mut next: Option<(Vec<DiaryRow>, Option<String>)> = None;
    loop {
        let (rows, read_as) = match next.take() {
            Some(batch) => batch,
            None => reader::changed_batch(&ctx.caps, grant, user, cursor, BATCH, READ_MAX).await?,
        };
        if read_as != variant {
            store::restart_for_variant(&ctx.caps, grant, user, read_as.clone()).await?;
            variant = read_as;
            cursor = 0;
            continue;
        }
        let Some(last) = rows.last().map(|r| r.change_seq) else {
            break;
        };
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let mut known = store::mappings_for(&ctx.caps, grant, user, &ids).await?;
        // Intents first, in one transaction: a crash after an insert leaves a mapping to retry.
        let intents = store::BatchWrites {
            intents: rows
                .iter()
                .filter(|r| !r.deleted && !known.contains_key(&r.id))
                .map(|r| (r.id.clone(), event_id::derive(&secret, &r.id)))
                .collect(),
            ..Default::default()
        };
        if !intents.intents.is_empty() {
            store::write_batch(&ctx.caps, grant, user, &intents).await?;
        }
        let work: Vec<(DiaryRow, Option<store::Mapping>)> = rows
            .into_iter()
            .map(|r| {
                let m = known.remove(&r.id);
                (r, m)
            })
            .collect();
        let (caller_ref, secret_ref) = (&caller, secret.as_slice());
        let calls = futures::stream::iter(work)
            .map(
                |(row, mapping)| -> futures::future::BoxFuture<'_, Result<(Outcome, Effect), CallError>> {
                    Box::pin(async move {
                        sync_entry(caller_ref, event_schema, secret_ref, &row, mapping).await
                    })
                },
            )
            .buffer_unordered(ctx.settings.user_concurrency)
            .collect::<Vec<Result<(Outcome, Effect), CallError>>>();
        // Reading the next batch (many rows for a few of this user's) while
        // these calls wait on Google keeps the user's calls flowing between
        // batches. A change meanwhile moves its entry past the cursor, so it
        // is read again later; a failed read is simply made again.
        let prefetch = reader::changed_batch(&ctx.caps, grant, user, last, BATCH, READ_MAX);
        let (outcomes, prefetched) = futures::join!(calls, prefetch);
        next = prefetched.ok();
        let mut first_error = None;
        let mut writes = store::BatchWrites::default();
        for outcome in outcomes {
            report.entries += 1;
            match outcome {
                Ok((outcome, effect)) => {
                    match outcome {
                        Outcome::Inserted => report.inserted += 1,
                        Outcome::Updated => report.updated += 1,
                        Outcome::Deleted => report.deleted += 1,
                        Outcome::Unchanged => report.unchanged += 1,
                        Outcome::Refused(why) => {
                            report.refused += 1;
                            refusals.push(why);
                        }
                    }
                    match effect {
                        Effect::Sent(diary_id, event_id, hash) => {
                            writes.done.push((diary_id, event_id, hash))
                        }
                        Effect::Removed(diary_id) => writes.removed.push(diary_id),
                        Effect::None => {}
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        // What succeeded is kept even when the batch must be retried; the cursor moves only past a whole batch.
        writes.cursor = first_error.is_none().then_some(last);
        store::write_batch(&ctx.caps, grant, user, &writes).await?;
        if let Some(e) = first_error {
            return Err(e);
        }
        cursor = last;
    }
    if let Some(why) = refusals.first() {
        tracing::warn!(connection = %connection.id, refused = refusals.len(), "Google refused some diary entries");
        report.first_refusal = Some(format!(
            "Google refused {} diary entr{}; first: {why}",
            refusals.len(),
            if refusals.len() == 1 { "y" } else { "ies" }
        ));
    }
    Ok(report)
}

/// The Google event for a diary entry, as the JSON body its schema will check.
pub fn event_for(row: &DiaryRow, event_id: &str) -> serde_json::Value {
    let time = |ms: i64| Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    let (start, end) = if row.all_day {
        let first = time(row.starts_at).date_naive();
        let last = time(row.ends_at.max(row.starts_at)).date_naive();
        (
            EventDateTime {
                date: Some(first),
                ..Default::default()
            },
            EventDateTime {
                date: last.succ_opt(),
                ..Default::default()
            },
        )
    } else {
        (
            EventDateTime {
                date_time: Some(time(row.starts_at)),
                time_zone: Some("UTC".into()),
                ..Default::default()
            },
            EventDateTime {
                date_time: Some(time(row.ends_at.max(row.starts_at))),
                time_zone: Some("UTC".into()),
                ..Default::default()
            },
        )
    };
    let event = Event {
        id: Some(event_id.to_string()),
        summary: Some(row.summary.clone()),
        description: Some(row.description.clone()),
        start: Some(start),
        end: Some(end),
        ..Default::default()
    };
    let mut value = serde_json::to_value(&event).expect("event serialises");
    google_calendar3::common::remove_json_null_values(&mut value);
    value
}

async fn sync_entry(
    caller: &Caller<'_>,
    event_schema: &Schema,
    secret: &[u8],
    row: &DiaryRow,
    mapping: Option<store::Mapping>,
) -> Result<(Outcome, Effect), CallError> {
    if row.deleted {
        let Some(mapping) = mapping else {
            return Ok((Outcome::Unchanged, Effect::None));
        };
        let answer = caller
            .call(&Op::Delete(mapping.event_id.clone()), &row.id)
            .await?;
        return Ok(match answer.status {
            200..=299 | 404 | 410 => (Outcome::Deleted, Effect::Removed(row.id.clone())),
            _ => (refused(&answer), Effect::None),
        });
    }
    let event_id = event_id::derive(secret, &row.id);
    // Only a checked payload can be sent: the bytes logged are the bytes checked,
    // and the Calendar API's Event is decoded from them.
    let event = match event_schema.check(&event_for(row, &event_id)) {
        Ok(checked) => checked,
        Err(v) => {
            return Ok((
                Outcome::Refused(format!("the event failed its schema at {v}; not sent")),
                Effect::None,
            ))
        }
    };
    let hash = scopegate_contract::sha256_hex(event.bytes());
    if mapping.as_ref().and_then(|m| m.content_sha256.as_deref()) == Some(hash.as_str()) {
        return Ok((Outcome::Unchanged, Effect::None));
    }
    let known = mapping.as_ref().is_some_and(|m| m.content_sha256.is_some());
    let outcome = if known {
        let answer = caller
            .call(&Op::Update(event_id.clone(), event.clone()), &row.id)
            .await?;
        match answer.status {
            200..=299 => Outcome::Updated,
            404 | 410 => {
                store::put_mapping(
                    &caller.ctx.caps,
                    caller.grant,
                    &caller.connection.firm_user_id,
                    &row.id,
                    &event_id,
                    None,
                )
                .await?;
                insert(caller, row, &event_id, &event).await?
            }
            _ => refused(&answer),
        }
    } else {
        insert(caller, row, &event_id, &event).await?
    };
    let effect = match outcome {
        Outcome::Inserted | Outcome::Updated => Effect::Sent(row.id.clone(), event_id, hash),
        _ => Effect::None,
    };
    Ok((outcome, effect))
}

/// Inserts (its intent is already written); a 409 `duplicate` (an earlier attempt landed) becomes an update.
async fn insert(
    caller: &Caller<'_>,
    row: &DiaryRow,
    event_id: &str,
    event: &CheckedPayload,
) -> Result<Outcome, CallError> {
    let answer = caller.call(&Op::Insert(event.clone()), &row.id).await?;
    Ok(match answer.status {
        200..=299 => Outcome::Inserted,
        409 => {
            let again = caller
                .call(&Op::Update(event_id.to_string(), event.clone()), &row.id)
                .await?;
            match again.status {
                200..=299 => Outcome::Updated,
                _ => refused(&again),
            }
        }
        _ => refused(&answer),
    })
}

fn refused(answer: &Answer) -> Outcome {
    Outcome::Refused(format!(
        "Google answered {} {}",
        answer.status,
        answer.reason.as_deref().unwrap_or("")
    ))
}

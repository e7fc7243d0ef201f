//! The access trail: beside the outbound log (what data left), a record of
//! every act of access to the gateway itself: settings logins (success and
//! failure), hand-offs, users added, disabled or reset, credentials issued,
//! rotated or revoked, tokens issued, grants switched, minimisation choices
//! changed, tripwires planted, keys rotated, firms terminated or purged. Each
//! entry says who (a settings account, a vendor client id or
//! `operator:<actor>`), when, from where (the client address the gateway
//! believes, or `cli`/`serve`) and what (a short JSON object of ids and names,
//! never a password, secret or token).
//!
//! Entries are chained like the outbound log (the shared [`crate::keyed_chain`],
//! under the same derived chain key): one chain per firm, holding only that
//! firm's events, and one operator chain for events of no firm. Appending
//! locks the chain's head row, so instances sharing a registry keep each chain
//! linear. A purge deletes a firm's chain and leaves a keyed tombstone.

mod append;
mod entry;
mod tombstone;
mod verify;

pub use append::{append_in, record};
pub use entry::{Entry, Kind, NewEntry, OPERATOR_CHAIN};
pub use tombstone::{purge_chain_in, tombstones, TrailTombstone};
pub use verify::{verify_trails, TrailFault, TrailReport};

use crate::registry::{Registry, StoreError, StoreResult};
use futures::TryStreamExt;

/// Which entries the settings page asks for. Every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct TrailFilter {
    pub kind: Option<Kind>,
    /// Entries whose actor contains this text.
    pub actor: Option<String>,
    /// At or after this time (Unix ms).
    pub from_ms: Option<i64>,
    /// Before this time (Unix ms).
    pub to_ms: Option<i64>,
    /// Only entries older than this sequence number (the previous page's last `seq`).
    pub before_seq: Option<i64>,
}

/// A page of one chain's entries, newest first.
pub async fn page(
    registry: &Registry,
    chain: &str,
    filter: &TrailFilter,
    limit: i64,
) -> StoreResult<Vec<Entry>> {
    let sql = format!(
        "SELECT {} FROM access_trail WHERE chain = $1 AND ($2 = '' OR kind = $2) AND ($3 = '' OR LOWER(actor) LIKE $4 ESCAPE '\\') AND at >= $5 AND at < $6 AND seq < $7 ORDER BY seq DESC LIMIT $8",
        entry::COLUMNS
    );
    let actor = filter.actor.as_deref().unwrap_or("");
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(chain)
        .bind(filter.kind.map(Kind::as_str).unwrap_or(""))
        .bind(actor)
        .bind(format!("%{}%", like_escape(&actor.to_lowercase())))
        .bind(filter.from_ms.unwrap_or(i64::MIN))
        .bind(filter.to_ms.unwrap_or(i64::MAX))
        .bind(filter.before_seq.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 500))
        .fetch_all(registry.pool())
        .await?;
    Ok(rows.iter().map(Entry::from_row).collect())
}

/// `text` with LIKE's wildcards (and the escape character) taken literally.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Streams one chain's entries in chain order to `sink`: a firm's chain, or
/// the operator chain with `firm_id` `None`.
pub async fn export(
    registry: &Registry,
    firm_id: Option<&str>,
    mut sink: impl FnMut(&Entry) -> std::io::Result<()>,
) -> StoreResult<u64> {
    let chain = match firm_id {
        Some(firm) => registry.firm(firm).await?.id,
        None => OPERATOR_CHAIN.to_string(),
    };
    let sql = format!(
        "SELECT {} FROM access_trail WHERE chain = $1 ORDER BY seq",
        entry::COLUMNS
    );
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&chain)
        .fetch(registry.pool());
    let mut count = 0;
    while let Some(row) = rows.try_next().await? {
        sink(&Entry::from_row(&row))
            .map_err(|e| StoreError::Invalid(format!("cannot write the export: {e}")))?;
        count += 1;
    }
    Ok(count)
}

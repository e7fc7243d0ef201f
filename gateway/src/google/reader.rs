//! Reads the connected fee earner's changed diary entries from the firm's
//! database, selecting exactly the columns of the `diary_entry` schema (with
//! its declared join to the matter's name) and nothing else.

use crate::projection::Projection;
use crate::registry::StoreResult;
use crate::tenancy::FirmDb;

/// One diary entry as the sync sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiaryRow {
    pub id: String,
    pub summary: String,
    pub description: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub all_day: bool,
    pub deleted: bool,
    pub change_seq: i64,
}

/// Entries changed after `after`, oldest change first. Entries of other fee
/// earners come back as deleted: an entry handed from this user to another
/// must leave this user's calendar (an unmapped one costs no call).
pub async fn changed_entries(
    db: &FirmDb,
    projection: &Projection,
    owner: &str,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<DiaryRow>> {
    let page = crate::capabilities::read_changes(db, projection, after, limit).await?;
    Ok(page
        .items
        .iter()
        .map(|v| {
            let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            DiaryRow {
                id: text("id"),
                summary: text("summary"),
                description: text("description"),
                starts_at: v["starts_at"].as_i64().unwrap_or_default(),
                ends_at: v["ends_at"].as_i64().unwrap_or_default(),
                all_day: v["all_day"].as_bool().unwrap_or_default(),
                deleted: v["deleted"].as_bool().unwrap_or_default()
                    || text("owner_user_id") != owner,
                change_seq: v["change_seq"].as_i64().unwrap_or_default(),
            }
        })
        .collect())
}

/// True when the user exists in the firm's database.
pub async fn user_exists(db: &FirmDb, user_id: &str) -> StoreResult<bool> {
    Ok(sqlx::query("SELECT id FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?
        .is_some())
}

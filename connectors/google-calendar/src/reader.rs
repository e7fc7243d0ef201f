//! The connected fee earner's changed diary entries, read through the
//! `diary_entry` schema's projection (the core selects exactly its columns,
//! with its declared join to the matter's name, or to its number when the
//! firm chose that as the event title, and nothing else).

use scopegate_contract::{Capabilities, ConnectorError, FirmGrant};
use serde_json::Value;

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

impl DiaryRow {
    /// Entries of other fee earners count as deleted: an entry handed from
    /// this user to another must leave this user's calendar (an unmapped one
    /// costs no call).
    fn from_item(item: &Value, owner: &str) -> Self {
        let text = |k: &str| item[k].as_str().unwrap_or_default().to_string();
        DiaryRow {
            id: text("id"),
            summary: text("summary"),
            description: text("description"),
            starts_at: item["starts_at"].as_i64().unwrap_or_default(),
            ends_at: item["ends_at"].as_i64().unwrap_or_default(),
            all_day: item["all_day"].as_bool().unwrap_or_default(),
            deleted: item["deleted"].as_bool().unwrap_or_default()
                || text("owner_user_id") != owner,
            change_seq: item["change_seq"].as_i64().unwrap_or_default(),
        }
    }
}

/// Entries changed after `after`, oldest change first, at most `limit`,
/// with the firm's minimisation variant they were read under.
pub async fn changed_entries(
    caps: &Capabilities,
    grant: &FirmGrant,
    owner: &str,
    after: i64,
    limit: i64,
) -> Result<(Vec<DiaryRow>, Option<String>), ConnectorError> {
    let page = caps
        .reader()
        .changes(grant, "diary_entry", after, limit)
        .await?;
    let rows = page
        .items
        .iter()
        .map(|item| DiaryRow::from_item(item, owner))
        .collect();
    Ok((rows, page.variant))
}

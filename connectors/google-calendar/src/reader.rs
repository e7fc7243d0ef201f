//! The connected fee earner's changed diary entries, read through the
//! `diary_entry` schema's projection (the core selects exactly its columns,
//! with its declared join to the matter's name, or to its number when the
//! firm chose that as the event title, and nothing else).
//!
//! The firm's diary is every fee earner's, and most of its rows are not the
//! connection's user's. A batch ([`changed_batch`]) reads the user's own
//! entries in full (through the firm's owner index) and, of the others'
//! changed in the same range, only the id and change number: one of them may
//! have been handed from this user to someone else, and its event must go.
//! Reading every fee earner's entries in full cost each of 20 connections
//! about 500 us of CPU per event (BENCHMARKS.md §14), and grew with the
//! firm's fee earners.

use scopegate_contract::{Capabilities, ChangedId, ConnectorError, FirmGrant};
use serde_json::Value;

/// The schema the sync reads the diary through, and its owner field.
const SCHEMA: &str = "diary_entry";
const OWNER: &str = "owner_user_id";

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
    /// The entry is the connection's user's (deleted or not).
    pub owned: bool,
    pub change_seq: i64,
}

impl DiaryRow {
    /// Entries of other fee earners count as deleted: an entry handed from
    /// this user to another must leave this user's calendar (an unmapped one
    /// costs no call).
    fn from_item(item: &Value, owner: &str) -> Self {
        let text = |k: &str| item[k].as_str().unwrap_or_default().to_string();
        let owned = item["owner_user_id"].as_str() == Some(owner);
        DiaryRow {
            id: text("id"),
            summary: text("summary"),
            description: text("description"),
            starts_at: item["starts_at"].as_i64().unwrap_or_default(),
            ends_at: item["ends_at"].as_i64().unwrap_or_default(),
            all_day: item["all_day"].as_bool().unwrap_or_default(),
            deleted: item["deleted"].as_bool().unwrap_or_default() || !owned,
            owned,
            change_seq: item["change_seq"].as_i64().unwrap_or_default(),
        }
    }
}

impl DiaryRow {
    /// Another fee earner's entry, known only by its id and change number:
    /// it counts as deleted here (an unmapped one costs no call).
    fn not_owned(changed: ChangedId) -> Self {
        DiaryRow {
            id: changed.id,
            summary: String::new(),
            description: String::new(),
            starts_at: 0,
            ends_at: 0,
            all_day: false,
            deleted: true,
            owned: false,
            change_seq: changed.change_seq,
        }
    }
}

/// The next batch after `after`, oldest change first, with the firm's
/// minimisation variant it was read under: up to `read_max` of other fee
/// earners' entries by id, then up to `owned_max` of `owner`'s own in full,
/// the batch ending where either read stopped. The others are read first,
/// with the diary's last change number at that moment, and the user's own
/// only up to it: an entry committed between the two reads is left for the
/// next batch, never skipped.
pub async fn changed_batch(
    caps: &Capabilities,
    grant: &FirmGrant,
    owner: &str,
    after: i64,
    owned_max: usize,
    read_max: usize,
) -> Result<(Vec<DiaryRow>, Option<String>), ConnectorError> {
    let reader = caps.reader();
    let others = reader
        .changed_ids_where_not(
            grant,
            SCHEMA,
            OWNER,
            owner,
            after,
            i64::MAX,
            read_max as i64,
        )
        .await?;
    let mut through = others.last_change;
    if others.ids.len() >= read_max {
        if let Some(last) = others.ids.last() {
            through = through.min(last.change_seq);
        }
    }
    let page = reader
        .changes_where(
            grant,
            SCHEMA,
            OWNER,
            owner,
            after,
            through,
            owned_max.max(1) as i64,
        )
        .await?;
    let mut rows: Vec<DiaryRow> = page
        .items
        .iter()
        .map(|item| DiaryRow::from_item(item, owner))
        .collect();
    if page.has_more {
        if let Some(last) = rows.last() {
            through = through.min(last.change_seq);
        }
    }
    rows.retain(|r| r.change_seq <= through);
    rows.extend(
        others
            .ids
            .into_iter()
            .filter(|c| c.change_seq <= through)
            .map(DiaryRow::not_owned),
    );
    rows.sort_by_key(|r| r.change_seq);
    Ok((rows, page.variant))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(n: i64, owner: &str) -> DiaryRow {
        DiaryRow::from_item(
            &json!({ "id": format!("d{n}"), "owner_user_id": owner, "change_seq": n }),
            "me",
        )
    }

    #[test]
    fn other_fee_earners_entries_count_as_deleted_for_this_one() {
        assert!(!row(1, "me").deleted && row(1, "me").owned);
        assert!(row(1, "you").deleted && !row(1, "you").owned);
    }

    #[test]
    fn another_fee_earners_entry_known_by_id_counts_as_deleted() {
        let row = DiaryRow::not_owned(ChangedId {
            id: "d7".into(),
            change_seq: 7,
        });
        assert!(row.deleted && !row.owned);
        assert_eq!((row.id.as_str(), row.change_seq), ("d7", 7));
    }
}

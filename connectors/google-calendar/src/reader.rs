//! The connected fee earner's changed diary entries, read through the
//! `diary_entry` schema's projection (the core selects exactly its columns,
//! with its declared join to the matter's name, or to its number when the
//! firm chose that as the event title, and nothing else).
//!
//! The firm's diary is every fee earner's, so most rows a pass reads are not
//! its user's: a batch reads on ([`changed_batch`]) until it holds
//! `owned_max` of the user's own entries, so each batch's registry reads and
//! writes serve that many possible calls, not a handful.

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

/// The next batch after `after`: pages of `owned_max` rows read one after
/// another until they hold `owned_max` of `owner`'s own entries, `read_max`
/// rows or the last change, cut after the `owned_max`-th owned entry. A page
/// read under another minimisation variant than the first is left for the
/// next batch (which starts over under it).
pub async fn changed_batch(
    caps: &Capabilities,
    grant: &FirmGrant,
    owner: &str,
    after: i64,
    owned_max: usize,
    read_max: usize,
) -> Result<(Vec<DiaryRow>, Option<String>), ConnectorError> {
    let page_size = owned_max.max(1);
    let (mut rows, variant) = changed_entries(caps, grant, owner, after, page_size as i64).await?;
    let mut last_page = rows.len();
    while last_page == page_size
        && rows.len() < read_max
        && rows.iter().filter(|r| r.owned).count() < owned_max
    {
        let from = rows.last().map_or(after, |r| r.change_seq);
        let (page, read_as) = changed_entries(caps, grant, owner, from, page_size as i64).await?;
        if read_as != variant {
            break;
        }
        last_page = page.len();
        rows.extend(page);
    }
    rows.truncate(batch_end(&rows, owned_max));
    Ok((rows, variant))
}

/// How many rows the batch keeps: through the `owned_max`-th owned one, or all.
fn batch_end(rows: &[DiaryRow], owned_max: usize) -> usize {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.owned)
        .nth(owned_max.max(1) - 1)
        .map_or(rows.len(), |(at, _)| at + 1)
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
    fn a_batch_ends_at_its_last_owned_entry_or_runs_to_the_end() {
        let rows: Vec<DiaryRow> = ["you", "me", "you", "me", "me", "you"]
            .iter()
            .enumerate()
            .map(|(n, owner)| row(n as i64, owner))
            .collect();
        assert_eq!(batch_end(&rows, 1), 2);
        assert_eq!(batch_end(&rows, 2), 4);
        assert_eq!(batch_end(&rows, 3), 5);
        assert_eq!(batch_end(&rows, 4), 6, "fewer owned than asked: every row");
        assert_eq!(batch_end(&rows[..1], 1), 1);
        assert_eq!(batch_end(&[], 1), 0);
    }
}

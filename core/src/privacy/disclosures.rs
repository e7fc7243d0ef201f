//! The disclosure report (POPIA s23(1)(b)): every third party that received
//! data about one client or matter. The firm's database names the records
//! about the subject; the outbound log's record-id index names the sends that
//! carried them; each (connector, grant) that received any is one recipient,
//! with the credentials the grant was given or the accounts its connector
//! delivered to (a fee earner's Google account), the fields, the first and
//! last time, and how many of the subject's records and how many calls.

use super::breach::AccountSpell;
use super::subjects::{owners_of, records_about, Subject};
use crate::outbound_log::record_index::{send_summaries, sends_carrying};
use crate::registry::{Registry, StoreResult};
use crate::tenancy::FirmDb;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct DisclosureReport {
    pub firm_id: String,
    pub subject: Subject,
    /// Records of the firm about the subject (whether or not any left).
    pub records_about_subject: usize,
    /// One entry per (connector, grant) that received any of them, by connector.
    pub recipients: Vec<Recipient>,
}

/// One third party (a connector's grant) that received data about the subject.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Recipient {
    pub connector: String,
    pub grant_id: String,
    /// The client ids of the credentials issued for the grant (the vendor's
    /// accounts); empty for connectors that deliver on their own.
    pub credentials: Vec<String>,
    /// The accounts at the third party that received the subject's records
    /// (e.g. Google accounts), for connectors that deliver to accounts.
    pub accounts: Vec<String>,
    /// "outbound" (sent to it) and/or "inbound" (answers to what it posted).
    pub directions: Vec<String>,
    pub fields: Vec<String>,
    pub first_at: i64,
    pub last_at: i64,
    /// How many distinct records about the subject it received.
    pub records: usize,
    /// How many calls carried any of them.
    pub calls: usize,
}

#[derive(Default)]
struct Tally {
    directions: BTreeSet<String>,
    fields: BTreeSet<String>,
    first_at: i64,
    last_at: i64,
    records: BTreeSet<String>,
    calls: BTreeSet<i64>,
    accounts: BTreeSet<String>,
}

/// The accounts of `spells` that `record`, sent at `at` through `grant_id`, went to.
fn accounts_for<'a>(
    spells: &'a [(String, AccountSpell)],
    owners: &'a BTreeMap<String, String>,
    grant_id: &'a str,
    record: &'a str,
    at: i64,
) -> impl Iterator<Item = &'a String> + 'a {
    spells.iter().filter_map(move |(account, s)| {
        let during = s.from <= at && s.until.is_none_or(|u| at < u);
        let theirs = s
            .practice_user
            .as_ref()
            .is_none_or(|u| owners.get(record) == Some(u));
        (s.grant_id == grant_id && during && theirs).then_some(account)
    })
}

/// Builds the report for `subject` in `firm_id` (whose database is `db`);
/// `spells` are the (account, spell) pairs the firm's connectors reported.
pub async fn disclosures(
    registry: &Registry,
    db: &FirmDb,
    firm_id: &str,
    subject: Subject,
    spells: &[(String, AccountSpell)],
) -> StoreResult<DisclosureReport> {
    let about = records_about(db, &subject).await?;
    let owners = if spells.is_empty() {
        BTreeMap::new()
    } else {
        owners_of(db, &about).await?
    };
    let hits = sends_carrying(registry, firm_id, &about).await?;
    let mut seqs: Vec<i64> = hits.iter().map(|(_, seq)| *seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let sends: BTreeMap<i64, _> = send_summaries(registry, firm_id, &seqs)
        .await?
        .into_iter()
        .map(|s| (s.seq, s))
        .collect();
    let mut tallies: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for (record, seq) in &hits {
        let Some(send) = sends.get(seq) else { continue };
        let tally = tallies
            .entry((send.connector.clone(), send.grant_id.clone()))
            .or_insert_with(|| Tally {
                first_at: i64::MAX,
                last_at: i64::MIN,
                ..Tally::default()
            });
        tally.directions.insert(send.direction.clone());
        tally.fields.extend(send.fields.iter().cloned());
        tally.first_at = tally.first_at.min(send.at);
        tally.last_at = tally.last_at.max(send.at);
        tally.records.insert(record.clone());
        tally.calls.insert(*seq);
        tally
            .accounts
            .extend(accounts_for(spells, &owners, &send.grant_id, record, send.at).cloned());
    }
    let credentials = registry.credentials(firm_id).await?;
    let recipients = tallies
        .into_iter()
        .map(|((connector, grant_id), t)| Recipient {
            credentials: credentials
                .iter()
                .filter(|c| c.connector == connector)
                .map(|c| c.client_id.clone())
                .collect(),
            connector,
            grant_id,
            accounts: t.accounts.into_iter().collect(),
            directions: t.directions.into_iter().collect(),
            fields: t.fields.into_iter().collect(),
            first_at: t.first_at,
            last_at: t.last_at,
            records: t.records.len(),
            calls: t.calls.len(),
        })
        .collect();
    Ok(DisclosureReport {
        firm_id: firm_id.to_string(),
        subject,
        records_about_subject: about.len(),
        recipients,
    })
}

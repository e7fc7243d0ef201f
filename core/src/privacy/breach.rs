//! Breach scope (POPIA s22): the data subjects whose data left through one
//! channel in a time window, with which fields and when: the list a firm needs
//! to notify. A channel is a grant, or one credential of a grant. The log
//! names the grant of each send, not the credential, so a credential's scope
//! is every send of its grant while the credential was valid (a superset when
//! the grant had several credentials at once; the report says so). A
//! channel may also be an account at the third party that the connector
//! delivered to (a fee earner's Google account): the sends of its grant while
//! the account was connected, keeping only that fee earner's records.

use super::subjects::{clients_of, owners_of, Client};
use crate::outbound_log::record_index::{sends_of_grant, SendSummary};
use crate::registry::{Registry, StoreError, StoreResult};
use crate::tenancy::FirmDb;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Where the data may have leaked from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Channel {
    Grant(String),
    /// A vendor credential, by its client id.
    Credential(String),
    /// An account at the third party (e.g. a Google account's address).
    Account(String),
}

/// One spell of an account receiving a grant's data, as its connector reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSpell {
    pub grant_id: String,
    pub connector: String,
    /// Only this practice user's records went to the account, when set.
    pub practice_user: Option<String>,
    pub from: i64,
    pub until: Option<i64>,
}

/// The list to notify.
#[derive(Debug, Clone, Serialize)]
pub struct BreachScope {
    pub firm_id: String,
    pub channel: Channel,
    pub grant_id: String,
    pub connector: String,
    /// The window searched, Unix ms, `[since, until)` (clipped to a credential's life).
    pub since: i64,
    pub until: i64,
    /// What the window and channel mean, in words, where it is not exact.
    pub note: Option<String>,
    /// Sends of the channel in the window.
    pub calls: usize,
    pub affected: Vec<Affected>,
}

/// One data subject whose data left through the channel.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Affected {
    pub client: Client,
    pub fields: Vec<String>,
    pub first_at: i64,
    pub last_at: i64,
    /// Records about this client that left.
    pub records: usize,
}

/// Builds the breach scope of `channel` in `firm_id` over `[since, until)`.
pub async fn breach_scope(
    registry: &Registry,
    db: &FirmDb,
    firm_id: &str,
    channel: Channel,
    since: i64,
    until: i64,
) -> StoreResult<BreachScope> {
    let (grant, since, until, note) = match &channel {
        Channel::Account(account) => {
            return Err(StoreError::Invalid(format!(
                "the scope of account {account} needs its spells: use breach_scope_of_account"
            )))
        }
        Channel::Grant(id) => {
            let grant = registry
                .grants(Some(firm_id))
                .await?
                .into_iter()
                .find(|g| &g.id == id)
                .ok_or_else(|| StoreError::NotFound(format!("firm {firm_id} has no grant {id}")))?;
            (grant, since, until, None)
        }
        Channel::Credential(client_id) => {
            let credential = registry
                .credentials(firm_id)
                .await?
                .into_iter()
                .find(|c| &c.client_id == client_id)
                .ok_or_else(|| {
                    StoreError::NotFound(format!("firm {firm_id} has no credential {client_id}"))
                })?;
            let grant = registry.grant(firm_id, &credential.connector).await?;
            let note = format!(
                "every send of grant {} while credential {client_id} was valid (issued {}{}); the log names the grant of a send, not its credential",
                grant.id,
                credential.created_at,
                credential
                    .revoked_at
                    .map(|r| format!(", revoked {r}"))
                    .unwrap_or_default()
            );
            (
                grant,
                since.max(credential.created_at),
                until.min(credential.revoked_at.map_or(i64::MAX, |r| r + 1)),
                Some(note),
            )
        }
    };
    let sends = if since < until {
        sends_of_grant(registry, firm_id, &grant.id, since, until).await?
    } else {
        Vec::new()
    };
    let affected = affected_by(db, &sends).await?;
    Ok(BreachScope {
        firm_id: firm_id.to_string(),
        channel,
        grant_id: grant.id.clone(),
        connector: grant.connector.clone(),
        since,
        until,
        note,
        calls: sends.len(),
        affected,
    })
}

/// The breach scope of an account at a third party, from the spells in which
/// it received data (see [`AccountSpell`]); an account with no spell in this
/// firm is not found.
pub async fn breach_scope_of_account(
    registry: &Registry,
    db: &FirmDb,
    firm_id: &str,
    account: &str,
    spells: &[AccountSpell],
    since: i64,
    until: i64,
) -> StoreResult<BreachScope> {
    let first = spells.first().ok_or_else(|| {
        StoreError::NotFound(format!(
            "no account {account} received data of firm {firm_id}"
        ))
    })?;
    let mut sends = Vec::new();
    for spell in spells {
        let from = since.max(spell.from);
        let to = until.min(spell.until.unwrap_or(i64::MAX));
        if from >= to {
            continue;
        }
        let mut found = sends_of_grant(registry, firm_id, &spell.grant_id, from, to).await?;
        if let Some(user) = &spell.practice_user {
            let ids: Vec<String> = found.iter().flat_map(|(_, ids)| ids.clone()).collect();
            let owners = owners_of(db, &ids).await?;
            for (_, ids) in &mut found {
                ids.retain(|id| owners.get(id) == Some(user));
            }
            found.retain(|(_, ids)| !ids.is_empty());
        }
        sends.extend(found);
    }
    sends.sort_by_key(|(send, _)| send.seq);
    sends.dedup_by_key(|(send, _)| send.seq);
    let spans: Vec<String> = spells
        .iter()
        .map(|s| {
            format!(
                "{}{} from {} until {}",
                s.connector,
                s.practice_user
                    .as_ref()
                    .map(|u| format!(" (records of practice user {u})"))
                    .unwrap_or_default(),
                s.from,
                s.until.map_or("now".to_string(), |u| u.to_string())
            )
        })
        .collect();
    let affected = affected_by(db, &sends).await?;
    Ok(BreachScope {
        firm_id: firm_id.to_string(),
        channel: Channel::Account(account.to_string()),
        grant_id: first.grant_id.clone(),
        connector: first.connector.clone(),
        since,
        until,
        note: Some(format!(
            "every send to account {account} while it was connected: {}",
            spans.join("; ")
        )),
        calls: sends.len(),
        affected,
    })
}

/// The clients whose records `sends` carried, with fields and times.
async fn affected_by(
    db: &FirmDb,
    sends: &[(SendSummary, Vec<String>)],
) -> StoreResult<Vec<Affected>> {
    let mut ids: Vec<String> = sends.iter().flat_map(|(_, ids)| ids.clone()).collect();
    ids.sort();
    ids.dedup();
    let client_of = clients_of(db, &ids).await?;
    #[derive(Default)]
    struct Tally {
        fields: BTreeSet<String>,
        first_at: Option<i64>,
        last_at: i64,
        records: BTreeSet<String>,
    }
    let mut tallies: BTreeMap<String, (Client, Tally)> = BTreeMap::new();
    for (send, record_ids) in sends {
        for record in record_ids {
            let Some(client) = client_of.get(record) else {
                continue;
            };
            let (_, tally) = tallies
                .entry(client.id.clone())
                .or_insert_with(|| (client.clone(), Tally::default()));
            tally.fields.extend(send.fields.iter().cloned());
            tally.first_at = Some(tally.first_at.map_or(send.at, |f| f.min(send.at)));
            tally.last_at = tally.last_at.max(send.at);
            tally.records.insert(record.clone());
        }
    }
    Ok(tallies
        .into_values()
        .map(|(client, t)| Affected {
            client,
            fields: t.fields.into_iter().collect(),
            first_at: t.first_at.unwrap_or_default(),
            last_at: t.last_at,
            records: t.records.len(),
        })
        .collect())
}

impl BreachScope {
    /// The affected list as CSV (RFC 4180), one line per client.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("client_id,full_name,email,fields,first_at,last_at,records\r\n");
        for a in &self.affected {
            let cells = [
                a.client.id.clone(),
                a.client.full_name.clone(),
                a.client.email.clone(),
                a.fields.join(" "),
                a.first_at.to_string(),
                a.last_at.to_string(),
                a.records.to_string(),
            ];
            let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
        out
    }
}

/// One CSV cell: quoted when it holds a comma, quote or line break; a leading
/// `=`, `+`, `-` or `@` is prefixed with `'` so a spreadsheet shows, not runs, it.
fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

//! Data subjects in a firm's own database: the records that are about one
//! client (the client, their matters, and the diary entries, transactions and
//! fees of those matters) or one matter, and, the other way round, the client
//! each record is about, and the practice user a record belongs to. Only ids, names and contact details are read: what a
//! firm needs to answer an access request or notify the people affected.

use crate::registry::StoreResult;
use crate::tenancy::FirmDb;
use serde::Serialize;
use sqlx::Row;
use std::collections::BTreeMap;

/// Ids per `IN (...)` list.
const IDS_PER_QUERY: usize = 500;

/// Who a report is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum Subject {
    Client(String),
    Matter(String),
}

/// A client of the firm, as the firm would contact them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    pub id: String,
    pub full_name: String,
    pub email: String,
}

/// The tables whose rows hang off a matter.
const UNDER_MATTER: [&str; 3] = ["diary_entries", "accounting_transactions", "fees"];

/// Every record id that is about `subject` (empty if the firm has no such client or matter).
pub async fn records_about(db: &FirmDb, subject: &Subject) -> StoreResult<Vec<String>> {
    let mut ids = Vec::new();
    let matters: Vec<String> = match subject {
        Subject::Client(client) => {
            let found: Vec<String> = sqlx::query_scalar("SELECT id FROM clients WHERE id = $1")
                .bind(client)
                .fetch_all(db.pool())
                .await?;
            ids.extend(found);
            sqlx::query_scalar("SELECT id FROM matters WHERE client_id = $1")
                .bind(client)
                .fetch_all(db.pool())
                .await?
        }
        Subject::Matter(matter) => {
            sqlx::query_scalar("SELECT id FROM matters WHERE id = $1")
                .bind(matter)
                .fetch_all(db.pool())
                .await?
        }
    };
    for chunk in matters.chunks(IDS_PER_QUERY) {
        for table in UNDER_MATTER {
            let sql = format!(
                "SELECT id FROM {table} WHERE matter_id IN ({})",
                marks(chunk.len(), 1)
            );
            let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.as_str());
            }
            ids.extend(query.fetch_all(db.pool()).await?);
        }
    }
    ids.extend(matters);
    Ok(ids)
}

/// The client each of `record_ids` is about; ids that are no record of the
/// firm (or no longer are) are left out.
pub async fn clients_of(
    db: &FirmDb,
    record_ids: &[String],
) -> StoreResult<BTreeMap<String, Client>> {
    // record id -> matter id, for records under a matter; matter -> client.
    let mut matter_of: BTreeMap<String, String> = BTreeMap::new();
    let mut client_of: BTreeMap<String, String> = BTreeMap::new();
    for chunk in record_ids.chunks(IDS_PER_QUERY) {
        for table in UNDER_MATTER {
            let sql = format!(
                "SELECT id, matter_id FROM {table} WHERE id IN ({})",
                marks(chunk.len(), 1)
            );
            for row in bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk)
                .fetch_all(db.pool())
                .await?
            {
                matter_of.insert(row.get("id"), row.get("matter_id"));
            }
        }
        let sql = format!(
            "SELECT id FROM clients WHERE id IN ({})",
            marks(chunk.len(), 1)
        );
        for row in bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk)
            .fetch_all(db.pool())
            .await?
        {
            let id: String = row.get("id");
            client_of.insert(id.clone(), id);
        }
        for id in chunk {
            matter_of.entry(id.clone()).or_insert_with(|| id.clone());
        }
    }
    // Every matter named, directly or through a record under it.
    let mut matters: Vec<String> = matter_of.values().cloned().collect();
    matters.sort();
    matters.dedup();
    let mut matter_client: BTreeMap<String, String> = BTreeMap::new();
    for chunk in matters.chunks(IDS_PER_QUERY) {
        let sql = format!(
            "SELECT id, client_id FROM matters WHERE id IN ({})",
            marks(chunk.len(), 1)
        );
        for row in bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk)
            .fetch_all(db.pool())
            .await?
        {
            matter_client.insert(row.get("id"), row.get("client_id"));
        }
    }
    for (record, matter) in &matter_of {
        if let Some(client) = matter_client.get(matter) {
            client_of.insert(record.clone(), client.clone());
        }
    }
    let mut clients: Vec<String> = client_of.values().cloned().collect();
    clients.sort();
    clients.dedup();
    let mut details: BTreeMap<String, Client> = BTreeMap::new();
    for chunk in clients.chunks(IDS_PER_QUERY) {
        let sql = format!(
            "SELECT id, full_name, email FROM clients WHERE id IN ({})",
            marks(chunk.len(), 1)
        );
        for row in bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk)
            .fetch_all(db.pool())
            .await?
        {
            let client = Client {
                id: row.get("id"),
                full_name: row.get("full_name"),
                email: row.get("email"),
            };
            details.insert(client.id.clone(), client);
        }
    }
    Ok(client_of
        .into_iter()
        .filter_map(|(record, client)| details.get(&client).map(|c| (record, c.clone())))
        .collect())
}

/// The practice user each of `record_ids` belongs to, for records that belong
/// to one (diary entries, by their owner); other ids are left out.
pub async fn owners_of(
    db: &FirmDb,
    record_ids: &[String],
) -> StoreResult<BTreeMap<String, String>> {
    let mut owners = BTreeMap::new();
    for chunk in record_ids.chunks(IDS_PER_QUERY) {
        let sql = format!(
            "SELECT id, owner_user_id FROM diary_entries WHERE id IN ({})",
            marks(chunk.len(), 1)
        );
        for row in bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk)
            .fetch_all(db.pool())
            .await?
        {
            owners.insert(row.get("id"), row.get("owner_user_id"));
        }
    }
    Ok(owners)
}

/// `$first, $first+1, ...` for `n` parameters.
fn marks(n: usize, first: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ids: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for id in ids {
        query = query.bind(id.as_str());
    }
    query
}

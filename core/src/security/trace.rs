//! `scopegate trace ID`: which firm, grant and record a leaked pseudonymous
//! id came from. Each firm is looked at on its own (its grants' keys in the
//! registry, then its own database), never with one query across firms.

use super::pseudonyms::{GrantRef, PseudonymError, Pseudonyms};
use crate::registry::Registry;
use crate::tenancy::Tenancy;

/// The firm tables whose ids a grant is shown (and so may leak).
const SHOWN_TABLES: [&str; 3] = ["matters", "accounting_transactions", "fees"];

/// Where a pseudonymous id came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceHit {
    pub firm_id: String,
    pub grant_id: String,
    pub connector: String,
    /// The firm table holding the record.
    pub table: String,
    /// The record's real id.
    pub record_id: String,
}

/// What a trace found.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct TraceReport {
    /// Normally one; none when the id is not one this gateway handed out.
    pub hits: Vec<TraceHit>,
    /// Firms that could not be looked at (their database unreachable), with why.
    pub unreadable: Vec<(String, String)>,
}

/// Every grant that shows `shown` for one of its firm's records. A firm that
/// cannot be read is reported and skipped; the others are still looked at.
pub async fn trace(
    registry: &Registry,
    tenancy: &Tenancy,
    pseudonyms: &Pseudonyms,
    shown: &str,
) -> Result<TraceReport, PseudonymError> {
    let mut report = TraceReport::default();
    if uuid::Uuid::parse_str(shown).is_err() {
        return Ok(report);
    }
    for firm in registry.firms().await? {
        match trace_in_firm(registry, tenancy, pseudonyms, &firm, shown).await {
            Ok(hits) => report.hits.extend(hits),
            Err(e) => report.unreadable.push((firm.id.clone(), e.to_string())),
        }
    }
    Ok(report)
}

async fn trace_in_firm(
    registry: &Registry,
    tenancy: &Tenancy,
    pseudonyms: &Pseudonyms,
    firm: &crate::registry::firms::Firm,
    shown: &str,
) -> Result<Vec<TraceHit>, PseudonymError> {
    let mut hits = Vec::new();
    {
        for grant in registry.grants(Some(&firm.id)).await? {
            let grant_ref = GrantRef {
                firm_id: &firm.id,
                grant_id: &grant.id,
                connector: &grant.connector,
            };
            let Some(mapping) = pseudonyms.existing(&grant_ref).await? else {
                continue;
            };
            let Some(real) = mapping.reveal(shown) else {
                continue;
            };
            let db = tenancy.firm_db(firm).await?;
            for table in SHOWN_TABLES {
                let sql = format!("SELECT id FROM {table} WHERE id = $1");
                let found = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&real)
                    .fetch_optional(db.pool())
                    .await
                    .map_err(crate::registry::StoreError::from)?;
                if found.is_some() {
                    hits.push(TraceHit {
                        firm_id: firm.id.clone(),
                        grant_id: grant.id.clone(),
                        connector: grant.connector.clone(),
                        table: table.to_string(),
                        record_id: real.clone(),
                    });
                }
            }
        }
    }
    Ok(hits)
}

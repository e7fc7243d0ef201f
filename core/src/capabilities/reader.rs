//! [`ProjectedReader`]: the SELECT a table-bound schema derives, run on the
//! database of the grant's firm and nothing else, in the variant of the
//! firm's minimisation choices (only the columns that variant needs).

use super::ForConnector;
use crate::projection::Projection;
use crate::registry::StoreError;
use crate::tenancy::FirmDb;
use scopegate_contract::{BoxFuture, ChangePage, ConnectorError, FirmGrant, ProjectedReader};

impl ProjectedReader for ForConnector {
    fn changes<'a>(
        &'a self,
        grant: &'a FirmGrant,
        schema: &'a str,
        after: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<ChangePage, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            let stored = self
                .core
                .registry
                .stored_choices(grant.firm_id(), self.connector.id())
                .await?;
            let chosen = self.connector.contract.effective_choices(&stored);
            let projection = self
                .connector
                .projections_for(&chosen)
                .get(schema)
                .filter(|p| p.source_table.is_some())
                .ok_or_else(|| {
                    ConnectorError::Internal(format!("{schema} is not a table-bound schema"))
                })?;
            let db = self.core.tenancy.firm_db(grant).await?;
            let mut page = read_changes(&db, projection, after, limit).await?;
            page.variant = self.connector.variant_name(&chosen);
            Ok(page)
        })
    }
}

/// Reads the projected columns of rows changed after `after`, oldest first.
pub async fn read_changes(
    db: &FirmDb,
    projection: &Projection,
    after: i64,
    limit: i64,
) -> Result<ChangePage, StoreError> {
    let table = projection.table();
    let sql = format!(
        "SELECT {} FROM {} WHERE {table}.change_seq > $1 ORDER BY {table}.change_seq LIMIT $2",
        projection.select_list(),
        projection.from_clause()
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit + 1)
        .fetch_all(db.pool())
        .await?;
    let has_more = rows.len() as i64 > limit;
    let mut page = ChangePage {
        items: Vec::with_capacity(rows.len()),
        record_ids: Vec::with_capacity(rows.len()),
        has_more,
        variant: None,
    };
    for row in rows.iter().take(limit as usize) {
        let item = projection.row_to_json(row)?;
        page.record_ids
            .push(item["id"].as_str().unwrap_or_default().to_string());
        page.items.push(item);
    }
    Ok(page)
}

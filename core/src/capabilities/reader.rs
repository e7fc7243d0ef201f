//! [`ProjectedReader`]: the SELECT a table-bound schema derives, run on the
//! database of the grant's firm and nothing else, in the variant of the
//! firm's minimisation choices (only the columns that variant needs).

use super::ForConnector;
use crate::projection::Projection;
use crate::registry::StoreError;
use crate::tenancy::FirmDb;
use scopegate_contract::{
    BoxFuture, ChangePage, ChangedId, ChangedIds, ConnectorError, FirmGrant, ProjectedReader,
};
use sqlx::Row;

impl ProjectedReader for ForConnector {
    fn changes<'a>(
        &'a self,
        grant: &'a FirmGrant,
        schema: &'a str,
        after: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<ChangePage, ConnectorError>> {
        Box::pin(async move { self.read_page(grant, schema, None, after, limit).await })
    }

    fn changes_where<'a>(
        &'a self,
        grant: &'a FirmGrant,
        schema: &'a str,
        field: &'a str,
        value: &'a str,
        after: i64,
        through: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<ChangePage, ConnectorError>> {
        Box::pin(async move {
            self.read_page(grant, schema, Some((field, value, through)), after, limit)
                .await
        })
    }

    fn changed_ids_where_not<'a>(
        &'a self,
        grant: &'a FirmGrant,
        schema: &'a str,
        field: &'a str,
        value: &'a str,
        after: i64,
        through: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<ChangedIds, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            // Any variant has the same id, change_seq and source-table fields.
            let projections = self.connector.projections_for(&Default::default());
            let projection = table_bound(projections.get(schema), schema)?;
            let column = source_column(projection, field)?;
            let (id, seq) = (
                source_column(projection, "id")?,
                source_column(projection, "change_seq")?,
            );
            let table = projection.table();
            let db = self.core.tenancy.firm_db(grant).await?;
            // Read first: rows commit in change order, so every row up to it
            // is there for the read of the ids that follows.
            let last_change: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT COALESCE(MAX({table}.{seq}), 0) AS last_change FROM {table}"
            )))
            .fetch_one(db.pool())
            .await
            .and_then(|row| row.try_get("last_change"))
            .map_err(StoreError::from)?;
            let sql = format!(
                "SELECT {table}.{id} AS id, {table}.{seq} AS change_seq FROM {table} \
                 WHERE {table}.{seq} > $1 AND {table}.{seq} <= $2 AND {table}.{column} <> $3 \
                 ORDER BY {table}.{seq} LIMIT $4"
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(through.min(last_change))
                .bind(value)
                .bind(limit)
                .fetch_all(db.pool())
                .await
                .map_err(StoreError::from)?;
            let ids = rows
                .iter()
                .map(|row| {
                    Ok(ChangedId {
                        id: row.try_get("id")?,
                        change_seq: row.try_get("change_seq")?,
                    })
                })
                .collect::<Result<_, sqlx::Error>>()
                .map_err(StoreError::from)?;
            Ok(ChangedIds { ids, last_change })
        })
    }
}

impl ForConnector {
    /// A page of `schema` in the variant of the firm's choices, optionally
    /// only the rows whose `field` is `value`, up to `change_seq` `through`.
    async fn read_page(
        &self,
        grant: &FirmGrant,
        schema: &str,
        only: Option<(&str, &str, i64)>,
        after: i64,
        limit: i64,
    ) -> Result<ChangePage, ConnectorError> {
        self.own(grant)?;
        let stored = self
            .core
            .registry
            .stored_choices_under(grant.firm_id(), self.connector.id(), grant.resolved_under())
            .await?;
        let chosen = self.connector.contract.effective_choices(&stored);
        let projections = self.connector.projections_for(&chosen);
        let projection = table_bound(projections.get(schema), schema)?;
        let only = match only {
            Some((field, value, through)) => {
                Some((source_column(projection, field)?, value, through))
            }
            None => None,
        };
        let db = self.core.tenancy.firm_db(grant).await?;
        let mut page = read_changes(&db, projection, only, after, limit).await?;
        page.variant = self.connector.variant_name(&chosen);
        Ok(page)
    }
}

fn table_bound<'p>(
    projection: Option<&'p Projection>,
    schema: &str,
) -> Result<&'p Projection, ConnectorError> {
    projection
        .filter(|p| p.source_table.is_some())
        .ok_or_else(|| ConnectorError::Internal(format!("{schema} is not a table-bound schema")))
}

/// The source-table column of `field` (checked against the firm-data
/// contract when the schema was compiled); a joined table's column or a
/// field the schema lacks is refused.
fn source_column<'p>(projection: &'p Projection, field: &str) -> Result<&'p str, ConnectorError> {
    projection
        .fields
        .iter()
        .find(|f| f.name == field)
        .and_then(|f| f.column.as_deref())
        .filter(|column| !column.contains('.'))
        .ok_or_else(|| {
            ConnectorError::Internal(format!(
                "{} has no field {field} bound to a column of {}",
                projection.name,
                projection.table()
            ))
        })
}

/// Reads the projected columns of rows changed after `after`, oldest first.
/// With `only` (a source-table column, a value and a last `change_seq`),
/// only the rows whose column holds that value, up to that change.
pub async fn read_changes(
    db: &FirmDb,
    projection: &Projection,
    only: Option<(&str, &str, i64)>,
    after: i64,
    limit: i64,
) -> Result<ChangePage, StoreError> {
    let table = projection.table();
    let condition = match only {
        Some((column, _, _)) => {
            format!(" AND {table}.{column} = $3 AND {table}.change_seq <= $4")
        }
        None => String::new(),
    };
    let sql = format!(
        "SELECT {} FROM {} WHERE {table}.change_seq > $1{condition} ORDER BY {table}.change_seq LIMIT $2",
        projection.select_list(),
        projection.from_clause()
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit + 1);
    if let Some((_, value, through)) = only {
        query = query.bind(value).bind(through);
    }
    let rows = query.fetch_all(db.pool()).await?;
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

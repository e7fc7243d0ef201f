//! [`InboundWriter`]: a fee posted by a third party, written into the firm's
//! database once per idempotency key. The inbound record is committed before
//! the firm database is read or written, so even "no such matter" leaves a
//! trace, and its result records what the write came to. A fee naming no
//! matter of the firm raises a security event: the connector maps the ids a
//! grant sends back through the grant's own key, so such an id is another
//! grant's or made up.

use super::ForConnector;
use crate::clock::now_ms;
use crate::outbound_log::Direction;
use crate::registry::StoreError;
use crate::security::{EventKind, NewSecurityEvent};
use crate::tenancy::{next_change_seqs, FirmDb};
use scopegate_contract::{
    BoxFuture, CheckedPayload, ConnectorError, FeeOutcome, FirmGrant, InboundWriter, Schema,
};
use serde_json::{json, Value};

use sqlx::Row;

impl InboundWriter for ForConnector {
    fn post_fee<'a>(
        &'a self,
        grant: &'a FirmGrant,
        route: &'a str,
        fee: CheckedPayload,
        idempotency_key: &'a str,
        result_schema: &'a Schema,
    ) -> BoxFuture<'a, Result<FeeOutcome, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            let mut value: Value = fee
                .decode()
                .map_err(|e| ConnectorError::Internal(e.to_string()))?;
            integral_numbers_as_integers(&mut value);
            let matter_id = value["matter_id"].as_str().unwrap_or_default().to_string();
            let fee_id = uuid::Uuid::new_v4().to_string();
            let receipt = self
                .core
                .log
                .record_send(self.new_send(
                    grant,
                    (Direction::Inbound, "POST"),
                    format!("firm database fees, from {} ({route})", grant.recipient()),
                    fee.fields().to_vec(),
                    vec![fee_id.clone(), matter_id.clone()],
                    fee.bytes().to_vec(),
                ))
                .await?;
            let db = self.core.tenancy.firm_db(grant).await?;
            let source = format!("{}:{}", self.connector.id(), grant.grant_id());
            // The request's hash is over its canonical form: a retry need not repeat whitespace.
            let request_sha256 =
                crate::secrets::sha256_hex(serde_json::to_vec(&value).expect("json"));
            let outcome = if !matter_exists(&db, &matter_id).await? {
                Ok(FeeOutcome::UnknownMatter)
            } else {
                write_fee(
                    &db,
                    &value,
                    &fee_id,
                    &source,
                    idempotency_key,
                    &request_sha256,
                )
                .await
                .map_err(ConnectorError::from)
                .and_then(|written| match written {
                    None => Ok(FeeOutcome::KeyReused),
                    Some((stored, created)) => {
                        let checked = result_schema.check(&stored).map_err(|v| {
                            ConnectorError::Internal(format!("fee result failed its schema: {v}"))
                        })?;
                        Ok(if created {
                            FeeOutcome::Created(checked)
                        } else {
                            FeeOutcome::Replayed(checked)
                        })
                    }
                })
            };
            let status = match &outcome {
                Ok(FeeOutcome::Created(_)) => 201,
                Ok(FeeOutcome::Replayed(_)) => 200,
                Ok(FeeOutcome::UnknownMatter | FeeOutcome::KeyReused) => 422,
                Err(e) => e.status().as_u16(),
            };
            self.core.log.record_result_later(&receipt, status).await?;
            if matches!(outcome, Ok(FeeOutcome::UnknownMatter)) {
                self.core.alerts.raise(NewSecurityEvent {
                    firm_id: grant.firm_id().to_string(),
                    kind: EventKind::ForgedId,
                    grant_id: Some(grant.grant_id().to_string()),
                    connector: Some(self.connector.id().to_string()),
                    tripwire_id: None,
                    source_ip: None,
                    detail: format!(
                        "a fee ({route}) named a matter id that maps to no matter of this firm: another grant's id, or a forged one"
                    ),
                });
            }
            outcome
        })
    }
}

/// JSON Schema counts `1500.0` as an integer, so a checked body may carry one
/// where the firm database wants an integer: such numbers become integers (so
/// they are written, and a retry sending `1500` is the same request).
fn integral_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0) {
                if f >= i64::MIN as f64 && f < i64::MAX as f64 {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers_as_integers),
        Value::Object(members) => members.values_mut().for_each(integral_numbers_as_integers),
        _ => {}
    }
}

async fn matter_exists(db: &FirmDb, matter_id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT id FROM matters WHERE id = $1")
        .bind(matter_id)
        .fetch_optional(db.pool())
        .await?
        .is_some())
}

/// Inserts the fee and its business-account transaction once per key; returns
/// (stored fee, created now), or `None` when the key came with another body.
async fn write_fee(
    db: &FirmDb,
    fee: &Value,
    fee_id: &str,
    source: &str,
    key: &str,
    request_sha256: &str,
) -> Result<Option<(Value, bool)>, StoreError> {
    let now = now_ms();
    let transaction_id = uuid::Uuid::new_v4().to_string();
    let mut tx = db.pool().begin().await?;
    let inserted = sqlx::query("INSERT INTO fees (id, matter_id, amount_cents, currency, description, fee_date, source, idempotency_key, request_sha256, transaction_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (source, idempotency_key) DO NOTHING")
        .bind(fee_id).bind(fee["matter_id"].as_str()).bind(fee["amount_cents"].as_i64()).bind(fee["currency"].as_str())
        .bind(fee["description"].as_str()).bind(fee["fee_date"].as_str()).bind(source).bind(key).bind(request_sha256)
        .bind(&transaction_id).bind(now)
        .execute(&mut *tx).await?.rows_affected() == 1;
    if inserted {
        let seq = next_change_seqs(&mut tx, 1).await?;
        sqlx::query("INSERT INTO accounting_transactions (id, account, amount_cents, currency, matter_id, reference, posted_at, internal_note, change_seq) VALUES ($1, 'business', $2, $3, $4, $5, $6, $7, $8)")
            .bind(&transaction_id).bind(fee["amount_cents"].as_i64()).bind(fee["currency"].as_str()).bind(fee["matter_id"].as_str())
            .bind(format!("FEE-{}", &fee_id[..8])).bind(now).bind("Fee posted by the accounting connector").bind(seq)
            .execute(&mut *tx).await?;
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    let row = sqlx::query("SELECT id, matter_id, amount_cents, currency, description, fee_date, request_sha256, transaction_id FROM fees WHERE source = $1 AND idempotency_key = $2")
        .bind(source).bind(key).fetch_one(db.pool()).await?;
    if row.get::<String, _>("request_sha256") != request_sha256 {
        return Ok(None);
    }
    Ok(Some((
        json!({
            "id": row.get::<String, _>("id"),
            "matter_id": row.get::<String, _>("matter_id"),
            "amount_cents": row.get::<i64, _>("amount_cents"),
            "currency": row.get::<String, _>("currency"),
            "description": row.get::<String, _>("description"),
            "fee_date": row.get::<String, _>("fee_date"),
            "transaction_id": row.get::<String, _>("transaction_id"),
        }),
        inserted,
    )))
}

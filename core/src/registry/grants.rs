//! Grants (firm x connector, default off) and the consent ledger. Every switch
//! appends a ledger entry in the same transaction: who, when, which connector
//! and the hash of the exact data contract consented to. Switching off also
//! revokes the grant's credentials and tokens in that same transaction.
//! Each entry also names the firm's minimisation choices and the hash of
//! schema and choices together (the consented contract, `registry::choices`).

use super::choices::choices_in_tx;
use super::{is_unique_violation, Registry, StoreError, StoreResult};
use crate::clock::now_ms;
use scopegate_contract::choices::{contract_hash, Chosen};
use scopegate_contract::ConnectorContract;
use sqlx::{Any, Row, Transaction};

/// A firm's switch for one connector.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub firm_id: String,
    pub connector: String,
    pub enabled: bool,
    /// Hash of the data contract the firm consented to; a connector whose
    /// schemas changed since does not serve this grant until re-consent.
    pub schema_hash: String,
    pub contract_version: String,
    pub updated_at: i64,
}

/// One switch, as kept forever in the consent ledger.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub firm_id: String,
    pub grant_id: String,
    pub connector: String,
    pub action: String,
    pub actor: String,
    pub schema_hash: String,
    pub contract_version: String,
    pub at: i64,
    /// The minimisation choices in force with this entry (empty: the connector offers none).
    pub choices: Chosen,
    /// Hash of the schema hash and the choices: the consented contract.
    pub contract_hash: String,
    /// Why, when the gateway itself switched (e.g. `unused for 90 days`).
    pub reason: Option<String>,
}

const GRANT_COLUMNS: &str =
    "id, firm_id, connector, enabled, schema_hash, contract_version, updated_at";

impl Registry {
    /// Switches a connector on for a firm (or records re-consent to a newer contract).
    pub async fn enable_grant(
        &self,
        firm_id: &str,
        contract: &ConnectorContract,
        actor: &str,
    ) -> StoreResult<Grant> {
        let actor = validate_actor(actor)?;
        self.active_firm(firm_id).await?;
        let connector = contract.manifest.id.as_str();
        let hash = contract.schema_hash();
        let version = contract.manifest.contract_version.as_str();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let existing = grant_in_tx(&mut tx, firm_id, connector).await?;
        let grant_id = match existing {
            Some(g) if g.enabled && g.schema_hash == hash => {
                return Err(StoreError::Conflict(format!(
                    "connector {connector} is already enabled for firm {firm_id}"
                )));
            }
            Some(g) => {
                sqlx::query("UPDATE grants SET enabled = 1, schema_hash = $1, contract_version = $2, updated_at = $3 WHERE id = $4")
                    .bind(&hash).bind(version).bind(now).bind(&g.id)
                    .execute(&mut *tx).await?;
                g.id
            }
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                sqlx::query("INSERT INTO grants (id, firm_id, connector, enabled, schema_hash, contract_version, updated_at) VALUES ($1, $2, $3, 1, $4, $5, $6)")
                    .bind(&id).bind(firm_id).bind(connector).bind(&hash).bind(version).bind(now)
                    .execute(&mut *tx).await
                    .map_err(|e| if is_unique_violation(&e) {
                        StoreError::Conflict(format!("connector {connector} is already enabled for firm {firm_id}"))
                    } else { e.into() })?;
                id
            }
        };
        let chosen = contract.effective_choices(&choices_in_tx(&mut tx, firm_id, connector).await?);
        append_ledger(
            &mut tx,
            &NewEntry {
                firm_id,
                grant_id: &grant_id,
                connector,
                action: "enable",
                actor,
                schema_hash: &hash,
                contract_version: version,
                at: now,
                choices: &chosen,
                reason: None,
            },
        )
        .await?;
        remember_contract_fields(&mut tx, contract, &hash).await?;
        tx.commit().await?;
        self.grant(firm_id, connector).await
    }

    /// Switches a connector off: the grant, its credentials and its tokens die together.
    pub async fn disable_grant(
        &self,
        firm_id: &str,
        connector: &str,
        actor: &str,
    ) -> StoreResult<Grant> {
        self.disable_grant_because(firm_id, connector, actor, None)
            .await
    }

    /// [`Registry::disable_grant`] with the reason the ledger keeps (the
    /// gateway's own switch-offs name theirs). The choices recorded are those
    /// of the grant's last consent.
    pub async fn disable_grant_because(
        &self,
        firm_id: &str,
        connector: &str,
        actor: &str,
        reason: Option<&str>,
    ) -> StoreResult<Grant> {
        let actor = validate_actor(actor)?;
        self.firm(firm_id).await?;
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let grant = match grant_in_tx(&mut tx, firm_id, connector).await? {
            Some(g) if g.enabled => g,
            _ => {
                return Err(StoreError::Conflict(format!(
                    "connector {connector} is not enabled for firm {firm_id}"
                )))
            }
        };
        let changed = sqlx::query(
            "UPDATE grants SET enabled = 0, updated_at = $1 WHERE id = $2 AND enabled = 1",
        )
        .bind(now)
        .bind(&grant.id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed != 1 {
            return Err(StoreError::Conflict(format!(
                "connector {connector} is not enabled for firm {firm_id}"
            )));
        }
        sqlx::query(
            "UPDATE credentials SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&grant.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&grant.id)
        .execute(&mut *tx)
        .await?;
        let chosen = last_consented_choices(&mut tx, &grant.id).await?;
        append_ledger(
            &mut tx,
            &NewEntry {
                firm_id,
                grant_id: &grant.id,
                connector,
                action: "disable",
                actor,
                schema_hash: &grant.schema_hash,
                contract_version: &grant.contract_version,
                at: now,
                choices: &chosen,
                reason,
            },
        )
        .await?;
        tx.commit().await?;
        self.grant(firm_id, connector).await
    }

    pub async fn grant(&self, firm_id: &str, connector: &str) -> StoreResult<Grant> {
        let sql =
            format!("SELECT {GRANT_COLUMNS} FROM grants WHERE firm_id = $1 AND connector = $2");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(firm_id)
            .bind(connector)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "firm {firm_id} has never enabled connector {connector}"
                ))
            })?;
        Ok(grant_from_row(&row))
    }

    /// Enabled grants of one connector consented at `schema_hash` (background work).
    pub async fn active_grants_of(
        &self,
        connector: &str,
        schema_hash: &str,
    ) -> StoreResult<Vec<Grant>> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE connector = $1 AND enabled = 1 AND schema_hash = $2 ORDER BY firm_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(connector)
            .bind(schema_hash)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(grant_from_row).collect())
    }

    /// True while grant `grant_id` of the firm is enabled at `schema_hash`.
    pub async fn grant_is_active(
        &self,
        firm_id: &str,
        grant_id: &str,
        schema_hash: &str,
    ) -> StoreResult<bool> {
        // A grant found on stays on until an update or delete of grants moves
        // the generation (switching off, re-consenting, a purge); only "on"
        // is kept, and a grant not yet inserted has no id to be asked about.
        let generation = self.generation().await?;
        let key = format!("{grant_id}\0{firm_id}\0{schema_hash}");
        if self.active_grants.get(&key, generation).is_some() {
            return Ok(true);
        }
        let row = sqlx::query(
            "SELECT id FROM grants WHERE id = $1 AND firm_id = $2 AND enabled = 1 AND schema_hash = $3",
        )
        .bind(grant_id)
        .bind(firm_id)
        .bind(schema_hash)
        .fetch_optional(self.pool())
        .await?;
        if row.is_some() {
            self.active_grants.put(key, generation, ());
        }
        Ok(row.is_some())
    }

    /// A named background cursor of a grant (0 when never moved).
    pub async fn connector_cursor(&self, grant_id: &str, name: &str) -> StoreResult<i64> {
        let row =
            sqlx::query("SELECT value FROM connector_cursors WHERE grant_id = $1 AND name = $2")
                .bind(grant_id)
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|r| r.get::<i64, _>("value")).unwrap_or(0))
    }

    /// Moves a cursor from `from` to `to`; false when it no longer stood at `from`.
    pub async fn advance_connector_cursor(
        &self,
        grant_id: &str,
        name: &str,
        from: i64,
        to: i64,
    ) -> StoreResult<bool> {
        let now = now_ms();
        let moved = if from == 0 {
            sqlx::query("INSERT INTO connector_cursors (grant_id, name, value, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (grant_id, name) DO UPDATE SET value = $3, updated_at = $4 WHERE connector_cursors.value = 0")
                .bind(grant_id).bind(name).bind(to).bind(now)
                .execute(self.pool()).await?
        } else {
            sqlx::query("UPDATE connector_cursors SET value = $3, updated_at = $4 WHERE grant_id = $1 AND name = $2 AND value = $5")
                .bind(grant_id).bind(name).bind(to).bind(now).bind(from)
                .execute(self.pool()).await?
        };
        Ok(moved.rows_affected() == 1)
    }

    /// Grants of one firm, or of every firm when `firm_id` is `None` (operator view).
    pub async fn grants(&self, firm_id: Option<&str>) -> StoreResult<Vec<Grant>> {
        let rows = match firm_id {
            Some(firm) => {
                self.firm(firm).await?;
                let sql = format!(
                    "SELECT {GRANT_COLUMNS} FROM grants WHERE firm_id = $1 ORDER BY connector"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(firm)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                let sql = format!("SELECT {GRANT_COLUMNS} FROM grants ORDER BY firm_id, connector");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(rows.iter().map(grant_from_row).collect())
    }

    /// The consent ledger of one firm, oldest first.
    pub async fn consent_ledger(&self, firm_id: &str) -> StoreResult<Vec<LedgerEntry>> {
        self.firm(firm_id).await?;
        let rows = sqlx::query("SELECT id, firm_id, grant_id, connector, action, actor, schema_hash, contract_version, at, choices, contract_hash, reason FROM consent_ledger WHERE firm_id = $1 ORDER BY id")
            .bind(firm_id).fetch_all(self.pool()).await?;
        Ok(rows
            .iter()
            .map(|r| LedgerEntry {
                id: r.get("id"),
                firm_id: r.get("firm_id"),
                grant_id: r.get("grant_id"),
                connector: r.get("connector"),
                action: r.get("action"),
                actor: r.get("actor"),
                schema_hash: r.get("schema_hash"),
                contract_version: r.get("contract_version"),
                at: r.get("at"),
                choices: serde_json::from_str(&r.get::<String, _>("choices")).unwrap_or_default(),
                contract_hash: r.get("contract_hash"),
                reason: r.get("reason"),
            })
            .collect())
    }
}

pub(super) fn validate_actor(actor: &str) -> StoreResult<&str> {
    let actor = actor.trim();
    if actor.is_empty() || actor.len() > 200 {
        return Err(StoreError::Invalid(
            "the actor (who is switching) must be named, at most 200 characters".into(),
        ));
    }
    Ok(actor)
}

pub(super) async fn grant_in_tx(
    tx: &mut Transaction<'_, Any>,
    firm_id: &str,
    connector: &str,
) -> StoreResult<Option<Grant>> {
    let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE firm_id = $1 AND connector = $2");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(firm_id)
        .bind(connector)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.as_ref().map(grant_from_row))
}

/// One consent-ledger entry about to be appended.
pub(super) struct NewEntry<'a> {
    pub firm_id: &'a str,
    pub grant_id: &'a str,
    pub connector: &'a str,
    pub action: &'a str,
    pub actor: &'a str,
    pub schema_hash: &'a str,
    pub contract_version: &'a str,
    pub at: i64,
    pub choices: &'a Chosen,
    pub reason: Option<&'a str>,
}

pub(super) async fn append_ledger(
    tx: &mut Transaction<'_, Any>,
    e: &NewEntry<'_>,
) -> StoreResult<()> {
    let choices = serde_json::to_string(e.choices).expect("choices serialise");
    sqlx::query("INSERT INTO consent_ledger (firm_id, grant_id, connector, action, actor, schema_hash, contract_version, at, choices, contract_hash, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(e.firm_id).bind(e.grant_id).bind(e.connector).bind(e.action).bind(e.actor).bind(e.schema_hash).bind(e.contract_version).bind(e.at)
        .bind(choices).bind(contract_hash(e.schema_hash, e.choices)).bind(e.reason)
        .execute(&mut **tx).await?;
    Ok(())
}

/// The choices of the grant's newest ledger entry (empty before any).
async fn last_consented_choices(
    tx: &mut Transaction<'_, Any>,
    grant_id: &str,
) -> StoreResult<Chosen> {
    let row = sqlx::query(
        "SELECT choices FROM consent_ledger WHERE grant_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(grant_id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row
        .and_then(|r| serde_json::from_str(&r.get::<String, _>("choices")).ok())
        .unwrap_or_default())
}

pub(super) fn grant_from_row(row: &sqlx::any::AnyRow) -> Grant {
    Grant {
        id: row.get("id"),
        firm_id: row.get("firm_id"),
        connector: row.get("connector"),
        enabled: row.get::<i64, _>("enabled") != 0,
        schema_hash: row.get("schema_hash"),
        contract_version: row.get("contract_version"),
        updated_at: row.get("updated_at"),
    }
}

/// Keeps the field names of a consented contract (per schema) under its hash,
/// so settings can later say which fields a newer contract adds or drops.
async fn remember_contract_fields(
    tx: &mut Transaction<'_, Any>,
    contract: &ConnectorContract,
    hash: &str,
) -> StoreResult<()> {
    let fields = contract_field_names(contract);
    sqlx::query("INSERT INTO contract_fields (schema_hash, connector, contract_version, fields) VALUES ($1, $2, $3, $4) ON CONFLICT (schema_hash) DO NOTHING")
        .bind(hash)
        .bind(&contract.manifest.id)
        .bind(&contract.manifest.contract_version)
        .bind(serde_json::to_string(&fields).expect("json"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Schema name -> its top-level property names.
pub fn contract_field_names(
    contract: &ConnectorContract,
) -> std::collections::BTreeMap<String, Vec<String>> {
    contract
        .schemas
        .iter()
        .map(|(name, doc)| {
            let props = doc
                .get("properties")
                .and_then(|p| p.as_object())
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            (name.clone(), props)
        })
        .collect()
}

impl Registry {
    /// The field names (per schema) of the contract with this hash, if a firm ever consented to it.
    pub async fn contract_fields(
        &self,
        schema_hash: &str,
    ) -> StoreResult<Option<std::collections::BTreeMap<String, Vec<String>>>> {
        let row = sqlx::query("SELECT fields FROM contract_fields WHERE schema_hash = $1")
            .bind(schema_hash)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.and_then(|r| serde_json::from_str(&r.get::<String, _>("fields")).ok()))
    }
}

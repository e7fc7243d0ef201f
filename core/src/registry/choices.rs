//! A firm's minimisation choices per connector (`grant_choices`), kept
//! whether or not the connector is on; a firm that never chose has the
//! manifest's defaults. Changing a choice while the connector is on is a
//! consent event: the ledger gets a `choose` entry with the new choices and
//! the hash of schema and choices, in the same transaction.

use super::grants::{append_ledger, grant_in_tx, validate_actor, NewEntry};
use super::{Registry, StoreError, StoreResult};
use crate::clock::now_ms;
use scopegate_contract::choices::Chosen;
use scopegate_contract::ConnectorContract;
use sqlx::{Any, Row, Transaction};

/// What a change of choices did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChoiceChange {
    pub before: Chosen,
    pub after: Chosen,
    /// A ledger entry was written (the connector is on and a choice changed).
    pub consent_recorded: bool,
}

impl Registry {
    /// The choices a firm stored for a connector (empty when it never chose).
    pub async fn stored_choices(&self, firm_id: &str, connector: &str) -> StoreResult<Chosen> {
        let row =
            sqlx::query("SELECT choices FROM grant_choices WHERE firm_id = $1 AND connector = $2")
                .bind(firm_id)
                .bind(connector)
                .fetch_optional(self.pool())
                .await?;
        Ok(decode(row))
    }

    /// The stored choices as of registry generation `generation` (the one a
    /// request read when it resolved its token): kept in memory while that
    /// generation stands, as any change of choices moves it. Without a
    /// generation, read from the registry.
    pub async fn stored_choices_under(
        &self,
        firm_id: &str,
        connector: &str,
        generation: Option<i64>,
    ) -> StoreResult<Chosen> {
        let Some(generation) = generation else {
            return self.stored_choices(firm_id, connector).await;
        };
        // Firm ids and connector ids hold no NUL.
        let key = format!("{firm_id}\0{connector}");
        if let Some(chosen) = self.choices.get(&key, generation) {
            return Ok(chosen);
        }
        // Read after `generation` was: what it finds is at least as new.
        let chosen = self.stored_choices(firm_id, connector).await?;
        self.choices.put(key, generation, chosen.clone());
        Ok(chosen)
    }

    /// Sets some of a firm's choices for a connector (the others stay). With
    /// the connector on and its effective choices changed, appends a `choose`
    /// ledger entry naming `actor`.
    pub async fn set_choices(
        &self,
        firm_id: &str,
        contract: &ConnectorContract,
        asked: &Chosen,
        actor: &str,
    ) -> StoreResult<ChoiceChange> {
        let actor = validate_actor(actor)?;
        contract
            .check_choices(asked)
            .map_err(|(_, detail)| StoreError::Invalid(detail))?;
        self.active_firm(firm_id).await?;
        let connector = contract.manifest.id.as_str();
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let stored = choices_in_tx(&mut tx, firm_id, connector).await?;
        let before = contract.effective_choices(&stored);
        let mut next = stored.clone();
        next.extend(asked.iter().map(|(k, v)| (k.clone(), v.clone())));
        let after = contract.effective_choices(&next);
        sqlx::query("INSERT INTO grant_choices (firm_id, connector, choices, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (firm_id, connector) DO UPDATE SET choices = $3, updated_at = $4, updated_by = $5")
            .bind(firm_id)
            .bind(connector)
            .bind(serde_json::to_string(&next).expect("choices serialise"))
            .bind(now)
            .bind(actor)
            .execute(&mut *tx)
            .await?;
        let grant = grant_in_tx(&mut tx, firm_id, connector).await?;
        let consent_recorded = match grant {
            Some(g) if g.enabled && before != after => {
                append_ledger(
                    &mut tx,
                    &NewEntry {
                        firm_id,
                        grant_id: &g.id,
                        connector,
                        action: "choose",
                        actor,
                        schema_hash: &g.schema_hash,
                        contract_version: &g.contract_version,
                        at: now,
                        choices: &after,
                        reason: None,
                    },
                )
                .await?;
                true
            }
            _ => false,
        };
        tx.commit().await?;
        Ok(ChoiceChange {
            before,
            after,
            consent_recorded,
        })
    }
}

/// The stored choices, read inside a write transaction.
pub(super) async fn choices_in_tx(
    tx: &mut Transaction<'_, Any>,
    firm_id: &str,
    connector: &str,
) -> StoreResult<Chosen> {
    let row =
        sqlx::query("SELECT choices FROM grant_choices WHERE firm_id = $1 AND connector = $2")
            .bind(firm_id)
            .bind(connector)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(decode(row))
}

fn decode(row: Option<sqlx::any::AnyRow>) -> Chosen {
    row.and_then(|r| serde_json::from_str(&r.get::<String, _>("choices")).ok())
        .unwrap_or_default()
}

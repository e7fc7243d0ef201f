//! Decoy credentials: a client id and secret in the very format of a real
//! credential, printed once to be planted where a thief would look (a config
//! backup, a password manager). Only the client id is kept: any use of it is
//! an alert, whatever secret comes with it, so the secret need not be stored.

use crate::clock::now_ms;
use crate::registry::{Registry, StoreError, StoreResult};
use crate::secrets::{self, SecretKind};
use secrecy::SecretString;
use sqlx::Row;

/// A decoy as planted: shown once.
#[derive(Debug)]
pub struct PlantedDecoy {
    pub tripwire_id: String,
    pub client_id: String,
    pub client_secret: SecretString,
}

/// A decoy found by its client id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoy {
    pub tripwire_id: String,
    pub firm_id: String,
    pub label: String,
}

/// What a presented client id is: never issued, a real credential's, or a decoy's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientIdKind {
    Unknown,
    Issued,
    Decoy(Decoy),
}

impl Registry {
    /// Plants a decoy credential for `firm_id`, labelled with where it is planted.
    pub async fn add_tripwire(&self, firm_id: &str, label: &str) -> StoreResult<PlantedDecoy> {
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 200 || label.chars().any(char::is_control) {
            return Err(StoreError::Invalid(
                "label must say where the decoy is planted (1-200 characters, no control characters)"
                    .into(),
            ));
        }
        self.active_firm(firm_id).await?;
        let tripwire_id = uuid::Uuid::new_v4().to_string();
        let client_id = secrets::generate(SecretKind::ClientId);
        let secret = secrets::generate(SecretKind::ClientSecret);
        sqlx::query("INSERT INTO tripwires (id, firm_id, label, client_id, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&tripwire_id).bind(firm_id).bind(label).bind(&client_id).bind(now_ms())
            .execute(self.pool()).await?;
        Ok(PlantedDecoy {
            tripwire_id,
            client_id,
            client_secret: SecretString::from(secret),
        })
    }

    /// Whether `client_id` was issued here, planted as a decoy, or neither: one
    /// query either way, so a decoy costs what a real client id costs.
    pub async fn client_id_kind(&self, client_id: &str) -> StoreResult<ClientIdKind> {
        if secrets::check_format(SecretKind::ClientId, client_id).is_err() {
            return Ok(ClientIdKind::Unknown);
        }
        let row = sqlx::query("SELECT 'issued' AS kind, firm_id, '' AS id, '' AS label FROM credentials WHERE client_id = $1 UNION ALL SELECT 'decoy' AS kind, firm_id, id, label FROM tripwires WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(match row {
            None => ClientIdKind::Unknown,
            Some(r) if r.get::<String, _>("kind") == "decoy" => ClientIdKind::Decoy(Decoy {
                tripwire_id: r.get("id"),
                firm_id: r.get("firm_id"),
                label: r.get("label"),
            }),
            Some(_) => ClientIdKind::Issued,
        })
    }
}

/// Plants a decoy for `firm_id` ([`Registry::add_tripwire`]) and enters
/// "tripwire planted" in the firm's access trail, as `actor` from `origin`:
/// the tripwire's id and label, never its client id or secret (the firm's
/// admins read the trail).
pub async fn plant(
    registry: &Registry,
    keys: &crate::keys::LogKeys,
    firm_id: &str,
    label: &str,
    actor: &str,
    origin: &str,
) -> StoreResult<PlantedDecoy> {
    let planted = registry.add_tripwire(firm_id, label).await?;
    let entry = crate::access_trail::NewEntry::firm(
        firm_id,
        crate::access_trail::Kind::TripwirePlanted,
        actor,
        origin,
        serde_json::json!({ "tripwire_id": planted.tripwire_id, "label": label }),
    );
    crate::access_trail::record(registry, keys, entry).await?;
    Ok(planted)
}

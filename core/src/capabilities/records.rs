//! [`GrantRecords`]: a connector's records in the registry, under the grant's
//! own namespace; secrets sealed with the master key and bound (as associated
//! data) to the connector, the purpose, the firm and the grant; consents
//! parked under the SHA-256 of an unguessable state, taken back once. Keys
//! under `core.` are the gateway's own (a grant's pseudonym key) and refused.

use super::handles::grant_for_parked;
use super::ForConnector;
use crate::binding::{binding, PARKED_PURPOSE};
use crate::clock::now_ms;
use crate::registry::connector_records::{ParkedRow, RecordChange};
use crate::registry::StoreError;
use crate::secrets::sha256_hex;
use crate::security::pseudonyms::CORE_RECORDS;
use scopegate_contract::{
    BoxFuture, ConnectorError, FirmGrant, GrantRecords, Parked, Principal, Record, RecordWrite,
};
use serde_json::Value;
use std::time::Duration;

fn decode(rows: Vec<(String, String, i64)>) -> Result<Vec<Record>, ConnectorError> {
    rows.into_iter()
        .map(|(key, text, version)| {
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| ConnectorError::Internal(format!("record {key} is not JSON: {e}")))?;
            Ok(Record {
                key,
                value,
                version,
            })
        })
        .collect()
}

fn principal_text(principal: &Principal) -> String {
    match principal {
        Principal::Credential(id) => format!("credential:{id}"),
        Principal::Session(id) => format!("session:{id}"),
        Principal::Lease(id) => format!("lease:{id}"),
        Principal::Operator(id) => format!("operator:{id}"),
    }
}

fn principal_from(text: &str) -> Principal {
    match text.split_once(':') {
        Some(("credential", id)) => Principal::Credential(id.into()),
        Some(("session", id)) => Principal::Session(id.into()),
        Some(("operator", id)) => Principal::Operator(id.into()),
        Some((_, id)) => Principal::Lease(id.into()),
        None => Principal::Lease(text.into()),
    }
}

/// Refuses a record key of the gateway's own (the grant's pseudonym key).
fn connectors_key(key: &str) -> Result<(), ConnectorError> {
    if key.starts_with(CORE_RECORDS) {
        Err(ConnectorError::Internal(format!(
            "record keys starting {CORE_RECORDS} are the gateway's own"
        )))
    } else {
        Ok(())
    }
}

impl GrantRecords for ForConnector {
    fn get<'a>(
        &'a self,
        grant: &'a FirmGrant,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Record>, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            connectors_key(key)?;
            let row = self.core.registry.record(grant.grant_id(), key).await?;
            Ok(decode(row.into_iter().collect())?.pop())
        })
    }

    fn get_many<'a>(
        &'a self,
        grant: &'a FirmGrant,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Record>, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            keys.iter().try_for_each(|k| connectors_key(k))?;
            decode(
                self.core
                    .registry
                    .records_in(grant.grant_id(), keys)
                    .await?,
            )
        })
    }

    fn list<'a>(
        &'a self,
        grant: &'a FirmGrant,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Record>, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            decode(
                self.core
                    .registry
                    .records_with_prefix(grant.grant_id(), prefix, after, limit)
                    .await?,
            )
        })
    }

    fn write<'a>(
        &'a self,
        grant: &'a FirmGrant,
        writes: Vec<RecordWrite>,
    ) -> BoxFuture<'a, Result<bool, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            for w in &writes {
                match w {
                    RecordWrite::Put { key, .. }
                    | RecordWrite::Swap { key, .. }
                    | RecordWrite::Delete { key } => connectors_key(key)?,
                }
            }
            let text = |v: &Value| serde_json::to_string(v).expect("JSON values serialise");
            let changes: Vec<RecordChange> = writes
                .iter()
                .map(|w| match w {
                    RecordWrite::Put { key, value } => RecordChange::Put(key.clone(), text(value)),
                    RecordWrite::Swap {
                        key,
                        value,
                        expected,
                    } => RecordChange::Swap(key.clone(), text(value), *expected),
                    RecordWrite::Delete { key } => RecordChange::Delete(key.clone()),
                })
                .collect();
            Ok(self
                .core
                .registry
                .write_records(
                    grant.grant_id(),
                    grant.firm_id(),
                    self.connector.id(),
                    &changes,
                )
                .await?)
        })
    }

    fn seal(
        &self,
        grant: &FirmGrant,
        record_key: &str,
        purpose: &str,
        secret: &[u8],
    ) -> Result<String, ConnectorError> {
        self.own(grant)?;
        connectors_key(record_key)?;
        let bound = binding(
            self.connector.id(),
            purpose,
            grant.firm_id(),
            grant.grant_id(),
            record_key,
        );
        self.core
            .keyring
            .seal(purpose, &bound, secret)
            .map_err(|e| ConnectorError::Internal(format!("cannot seal a {purpose}: {e}")))
    }

    fn open(
        &self,
        grant: &FirmGrant,
        record_key: &str,
        purpose: &str,
        sealed: &str,
    ) -> Result<Vec<u8>, ConnectorError> {
        self.own(grant)?;
        connectors_key(record_key)?;
        let bound = binding(
            self.connector.id(),
            purpose,
            grant.firm_id(),
            grant.grant_id(),
            record_key,
        );
        self.core
            .keyring
            .open(purpose, &bound, sealed)
            .map_err(|e| ConnectorError::Internal(format!("cannot open a sealed {purpose}: {e}")))
    }

    fn park<'a>(
        &'a self,
        grant: &'a FirmGrant,
        prefix: &'a str,
        payload: &'a [u8],
        ttl: Duration,
    ) -> BoxFuture<'a, Result<String, ConnectorError>> {
        Box::pin(async move {
            self.own(grant)?;
            let mut random = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
            let state = format!("{prefix}{}", hex::encode(random));
            let state_sha256 = sha256_hex(&state);
            let row = ParkedRow {
                grant_id: grant.grant_id().to_string(),
                firm_id: grant.firm_id().to_string(),
                principal: principal_text(grant.principal()),
                payload_sealed: self.seal(grant, &state_sha256, PARKED_PURPOSE, payload)?,
            };
            self.core
                .registry
                .park_consent(
                    &state_sha256,
                    &row,
                    self.connector.id(),
                    now_ms() + ttl.as_millis() as i64,
                )
                .await?;
            Ok(state)
        })
    }

    fn take<'a>(&'a self, state: &'a str) -> BoxFuture<'a, Result<Option<Parked>, ConnectorError>> {
        Box::pin(async move {
            let state_sha256 = sha256_hex(state);
            let Some(row) = self
                .core
                .registry
                .take_parked(&state_sha256, self.connector.id())
                .await?
            else {
                return Ok(None);
            };
            let stored = match self
                .core
                .registry
                .grant(&row.firm_id, self.connector.id())
                .await
            {
                Ok(g) if g.id == row.grant_id => g,
                Ok(_) | Err(StoreError::NotFound(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let Ok(grant) =
                grant_for_parked(&stored, &self.connector, principal_from(&row.principal))
            else {
                // The firm consented to another contract meanwhile: the state is void.
                return Ok(None);
            };
            let payload = self.open(&grant, &state_sha256, PARKED_PURPOSE, &row.payload_sealed)?;
            Ok(Some(Parked { grant, payload }))
        })
    }
}

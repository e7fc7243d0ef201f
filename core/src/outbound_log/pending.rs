//! A record queued for the outbound log's writer, and how a batch of them is
//! chained: each firm's records numbered on from its chain head and sealed
//! under the current key, in queue order. Both of the writer's commit paths
//! (a sqlx transaction, and SQLite's C API on a registry file) chain a batch
//! this way, between reading the heads and writing the records.
//!
//! The two lists are serialized once, when the record is queued (on the
//! sender's task, in parallel), to the JSON text the row stores; the chain
//! hash is taken over the canonical form built from that text (`stored`), the
//! bytes the verifier hashes, so the writer's one serial step does no list
//! serializing at all.

use super::stored::StoredRecord;
use crate::keyed_chain::keyed_hash_bytes;
use crate::keys::LogKeys;
use std::collections::BTreeMap;

/// A record as queued: everything but its place in the chain.
#[derive(Debug, Clone)]
pub(super) struct PendingRecord {
    pub firm_id: String,
    pub kind: &'static str,
    pub grant_id: String,
    pub connector: String,
    pub direction: &'static str,
    pub method: String,
    pub target: String,
    /// The field names as the row stores them: `serde_json`'s text of the list.
    pub fields: String,
    /// The record ids as the row stores them: `serde_json`'s text of the list.
    pub record_ids: String,
    pub payload_sha256: String,
    pub bytes: i64,
    pub send_seq: Option<i64>,
    pub status: Option<i64>,
    pub latency_us: Option<i64>,
}

/// The stored text of an empty list (a result's record ids).
pub(super) const NO_IDS: &str = "[]";

/// A list's stored text.
pub(super) fn list_text(list: &[String]) -> String {
    serde_json::to_string(list).expect("a list of strings always serializes")
}

impl PendingRecord {
    /// True for a send whose record ids the record-id index must take in.
    pub(super) fn has_record_ids(&self) -> bool {
        self.kind == "send" && self.record_ids != NO_IDS
    }
}

/// A record's place in its firm's chain, once chained.
pub(super) struct Link {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// A batch chained onto its firms' heads.
pub(super) struct ChainedBatch {
    /// When the batch was stamped.
    pub at: i64,
    /// The id of the key every record was sealed under.
    pub mac_key: String,
    /// Each queued record's link, in queue order (within a firm, chain order).
    pub links: Vec<Link>,
    /// Each firm's new chain head: (firm id, seq, hash).
    pub heads: Vec<(String, i64, String)>,
}

impl ChainedBatch {
    /// The row of `record` (the batch's `i`th): its columns as stored.
    pub(super) fn row<'a>(&'a self, record: &'a PendingRecord, i: usize) -> StoredRecord<'a> {
        stored(record, &self.links[i], self.at, &self.mac_key)
    }
}

fn stored<'a>(p: &'a PendingRecord, link: &'a Link, at: i64, mac_key: &'a str) -> StoredRecord<'a> {
    StoredRecord {
        firm_id: &p.firm_id,
        seq: link.seq,
        kind: p.kind,
        at,
        grant_id: &p.grant_id,
        connector: &p.connector,
        direction: p.direction,
        method: &p.method,
        target: &p.target,
        fields: &p.fields,
        record_ids: &p.record_ids,
        payload_sha256: &p.payload_sha256,
        bytes: p.bytes,
        send_seq: p.send_seq,
        status: p.status,
        latency_us: p.latency_us,
        prev_hash: &link.prev_hash,
        hash: &link.hash,
        mac_key,
    }
}

/// The firms of a batch, sorted and distinct: the order heads are locked in.
pub(super) fn firms_of(records: &[PendingRecord]) -> Vec<&str> {
    let mut firms: Vec<&str> = records.iter().map(|r| r.firm_id.as_str()).collect();
    firms.sort_unstable();
    firms.dedup();
    firms
}

/// Chains `records` onto `heads` (each firm's current (seq, hash)), stamped
/// `at` and sealed under `keys`' current key. `None` when a firm of the batch
/// has no head.
pub(super) fn chain(
    records: &[PendingRecord],
    mut heads: BTreeMap<String, (i64, String)>,
    at: i64,
    keys: &LogKeys,
) -> Option<ChainedBatch> {
    let key = keys.current();
    let mac_key = key.id().to_string();
    let mut links: Vec<Option<Link>> = records.iter().map(|_| None).collect();
    let mut by_firm: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        by_firm.entry(r.firm_id.as_str()).or_default().push(i);
    }
    let mut canonical = Vec::with_capacity(8192);
    let mut new_heads = Vec::with_capacity(by_firm.len());
    for (firm_id, indexes) in by_firm {
        let (mut seq, mut prev_hash) = heads.remove(firm_id)?;
        for i in indexes {
            seq += 1;
            let mut link = Link {
                seq,
                prev_hash,
                hash: String::new(),
            };
            stored(&records[i], &link, at, &mac_key).canonical_into(&mut canonical);
            link.hash = keyed_hash_bytes(key, &canonical);
            prev_hash = link.hash.clone();
            links[i] = Some(link);
        }
        new_heads.push((firm_id.to_string(), seq, prev_hash));
    }
    Some(ChainedBatch {
        at,
        mac_key,
        links: links
            .into_iter()
            .map(|l| l.expect("every record is in its firm's run"))
            .collect(),
        heads: new_heads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keyring;
    use crate::outbound_log::record::LogRecord;

    fn pending(firm: &str, ids: &[&str]) -> PendingRecord {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        PendingRecord {
            firm_id: firm.into(),
            kind: "send",
            grant_id: "gr_\"quoted\"".into(),
            connector: "accounting".into(),
            direction: "outbound",
            method: "GET".into(),
            target: "/v1/transactions ünïcode\n".into(),
            fields: list_text(&["id".into(), "amount\tcents".into()]),
            record_ids: list_text(&ids),
            payload_sha256: "ab".repeat(32),
            bytes: 20480,
            send_seq: None,
            status: None,
            latency_us: None,
        }
    }

    /// The seal is the record's keyed hash as `LogRecord` computes it (what
    /// the verifier checks), chained in queue order per firm.
    #[test]
    fn chained_records_carry_the_records_own_keyed_hash() {
        let keys = Keyring::ephemeral().log_keys();
        let records = vec![
            pending("f2", &["r1", "r\"2"]),
            pending("f1", &[]),
            pending("f2", &["\\back"]),
        ];
        let heads = BTreeMap::from([
            ("f1".to_string(), (4, "h1".to_string())),
            ("f2".to_string(), (0, "h2".to_string())),
        ]);
        let batch = chain(&records, heads, 1_700_000_000_000, &keys).expect("chains");
        assert_eq!(
            batch.links.iter().map(|l| l.seq).collect::<Vec<_>>(),
            [1, 5, 2]
        );
        assert_eq!(batch.links[0].prev_hash, "h2");
        assert_eq!(batch.links[2].prev_hash, batch.links[0].hash);
        assert_eq!(batch.links[1].prev_hash, "h1");
        for (i, p) in records.iter().enumerate() {
            let row = batch.row(p, i);
            let record = LogRecord {
                firm_id: row.firm_id.into(),
                seq: row.seq,
                kind: row.kind.into(),
                at: row.at,
                grant_id: row.grant_id.into(),
                connector: row.connector.into(),
                direction: row.direction.into(),
                method: row.method.into(),
                target: row.target.into(),
                fields: serde_json::from_str(row.fields).unwrap(),
                record_ids: serde_json::from_str(row.record_ids).unwrap(),
                payload_sha256: row.payload_sha256.into(),
                bytes: row.bytes,
                send_seq: row.send_seq,
                status: row.status,
                latency_us: row.latency_us,
                prev_hash: row.prev_hash.into(),
                hash: row.hash.into(),
                mac_key: row.mac_key.into(),
            };
            assert_eq!(record.check_hash(&keys), Ok(()), "record {i}");
        }
        assert_eq!(
            batch.heads,
            [
                ("f1".to_string(), 5, batch.links[1].hash.clone()),
                ("f2".to_string(), 2, batch.links[2].hash.clone()),
            ]
        );
        assert!(chain(&records, BTreeMap::new(), 0, &keys).is_none());
    }
}

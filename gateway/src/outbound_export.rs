//! The export of a firm's outbound log as JSON lines, written the same way by
//! `scopegate audit export` and the settings page's export: one line per
//! record in chain order, the log up to its newest record when the export
//! began, read [`PAGE`] records at a time. A send whose result is not among
//! the exported records carries `"outcome":"unknown"`: the gateway crashed
//! between the send and its result, or the call was still in flight when the
//! export began. Every other line is the stored record exactly.

use crate::outbound_log::{self, LogRecord, PageFilter};
use crate::registry::{Registry, StoreError, StoreResult};
use serde::Serialize;
use std::collections::HashMap;

/// Records per page: at most this many are held at a time.
pub const PAGE: i64 = 500;

/// What a send without a result is marked with.
pub const OUTCOME_UNKNOWN: &str = "unknown";

/// One exported line: the record, and for a send without a result its outcome.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    record: &'a LogRecord,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
}

/// An export under way: where it is in the firm's chain and where it stops.
pub struct Export {
    registry: Registry,
    firm_id: String,
    since_ms: Option<i64>,
    /// The seq of the last record read (0 before the first page).
    after_seq: i64,
    /// The firm's newest record when the export began: the export stops there.
    upto_seq: i64,
}

impl Export {
    /// Begins an export of `firm_id`'s records (only those at or after
    /// `since_ms`, if given); an unknown firm is an error.
    pub async fn begin(
        registry: &Registry,
        firm_id: &str,
        since_ms: Option<i64>,
    ) -> StoreResult<Self> {
        let upto_seq = outbound_log::head_seq(registry, firm_id).await?;
        Ok(Self {
            registry: registry.clone(),
            firm_id: firm_id.to_string(),
            since_ms,
            after_seq: 0,
            upto_seq,
        })
    }

    /// The next page's JSON lines (empty when none of its records is at or
    /// after `since_ms`), or `None` once the export is complete.
    pub async fn next_page(&mut self) -> StoreResult<Option<Vec<u8>>> {
        if self.after_seq >= self.upto_seq {
            return Ok(None);
        }
        let records = outbound_log::export_page(
            &self.registry,
            &self.firm_id,
            self.after_seq,
            self.upto_seq,
            PAGE,
        )
        .await?;
        let Some(last) = records.last().map(|r| r.seq) else {
            self.after_seq = self.upto_seq;
            return Ok(None);
        };
        self.after_seq = last;
        let exported: Vec<&LogRecord> = records
            .iter()
            .filter(|r| self.since_ms.is_none_or(|since| r.at >= since))
            .collect();
        let results = self.results_of_sends(&exported, last).await?;
        let mut lines = Vec::new();
        for record in exported {
            let outcome = (record.kind == "send"
                && results
                    .get(&record.seq)
                    .is_none_or(|result| result.is_none_or(|seq| seq > self.upto_seq)))
            .then_some(OUTCOME_UNKNOWN);
            serde_json::to_writer(&mut lines, &Line { record, outcome })
                .map_err(|e| StoreError::Invalid(format!("cannot write the export: {e}")))?;
            lines.push(b'\n');
        }
        Ok(Some(lines))
    }

    /// For the sends among `records` (all at or before `last_seq`): the seq of
    /// each one's result record, `None` where it has none.
    async fn results_of_sends(
        &self,
        records: &[&LogRecord],
        last_seq: i64,
    ) -> StoreResult<HashMap<i64, Option<i64>>> {
        if !records.iter().any(|r| r.kind == "send") {
            return Ok(HashMap::new());
        }
        // The page holds at most PAGE records, so the PAGE newest sends up to
        // its last record include every send in it.
        let filter = PageFilter {
            before_seq: Some(last_seq + 1),
            ..Default::default()
        };
        let calls = outbound_log::calls_page(&self.registry, &self.firm_id, &filter, PAGE).await?;
        Ok(calls
            .into_iter()
            .map(|call| (call.seq, call.result.map(|r| r.seq)))
            .collect())
    }
}

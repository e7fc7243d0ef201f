//! The keyed outbound-log chain and its signed checkpoints, on SQLite and
//! PostgreSQL: what someone who can write the registry, but does not hold the
//! master key, can no longer do unseen.
//!
//! | tampering | caught by |
//! |---|---|
//! | a record edited, deleted or reordered | the keyed chain (`outbound_chain.rs`) |
//! | the last N records deleted, the head set back | a checkpoint |
//! | a firm's whole chain and head deleted (or the firm with them) | a checkpoint |
//! | a whole chain rewritten consistently without the key | the keyed chain |
//! | a checkpoint forged or edited | its signature |

use scopegate::keys::{Keyring, LogKeys};
use scopegate::outbound_log::checkpoint::{current_heads, Checkpoint, Checkpoints};
use scopegate::outbound_log::{
    rekey_at_upgrade, verify_all, ChainFault, Direction, LogRecord, NewSend, OutboundLog,
};
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};
use sqlx::Row;
use std::sync::Arc;

on_both_backends!(
    the_last_records_deleted_with_the_head_set_back_are_caught_by_a_checkpoint,
    a_firms_whole_chain_and_head_deleted_are_caught_by_a_checkpoint,
    a_chain_rewritten_consistently_without_the_key_is_named,
    checkpoints_are_signed_and_an_intact_log_passes_them,
    chains_from_before_the_key_are_rekeyed_once_and_only_when_intact,
);

fn send(firm: &str, n: usize) -> NewSend {
    NewSend {
        firm_id: firm.to_string(),
        grant_id: "g".into(),
        connector: "accounting".into(),
        direction: Direction::Outbound,
        method: "GET".into(),
        target: "/v1/transactions".into(),
        fields: vec!["id".into(), "amount_cents".into()],
        record_ids: vec![format!("rec-{n}")],
        payload: format!("payload {n}").into_bytes(),
    }
}

/// Two firms, `pairs` sends + results each, chained under a fresh master key.
async fn filled(env: &TestEnv, pairs: usize) -> Arc<LogKeys> {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    env.add_seeded_firm("beta-law", small_seed()).await;
    let keys = Arc::new(Keyring::ephemeral().log_keys());
    append(env, &keys, pairs).await;
    keys
}

async fn append(env: &TestEnv, keys: &Arc<LogKeys>, pairs: usize) {
    let (log, writer) = OutboundLog::start(env.registry.clone(), keys.clone());
    for n in 0..pairs {
        for firm in ["alpha-law", "beta-law"] {
            let receipt = log.record_send(send(firm, n)).await.unwrap();
            log.record_result(&receipt, 200).await.unwrap();
        }
    }
    drop(log);
    writer.await.unwrap();
}

/// A checkpoint of the registry as it stands, appended to a file in the env's folder.
async fn checkpoint(env: &TestEnv, keys: &LogKeys) -> std::path::PathBuf {
    let path = env.dir.path().join("checkpoints.jsonl");
    let heads = current_heads(&env.registry).await.unwrap();
    let line = Checkpoint::new(heads, keys).signed_line(keys);
    scopegate::outbound_log::checkpoint::append_line(&path, &line).unwrap();
    path
}

async fn faults(
    env: &TestEnv,
    keys: &LogKeys,
    checkpoints: Option<&Checkpoints>,
) -> Vec<ChainFault> {
    verify_all(&env.registry, keys, None, checkpoints)
        .await
        .unwrap()
        .faults
}

async fn exec(env: &TestEnv, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(env.registry.pool())
        .await
        .unwrap();
}

async fn records(env: &TestEnv, firm: &str) -> Vec<LogRecord> {
    let mut out = Vec::new();
    scopegate::outbound_log::export(&env.registry, firm, None, |r| {
        out.push(r.clone());
        Ok(())
    })
    .await
    .unwrap();
    out
}

async fn the_last_records_deleted_with_the_head_set_back_are_caught_by_a_checkpoint(env: TestEnv) {
    let keys = filled(&env, 5).await;
    let path = checkpoint(&env, &keys).await;
    // Cut records 7-10 of alpha-law and set its head back to record 6: a
    // shorter chain that is still genuinely keyed.
    let kept = records(&env, "alpha-law").await;
    exec(
        &env,
        "DELETE FROM outbound_log WHERE firm_id = 'alpha-law' AND seq >= 7",
    )
    .await;
    exec(
        &env,
        &format!(
            "UPDATE outbound_chain_heads SET seq = 6, hash = '{}' WHERE firm_id = 'alpha-law'",
            kept[5].hash
        ),
    )
    .await;
    assert!(
        faults(&env, &keys, None).await.is_empty(),
        "without a checkpoint the shortened chain passes: the reason checkpoints exist"
    );
    let checkpoints = Checkpoints::load(&path, &keys).unwrap();
    let found = faults(&env, &keys, Some(&checkpoints)).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].firm_id.as_str(), found[0].seq), ("alpha-law", 7));
    assert!(
        found[0].problem.contains("saw the chain reach record 10"),
        "{}",
        found[0]
    );
}

async fn a_firms_whole_chain_and_head_deleted_are_caught_by_a_checkpoint(env: TestEnv) {
    let keys = filled(&env, 3).await;
    let path = checkpoint(&env, &keys).await;
    exec(&env, "DELETE FROM outbound_log WHERE firm_id = 'beta-law'").await;
    exec(
        &env,
        "DELETE FROM outbound_chain_heads WHERE firm_id = 'beta-law'",
    )
    .await;
    assert!(
        faults(&env, &keys, None).await.is_empty(),
        "a firm with no records and no head looks like a firm that never shared anything"
    );
    let checkpoints = Checkpoints::load(&path, &keys).unwrap();
    let found = faults(&env, &keys, Some(&checkpoints)).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].firm_id.as_str(), found[0].seq), ("beta-law", 1));
    assert!(found[0].problem.contains("is missing"), "{}", found[0]);
    // The firm itself deleted too: named from the checkpoint.
    exec(&env, "DELETE FROM firms WHERE id = 'beta-law'").await;
    let found = faults(&env, &keys, Some(&checkpoints)).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].firm_id, "beta-law");
    assert!(
        found[0].problem.contains("gone from the registry"),
        "{}",
        found[0]
    );
    assert!(faults(&env, &keys, None).await.is_empty());
}

/// Rewrites alpha-law's whole chain (record 3 changed) with `hash`, and its head to match.
async fn rewrite_chain(env: &TestEnv, hash: impl Fn(&mut LogRecord)) {
    let mut prev = scopegate::outbound_log::GENESIS_HASH.to_string();
    for mut r in records(env, "alpha-law").await {
        if r.seq == 3 {
            r.record_ids = vec!["someone-else".into()];
        }
        r.prev_hash = prev;
        hash(&mut r);
        sqlx::query("UPDATE outbound_log SET record_ids = $1, prev_hash = $2, hash = $3, mac_key = $4 WHERE firm_id = 'alpha-law' AND seq = $5")
            .bind(serde_json::to_string(&r.record_ids).unwrap())
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(&r.mac_key)
            .bind(r.seq)
            .execute(env.registry.pool())
            .await
            .unwrap();
        prev = r.hash;
    }
    sqlx::query("UPDATE outbound_chain_heads SET hash = $1 WHERE firm_id = 'alpha-law'")
        .bind(&prev)
        .execute(env.registry.pool())
        .await
        .unwrap();
}

async fn a_chain_rewritten_consistently_without_the_key_is_named(env: TestEnv) {
    let keys = filled(&env, 4).await;
    // With the plain SHA-256 the chain used to have: consistent, but unkeyed.
    rewrite_chain(&env, |r| {
        r.mac_key.clear();
        r.hash = r.plain_hash();
    })
    .await;
    let found = faults(&env, &keys, None).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].firm_id.as_str(), found[0].seq), ("alpha-law", 1));
    assert!(found[0].problem.contains("unkeyed"), "{}", found[0]);
    // `serve` does not re-key it either: keyed records exist, so this is no upgrade.
    let at_start = scopegate::outbound_log::rekey_at_upgrade(&env.registry, &keys, false)
        .await
        .unwrap();
    assert_eq!(
        at_start.unwrap_err(),
        1,
        "one firm holds plain records, left alone"
    );
    // With a key of their own, claiming ours.
    let intruder = Keyring::ephemeral().log_keys();
    let ours = keys.current().id().to_string();
    rewrite_chain(&env, |r| {
        r.hash = r.keyed_hash(intruder.current());
        r.mac_key = ours.clone();
    })
    .await;
    let found = faults(&env, &keys, None).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].seq, 1);
    assert!(found[0].problem.contains("keyed hash"), "{}", found[0]);
    // ...or naming theirs.
    rewrite_chain(&env, |r| r.seal(intruder.current())).await;
    let found = faults(&env, &keys, None).await;
    assert!(found[0].problem.contains("does not hold"), "{}", found[0]);
    assert!(
        verify_all(&env.registry, &keys, Some("beta-law"), None)
            .await
            .unwrap()
            .faults
            .is_empty(),
        "the other firm's chain is untouched"
    );
}

async fn checkpoints_are_signed_and_an_intact_log_passes_them(env: TestEnv) {
    let keys = filled(&env, 2).await;
    let path = checkpoint(&env, &keys).await;
    append(&env, &keys, 2).await;
    checkpoint(&env, &keys).await;
    append(&env, &keys, 1).await;
    // Two checkpoints behind a log that grew since: intact.
    let checkpoints = Checkpoints::load(&path, &keys).unwrap();
    assert_eq!(checkpoints.lines, 2);
    assert!(faults(&env, &keys, Some(&checkpoints)).await.is_empty());
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Moving a head back in the signed text breaks the signature.
    let edited = lines[1].replacen("\"seq\":8", "\"seq\":4", 1);
    assert_ne!(edited, lines[1]);
    let forged = env.dir.path().join("forged.jsonl");
    std::fs::write(&forged, format!("{}\n{edited}\n", lines[0])).unwrap();
    let err = Checkpoints::load(&forged, &keys).unwrap_err();
    assert!(err.contains("line 2") && err.contains("signature"), "{err}");
    // A checkpoint signed with another master key's derived key is not ours.
    let intruder = Keyring::ephemeral().log_keys();
    let theirs = Checkpoint::new(current_heads(&env.registry).await.unwrap(), &intruder)
        .signed_line(&intruder);
    std::fs::write(&forged, format!("{theirs}\n")).unwrap();
    let err = Checkpoints::load(&forged, &keys).unwrap_err();
    assert!(err.contains("does not hold"), "{err}");
    // A last line cut short by a crash mid-append is ignored, and said so.
    std::fs::write(&forged, format!("{}\n{}", lines[0], &lines[1][..40])).unwrap();
    let partial = Checkpoints::load(&forged, &keys).unwrap();
    assert_eq!((partial.lines, partial.incomplete), (1, 1));
    // A registry that moved a checkpointed record is caught at that record.
    exec(
        &env,
        "UPDATE outbound_log SET bytes = bytes + 1 WHERE firm_id = 'beta-law' AND seq = 2",
    )
    .await;
    let found = faults(&env, &keys, Some(&checkpoints)).await;
    assert_eq!((found[0].firm_id.as_str(), found[0].seq), ("beta-law", 2));
}

async fn chains_from_before_the_key_are_rekeyed_once_and_only_when_intact(env: TestEnv) {
    let keys = filled(&env, 3).await;
    // Turn both chains into what a gateway before the keyed chain wrote:
    // plain SHA-256, no key id. beta-law's is then tampered with.
    for firm in ["alpha-law", "beta-law"] {
        let mut prev = scopegate::outbound_log::GENESIS_HASH.to_string();
        for mut r in records(&env, firm).await {
            r.prev_hash = prev;
            r.mac_key.clear();
            r.hash = r.plain_hash();
            sqlx::query("UPDATE outbound_log SET prev_hash = $1, hash = $2, mac_key = '' WHERE firm_id = $3 AND seq = $4")
                .bind(&r.prev_hash)
                .bind(&r.hash)
                .bind(firm)
                .bind(r.seq)
                .execute(env.registry.pool())
                .await
                .unwrap();
            prev = r.hash;
        }
        sqlx::query("UPDATE outbound_chain_heads SET hash = $1 WHERE firm_id = $2")
            .bind(&prev)
            .bind(firm)
            .execute(env.registry.pool())
            .await
            .unwrap();
    }
    exec(
        &env,
        "UPDATE outbound_log SET status = 500 WHERE firm_id = 'beta-law' AND seq = 4",
    )
    .await;
    let found = faults(&env, &keys, None).await;
    assert_eq!(found.len(), 2, "plain records are not accepted: {found:?}");
    // Not once a checkpoint was written: then plain records are no upgrade.
    let after_checkpoint = rekey_at_upgrade(&env.registry, &keys, true).await.unwrap();
    assert_eq!(after_checkpoint.unwrap_err(), 2);
    // At the upgrade itself (no keyed record, no checkpoint): re-keyed where intact.
    let report = rekey_at_upgrade(&env.registry, &keys, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((report.firms, report.records), (1, 6));
    assert_eq!(report.refused.len(), 1);
    assert_eq!(
        (report.refused[0].firm_id.as_str(), report.refused[0].seq),
        ("beta-law", 4)
    );
    let found = faults(&env, &keys, None).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].firm_id, "beta-law");
    let unkeyed: i64 = sqlx::query(
        "SELECT count(*) AS n FROM outbound_log WHERE firm_id = 'alpha-law' AND mac_key = ''",
    )
    .fetch_one(env.registry.pool())
    .await
    .unwrap()
    .get("n");
    assert_eq!(unkeyed, 0);
    // Re-keyed chains go on: the writer appends after them.
    append(&env, &keys, 1).await;
    assert!(verify_all(&env.registry, &keys, Some("alpha-law"), None)
        .await
        .unwrap()
        .faults
        .is_empty());
}

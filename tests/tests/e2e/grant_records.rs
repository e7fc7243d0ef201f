//! A connector's own records, as the core keeps them: each grant has its own
//! namespace (one firm's records are never read through another firm's grant),
//! a compare-and-swap refuses a stale version, and a sealed value is bound to
//! its grant and purpose: copied into another firm's records it does not open.

use scopegate_contract::{FirmGrant, RecordWrite};
use scopegate_e2e::google::*;
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};
use serde_json::json;

on_both_backends!(records_are_per_grant_and_sealed_values_open_only_where_sealed);

async fn records_are_per_grant_and_sealed_values_open_only_where_sealed(env: TestEnv) {
    let running = start_emulator().await;
    for firm in ["firm-a", "firm-b"] {
        env.add_seeded_firm(firm, small_seed()).await;
        enable_google(&env, firm).await;
    }
    let app = env
        .spawn_with(google_config(&env, &running, 3_600_000))
        .await;
    let calendar = Calendar::of(&app);
    let caps = &calendar.ctx().caps;
    let records = caps.records();
    let (a, b): (FirmGrant, FirmGrant) = (
        calendar.grant("firm-a").await,
        calendar.grant("firm-b").await,
    );

    // Each grant has its own namespace.
    let put = |key: &str, value| RecordWrite::Put {
        key: key.into(),
        value,
    };
    assert!(records
        .write(&a, vec![put("note/1", json!("of firm A"))])
        .await
        .unwrap());
    assert!(records.get(&b, "note/1").await.unwrap().is_none());
    assert!(records
        .list(&b, "note/", None, 10)
        .await
        .unwrap()
        .is_empty());
    let mine = records.get(&a, "note/1").await.unwrap().unwrap();
    assert_eq!(mine.value, json!("of firm A"));

    // Several puts in one write (one statement for a run of distinct keys):
    // values kept exactly, an existing key updated (its version moves on), a
    // key put twice ends with its last value; a prefix lists its range only.
    let odd = json!({ "text": "quote \" backslash \\ tab \t ünï \u{1F600}", "n": 1.5 });
    assert!(records
        .write(
            &a,
            vec![
                put("note/1", json!("of firm A, again")),
                put("note/3", odd.clone()),
                put("note/4", json!(["x"])),
                put("note/4", json!(["y"])),
                put("note0", json!("after the note/ range")),
                put("notea", json!("after it too")),
            ],
        )
        .await
        .unwrap());
    let listed = records.list(&a, "note/", None, 10).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["note/1", "note/3", "note/4"]);
    assert_eq!(listed[0].value, json!("of firm A, again"));
    assert_eq!(listed[0].version, mine.version + 1);
    assert_eq!(listed[1].value, odd);
    assert_eq!(listed[2].value, json!(["y"]));
    assert_eq!(
        records
            .list(&a, "note", Some("note/4"), 10)
            .await
            .unwrap()
            .len(),
        2,
        "note0 and notea follow note/4 under the prefix note"
    );
    assert!(records.get(&b, "note/3").await.unwrap().is_none());
    let mine = records.get(&a, "note/1").await.unwrap().unwrap();
    assert!(records
        .write(&a, vec![put("note/1", json!("of firm A"))])
        .await
        .unwrap());

    // A swap against a stale version writes nothing, not even the other writes with it.
    let stale = RecordWrite::Swap {
        key: "note/1".into(),
        value: json!("lost"),
        expected: Some(mine.version + 7),
    };
    assert!(!records
        .write(&a, vec![put("note/2", json!("also lost")), stale])
        .await
        .unwrap());
    assert!(records.get(&a, "note/2").await.unwrap().is_none());
    assert_eq!(
        records.get(&a, "note/1").await.unwrap().unwrap().value,
        json!("of firm A")
    );

    // A sealed value opens in its own grant's record, for its purpose, only.
    let sealed = records
        .seal(&a, "connection/u1", "refresh-token", b"1//secret-of-firm-a")
        .unwrap();
    assert!(records
        .write(&a, vec![put("connection/u1", json!({ "sealed": sealed }))])
        .await
        .unwrap());
    let stored = records
        .get(&a, "connection/u1")
        .await
        .unwrap()
        .unwrap()
        .value["sealed"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        records
            .open(&a, "connection/u1", "refresh-token", &stored)
            .unwrap(),
        b"1//secret-of-firm-a"
    );
    assert!(records
        .open(&a, "connection/u1", "another-purpose", &stored)
        .is_err());
    // The ciphertext copied into another firm's row, and into another row of
    // the same grant, as someone with write access to the registry could.
    for (grant, row) in [(&b, "connection/u1"), (&a, "connection/u2")] {
        assert!(records
            .write(grant, vec![put(row, json!({ "sealed": stored }))])
            .await
            .unwrap());
        let copied = records.get(grant, row).await.unwrap().unwrap().value["sealed"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(copied, stored);
        assert!(
            records.open(grant, row, "refresh-token", &copied).is_err(),
            "a ciphertext copied into {row} of grant {} opened",
            grant.grant_id()
        );
    }
    // Nothing sealed is stored in plain.
    let text: Vec<String> = sqlx::query_scalar("SELECT value FROM connector_records")
        .fetch_all(env.registry.pool())
        .await
        .unwrap();
    assert!(!text.iter().any(|v| v.contains("secret-of-firm-a")));
    app.stop().await;
}

//! The filtered reads of `ProjectedReader`, on a real firm database: one
//! fee earner's diary entries in full, and only the ids and change numbers
//! of everyone else's, in change order, within the bounds asked for. A field
//! the schema lacks, or one read through a join, is refused.

use scopegate_contract::{ChangedId, ConnectorError};
use scopegate_e2e::google::*;
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};
use sqlx::Row;

const FIRM: &str = "harbour-law";
const SCHEMA: &str = "diary_entry";
const OWNER: &str = "owner_user_id";

on_both_backends!(filtered_reads_give_one_owners_rows_and_the_others_ids);

async fn filtered_reads_give_one_owners_rows_and_the_others_ids(env: TestEnv) {
    let running = start_emulator().await;
    let mut seed = small_seed();
    seed.fee_earners = 3;
    seed.diary_entries = 60;
    let db = env.add_seeded_firm(FIRM, seed).await;
    enable_google(&env, FIRM).await;
    let app = env.spawn_with(google_config(&env, &running, 60_000)).await;
    let calendar = Calendar::of(&app);
    let grant = calendar.grant(FIRM).await;
    let reader = calendar.ctx().caps.reader();
    // The diary as the firm's database holds it: (id, owner, change_seq) in change order.
    let diary: Vec<(String, String, i64)> =
        sqlx::query("SELECT id, owner_user_id, change_seq FROM diary_entries ORDER BY change_seq")
            .fetch_all(db.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("id"), r.get("owner_user_id"), r.get("change_seq")))
            .collect();
    let owners: std::collections::BTreeSet<&str> =
        diary.iter().map(|(_, owner, _)| owner.as_str()).collect();
    assert!(
        owners.len() >= 2,
        "the seed spreads the diary over fee earners"
    );

    for owner in owners {
        let page = reader
            .changes_where(&grant, SCHEMA, OWNER, owner, 0, i64::MAX, 1000)
            .await
            .unwrap();
        let read: Vec<&str> = page
            .items
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = diary
            .iter()
            .filter(|(_, o, _)| o == owner)
            .map(|(id, _, _)| id.as_str())
            .collect();
        assert_eq!(read, expected, "{owner}'s entries, in change order");
        assert!(!page.has_more);
        assert!(
            page.items.iter().all(|i| i["summary"].is_string()),
            "in full"
        );

        let others = reader
            .changed_ids_where_not(&grant, SCHEMA, OWNER, owner, 0, i64::MAX, 1000)
            .await
            .unwrap();
        let expected: Vec<ChangedId> = diary
            .iter()
            .filter(|(_, o, _)| o != owner)
            .map(|(id, _, seq)| ChangedId {
                id: id.clone(),
                change_seq: *seq,
            })
            .collect();
        assert_eq!(
            others.ids, expected,
            "everyone else's, by id, in change order"
        );
        assert_eq!(
            others.last_change,
            diary.last().unwrap().2,
            "the diary's last change"
        );

        // Bounds: after, through and limit.
        let (after, through) = (diary[10].2, diary[40].2);
        let bounded = reader
            .changed_ids_where_not(&grant, SCHEMA, OWNER, owner, after, through, 1000)
            .await
            .unwrap();
        let expected: Vec<ChangedId> = expected
            .into_iter()
            .filter(|c| c.change_seq > after && c.change_seq <= through)
            .collect();
        assert_eq!(bounded.ids, expected);
        let limited = reader
            .changed_ids_where_not(&grant, SCHEMA, OWNER, owner, after, through, 3)
            .await
            .unwrap();
        assert_eq!(limited.ids, expected[..3.min(expected.len())]);
        // The user's own, bounded the same way.
        let own_bounded = reader
            .changes_where(&grant, SCHEMA, OWNER, owner, after, through, 1000)
            .await
            .unwrap();
        let own_expected: Vec<&str> = diary
            .iter()
            .filter(|(_, o, seq)| o == owner && *seq > after && *seq <= through)
            .map(|(id, _, _)| id.as_str())
            .collect();
        let own_read: Vec<&str> = own_bounded
            .items
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(own_read, own_expected);
        let first_two = reader
            .changes_where(&grant, SCHEMA, OWNER, owner, 0, i64::MAX, 2)
            .await
            .unwrap();
        assert_eq!(first_two.items.len(), 2);
        assert!(first_two.has_more);
    }

    // A value is bound, never spliced: a quote matches nothing and breaks nothing.
    let none = reader
        .changes_where(&grant, SCHEMA, OWNER, "x' OR '1'='1", 0, i64::MAX, 1000)
        .await
        .unwrap();
    assert!(none.items.is_empty());

    for field in ["summary", "no_such_field"] {
        let refused = reader
            .changes_where(&grant, SCHEMA, field, "x", 0, i64::MAX, 10)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, ConnectorError::Internal(why) if why.contains(field)),
            "{field}: {refused:?}"
        );
        let refused = reader
            .changed_ids_where_not(&grant, SCHEMA, field, "x", 0, i64::MAX, 10)
            .await
            .unwrap_err();
        assert!(matches!(refused, ConnectorError::Internal(_)), "{field}");
    }
    app.stop().await;
}

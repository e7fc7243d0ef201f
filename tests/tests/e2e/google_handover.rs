//! A diary entry handed from one fee earner to another leaves the first fee
//! earner's Google calendar (and reaches the second's when they are connected).

use scopegate_e2e::google::*;
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};

const FIRM: &str = "harbour-law";

on_both_backends!(a_handed_over_entry_leaves_the_previous_owners_calendar);

async fn a_handed_over_entry_leaves_the_previous_owners_calendar(env: TestEnv) {
    let running = start_emulator().await;
    let emulator = running.emulator.clone();
    let mut seed = small_seed();
    seed.fee_earners = 2;
    seed.diary_entries = 30;
    let db = env.add_seeded_firm(FIRM, seed).await;
    enable_google(&env, FIRM).await;
    let app = env.spawn_with(google_config(&env, &running, 20)).await;
    let users: Vec<String> = sqlx::query_scalar("SELECT id FROM users ORDER BY id")
        .fetch_all(db.pool())
        .await
        .unwrap();
    let (first, second) = (users[0].clone(), users[1].clone());
    assert_eq!(
        connect_user(&app, FIRM, &first, "first@gmail.example").await,
        200
    );
    assert_eq!(
        connect_user(&app, FIRM, &second, "second@gmail.example").await,
        200
    );
    let count = |account: &'static str| {
        let emulator = emulator.clone();
        move || {
            emulator
                .live_events()
                .iter()
                .filter(|e| e.account == account)
                .count()
        }
    };
    let owned = |user: String| {
        let pool = db.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM diary_entries WHERE owner_user_id = $1 AND deleted = 0",
            )
            .bind(user)
            .fetch_one(&pool)
            .await
            .unwrap() as usize
        }
    };
    let (first_owned, second_owned) = (owned(first.clone()).await, owned(second.clone()).await);
    let (first_count, second_count) = (count("first@gmail.example"), count("second@gmail.example"));
    eventually("both calendars hold their owner's entries", || async {
        first_count() == first_owned && second_count() == second_owned
    })
    .await;
    // Hand one of the first fee earner's entries to the second.
    let entry: String = sqlx::query_scalar(
        "SELECT id FROM diary_entries WHERE owner_user_id = $1 AND deleted = 0 LIMIT 1",
    )
    .bind(&first)
    .fetch_one(db.pool())
    .await
    .unwrap();
    let mut tx = db.pool().begin().await.unwrap();
    let seq = scopegate::tenancy::next_change_seqs(&mut tx, 1)
        .await
        .unwrap();
    sqlx::query("UPDATE diary_entries SET owner_user_id = $1, change_seq = $2 WHERE id = $3")
        .bind(&second)
        .bind(seq)
        .bind(&entry)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    eventually(
        "the entry moves from the first calendar to the second",
        || async { first_count() == first_owned - 1 && second_count() == second_owned + 1 },
    )
    .await;
    app.stop().await;
}

//! One practice user, one Google connection: only one active settings account
//! can be linked to a practice user, and a consent started by another
//! settings account does not replace the connection one holds (it could
//! otherwise send a partner's diary to its own Google account). Once the
//! holder disconnects, or the operator acts for the firm, it can be replaced.

use scopegate::accounts::users::NewUser;
use scopegate::accounts::Role;
use scopegate_e2e::google::*;
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};

const FIRM: &str = "harbour-law";

on_both_backends!(a_second_account_neither_links_nor_takes_over_a_connection);

async fn a_second_account_neither_links_nor_takes_over_a_connection(env: TestEnv) {
    let running = start_emulator().await;
    let db = env.add_seeded_firm(FIRM, small_seed()).await;
    enable_google(&env, FIRM).await;
    let partner = busiest_user(&db).await;
    let account = |email: &'static str, practice: Option<&'static str>| NewUser {
        firm_id: FIRM,
        email,
        name: "Someone",
        role: Role::FeeEarner,
        firm_user_id: practice,
        password: None,
    };
    let practice: &'static str = Box::leak(partner.clone().into_boxed_str());
    let holder = env
        .registry
        .add_user(account("partner@harbour.example", Some(practice)))
        .await
        .unwrap();
    let second = env
        .registry
        .add_user(account("intruder@harbour.example", Some(practice)))
        .await
        .unwrap_err();
    assert!(second.to_string().contains("already linked"), "{second}");
    let by_handoff = env
        .registry
        .handoff_user(
            FIRM,
            "other@harbour.example",
            "Other",
            Role::FeeEarner,
            Some(practice),
        )
        .await
        .unwrap_err();
    assert!(
        by_handoff.to_string().contains("already linked"),
        "{by_handoff}"
    );
    // An account not linked to the partner (say, linked before the rule, or
    // an admin's) still cannot take over the partner's connection.
    let other = env
        .registry
        .add_user(account("colleague@harbour.example", None))
        .await
        .unwrap();

    let app = env.spawn_with(google_config(&env, &running, 100)).await;
    assert_eq!(
        connect_user_as(
            &app,
            FIRM,
            &partner,
            "partner@gmail.example",
            Some(&holder.id)
        )
        .await,
        200
    );
    let held = Calendar::of(&app).connection(FIRM, &partner).await.unwrap();
    assert_eq!(
        held.connected_by.as_deref(),
        Some(format!("session:{}", holder.id).as_str())
    );
    assert_eq!(
        connect_user_as(
            &app,
            FIRM,
            &partner,
            "intruder@gmail.example",
            Some(&other.id)
        )
        .await,
        409,
        "another settings account's consent does not replace the connection"
    );
    let still = Calendar::of(&app).connection(FIRM, &partner).await.unwrap();
    assert_eq!(still.refresh_token_sealed, held.refresh_token_sealed);
    assert_eq!(still.connected_by, held.connected_by);

    // After the holder disconnects, another account may connect; so may the operator.
    Calendar::of(&app)
        .disconnect(FIRM, &partner, false)
        .await
        .unwrap();
    assert_eq!(
        connect_user_as(
            &app,
            FIRM,
            &partner,
            "partner2@gmail.example",
            Some(&other.id)
        )
        .await,
        200
    );
    assert_eq!(
        connect_user(&app, FIRM, &partner, "partner3@gmail.example").await,
        200
    );
    app.stop().await;
}

//! Cross-firm isolation of settings: an admin of firm A, using firm B's ids in
//! paths, bodies and query strings, reads nothing of B and changes nothing of
//! B; roles inside a firm are enforced too.

use scopegate::accounts::Role;
use scopegate_e2e::settings::{add_login, login_response, AdminClient, PASSWORD};
use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use serde_json::{json, Value};

async fn firm_a_cannot_reach_firm_b(env: TestEnv) {
    env.add_seeded_firm("firm-a", small_seed()).await;
    env.add_seeded_firm("firm-b", small_seed()).await;
    add_login(&env.registry, "firm-a", "admin@a.example", Role::Admin).await;
    let b_admin = add_login(&env.registry, "firm-b", "admin@b.example", Role::Admin).await;
    let b_earner = add_login(&env.registry, "firm-b", "earner@b.example", Role::FeeEarner).await;
    let (b_client, b_secret) = enable_with_credential(&env.registry, "firm-b", "accounting").await;
    let app = env.spawn().await;
    // Firm B's vendor polls, so B has outbound records and a ledger entry.
    let b_token = app.token(&b_client, &b_secret).await;
    assert_eq!(
        app.get("/v1/transactions?limit=2", &b_token).await.status(),
        200
    );

    let a = AdminClient::login(&app.base, "firm-a", "admin@a.example").await;
    let me = a.get_json("/admin/v1/me").await;
    assert_eq!(me["firm"]["id"], "firm-a");

    // Reads: A's own state only.
    let connectors = a.get_json("/admin/v1/connectors").await;
    assert_eq!(
        connectors["data"][0]["enabled"], false,
        "B's switch shows through"
    );
    assert!(connectors["data"][0]["consented"].is_null());
    let creds = a
        .get_json("/admin/v1/connectors/accounting/credentials")
        .await;
    assert_eq!(creds["data"], json!([]));
    let outbound = a.get_json("/admin/v1/outbound").await;
    assert_eq!(outbound["data"], json!([]));
    let export = a.get("/admin/v1/outbound/export").await;
    assert_eq!(export.status(), 200);
    assert_eq!(export.text().await.unwrap(), "");
    assert_eq!(
        a.get_json("/admin/v1/consent-ledger").await["data"],
        json!([])
    );
    let users = a.get_json("/admin/v1/users").await;
    let emails: Vec<&str> = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["admin@a.example"]);
    // Trying to name firm B in a query string is refused outright.
    assert_eq!(a.get("/admin/v1/outbound?firm=firm-b").await.status(), 400);
    assert_eq!(
        a.get("/admin/v1/outbound?firm_id=firm-b").await.status(),
        400
    );

    // Writes with B's ids: 404 like an unknown id, nothing changes.
    let path = format!("/admin/v1/connectors/accounting/credentials/{b_client}");
    assert_eq!(
        a.send(reqwest::Method::DELETE, &path, None).await.status(),
        404
    );
    assert_eq!(a.post(&format!("{path}/rotate"), None).await.status(), 404);
    let unknown = a
        .send(
            reqwest::Method::DELETE,
            "/admin/v1/connectors/accounting/credentials/sgc_unknown",
            None,
        )
        .await;
    assert_eq!(unknown.status(), 404);
    for user in [&b_admin.id, &b_earner.id] {
        assert_eq!(
            a.post(&format!("/admin/v1/users/{user}/reset-password"), None)
                .await
                .status(),
            404
        );
        assert_eq!(
            a.post(&format!("/admin/v1/users/{user}/disable"), None)
                .await
                .status(),
            404
        );
    }
    // Firm ids in bodies are not accepted at all.
    let smuggled = a
        .post("/admin/v1/users", Some(json!({"email": "mole@b.example", "name": "Mole", "role": "admin", "firm_id": "firm-b"})))
        .await;
    assert_eq!(smuggled.status(), 400);
    // Switching off a connector A never had is a conflict in A, not a switch in B.
    assert_eq!(
        a.post("/admin/v1/connectors/accounting/disable", None)
            .await
            .status(),
        409
    );
    // A switching on its own accounting leaves B's alone, and B's ledger untouched.
    assert_eq!(
        a.post("/admin/v1/connectors/accounting/enable", None)
            .await
            .status(),
        200
    );
    let issued: Value = a
        .post("/admin/v1/connectors/accounting/credentials", None)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(issued["client_id"], json!(b_client));

    // Firm B is exactly as it was.
    assert!(
        env.registry
            .grant("firm-b", "accounting")
            .await
            .unwrap()
            .enabled
    );
    assert_eq!(
        env.registry.consent_ledger("firm-b").await.unwrap().len(),
        1
    );
    assert_eq!(env.registry.users("firm-b").await.unwrap().len(), 2);
    assert!(env
        .registry
        .users("firm-b")
        .await
        .unwrap()
        .iter()
        .all(|u| u.disabled_at.is_none()));
    assert_eq!(
        app.get("/v1/transactions?limit=1", &b_token).await.status(),
        200,
        "B's vendor still works"
    );
    assert_eq!(
        login_response(
            &app.http,
            &app.base,
            "firm-b",
            "admin@b.example",
            PASSWORD,
            None
        )
        .await
        .status(),
        200,
        "B's admin password unchanged"
    );
    // B's people cannot log in through firm A.
    assert_eq!(
        login_response(
            &app.http,
            &app.base,
            "firm-a",
            "admin@b.example",
            PASSWORD,
            None
        )
        .await
        .status(),
        401
    );
    // And A's admin sees only A's new ledger entry and credential.
    let ledger = a.get_json("/admin/v1/consent-ledger").await;
    assert_eq!(ledger["data"].as_array().unwrap().len(), 1);
    assert_eq!(ledger["data"][0]["firm_id"], "firm-a");
    app.stop().await;
}

async fn roles_are_enforced_within_a_firm(env: TestEnv) {
    let db = env.add_seeded_firm("firm-a", small_seed()).await;
    add_login(&env.registry, "firm-a", "owner@a.example", Role::Owner).await;
    add_login(&env.registry, "firm-a", "admin@a.example", Role::Admin).await;
    add_login(&env.registry, "firm-a", "earner@a.example", Role::FeeEarner).await;
    add_login(&env.registry, "firm-a", "books@a.example", Role::Bookkeeper).await;
    let app = env.spawn().await;
    let earner = AdminClient::login(&app.base, "firm-a", "earner@a.example").await;
    assert_eq!(earner.get("/admin/v1/connectors").await.status(), 200);
    assert_eq!(
        earner
            .post("/admin/v1/connectors/accounting/enable", None)
            .await
            .status(),
        403
    );
    assert_eq!(earner.get("/admin/v1/outbound").await.status(), 403);
    assert_eq!(earner.get("/admin/v1/users").await.status(), 403);
    let books = AdminClient::login(&app.base, "firm-a", "books@a.example").await;
    assert_eq!(books.get("/admin/v1/outbound").await.status(), 200);
    assert_eq!(books.get("/admin/v1/consent-ledger").await.status(), 200);
    assert_eq!(
        books
            .post("/admin/v1/connectors/accounting/enable", None)
            .await
            .status(),
        403
    );
    let admin = AdminClient::login(&app.base, "firm-a", "admin@a.example").await;
    // Admins cannot make owners or touch them; owners can.
    let owner_body = json!({"email": "boss@a.example", "name": "Boss", "role": "owner"});
    assert_eq!(
        admin
            .post("/admin/v1/users", Some(owner_body.clone()))
            .await
            .status(),
        403
    );
    let users = admin.get_json("/admin/v1/users").await;
    let id_of = |email: &str| {
        users["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        admin
            .post(
                &format!(
                    "/admin/v1/users/{}/reset-password",
                    id_of("owner@a.example")
                ),
                None
            )
            .await
            .status(),
        403
    );
    // An admin resets a fee earner's password: the new one works once shown, the old one not.
    let reset: Value = admin
        .post(
            &format!(
                "/admin/v1/users/{}/reset-password",
                id_of("earner@a.example")
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let new_password = reset["password"].as_str().unwrap();
    assert_eq!(
        earner.get("/admin/v1/me").await.status(),
        401,
        "a reset ends the user's sessions"
    );
    assert_eq!(
        login_response(
            &app.http,
            &app.base,
            "firm-a",
            "earner@a.example",
            PASSWORD,
            None
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        login_response(
            &app.http,
            &app.base,
            "firm-a",
            "earner@a.example",
            new_password,
            None
        )
        .await
        .status(),
        200
    );
    // Adding a user returns a password that works.
    let added: Value = admin
        .post(
            "/admin/v1/users",
            Some(json!({"email": "new@a.example", "name": "New", "role": "bookkeeper"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        login_response(
            &app.http,
            &app.base,
            "firm-a",
            "new@a.example",
            added["password"].as_str().unwrap(),
            None
        )
        .await
        .status(),
        200
    );
    // A fee earner is linked to a real user of the firm's own database, or refused.
    let earner_id: String = sqlx::query_scalar("SELECT id FROM users ORDER BY id LIMIT 1")
        .fetch_one(db.pool())
        .await
        .unwrap();
    let linked = admin
        .post("/admin/v1/users", Some(json!({"email": "fe@a.example", "name": "Fe", "role": "fee_earner", "firm_user_id": earner_id})))
        .await;
    assert_eq!(linked.status(), 201);
    let linked: Value = linked.json().await.unwrap();
    assert_eq!(linked["user"]["firm_user_id"], json!(earner_id));
    let bogus = admin
        .post("/admin/v1/users", Some(json!({"email": "fe2@a.example", "name": "Fe", "role": "fee_earner", "firm_user_id": "no-such-user"})))
        .await;
    assert_eq!(bogus.status(), 422);
    // Disabled users cannot log in; nobody disables themselves.
    assert_eq!(
        admin
            .post(
                &format!("/admin/v1/users/{}/disable", id_of("books@a.example")),
                None
            )
            .await
            .status(),
        200
    );
    assert_eq!(books.get("/admin/v1/me").await.status(), 401);
    assert_eq!(
        login_response(
            &app.http,
            &app.base,
            "firm-a",
            "books@a.example",
            PASSWORD,
            None
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        admin
            .post(
                &format!("/admin/v1/users/{}/disable", id_of("admin@a.example")),
                None
            )
            .await
            .status(),
        409
    );
    let owner = AdminClient::login(&app.base, "firm-a", "owner@a.example").await;
    assert_eq!(
        owner
            .post("/admin/v1/users", Some(owner_body))
            .await
            .status(),
        201
    );
    app.stop().await;
}

/// A fee earner's Google Calendar connection, driven through the admin API
/// the way the page does: always the session user's own, in the session's
/// firm, whatever ids a body carries; bound to the browser that started it.
async fn google_connections_are_the_session_users_own(env: TestEnv) {
    use scopegate::accounts::users::NewUser;
    use scopegate_e2e::google::{
        busiest_user, connect_user, enable_google, google_config, start_emulator,
    };
    use sqlx::Row;
    let db_a = env.add_seeded_firm("firm-a", small_seed()).await;
    let db_b = env.add_seeded_firm("firm-b", small_seed()).await;
    let a1 = busiest_user(&db_a).await;
    let a2: String = sqlx::query("SELECT id FROM users WHERE id <> $1 ORDER BY id LIMIT 1")
        .bind(&a1)
        .fetch_one(db_a.pool())
        .await
        .unwrap()
        .get("id");
    let b1 = busiest_user(&db_b).await;
    for (email, firm_user_id) in [
        ("one@a.example", Some(a1.as_str())),
        ("unlinked@a.example", None),
    ] {
        env.registry
            .add_user(NewUser {
                firm_id: "firm-a",
                email,
                name: email,
                role: Role::FeeEarner,
                firm_user_id,
                password: Some(PASSWORD),
            })
            .await
            .unwrap();
    }
    add_login(&env.registry, "firm-a", "admin@a.example", Role::Admin).await;
    enable_google(&env, "firm-a").await;
    enable_google(&env, "firm-b").await;
    let emulator = start_emulator().await;
    let app = env.spawn_with(google_config(&env, &emulator, 150)).await;
    assert_eq!(
        connect_user(&app, "firm-b", &b1, "b1@gmail.example").await,
        200
    );
    assert_eq!(
        connect_user(&app, "firm-a", &a2, "a2@gmail.example").await,
        200
    );

    // The fee earner sees only their own status, and no one else's id.
    let one = AdminClient::login(&app.base, "firm-a", "one@a.example").await;
    let status = one
        .get_json("/admin/v1/connectors/google-calendar/connection")
        .await;
    assert_eq!(status["linked"], true);
    assert_eq!(status["me"]["connected"], false);
    assert!(status.get("fee_earners").is_none(), "{status}");
    let text = status.to_string();
    assert!(!text.contains(&b1) && !text.contains(&a2), "{text}");

    // Connecting with someone else's ids in the body still connects oneself.
    let started = one
        .post(
            "/admin/v1/connectors/google-calendar/connect",
            Some(json!({"firm": "firm-b", "firm_user_id": b1})),
        )
        .await;
    assert_eq!(started.status(), 200);
    let cookie = started
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sg_google_consent="))
        .expect("consent cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    let url = started.json::<Value>().await.unwrap()["authorize_url"]
        .as_str()
        .unwrap()
        .to_string();
    let approved = app.http.get(&url).send().await.unwrap();
    assert_eq!(approved.status(), 302);
    let location = approved.headers()["location"].to_str().unwrap().to_string();
    let callback = app.url(&format!(
        "/oauth/google/callback?{}",
        location.split_once('?').unwrap().1
    ));
    // Another browser (no consent cookie) cannot finish it.
    let elsewhere = app.http.get(&callback).send().await.unwrap();
    assert_eq!(elsewhere.status(), 303);
    assert_eq!(
        elsewhere.headers()["location"],
        "/settings?connector=google-calendar&outcome=other-browser"
    );
    assert_eq!(
        one.get_json("/admin/v1/connectors/google-calendar/connection")
            .await["me"]["connected"],
        false
    );
    let back = app
        .http
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 303);
    assert_eq!(
        back.headers()["location"],
        "/settings?connector=google-calendar&outcome=connected"
    );
    let again = app
        .http
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.headers()["location"],
        "/settings?connector=google-calendar&outcome=expired",
        "state is single use"
    );
    assert_eq!(
        one.get_json("/admin/v1/connectors/google-calendar/connection")
            .await["me"]["connected"],
        true
    );
    let firm_b = scopegate_e2e::google::Calendar::of(&app)
        .statuses("firm-b")
        .await;
    assert_eq!(firm_b.len(), 1, "firm B gained nothing");
    assert_eq!(firm_b[0].firm_user_id, b1);

    // The admin of A sees A's fee earners (those with a login), never B's.
    let admin = AdminClient::login(&app.base, "firm-a", "admin@a.example").await;
    let overview = admin
        .get_json("/admin/v1/connectors/google-calendar/connection")
        .await;
    assert_eq!(overview["linked"], false);
    let rows = overview["fee_earners"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{overview}");
    assert_eq!(rows[0]["email"], "one@a.example");
    assert_eq!(rows[0]["connected"], true);
    assert!(!overview.to_string().contains(&b1));

    // Disconnect: ids in a body are refused, not followed; then only one's own goes.
    let named = one
        .post(
            "/admin/v1/connectors/google-calendar/disconnect",
            Some(json!({"firm_user_id": a2})),
        )
        .await;
    assert_eq!(named.status(), 400);
    assert_eq!(
        one.post("/admin/v1/connectors/google-calendar/disconnect", None)
            .await
            .status(),
        200
    );
    assert_eq!(
        one.post("/admin/v1/connectors/google-calendar/disconnect", None)
            .await
            .status(),
        404
    );
    let firm_a = scopegate_e2e::google::Calendar::of(&app)
        .statuses("firm-a")
        .await;
    let state_of = |id: &str| {
        firm_a
            .iter()
            .find(|c| c.firm_user_id == id)
            .map(|c| c.status.clone())
    };
    assert_eq!(state_of(&a1).as_deref(), Some("disconnected"));
    assert_eq!(state_of(&a2).as_deref(), Some("active"));
    let firm_b = scopegate_e2e::google::Calendar::of(&app)
        .statuses("firm-b")
        .await;
    assert_eq!(firm_b[0].status, "active");

    // Without CSRF token: refused.
    let no_csrf = one
        .http
        .post(format!(
            "{}/admin/v1/connectors/google-calendar/connect",
            app.base
        ))
        .header("cookie", &one.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);

    // A login not linked to a practice-system user gets a clear 403.
    let unlinked = AdminClient::login(&app.base, "firm-a", "unlinked@a.example").await;
    assert_eq!(
        unlinked
            .get_json("/admin/v1/connectors/google-calendar/connection")
            .await["linked"],
        false
    );
    for path in [
        "/admin/v1/connectors/google-calendar/connect",
        "/admin/v1/connectors/google-calendar/disconnect",
    ] {
        let r = unlinked.post(path, None).await;
        assert_eq!(r.status(), 403, "{path}");
        let problem: Value = r.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("not linked"),
            "{problem}"
        );
    }

    // Once the admin switches Google Calendar off, connecting is refused plainly.
    let off = admin
        .post(
            "/admin/v1/connectors/google-calendar/disable",
            Some(json!({"delete_events": false})),
        )
        .await;
    assert_eq!(off.status(), 200);
    let off: Value = off.json().await.unwrap();
    assert_eq!(off["enabled"], false);
    assert_eq!(off["switch_off"]["events_deleted"], 0);
    let refused = one
        .post("/admin/v1/connectors/google-calendar/connect", None)
        .await;
    assert_eq!(refused.status(), 403);
    let problem: Value = refused.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("switched off"),
        "{problem}"
    );
    // delete_events means nothing for a connector that creates no events.
    enable_with_credential(&env.registry, "firm-a", "accounting").await;
    let wrong = admin
        .post(
            "/admin/v1/connectors/accounting/disable",
            Some(json!({"delete_events": true})),
        )
        .await;
    assert_eq!(wrong.status(), 400);
    app.stop().await;
}

on_both_backends!(
    firm_a_cannot_reach_firm_b,
    roles_are_enforced_within_a_firm,
    google_connections_are_the_session_users_own
);

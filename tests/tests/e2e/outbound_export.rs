//! The settings export of the outbound log is streamed: the registry is read a
//! page of records at a time, each page only when the client has taken the one
//! before, so a firm's whole log is never held in the gateway's memory.

use axum::body::Body;
use axum::extract::ConnectInfo;
use futures::StreamExt;
use scopegate::accounts::Role;
use scopegate::http::admin::outbound::EXPORT_PAGE;
use scopegate::outbound_log::{Direction, NewSend};
use scopegate_e2e::settings::{add_login, AdminClient};
use scopegate_e2e::{on_both_backends, small_seed, TestEnv};
use tower::ServiceExt;

on_both_backends!(the_export_is_read_a_page_at_a_time_as_it_is_taken);

fn send(n: usize) -> NewSend {
    NewSend {
        firm_id: "f1".into(),
        grant_id: "g".into(),
        connector: "accounting".into(),
        direction: Direction::Outbound,
        method: "GET".into(),
        target: "/v1/transactions".into(),
        fields: vec!["id".into()],
        record_ids: vec![format!("rec-{n}")],
        payload: format!("payload {n}").into_bytes(),
    }
}

fn lines(chunk: &[u8]) -> usize {
    chunk.iter().filter(|b| **b == b'\n').count()
}

async fn the_export_is_read_a_page_at_a_time_as_it_is_taken(env: TestEnv) {
    env.add_seeded_firm("f1", small_seed()).await;
    add_login(&env.registry, "f1", "admin@f1.example", Role::Admin).await;
    let app = env.spawn().await;
    let page = EXPORT_PAGE as usize;
    let total = 2 * page + 100;
    futures::future::try_join_all((0..total).map(|n| app.state.log.record_send(send(n))))
        .await
        .unwrap();
    let admin = AdminClient::login(&app.base, "f1", "admin@f1.example").await;

    // The router itself, so the body is pulled one chunk at a time, exactly
    // as fast as this test takes it (no socket buffers in between).
    let request = http::Request::get("/admin/v1/outbound/export")
        .header("cookie", &admin.cookie)
        .extension(ConnectInfo(app.addr))
        .body(Body::empty())
        .unwrap();
    let response = scopegate::http::router(app.state.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let mut body = response.into_body().into_data_stream();
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(
        lines(&first),
        page,
        "the response starts with one page of records, not the firm's whole log"
    );

    // The later pages have not been read yet: a record deleted from the last
    // one now is missing from what follows.
    sqlx::query("DELETE FROM outbound_log WHERE firm_id = 'f1' AND seq = $1")
        .bind(total as i64)
        .execute(env.registry.pool())
        .await
        .unwrap();
    let mut exported = first.to_vec();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        assert!(lines(&chunk) <= page, "no chunk holds more than a page");
        exported.extend_from_slice(&chunk);
    }
    let seqs: Vec<i64> = exported
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let record = serde_json::from_slice::<serde_json::Value>(line).unwrap();
            // Sends with no result record: each says its outcome is unknown.
            assert_eq!(record["outcome"], "unknown", "{record}");
            record["seq"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(seqs, (1..total as i64).collect::<Vec<_>>());

    // Through the server, the whole log arrives.
    let served = admin
        .get("/admin/v1/outbound/export")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(lines(&served), total - 1);
    app.stop().await;
}

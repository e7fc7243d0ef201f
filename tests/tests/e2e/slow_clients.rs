//! Slow clients cannot hold the gateway (issue 12): 500 slowloris connections
//! (a partial request header, then nothing) do not delay a vendor's poll, and
//! are closed once the header-read timeout passes; a request whose body never
//! arrives gets a problem+json answer at the request timeout; past the
//! connection cap, new clients wait only until the idle ones time out.

use scopegate_e2e::{enable_with_credential, on_both_backends, small_seed, TestEnv};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOWLORIS: usize = 500;

/// Reads until EOF or error; true when the server closed the connection.
async fn closed_by_server(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return true,
            Ok(_) => continue,
        }
    }
}

async fn slowloris_does_not_delay_a_vendor_poll(env: TestEnv) {
    env.add_seeded_firm("alpha-law", small_seed()).await;
    let (client_id, secret) =
        enable_with_credential(&env.registry, "alpha-law", "accounting").await;
    let mut config = env.config();
    config.server.header_read_timeout = Duration::from_secs(2);
    let app = env.spawn_with(config).await;

    // 500 connections, each with half a request header, then silence.
    let mut slow = Vec::new();
    for n in 0..SLOWLORIS {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        stream
            .write_all(
                format!("GET /v1/transactions?n={n} HTTP/1.1\r\nHost: scopegate\r\nX-Slow: ")
                    .as_bytes(),
            )
            .await
            .expect("partial header");
        slow.push(stream);
    }
    let opened = Instant::now();

    // A vendor poll: token, then a page of transactions.
    let started = Instant::now();
    let token = app.token(&client_id, &secret).await;
    let r = app.get("/v1/transactions?limit=20", &token).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["data"].is_array());
    let poll = started.elapsed();
    println!("vendor poll (token + GET /v1/transactions) beside {SLOWLORIS} slowloris connections: {poll:?}");
    assert!(poll < Duration::from_secs(1), "poll took {poll:?}");

    // The slow connections are closed by the server at the header-read timeout.
    let deadline = Duration::from_secs(8);
    let closers: Vec<_> = slow
        .into_iter()
        .map(|s| tokio::spawn(tokio::time::timeout(deadline, closed_by_server(s))))
        .collect();
    let mut closed = 0;
    for c in closers {
        if matches!(c.await, Ok(Ok(true))) {
            closed += 1;
        }
    }
    println!(
        "slowloris connections closed by the server within {:?}: {closed}/{SLOWLORIS}",
        opened.elapsed()
    );
    assert_eq!(
        closed, SLOWLORIS,
        "slow connections must not be held forever"
    );
    app.stop().await;
}

async fn a_body_that_never_arrives_gets_a_problem_at_the_request_timeout(env: TestEnv) {
    let mut config = env.config();
    config.server.request_timeout = Duration::from_secs(2);
    let app = env.spawn_with(config).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream
        .write_all(
            b"POST /oauth/token HTTP/1.1\r\nHost: scopegate\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=",
        )
        .await
        .expect("partial body");
    let started = Instant::now();
    let mut response = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).to_string();
    println!(
        "a request whose body never arrives: answered after {:?}: {}",
        started.elapsed(),
        text.lines().next().unwrap_or("(nothing)")
    );
    if read.is_err() {
        drop(stream);
        panic!("no answer within 10 s");
    }
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: application/problem+json"),
        "{text}"
    );
    assert!(text.contains("did not complete within 2 s"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(stream);
    app.stop().await;
}

async fn past_the_connection_cap_clients_wait_only_for_the_header_timeout(env: TestEnv) {
    let mut config = env.config();
    config.server.max_connections = 20;
    config.server.header_read_timeout = Duration::from_secs(2);
    let app = env.spawn_with(config).await;
    // 20 connections that never send a byte fill the cap.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fresh = reqwest::Client::new();
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        fresh.get(app.url("/healthz")).send(),
    )
    .await
    .expect("answered within 10 s")
    .expect("healthz");
    let waited = started.elapsed();
    println!("a new client past a cap of 20 idle connections was answered after {waited:?}");
    assert_eq!(r.status(), 200);
    assert!(
        waited >= Duration::from_millis(1000),
        "the cap did not hold: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(5),
        "idle connections were not timed out: {waited:?}"
    );
    drop(idle);
    app.stop().await;
}

on_both_backends!(
    past_the_connection_cap_clients_wait_only_for_the_header_timeout,
    slowloris_does_not_delay_a_vendor_poll,
    a_body_that_never_arrives_gets_a_problem_at_the_request_timeout,
);

//! Accounting poll throughput: `GET /v1/transactions?limit=100` through the
//! whole gateway (token auth, projection, schema check, outbound log with
//! its fsyncs, real HTTP over loopback to an `Application` on port 0), beside
//! the same read served by a bare axum handler (no auth, no projection, no
//! logging: the same SELECT of the same rows of the same firm database,
//! serialised to the same JSON). Same client, same concurrency, same request
//! count, alternating rounds in one run.
//!
//! `cargo bench -p scopegate --bench accounting_poll`
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SCOPEGATE_BENCH_REQUESTS` | 3000 | requests per side per round |
//! | `SCOPEGATE_BENCH_CLIENTS` | 16 | concurrent clients |
//! | `SCOPEGATE_BENCH_ROUNDS` | 2 | alternating rounds (bare, gateway) |
//! | `SCOPEGATE_BENCH_BACKENDS` | sqlite | registry backend(s): sqlite, postgres |

mod common;

use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use common::{backends, env_usize, machine_line, ms, per_sec, Percentiles, PgDatabase};
use scopegate::app::Application;
use scopegate::config::{Config, ConfigArgs};
use scopegate::keys::Keyring;
use scopegate::registry::Registry;
use scopegate::tenancy::{default_firm_url, provision_firm_database, seed};
use scopegate_accounting::{encode_cursor, page_params};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRM: &str = "bench-firm";
const PATH: &str = "/v1/transactions?limit=100";

/// The bare server's state: the firm database and the gateway's own SELECT.
#[derive(Clone)]
struct Bare {
    pool: AnyPool,
    sql: Arc<String>,
}

/// One transaction as the API shows it (same fields, same formats).
#[derive(Serialize)]
struct Transaction {
    id: String,
    account: String,
    amount_cents: i64,
    currency: String,
    matter_id: String,
    reference: String,
    posted_at: String,
    change_seq: i64,
}

#[derive(Serialize)]
struct Page {
    data: Vec<Transaction>,
    next_cursor: String,
    has_more: bool,
}

async fn bare_transactions(State(bare): State<Bare>, RawQuery(query): RawQuery) -> Response {
    let Ok((after, limit)) = page_params(query.as_deref()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let rows = match sqlx::query(sqlx::AssertSqlSafe(bare.sql.as_str()))
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&bare.pool)
        .await
    {
        Ok(rows) => rows,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let has_more = rows.len() as i64 > limit;
    let data: Vec<Transaction> = rows
        .iter()
        .take(limit as usize)
        .map(|r| Transaction {
            id: r.get("id"),
            account: r.get("account"),
            amount_cents: r.get("amount_cents"),
            currency: r.get("currency"),
            matter_id: r.get("matter_id"),
            reference: r.get("reference"),
            posted_at: scopegate::clock::rfc3339(r.get("posted_at")),
            change_seq: r.get("change_seq"),
        })
        .collect();
    let next = data.last().map(|t| t.change_seq).unwrap_or(after);
    let body = serde_json::to_vec(&Page {
        data,
        next_cursor: encode_cursor(next),
        has_more,
    })
    .expect("json");
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Serves the bare handler on a loopback port; returns its base URL.
async fn start_bare(firm_url: &str) -> String {
    let connector = scopegate::connectors::catalogue()
        .require("accounting")
        .expect("accounting");
    let projection = connector.projection("transaction");
    // Exactly the SELECT the core's projected reader (`capabilities::reader`) runs.
    let table = projection.table();
    let sql = format!(
        "SELECT {} FROM {} WHERE {table}.change_seq > $1 ORDER BY {table}.change_seq LIMIT $2",
        projection.select_list(),
        projection.from_clause()
    );
    // The same pool settings `Tenancy` uses for a firm database.
    let options = sqlx::any::AnyConnectOptions::from_str(firm_url).expect("firm url");
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(5))
        .idle_timeout(Some(Duration::from_secs(120)))
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(&mut *conn, "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA cache_size = -512;").await?;
                Ok(())
            })
        })
        .connect_lazy_with(options);
    let app = axum::Router::new()
        .route("/v1/transactions", axum::routing::get(bare_transactions))
        .with_state(Bare {
            pool,
            sql: Arc::new(sql),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("bare server") });
    format!("http://{addr}")
}

struct Outcome {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    bytes: usize,
}

/// `requests` GETs from `clients` concurrent loops sharing one HTTP client.
async fn load(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    clients: usize,
    requests: usize,
) -> Outcome {
    let remaining = Arc::new(AtomicUsize::new(requests));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let http = http.clone();
            let url = url.to_string();
            let token = token.map(str::to_string);
            let remaining = remaining.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut bytes = 0;
                while remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let t = Instant::now();
                    let mut request = http.get(&url);
                    if let Some(token) = &token {
                        request = request.bearer_auth(token);
                    }
                    let response = request.send().await.expect("request");
                    let status = response.status();
                    let body = response.bytes().await.expect("body");
                    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
                    latencies.push(t.elapsed());
                    bytes = body.len();
                }
                (latencies, bytes)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    let mut bytes = 0;
    for task in tasks {
        let (l, b) = task.await.expect("client task");
        latencies.extend(l);
        bytes = bytes.max(b);
    }
    Outcome {
        requests,
        elapsed: start.elapsed(),
        latencies,
        bytes,
    }
}

async fn bench_backend(backend: &str, requests: usize, clients: usize, rounds: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg = match backend {
        "sqlite" => None,
        "postgres" => match PgDatabase::create("accounting_poll").await {
            Ok(db) => Some(db),
            Err(e) => {
                println!("postgres: SKIPPED ({e})");
                return;
            }
        },
        other => panic!("unknown backend {other:?}; use sqlite or postgres"),
    };
    let registry_url = match &pg {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("registry.db").display()),
    };
    let registry = Registry::connect_and_migrate(&registry_url)
        .await
        .expect("registry");

    // One firm with its own SQLite database (what `firm add` + `firm seed-demo` make).
    let firm_url = default_firm_url(dir.path(), FIRM);
    let firm_db = provision_firm_database(FIRM, &firm_url)
        .await
        .expect("firm database");
    seed::seed_demo(
        &firm_db,
        seed::SeedSize {
            fee_earners: 5,
            clients: 40,
            matters: 60,
            diary_entries: 100,
            transactions: 1000,
        },
    )
    .await
    .expect("seed");
    firm_db.pool().close().await;
    registry
        .add_firm(FIRM, "Bench Firm", &firm_url)
        .await
        .expect("add firm");
    let catalogue = scopegate::connectors::catalogue();
    let accounting = catalogue.require("accounting").expect("accounting");
    registry
        .enable_grant(FIRM, &accounting.contract, "admin@bench")
        .await
        .expect("enable grant");
    let issued = registry
        .issue_credential(FIRM, "accounting")
        .await
        .expect("credential");

    let config = Config::resolve(&ConfigArgs {
        data_dir: Some(dir.path().to_path_buf()),
        database_url: Some(registry_url.clone()),
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        api_rate_per_second: Some(1_000_000_000),
        api_burst: Some(1_000_000_000),
        metrics_listen: Some(scopegate::config::MetricsListen::Off),
        ..Default::default()
    })
    .expect("config");
    let app = Application::build(
        config,
        Arc::new(Keyring::ephemeral()),
        scopegate::connectors::registered(),
    )
    .await
    .expect("gateway");
    let gateway = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let bare = start_bare(&firm_url).await;

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    let token_response: serde_json::Value = http
        .post(format!("{gateway}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", issued.client_id.as_str()),
            ("client_secret", issued.client_secret.expose_secret()),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    let token = token_response["access_token"]
        .as_str()
        .expect("access_token")
        .to_string();

    // Warm both (connections, caches), and check they return the same page.
    let g = load(
        &http,
        &format!("{gateway}{PATH}"),
        Some(&token),
        clients,
        200,
    )
    .await;
    let b = load(&http, &format!("{bare}{PATH}"), None, clients, 200).await;
    println!(
        "{backend:<9} response bodies: gateway {} bytes, bare {} bytes",
        g.bytes, b.bytes
    );
    for round in 1..=rounds {
        let b = load(&http, &format!("{bare}{PATH}"), None, clients, requests).await;
        let g = load(
            &http,
            &format!("{gateway}{PATH}"),
            Some(&token),
            clients,
            requests,
        )
        .await;
        let mut rates = Vec::new();
        for (what, mut o) in [
            ("bare axum handler (baseline)", b),
            ("gateway (auth, projection, log)", g),
        ] {
            let p = Percentiles::of(&mut o.latencies);
            let rate = per_sec(o.requests as u64, o.elapsed);
            rates.push(rate);
            println!(
                "{backend:<9} {round:>5}  {what:<32} {:>7} {:>7.2} {:>9.0} {:>8} {:>8} {:>8}",
                o.requests,
                o.elapsed.as_secs_f64(),
                rate,
                ms(p.p50),
                ms(p.p99),
                ms(p.max)
            );
        }
        println!(
            "{backend:<9} {round:>5}  gateway / bare throughput = {:.2} (the gateway serves {:.0}% of the bare rate)",
            rates[1] / rates[0],
            100.0 * rates[1] / rates[0]
        );
    }
    // A graceful stop commits the results still queued (they are written after the response).
    let _ = stop.send(());
    let _ = server.await;
    let logged = common::outbound_records(&registry).await;
    println!(
        "{backend:<9} outbound log: {logged} records written by the gateway, counted after its graceful stop (expected 2 per request: {})",
        2 * (200 + rounds * requests)
    );
    registry.close().await;
    if let Some(db) = pg {
        db.drop_now().await;
    }
}

#[tokio::main]
async fn main() {
    let requests = env_usize("SCOPEGATE_BENCH_REQUESTS", 3000);
    let clients = env_usize("SCOPEGATE_BENCH_CLIENTS", 16).max(1);
    let rounds = env_usize("SCOPEGATE_BENCH_ROUNDS", 2).max(1);
    println!("== accounting_poll: GET {PATH}, {clients} concurrent clients, {requests} requests per side per round");
    println!("{}", machine_line());
    println!("client, gateway and bare server share this process and its 2-core machine");
    println!(
        "{:<9} {:>5}  {:<32} {:>7} {:>7} {:>9} {:>8} {:>8} {:>8}",
        "registry", "round", "server", "reqs", "secs", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    for backend in backends("sqlite") {
        bench_backend(&backend, requests, clients, rounds).await;
    }
}

//! The two servers an accounting-poll bench compares, over one seeded firm
//! database: the whole gateway (an `Application` on a loopback port, a
//! registry with the firm, its accounting grant and a vendor token) and a
//! bare axum handler (no auth, no projection, no logging: the gateway's own
//! SELECT of the same rows, serialised to the same JSON).
//!
//! The same setup as `accounting_poll.rs` (which keeps its own copy for now):
//! `start_bare`, `bare_transactions` and the registry/gateway half of its
//! `bench_backend` are what both benches could share.

use super::common::PgDatabase;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
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
use std::sync::Arc;
use std::time::Duration;

const FIRM: &str = "bench-firm";

/// Both servers running, and what stops and removes them.
pub struct PollServers {
    /// Base URL of the gateway.
    pub gateway: String,
    /// Base URL of the bare handler.
    pub bare: String,
    /// The vendor's bearer token for the gateway.
    pub token: String,
    pub registry: Registry,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    pg: Option<PgDatabase>,
    dir: tempfile::TempDir,
}

impl PollServers {
    /// Starts both on `backend`'s registry (`sqlite` or `postgres`); `None`
    /// (after saying so) when PostgreSQL is asked for but unreachable.
    pub async fn start(backend: &str, label: &str) -> Option<Self> {
        let dir = bench_dir();
        let pg = match backend {
            "sqlite" => None,
            "postgres" => match PgDatabase::create(label).await {
                Ok(db) => Some(db),
                Err(e) => {
                    println!("postgres: SKIPPED ({e})");
                    return None;
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
        let firm_url = seeded_firm(&registry, dir.path()).await;
        let issued = {
            let catalogue = scopegate::connectors::catalogue();
            let accounting = catalogue.require("accounting").expect("accounting");
            registry
                .enable_grant(FIRM, &accounting.contract, "admin@bench")
                .await
                .expect("enable grant");
            registry
                .issue_credential(FIRM, "accounting")
                .await
                .expect("credential")
        };
        let app = Application::build(
            gateway_config(dir.path(), &registry_url),
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
        let token = access_token(
            &gateway,
            &issued.client_id,
            issued.client_secret.expose_secret(),
        )
        .await;
        Some(Self {
            gateway,
            bare: start_bare(&firm_url).await,
            token,
            registry,
            stop,
            server,
            pg,
            dir,
        })
    }

    /// The data directory: the firm database and, on SQLite, the registry.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Stops the gateway, closes the registry and drops a PostgreSQL database.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
        self.registry.close().await;
        if let Some(db) = self.pg {
            db.drop_now().await;
        }
    }
}

/// A fresh data directory, under `SCOPEGATE_BENCH_DATA_DIR` when set (e.g.
/// `/dev/shm`, to take the disk's fsync out of the figures), else the system's.
fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("SCOPEGATE_BENCH_DATA_DIR") {
        Some(parent) => tempfile::tempdir_in(&parent).unwrap_or_else(|e| {
            panic!("SCOPEGATE_BENCH_DATA_DIR={parent:?}: cannot make a directory there: {e}")
        }),
        None => tempfile::tempdir().expect("tempdir"),
    }
}

/// One firm with its own seeded SQLite database (what `firm add` + `firm seed-demo` make); returns its URL.
async fn seeded_firm(registry: &Registry, data_dir: &std::path::Path) -> String {
    let firm_url = default_firm_url(data_dir, FIRM);
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
    firm_url
}

/// The gateway's configuration: loopback port 0, rate limits out of the way, no metrics listener.
fn gateway_config(data_dir: &std::path::Path, registry_url: &str) -> Config {
    Config::resolve(&ConfigArgs {
        data_dir: Some(data_dir.to_path_buf()),
        database_url: Some(registry_url.to_string()),
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        api_rate_per_second: Some(1_000_000_000),
        api_burst: Some(1_000_000_000),
        metrics_listen: Some(scopegate::config::MetricsListen::Off),
        ..Default::default()
    })
    .expect("config")
}

/// A vendor token by the client-credentials exchange, as a vendor gets one.
async fn access_token(gateway: &str, client_id: &str, client_secret: &str) -> String {
    let response: serde_json::Value = reqwest::Client::new()
        .post(format!("{gateway}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", client_secret),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    response["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

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

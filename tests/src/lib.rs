//! Test harness shared by every end-to-end test: a fresh registry per test on
//! SQLite or PostgreSQL, firms with their own seeded databases, and a gateway
//! started in-process on port 0 with typed request helpers.
//!
//! PostgreSQL comes from `SCOPEGATE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it is unreachable the
//! PostgreSQL half is skipped with a message, except with `CI=true`, where it fails.

pub mod google;
pub mod proxy;
pub mod settings;
pub mod webdriver;

use scopegate::app::{AppState, Application};
use scopegate::config::{Config, ConfigArgs, MetricsListen};
use scopegate::keys::Keyring;
use scopegate::registry::Registry;
use scopegate::tenancy::{provision_firm_database, seed, FirmDb};
use sqlx::Connection;
use std::net::SocketAddr;
use std::sync::Arc;

/// Which registry backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn postgres_admin_url() -> String {
    std::env::var("SCOPEGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn is_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Returns false (after saying so) when PostgreSQL is unreachable outside CI; panics in CI.
pub async fn postgres_available() -> bool {
    sqlx::any::install_default_drivers();
    match sqlx::AnyConnection::connect(&postgres_admin_url()).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(e) if is_ci() => panic!(
            "PostgreSQL at {} is unreachable with CI=true: {e}",
            postgres_admin_url()
        ),
        Err(e) => {
            eprintln!(
                "SKIPPED: PostgreSQL at {} unreachable ({e}); set CI=true to make this a failure",
                postgres_admin_url()
            );
            false
        }
    }
}

/// URL of a fresh, empty PostgreSQL database (created now).
pub async fn fresh_postgres_database(label: &str) -> String {
    let name = format!(
        "sgtest_{}_{}",
        label.replace('-', "_"),
        uuid::Uuid::new_v4().simple()
    );
    let admin = postgres_admin_url();
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("postgres admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let _ = conn.close().await;
    let base = admin
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .unwrap_or(admin);
    format!("{base}/{name}")
}

/// One test's world: a data directory, a registry, firms.
pub struct TestEnv {
    pub backend: Backend,
    pub dir: tempfile::TempDir,
    pub registry: Registry,
    pub database_url: String,
}

impl TestEnv {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}", dir.path().join("registry.db").display()),
            Backend::Postgres => fresh_postgres_database("registry").await,
        };
        let registry = Registry::connect_and_migrate(&database_url)
            .await
            .expect("registry");
        Self {
            backend,
            dir,
            registry,
            database_url,
        }
    }

    /// Where a new firm's own database goes on this backend.
    pub async fn firm_url(&self, firm_id: &str) -> String {
        match self.backend {
            Backend::Sqlite => scopegate::tenancy::default_firm_url(self.dir.path(), firm_id),
            Backend::Postgres => fresh_postgres_database(firm_id).await,
        }
    }

    /// Registers a firm with its own database, seeded with demo data.
    pub async fn add_seeded_firm(&self, firm_id: &str, size: seed::SeedSize) -> FirmDb {
        let url = self.firm_url(firm_id).await;
        let db = provision_firm_database(firm_id, &url)
            .await
            .expect("firm database");
        seed::seed_demo(&db, size).await.expect("seed");
        self.registry
            .add_firm(firm_id, &format!("Firm {firm_id}"), &url)
            .await
            .expect("add firm");
        db
    }

    /// A configuration pointing at this env's registry, listening on port 0.
    pub fn config(&self) -> Config {
        let args = ConfigArgs {
            data_dir: Some(self.dir.path().to_path_buf()),
            database_url: Some(self.database_url.clone()),
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            trusted_proxies: Some(vec!["127.0.0.1".parse().expect("ip")]),
            metrics_listen: Some(MetricsListen::On("127.0.0.1:0".parse().expect("addr"))),
            ..Default::default()
        };
        Config::resolve(&args).expect("config")
    }

    /// Starts a gateway on this env with the given configuration.
    pub async fn spawn_with(&self, config: Config) -> TestApp {
        TestApp::start(config).await
    }

    pub async fn spawn(&self) -> TestApp {
        self.spawn_with(self.config()).await
    }
}

/// A gateway running in this process.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    /// `http://host:port` of the metrics listener, when the configuration has one.
    pub metrics_base: Option<String>,
    pub http: reqwest::Client,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    pub async fn start(config: Config) -> Self {
        Self::start_with_keyring(config, Arc::new(Keyring::ephemeral())).await
    }

    /// Starts with a given master keyring (instances sharing a registry share their keys).
    pub async fn start_with_keyring(config: Config, keyring: Arc<Keyring>) -> Self {
        let app = Application::build(config, keyring, scopegate::connectors::registered())
            .await
            .expect("build app");
        let addr = app.local_addr();
        let metrics_base = app.metrics_addr().map(|a| format!("http://{a}"));
        let state = app.state();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until(async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
        });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            addr,
            base: format!("http://{addr}"),
            metrics_base,
            http,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Exchanges client credentials for a token (body auth); panics unless 200.
    pub async fn token(&self, client_id: &str, secret: &str) -> String {
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(
            response.status(),
            200,
            "token endpoint refused: {:?}",
            response.text().await
        );
        let body: serde_json::Value = response.json().await.expect("token json");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// GET with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
    }

    /// The id the firm's `connector` grant shows its vendor for the firm record `real`
    /// (each grant sees record ids through its own key; see `scopegate::security::pseudonyms`).
    pub async fn shown_id(&self, firm_id: &str, connector: &str, real: &str) -> String {
        shown_id(
            &self.state.registry,
            &self.state.keyring,
            firm_id,
            connector,
            real,
        )
        .await
    }

    /// The firm record behind an id the firm's `connector` grant showed its vendor.
    pub async fn real_id(&self, firm_id: &str, connector: &str, shown: &str) -> String {
        use scopegate::security::pseudonyms::{GrantRef, Pseudonyms};
        let grant = self
            .state
            .registry
            .grant(firm_id, connector)
            .await
            .expect("grant");
        Pseudonyms::new(self.state.registry.clone(), self.state.keyring.clone())
            .for_grant(&GrantRef {
                firm_id,
                grant_id: &grant.id,
                connector,
            })
            .await
            .expect("the grant's pseudonyms")
            .reveal(shown)
            .expect("a record id")
    }

    /// Stops the server gracefully and waits for it. This handle's clone of
    /// the state is dropped first: the log writer ends when the last one goes.
    pub async fn stop(self) {
        let TestApp {
            stop, task, state, ..
        } = self;
        drop(state);
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The id the firm's `connector` grant shows for the firm record `real`.
pub async fn shown_id(
    registry: &Registry,
    keyring: &Arc<Keyring>,
    firm_id: &str,
    connector: &str,
    real: &str,
) -> String {
    use scopegate::security::pseudonyms::{GrantRef, Pseudonyms};
    let grant = registry.grant(firm_id, connector).await.expect("grant");
    Pseudonyms::new(registry.clone(), keyring.clone())
        .for_grant(&GrantRef {
            firm_id,
            grant_id: &grant.id,
            connector,
        })
        .await
        .expect("the grant's pseudonyms")
        .disguise(real)
        .expect("a record id")
}

/// Enables `connector` for a firm and issues a credential: (client_id, secret).
pub async fn enable_with_credential(
    registry: &Registry,
    firm_id: &str,
    connector: &str,
) -> (String, String) {
    use secrecy::ExposeSecret;
    let catalogue = scopegate::connectors::catalogue();
    let c = catalogue.require(connector).expect("connector");
    registry
        .enable_grant(firm_id, &c.contract, &format!("admin@{firm_id}"))
        .await
        .expect("enable");
    let issued = registry
        .issue_credential(firm_id, connector)
        .await
        .expect("credential");
    (
        issued.client_id,
        issued.client_secret.expose_secret().to_string(),
    )
}

/// Small seed for fast tests.
pub fn small_seed() -> seed::SeedSize {
    seed::SeedSize {
        fee_earners: 3,
        clients: 8,
        matters: 10,
        diary_entries: 30,
        transactions: 60,
    }
}

/// Declares `async fn $name(env: TestEnv)` as two tests: `sqlite::$name` and `postgres::$name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::TestEnv::new($crate::Backend::Sqlite).await).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if !$crate::postgres_available().await {
                        return;
                    }
                    super::$name($crate::TestEnv::new($crate::Backend::Postgres).await).await;
                }
            )+
        }
    };
}

/// Every value in the firm database that must never leave through the accounting connector.
pub async fn sensitive_values(db: &FirmDb) -> Vec<String> {
    use sqlx::Row;
    let queries = [
        "SELECT full_name AS v FROM clients",
        "SELECT id_number AS v FROM clients",
        "SELECT email AS v FROM clients",
        "SELECT phone AS v FROM clients",
        "SELECT address AS v FROM clients",
        "SELECT location AS v FROM diary_entries",
        "SELECT private_notes AS v FROM diary_entries",
        "SELECT internal_note AS v FROM accounting_transactions",
        "SELECT description AS v FROM matters",
        "SELECT email AS v FROM users",
        "SELECT id AS v FROM clients",
        "SELECT id AS v FROM diary_entries",
        "SELECT id AS v FROM users",
    ];
    let mut values = Vec::new();
    for sql in queries {
        for row in sqlx::query(sql)
            .fetch_all(db.pool())
            .await
            .expect("sensitive query")
        {
            values.push(row.get::<String, _>("v"));
        }
    }
    values.sort();
    values.dedup();
    values
}

/// Property names a connector schema allows.
pub fn schema_fields(connector: &str, schema: &str) -> std::collections::BTreeSet<String> {
    let catalogue = scopegate::connectors::catalogue();
    let c = catalogue.require(connector).expect("connector");
    c.projection(schema)
        .fields
        .iter()
        .map(|f| f.name.clone())
        .collect()
}

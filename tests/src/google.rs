//! Helpers for the Google Calendar tests: an emulator, a gateway configured
//! to use it, the consent flow driven the way a fee earner's browser would,
//! and diary edits made the way the practice system makes them.

use crate::{TestApp, TestEnv};
use scopegate::config::{Config, ConfigArgs, ConnectorSetting};
use scopegate::tenancy::FirmDb;
use scopegate_contract::{Capabilities, ConnectorError, FirmGrant};
use scopegate_google_calendar::consent::{ConnectionStatus, DisconnectReport};
use scopegate_google_calendar::context::Ctx;
use scopegate_google_calendar::store::Connection;
use scopegate_google_calendar::switch_off::SwitchOffReport;
use scopegate_google_calendar::GoogleCalendar;
use scopegate_google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use sqlx::Row;

/// Starts an emulator on a free loopback port.
pub async fn start_emulator() -> RunningEmulator {
    Emulator::new(EmulatorConfig::default())
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator")
}

/// Configuration arguments pointing the gateway's Google connector at `emulator`.
pub fn google_args(env: &TestEnv, emulator: &RunningEmulator, interval_ms: u64) -> ConfigArgs {
    let secret_file = env.dir.path().join("google-client-secret");
    std::fs::write(&secret_file, emulator.emulator.config().client_secret).expect("secret file");
    ConfigArgs {
        data_dir: Some(env.dir.path().to_path_buf()),
        database_url: Some(env.database_url.clone()),
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        trusted_proxies: Some(vec!["127.0.0.1".parse().expect("ip")]),
        connector_settings: [
            ("auth_url", emulator.auth_url()),
            ("token_url", emulator.token_url()),
            ("revoke_url", emulator.revoke_url()),
            ("api_base", emulator.api_base()),
            ("client_id", emulator.emulator.config().client_id),
            (
                "client_secret_file",
                secret_file.to_str().expect("utf-8 path").to_string(),
            ),
            ("sync_interval_ms", interval_ms.to_string()),
            ("user_concurrency", "8".into()),
            ("user_rate_per_second", "1000".into()),
        ]
        .into_iter()
        .map(|(key, value)| google_setting(key, value))
        .collect(),
        metrics_listen: Some(scopegate::config::MetricsListen::Off),
        ..Default::default()
    }
}

/// One setting of the Google Calendar connector (`[connector.google-calendar] key`).
pub fn google_setting(key: &str, value: impl Into<String>) -> ConnectorSetting {
    ConnectorSetting {
        connector: "google-calendar".into(),
        key: key.into(),
        value: value.into(),
    }
}

/// The Google Calendar connector over a running gateway's capabilities, as the
/// operator reaches it: for starting consents and reading connections.
pub struct Calendar {
    ctx: Ctx,
    app_state: scopegate::app::AppState,
}

impl Calendar {
    pub fn of(app: &TestApp) -> Self {
        Self::of_state(&app.state)
    }

    pub fn of_state(state: &scopegate::app::AppState) -> Self {
        let running = state
            .connectors
            .iter()
            .find(|r| r.connector.id() == "google-calendar")
            .expect("google-calendar is registered");
        let caps: Capabilities = running.capabilities.clone();
        Self {
            ctx: GoogleCalendar::new().context(&caps).expect("settings"),
            app_state: state.clone(),
        }
    }

    pub fn ctx(&self) -> &Ctx {
        &self.ctx
    }

    /// The operator's handle on the firm's grant.
    pub async fn grant(&self, firm_id: &str) -> FirmGrant {
        self.grant_as(firm_id, None).await
    }

    /// The firm's grant as the operator holds it, or as the settings account
    /// `session` does when given.
    pub async fn grant_as(&self, firm_id: &str, session: Option<&str>) -> FirmGrant {
        let grant = self
            .app_state
            .registry
            .grant(firm_id, "google-calendar")
            .await
            .expect("grant");
        let compiled = self
            .app_state
            .catalogue
            .require("google-calendar")
            .expect("catalogue");
        match session {
            None => scopegate::capabilities::grant_for_operator(&grant, &compiled, "test"),
            Some(account) => scopegate::capabilities::grant_for_session(&grant, &compiled, account),
        }
        .expect("fresh")
    }

    /// Google's authorize URL for `user` (a consent the operator started).
    pub async fn consent_url(&self, firm_id: &str, user: &str) -> Result<url::Url, ConnectorError> {
        self.consent_url_as(firm_id, user, None).await
    }

    /// Like [`Calendar::consent_url`], started by the settings account `session` when given.
    pub async fn consent_url_as(
        &self,
        firm_id: &str,
        user: &str,
        session: Option<&str>,
    ) -> Result<url::Url, ConnectorError> {
        let grant = self.grant_as(firm_id, session).await;
        scopegate_google_calendar::consent::start(&self.ctx, &grant, user, false)
            .await
            .map(|(url, _)| url)
    }

    pub async fn connection(&self, firm_id: &str, user: &str) -> Option<Connection> {
        let grant = self.grant(firm_id).await;
        scopegate_google_calendar::store::connection_for_user(&self.ctx.caps, &grant, user)
            .await
            .expect("connection")
    }

    pub async fn statuses(&self, firm_id: &str) -> Vec<ConnectionStatus> {
        let grant = self.grant(firm_id).await;
        scopegate_google_calendar::consent::connection_statuses(&self.ctx, &grant)
            .await
            .expect("statuses")
    }

    pub async fn disconnect(
        &self,
        firm_id: &str,
        user: &str,
        delete_events: bool,
    ) -> Result<DisconnectReport, ConnectorError> {
        let grant = self.grant(firm_id).await;
        scopegate_google_calendar::consent::disconnect(&self.ctx, &grant, user, delete_events).await
    }

    /// Switches the connector off for the firm as an admin would (or as a
    /// firm's termination does, disconnecting every account), then does its clean-up.
    pub async fn switch_off(
        &self,
        firm_id: &str,
        actor: &str,
        delete_events: bool,
        disconnect_accounts: bool,
    ) -> Result<SwitchOffReport, ConnectorError> {
        self.app_state
            .registry
            .disable_grant(firm_id, "google-calendar", actor)
            .await
            .expect("disable");
        let grant = self.grant(firm_id).await;
        scopegate_google_calendar::switch_off::after_switch_off(
            &self.ctx,
            &grant,
            delete_events,
            disconnect_accounts,
        )
        .await
    }
}

pub fn google_config(env: &TestEnv, emulator: &RunningEmulator, interval_ms: u64) -> Config {
    Config::resolve(&google_args(env, emulator, interval_ms)).expect("config")
}

/// Enables the google-calendar connector for a firm.
pub async fn enable_google(env: &TestEnv, firm_id: &str) {
    let catalogue = scopegate::connectors::catalogue();
    let connector = catalogue.require("google-calendar").expect("connector");
    env.registry
        .enable_grant(firm_id, &connector.contract, &format!("admin@{firm_id}"))
        .await
        .expect("enable google-calendar");
}

/// Connects `user` as their browser would, signed in at Google as `account`:
/// start, follow Google's redirect back to the gateway's callback. Returns the callback's status.
pub async fn connect_user(app: &TestApp, firm_id: &str, user: &str, account: &str) -> u16 {
    connect_user_as(app, firm_id, user, account, None).await
}

/// Like [`connect_user`], the consent started by the settings account `session` when given.
pub async fn connect_user_as(
    app: &TestApp,
    firm_id: &str,
    user: &str,
    account: &str,
    session: Option<&str>,
) -> u16 {
    let mut url = Calendar::of(app)
        .consent_url_as(firm_id, user, session)
        .await
        .expect("consent start");
    url.query_pairs_mut().append_pair("login_hint", account);
    let to_google = app.http.get(url.as_str()).send().await.expect("authorize");
    assert_eq!(
        to_google.status(),
        302,
        "the emulator approves with a redirect"
    );
    let location = to_google.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let query = location.split_once('?').expect("query").1;
    let back = app
        .http
        .get(app.url(&format!("/oauth/google/callback?{query}")))
        .send()
        .await
        .expect("callback");
    back.status().as_u16()
}

/// A fee earner who owns at least one diary entry.
pub async fn busiest_user(db: &FirmDb) -> String {
    sqlx::query("SELECT owner_user_id, COUNT(*) AS n FROM diary_entries GROUP BY owner_user_id ORDER BY n DESC, owner_user_id LIMIT 1")
        .fetch_one(db.pool())
        .await
        .expect("user")
        .get("owner_user_id")
}

/// (diary id, matter name, description, starts_at, ends_at, all_day) of a user's live entries.
pub async fn live_entries(
    db: &FirmDb,
    user: &str,
) -> Vec<(String, String, String, i64, i64, bool)> {
    sqlx::query("SELECT d.id, m.name, d.description, d.starts_at, d.ends_at, d.all_day FROM diary_entries d JOIN matters m ON m.id = d.matter_id WHERE d.owner_user_id = $1 AND d.deleted = 0 ORDER BY d.id")
        .bind(user)
        .fetch_all(db.pool())
        .await
        .expect("entries")
        .iter()
        .map(|r| {
            (
                r.get("id"),
                r.get("name"),
                r.get("description"),
                r.get("starts_at"),
                r.get("ends_at"),
                r.get::<i64, _>("all_day") != 0,
            )
        })
        .collect()
}

/// Runs `sql` (binding `$1` = value, `$2` = diary id, `$3` = new change_seq) as the practice system would.
pub async fn edit_diary(db: &FirmDb, sql: &str, value: &str, diary_id: &str) {
    let mut tx = db.pool().begin().await.expect("tx");
    let seq = scopegate::tenancy::next_change_seqs(&mut tx, 1)
        .await
        .expect("seq");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .bind(value)
        .bind(diary_id)
        .bind(seq)
        .execute(&mut *tx)
        .await
        .expect("edit");
    tx.commit().await.expect("commit");
}

/// Adds a diary entry for `user` on `matter_id`; returns its id.
pub async fn add_diary_entry(
    db: &FirmDb,
    user: &str,
    matter_id: &str,
    description: &str,
    starts_at: i64,
) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let mut tx = db.pool().begin().await.expect("tx");
    let seq = scopegate::tenancy::next_change_seqs(&mut tx, 1)
        .await
        .expect("seq");
    sqlx::query("INSERT INTO diary_entries (id, matter_id, owner_user_id, starts_at, ends_at, all_day, description, location, private_notes, deleted, change_seq) VALUES ($1, $2, $3, $4, $5, 0, $6, 'Secret boardroom 9, Cape Town', 'Private: client is in financial trouble', 0, $7)")
        .bind(&id).bind(matter_id).bind(user).bind(starts_at).bind(starts_at + 3_600_000).bind(description).bind(seq)
        .execute(&mut *tx).await.expect("insert");
    tx.commit().await.expect("commit");
    id
}

/// Completed outbound records (`kind = 'result'`) of the google-calendar connector.
pub async fn completed_google_records(env: &TestEnv) -> i64 {
    sqlx::query("SELECT COUNT(*) AS n FROM outbound_log WHERE connector = 'google-calendar' AND kind = 'result'")
        .fetch_one(env.registry.pool())
        .await
        .expect("count")
        .get("n")
}

/// Waits (bounded) until `check` holds; panics with `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Every sensitive value seeded in a firm database that must never reach Google.
pub async fn sensitive_values(db: &FirmDb, firm_id: &str) -> Vec<String> {
    let mut values = vec![firm_id.to_string()];
    for sql in [
        "SELECT full_name AS v FROM clients",
        "SELECT id_number AS v FROM clients",
        "SELECT email AS v FROM clients",
        "SELECT phone AS v FROM clients",
        "SELECT address AS v FROM clients",
        "SELECT id AS v FROM clients",
        "SELECT location AS v FROM diary_entries",
        "SELECT private_notes AS v FROM diary_entries",
        "SELECT id AS v FROM diary_entries",
        "SELECT id AS v FROM matters",
        "SELECT number AS v FROM matters",
        "SELECT description AS v FROM matters",
        "SELECT id AS v FROM users",
        "SELECT full_name AS v FROM users",
        "SELECT email AS v FROM users",
    ] {
        for row in sqlx::query(sql)
            .fetch_all(db.pool())
            .await
            .expect("sensitive")
        {
            values.push(row.get("v"));
        }
    }
    values
}

/// Asserts every body the emulator received holds only allowed fields and no sensitive value.
pub fn assert_only_allowed_fields(emulator: &Emulator, sensitive: &[String]) -> usize {
    let allowed_top = ["id", "summary", "description", "start", "end"];
    let allowed_time = ["date", "dateTime", "timeZone"];
    let mut checked = 0;
    for received in emulator.received() {
        for value in sensitive {
            // Matter names are allowed (they are the event title); client surnames appear in them.
            if value.len() >= 6 {
                assert!(
                    !received.body.contains(value.as_str()),
                    "{} {} carried a sensitive value {value:?}",
                    received.method,
                    received.path
                );
            }
        }
        if received.kind == "api" && !received.body.is_empty() {
            let body: serde_json::Value = serde_json::from_str(&received.body).expect("json body");
            let object = body.as_object().expect("object body");
            for (key, value) in object {
                assert!(
                    allowed_top.contains(&key.as_str()),
                    "unexpected field {key} in {}",
                    received.body
                );
                if key == "start" || key == "end" {
                    for time_key in value.as_object().expect("time object").keys() {
                        assert!(
                            allowed_time.contains(&time_key.as_str()),
                            "unexpected {key}.{time_key}"
                        );
                    }
                }
            }
            checked += 1;
        }
    }
    checked
}

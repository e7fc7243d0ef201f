//! The soak's firms, set up before the gateway starts with the shared test
//! helpers: each registered with its own seeded SQLite database in the data
//! directory, the accounting and Google Calendar connectors switched on, and
//! its own vendor credential (replaced whenever the switcher re-enables the
//! grant). Fee earners are connected to Google once the gateway serves.

use scopegate::tenancy::{seed, FirmDb};
use scopegate_e2e::TestEnv;
use sqlx::Row;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// A vendor credential and how many times it was replaced.
#[derive(Debug, Clone)]
pub struct Credential {
    pub client_id: String,
    pub secret: String,
    pub generation: u64,
}

/// One firm of the soak.
pub struct Firm {
    pub id: String,
    pub db: FirmDb,
    pub fee_earners: Vec<String>,
    pub matters: Vec<String>,
    pub credential: Mutex<Credential>,
    /// Set by the switcher just before it switches accounting off, cleared once
    /// the grant is on again with a new credential.
    accounting_off: AtomicBool,
}

impl Firm {
    pub fn credential(&self) -> Credential {
        self.credential.lock().expect("credential").clone()
    }

    /// Whether a refusal of a credential of `generation` is expected: accounting
    /// is (being) switched off, or the credential was replaced since.
    pub fn refusal_expected(&self, generation: u64) -> bool {
        self.accounting_off.load(SeqCst) || generation < self.credential().generation
    }

    pub fn set_accounting_off(&self, off: bool) {
        self.accounting_off.store(off, SeqCst);
    }

    /// A newly issued credential replaces the revoked one.
    pub fn replace_credential(&self, client_id: String, secret: String) {
        let mut credential = self.credential.lock().expect("credential");
        credential.client_id = client_id;
        credential.secret = secret;
        credential.generation += 1;
    }
}

/// What each firm's database holds to begin with.
fn size(fee_earners: usize) -> seed::SeedSize {
    seed::SeedSize {
        fee_earners,
        clients: 8,
        matters: 10,
        diary_entries: 12 * fee_earners,
        transactions: 200,
    }
}

/// Registers and seeds `count` firms with `fee_earners` each, both connectors on.
pub async fn set_up(env: &TestEnv, count: usize, fee_earners: usize) -> Vec<Arc<Firm>> {
    let mut firms = Vec::with_capacity(count);
    for n in 0..count {
        let id = format!("soak-firm-{n:02}");
        let db = env.add_seeded_firm(&id, size(fee_earners)).await;
        let (client_id, secret) =
            scopegate_e2e::enable_with_credential(&env.registry, &id, "accounting").await;
        scopegate_e2e::google::enable_google(env, &id).await;
        let ids = |sql: &'static str| {
            let db = db.clone();
            async move {
                sqlx::query(sql)
                    .fetch_all(db.pool())
                    .await
                    .expect("firm database")
                    .iter()
                    .map(|r| r.get::<String, _>("id"))
                    .collect::<Vec<String>>()
            }
        };
        let fee_earners = ids("SELECT id FROM users WHERE role = 'fee_earner' ORDER BY id").await;
        let matters = ids("SELECT id FROM matters ORDER BY id").await;
        firms.push(Arc::new(Firm {
            id,
            db,
            fee_earners,
            matters,
            credential: Mutex::new(Credential {
                client_id,
                secret,
                generation: 0,
            }),
            accounting_off: AtomicBool::new(false),
        }));
    }
    firms
}

/// Live (not deleted) diary entries across the firms.
pub async fn live_entries(firms: &[Arc<Firm>]) -> usize {
    let mut total = 0;
    for firm in firms {
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM diary_entries WHERE deleted = 0")
            .fetch_one(firm.db.pool())
            .await
            .map(|r| r.get("n"))
            .unwrap_or(0);
        total += n as usize;
    }
    total
}

//! `scopegate firm seed-demo`: fills a firm's database with realistic fake
//! practice records, including the sensitive fields (identity numbers, contact
//! details, private diary notes, internal ledger notes) that must never leave.

use super::{next_change_seqs, FirmDb};
use crate::registry::StoreResult;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const FIRST: &[&str] = &[
    "Thandi",
    "Pieter",
    "Ayesha",
    "Johan",
    "Naledi",
    "Sipho",
    "Megan",
    "Ravi",
    "Lerato",
    "Charlotte",
    "Kabelo",
    "Anika",
    "Musa",
    "Fatima",
    "David",
    "Zanele",
];
const LAST: &[&str] = &[
    "Mokoena",
    "van der Merwe",
    "Patel",
    "Botha",
    "Dlamini",
    "Naidoo",
    "Smith",
    "Khumalo",
    "Pillay",
    "du Toit",
    "Nkosi",
    "Jacobs",
    "Ndlovu",
    "Fourie",
];
const MATTER_KINDS: &[&str] = &[
    "Estate late",
    "Transfer of Erf",
    "Divorce:",
    "Contract dispute:",
    "Labour claim:",
    "Company formation:",
    "Lease review:",
    "Debt collection:",
];
const DIARY: &[&str] = &[
    "Consultation with client",
    "Court appearance",
    "Draft heads of argument",
    "Call with opposing attorney",
    "Sign transfer documents",
    "Mediation session",
    "File pleadings",
    "Review expert report",
];
const STREETS: &[&str] = &[
    "Long Street",
    "Church Street",
    "Jan Smuts Avenue",
    "Florida Road",
    "Main Road",
    "Oxford Road",
];
const TOWNS: &[&str] = &[
    "Cape Town",
    "Johannesburg",
    "Durban",
    "Pretoria",
    "Stellenbosch",
    "Gqeberha",
];

/// How much to seed.
#[derive(Debug, Clone, Copy)]
pub struct SeedSize {
    pub fee_earners: usize,
    pub clients: usize,
    pub matters: usize,
    pub diary_entries: usize,
    pub transactions: usize,
}

impl Default for SeedSize {
    fn default() -> Self {
        Self {
            fee_earners: 4,
            clients: 30,
            matters: 45,
            diary_entries: 240,
            transactions: 400,
        }
    }
}

/// What was written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SeedCounts {
    pub users: usize,
    pub clients: usize,
    pub matters: usize,
    pub diary_entries: usize,
    pub transactions: usize,
}

fn name(rng: &mut StdRng) -> String {
    format!(
        "{} {}",
        FIRST.choose(rng).expect("names"),
        LAST.choose(rng).expect("names")
    )
}

fn id_number(rng: &mut StdRng) -> String {
    (0..13)
        .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
        .collect()
}

/// Seeds one firm's database in one transaction (all or nothing).
pub async fn seed_demo(db: &FirmDb, size: SeedSize) -> StoreResult<SeedCounts> {
    let mut rng = StdRng::seed_from_u64(crc32fast::hash(db.firm_id.as_bytes()) as u64);
    let now = crate::clock::now_ms();
    let day = 86_400_000i64;
    let mut tx = db.pool().begin().await?;
    let mut counts = SeedCounts::default();

    let mut users = Vec::new();
    for i in 0..size.fee_earners {
        let id = uuid::Uuid::new_v4().to_string();
        let full = name(&mut rng);
        let email = format!(
            "{}.{}@{}.example",
            full.split(' ').next().unwrap_or("user").to_lowercase(),
            i,
            db.firm_id
        );
        sqlx::query(
            "INSERT INTO users (id, full_name, email, role) VALUES ($1, $2, $3, 'fee_earner')",
        )
        .bind(&id)
        .bind(&full)
        .bind(&email)
        .execute(&mut *tx)
        .await?;
        users.push(id);
    }
    counts.users = users.len();

    let mut clients = Vec::new();
    for _ in 0..size.clients {
        let id = uuid::Uuid::new_v4().to_string();
        let full = name(&mut rng);
        let email = format!("{}@mail.example", full.to_lowercase().replace(' ', "."));
        let phone = format!(
            "+27 8{} {:03} {:04}",
            rng.gen_range(1..5),
            rng.gen_range(0..1000),
            rng.gen_range(0..10000)
        );
        let address = format!(
            "{} {}, {}",
            rng.gen_range(1..300),
            STREETS.choose(&mut rng).expect("streets"),
            TOWNS.choose(&mut rng).expect("towns")
        );
        sqlx::query("INSERT INTO clients (id, full_name, id_number, email, phone, address) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&id).bind(&full).bind(id_number(&mut rng)).bind(&email).bind(&phone).bind(&address)
            .execute(&mut *tx).await?;
        clients.push((id, full));
    }
    counts.clients = clients.len();

    let mut matters = Vec::new();
    let first_seq = next_change_seqs(
        &mut tx,
        (size.matters + size.diary_entries + size.transactions) as i64,
    )
    .await?;
    let mut seq = first_seq;
    for i in 0..size.matters {
        let id = uuid::Uuid::new_v4().to_string();
        let (client_id, client_name) = clients.choose(&mut rng).expect("clients").clone();
        let kind = MATTER_KINDS.choose(&mut rng).expect("kinds");
        let matter_name = format!(
            "{kind} {}",
            client_name.split(' ').next_back().unwrap_or("client")
        );
        sqlx::query("INSERT INTO matters (id, number, name, client_id, description, status, opened_at, change_seq) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7)")
            .bind(&id).bind(format!("MAT{:05}", 1000 + i)).bind(&matter_name).bind(&client_id)
            .bind(format!("Internal: instructions from {client_name}, strategy under review"))
            .bind(now - rng.gen_range(30..900) * day).bind(seq)
            .execute(&mut *tx).await?;
        seq += 1;
        matters.push(id);
    }
    counts.matters = matters.len();

    for _ in 0..size.diary_entries {
        let start = now + rng.gen_range(-20..40) * day + rng.gen_range(8..17) * 3_600_000;
        let all_day = rng.gen_bool(0.1);
        sqlx::query("INSERT INTO diary_entries (id, matter_id, owner_user_id, starts_at, ends_at, all_day, description, location, private_notes, deleted, change_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10)")
            .bind(uuid::Uuid::new_v4().to_string()).bind(matters.choose(&mut rng).expect("matters")).bind(users.choose(&mut rng).expect("users"))
            .bind(start).bind(start + rng.gen_range(1..4) * 1_800_000).bind(i64::from(all_day))
            .bind(DIARY.choose(&mut rng).expect("diary").to_string())
            .bind(format!("Boardroom {}, {}", rng.gen_range(1..5), TOWNS.choose(&mut rng).expect("towns")))
            .bind(format!("Private: client {} is anxious about costs", name(&mut rng)))
            .bind(seq)
            .execute(&mut *tx).await?;
        seq += 1;
    }
    counts.diary_entries = size.diary_entries;

    for i in 0..size.transactions {
        let trust = rng.gen_bool(0.4);
        let amount = rng.gen_range(-2_500_000..5_000_000i64);
        sqlx::query("INSERT INTO accounting_transactions (id, account, amount_cents, currency, matter_id, reference, posted_at, internal_note, change_seq) VALUES ($1, $2, $3, 'ZAR', $4, $5, $6, $7, $8)")
            .bind(uuid::Uuid::new_v4().to_string()).bind(if trust { "trust" } else { "business" }).bind(amount)
            .bind(matters.choose(&mut rng).expect("matters")).bind(format!("{}{:06}", if trust { "TR" } else { "BU" }, i))
            .bind(now - rng.gen_range(0..365) * day)
            .bind(format!("Internal: partner approved, client {} paid late", name(&mut rng)))
            .bind(seq)
            .execute(&mut *tx).await?;
        seq += 1;
    }
    counts.transactions = size.transactions;
    tx.commit().await?;
    Ok(counts)
}

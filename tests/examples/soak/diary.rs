//! The practice system changing fee earners' diaries while the soak runs, at a
//! fixed pace and through the shared test helpers: entries added, their
//! descriptions edited and entries deleted (soft delete, as the practice
//! system does), each with a new change number, so the calendar sync always
//! has something to send. Adds and deletes balance, so the diaries stay about
//! the same size.

use crate::firms::Firm;
use crate::tally::{Kind, Tally};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use scopegate_e2e::google::{add_diary_entry, edit_diary};
use sqlx::Row;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// Time between two diary changes (across all firms).
pub const EVERY: Duration = Duration::from_millis(200);

const EDIT: &str = "UPDATE diary_entries SET description = $1, change_seq = $3 WHERE id = $2";
const DELETE: &str =
    "UPDATE diary_entries SET deleted = 1, description = $1, change_seq = $3 WHERE id = $2";

pub async fn run(firms: Vec<Arc<Firm>>, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut interval = tokio::time::interval(EVERY);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n: u64 = 0;
    while !stop.load(SeqCst) {
        interval.tick().await;
        n += 1;
        let firm = firms[rng.gen_range(0..firms.len())].clone();
        let roll = rng.gen_range(0..10);
        let user = firm.fee_earners[rng.gen_range(0..firm.fee_earners.len())].clone();
        let matter = firm.matters[rng.gen_range(0..firm.matters.len())].clone();
        let starts_at = 1_790_000_000_000i64 + rng.gen_range(0..365i64) * 86_400_000;
        // Each change in a task of its own: the helpers panic on a database
        // error, which is then counted as a failed change.
        let change = tokio::spawn(async move {
            if roll < 3 {
                let description = format!("Soak consultation {n}");
                add_diary_entry(&firm.db, &user, &matter, &description, starts_at).await;
                return true;
            }
            let Some(id) = some_live_entry(&firm).await else {
                return false;
            };
            if roll < 7 {
                edit_diary(&firm.db, EDIT, &format!("Soak: moved, {n}"), &id).await;
            } else {
                edit_diary(&firm.db, DELETE, "Soak: cancelled", &id).await;
            }
            true
        });
        match change.await {
            Ok(true) => tally.done(Kind::Diary),
            Ok(false) => {}
            Err(e) => tally.failed(Kind::Diary, e.to_string()),
        }
    }
}

/// A live entry of the firm, picked at random.
async fn some_live_entry(firm: &Firm) -> Option<String> {
    sqlx::query("SELECT id FROM diary_entries WHERE deleted = 0 ORDER BY RANDOM() LIMIT 1")
        .fetch_optional(firm.db.pool())
        .await
        .ok()
        .flatten()
        .map(|r| r.get("id"))
}

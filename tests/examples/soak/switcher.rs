//! Grants switched off and on again while the load runs, as an operator does it
//! with the `scopegate` command: every period the next firm in turn has its
//! accounting grant (then, next time, its Google Calendar grant) disabled,
//! left off for a while, and enabled again; a re-enabled accounting grant
//! gets a new credential (switching off revoked the old one), which that
//! firm's vendor picks up. A cycle once begun is finished, so every grant is
//! on when the switcher stops.

use crate::firms::Firm;
use crate::gateway::Deployment;
use crate::tally::{Kind, Tally};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// Time between the starts of two switch-offs.
pub const PERIOD: Duration = Duration::from_secs(30);
/// How long a grant stays off.
const OFF_FOR: Duration = Duration::from_secs(10);

pub async fn run(
    deployment: Arc<Deployment>,
    firms: Vec<Arc<Firm>>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + PERIOD / 2, PERIOD);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut cycle = 0usize;
    loop {
        interval.tick().await;
        if stop.load(SeqCst) {
            return;
        }
        let firm = &firms[(cycle / 2) % firms.len()];
        let connector = if cycle.is_multiple_of(2) {
            "accounting"
        } else {
            "google-calendar"
        };
        cycle += 1;
        if connector == "accounting" {
            firm.set_accounting_off(true);
        }
        grant(&deployment, &tally, "disable", &firm.id, connector).await;
        tokio::time::sleep(OFF_FOR).await;
        grant(&deployment, &tally, "enable", &firm.id, connector).await;
        if connector == "accounting" {
            issue(&deployment, &tally, firm).await;
            firm.set_accounting_off(false);
        }
    }
}

/// `scopegate grant <verb> --firm F --connector C --actor soak`.
async fn grant(deployment: &Deployment, tally: &Tally, verb: &str, firm: &str, connector: &str) {
    let ran = deployment
        .run(&[
            "grant",
            verb,
            "--firm",
            firm,
            "--connector",
            connector,
            "--actor",
            "soak@operator.example",
        ])
        .await;
    if ran.ok {
        tally.done(Kind::Switch);
    } else {
        tally.failed(
            Kind::Switch,
            format!("grant {verb} {firm} {connector}: {}", ran.stderr.trim()),
        );
    }
}

/// `scopegate credential issue` for the firm's accounting grant; hands it to its vendor.
async fn issue(deployment: &Deployment, tally: &Tally, firm: &Firm) {
    let ran = deployment
        .run(&[
            "credential",
            "issue",
            "--firm",
            &firm.id,
            "--connector",
            "accounting",
        ])
        .await;
    let field = |key: &str| {
        ran.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    };
    match (ran.ok, field("client_id"), field("client_secret")) {
        (true, Some(id), Some(secret)) => {
            tally.done(Kind::Switch);
            firm.replace_credential(id, secret);
        }
        _ => tally.failed(
            Kind::Switch,
            format!("credential issue {}: {}", firm.id, ran.stderr.trim()),
        ),
    }
}

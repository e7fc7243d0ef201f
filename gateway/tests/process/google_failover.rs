//! Failover of the calendar sync between two `scopegate serve` instances on
//! one PostgreSQL registry (same master key). Instance A alone syncs a fee
//! earner's 2,000 diary entries into a slow Google emulator; B starts while A
//! holds the connection's lease; A is killed with SIGKILL mid-sync (its lease
//! is never released), and entries are deleted meanwhile. B must take the
//! connection over once A's lease expires (10 s, `LEASE_MS`) and finish: the
//! emulator ends with exactly one event per live entry, none duplicated.

use crate::google_gateway::*;
use scopegate::registry::Registry;
use scopegate::tenancy::seed;
use scopegate_google_emulator::{Emulator, EmulatorConfig};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const FIRM: &str = "harbour";
const ENTRIES: usize = 2000;
/// The connector's lease (connectors/google-calendar/src/lease.rs).
const LEASE: Duration = Duration::from_millis(10_000);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_other_instance_takes_over_a_killed_instances_sync() {
    let Some(registry_url) = fresh_postgres("failover").await else {
        return;
    };
    let firm_url = fresh_postgres("failoverfirm").await.expect("postgres");
    let dir = tempfile::tempdir().unwrap();
    let running = Emulator::new(EmulatorConfig {
        latency_ms: 10,
        ..Default::default()
    })
    .start("127.0.0.1:0".parse().unwrap())
    .await
    .unwrap();
    let emulator = running.emulator.clone();
    let registry = Registry::connect_and_migrate(&registry_url).await.unwrap();
    let db = google_firm(
        &registry,
        FIRM,
        &firm_url,
        seed::SeedSize {
            fee_earners: 1,
            clients: 20,
            matters: 30,
            diary_entries: ENTRIES,
            transactions: 0,
        },
        false,
    )
    .await;
    let deployment = Deployment {
        dir: dir.path().to_path_buf(),
        registry_url,
        key_file: key_file(dir.path(), &[&scopegate::keys::generate_key()]),
    };
    let slow = [("SCOPEGATE_GOOGLE_USER_CONCURRENCY", "4")];
    let mut a = deployment
        .serve(crate::common::free_port(), &running, &slow)
        .await;
    let user = diary_owners(&db).await.remove(0);
    let link = consent_link(&deployment, &running, FIRM, &user);
    consent(&a.base(), &link, "fee.earner%40gmail.example").await;
    let connected = Instant::now();

    // A is syncing; B starts and finds the connection leased.
    let mut started_b = None;
    let mut b = None;
    for _ in 0..1200 {
        let events = emulator.live_events().len();
        if b.is_none() && events >= 200 {
            b = Some(
                deployment
                    .serve(crate::common::free_port(), &running, &slow)
                    .await,
            );
            started_b = Some(events);
        }
        if events >= 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let b = b.expect("B started while A synced");
    a.kill();
    let killed = Instant::now();
    let a_secs = connected.elapsed().as_secs_f64();
    let at_kill = emulator.live_events().len();
    assert!(
        (600..ENTRIES).contains(&at_kill),
        "killed mid-sync ({at_kill} of {ENTRIES} events)"
    );
    delete_entries(&db, 25).await;
    // Calls of A still in flight at the emulator end within its latency.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = emulator.received().len();

    let live = live_entries(&db).await;
    let mut takeover = None;
    let mut done = None;
    // Done: one event per live entry and no call to Google for a second.
    let (mut calls_before, mut quiet_since) = (settled, None);
    let mut progress = Vec::new();
    for tick in 0..2400 {
        let calls = emulator.received().len();
        if takeover.is_none() && calls > settled {
            takeover = Some(killed.elapsed());
        }
        let events = emulator.live_events().len();
        if tick % 40 == 0 {
            progress.push(format!("{:.0}s:{events}", killed.elapsed().as_secs_f64()));
        }
        if events == live && calls == calls_before {
            let since = *quiet_since.get_or_insert_with(|| killed.elapsed());
            if killed.elapsed() - since >= Duration::from_secs(1) {
                done = Some(since);
                break;
            }
        } else {
            quiet_since = None;
        }
        calls_before = calls;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("events after the kill: {}", progress.join(" "));
    let takeover = takeover.expect("B called Google after A was killed");
    let done = done.expect("B finished the sync");
    let events = emulator.live_events();
    let ids: BTreeSet<&str> = events
        .iter()
        .map(|e| e.event["id"].as_str().unwrap())
        .collect();
    let received = emulator.received();
    let duplicates = received.iter().filter(|r| r.status == 409).count();
    eprintln!(
        "failover: B started at {} events, A killed at {at_kill} of {ENTRIES} ({a_secs:.1} s after the consent); B's first Google call {:.2} s after the kill (lease {} s), sync finished {:.2} s after the kill; {} events for {live} live entries ({} deleted after the kill), {duplicates} insert(s) answered 409 (A's last writes), {} Google calls in all",
        started_b.unwrap(),
        takeover.as_secs_f64(),
        LEASE.as_secs(),
        done.as_secs_f64(),
        events.len(),
        ENTRIES - live,
        received.len()
    );
    assert!(
        takeover <= LEASE + Duration::from_secs(2),
        "B took over within the lease time ({takeover:?})"
    );
    assert!(
        takeover >= Duration::from_secs(3),
        "B waited for A's lease rather than syncing alongside ({takeover:?})"
    );
    assert_eq!(
        (events.len(), ids.len()),
        (live, live),
        "exactly one event per live entry"
    );
    assert_eq!(b.complaints(), Vec::<String>::new());
}

//! Master-key rotation under load, as an operator does it: the new key goes
//! first in the key file and the gateway restarts on it; while a vendor
//! polls and the Google Calendar sync runs (the practice system adding diary
//! entries, every Google access token made stale again and again so refresh
//! tokens are opened all the time), `scopegate keys rotate` re-seals every
//! stored secret from another process. No vendor request fails, no token
//! refresh fails, the gateway logs no warning, and Google ends with exactly
//! one event per live entry. `keys retire` refuses while the old key still
//! seals anything and afterwards prints the key file without it, on which the
//! gateway still syncs and serves.

use crate::google_gateway::*;
use scopegate::registry::Registry;
use scopegate::tenancy::{default_firm_url, seed};
use scopegate_google_emulator::{Emulator, EmulatorConfig};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FIRM: &str = "harbour";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_under_load_fails_no_request_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let registry_url = format!("sqlite://{}", dir.path().join("registry.db").display());
    let firm_url = default_firm_url(dir.path(), FIRM);
    rotation_under_load(dir, registry_url, firm_url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_under_load_fails_no_request_postgres() {
    let Some(registry_url) = fresh_postgres("rotate").await else {
        return;
    };
    let firm_url = fresh_postgres("rotatefirm").await.expect("postgres");
    rotation_under_load(tempfile::tempdir().unwrap(), registry_url, firm_url).await;
}

/// Counts of what the load did.
#[derive(Default)]
struct Load {
    vendor_ok: AtomicU64,
    vendor_failed: AtomicU64,
    entries_added: AtomicU64,
    expiries: AtomicU64,
}

async fn rotation_under_load(dir: tempfile::TempDir, registry_url: String, firm_url: String) {
    let running = Emulator::new(EmulatorConfig {
        latency_ms: 2,
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
            fee_earners: 24,
            clients: 20,
            matters: 30,
            diary_entries: 720,
            transactions: 300,
        },
        true,
    )
    .await;
    let credential = registry.issue_credential(FIRM, "accounting").await.unwrap();

    let old = scopegate::keys::generate_key();
    let new = scopegate::keys::generate_key();
    let old_id = scopegate::keys::Keyring::parse(&old)
        .unwrap()
        .primary_id()
        .to_string();
    let deployment = Deployment {
        dir: dir.path().to_path_buf(),
        registry_url: registry_url.clone(),
        key_file: key_file(dir.path(), &[&old]),
    };
    let port = crate::common::free_port();
    let first = deployment.serve(port, &running, &[]).await;
    let users = diary_owners(&db).await;
    // The operator's links first (CLI commands, before the sync keeps a
    // SQLite registry busy), then each fee earner consents in the browser;
    // 16 consents stay parked, their fee earners still at Google's screen.
    let links: Vec<String> = users
        .iter()
        .chain(users.iter().take(16))
        .map(|user| consent_link(&deployment, &running, FIRM, user))
        .collect();
    for (user, link) in users.iter().zip(&links) {
        consent(&first.base(), link, &format!("{user}%40gmail.example")).await;
    }
    let synced = |want: usize| {
        let emulator = emulator.clone();
        async move {
            for _ in 0..1200 {
                if emulator.live_events().len() == want {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }
    };
    assert!(
        synced(live_entries(&db).await).await,
        "the first sync completes"
    );

    // The new key first in the key file; the gateway restarts on it.
    key_file(dir.path(), &[&new, &old]);
    let (ok, _, refused) = deployment.run(&running, &["keys", "retire", &old_id]);
    assert!(!ok, "retire must refuse while the old key seals anything");
    eprintln!("retire before the rotation: {}", refused.trim());
    assert!(
        refused.contains(&format!("key {old_id} still seals 41 stored values (25 in connector records, 16 in parked consents)")),
        "{refused}"
    );
    first.terminate();
    let gateway = deployment.serve(port, &running, &[]).await;

    // The load: a vendor polling (two clients), the practice system adding
    // diary entries, Google access tokens going stale.
    let load = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/oauth/token", gateway.base()))
        .basic_auth(
            &credential.client_id,
            Some(secrecy::ExposeSecret::expose_secret(
                &credential.client_secret,
            )),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap().to_string();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let (http, load, stop, bearer) = (http.clone(), load.clone(), stop.clone(), bearer.clone());
        let url = format!("{}/v1/transactions?limit=50", gateway.base());
        tasks.spawn(async move {
            while !stop.load(SeqCst) {
                match http.get(&url).bearer_auth(&bearer).send().await {
                    Ok(r) if r.status() == 200 => load.vendor_ok.fetch_add(1, SeqCst),
                    _ => load.vendor_failed.fetch_add(1, SeqCst),
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }
    {
        let (db, load, stop, users) = (db.clone(), load.clone(), stop.clone(), users.clone());
        tasks.spawn(async move {
            let mut i = 0;
            while !stop.load(SeqCst) {
                add_entry(&db, &users[i % users.len()], &format!("Hearing {i}")).await;
                load.entries_added.fetch_add(1, SeqCst);
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }
    {
        let (emulator, load, stop) = (emulator.clone(), load.clone(), stop.clone());
        tasks.spawn(async move {
            while !stop.load(SeqCst) {
                emulator.expire_access_tokens();
                load.expiries.fetch_add(1, SeqCst);
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received_before = emulator.received().len();
    let vendor_before = load.vendor_ok.load(SeqCst);
    let started = Instant::now();
    let mut command = deployment.command(crate::common::free_port(), &running);
    let rotate = tokio::task::spawn_blocking(move || {
        command
            .args(["keys", "rotate", "--batch", "2"])
            .output()
            .expect("keys rotate")
    })
    .await
    .unwrap();
    let rotate_secs = started.elapsed().as_secs_f64();
    let vendor_during = load.vendor_ok.load(SeqCst) - vendor_before;
    let google_during = emulator.received().len() - received_before;
    let rotate_out = String::from_utf8_lossy(&rotate.stdout).into_owned();
    assert!(
        rotate.status.success(),
        "{rotate_out}{}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, SeqCst);
    while tasks.join_next().await.is_some() {}
    let live = live_entries(&db).await;
    assert!(synced(live).await, "the sync converges after the rotation");

    let received = emulator.received();
    let refreshes: Vec<u16> = received
        .iter()
        .filter(|r| r.kind == "token" && r.body.contains("refresh_token"))
        .map(|r| r.status)
        .collect();
    let api_failures = received
        .iter()
        .filter(|r| r.kind == "api" && !(200..300).contains(&r.status) && r.status != 401)
        .count();
    let events = emulator.live_events();
    let ids: BTreeSet<&str> = events
        .iter()
        .map(|e| e.event["id"].as_str().unwrap())
        .collect();
    eprintln!(
        "rotation under load: `keys rotate` took {rotate_secs:.2} s wall: {}; during it the vendor had {vendor_during} polls answered and Google {google_during} calls; over the whole load: {} vendor polls ok, {} failed; {} diary entries added, access tokens made stale {} times, {} refreshes (all 200: {}), {} Calendar API failures; {} events for {live} live entries",
        rotate_out.lines().next().unwrap_or_default(),
        load.vendor_ok.load(SeqCst),
        load.vendor_failed.load(SeqCst),
        load.entries_added.load(SeqCst),
        load.expiries.load(SeqCst),
        refreshes.len(),
        refreshes.iter().all(|s| *s == 200),
        api_failures,
        events.len(),
    );
    assert_eq!(
        load.vendor_failed.load(SeqCst),
        0,
        "no vendor request failed"
    );
    assert!(
        vendor_during > 0,
        "the vendor polled while the rotation ran"
    );
    assert!(google_during > 0, "the sync ran while the rotation ran");
    assert!(refreshes.len() > users.len() && refreshes.iter().all(|s| *s == 200));
    assert_eq!(api_failures, 0);
    assert_eq!(
        (events.len(), ids.len()),
        (live, live),
        "one event per live entry"
    );
    assert!(
        rotate_out.starts_with("re-sealed 41 values under key ")
            && rotate_out.contains(": 25 in 25 connector records, 16 in parked consents ("),
        "{rotate_out}"
    );
    assert_eq!(gateway.complaints(), Vec::<String>::new());

    // The old key seals nothing now: retired, the gateway runs on the new key alone.
    let (ok, retired, why) = deployment.run(&running, &["keys", "retire", &old_id]);
    assert!(ok, "{why}");
    assert!(!retired.contains(&old));
    std::fs::write(&deployment.key_file, &retired).unwrap();
    let new_id = scopegate::keys::Keyring::parse(&new)
        .unwrap()
        .primary_id()
        .to_string();
    for (key, why) in [
        (old_id.as_str(), format!("key {old_id} is already retired")),
        (new_id.as_str(), format!("key {new_id} is the current key")),
        ("OLD", "\"OLD\" is not a key id".to_string()),
    ] {
        let (ok, _, refused) = deployment.run(&running, &["keys", "retire", key]);
        assert!(
            !ok && refused.starts_with(&format!("error: {why}")),
            "{refused}"
        );
        assert_eq!(refused.lines().count(), 1, "{refused}");
    }
    gateway.terminate();
    let gateway = deployment.serve(port, &running, &[]).await;
    emulator.expire_access_tokens();
    add_entry(&db, &users[0], "After the old key was retired").await;
    let live = live_entries(&db).await;
    assert!(synced(live).await, "syncs on the new key alone");
    let poll = http
        .get(format!("{}/v1/transactions?limit=5", gateway.base()))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(poll.status(), 200);
    let (ok, verified, why) = deployment.run(&running, &["audit", "verify"]);
    assert!(ok && verified.starts_with("ok:"), "{verified}{why}");
    assert_eq!(gateway.complaints(), Vec::<String>::new());
}

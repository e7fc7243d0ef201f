//! SIGTERM under load: in-flight requests finish, every send record gets its
//! result record, the chain verifies, and the process exits 0.

use crate::common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn sigterm_under_load_leaves_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    seeded_firm(&d, "alpha-law");
    ok(
        &d,
        &[
            "grant",
            "enable",
            "--firm",
            "alpha-law",
            "--connector",
            "accounting",
        ],
    );
    let creds = ok(
        &d,
        &[
            "credential",
            "issue",
            "--firm",
            "alpha-law",
            "--connector",
            "accounting",
        ],
    );
    let key = master_key();
    let server = Server::start(
        &d,
        &[
            ("SCOPEGATE_MASTER_KEY", &key),
            ("SCOPEGATE_API_BURST", "100000"),
            ("SCOPEGATE_API_RATE_PER_SECOND", "100000"),
        ],
        None,
    );
    let token = vendor_token(&server.base, &creds);
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..6 {
        let (stop, base, token) = (stop.clone(), server.base.clone(), token.clone());
        workers.push(std::thread::spawn(move || {
            let mut done = 0;
            for _ in 0..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let _ = std::process::Command::new("curl")
                    .args([
                        "-s",
                        "-o",
                        "/dev/null",
                        "-H",
                        &format!("Authorization: Bearer {token}"),
                        &format!("{base}/v1/transactions?limit=20"),
                    ])
                    .status();
                done += 1;
            }
            done
        }));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = server.terminate();
    stop.store(true, Ordering::Relaxed);
    let requests: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(status.success(), "exit status {status}");
    assert!(requests > 6, "load was applied");
    let key_file = d.join("master.key");
    std::fs::write(&key_file, &key).unwrap();
    let key_file = key_file.to_str().unwrap();
    let verify = ok(&d, &["--master-key-file", key_file, "audit", "verify"]);
    assert!(verify.starts_with("ok:"), "{verify}");
    let export = ok(&d, &["audit", "export", "--firm", "alpha-law"]);
    let sends = export
        .lines()
        .filter(|l| l.contains("\"kind\":\"send\""))
        .count();
    let results = export
        .lines()
        .filter(|l| l.contains("\"kind\":\"result\""))
        .count();
    assert!(sends > 0);
    assert_eq!(sends, results, "a send record lost its result");
}

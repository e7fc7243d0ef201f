//! The registry's disk full (issue 12): `scopegate serve` runs with its data
//! directory (SQLite registry and the firm's database) on a small tmpfs that
//! the test fills up. Vendor polls, fee posts and token requests answer 503
//! problem+json (or OAuth's `temporarily_unavailable`) with a clear detail,
//! never 500 and never a response without its outbound record; the operator's
//! log says the disk is full. Once space is freed the same process serves
//! again, and after it stops `scopegate audit verify` passes and every
//! response the vendor got is in the exported log with its result.
//!
//! A gateway whose log file is on a full disk still answers every request
//! (a log line that cannot be written is dropped, not a panic in the request).
//!
//! Mounting needs root (or CAP_SYS_ADMIN): without it the test says so in one
//! line and passes, except with `CI=true`, where it fails.

use crate::common::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmpfs mounted for the test; unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `8m`) at `path`; `None` (after saying
    /// why) when mounting is not permitted here, a failure under `CI=true`.
    fn mount(path: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).expect("mount point");
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output();
        let why = match out {
            Ok(o) if o.status.success() => {
                return Some(Self {
                    path: path.to_path_buf(),
                })
            }
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(
            !ci,
            "cannot mount a tmpfs for the disk-full test with CI=true: {why}"
        );
        eprintln!("SKIPPED: disk_full needs to mount a tmpfs (root or CAP_SYS_ADMIN): {why}; set CI=true to make this a failure");
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fills the file system holding `path` (a file of zeros until ENOSPC); returns its size.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
    let _ = file.sync_all();
    written
}

/// An HTTP exchange through curl: (status, content type, body).
fn curl(args: &[&str]) -> (u16, String, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "40",
            "-o",
            "-",
            "-w",
            "\n%{http_code}\n%{content_type}",
        ])
        .args(args)
        .output()
        .expect("curl");
    let text = out.stdout;
    let mut parts = text.rsplitn(3, |b| *b == b'\n');
    let content_type = String::from_utf8_lossy(parts.next().unwrap_or_default()).to_string();
    let status = String::from_utf8_lossy(parts.next().unwrap_or_default())
        .parse()
        .unwrap_or(0);
    let body = parts.next().unwrap_or_default().to_vec();
    (status, content_type, body)
}

fn poll(base: &str, token: &str) -> (u16, String, Vec<u8>) {
    curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("{base}/v1/transactions?limit=10"),
    ])
}

fn post_fee(base: &str, token: &str, key: &str, matter: &str) -> (u16, String, Vec<u8>) {
    let fee = serde_json::json!({"matter_id": matter, "amount_cents": 12_300, "currency": "ZAR", "description": "Drafting", "fee_date": "2026-11-21"});
    curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        "-H",
        &format!("Idempotency-Key: {key}"),
        "-H",
        "Content-Type: application/json",
        "-d",
        &fee.to_string(),
        &format!("{base}/v1/fees"),
    ])
}

fn detail(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["detail"]
                .as_str()
                .or(v["error_description"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).to_string())
}

#[test]
fn a_full_disk_answers_503_writes_nothing_half_and_audit_verify_passes_after() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(&dir.path().join("small-disk"), "8m") else {
        return;
    };
    let d = mount.path.join("data");
    let issued = accounting_vendor(&d, "alpha-law");
    let key = master_key();
    // The log goes elsewhere (see the next test for a log on a full disk).
    let server = Server::start_logging_to(
        &d,
        dir.path(),
        &[
            ("SCOPEGATE_MASTER_KEY", &key),
            ("SCOPEGATE_API_BURST", "100000"),
            ("SCOPEGATE_API_RATE_PER_SECOND", "100000"),
        ],
        None,
    );
    let token = vendor_token(&server.base, &issued);
    let mut delivered = Vec::new();
    let (status, _, body) = poll(&server.base, &token);
    assert_eq!(status, 200);
    delivered.push(body.clone());
    let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let matter = page["data"][0]["matter_id"]
        .as_str()
        .expect("a transaction names its matter")
        .to_string();

    // Closing a connection can free space (SQLite drops its WAL): fill again before each step.
    let mut fillers = 0;
    let mut fill_up = || {
        fillers += 1;
        fill(&mount.path.join(format!("filler-{fillers}")))
    };
    let filled = fill_up();
    // SQLite may still have room in pages it already holds: poll until a write needs more.
    let mut statuses = Vec::new();
    let mut first_refusal = None;
    for _ in 0..500 {
        let (status, content_type, body) = poll(&server.base, &token);
        statuses.push(status);
        match status {
            200 => delivered.push(body),
            _ => {
                assert_eq!(status, 503, "a poll on a full disk: {}", detail(&body));
                assert_eq!(content_type, "application/problem+json");
                first_refusal.get_or_insert_with(|| detail(&body));
            }
        }
        if statuses.iter().filter(|s| **s == 503).count() >= 5 {
            break;
        }
    }
    let refused = statuses.iter().filter(|s| **s == 503).count();
    let first_refusal = first_refusal.expect("no poll was refused on a full disk");
    // Small writes may still fit in pages SQLite already holds (its WAL is
    // reused after a checkpoint), so a fee or a token can go through; each
    // answer is the real thing or 503, never 401 or 500, and they run out.
    let mut fees = Vec::new();
    let mut fee_refusal = None;
    for n in 0..50 {
        fill_up();
        let (status, content_type, body) = post_fee(
            &server.base,
            &token,
            &format!("fee-on-a-full-disk-{n}"),
            &matter,
        );
        fees.push((format!("fee-on-a-full-disk-{n}"), status));
        if status == 503 {
            assert_eq!(content_type, "application/problem+json");
            fee_refusal = Some(detail(&body));
            break;
        }
        assert_eq!(status, 201, "a fee post on a full disk: {}", detail(&body));
    }
    let mut tokens = Vec::new();
    let mut token_refusal = None;
    for _ in 0..50 {
        fill_up();
        let (status, _, body) = curl(&[
            "-u",
            &format!(
                "{}:{}",
                field(&issued, "client_id"),
                field(&issued, "client_secret")
            ),
            "-d",
            "grant_type=client_credentials",
            &format!("{}/oauth/token", server.base),
        ]);
        tokens.push(status);
        if status == 503 {
            token_refusal = Some(detail(&body));
            break;
        }
        assert_eq!(
            status,
            200,
            "a token request on a full disk: {}",
            detail(&body)
        );
    }
    println!(
        "disk full ({filled} bytes of filler): {} polls, {} answered 200 before the first refusal, then 503 \"{first_refusal}\"; fee posts {:?} then \"{}\"; token requests {tokens:?} then \"{}\"",
        statuses.len(),
        statuses.iter().take_while(|s| **s == 200).count(),
        fees.iter().map(|f| f.1).collect::<Vec<_>>(),
        fee_refusal.clone().unwrap_or_default(),
        token_refusal.clone().unwrap_or_default(),
    );
    assert!(refused >= 5, "{statuses:?}");
    assert!(first_refusal.contains("try again"), "{first_refusal}");
    assert!(
        fee_refusal.is_some_and(|d| d.contains("try again")),
        "{fees:?}"
    );
    assert!(
        token_refusal.is_some_and(|d| d.contains("try again")),
        "{tokens:?}"
    );
    assert!(
        server.log_text().contains("disk is full"),
        "the operator's log does not say the disk is full"
    );

    // Free the space: the same process serves again.
    for n in 1..=fillers {
        std::fs::remove_file(mount.path.join(format!("filler-{n}"))).expect("free space");
    }
    let freed = Instant::now();
    loop {
        let (status, _, body) = poll(&server.base, &token);
        if status == 200 {
            delivered.push(body);
            break;
        }
        assert!(
            freed.elapsed() < Duration::from_secs(15),
            "no recovery after space was freed: {status} {}",
            detail(&body)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("space freed: first 200 poll after {:?}", freed.elapsed());
    // Not one lucky connection: every connection is usable again.
    let mut after = Vec::new();
    for _ in 0..30 {
        let (status, _, body) = poll(&server.base, &token);
        if status == 200 {
            delivered.push(body);
        }
        after.push(status);
    }
    assert!(
        after.iter().all(|s| *s == 200),
        "after space was freed: {after:?}"
    );
    // The refused fee, retried with its key: posted now (or replayed, if its write had landed).
    let (fee_key, _) = fees.last().expect("a fee post");
    let (status, _, body) = post_fee(&server.base, &token, fee_key, &matter);
    assert!(
        status == 201 || status == 200,
        "the fee retried after space was freed: {status} {}",
        detail(&body)
    );
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");

    let key_file = dir.path().join("master.key");
    std::fs::write(&key_file, &key).unwrap();
    let key_file = key_file.to_str().unwrap();
    let verify = ok(&d, &["--master-key-file", key_file, "audit", "verify"]);
    println!("scopegate audit verify: {}", verify.trim());
    assert!(verify.starts_with("ok:"), "{verify}");
    let export = ok(&d, &["audit", "export", "--firm", "alpha-law"]);
    let records: Vec<serde_json::Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).expect("a whole record"))
        .collect();
    let sends: Vec<&serde_json::Value> = records.iter().filter(|r| r["kind"] == "send").collect();
    let results = records.iter().filter(|r| r["kind"] == "result").count();
    // A send whose result could not be committed was never answered 200 (it was one of the 503s).
    assert!(
        sends.len() - results <= refused + fees.len(),
        "{} sends, {results} results, {refused} refusals",
        sends.len()
    );
    for body in &delivered {
        let hash = hex_sha256(body);
        let send = sends
            .iter()
            .find(|r| r["payload_sha256"] == hash.as_str())
            .expect("a response the vendor got has its send record");
        assert!(
            records.iter().any(|r| r["kind"] == "result"
                && r["send_seq"] == send["seq"]
                && r["status"] == 200),
            "a response the vendor got has no result record"
        );
    }
    drop(mount);
}

#[test]
fn a_full_log_disk_drops_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(&dir.path().join("log-disk"), "1m") else {
        return;
    };
    let d = dir.path().join("data");
    let issued = accounting_vendor(&d, "alpha-law");
    // A second firm whose database file is gone: its polls log an error each.
    let broken = accounting_vendor(&d, "beta-law");
    std::fs::remove_file(d.join("firms").join("beta-law.db")).expect("remove beta's file");
    let key = master_key();
    let server = Server::start_logging_to(&d, &mount.path, &[("SCOPEGATE_MASTER_KEY", &key)], None);
    let token = vendor_token(&server.base, &issued);
    let broken_token = vendor_token(&server.base, &broken);
    fill(&mount.path.join("filler"));
    let mut statuses = Vec::new();
    // Enough error lines to fill what is left of the log file's last page.
    for _ in 0..30 {
        statuses.push(poll(&server.base, &token).0);
        statuses.push(poll(&server.base, &broken_token).0);
    }
    println!("log disk full: polls of a working and a broken firm, alternating: {statuses:?}");
    let expected: Vec<u16> = [200, 503].repeat(30);
    assert_eq!(statuses, expected, "a request that logs was dropped");
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    drop(mount);
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

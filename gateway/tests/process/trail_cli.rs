//! The access trail on the command line: `keys rotate`, `firm terminate` and
//! `firm purge --now` are entered (the operator chain for the key and the
//! purge, the firm's chain for what it saw), `audit export --trail` writes
//! them as JSON lines to a file, and `audit verify` checks the trail chains
//! and names an edited entry.

use crate::common::*;

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn operator_acts_are_exported_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key_file = d.join("master.key");
    std::fs::write(&key_file, master_key()).unwrap();
    let key = ["--master-key-file", key_file.to_str().unwrap()];
    seeded_firm(d, "alpha-law");
    let with_key = |args: &[&str]| ok(d, &[&key[..], args].concat());
    with_key(&[
        "grant",
        "enable",
        "--firm",
        "alpha-law",
        "--connector",
        "accounting",
        "--actor",
        "dpo@alpha",
    ]);
    with_key(&["keys", "rotate"]);
    let firm_file = d.join("firm-trail.jsonl");
    with_key(&[
        "audit",
        "export",
        "--trail",
        "--firm",
        "alpha-law",
        "--out",
        firm_file.to_str().unwrap(),
    ]);
    let firm = lines(&firm_file);
    assert_eq!(firm.len(), 1, "{firm:?}");
    assert_eq!(firm[0]["kind"], "grant_switched");
    assert_eq!(firm[0]["actor"], "operator:dpo@alpha");
    assert_eq!(firm[0]["from"], "cli");
    with_key(&[
        "firm",
        "terminate",
        "--firm",
        "alpha-law",
        "--actor",
        "dpo@alpha",
    ]);
    with_key(&[
        "firm",
        "purge",
        "--firm",
        "alpha-law",
        "--now",
        "--actor",
        "dpo@alpha",
    ]);
    let operator_file = d.join("operator-trail.jsonl");
    with_key(&[
        "audit",
        "export",
        "--trail",
        "--out",
        operator_file.to_str().unwrap(),
    ]);
    let kinds: Vec<String> = lines(&operator_file)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, vec!["key_rotated", "firm_purged"]);
    let verified = with_key(&["audit", "verify"]);
    assert!(
        verified.contains("2 access-trail entries in 1 chains"),
        "{verified}"
    );

    // An edited entry is named.
    let db = d.join("registry.db");
    let edited = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("UPDATE access_trail SET origin = '10.0.0.1' WHERE seq = 1")
        .status()
        .expect("sqlite3 (Debian's sqlite3 package)");
    assert!(edited.success());
    let out = cli(d, &[&key[..], &["audit", "verify"]].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("access trail tampered: access trail @operator entry 1"),
        "{err}"
    );
}

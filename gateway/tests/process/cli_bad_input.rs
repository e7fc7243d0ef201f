//! Every bad operator input gets one clear line on stderr, a non-zero exit,
//! and leaves the registry exactly as it was.

use crate::common::*;
use std::path::Path;

fn snapshot(dir: &Path) -> String {
    let mut s = ok(dir, &["firm", "list"]);
    s += &ok(dir, &["grant", "list"]);
    s += &ok(dir, &["grant", "ledger", "--firm", "alpha-law"]);
    s += &ok(dir, &["credential", "list", "--firm", "alpha-law"]);
    s
}

fn refused(dir: &Path, args: &[&str], expect: &str) {
    let before = snapshot(dir);
    let out = cli(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    assert!(
        stderr.contains(expect),
        "{args:?}: {stderr:?} does not mention {expect:?}"
    );
    assert_eq!(snapshot(dir), before, "{args:?} changed the registry");
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    seeded_firm(d, "alpha-law");
    ok(
        d,
        &[
            "grant",
            "enable",
            "--firm",
            "alpha-law",
            "--connector",
            "accounting",
        ],
    );
    ok(
        d,
        &[
            "credential",
            "issue",
            "--firm",
            "alpha-law",
            "--connector",
            "accounting",
        ],
    );
    refused(
        d,
        &[
            "grant",
            "enable",
            "--firm",
            "ghost-law",
            "--connector",
            "accounting",
        ],
        "unknown firm",
    );
    refused(
        d,
        &[
            "grant",
            "enable",
            "--firm",
            "alpha-law",
            "--connector",
            "crm",
        ],
        "unknown connector",
    );
    refused(
        d,
        &[
            "grant",
            "enable",
            "--firm",
            "alpha-law",
            "--connector",
            "accounting",
        ],
        "already enabled",
    );
    seeded_firm(d, "beta-law");
    refused(
        d,
        &[
            "grant",
            "disable",
            "--firm",
            "beta-law",
            "--connector",
            "accounting",
        ],
        "not enabled",
    );
    refused(
        d,
        &[
            "credential",
            "issue",
            "--firm",
            "beta-law",
            "--connector",
            "accounting",
        ],
        "never enabled",
    );
    refused(
        d,
        &[
            "credential",
            "revoke",
            "--firm",
            "alpha-law",
            "--client-id",
            "sgc_truncated",
        ],
        "no active credential",
    );
    refused(
        d,
        &["firm", "add", "--name", "Alpha again", "--id", "alpha-law"],
        "already registered",
    );
    refused(
        d,
        &["firm", "add", "--name", "x", "--id", "Not Valid"],
        "firm id",
    );
    refused(
        d,
        &[
            "firm",
            "add",
            "--name",
            "Remote",
            "--data-url",
            "postgres://nobody@127.0.0.1:1/none",
        ],
        "cannot reach the database",
    );
    refused(
        d,
        &["firm", "add", "--name", "Odd", "--data-url", "mysql://x"],
        "must start with",
    );
    refused(
        d,
        &[
            "firm",
            "add",
            "--name",
            "Remote",
            "--data-url",
            "postgres://u:hunter2@127.0.0.1/firm",
        ],
        "stores no database passwords",
    );
    refused(
        d,
        &[
            "audit",
            "export",
            "--firm",
            "alpha-law",
            "--since",
            "yesterday",
        ],
        "RFC 3339",
    );
    let config = d.join("bad.toml");
    std::fs::write(&config, "listen = [1, 2\n").unwrap();
    refused(
        d,
        &["--config", config.to_str().unwrap(), "firm", "list"],
        "bad.toml",
    );
    refused(
        d,
        &["--connector-setting", "accounting.region", "firm", "list"],
        "'accounting.region'",
    );
    // A registry URL that does not connect.
    let out = std::process::Command::new(BIN)
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/x",
            "firm",
            "list",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot reach the database at postgres://nobody@127.0.0.1:1/x"));
    // serve without a master key refuses to start.
    let out = cli(d, &["serve"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no master key"));
}

#[test]
fn audit_verify_exits_non_zero_naming_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = accounting_vendor(d, "alpha-law");
    let key = master_key();
    let server = Server::start(d, &[("SCOPEGATE_MASTER_KEY", &key)], None);
    let token = vendor_token(&server.base, &creds);
    for _ in 0..3 {
        std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-H",
                &format!("Authorization: Bearer {token}"),
                &format!("{}/v1/matters", server.base),
            ])
            .status()
            .unwrap();
    }
    assert!(server.terminate().success());
    let key_file = d.join("master.key");
    std::fs::write(&key_file, &key).unwrap();
    let key_file = key_file.to_str().unwrap();
    let out = cli(d, &["audit", "verify"]);
    assert!(
        !out.status.success(),
        "the keyed chain is not verified without the key"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the master key"));
    assert!(ok(d, &["--master-key-file", key_file, "audit", "verify"]).starts_with("ok: 6 records"));
    let export = ok(d, &["audit", "export", "--firm", "alpha-law"]);
    assert_eq!(export.lines().count(), 6);
    // Tamper with record 3 directly in the file.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", d.join("registry.db").display());
        let registry = scopegate::registry::Registry::connect(&url).await.unwrap();
        sqlx::query("UPDATE outbound_log SET bytes = bytes + 1 WHERE seq = 3")
            .execute(registry.pool())
            .await
            .unwrap();
        registry.close().await;
    });
    let out = cli(d, &["--master-key-file", key_file, "audit", "verify"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("firm alpha-law record 3"), "{stderr}");
}

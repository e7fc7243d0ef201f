//! `serve` writes signed checkpoints of every chain head (at start, at its
//! interval and as it stops), `audit checkpoint` adds one on demand (or prints
//! it with `--out -`), and `audit verify --checkpoints` catches the last
//! records cut off with the head set back, which the chain alone cannot.

use crate::common::*;

#[test]
fn checkpoints_from_serve_and_the_cli_catch_a_cut_chain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = accounting_vendor(d, "alpha-law");
    let key = master_key();
    let key_file = d.join("master.key");
    std::fs::write(&key_file, &key).unwrap();
    let key_file = key_file.to_str().unwrap();
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
            ])
            .arg(format!("{}/v1/matters", server.base))
            .status()
            .unwrap();
    }
    assert!(server.terminate().success());
    let file = d.join("audit-checkpoints.jsonl");
    let written = std::fs::read_to_string(&file).expect("serve wrote checkpoints");
    assert_eq!(
        written.lines().count(),
        2,
        "one at start, one as it stopped: {written}"
    );
    let appended = ok(d, &["--master-key-file", key_file, "audit", "checkpoint"]);
    assert!(appended.contains("1 firm chains (6 records)"), "{appended}");
    let printed = ok(
        d,
        &[
            "--master-key-file",
            key_file,
            "audit",
            "checkpoint",
            "--out",
            "-",
        ],
    );
    assert!(
        printed.starts_with("{\"v\":1,") && printed.contains("\"sig\":"),
        "{printed}"
    );
    let checkpoints = file.to_str().unwrap();
    let verify = ok(
        d,
        &[
            "--master-key-file",
            key_file,
            "audit",
            "verify",
            "--checkpoints",
            checkpoints,
        ],
    );
    assert!(
        verify.starts_with("ok: 6 records") && verify.contains("3 signed checkpoints"),
        "{verify}"
    );
    // Cut records 5 and 6 and set the head back to record 4.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", d.join("registry.db").display());
        let registry = scopegate::registry::Registry::connect(&url).await.unwrap();
        sqlx::query("DELETE FROM outbound_log WHERE seq > 4").execute(registry.pool()).await.unwrap();
        sqlx::query("UPDATE outbound_chain_heads SET seq = 4, hash = (SELECT hash FROM outbound_log WHERE seq = 4)")
            .execute(registry.pool())
            .await
            .unwrap();
        registry.close().await;
    });
    assert!(ok(d, &["--master-key-file", key_file, "audit", "verify"]).starts_with("ok: 4 records"));
    let out = cli(
        d,
        &[
            "--master-key-file",
            key_file,
            "audit",
            "verify",
            "--checkpoints",
            checkpoints,
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("firm alpha-law record 5: is missing"),
        "{stderr}"
    );
    // A checkpoint file that is not ours is one clear line too.
    let forged = d.join("forged.jsonl");
    std::fs::write(&forged, printed.replace("\"seq\":6", "\"seq\":2")).unwrap();
    let out = cli(
        d,
        &[
            "--master-key-file",
            key_file,
            "audit",
            "verify",
            "--checkpoints",
            forged.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 1: the signature does not match"),
        "{stderr}"
    );
}

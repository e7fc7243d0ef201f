//! Tripwires from the command line, as the operator plants and follows them:
//! `tripwire add` prints a decoy credential in the real format, whose use at
//! the running gateway is answered like a wrong secret and lands in the
//! firm's security events (and the error log); `trace` names the firm, grant
//! and record behind an id a vendor was shown, and ends non-zero with one
//! line for an id that is nobody's.

use crate::common::*;

fn token_answer(base: &str, id: &str, secret: &str) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-D", "-", "-u", &format!("{id}:{secret}")])
        .args([
            "-d",
            "grant_type=client_credentials",
            &format!("{base}/oauth/token"),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    // Every header but the date, in order.
    let head: Vec<&str> = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .collect();
    (head.join("\n"), body.to_string())
}

#[test]
fn a_planted_decoy_alerts_and_trace_names_the_grant() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let issued = accounting_vendor(d, "alpha-law");
    let key = master_key();
    let key_file = d.join("master.key");
    std::fs::write(&key_file, &key).unwrap();
    let key_file = key_file.to_str().unwrap();
    let server = Server::start(d, &[("SCOPEGATE_MASTER_KEY", &key)], None);

    let planted = ok(
        d,
        &[
            "tripwire",
            "add",
            "--firm",
            "alpha-law",
            "--label",
            "password manager export",
        ],
    );
    let (decoy_id, decoy_secret) = (
        field(&planted, "client_id"),
        field(&planted, "client_secret"),
    );
    let real_id = field(&issued, "client_id");
    // The very format of a real credential (base58, so its length varies like theirs).
    use scopegate::secrets::{check_format, SecretKind};
    assert!(check_format(SecretKind::ClientId, &decoy_id).is_ok());
    assert!(check_format(SecretKind::ClientSecret, &decoy_secret).is_ok());
    assert_eq!(&decoy_id[..4], &real_id[..4]);
    let wrong = token_answer(&server.base, &real_id, &decoy_secret);
    let tripped = token_answer(&server.base, &decoy_id, &decoy_secret);
    assert_eq!(
        tripped, wrong,
        "a decoy is answered exactly like a wrong secret"
    );
    assert!(wrong.0.starts_with("HTTP/1.1 401"), "{}", wrong.0);
    let bad_firm = cli(
        d,
        &["tripwire", "add", "--firm", "no-such-firm", "--label", "x"],
    );
    assert!(!bad_firm.status.success());
    assert_eq!(String::from_utf8_lossy(&bad_firm.stderr).lines().count(), 1);

    let token = vendor_token(&server.base, &issued);
    let (status, body) = curl_get(
        &format!("{}/v1/matters?limit=1", server.base),
        &[&format!("Authorization: Bearer {token}")],
    );
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let shown = page["data"][0]["id"].as_str().unwrap().to_string();
    let traced = ok(d, &["--master-key-file", key_file, "trace", &shown]);
    assert!(traced.starts_with("firm=alpha-law grant="), "{traced}");
    assert!(
        traced.contains("connector=accounting table=matters record="),
        "{traced}"
    );
    assert!(
        !traced.contains(&shown),
        "the record is the firm's own id: {traced}"
    );
    for nobody in ["0b6a4f9e-8d2c-4f1a-9e3b-2c7d5a1f6e80", "not-an-id"] {
        let out = cli(d, &["--master-key-file", key_file, "trace", nobody]);
        assert!(!out.status.success(), "{nobody}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }

    // The decoy's use is an error-level line naming the tripwire, never the secret.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let log = loop {
        let log = server.log_text();
        if log.contains("security event") || std::time::Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let line = log
        .lines()
        .find(|l| l.contains("security event"))
        .unwrap_or_else(|| panic!("no security event logged: {log}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(line.contains("decoy_credential"), "{line}");
    assert!(!log.contains(&decoy_secret));
}

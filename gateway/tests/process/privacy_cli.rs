//! The privacy office on the command line, as an information officer and the
//! operator use it: `disclosures` and `breach-scope` after a vendor's polls,
//! then `firm terminate` (the vendor's token stops working) and
//! `firm purge --now`, after which `audit verify` passes against the
//! checkpoints `serve` wrote and reports the purge.

use crate::common::*;

#[test]
fn reports_terminate_and_purge_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let creds = accounting_vendor(d, "alpha-law");
    let key = master_key();
    let key_file = d.join("master.key");
    std::fs::write(&key_file, &key).unwrap();
    let key_file = key_file.to_str().unwrap();
    let server = Server::start(d, &[("SCOPEGATE_MASTER_KEY", &key)], None);
    let token = vendor_token(&server.base, &creds);
    let bearer = format!("Authorization: Bearer {token}");
    let (status, body) = curl_get(
        &format!("{}/v1/transactions?limit=10", server.base),
        &[&bearer],
    );
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    // The vendor was shown its grant's id for the matter: `trace` names the firm's own.
    let shown = page["data"][0]["matter_id"].as_str().unwrap().to_string();
    let traced = ok(d, &["--master-key-file", key_file, "trace", &shown]);
    let matter = traced
        .split_whitespace()
        .find_map(|w| w.strip_prefix("record="))
        .unwrap_or_else(|| panic!("{traced}"))
        .to_string();

    let report = ok(
        d,
        &["disclosures", "--firm", "alpha-law", "--matter", &matter],
    );
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["recipients"][0]["connector"], "accounting",
        "{report}"
    );
    assert_eq!(report["recipients"][0]["calls"], 1);
    let grant = report["recipients"][0]["grant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let csv = ok(
        d,
        &[
            "breach-scope",
            "--firm",
            "alpha-law",
            "--grant",
            &grant,
            "--since",
            "0",
            "--format",
            "csv",
        ],
    );
    assert!(csv.starts_with("client_id,full_name,email,"), "{csv}");
    assert!(csv.lines().count() >= 2, "{csv}");
    let neither = cli(d, &["disclosures", "--firm", "alpha-law"]);
    assert!(!neither.status.success());

    let terminated = ok(
        d,
        &[
            "--master-key-file",
            key_file,
            "firm",
            "terminate",
            "--firm",
            "alpha-law",
            "--actor",
            "dpo@alpha",
        ],
    );
    assert!(
        terminated.contains("terminated firm alpha-law"),
        "{terminated}"
    );
    // Terminating again runs what is left of the clean-up once more; nothing else changes.
    let again = ok(
        d,
        &[
            "--master-key-file",
            key_file,
            "firm",
            "terminate",
            "--firm",
            "alpha-law",
            "--actor",
            "dpo@alpha",
        ],
    );
    assert!(
        again.contains("was terminated at") && again.contains("0 grants switched off"),
        "{again}"
    );
    let (status, _) = curl_get(
        &format!("{}/v1/transactions?limit=1", server.base),
        &[&bearer],
    );
    assert_eq!(status, 401, "the terminated firm's token is refused");
    let ledger = ok(d, &["grant", "ledger", "--firm", "alpha-law"]);
    assert!(
        ledger
            .lines()
            .any(|l| l.contains("disable") && l.contains("dpo@alpha")),
        "{ledger}"
    );
    let not_now = cli(
        d,
        &[
            "--master-key-file",
            key_file,
            "firm",
            "purge",
            "--firm",
            "alpha-law",
            "--actor",
            "dpo",
        ],
    );
    assert!(!not_now.status.success());
    assert!(String::from_utf8_lossy(&not_now.stderr).contains("--now"));
    assert!(server.terminate().success());

    let purged = ok(
        d,
        &[
            "--master-key-file",
            key_file,
            "firm",
            "purge",
            "--firm",
            "alpha-law",
            "--now",
            "--actor",
            "dpo@alpha",
        ],
    );
    assert!(purged.contains("purged firm alpha-law"), "{purged}");
    let checkpoints = d.join("audit-checkpoints.jsonl");
    let verify = ok(
        d,
        &[
            "--master-key-file",
            key_file,
            "audit",
            "verify",
            "--checkpoints",
            checkpoints.to_str().unwrap(),
        ],
    );
    assert!(
        verify.starts_with("ok: 0 records in 0 firm chains"),
        "{verify}"
    );
    assert!(verify.contains("1 firm purged"), "{verify}");
    let gone = cli(
        d,
        &["disclosures", "--firm", "alpha-law", "--matter", &matter],
    );
    assert!(!gone.status.success());
}

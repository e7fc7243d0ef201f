//! After credentials and tokens are issued and used, neither the registry's
//! SQLite files (database, WAL) nor the gateway's logs (at debug level, in
//! both formats) contain any of the secrets.

use crate::common::*;

fn token_via_http(base: &str, client_id: &str, secret: &str, basic: bool) -> String {
    let mut args = vec![
        "-s".to_string(),
        "-d".into(),
        "grant_type=client_credentials".into(),
    ];
    if basic {
        args.extend(["-u".into(), format!("{client_id}:{secret}")]);
    } else {
        args.extend([
            "-d".into(),
            format!("client_id={client_id}"),
            "-d".into(),
            format!("client_secret={secret}"),
        ]);
    }
    args.push(format!("{base}/oauth/token"));
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .expect("curl");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("token json");
    body["access_token"].as_str().expect("token").to_string()
}

fn get(base: &str, path: &str, token: &str) -> u16 {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("{base}{path}"),
        ])
        .output()
        .expect("curl");
    String::from_utf8(out.stdout).unwrap().parse().unwrap()
}

#[test]
fn no_secret_reaches_the_registry_file_or_the_logs() {
    for format in ["human", "json"] {
        let dir = tempfile::tempdir().unwrap();
        seeded_firm(dir.path(), "alpha-law");
        ok(
            dir.path(),
            &[
                "grant",
                "enable",
                "--firm",
                "alpha-law",
                "--connector",
                "accounting",
                "--actor",
                "amy",
            ],
        );
        let mut secrets = Vec::new();
        let mut credentials = Vec::new();
        for _ in 0..3 {
            let out = ok(
                dir.path(),
                &[
                    "credential",
                    "issue",
                    "--firm",
                    "alpha-law",
                    "--connector",
                    "accounting",
                ],
            );
            let (id, secret) = (field(&out, "client_id"), field(&out, "client_secret"));
            secrets.push(secret.clone());
            credentials.push((id, secret));
        }
        let key = master_key();
        secrets.push(key.clone());
        let server = Server::start(
            dir.path(),
            &[
                ("SCOPEGATE_MASTER_KEY", &key),
                ("RUST_LOG", "debug"),
                ("SCOPEGATE_LOG_FORMAT", format),
            ],
            None,
        );
        for (n, (id, secret)) in credentials.iter().enumerate() {
            let token = token_via_http(&server.base, id, secret, n % 2 == 0);
            assert_eq!(get(&server.base, "/v1/transactions?limit=5", &token), 200);
            assert_eq!(get(&server.base, "/v1/matters", &token), 200);
            secrets.push(token);
        }
        // A wrong secret and a malformed token are logged as failures, never echoed.
        let wrong = format!("{}x", credentials[0].1);
        let _ = std::process::Command::new("curl")
            .args([
                "-s",
                "-u",
                &format!("{}:{wrong}", credentials[0].0),
                "-d",
                "grant_type=client_credentials",
                &format!("{}/oauth/token", server.base),
            ])
            .output();
        secrets.push(wrong);
        let status = server.terminate();
        assert!(status.success(), "serve exited with {status}");
        let log = std::fs::read_to_string(
            dir.path().join(
                std::fs::read_dir(dir.path())
                    .unwrap()
                    .filter_map(|e| e.ok())
                    .find(|e| e.file_name().to_string_lossy().starts_with("serve-"))
                    .unwrap()
                    .file_name(),
            ),
        )
        .unwrap();
        assert!(
            log.contains("failed client authentication"),
            "debug logs were captured"
        );
        let mut raw = Vec::new();
        for name in ["registry.db", "registry.db-wal", "registry.db-shm"] {
            if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
                raw.extend(bytes);
            }
        }
        let raw = String::from_utf8_lossy(&raw).to_string();
        // The hashes are there (so this really is the file that holds the credentials)...
        assert!(raw.contains(&scopegate::secrets::sha256_hex(&credentials[0].1)));
        // ...the secrets are not.
        for secret in &secrets {
            assert!(
                !raw.contains(secret.as_str()),
                "a secret is stored in plaintext ({format})"
            );
            assert!(
                !log.contains(secret.as_str()),
                "a secret reached the logs ({format})"
            );
        }
    }
}

//! `scopegate backup` under load and `scopegate restore` into a fresh place, on
//! a SQLite deployment and on a PostgreSQL one: the backup files hold no
//! plaintext, the restored log verifies, and a vendor's existing credential
//! gets a token that works against a gateway started on the restored data.

use crate::common::*;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn postgres_admin_url() -> String {
    std::env::var("SCOPEGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh PostgreSQL database URL, or None (skip, said so) when PostgreSQL or
/// pg_dump is missing outside CI.
fn fresh_database(label: &str) -> Option<String> {
    use sqlx::Connection;
    let ci = std::env::var("CI").as_deref() == Ok("true");
    for tool in ["pg_dump", "pg_restore"] {
        if !scopegate::backup::pg_tool_available(tool) {
            assert!(
                !ci,
                "{tool} is missing with CI=true (scripts/test.sh installs postgresql-client)"
            );
            eprintln!("SKIPPED: {tool} is missing (apt-get install postgresql-client)");
            return None;
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let admin = postgres_admin_url();
        let mut conn = match sqlx::AnyConnection::connect(&admin).await {
            Ok(c) => c,
            Err(e) if ci => panic!("PostgreSQL unreachable with CI=true: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: PostgreSQL unreachable ({e})");
                return None;
            }
        };
        let name = format!("sgtest_{label}_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
    })
}

/// Every sensitive value in a firm database (never to appear in a backup file).
fn sensitive_values(firm_url: &str) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(firm_url).await.unwrap();
        let mut values = Vec::new();
        for sql in [
            "SELECT full_name AS v FROM clients",
            "SELECT id_number AS v FROM clients",
            "SELECT email AS v FROM clients",
            "SELECT private_notes AS v FROM diary_entries",
            "SELECT internal_note AS v FROM accounting_transactions",
        ] {
            for row in sqlx::query(sql).fetch_all(&pool).await.unwrap() {
                values.push(sqlx::Row::get::<String, _>(&row, "v"));
            }
        }
        pool.close().await;
        values.retain(|v| v.len() >= 6);
        values.sort();
        values.dedup();
        values
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    cli(dir, args)
}

/// The whole round trip; `registry` is None for SQLite, or (source registry, restore target).
fn round_trip(registry: Option<(String, String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("live");
    let d = d.as_path();
    std::fs::create_dir_all(d).unwrap();
    let mut db_args: Vec<String> = Vec::new();
    let mut firm_args: Vec<String> = vec![];
    if let Some((source, _, firm)) = &registry {
        db_args = vec!["--database-url".into(), source.clone()];
        firm_args = vec!["--data-url".into(), firm.clone()];
    }
    let with = |extra: &[&str]| -> Vec<String> {
        db_args
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let okv = |dir: &Path, args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(dir, &args)
    };
    let mut add = with(&["firm", "add", "--name", "Alpha Law", "--id", "alpha-law"]);
    add.extend(firm_args.clone());
    okv(d, add);
    okv(
        d,
        with(&[
            "firm",
            "seed-demo",
            "alpha-law",
            "--transactions",
            "80",
            "--diary-entries",
            "30",
        ]),
    );
    okv(
        d,
        with(&[
            "grant",
            "enable",
            "--firm",
            "alpha-law",
            "--connector",
            "accounting",
        ]),
    );
    let creds = okv(
        d,
        with(&[
            "credential",
            "issue",
            "--firm",
            "alpha-law",
            "--connector",
            "accounting",
        ]),
    );
    let firm_url = match &registry {
        Some((_, _, firm)) => firm.clone(),
        None => format!("sqlite://{}", d.join("firms/alpha-law.db").display()),
    };
    let secrets = sensitive_values(&firm_url);
    assert!(secrets.len() > 10);

    let master = master_key();
    let backup_key = master_key();
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let master_file = keys.join("master.key");
    let backup_file = keys.join("backup.key");
    std::fs::write(&master_file, &master).unwrap();
    std::fs::write(&backup_file, &backup_key).unwrap();
    let (master_file, backup_file) = (master_file.to_str().unwrap(), backup_file.to_str().unwrap());
    let out_dir = dir.path().join("backups");
    let out = out_dir.to_str().unwrap();

    let server = Server::start(
        d,
        &[("SCOPEGATE_MASTER_KEY", &master)],
        registry.as_ref().map(|r| r.0.as_str()),
    );
    let token = vendor_token(&server.base, &creds);
    // Vendor polls in flight for the whole backup.
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..3)
        .map(|_| {
            let (stop, token, base) = (stop.clone(), token.clone(), server.base.clone());
            std::thread::spawn(move || {
                let mut ok = 0;
                while !stop.load(Ordering::Relaxed) {
                    let status = std::process::Command::new("curl")
                        .args([
                            "-s",
                            "-o",
                            "/dev/null",
                            "-w",
                            "%{http_code}",
                            "-H",
                            &format!("Authorization: Bearer {token}"),
                        ])
                        .arg(format!("{base}/v1/transactions?limit=20"))
                        .output()
                        .unwrap();
                    if status.stdout == b"200" {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Three backups, two generations kept.
    let mut printed = Vec::new();
    for _ in 0..3 {
        printed.push(okv(
            d,
            with(&[
                "--backup-key-file",
                backup_file,
                "--backup-generations",
                "2",
                "backup",
                "--out",
                out,
            ]),
        ));
    }
    stop.store(true, Ordering::Relaxed);
    let polls: usize = pollers.into_iter().map(|p| p.join().unwrap()).sum();
    assert!(
        polls > 3,
        "vendor polls were in flight during the backup ({polls})"
    );
    assert!(printed[2].contains("deleted old backup"), "{}", printed[2]);
    assert!(server.terminate().success());

    let backups = scopegate::backup::list_backups(&out_dir).unwrap();
    assert_eq!(backups.len(), 2, "{backups:?}");
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "no temporary files left behind: {leftovers:?}"
    );
    for file in &backups {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !contains(&bytes, b"SQLite format 3"),
            "a SQLite header in {}",
            file.display()
        );
        assert!(
            !contains(&bytes, b"PGDMP"),
            "a pg_dump header in {}",
            file.display()
        );
        for value in &secrets {
            assert!(
                !contains(&bytes, value.as_bytes()),
                "{value:?} in plaintext in {}",
                file.display()
            );
        }
    }
    let latest = backups.last().unwrap().to_str().unwrap().to_string();

    // Restore into a fresh place.
    let r = dir.path().join("restored");
    let r = r.as_path();
    let target_args: Vec<String> = match &registry {
        Some((_, target, _)) => vec!["--database-url".into(), target.clone()],
        None => vec![],
    };
    let restore_args = |extra: &[&str]| -> Vec<String> {
        target_args
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    // The master key is not a backup key; a wrong key is one line.
    let refused = run(
        r,
        &[
            "--backup-key-file",
            master_file,
            "--master-key-file",
            master_file,
            "restore",
            "--from",
            &latest,
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("the backup key is a master key"));
    let wrong = run(
        r,
        &[
            "--backup-key-file",
            master_file,
            "restore",
            "--from",
            &latest,
        ],
    );
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        !wrong.status.success() && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(stderr.contains("encrypted with backup key"), "{stderr}");
    assert!(
        !r.exists() || std::fs::read_dir(r).unwrap().next().is_none(),
        "a refused restore wrote nothing"
    );

    // No backup key at all, or a damaged file: one line each, nothing written.
    let no_key = run(r, &["backup", "--out", out]);
    let stderr = String::from_utf8_lossy(&no_key.stderr);
    assert!(
        !no_key.status.success() && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(stderr.contains("no backup key"), "{stderr}");
    let mut damaged = std::fs::read(&latest).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    let damaged_file = dir.path().join("damaged.sgbk");
    std::fs::write(&damaged_file, damaged).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let out_damaged = {
        let args = restore_args(&[
            "--backup-key-file",
            backup_file,
            "restore",
            "--from",
            damaged_file.to_str().unwrap(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&elsewhere, &args)
    };
    let stderr = String::from_utf8_lossy(&out_damaged.stderr);
    assert!(
        !out_damaged.status.success() && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(stderr.contains("damaged"), "{stderr}");
    assert!(
        !elsewhere.exists() || std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "a failed restore leaves nothing behind"
    );
    assert!(!r.exists() || std::fs::read_dir(r).unwrap().next().is_none());

    let restored = okv(
        r,
        restore_args(&[
            "--backup-key-file",
            backup_file,
            "restore",
            "--from",
            &latest,
        ]),
    );
    assert!(restored.contains("1 firm databases"), "{restored}");
    // Not twice: the place is no longer empty.
    let again = {
        let args = restore_args(&[
            "--backup-key-file",
            backup_file,
            "restore",
            "--from",
            &latest,
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(r, &args)
    };
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && stderr.lines().count() == 1,
        "{stderr}"
    );
    assert!(stderr.contains("not empty"), "{stderr}");

    let verify = okv(
        r,
        restore_args(&["--master-key-file", master_file, "audit", "verify"]),
    );
    assert!(verify.starts_with("ok: "), "{verify}");
    let firms = okv(r, restore_args(&["firm", "list"]));
    if registry.is_none() {
        assert!(
            firms.contains(&r.join("firms/alpha-law.db").display().to_string()),
            "{firms}"
        );
    } else {
        assert!(
            !firms.contains(&firm_url),
            "the restored firm has its own database: {firms}"
        );
    }
    let restored_server = Server::start(
        r,
        &[("SCOPEGATE_MASTER_KEY", &master)],
        registry.as_ref().map(|r| r.1.as_str()),
    );
    let token = vendor_token(&restored_server.base, &creds);
    let status = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("Authorization: Bearer {token}"),
        ])
        .arg(format!("{}/v1/matters?limit=5", restored_server.base))
        .output()
        .unwrap();
    assert_eq!(status.stdout, b"200");
    assert!(restored_server.terminate().success());
    let verify = okv(
        r,
        restore_args(&["--master-key-file", master_file, "audit", "verify"]),
    );
    assert!(
        verify.starts_with("ok: "),
        "the restored chain goes on: {verify}"
    );
}

#[test]
fn sqlite_backup_under_load_restores_into_a_fresh_directory() {
    round_trip(None);
}

#[test]
fn postgres_backup_under_load_restores_into_a_fresh_database() {
    let (Some(source), Some(target), Some(firm)) = (
        fresh_database("bk_src"),
        fresh_database("bk_dst"),
        fresh_database("bk_firm"),
    ) else {
        return;
    };
    round_trip(Some((source, target, firm)));
}

//! `scopegate user add|reset-password|list`, run as the operator would: the
//! real binary against a fresh SQLite registry.

use scopegate::accounts::passwords;
use scopegate::registry::Registry;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn scopegate(data_dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("SCOPEGATE_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run scopegate");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("output")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

async fn stored_hash(dir: &std::path::Path, firm: &str, email: &str) -> String {
    let registry = Registry::connect(&format!("sqlite://{}", dir.join("registry.db").display()))
        .await
        .unwrap();
    let (_, hash) = registry
        .user_for_login(firm, email)
        .await
        .unwrap()
        .expect("user");
    registry.close().await;
    hash.expect("password hash")
}

#[tokio::test]
async fn operator_adds_users_and_resets_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = scopegate(
        d,
        &[
            "firm",
            "add",
            "--name",
            "Harbour Law",
            "--id",
            "harbour-law",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // Password from stdin: nothing printed, the argon2id hash stored.
    let out = scopegate(
        d,
        &[
            "user",
            "add",
            "--firm",
            "harbour-law",
            "--email",
            "Owner@Harbour.example",
            "--role",
            "owner",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("password="));
    let hash = stored_hash(d, "harbour-law", "owner@harbour.example").await;
    assert!(hash.starts_with("$argon2id$"));
    assert!(passwords::verify(&hash, "a long enough password"));

    // Generated password: printed once, and it works.
    let out = scopegate(
        d,
        &[
            "user",
            "add",
            "--firm",
            "harbour-law",
            "--email",
            "sipho@harbour.example",
            "--role",
            "fee_earner",
            "--firm-user-id",
            "u-1",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let generated = printed
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .expect("password line")
        .to_string();
    assert!(passwords::verify(
        &stored_hash(d, "harbour-law", "sipho@harbour.example").await,
        &generated
    ));

    // Reset: the old password stops working.
    let out = scopegate(
        d,
        &[
            "user",
            "reset-password",
            "--firm",
            "harbour-law",
            "--email",
            "sipho@harbour.example",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let new = stdout(&out)
        .lines()
        .find_map(|l| l.strip_prefix("password="))
        .expect("password line")
        .to_string();
    let hash = stored_hash(d, "harbour-law", "sipho@harbour.example").await;
    assert!(passwords::verify(&hash, &new));
    assert!(!passwords::verify(&hash, &generated));

    let out = scopegate(d, &["user", "list", "--firm", "harbour-law"], None);
    let listed = stdout(&out);
    assert!(
        listed.contains("owner@harbour.example\towner")
            && listed.contains("sipho@harbour.example\tfee_earner"),
        "{listed}"
    );

    // Mistakes: one clear line, non-zero exit, nothing written.
    for (args, stdin, expect) in [
        (
            vec![
                "user",
                "add",
                "--firm",
                "harbour-law",
                "--email",
                "sipho@harbour.example",
                "--role",
                "admin",
            ],
            None,
            "already has an account",
        ),
        (
            vec![
                "user",
                "add",
                "--firm",
                "nope",
                "--email",
                "x@y.example",
                "--role",
                "admin",
            ],
            None,
            "unknown firm",
        ),
        (
            vec![
                "user",
                "add",
                "--firm",
                "harbour-law",
                "--email",
                "x@y.example",
                "--role",
                "boss",
            ],
            None,
            "owner, admin, fee_earner, bookkeeper",
        ),
        (
            vec![
                "user",
                "add",
                "--firm",
                "harbour-law",
                "--email",
                "x@y.example",
                "--role",
                "admin",
                "--password-stdin",
            ],
            Some("short\n"),
            "at least 12",
        ),
        (
            vec![
                "user",
                "reset-password",
                "--firm",
                "harbour-law",
                "--email",
                "ghost@harbour.example",
            ],
            None,
            "has no user",
        ),
    ] {
        let out = scopegate(d, &args, stdin);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: ") && first.contains(expect),
            "{args:?}: {err}"
        );
    }
    let out = scopegate(d, &["user", "list", "--firm", "harbour-law"], None);
    assert_eq!(stdout(&out).lines().count(), 2, "nothing half-written");
}

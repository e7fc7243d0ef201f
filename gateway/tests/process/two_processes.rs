//! Two `scopegate serve` processes sharing one PostgreSQL registry: a token
//! issued through one works on the other, and once the grant is switched off
//! the other refuses the token on its very next request.

use crate::common::*;

fn curl(args: &[&str]) -> (u16, String) {
    let mut all = vec!["-s", "-w", "\n%{http_code}"];
    all.extend(args);
    let out = std::process::Command::new("curl")
        .args(&all)
        .output()
        .expect("curl");
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

#[test]
fn a_token_from_one_instance_works_on_the_other_until_the_grant_is_off() {
    let Some(url) = fresh_database("two") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let with_db = |args: &[&str]| {
        let mut all = vec!["--database-url", url.as_str()];
        all.extend(args);
        ok(d, &all)
    };
    with_db(&["firm", "add", "--name", "Alpha Law", "--id", "alpha-law"]);
    with_db(&["firm", "seed-demo", "alpha-law", "--transactions", "30"]);
    with_db(&[
        "grant",
        "enable",
        "--firm",
        "alpha-law",
        "--connector",
        "accounting",
        "--actor",
        "amy",
    ]);
    let creds = with_db(&[
        "credential",
        "issue",
        "--firm",
        "alpha-law",
        "--connector",
        "accounting",
    ]);
    let key = master_key();
    let a = Server::start(d, &[("SCOPEGATE_MASTER_KEY", &key)], Some(&url));
    let b = Server::start(d, &[("SCOPEGATE_MASTER_KEY", &key)], Some(&url));
    let (status, body) = curl(&[
        "-u",
        &format!(
            "{}:{}",
            field(&creds, "client_id"),
            field(&creds, "client_secret")
        ),
        "-d",
        "grant_type=client_credentials",
        &format!("{}/oauth/token", a.base),
    ]);
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Authorization: Bearer {token}");
    let (status, body) = curl(&[
        "-H",
        &bearer,
        &format!("{}/v1/transactions?limit=5", b.base),
    ]);
    assert_eq!(status, 200, "token from A refused by B: {body}");
    assert_eq!(
        curl(&["-H", &bearer, &format!("{}/v1/matters", a.base)]).0,
        200
    );
    // A firm admin switches the connector off in settings served by instance A...
    let mut add = std::process::Command::new(BIN)
        .args(["--data-dir"])
        .arg(d)
        .args([
            "--database-url",
            &url,
            "user",
            "add",
            "--firm",
            "alpha-law",
            "--email",
            "amy@alpha.example",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        add.stdin
            .take()
            .unwrap()
            .write_all(b"correct horse battery staple\n")
            .unwrap();
    }
    assert!(add.wait().unwrap().success());
    let jar = d.join("cookies.txt");
    let jar = jar.to_str().unwrap();
    let (status, body) = curl(&[
        "-c",
        jar,
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"firm":"alpha-law","email":"amy@alpha.example","password":"correct horse battery staple"}"#,
        &format!("{}/admin/v1/session", a.base),
    ]);
    assert_eq!(status, 200, "{body}");
    let (_, me) = curl(&["-b", jar, &format!("{}/admin/v1/me", a.base)]);
    let csrf = serde_json::from_str::<serde_json::Value>(&me).unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = curl(&[
        "-b",
        jar,
        "-X",
        "POST",
        "-H",
        &format!("x-csrf-token: {csrf}"),
        &format!("{}/admin/v1/connectors/accounting/disable", a.base),
    ]);
    assert_eq!(status, 200, "{body}");
    // ...and instance B refuses the token on its very next request.
    let (status, _) = curl(&[
        "-H",
        &bearer,
        &format!("{}/v1/transactions?limit=5", b.base),
    ]);
    assert_eq!(status, 401, "B still honoured a token of a disabled grant");
    assert_eq!(
        curl(&["-H", &bearer, &format!("{}/v1/transactions", a.base)]).0,
        401
    );
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    // Both instances wrote into one intact chain: a send and a result per served request.
    let key_file = d.join("master.key");
    std::fs::write(&key_file, &key).unwrap();
    let key_file = key_file.to_str().unwrap();
    let verify = with_db(&["--master-key-file", key_file, "audit", "verify"]);
    assert!(verify.starts_with("ok: 4 records"), "{verify}");
}

//! TLS in front (issue 10, item 4): `deploy/nginx-scopegate.conf` itself
//! (ports, upstreams and certificate paths substituted) runs with a
//! self-signed certificate in front of two `scopegate serve` instances on one
//! PostgreSQL registry. The vendor flow works over HTTPS with one HSTS header;
//! the requests are spread over both instances; port 80 answers every
//! method and path with a redirect and passes nothing on; and the proxy
//! replaces X-Forwarded-For, so spoofed addresses buy no fresh failure budget.
//!
//! Needs Debian's nginx (scripts/test.sh installs nginx-light): without it the
//! test is skipped with one line, except with `CI=true`, where it fails.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SITE: &str = include_str!("../../../deploy/nginx-scopegate.conf");

/// nginx from PATH or Debian's /usr/sbin, or None (skip) outside CI.
fn nginx_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let found = on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|path| path.is_file());
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("nginx is not installed with CI=true (scripts/test.sh installs nginx-light)");
        }
        eprintln!(
            "SKIPPED: nginx is not installed (apt-get install nginx-light; scripts/test.sh does)"
        );
    }
    found
}

/// The deploy config with this test's ports, upstreams and certificate;
/// every substitution must match exactly once, so the test follows the file.
fn site_config(http: u16, https: u16, upstreams: [u16; 2], cert: &Path, key: &Path) -> String {
    let mut site = SITE.to_string();
    for (from, to) in [
        (
            "listen 80 default_server;",
            format!("listen 127.0.0.1:{http} default_server;"),
        ),
        ("    listen [::]:80 default_server;\n", String::new()),
        (
            "listen 443 ssl default_server;",
            format!("listen 127.0.0.1:{https} ssl default_server;"),
        ),
        ("    listen [::]:443 ssl default_server;\n", String::new()),
        (
            "server 127.0.0.1:8080;",
            format!("server 127.0.0.1:{};", upstreams[0]),
        ),
        (
            "server 127.0.0.1:8081;",
            format!("server 127.0.0.1:{};", upstreams[1]),
        ),
        (
            "/etc/letsencrypt/live/gateway.example.com/fullchain.pem",
            cert.display().to_string(),
        ),
        (
            "/etc/letsencrypt/live/gateway.example.com/privkey.pem",
            key.display().to_string(),
        ),
        (
            "https://gateway.example.com$request_uri",
            format!("https://localhost:{https}$request_uri"),
        ),
        (
            "server_name gateway.example.com;",
            "server_name localhost;".to_string(),
        ),
    ] {
        assert_eq!(
            site.matches(from).count(),
            1,
            "deploy/nginx-scopegate.conf no longer has `{from}` once"
        );
        site = site.replace(from, &to);
    }
    assert!(!site.contains("example.com"), "{site}");
    site
}

/// nginx in the foreground, one process (no workers to orphan), everything in `dir`.
struct Nginx(Child);

impl Nginx {
    fn start(binary: &Path, dir: &Path, site: &str, https: u16) -> Self {
        let temp = dir.join("nginx-temp");
        std::fs::create_dir_all(&temp).unwrap();
        std::fs::write(dir.join("scopegate.conf"), site).unwrap();
        let d = dir.display();
        let main = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log info;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log {d}/nginx-access.log;\n  client_body_temp_path {d}/nginx-temp/body;\n  \
             proxy_temp_path {d}/nginx-temp/proxy;\n  fastcgi_temp_path {d}/nginx-temp/fastcgi;\n  \
             uwsgi_temp_path {d}/nginx-temp/uwsgi;\n  scgi_temp_path {d}/nginx-temp/scgi;\n  \
             include {d}/scopegate.conf;\n}}\n"
        );
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, main).unwrap();
        let error_log = dir.join("nginx-error.log");
        let mut child = Command::new(binary)
            .arg("-e")
            .arg(&error_log)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", https)).is_ok() {
                return Self(child);
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "nginx exited ({status}): {}",
                    std::fs::read_to_string(&error_log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "nginx did not listen: {}",
            std::fs::read_to_string(&error_log).unwrap_or_default()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// curl with the test CA; returns (status, headers, body).
fn curl(ca: &Path, args: &[&str]) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-i", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

fn header<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// Requests instance `server` has answered, over all routes.
fn answered(server: &Server) -> f64 {
    let (status, scrape) = curl_get(&format!("{}/metrics", server.metrics_base), &[]);
    assert_eq!(status, 200);
    metric(&scrape, "scopegate_http_requests_total", &[]).unwrap_or(0.0)
}

#[test]
fn https_in_front_of_two_instances_and_port_80_only_redirects() {
    let Some(nginx) = nginx_binary() else { return };
    let Some(url) = fresh_database("tls") else {
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
    with_db(&["firm", "seed-demo", "alpha-law", "--transactions", "20"]);
    with_db(&[
        "grant",
        "enable",
        "--firm",
        "alpha-law",
        "--connector",
        "accounting",
    ]);
    let creds = with_db(&[
        "credential",
        "issue",
        "--firm",
        "alpha-law",
        "--connector",
        "accounting",
    ]);

    let (http_port, https_port) = (free_port(), free_port());
    let public = format!("https://localhost:{https_port}");
    let key = master_key();
    let env = [
        ("SCOPEGATE_MASTER_KEY", key.as_str()),
        ("SCOPEGATE_TRUSTED_PROXIES", "127.0.0.1"),
        ("SCOPEGATE_PUBLIC_URL", public.as_str()),
        ("SCOPEGATE_AUTH_FAILURES_PER_IP", "3"),
    ];
    let a = Server::start(d, &env, Some(&url));
    let b = Server::start(d, &env, Some(&url));
    let port_of = |s: &Server| s.base.rsplit(':').next().unwrap().parse::<u16>().unwrap();

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, cert_key) = (d.join("cert.pem"), d.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&cert_key, certified.signing_key.serialize_pem()).unwrap();
    let site = site_config(
        http_port,
        https_port,
        [port_of(&a), port_of(&b)],
        &cert,
        &cert_key,
    );
    let _proxy = Nginx::start(&nginx, d, &site, https_port);

    // The vendor flow over HTTPS.
    let (status, head, body) = curl(
        &cert,
        &[
            "-u",
            &format!(
                "{}:{}",
                field(&creds, "client_id"),
                field(&creds, "client_secret")
            ),
            "-d",
            "grant_type=client_credentials",
            &format!("{public}/oauth/token"),
        ],
    );
    println!("POST {public}/oauth/token -> {status}");
    assert_eq!(status, 200, "{head}{body}");
    assert_eq!(
        header(&head, "strict-transport-security"),
        ["max-age=63072000; includeSubDomains"]
    );
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Authorization: Bearer {token}");
    let mut matter_id = String::new();
    for path in ["/v1/transactions?limit=3", "/v1/matters?limit=1"] {
        let (status, head, body) = curl(&cert, &["-H", &bearer, &format!("{public}{path}")]);
        let page: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        println!(
            "GET {public}{path} -> {status}, {} records",
            page["data"].as_array().map_or(0, Vec::len)
        );
        assert_eq!(status, 200, "{head}{body}");
        if path.starts_with("/v1/matters") {
            matter_id = page["data"][0]["id"].as_str().unwrap().to_string();
        }
    }
    let fee = serde_json::json!({"matter_id": matter_id, "amount_cents": 150000, "currency": "ZAR",
                                 "description": "Drafting", "fee_date": "2026-11-20"});
    let (status, head, body) = curl(
        &cert,
        &[
            "-H",
            &bearer,
            "-H",
            "Idempotency-Key: tls-fee-1",
            "-H",
            "Content-Type: application/json",
            "-d",
            &fee.to_string(),
            &format!("{public}/v1/fees"),
        ],
    );
    println!("POST {public}/v1/fees -> {status}");
    assert_eq!(status, 201, "{head}{body}");
    // The settings page sends its own HSTS; the proxy's is the only one.
    let (status, head, _) = curl(&cert, &["-I", &format!("{public}/settings")]);
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        header(&head, "strict-transport-security").len(),
        1,
        "{head}"
    );
    // Round robin: both instances served the flow.
    let (by_a, by_b) = (answered(&a), answered(&b));
    println!("requests answered: instance A {by_a}, instance B {by_b}");
    assert!(by_a >= 1.0 && by_b >= 1.0, "A {by_a}, B {by_b}");

    // Port 80: a redirect for every method and path, and nothing passed on.
    let plain = format!("http://127.0.0.1:{http_port}");
    let (status, head, body) = curl(&cert, &["-I", &format!("{plain}/v1/transactions?limit=3")]);
    println!(
        "curl -sI {plain}/v1/transactions?limit=3\n{}",
        head.trim_end()
    );
    assert_eq!(status, 308, "{head}");
    assert_eq!(
        header(&head, "location"),
        [format!("{public}/v1/transactions?limit=3")]
    );
    assert!(body.is_empty());
    for (method, path, extra) in [
        ("GET", "/", vec![]),
        (
            "GET",
            "/v1/transactions?limit=3",
            vec!["-H", bearer.as_str()],
        ),
        (
            "POST",
            "/oauth/token",
            vec!["-d", "grant_type=client_credentials"],
        ),
        ("POST", "/v1/fees", vec!["-H", bearer.as_str(), "-d", "{}"]),
        ("DELETE", "/admin/v1/session", vec![]),
        ("GET", "/healthz", vec![]),
        ("GET", "/metrics", vec![]),
    ] {
        let mut args = vec!["-X", method];
        args.extend(extra);
        let target = format!("{plain}{path}");
        args.push(target.as_str());
        let (status, head, _) = curl(&cert, &args);
        assert_eq!(status, 308, "{method} {path}: {head}");
        assert_eq!(
            header(&head, "location"),
            [format!("{public}{path}")],
            "{method} {path}"
        );
    }
    assert_eq!(
        (answered(&a), answered(&b)),
        (by_a, by_b),
        "port 80 passed a request on"
    );

    // X-Forwarded-For is replaced: failures with a new spoofed address each
    // time still spend the one budget of the real client (3 per instance).
    let mut statuses = Vec::new();
    for n in 0..8 {
        let (status, _, _) = curl(
            &cert,
            &[
                "-H",
                &format!("X-Forwarded-For: 203.0.113.{n}"),
                "-d",
                &format!("grant_type=client_credentials&client_id=nobody-{n}&client_secret=x"),
                &format!("{public}/oauth/token"),
            ],
        );
        statuses.push(status);
    }
    println!("unknown client ids through HTTPS with spoofed X-Forwarded-For: {statuses:?}");
    assert!(
        statuses.contains(&429),
        "spoofed X-Forwarded-For bought fresh budgets: {statuses:?}"
    );
    // The budget spent was the loopback client's own: straight to the
    // instances, loopback's next failure is refused (a spoofed address's
    // budget would have left loopback's whole, and this answered 401).
    let direct: Vec<u16> = [&a, &b]
        .iter()
        .map(|server| {
            let (status, _, _) = curl(
                &cert,
                &[
                    "-d",
                    "grant_type=client_credentials&client_id=nobody-direct&client_secret=x",
                    &format!("{}/oauth/token", server.base),
                ],
            );
            status
        })
        .collect();
    println!("the same from loopback straight to A and B: {direct:?}");
    assert!(direct.contains(&429), "{direct:?}");
    assert!(a.terminate().success());
    assert!(b.terminate().success());
}

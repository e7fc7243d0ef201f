//! `scopegate demo` starts on a fresh SQLite data directory and the `curl`
//! sequence it prints works exactly as printed; its `/metrics` (a listener of
//! its own) then counts that sequence, with no firm id in any label.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn demo_starts_and_its_printed_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "demo",
            "--demo-dir",
        ])
        .arg(dir.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = demo.stdout.take().unwrap();
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let last = line.contains("Stop with Ctrl-C");
        printed.push(line);
        if last || printed.len() > 200 {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(
        text.contains("scopegate demo is running at http://127.0.0.1:"),
        "{text}"
    );
    let script: Vec<&str> = printed
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("export ") || l.starts_with("TOKEN=") || l.starts_with("curl "))
        .collect();
    assert!(script.len() >= 5, "{text}");
    let script = format!(
        "set -e\n{}\n",
        script
            .iter()
            .map(|l| format!("{l}\necho"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    // The printed scrape, after the curl sequence.
    let metrics_url = printed
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("curl -s ")
                .filter(|u| u.ends_with("/metrics"))
        })
        .unwrap_or_else(|| panic!("no metrics line in {text}"))
        .to_string();
    let (status, scrape) = curl_get(&metrics_url, &[]);
    let _ = demo.kill();
    let _ = demo.wait();
    assert_eq!(status, 200, "{scrape}");
    if std::env::var_os("SCOPEGATE_PRINT_SCRAPE").is_some() {
        println!("{scrape}");
    }
    let value = |name: &str, labels: &[(&str, &str)]| metric(&scrape, name, labels);
    assert_eq!(
        value(
            "scopegate_tokens_issued_total",
            &[("connector", "accounting")]
        ),
        Some(1.0),
        "{scrape}"
    );
    for (route, method, status) in [
        ("/oauth/token", "POST", "200"),
        ("/v1/transactions", "GET", "200"),
        ("/v1/matters", "GET", "200"),
        ("/v1/fees", "POST", "201"),
    ] {
        assert_eq!(
            value(
                "scopegate_http_requests_total",
                &[("route", route), ("method", method), ("status", status)]
            ),
            Some(1.0),
            "{route}: {scrape}"
        );
        assert!(
            value(
                "scopegate_http_request_duration_seconds_count",
                &[("route", route), ("method", method)]
            ) >= Some(1.0),
            "{route} latency: {scrape}"
        );
    }
    // Each vendor call is a send and a result record: the two polls out, the fee in.
    assert!(
        value(
            "scopegate_outbound_records_total",
            &[("kind", "send"), ("connector", "accounting")]
        ) >= Some(3.0),
        "{scrape}"
    );
    assert!(
        value("scopegate_outbound_commit_batch_size_count", &[]) >= Some(1.0),
        "{scrape}"
    );
    assert!(
        value("scopegate_outbound_commit_seconds_count", &[]) >= Some(1.0),
        "{scrape}"
    );
    assert!(
        value("scopegate_firm_pool_opens_total", &[]) >= Some(1.0),
        "{scrape}"
    );
    assert!(
        value("scopegate_firm_pool_hits_total", &[]) >= Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        value("scopegate_tripwire_alerts_total", &[]),
        Some(0.0),
        "{scrape}"
    );
    for firm in ["harbour-law", "ndlovu-attorneys"] {
        assert!(!scrape.contains(firm), "a firm id in the metrics: {scrape}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bodies: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert_eq!(bodies.len(), 3, "{stdout}");
    assert_eq!(bodies[0]["data"].as_array().unwrap().len(), 3);
    assert_eq!(bodies[1]["data"].as_array().unwrap().len(), 3);
    assert_eq!(bodies[2]["amount_cents"], 150000);
    assert!(text.contains("audit verify"));
}

//! `scopegate demo` starts on a fresh SQLite data directory and the `curl`
//! sequence it prints works exactly as printed.

use crate::common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn demo_starts_and_its_printed_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "demo", "--demo-dir"])
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
    let _ = demo.kill();
    let _ = demo.wait();
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

//! Runs a bench once per size, each in a child process of its own (the bench
//! binary itself, with the size in an environment variable), so that one
//! size's peak RSS and allocator state do not carry into the next. The
//! child's output is echoed as it comes; its one result line,
//! `RESULT_PREFIX key=value ...`, is collected for the comparison.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The line a child prints with its figures: `size result: key=value key=value`.
pub const RESULT_PREFIX: &str = "size result:";

/// The figures of one size, by name.
pub type Figures = BTreeMap<String, f64>;

/// Formats figures as the child's result line.
pub fn result_line(figures: &[(&str, f64)]) -> String {
    // Every digit: a ratio of two rounded microsecond figures (0.006 / 0.004 ms)
    // would say 1.50x of what may be 1.2x.
    let pairs: Vec<String> = figures.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{RESULT_PREFIX} {}", pairs.join(" "))
}

/// Parses a result line; `None` for any other line.
pub fn parse_result_line(line: &str) -> Option<Figures> {
    let rest = line.strip_prefix(RESULT_PREFIX)?;
    rest.split_whitespace()
        .map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Runs this binary again with `variable=size`, echoing its output; returns
/// its result figures. Panics (naming the size) if the child fails or prints none.
pub fn run_child(variable: &str, size: usize) -> Figures {
    let exe = std::env::current_exe().expect("path of the bench binary");
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(variable, size.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the bench for one size");
    let stdout = child.stdout.take().expect("child stdout");
    let mut figures = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("child output");
        println!("{line}");
        if let Some(parsed) = parse_result_line(&line) {
            figures = Some(parsed);
        }
    }
    let status = child.wait().expect("wait for the child");
    assert!(
        status.success(),
        "the run with {variable}={size} failed: {status}"
    );
    figures.unwrap_or_else(|| panic!("the run with {variable}={size} printed no result line"))
}

/// A comma-separated list of sizes from `variable`, else `default`.
pub fn env_sizes(variable: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(variable) {
        Ok(list) => list
            .split(',')
            .map(|s| s.trim().replace('_', ""))
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("{variable}={list:?}: {s:?} is not a whole number"))
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

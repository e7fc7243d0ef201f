//! `soak`: N minutes of mixed load on loopback against a real `scopegate
//! serve` (the release build `scripts/soak.sh` passes in) on the default
//! SQLite registry; not part of CI. This file owns the run's order: set up
//! the firms and the Google emulator, start the gateway, connect the fee
//! earners, start the load, print a sample every minute, then stop the load,
//! wait for the calendars to converge, stop the gateway, run `scopegate audit
//! verify` and print the summary. Exit status 1 if the audit does not verify
//! or the gateway died (or did not stop cleanly).
//!
//! ```text
//! cargo run --release -p scopegate-e2e --example soak -- --bin target/release/scopegate [--minutes 30]
//! ```

mod connect;
mod diary;
mod firms;
mod gateway;
mod probe;
mod report;
mod switcher;
mod tally;
mod vendor;

use gateway::{free_port, Deployment, Gateway};
use report::Sample;
use scopegate_google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally::{Counts, Kind, Tally};

const FIRMS: usize = 50;
const FEE_EARNERS_PER_FIRM: usize = 2;

struct Args {
    minutes: u64,
    bin: PathBuf,
}

fn args() -> Result<Args, String> {
    let mut minutes = 30;
    let mut bin = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--minutes" => {
                minutes = it
                    .next()
                    .and_then(|m| m.parse().ok())
                    .filter(|m| *m > 0)
                    .ok_or("--minutes takes a whole number of minutes above 0")?;
            }
            "--bin" => bin = it.next().map(PathBuf::from),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let bin = bin.ok_or("--bin PATH (the scopegate executable) is required")?;
    Ok(Args { minutes, bin })
}

/// About 10% of Calendar API answers faulted: 429 with `Retry-After: 1` and 503
/// (7% between them), and 3% answered only after 2.5 s.
fn faulty_google() -> EmulatorConfig {
    EmulatorConfig {
        latency_ms: 5,
        fault_rate: 0.07,
        retry_after_secs: 1,
        slow_rate: 0.03,
        slow_ms: 2500,
        ..Default::default()
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let emulator = match Emulator::new(faulty_google())
        .start("127.0.0.1:0".parse().expect("addr"))
        .await
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: the Google emulator cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let env = scopegate_e2e::TestEnv::new(scopegate_e2e::Backend::Sqlite).await;
    println!(
        "soak: {} minutes; data directory {}; setting up {FIRMS} firms, {} fee earners",
        args.minutes,
        env.dir.path().display(),
        FIRMS * FEE_EARNERS_PER_FIRM
    );
    let firms = firms::set_up(&env, FIRMS, FEE_EARNERS_PER_FIRM).await;
    // From here on only the gateway and operator commands use the registry.
    env.registry.pool().close().await;
    let deployment = Arc::new(Deployment::new(args.bin, env.dir.path(), &emulator));
    let ok = match run(&deployment, &emulator, &firms, args.minutes).await {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("soak: error: {e}");
            false
        }
    };
    if ok {
        println!("soak: PASSED");
        ExitCode::SUCCESS
    } else {
        let kept = env.dir.keep();
        println!("soak: FAILED (data directory kept: {})", kept.display());
        ExitCode::FAILURE
    }
}

/// Everything after the setup; Ok(false) when the audit failed or the gateway died.
async fn run(
    deployment: &Arc<Deployment>,
    emulator: &RunningEmulator,
    firms: &[Arc<firms::Firm>],
    minutes: u64,
) -> Result<bool, String> {
    let links = connect::links(deployment, firms).await?;
    let mut gateway = deployment.serve(free_port(), free_port()).await?;
    println!(
        "soak: scopegate serve pid {} at {} (metrics {}), log {}",
        gateway.pid,
        gateway.base,
        gateway.metrics_url,
        gateway.log_path.display()
    );
    for link in &links {
        connect::consent(&gateway.base, link).await?;
    }
    println!(
        "soak: {} fee earners connected to Google; load: {FIRMS} vendors (a request every {:?} each, a fee every 5th), a diary change every {:?}, a grant switched off for 10 s every {:?}",
        links.len(),
        vendor::TICK,
        diary::EVERY,
        switcher::PERIOD
    );
    println!("soak: per minute: gateway VmRSS (KiB), open fds, OS threads, tokio alive tasks | done/failed by kind (google: Calendar API calls the gateway made / answered with an injected fault) | WARN+ERROR log lines");

    let http = reqwest::Client::new();
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut log_offset = 0;
    let mut samples = Vec::new();
    let baseline = sample(0, &gateway, &http, &tally, emulator, &mut log_offset).await;
    println!("{baseline}");
    samples.push(baseline);

    let mut load = tokio::task::JoinSet::new();
    let mut vendors = tokio::task::JoinSet::new();
    for (n, firm) in firms.iter().enumerate() {
        vendors.spawn(
            vendor::Vendor {
                firm: firm.clone(),
                http: http.clone(),
                base: gateway.base.clone(),
                tally: tally.clone(),
                stop: stop.clone(),
                phase: vendor::TICK * n as u32 / firms.len() as u32,
                seed: n as u64,
            }
            .run(),
        );
    }
    load.spawn(diary::run(firms.to_vec(), tally.clone(), stop.clone()));
    load.spawn(switcher::run(
        deployment.clone(),
        firms.to_vec(),
        tally.clone(),
        stop.clone(),
    ));

    let started = Instant::now();
    let mut totals = Counts::default();
    let mut died = None;
    'minutes: for minute in 1..=minutes {
        let due = started + Duration::from_secs(60 * minute);
        while Instant::now() < due {
            if let Some(status) = gateway.exited() {
                died = Some(status);
                break 'minutes;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let s = sample(minute, &gateway, &http, &tally, emulator, &mut log_offset).await;
        println!("{s}");
        totals.add(&s.counts);
        samples.push(s);
    }
    stop.store(true, SeqCst);
    println!("soak: load stopping (the switcher finishes its cycle: every grant ends on)");
    while vendors.join_next().await.is_some() {}
    while load.join_next().await.is_some() {}
    totals.add(&tally.take());

    if let Some(status) = died.or_else(|| gateway.exited()) {
        println!(
            "soak: the gateway DIED ({status}); its log ends:\n{}",
            gateway.log_tail()
        );
        for line in report::summary(&samples, &totals) {
            println!("{line}");
        }
        return Ok(false);
    }
    let converged = converge(emulator, firms).await;
    let (warnings, _, first_warning) = probe::new_warnings(&gateway.log_path, 0);
    let stopped = stop_gateway(gateway).await;
    let audit = deployment
        .run(&[
            "audit",
            "verify",
            "--checkpoints",
            &deployment
                .dir
                .join("audit-checkpoints.jsonl")
                .to_string_lossy(),
        ])
        .await;
    println!(
        "soak: scopegate audit verify: {} (exit {})",
        format!("{}{}", audit.stdout, audit.stderr).trim(),
        if audit.ok { "0" } else { "non-zero" }
    );
    println!("---- summary ----");
    for line in report::summary(&samples, &totals) {
        println!("{line}");
    }
    println!("calendars: {converged}");
    println!(
        "gateway log: {warnings} WARN/ERROR lines{}",
        first_warning
            .map(|l| format!("; the first: {l}"))
            .unwrap_or_default()
    );
    for example in tally.examples() {
        println!("failure: {example}");
    }
    println!("gateway stop: {stopped}");
    println!("audit verify: {}", if audit.ok { "ok" } else { "FAILED" });
    Ok(audit.ok && stopped.starts_with("clean"))
}

/// One sample: a probe of the gateway, the minute's counts, its new log warnings.
async fn sample(
    minute: u64,
    gateway: &Gateway,
    http: &reqwest::Client,
    tally: &Tally,
    emulator: &RunningEmulator,
    log_offset: &mut u64,
) -> Sample {
    let mut counts = tally.take();
    let calls: Vec<_> = emulator
        .emulator
        .take_received()
        .into_iter()
        .filter(|r| r.kind == "api")
        .collect();
    let faulted = calls
        .iter()
        .filter(|r| r.status == 0 || r.status == 429 || r.status >= 500)
        .count() as u64;
    counts.by_kind.insert(
        Kind::Google,
        tally::Count {
            done: calls.len() as u64,
            failed: faulted,
        },
    );
    let (warnings, offset, _) = probe::new_warnings(&gateway.log_path, *log_offset);
    *log_offset = offset;
    Sample {
        minute,
        probe: probe::Probe::take(gateway.pid, http, &gateway.metrics_url).await,
        counts,
        warnings,
    }
}

/// Waits (up to 3 minutes) until Google holds exactly one event per live diary entry.
async fn converge(emulator: &RunningEmulator, firms: &[Arc<firms::Firm>]) -> String {
    let started = Instant::now();
    loop {
        let live = firms::live_entries(firms).await;
        let events = emulator.emulator.live_events().len();
        if events == live {
            return format!(
                "converged: {events} events for {live} live diary entries ({} s after the load stopped)",
                started.elapsed().as_secs()
            );
        }
        if started.elapsed() > Duration::from_secs(180) {
            return format!(
                "NOT CONVERGED: {events} events for {live} live diary entries after 180 s"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// SIGTERM and the exit status, in words (`clean ...` when it exited 0).
async fn stop_gateway(gateway: Gateway) -> String {
    match gateway.terminate().await {
        Ok(status) if status.success() => "clean exit on SIGTERM".into(),
        Ok(status) => format!("FAILED: exited with {status} on SIGTERM"),
        Err(e) => format!("FAILED: {e}"),
    }
}

//! Tails at half load: `GET /v1/transactions?limit=100` through the whole
//! gateway and through the bare handler over the same firm database (see
//! `poll_servers`). Phase 1 measures each server's closed-loop maximum
//! (`clients` concurrent loops for a few seconds). Phase 2 offers both the
//! same fixed arrival rate, a share (50%) of the gateway's maximum, open
//! loop: request i is due at start + i / rate whatever happened to the ones
//! before, a dispatcher thread sends it at that time without waiting for
//! answers, and its latency counts from when it was due (so a stalled server
//! is charged for every request that waited behind it: no coordinated
//! omission). Prints p50/p99/p999/max of both and the rate achieved; the goal
//! is gateway p99 <= 5 ms.
//!
//! `cargo bench -p scopegate --bench poll_tails`
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SCOPEGATE_BENCH_CLIENTS` | 16 | concurrent clients of the closed-loop phase |
//! | `SCOPEGATE_BENCH_MAX_SECS` | 3 | seconds of each closed-loop run |
//! | `SCOPEGATE_BENCH_OPEN_SECS` | 10 | seconds of each open-loop run |
//! | `SCOPEGATE_BENCH_LOAD_PERCENT` | 50 | open-loop rate, in percent of the gateway's closed-loop maximum |
//! | `SCOPEGATE_BENCH_BACKENDS` | sqlite | registry backend(s): sqlite, postgres |
//! | `SCOPEGATE_BENCH_DATA_DIR` | the system's temporary directory | where the registry and firm database live (`/dev/shm`: no disk under the fsyncs, to see what the disk costs) |

mod common;
mod poll_servers;

use common::{backends, env_usize, machine_line, ms, per_sec};
use poll_servers::PollServers;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATH: &str = "/v1/transactions?limit=100";
/// The goal for the gateway's open-loop p99.
const P99_GOAL: Duration = Duration::from_millis(5);

/// One server under test: where to send, and with which token.
#[derive(Clone)]
struct Target {
    url: Arc<str>,
    token: Option<Arc<str>>,
}

/// Latency percentiles of one run, p999 included.
struct Tails {
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
}

impl Tails {
    fn of(samples: &mut [Duration]) -> Self {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let at = |p: f64| {
            let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Self {
            p50: at(50.0),
            p99: at(99.0),
            p999: at(99.9),
            max: samples[samples.len() - 1],
        }
    }
}

/// A run's figures: completed requests, failures, how long, latencies.
struct Run {
    requests: usize,
    failures: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// One GET; true if it came back 200 with its whole body.
async fn poll_once(http: &reqwest::Client, target: &Target) -> bool {
    let mut request = http.get(&*target.url);
    if let Some(token) = &target.token {
        request = request.bearer_auth(token);
    }
    match request.send().await {
        Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
        Err(_) => false,
    }
}

/// `clients` loops, each sending its next request when its last one is answered, for `duration`.
async fn closed_loop(
    http: &reqwest::Client,
    target: &Target,
    clients: usize,
    duration: Duration,
) -> Run {
    let start = Instant::now();
    let deadline = start + duration;
    let loops: Vec<_> = (0..clients)
        .map(|_| {
            let (http, target) = (http.clone(), target.clone());
            tokio::spawn(async move {
                let (mut latencies, mut failures) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if !poll_once(&http, &target).await {
                        failures += 1;
                    }
                    latencies.push(t.elapsed());
                }
                (latencies, failures)
            })
        })
        .collect();
    let mut run = Run {
        requests: 0,
        failures: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for client in loops {
        let (latencies, failures) = client.await.expect("client loop");
        run.latencies.extend(latencies);
        run.failures += failures;
    }
    run.elapsed = start.elapsed();
    run.requests = run.latencies.len();
    run
}

/// Requests due at fixed intervals for `duration`, each sent when due by a
/// dispatcher thread and timed from when it was due. The run's `elapsed` is
/// the dispatch span (its rate the achieved arrival rate); also returns how
/// late the dispatcher sent its latest request.
async fn open_loop(
    http: &reqwest::Client,
    target: &Target,
    rate: f64,
    duration: Duration,
) -> (Run, Duration) {
    let count = (rate * duration.as_secs_f64()).round().max(1.0) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let runtime = tokio::runtime::Handle::current();
    let (http, target) = (http.clone(), target.clone());
    let start = Instant::now() + Duration::from_millis(20);
    // A thread of its own: `thread::sleep` wakes within tens of microseconds,
    // where the runtime's timer rounds up to whole milliseconds.
    let dispatcher = tokio::task::spawn_blocking(move || {
        let mut answers = Vec::with_capacity(count);
        let mut latest = Duration::ZERO;
        for i in 0..count {
            let due = start + interval.mul_f64(i as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            latest = latest.max(Instant::now().saturating_duration_since(due));
            let (http, target) = (http.clone(), target.clone());
            answers.push(runtime.spawn(async move {
                let ok = poll_once(&http, &target).await;
                (ok, due.elapsed())
            }));
        }
        // The achieved rate counts the last request's interval as well.
        (answers, latest, start.elapsed() + interval)
    });
    let (answers, latest, span) = dispatcher.await.expect("dispatcher");
    let mut run = Run {
        requests: count,
        failures: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::with_capacity(count),
    };
    for answer in answers {
        let (ok, latency) = answer.await.expect("request task");
        run.failures += usize::from(!ok);
        run.latencies.push(latency);
    }
    run.elapsed = span;
    (run, latest)
}

/// The floor under any durable write: `fdatasync` of a 4 kB append (what
/// SQLite's WAL commit waits for) in `dir`, the registry's directory.
fn fsync_floor(dir: &std::path::Path, samples: usize) -> Tails {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let mut latencies: Vec<Duration> = (0..samples)
        .map(|_| {
            file.write_all(&[0u8; 4096]).expect("probe write");
            let t = Instant::now();
            file.sync_data().expect("fdatasync");
            t.elapsed()
        })
        .collect();
    drop(file);
    let _ = std::fs::remove_file(path);
    Tails::of(&mut latencies)
}

/// One table row; returns the run's percentiles.
fn report(backend: &str, phase: &str, server: &str, run: &mut Run) -> Tails {
    let tails = Tails::of(&mut run.latencies);
    println!(
        "{backend:<9} {phase:<12} {server:<8} {:>7} {:>6} {:>6.2} {:>8.0} {:>8} {:>8} {:>8} {:>8}",
        run.requests,
        run.failures,
        run.elapsed.as_secs_f64(),
        per_sec(run.requests as u64, run.elapsed),
        ms(tails.p50),
        ms(tails.p99),
        ms(tails.p999),
        ms(tails.max),
    );
    tails
}

/// The knobs of a run.
struct Settings {
    clients: usize,
    max_run: Duration,
    open_run: Duration,
    load_percent: usize,
}

async fn bench_backend(backend: &str, settings: &Settings) {
    let Some(servers) = PollServers::start(backend, "poll_tails").await else {
        return;
    };
    let http = reqwest::Client::new();
    let gateway = Target {
        url: format!("{}{PATH}", servers.gateway).into(),
        token: Some(servers.token.as_str().into()),
    };
    let bare = Target {
        url: format!("{}{PATH}", servers.bare).into(),
        token: None,
    };
    // Warm both (connections, caches); a failure here is a setup error.
    for target in [&gateway, &bare] {
        let warm = closed_loop(&http, target, settings.clients, Duration::from_millis(500)).await;
        assert_eq!(warm.failures, 0, "{}: warm-up requests failed", target.url);
    }

    let mut max_bare = closed_loop(&http, &bare, settings.clients, settings.max_run).await;
    report(backend, "closed loop", "bare", &mut max_bare);
    let mut max_gateway = closed_loop(&http, &gateway, settings.clients, settings.max_run).await;
    report(backend, "closed loop", "gateway", &mut max_gateway);
    let gateway_max = per_sec(max_gateway.requests as u64, max_gateway.elapsed);
    let rate = gateway_max * settings.load_percent as f64 / 100.0;

    let (mut open_gateway, late_gateway) =
        open_loop(&http, &gateway, rate, settings.open_run).await;
    let g = report(backend, "open loop", "gateway", &mut open_gateway);
    let (mut open_bare, late_bare) = open_loop(&http, &bare, rate, settings.open_run).await;
    let b = report(backend, "open loop", "bare", &mut open_bare);

    println!(
        "{backend:<9} dispatcher at most {} ms (gateway run) and {} ms (bare run) behind schedule; bare closed-loop maximum {:.0}/s",
        ms(late_gateway),
        ms(late_bare),
        per_sec(max_bare.requests as u64, max_bare.elapsed)
    );
    println!(
        "tails ({backend}): rate {rate:.0}/s ({}% of the gateway's closed-loop maximum {gateway_max:.0}/s) gateway p50 {} p99 {} p999 {} max {} ms; bare p50 {} p99 {} p999 {} max {} ms",
        settings.load_percent,
        ms(g.p50), ms(g.p99), ms(g.p999), ms(g.max),
        ms(b.p50), ms(b.p99), ms(b.p999), ms(b.max),
    );
    let floor = fsync_floor(servers.data_dir(), 200);
    println!(
        "{backend:<9} disk floor: fdatasync of a 4 kB append in the bench's data directory (200 samples, after the runs) p50 {} p99 {} max {} ms",
        ms(floor.p50),
        ms(floor.p99),
        ms(floor.max)
    );
    let failures = open_gateway.failures + open_bare.failures;
    println!(
        "tails goal ({backend}): gateway p99 {} ms <= {} ms: {}{}",
        ms(g.p99),
        P99_GOAL.as_millis(),
        if g.p99 <= P99_GOAL && failures == 0 {
            "met"
        } else {
            "MISSED"
        },
        if failures > 0 {
            format!(" ({failures} failed requests)")
        } else {
            String::new()
        }
    );
    servers.finish().await;
}

#[tokio::main]
async fn main() {
    let settings = Settings {
        clients: env_usize("SCOPEGATE_BENCH_CLIENTS", 16).max(1),
        max_run: Duration::from_secs(env_usize("SCOPEGATE_BENCH_MAX_SECS", 3).max(1) as u64),
        open_run: Duration::from_secs(env_usize("SCOPEGATE_BENCH_OPEN_SECS", 10).max(1) as u64),
        load_percent: env_usize("SCOPEGATE_BENCH_LOAD_PERCENT", 50).clamp(1, 100),
    };
    println!(
        "== poll_tails: GET {PATH}; closed loop {} clients x {} s per server, then open loop at {}% of the gateway's maximum for {} s per server",
        settings.clients,
        settings.max_run.as_secs(),
        settings.load_percent,
        settings.open_run.as_secs()
    );
    println!("{}", machine_line());
    println!("client, gateway and bare server share this process and its 2-core machine; open-loop latency counts from when each request was due");
    println!(
        "{:<9} {:<12} {:<8} {:>7} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "registry",
        "phase",
        "server",
        "reqs",
        "failed",
        "secs",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "max ms"
    );
    for backend in backends("sqlite") {
        bench_backend(&backend, &settings).await;
    }
}

//! What two gateway instances on one PostgreSQL registry serve, measured:
//! two `scopegate serve` processes of the release binary (the one cargo
//! builds for this bench), each with its own data directory and port, share
//! one PostgreSQL registry and the firms' SQLite databases (seeded as the
//! accounting_poll bench seeds its firm: 1,000 transactions each). Vendors
//! poll `GET /v1/transactions?limit=100`, each request with its own firm's
//! token, from closed-loop clients in this process: for a fixed time all
//! against one instance, then split evenly across both, in alternating
//! rounds. Clients, instances and PostgreSQL share the machine's cores.
//!
//! `cargo bench -p scopegate --bench two_instances`
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SCOPEGATE_BENCH_FIRMS` | 32 | firms, each with its own database and credential |
//! | `SCOPEGATE_BENCH_CLIENTS` | 16 | closed-loop clients (split evenly across two instances) |
//! | `SCOPEGATE_BENCH_SECONDS` | 5 | seconds per phase |
//! | `SCOPEGATE_BENCH_ROUNDS` | 2 | alternating rounds (one instance, then two) |

mod common;

use common::{env_usize, machine_line, ms, per_sec, Percentiles, PgDatabase};
use scopegate::registry::Registry;
use scopegate::tenancy::{default_firm_url, provision_firm_database, seed};
use secrecy::ExposeSecret;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PATH: &str = "/v1/transactions?limit=100";

/// One `scopegate serve` process; killed if dropped before [`Instance::stop`].
struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    /// Starts `scopegate serve` on a free loopback port and waits for `/readyz`.
    async fn start(dir: &Path, registry_url: &str, master_key: &str, name: &str) -> Self {
        let data_dir = dir.join(name);
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--database-url", registry_url])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", "off"])
            .args([
                "--api-rate-per-second",
                "1000000000",
                "--api-burst",
                "1000000000",
            ])
            .arg("serve")
            .env("SCOPEGATE_MASTER_KEY", master_key)
            .env_remove("SCOPEGATE_CONFIG")
            .env_remove("SCOPEGATE_DATABASE_URL")
            .env_remove("SCOPEGATE_MASTER_KEY_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start scopegate serve");
        let instance = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = http.get(format!("{}/readyz", instance.base)).send().await {
                if r.status() == 200 {
                    return instance;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("scopegate serve ({name}) did not become ready; see {name}.log");
    }

    /// CPU time (user + system) the process has used so far.
    fn cpu(&self) -> Duration {
        process_cpu(&format!("/proc/{}/stat", self.child.id()))
    }

    /// SIGTERM, then wait for the exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU time from a `/proc/<pid>/stat` file.
fn process_cpu(stat_path: &str) -> Duration {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state (3rd).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the name.
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Registers `count` firms, each with its own seeded SQLite database in
/// `dir`, the accounting connector on and one credential; returns each
/// firm's (client id, client secret).
async fn firms(registry: &Registry, dir: &Path, count: usize) -> Vec<(String, String)> {
    let catalogue = scopegate::connectors::catalogue();
    let accounting = catalogue.require("accounting").expect("accounting");
    let mut credentials = Vec::with_capacity(count);
    for i in 0..count {
        let firm = format!("firm-{i:03}");
        let url = default_firm_url(dir, &firm);
        let db = provision_firm_database(&firm, &url)
            .await
            .expect("firm database");
        seed::seed_demo(
            &db,
            seed::SeedSize {
                fee_earners: 5,
                clients: 40,
                matters: 60,
                diary_entries: 100,
                transactions: 1000,
            },
        )
        .await
        .expect("seed");
        db.pool().close().await;
        registry
            .add_firm(&firm, &firm, &url)
            .await
            .expect("add firm");
        registry
            .enable_grant(&firm, &accounting.contract, "admin@bench")
            .await
            .expect("enable grant");
        let issued = registry
            .issue_credential(&firm, "accounting")
            .await
            .expect("credential");
        credentials.push((
            issued.client_id.clone(),
            issued.client_secret.expose_secret().to_string(),
        ));
    }
    credentials
}

/// An access token for each credential, from `base`.
async fn tokens(
    http: &reqwest::Client,
    base: &str,
    credentials: &[(String, String)],
) -> Vec<String> {
    let mut tokens = Vec::with_capacity(credentials.len());
    for (client_id, secret) in credentials {
        let answer: serde_json::Value = http
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token json");
        tokens.push(
            answer["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
        );
    }
    tokens
}

/// What one phase of load measured.
struct Phase {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

/// `clients` closed-loop clients for `length`: client `c` polls the
/// instance `bases[c % bases.len()]`, cycling through the firms `c`,
/// `c + clients`, ... with each firm's own token.
async fn load(
    http: &reqwest::Client,
    bases: &[String],
    tokens: &Arc<Vec<String>>,
    clients: usize,
    length: Duration,
) -> Phase {
    let start = Instant::now();
    let deadline = start + length;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let http = http.clone();
            let url = format!("{}{PATH}", bases[c % bases.len()]);
            let tokens = tokens.clone();
            tokio::spawn(async move {
                let mine: Vec<&String> = tokens
                    .iter()
                    .skip(c % tokens.len())
                    .step_by(clients)
                    .collect();
                let mut latencies = Vec::new();
                let mut n = 0;
                while Instant::now() < deadline {
                    let token = mine[n % mine.len()];
                    n += 1;
                    let t = Instant::now();
                    let response = http
                        .get(&url)
                        .bearer_auth(token)
                        .send()
                        .await
                        .expect("request");
                    let status = response.status();
                    let body = response.bytes().await.expect("body");
                    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    Phase {
        requests: latencies.len(),
        elapsed: start.elapsed(),
        latencies,
    }
}

/// One phase's line: requests/s, latencies, CPU per request of each instance and of the clients.
fn report(
    round: usize,
    what: &str,
    phase: &mut Phase,
    cpu: &[Duration],
    client_cpu: Duration,
) -> f64 {
    let p = Percentiles::of(&mut phase.latencies);
    let rate = per_sec(phase.requests as u64, phase.elapsed);
    let per_request =
        |d: &Duration| format!("{:.3}", d.as_secs_f64() * 1000.0 / phase.requests as f64);
    println!(
        "{round:>5}  {what:<14} {:>7} {:>6.2} {:>8.0} {:>8} {:>8} {:>8}  gateway CPU ms/req {}; clients {} ms/req; busy cores {:.2}",
        phase.requests,
        phase.elapsed.as_secs_f64(),
        rate,
        ms(p.p50),
        ms(p.p99),
        ms(p.max),
        cpu.iter().map(per_request).collect::<Vec<_>>().join(" + "),
        per_request(&client_cpu),
        (cpu.iter().sum::<Duration>() + client_cpu).as_secs_f64() / phase.elapsed.as_secs_f64()
    );
    rate
}

#[tokio::main]
async fn main() {
    let firm_count = env_usize("SCOPEGATE_BENCH_FIRMS", 32).max(1);
    let clients = env_usize("SCOPEGATE_BENCH_CLIENTS", 16).max(2);
    let length = Duration::from_secs(env_usize("SCOPEGATE_BENCH_SECONDS", 5).max(1) as u64);
    let rounds = env_usize("SCOPEGATE_BENCH_ROUNDS", 2).max(1);
    println!(
        "== two_instances: GET {PATH}, {firm_count} firms, {clients} closed-loop clients, {}s per phase, {rounds} rounds",
        length.as_secs()
    );
    println!("{}", machine_line());
    println!("two `scopegate serve` processes (release binary) on one PostgreSQL registry; clients, instances and PostgreSQL share the machine");
    let pg = match PgDatabase::create("two_instances").await {
        Ok(db) => db,
        Err(e) => {
            println!("two_instances: SKIPPED ({e})");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::connect_and_migrate(&pg.url)
        .await
        .expect("registry");
    let credentials = firms(&registry, dir.path(), firm_count).await;
    let master_key = scopegate::keys::generate_key();
    let a = Instance::start(dir.path(), &pg.url, &master_key, "instance-a").await;
    let b = Instance::start(dir.path(), &pg.url, &master_key, "instance-b").await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .build()
        .expect("client");
    // Tokens from A; the registry is shared, so B honours them too.
    let tokens = Arc::new(tokens(&http, &a.base, &credentials).await);
    let one = vec![a.base.clone()];
    let two = vec![a.base.clone(), b.base.clone()];
    let warm = load(&http, &two, &tokens, clients, Duration::from_secs(1)).await;
    let mut served = warm.requests;

    println!(
        "{:>5}  {:<14} {:>7} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "round", "instances", "reqs", "secs", "req/s", "p50 ms", "p99 ms", "max ms"
    );
    let mut all: [Vec<Phase>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=rounds {
        for (i, (what, bases)) in [("one (A)", &one), ("two (A + B)", &two)]
            .into_iter()
            .enumerate()
        {
            let before = [a.cpu(), b.cpu(), process_cpu("/proc/self/stat")];
            let mut phase = load(&http, bases, &tokens, clients, length).await;
            let after = [a.cpu(), b.cpu(), process_cpu("/proc/self/stat")];
            let gateway_cpu: Vec<Duration> =
                (0..bases.len()).map(|k| after[k] - before[k]).collect();
            report(round, what, &mut phase, &gateway_cpu, after[2] - before[2]);
            served += phase.requests;
            all[i].push(phase);
        }
    }
    let summary = |phases: &mut Vec<Phase>| {
        let requests: usize = phases.iter().map(|p| p.requests).sum();
        let elapsed: Duration = phases.iter().map(|p| p.elapsed).sum();
        let mut latencies: Vec<Duration> = phases
            .iter_mut()
            .flat_map(|p| p.latencies.drain(..))
            .collect();
        (
            per_sec(requests as u64, elapsed),
            Percentiles::of(&mut latencies),
        )
    };
    let (one_rate, one_p) = summary(&mut all[0]);
    let (two_rate, two_p) = summary(&mut all[1]);
    println!(
        "two_instances: one instance {one_rate:.0} req/s, two instances {two_rate:.0} req/s ({:.2}), p50 {} / {} ms, p99 {} / {} ms",
        two_rate / one_rate,
        ms(one_p.p50),
        ms(two_p.p50),
        ms(one_p.p99),
        ms(two_p.p99)
    );
    // Counted after both graceful stops: a result may wait up to 10 ms to share a commit.
    a.stop();
    b.stop();
    let logged = common::outbound_records(&registry).await;
    println!(
        "outbound log: {logged} records in the shared registry after both instances stopped (expected 2 per request: {})",
        2 * served
    );
    registry.close().await;
    pg.drop_now().await;
}

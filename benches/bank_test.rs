//! The fault test ("bank test", docs/RELIABILITY.md). Against PostgreSQL it seeds a fresh database with
//! `qip-pool demo seed`, runs two `qip-pool serve` processes on it, and lets N clients post contributions, each
//! intended posting with its own `Idempotency-Key` and retried with the same key (on either instance) after a
//! network error, a 5xx, a 409 request-in-progress or a 429 until a definitive answer or a deadline. Meanwhile
//! it kills instance A with SIGKILL, restarts PostgreSQL in immediate mode, and kills instance B, restarting
//! each. Afterwards it reads the database: every acknowledged key has exactly one transaction with the
//! acknowledged id and amount, no refused key posted, the pool's contributions grew by the acknowledged sum
//! to the cent, and `qip-pool ledger check` and `qip-pool audit verify` exit 0. It prints a report (errors per
//! fault window, recovery times, throughput) and exits 1 when a check fails.
//!
//! Run: `scripts/with-postgres.sh cargo bench --bench bank_test` (loopback only; hard time cap 3× the run).
//! Tunables (environment): QIP_BANK_CLIENTS (12), QIP_BANK_SECONDS (60), QIP_BANK_REQUEST_DEADLINE (30, seconds
//! one intended posting may take), QIP_BANK_KILL_A_AT (20), QIP_BANK_PG_RESTART_AT (45), QIP_BANK_KILL_B_AT (70)
//! (percent of the run; 0 skips that fault), QIP_BANK_DOWN_MS (2000, how long a killed instance stays down),
//! QIP_BANK_INVALID_PER_MILLE (40, share of deliberately invalid requests, which must be refused).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a fault test fails loudly"
)]

#[path = "common/mod.rs"]
#[expect(
    dead_code,
    reason = "this test runs the service as child processes, not the in-process `Bench`"
)]
mod common;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rand::Rng;
use serde_json::{Value, json};

use common::{env_or, percentile, with_db_name};

const NAMES: [&str; 2] = ["A", "B"];
/// Both instances sign and accept tokens with this key (loopback test only).
const JWT_SECRET: &str = "bank-test-secret-0123456789abcdef-0123456789";

fn main() -> ExitCode {
    let Some(admin_url) = common::admin_url() else {
        eprintln!(
            "bank_test: needs PostgreSQL; run `scripts/with-postgres.sh cargo bench --bench bank_test` \
             (tunables: QIP_BANK_CLIENTS, QIP_BANK_SECONDS; see docs/RELIABILITY.md)"
        );
        return ExitCode::SUCCESS;
    };
    let settings = RunSettings::from_env();
    let started = Instant::now();
    let db_name = format!("qip_bank_{}", std::process::id());
    let log_dir = std::env::temp_dir().join(format!("qip-bank-{}", std::process::id()));
    std::fs::create_dir_all(&log_dir).unwrap();
    let harness = Arc::new(Harness {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_qip-pool")),
        db_url: with_db_name(&admin_url, &db_name),
        admin_url,
        db_name,
        ports: [free_loopback_port(), free_loopback_port()],
        log_dir,
        pool_size: settings.clients as u32 + 4,
        children: Mutex::new([None, None]),
        torn_down: AtomicBool::new(false),
    });
    let _guard = TeardownOnDrop(harness.clone());
    let finished = Arc::new(AtomicBool::new(false));
    spawn_watchdog(harness.clone(), finished.clone(), started, settings.hard_cap());

    let ok = run(&harness, &settings);
    finished.store(true, Ordering::SeqCst);
    harness.teardown();
    if ok {
        if std::env::var_os("QIP_BANK_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&harness.log_dir);
        }
        println!(
            "bank_test: all checks passed ({:.0} s in all)",
            started.elapsed().as_secs_f64()
        );
        ExitCode::SUCCESS
    } else {
        println!(
            "bank_test: CHECKS FAILED; instance logs kept in {}",
            harness.log_dir.display()
        );
        ExitCode::FAILURE
    }
}

/// What the environment asked for.
struct RunSettings {
    clients: usize,
    seconds: u64,
    request_deadline: Duration,
    down: Duration,
    invalid_per_mille: u32,
    faults: Vec<(f64, Fault)>,
}

impl RunSettings {
    fn from_env() -> Self {
        let seconds = env_or("QIP_BANK_SECONDS", 60).max(5);
        let at = |name: &str, default: u64| -> Option<f64> {
            let percent = env_or(name, default).min(99);
            (percent > 0).then(|| seconds as f64 * percent as f64 / 100.0)
        };
        let mut faults: Vec<(f64, Fault)> = [
            (at("QIP_BANK_KILL_A_AT", 20), Fault::Kill(0)),
            (at("QIP_BANK_PG_RESTART_AT", 45), Fault::PostgresRestart),
            (at("QIP_BANK_KILL_B_AT", 70), Fault::Kill(1)),
        ]
        .into_iter()
        .filter_map(|(t, f)| t.map(|t| (t, f)))
        .collect();
        faults.sort_by(|a, b| a.0.total_cmp(&b.0));
        Self {
            clients: env_or("QIP_BANK_CLIENTS", 12).max(1) as usize,
            seconds,
            request_deadline: Duration::from_secs(env_or("QIP_BANK_REQUEST_DEADLINE", 30).max(1)),
            down: Duration::from_millis(env_or("QIP_BANK_DOWN_MS", 2000)),
            invalid_per_mille: env_or("QIP_BANK_INVALID_PER_MILLE", 40).min(1000) as u32,
            faults,
        }
    }

    /// The whole test, setup and checks included, never runs longer than this.
    fn hard_cap(&self) -> Duration {
        Duration::from_secs((3 * self.seconds).max(self.seconds + self.request_deadline.as_secs() + 60))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL instance 0 (A) or 1 (B), restart it after `down`.
    Kill(usize),
    /// `pg_ctl restart -m immediate`: every connection drops, crash recovery on start.
    PostgresRestart,
}

impl Fault {
    fn label(self) -> String {
        match self {
            Fault::Kill(i) => format!("kill -9 instance {}", NAMES[i]),
            Fault::PostgresRestart => "PostgreSQL immediate restart".to_owned(),
        }
    }
}

/// The two service processes, their database and their logs; `teardown` stops everything once.
struct Harness {
    bin: PathBuf,
    admin_url: String,
    db_name: String,
    db_url: String,
    ports: [u16; 2],
    log_dir: PathBuf,
    pool_size: u32,
    children: Mutex<[Option<Child>; 2]>,
    torn_down: AtomicBool,
}

impl Harness {
    /// The service binary with this test's configuration and nothing inherited that could change it.
    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        for (name, _) in std::env::vars() {
            if name.starts_with("QIP__") || name == "RUST_LOG" {
                cmd.env_remove(name);
            }
        }
        cmd.env("QIP__DATABASE__URL", &self.db_url)
            .env("QIP__DATABASE__POOL_SIZE", self.pool_size.to_string())
            .env("QIP__AUTH__JWT_SECRET", JWT_SECRET)
            .env("QIP__AUTH__AUTH_RATE_LIMIT_PER_MINUTE", "1000000")
            .env("QIP__AUTH__ACCESS_TOKEN_TTL_SECS", "86400")
            .env("QIP__LOG__FILTER", "warn")
            .stdin(Stdio::null());
        cmd
    }

    fn base(&self, instance: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[instance])
    }

    /// Runs a CLI command to completion; returns whether it exited 0 and its output.
    fn cli(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.command().args(args).output().expect("run qip-pool");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    /// Starts `qip-pool serve --no-migrate` as instance `i`, its output appended to the instance's log.
    fn spawn(&self, i: usize) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.join(format!("instance-{}.log", NAMES[i])))
            .unwrap();
        let child = self
            .command()
            .args(["serve", "--no-migrate"])
            .env("QIP__SERVER__BIND", format!("127.0.0.1:{}", self.ports[i]))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start qip-pool serve");
        self.children.lock().unwrap()[i] = Some(child);
    }

    /// SIGKILL, then reap.
    fn kill(&self, i: usize) {
        if let Some(mut child) = self.children.lock().unwrap()[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Polls `/readyz` until it answers 200 (database reachable) or `within` passes.
    fn wait_ready(&self, i: usize, within: Duration) -> bool {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let until = Instant::now() + within;
        while Instant::now() < until {
            let ready = client
                .get(format!("{}/readyz", self.base(i)))
                .send()
                .is_ok_and(|res| res.status().is_success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Kills both instances and drops the database; runs once.
    fn teardown(&self) {
        if self.torn_down.swap(true, Ordering::SeqCst) {
            return;
        }
        self.kill(0);
        self.kill(1);
        let dropped = PgConnection::establish(&self.admin_url)
            .map_err(|e| e.to_string())
            .and_then(|mut admin| {
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db_name))
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = dropped {
            eprintln!("bank_test: could not drop database {}: {e}", self.db_name);
        }
    }

    fn connect(&self) -> PgConnection {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            match PgConnection::establish(&self.db_url) {
                Ok(conn) => return conn,
                Err(e) if Instant::now() > until => panic!("database connection: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }
}

/// Stops the children and drops the database on a panic, too.
struct TeardownOnDrop(Arc<Harness>);

impl Drop for TeardownOnDrop {
    fn drop(&mut self) {
        self.0.teardown();
    }
}

/// Ends the process, children and database included, if the test overruns its hard cap.
fn spawn_watchdog(harness: Arc<Harness>, finished: Arc<AtomicBool>, started: Instant, cap: Duration) {
    std::thread::spawn(move || {
        while started.elapsed() < cap {
            if finished.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "bank_test: hard time cap of {} s reached; stopping",
            cap.as_secs()
        );
        harness.teardown();
        std::process::exit(3);
    });
}

fn free_loopback_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

#[derive(QueryableByName)]
struct TextValue {
    #[diesel(sql_type = Text)]
    v: String,
}

#[derive(QueryableByName)]
struct IntValue {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

#[derive(QueryableByName)]
struct KeyedTransaction {
    #[diesel(sql_type = Text)]
    idempotency_key: String,
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = BigInt)]
    amount_minor: i64,
}

fn lookup(conn: &mut PgConnection, sql: &str) -> String {
    diesel::sql_query(sql)
        .get_result::<TextValue>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .v
}

/// The pool's contributions so far, in cents (the contributor accounts' balances are their negation).
fn contributed_minor(conn: &mut PgConnection, pool_id: &str) -> i64 {
    diesel::sql_query(
        "SELECT COALESCE(-SUM(balance_minor), 0)::bigint AS v FROM ledger_balances \
         WHERE pool_id = $1 AND kind = 'contributor'",
    )
    .bind::<Text, _>(pool_id)
    .get_result::<IntValue>(conn)
    .unwrap()
    .v
}

/// What the service is given to work with, shared by the clients.
struct Target {
    bases: [String; 2],
    token: String,
    pool_id: String,
    donor_id: String,
}

/// One try of one request, timed from the run's start.
#[derive(Debug, Clone)]
struct Attempt {
    sent: f64,
    /// When the answer (or the network error) arrived.
    answered: f64,
    instance: usize,
    result: AttemptResult,
    /// For an answer that is not definitive: what it was (status and problem type, or the network error).
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptResult {
    Success,
    Refused,
    InProgress,
    Throttled,
    ServerError,
    Network,
}

#[derive(Debug, Clone)]
enum Outcome {
    Acknowledged { tx_id: String, amount_minor: i64 },
    Failed { status: u16, problem: String },
    Unknown { last: String },
}

/// One intended posting and what became of it.
#[derive(Debug, Clone)]
struct KeyRecord {
    key: String,
    amount_minor: i64,
    valid: bool,
    latency: Duration,
    outcome: Outcome,
}

fn format_minor(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn parse_minor(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
    let frac = format!("{frac:0<2}");
    Some(whole.parse::<i64>().ok()? * 100 + frac.get(..2)?.parse::<i64>().ok()?)
}

/// One client: intended postings one after another until `run_end`, each retried with its key.
fn run_client(
    c: usize,
    target: &Target,
    settings: &RunSettings,
    t0: Instant,
    run_end: Instant,
) -> (Vec<KeyRecord>, Vec<Attempt>) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let mut rng = rand::rng();
    let mut keys = Vec::new();
    let mut attempts = Vec::new();
    let mut n = 0usize;
    while Instant::now() < run_end {
        n += 1;
        let key = format!("bank-{c}-{n}");
        let amount_minor = rng.random_range(1..=100_000i64);
        let valid = rng.random_range(0..1000) >= settings.invalid_per_mille;
        // An invalid request names a contributor that does not exist: it must be refused and post nothing.
        let contributor = if valid {
            target.donor_id.clone()
        } else {
            uuid::Uuid::now_v7().to_string()
        };
        let body = json!({"contributor_organization_id": contributor, "amount": format_minor(amount_minor),
                          "currency": "USD", "reference": "BANK-TEST"});
        let path = format!("/api/v1/pools/{}/contributions", target.pool_id);
        let first = Instant::now();
        let deadline = first + settings.request_deadline;
        let mut instance = (c + n) % 2;
        let mut backoff = Duration::from_millis(50);
        let outcome = loop {
            let sent = t0.elapsed().as_secs_f64();
            let response = client
                .post(format!("{}{path}", target.bases[instance]))
                .bearer_auth(&target.token)
                .header("Idempotency-Key", &key)
                .json(&body)
                .send();
            let (result, wait, last) = match response {
                Err(e) => (
                    AttemptResult::Network,
                    backoff,
                    format!("network: {}", root_cause(&e)),
                ),
                Ok(res) => {
                    let status = res.status().as_u16();
                    let retry_after = res
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(1)));
                    let text = res.text().unwrap_or_default();
                    let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    let problem = value["type"].as_str().unwrap_or_default().to_owned();
                    if (200..300).contains(&status) {
                        attempts.push(Attempt {
                            sent,
                            answered: t0.elapsed().as_secs_f64(),
                            instance,
                            result: AttemptResult::Success,
                            error: None,
                        });
                        let tx_id = value["id"].as_str().unwrap_or_default().to_owned();
                        let acked = value["amount"].as_str().and_then(parse_minor).unwrap_or(-1);
                        break Outcome::Acknowledged {
                            tx_id,
                            amount_minor: acked,
                        };
                    }
                    let wait = backoff.max(retry_after.unwrap_or_default());
                    if status == 409 && problem.ends_with("request-in-progress") {
                        (AttemptResult::InProgress, wait, format!("409 {problem}"))
                    } else if status == 429 {
                        (AttemptResult::Throttled, wait, format!("429 {problem}"))
                    } else if status >= 500 {
                        (AttemptResult::ServerError, wait, format!("{status} {problem}"))
                    } else {
                        attempts.push(Attempt {
                            sent,
                            answered: t0.elapsed().as_secs_f64(),
                            instance,
                            result: AttemptResult::Refused,
                            error: None,
                        });
                        break Outcome::Failed { status, problem };
                    }
                }
            };
            attempts.push(Attempt {
                sent,
                answered: t0.elapsed().as_secs_f64(),
                instance,
                result,
                error: Some(format!("instance {}: {last}", NAMES[instance])),
            });
            if Instant::now() + wait >= deadline {
                break Outcome::Unknown { last };
            }
            std::thread::sleep(wait);
            backoff = (backoff * 2).min(Duration::from_secs(1));
            // Retry on the other instance: the one that failed may be down.
            instance = 1 - instance;
        };
        keys.push(KeyRecord {
            key,
            amount_minor,
            valid,
            latency: first.elapsed(),
            outcome,
        });
    }
    (keys, attempts)
}

/// The innermost cause of a failed request ("Connection refused", "operation timed out", ...).
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    match text.split_once(" (os error") {
        Some((head, _)) => head.to_owned(),
        None => text,
    }
}

/// What the fault thread did, in seconds from the run's start.
#[derive(Debug, Clone)]
struct FaultRecord {
    fault: Fault,
    at: f64,
    /// When the killed instance answered `/readyz` again, or `pg_ctl restart` returned.
    back_at: Option<f64>,
    note: String,
    /// What PostgreSQL logged during its restart (shutdown, crash recovery, ready).
    log: Vec<String>,
}

fn run_faults(harness: &Harness, settings: &RunSettings, t0: Instant) -> Vec<FaultRecord> {
    let pg = std::env::var("QIP_TEST_PGDATA")
        .ok()
        .zip(std::env::var("QIP_TEST_PG_CTL").ok());
    let mut records = Vec::new();
    for &(at, fault) in &settings.faults {
        let due = t0 + Duration::from_secs_f64(at);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let at = t0.elapsed().as_secs_f64();
        let record = match fault {
            Fault::Kill(i) => {
                harness.kill(i);
                std::thread::sleep(settings.down);
                harness.spawn(i);
                let ready = harness.wait_ready(i, Duration::from_secs(60));
                FaultRecord {
                    fault,
                    at,
                    back_at: ready.then(|| t0.elapsed().as_secs_f64()),
                    note: if ready {
                        String::new()
                    } else {
                        "did not become ready within 60 s".into()
                    },
                    log: Vec::new(),
                }
            }
            Fault::PostgresRestart => match &pg {
                None => FaultRecord {
                    fault,
                    at,
                    back_at: None,
                    note: "skipped: QIP_TEST_PGDATA / QIP_TEST_PG_CTL not set (use scripts/with-postgres.sh)"
                        .into(),
                    log: Vec::new(),
                },
                Some((data, pg_ctl)) => {
                    let log = format!("{data}/server.log");
                    let log_start = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
                    let args = [
                        "-D",
                        data,
                        "-w",
                        "-t",
                        "60",
                        "-l",
                        &log,
                        "restart",
                        "-m",
                        "immediate",
                    ];
                    // The cluster belongs to `postgres`; as root, act as that user.
                    let is_root = Command::new("id")
                        .arg("-u")
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
                        .unwrap_or(false);
                    let mut cmd = if is_root {
                        let mut c = Command::new("runuser");
                        c.args(["-u", "postgres", "--", pg_ctl]);
                        c
                    } else {
                        Command::new(pg_ctl)
                    };
                    let out = cmd.args(args).stdin(Stdio::null()).output();
                    let ok = out.as_ref().map(|o| o.status.success()).unwrap_or(false);
                    FaultRecord {
                        fault,
                        at,
                        back_at: ok.then(|| t0.elapsed().as_secs_f64()),
                        note: match out {
                            Ok(o) if o.status.success() => String::new(),
                            Ok(o) => format!("pg_ctl failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
                            Err(e) => format!("pg_ctl did not run: {e}"),
                        },
                        log: std::fs::read(&log)
                            .map(|bytes| {
                                String::from_utf8_lossy(bytes.get(log_start..).unwrap_or_default())
                                    .lines()
                                    .filter(|l| l.contains(" LOG: "))
                                    .map(str::to_owned)
                                    .collect()
                            })
                            .unwrap_or_default(),
                    }
                }
            },
        };
        records.push(record);
    }
    records
}

/// Counts of attempts sent within a time window.
#[derive(Debug, Default)]
struct WindowCounts {
    attempts: usize,
    success: usize,
    server_error: usize,
    network: usize,
    in_progress: usize,
}

fn window(attempts: &[Attempt], from: f64, to: f64) -> WindowCounts {
    let mut w = WindowCounts::default();
    for a in attempts.iter().filter(|a| a.answered >= from && a.answered < to) {
        w.attempts += 1;
        match a.result {
            AttemptResult::Success => w.success += 1,
            AttemptResult::ServerError => w.server_error += 1,
            AttemptResult::Network => w.network += 1,
            AttemptResult::InProgress => w.in_progress += 1,
            AttemptResult::Refused | AttemptResult::Throttled => {}
        }
    }
    w
}

/// Non-definitive answers by kind, most frequent first.
fn tally(attempts: &[&Attempt]) -> Vec<(String, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for label in attempts.iter().filter_map(|a| a.error.as_deref()) {
        *counts.entry(label).or_default() += 1;
    }
    let mut sorted: Vec<(String, usize)> = counts.into_iter().map(|(l, n)| (l.to_owned(), n)).collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    sorted
}

fn describe(w: &WindowCounts, seconds: f64) -> String {
    format!(
        "{:>5} attempts, {:>5} 2xx ({:>5.1}/s), {:>3} 5xx, {:>3} network errors, {:>3} 409 in-progress",
        w.attempts,
        w.success,
        w.success as f64 / seconds.max(1e-3),
        w.server_error,
        w.network,
        w.in_progress
    )
}

/// The whole test; returns whether every check passed.
fn run(harness: &Harness, settings: &RunSettings) -> bool {
    println!(
        "bank_test: {} clients, {} s, two instances on 127.0.0.1:{} and :{}, database {}",
        settings.clients, settings.seconds, harness.ports[0], harness.ports[1], harness.db_name
    );
    {
        let mut admin = PgConnection::establish(&harness.admin_url).expect("admin connection");
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                harness.db_name
            ))
            .expect("drop leftover database");
        admin
            .batch_execute(&format!("CREATE DATABASE {}", harness.db_name))
            .expect("create database");
    }
    for args in [&["migrate"][..], &["demo", "seed"][..]] {
        let (code, text) = harness.cli(args);
        assert_eq!(code, Some(0), "qip-pool {}: {text}", args.join(" "));
    }
    let mut conn = harness.connect();
    let finance_id = lookup(&mut conn, "SELECT id AS v FROM users WHERE username = 'finance'");
    let pool_id = lookup(&mut conn, "SELECT id AS v FROM pools WHERE code = 'XYQ'");
    let donor_id = lookup(
        &mut conn,
        "SELECT id AS v FROM organizations WHERE code = 'DONOR-A'",
    );
    let contributed_before = contributed_minor(&mut conn, &pool_id);
    drop(conn);

    harness.spawn(0);
    harness.spawn(1);
    for (i, name) in NAMES.iter().enumerate() {
        assert!(
            harness.wait_ready(i, Duration::from_secs(60)),
            "instance {name} did not become ready; see {}",
            harness.log_dir.display()
        );
    }
    let login: Value = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/auth/login", harness.base(0)))
        .json(&json!({"username": "finance", "password": qip_pool::features::demo::DEMO_PASSWORD}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let target = Target {
        bases: [harness.base(0), harness.base(1)],
        token: login["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("finance login: {login}"))
            .to_owned(),
        pool_id: pool_id.clone(),
        donor_id,
    };

    let t0 = Instant::now();
    let run_end = t0 + Duration::from_secs(settings.seconds);
    let (faults, per_client) = std::thread::scope(|s| {
        let faults = s.spawn(|| run_faults(harness, settings, t0));
        let clients: Vec<_> = (0..settings.clients)
            .map(|c| {
                let target = &target;
                s.spawn(move || run_client(c, target, settings, t0, run_end))
            })
            .collect();
        let per_client: Vec<_> = clients.into_iter().map(|h| h.join().unwrap()).collect();
        (faults.join().unwrap(), per_client)
    });
    let elapsed = t0.elapsed().as_secs_f64();
    let mut keys = Vec::new();
    let mut attempts = Vec::new();
    for (k, a) in per_client {
        keys.extend(k);
        attempts.extend(a);
    }
    attempts.sort_by(|a, b| a.sent.total_cmp(&b.sent));

    // The checks, straight from the database.
    let mut conn = harness.connect();
    let contributed_after = contributed_minor(&mut conn, &pool_id);
    let rows: Vec<KeyedTransaction> = diesel::sql_query(
        "SELECT idempotency_key, id, amount_minor FROM ledger_transactions \
         WHERE pool_id = $1 AND kind = 'contribution' AND idempotency_key LIKE $2",
    )
    .bind::<Text, _>(&pool_id)
    .bind::<Text, _>(format!("{finance_id}:bank-%"))
    .load(&mut conn)
    .unwrap();
    drop(conn);
    let mut posted: HashMap<String, Vec<(String, i64)>> = HashMap::new();
    for row in rows {
        let key = row
            .idempotency_key
            .split_once(':')
            .map(|(_, k)| k.to_owned())
            .unwrap_or_default();
        posted.entry(key).or_default().push((row.id, row.amount_minor));
    }
    let mut problems: Vec<String> = Vec::new();
    let (mut acknowledged, mut failed, mut unknown) = (0usize, 0usize, 0usize);
    let (mut lost, mut duplicated, mut refused_valid) = (0usize, 0usize, 0usize);
    let (mut acked_sum, mut unknown_posted_sum) = (0i64, 0i64);
    let mut unknown_lines = Vec::new();
    for k in &keys {
        let found = posted.get(&k.key).map(Vec::as_slice).unwrap_or_default();
        if found.len() > 1 {
            duplicated += 1;
            problems.push(format!("{}: {} transactions {found:?}", k.key, found.len()));
        }
        match &k.outcome {
            Outcome::Acknowledged { tx_id, amount_minor } => {
                acknowledged += 1;
                acked_sum += k.amount_minor;
                if !k.valid {
                    problems.push(format!("{}: an invalid request was acknowledged", k.key));
                }
                if *amount_minor != k.amount_minor {
                    problems.push(format!(
                        "{}: sent {} but the answer says {}",
                        k.key,
                        format_minor(k.amount_minor),
                        format_minor(*amount_minor)
                    ));
                }
                match found {
                    [] => {
                        lost += 1;
                        problems.push(format!(
                            "{}: acknowledged as {tx_id} but not in the ledger",
                            k.key
                        ));
                    }
                    [(id, amount)] if id != tx_id || *amount != k.amount_minor => problems.push(format!(
                        "{}: acknowledged {tx_id} {} but the ledger holds {id} {}",
                        k.key,
                        format_minor(k.amount_minor),
                        format_minor(*amount)
                    )),
                    _ => {}
                }
            }
            Outcome::Failed { status, problem } => {
                failed += 1;
                if k.valid {
                    refused_valid += 1;
                    problems.push(format!(
                        "{}: a valid request was refused: {status} {problem}",
                        k.key
                    ));
                }
                if !found.is_empty() {
                    problems.push(format!("{}: refused ({status}) but posted {found:?}", k.key));
                }
            }
            Outcome::Unknown { last } => {
                unknown += 1;
                unknown_posted_sum += found.iter().map(|(_, a)| a).sum::<i64>();
                unknown_lines.push(format!(
                    "    {} ({}): last answer `{last}`; database: {}",
                    k.key,
                    format_minor(k.amount_minor),
                    if found.is_empty() {
                        "not posted".to_owned()
                    } else {
                        format!("posted as {found:?}")
                    }
                ));
            }
        }
    }
    let issued: std::collections::HashSet<&str> = keys.iter().map(|k| k.key.as_str()).collect();
    for key in posted.keys().filter(|k| !issued.contains(k.as_str())) {
        problems.push(format!("{key}: in the ledger but never sent"));
    }
    let delta = contributed_after - contributed_before;
    if delta != acked_sum + unknown_posted_sum {
        problems.push(format!(
            "contributions grew by {} but acknowledged postings sum to {} (+{} from unknown-outcome keys)",
            format_minor(delta),
            format_minor(acked_sum),
            format_minor(unknown_posted_sum)
        ));
    }
    let (ledger_code, ledger_out) = harness.cli(&["ledger", "check"]);
    let (audit_code, audit_out) = harness.cli(&["audit", "verify"]);
    if ledger_code != Some(0) {
        problems.push(format!(
            "qip-pool ledger check exited {ledger_code:?}: {ledger_out}"
        ));
    }
    if audit_code != Some(0) {
        problems.push(format!(
            "qip-pool audit verify exited {audit_code:?}: {audit_out}"
        ));
    }

    // The report.
    let mut latencies: Vec<Duration> = keys
        .iter()
        .filter(|k| matches!(k.outcome, Outcome::Acknowledged { .. }))
        .map(|k| k.latency)
        .collect();
    latencies.sort();
    let count = |r: AttemptResult| attempts.iter().filter(|a| a.result == r).count();
    println!(
        "\nbank_test report ({} clients, {elapsed:.1} s of load)",
        settings.clients
    );
    println!(
        "  intended postings {:>6}   acknowledged {acknowledged}   definitely failed {failed} (deliberately invalid {})   unknown {unknown}",
        keys.len(),
        keys.iter().filter(|k| !k.valid).count()
    );
    println!(
        "  HTTP attempts     {:>6}   2xx {}   refused 4xx {}   5xx {}   network errors {}   409 in-progress {}   429 {}",
        attempts.len(),
        count(AttemptResult::Success),
        count(AttemptResult::Refused),
        count(AttemptResult::ServerError),
        count(AttemptResult::Network),
        count(AttemptResult::InProgress),
        count(AttemptResult::Throttled)
    );
    println!(
        "  lost (acknowledged, not in the ledger) {lost}   duplicated (key with >1 transaction) {duplicated}   valid requests refused {refused_valid}"
    );
    println!(
        "  contributions grew by {}; acknowledged sum {}; from unknown-outcome keys {}",
        format_minor(delta),
        format_minor(acked_sum),
        format_minor(unknown_posted_sum)
    );
    println!(
        "  throughput {:.1} acknowledged postings/s ({:.1} attempts/s); time to a definitive answer p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        acknowledged as f64 / elapsed,
        attempts.len() as f64 / elapsed,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "  qip-pool ledger check: exit {}   qip-pool audit verify: exit {}",
        ledger_code.map_or("signal".into(), |c| c.to_string()),
        audit_code.map_or("signal".into(), |c| c.to_string())
    );
    println!("  load by phase (attempts counted by the time their answer or error arrived):");
    let mut bounds: Vec<(f64, String)> = vec![(0.0, "start".to_owned())];
    bounds.extend(
        faults
            .iter()
            .enumerate()
            .map(|(i, f)| (f.at, format!("fault {} ({})", i + 1, f.fault.label()))),
    );
    for (i, (from, label)) in bounds.iter().enumerate() {
        let to = bounds.get(i + 1).map_or(elapsed, |b| b.0);
        println!(
            "    {:>5.1}–{:>5.1} s after {label}: {}",
            from,
            to,
            describe(&window(&attempts, *from, to), to - from)
        );
        let in_phase: Vec<&Attempt> = attempts
            .iter()
            .filter(|a| a.answered >= *from && a.answered < to)
            .collect();
        for (label, n) in tally(&in_phase) {
            println!("        {n:>5} × {label}");
        }
    }
    for (idx, f) in faults.iter().enumerate() {
        let next = faults.get(idx + 1).map_or(elapsed, |n| n.at);
        println!(
            "  fault {} at {:.1} s: {}{}",
            idx + 1,
            f.at,
            f.fault.label(),
            if f.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", f.note)
            }
        );
        let ms = |t: f64| format!("+{:.0} ms", (t - f.at) * 1e3);
        let is_error = |a: &Attempt| matches!(a.result, AttemptResult::ServerError | AttemptResult::Network);
        // Recovery: from the fault to the first 2xx, arriving, for a request sent after the fault's first error
        // arrived (requests wait for a database connection during an outage, so the send time would flatter).
        let first_error = attempts
            .iter()
            .filter(|a| a.answered >= f.at && is_error(a))
            .min_by(|a, b| a.answered.total_cmp(&b.answered));
        let recovered = first_error.and_then(|e| {
            attempts
                .iter()
                .filter(|a| a.sent > e.answered && a.result == AttemptResult::Success)
                .min_by(|a, b| a.answered.total_cmp(&b.answered))
        });
        let last_error = attempts
            .iter()
            .filter(|a| a.answered >= f.at && a.answered < next && is_error(a))
            .max_by(|a, b| a.answered.total_cmp(&b.answered));
        let mut line = format!(
            "    first error at {}; recovered (first 2xx for a request sent after that) at {}; last error before the next phase at {}",
            first_error.map_or("none".into(), |a| ms(a.answered)),
            match (first_error, recovered) {
                (None, _) => "n/a".to_owned(),
                (Some(_), None) => "never".to_owned(),
                (Some(_), Some(a)) => ms(a.answered),
            },
            last_error.map_or("none".into(), |a| ms(a.answered))
        );
        match f.fault {
            Fault::Kill(i) => {
                let first_from = attempts
                    .iter()
                    .find(|a| a.sent >= f.at && a.instance == i && a.result == AttemptResult::Success);
                line += &format!(
                    "\n    {} restarted and ready at {}; its first 2xx at {}",
                    NAMES[i],
                    f.back_at.map_or("never".into(), ms),
                    first_from.map_or("never".into(), |a| ms(a.sent))
                );
            }
            Fault::PostgresRestart => {
                line += &format!(
                    "\n    pg_ctl restart -m immediate returned at {}",
                    f.back_at.map_or("never".into(), ms)
                );
            }
        }
        println!("{line}");
        for log_line in &f.log {
            println!("      {log_line}");
        }
    }
    let server_errors: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.result == AttemptResult::ServerError)
        .collect();
    if !server_errors.is_empty() {
        println!("  every 5xx (sent → answered, instance, answer):");
        for a in server_errors.iter().take(60) {
            println!(
                "    {:>7.3} → {:>7.3} s  {}",
                a.sent,
                a.answered,
                a.error.as_deref().unwrap_or_default()
            );
        }
        if server_errors.len() > 60 {
            println!("    … and {} more", server_errors.len() - 60);
        }
    }
    if !unknown_lines.is_empty() {
        println!("  unknown-outcome keys (no definitive answer within the request deadline):");
        for line in &unknown_lines {
            println!("{line}");
        }
    }
    for f in &faults {
        if !f.note.is_empty() && !f.note.starts_with("skipped") {
            problems.push(format!("fault `{}`: {}", f.fault.label(), f.note));
        }
    }
    if acknowledged == 0 {
        problems.push("nothing was acknowledged".into());
    }
    if problems.is_empty() {
        println!(
            "  checks: every acknowledged posting exactly once, no refused key posted, sums exact, ledger and audit trail verified"
        );
        true
    } else {
        println!("  FAILED checks ({}):", problems.len());
        for p in problems.iter().take(50) {
            println!("    {p}");
        }
        false
    }
}

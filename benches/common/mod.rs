//! Shared plumbing of the HTTP-vs-pgbench benchmarks: settings from the environment, a throwaway database, the
//! real server on a random port, latency percentiles and running pgbench.

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qip_pool::app::{AppState, build_server};
use qip_pool::config::{Secret, Settings};
use qip_pool::db::{self, DbPool};

pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The PostgreSQL server to benchmark against, or `None` (the caller explains how to get one).
pub fn admin_url() -> Option<String> {
    std::env::var("QIP_BENCH_DATABASE_URL")
        .ok()
        .or_else(|| std::env::var("QIP_TEST_DATABASE_URL").ok())
        .filter(|u| u.starts_with("postgres"))
}

pub fn with_db_name(url: &str, name: &str) -> String {
    let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match url[scheme_end..].find('/') {
        Some(i) => &url[..scheme_end + i],
        None => url,
    };
    format!("{base}/{name}")
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The real service on a random loopback port over `settings`: pool, migrations, the first administrator
/// (`admin` / `ADMIN_PASSWORD`), then the server on its own thread. Returns the pool, the base URL and the
/// server's handle (to stop it).
pub fn serve(settings: Settings) -> (DbPool, String, ServerHandle) {
    let pool = db::build_pool(&settings.database).unwrap();
    db::run_migrations(&mut pool.get().unwrap()).unwrap();
    let auth = qip_pool::features::identity::AuthRuntime::new(&settings.auth).unwrap();
    qip_pool::features::identity::service::bootstrap_admin(
        &mut pool.get().unwrap(),
        &auth,
        "admin",
        ADMIN_PASSWORD,
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let state = web::Data::new(AppState::new(settings, pool.clone()).unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = build_server(state, listener).unwrap();
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        })
    });
    let handle = rx.recv().unwrap();
    (pool, base, handle)
}

/// A fresh database on the server, the real service on it, and the first administrator.
pub struct Bench {
    pub name: String,
    pub url: String,
    pub base: String,
    pub pool: DbPool,
    pub admin: PgConnection,
    handle: ServerHandle,
}

pub const ADMIN_PASSWORD: &str = "bench-keeper-passphrase-2026";

impl Bench {
    pub fn start(admin_url: &str, prefix: &str, clients: usize) -> Bench {
        let name = format!("{prefix}_{}", std::process::id());
        let mut admin = PgConnection::establish(admin_url).expect("admin connection");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let url = with_db_name(admin_url, &name);
        // `QIP__…` variables apply as they do to `serve` (e.g. QIP__LEDGER__GROUP_COMMIT_WRITERS=1); the database,
        // its pool size, the signing key and the sign-in rate limit below are the bench's own.
        let mut settings = Settings::load_from(None, std::env::vars()).unwrap();
        settings.database.url = Secret::new(url.clone());
        settings.database.pool_size = (clients as u32 + 4).max(8);
        settings.auth.jwt_secret = Secret::new("bench-secret-0123456789abcdef-0123456789");
        settings.auth.auth_rate_limit_per_minute = 1_000_000;
        let (pool, base, handle) = serve(settings);
        Bench {
            name,
            url,
            base,
            pool,
            admin,
            handle,
        }
    }

    /// The user's side of account creation: choose `password` with the setup token the administrator got.
    pub fn set_password(&self, created_user: &serde_json::Value, password: &str) {
        let res = reqwest::blocking::Client::new()
            .post(format!("{}/api/v1/auth/setup-password", self.base))
            .json(&serde_json::json!({"token": created_user["setup_token"], "password": password}))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 204, "setup password");
    }

    /// A privileged hat's grant waits for a second administrator: confirm it from the console, as a mission
    /// with one administrator does.
    pub fn confirm_if_pending(&self, grant_answer: &serde_json::Value) {
        if grant_answer["status"] == "pending" {
            qip_pool::features::identity::service::confirm_hat_grant_from_console(
                &mut self.pool.get().unwrap(),
                grant_answer["id"].as_str().unwrap(),
                Some("bench"),
            )
            .unwrap();
        }
    }

    /// Runs `pgbench -M prepared` with `script` at `clients` for `seconds`; returns transactions per second.
    pub fn pgbench(&self, script: &str, clients: usize, seconds: u64, vars: &[(&str, &str)]) -> f64 {
        let file = std::env::temp_dir().join(format!("{}-{}.sql", self.name, std::process::id()));
        std::fs::write(&file, script).unwrap();
        let port_host = self.url.split('@').nth(1).unwrap_or("127.0.0.1:5432/x");
        let (hostport, _) = port_host.split_once('/').unwrap_or((port_host, ""));
        let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
        let mut cmd = std::process::Command::new("pgbench");
        cmd.args(["-n", "-M", "prepared", "-h", host, "-p", port, "-U", "postgres"])
            .args(["-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string()])
            .args(["-f", file.to_str().unwrap()]);
        for (k, v) in vars {
            cmd.args(["-D", &format!("{k}={v}")]);
        }
        let out = cmd.arg(&self.name).output().expect("pgbench on PATH");
        let _ = std::fs::remove_file(&file);
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find(|l| l.starts_with("tps ="))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "pgbench failed:\n{text}\n{}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    }

    /// Stops the server and removes the database.
    pub fn finish(mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(true));
        drop(self.pool);
        let _ = self
            .admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

/// The service's API over HTTP for a bench's set-up: JSON in, JSON out; any failure fails the bench.
pub struct Api {
    pub client: reqwest::blocking::Client,
    pub base: String,
}

impl Api {
    /// `method path` with `body` (and `token` as bearer); the answer's JSON (null when it has none).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().unwrap_or(serde_json::Value::Null)
    }

    /// Signs in; the access token.
    pub fn login(&self, user: &str, password: &str) -> String {
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            serde_json::json!({"username": user, "password": password}),
        )["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates an organisation (as the administrator `admin_token`); its id.
    pub fn org(&self, admin_token: &str, code: &str, kind: &str) -> String {
        self.call(
            "POST",
            "/api/v1/organizations",
            Some(admin_token),
            serde_json::json!({"code": code, "name": code, "kind": kind}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A bare double-entry ledger beside the service's tables, for the baseline of the issue.
pub const BARE_LEDGER_SCHEMA: &str = "
CREATE TABLE bare_balances (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL);
CREATE TABLE bare_transactions (id TEXT PRIMARY KEY, amount BIGINT NOT NULL, created_at TIMESTAMP NOT NULL);
CREATE TABLE bare_entries (transaction_id TEXT NOT NULL, leg INTEGER NOT NULL, account_id INTEGER NOT NULL, amount BIGINT NOT NULL,
    PRIMARY KEY (transaction_id, leg));
INSERT INTO bare_balances SELECT i, 0 FROM generate_series(1, 100) AS s(i);
ANALYZE;
";

/// One transfer between the two accounts of a random pair (`pairs` = 1: always the same two rows).
pub const BARE_TRANSFER: &str = r#"\set pair random(1, :pairs)
\set debit 2 * :pair - 1
\set credit 2 * :pair
BEGIN;
SELECT balance FROM bare_balances WHERE id IN (:debit, :credit) ORDER BY id FOR UPDATE;
INSERT INTO bare_transactions (id, amount, created_at) VALUES (gen_random_uuid()::text, 12550, now()) RETURNING id AS tx_id \gset
INSERT INTO bare_entries (transaction_id, leg, account_id, amount) VALUES (:tx_id, 0, :debit, -12550);
INSERT INTO bare_entries (transaction_id, leg, account_id, amount) VALUES (:tx_id, 1, :credit, 12550);
UPDATE bare_balances SET balance = balance - 12550 WHERE id = :debit;
UPDATE bare_balances SET balance = balance + 12550 WHERE id = :credit;
COMMIT;
"#;

/// CPU time (user + system) of process `pid` ("self": this one) so far, in ms.
fn process_cpu_ms(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    ticks * 10.0 // USER_HZ is 100 on Linux
}

/// CPU time so far of the PostgreSQL backends connected to database `db` (their command line names it), in ms.
fn backends_cpu_ms(db: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(db))
                .unwrap_or(false)
        })
        .map(|pid| process_cpu_ms(&pid))
        .sum()
}

/// CPU time the whole machine has spent busy so far (every core; user, nice, system, interrupts and steal, not
/// idle or I/O wait), in ms: what a run costs, counting processes that exit before it ends (pgbench's backends).
pub fn machine_busy_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(cpu) = stat.lines().next() else {
        return 0.0;
    };
    // cpu user nice system idle iowait irq softirq steal ...
    let fields: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| fields.get(i)).sum();
    busy * 10.0 // USER_HZ is 100 on Linux
}

/// CPU time so far, in ms, of this process (HTTP clients, in-process server, sealer), of the PostgreSQL backends
/// of database `db`, and of the whole machine: taken before and after a phase, their differences are its cost.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnapshot {
    pub this_process: f64,
    pub backends: f64,
    pub machine: f64,
}

impl CpuSnapshot {
    pub fn now(db: &str) -> Self {
        Self {
            this_process: process_cpu_ms("self"),
            backends: backends_cpu_ms(db),
            machine: machine_busy_ms(),
        }
    }

    /// Each part's CPU since `before`, per one of `count` transactions: (this process, backends, machine).
    pub fn per_transaction_since(&self, before: &Self, count: f64) -> (f64, f64, f64) {
        let count = count.max(1.0);
        (
            (self.this_process - before.this_process) / count,
            (self.backends - before.backends) / count,
            (self.machine - before.machine) / count,
        )
    }
}

/// Fails the run unless the ledger check passed. What-if runs that switch the database's triggers off
/// (`PGOPTIONS='-c session_replication_role=replica'`: no roll-ups, no foreign-key checks) leave the roll-ups
/// behind the entries by construction; `QIP_BENCH_WHAT_IF_NO_LEDGER_CHECK=1` lets those two kinds of problem
/// pass and says so. Any other problem (a balance, a transaction, a tranche) still fails the run.
pub fn require_ledger_check(report: &qip_pool::features::ledger::check::LedgerReport, when: &str) {
    use qip_pool::features::ledger::check::ProblemKind;
    let what_if = std::env::var_os("QIP_BENCH_WHAT_IF_NO_LEDGER_CHECK").is_some();
    let (rollups, others): (Vec<_>, Vec<_>) = report.problems.iter().partition(|p| {
        matches!(
            p.kind,
            ProblemKind::DailyTotalsMismatch | ProblemKind::MonthlyTotalsMismatch
        )
    });
    if !others.is_empty() || (!rollups.is_empty() && !what_if) {
        panic!("ledger check failed {when}: {:?}", report.problems);
    }
    if !rollups.is_empty() {
        println!(
            "  WHAT-IF RUN: {} roll-up problems {when} let pass by QIP_BENCH_WHAT_IF_NO_LEDGER_CHECK; no other ledger problem",
            rollups.len()
        );
    }
}

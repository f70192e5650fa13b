//! Sign-in flood benchmark (docs/BENCHMARKS.md, issue 14 item 3): other requests' latency and the server's
//! memory while wrong-password sign-ins flood in from many client addresses.
//!
//! The server is the release binary (`qip-pool serve`, what `cargo bench` builds beside this bench) in a
//! process of its own, configured as an operator would: `QIP__…` variables (the bench's own `QIP__AUTH__…`
//! overrides pass through, e.g. `QIP__AUTH__MAX_CONCURRENT_HASHES=2`). Its memory is read from
//! `/proc/<pid>/status`, so the clients' memory is not counted.
//!
//! 1. Baseline: QIP_BENCH_READERS (2) clients read `GET /api/v1/pools/{id}` and `GET /api/v1/me/tasks` with a
//!    bearer token for QIP_BENCH_SECONDS (10) — p50/p99.
//! 2. Flood: the same readers again while QIP_BENCH_FLOODERS (16) clients, each bound to its own address
//!    127.0.0.<10+k>, post sign-ins with wrong passwords as fast as they are answered. The flooders are async
//!    tasks on one thread, so they take at most one core of the client side, as remote clients would take none.
//! 3. Prints the p99 ratio flood / baseline (target <= 2.0), the sign-in answers by status (200/401/429/503)
//!    and the server process's peak RSS during each phase (target <= 200 MB).
//! 4. The field users: during the flood, once a second, the real account signs in with its password from the
//!    address it signed in from before (127.0.0.2: the sign-in budget's known-client reserve) and the
//!    administrator from an address it never used (127.0.0.4); after the flood, the administrator from another
//!    new address (127.0.0.5) until it gets in. Their answers are printed (a 200 in the first case is the aim).
//!
//! PostgreSQL: `scripts/with-postgres.sh cargo bench --bench login_flood`; without it, SQLite:
//! `cargo bench --bench login_flood`.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

#[path = "common/mod.rs"]
#[expect(
    dead_code,
    reason = "the in-process server plumbing there is not used: this bench runs the server binary"
)]
mod common;
mod server_process;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qip_pool::config::Settings;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, env_or, percentile};
use server_process::{Memory, Server};

const USER_PASSWORD: &str = "bench-user-passphrase-1";
const JWT_SECRET: &str = "bench-secret-0123456789abcdef-0123456789";

/// `qip-pool ARGS` over `url` with the bench's settings (plus any `QIP__` variables of the bench's environment).
fn qip(url: &str, args: &[&str]) -> Command {
    server_process::qip(url, JWT_SECRET, args)
}

fn main() {
    let seconds = env_or("QIP_BENCH_SECONDS", 10);
    let readers = env_or("QIP_BENCH_READERS", 2) as usize;
    let flooders = env_or("QIP_BENCH_FLOODERS", 16) as usize;
    let pg_admin = common::admin_url();
    let db_name = format!("qip_flood_{}", std::process::id());
    let sqlite_dir = tempfile::tempdir().unwrap();
    let url = match &pg_admin {
        Some(admin) => {
            let mut c = PgConnection::establish(admin).unwrap();
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name}"))
                .unwrap();
            c.batch_execute(&format!("CREATE DATABASE {db_name}")).unwrap();
            common::with_db_name(admin, &db_name)
        }
        None => format!("sqlite://{}/flood.sqlite3", sqlite_dir.path().display()),
    };
    // The server's effective settings, as it will load them (defaults plus the environment's `QIP__`).
    let settings = Settings::load(None).unwrap();
    let (max_hashes, hash_wait) = (settings.auth.max_concurrent_hashes, settings.auth.hash_wait_ms);
    let low_priority = settings.auth.hash_threads_low_priority;
    let per_address = settings.auth.auth_rate_limit_per_minute;
    let budget = (
        settings.auth.sign_in_budget_per_second,
        settings.auth.sign_in_budget_burst,
        settings.auth.known_client_budget_per_second,
        settings.auth.known_client_budget_burst,
    );

    server_process::bootstrap_admin(|args| qip(&url, args), ADMIN_PASSWORD);
    let server = Server::start(|args| qip(&url, args));
    let base = server.base_url.clone();
    let memory = Memory { pid: server.pid() };

    // Set-up sign-ins come from their own address, away from the flood's.
    let client = reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let api = common::Api {
        client: client.clone(),
        base: base.to_string(),
    };
    let call =
        |method: &str, path: &str, token: Option<&str>, body: Value| api.call(method, path, token, body);
    let login = |user: &str, password: &str| api.login(user, password);
    let admin_token = login("admin", ADMIN_PASSWORD);
    let office = call(
        "POST",
        "/api/v1/organizations",
        Some(&admin_token),
        json!({"code": "FLOODSEC", "name": "Flood section", "kind": "mission_section"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = call(
        "POST",
        "/api/v1/users",
        Some(&admin_token),
        json!({"username": "qip", "display_name": "qip", "email": "qip@bench.invalid", "organization_id": office}),
    );
    let res = client
        .post(format!("{base}/api/v1/auth/setup-password"))
        .json(&json!({"token": created["setup_token"], "password": USER_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let granted = call(
        "POST",
        &format!("/api/v1/users/{}/hats", created["id"].as_str().unwrap()),
        Some(&admin_token),
        json!({"hat": "qip_officer"}),
    );
    if granted["status"] == "pending" {
        let confirmed = qip(&url, &["admin", "confirm-grant", granted["id"].as_str().unwrap()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(confirmed.success(), "confirm the hat grant");
    }
    let token = login("qip", USER_PASSWORD);
    let pool_id = call(
        "POST",
        "/api/v1/pools",
        Some(&token),
        json!({"code": "FLOOD", "name": "Flood", "currency": "USD", "funding_start": "2026-01-01", "funding_end": "2027-12-31"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let paths = [format!("/api/v1/pools/{pool_id}"), "/api/v1/me/tasks".to_owned()];

    let read_for = |until: Instant| -> Vec<Duration> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..readers)
                .map(|r| {
                    let (paths, token, base) = (&paths, &token, &base);
                    s.spawn(move || {
                        let client = reqwest::blocking::Client::builder()
                            .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)))
                            .build()
                            .unwrap();
                        let mut lat = Vec::new();
                        let mut n = r;
                        while Instant::now() < until {
                            let started = Instant::now();
                            let res = client
                                .get(format!("{base}{}", paths[n % paths.len()]))
                                .bearer_auth(token)
                                .send()
                                .unwrap();
                            assert_eq!(res.status().as_u16(), 200);
                            let _ = res.bytes();
                            lat.push(started.elapsed());
                            n += 1;
                        }
                        lat
                    })
                })
                .collect();
            let mut all: Vec<Duration> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
            all.sort();
            all
        })
    };

    // 1. Baseline.
    memory.reset_peak();
    let baseline = read_for(Instant::now() + Duration::from_secs(seconds));
    let rss_baseline = memory.peak_mb();

    // 2. The same reads under a flood of wrong-password sign-ins from many addresses.
    memory.reset_peak();
    let until = Instant::now() + Duration::from_secs(seconds);
    let (flooded, answers) = std::thread::scope(|s| {
        let base = &base;
        let flood = s.spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(flood_until(base, flooders, until))
        });
        let known = s.spawn(move || field_sign_ins(base, [127, 0, 0, 2], "qip", USER_PASSWORD, until));
        let new = s.spawn(move || field_sign_ins(base, [127, 0, 0, 4], "admin", ADMIN_PASSWORD, until));
        let reads = read_for(until);
        (
            reads,
            (flood.join().unwrap(), known.join().unwrap(), new.join().unwrap()),
        )
    });
    let (answers, known_answers, new_answers) = answers;
    // After the flood: a new address signs in as soon as the budget has room again.
    let after = Instant::now();
    let client = reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)))
        .build()
        .unwrap();
    let mut after_answers: Vec<u16> = Vec::new();
    while after.elapsed() < Duration::from_secs(30) {
        let status = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .unwrap()
            .status()
            .as_u16();
        after_answers.push(status);
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let after_ms = after.elapsed().as_secs_f64() * 1e3;
    let rss_flood = memory.peak_mb();
    let rss_after = memory.field_mb("VmRSS:");
    memory.report("at the end of the flood");
    let hash_threads = thread_niceness(memory.pid, "qip-hash-");

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "login_flood: reads during a wrong-password sign-in flood from {flooders} addresses ({}, {readers} readers, {seconds} s per phase; \
         auth.max_concurrent_hashes = {max_hashes}, auth.hash_wait_ms = {hash_wait}, auth.hash_threads_low_priority = {low_priority}, \
         {per_address} sign-ins/min per address; sign-in budget {}/s burst {}, known clients {}/s burst {}; hashing threads and their nice: {hash_threads:?})",
        if pg_admin.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        budget.0,
        budget.1,
        budget.2,
        budget.3
    );
    println!(
        "  baseline  {:>6} reads   p50 {:>7.2} ms   p99 {:>7.2} ms   server peak RSS {rss_baseline:.0} MB",
        baseline.len(),
        ms(percentile(&baseline, 0.5)),
        ms(percentile(&baseline, 0.99))
    );
    println!(
        "  flood     {:>6} reads   p50 {:>7.2} ms   p99 {:>7.2} ms   server peak RSS {rss_flood:.0} MB (RSS at its end {rss_after:.0} MB)",
        flooded.len(),
        ms(percentile(&flooded, 0.5)),
        ms(percentile(&flooded, 0.99))
    );
    println!("  sign-in answers during the flood: {answers:?}");
    println!(
        "  field sign-ins during the flood, once a second: qip from its usual address {known_answers:?}, \
         admin from a new address {new_answers:?}; after it, admin from another new address: {after_answers:?} \
         in {after_ms:.0} ms"
    );
    println!(
        "  ratio p99 flood/baseline = {:.2}   (target <= 2.00; RSS target <= 200 MB)",
        percentile(&flooded, 0.99).as_secs_f64() / percentile(&baseline, 0.99).as_secs_f64().max(1e-9)
    );

    drop(server);
    if let Some(admin) = &pg_admin {
        let mut c = PgConnection::establish(admin).unwrap();
        let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"));
    }
}

/// `flooders` clients, each from its own address, post wrong-password sign-ins (half for the real account, half
/// for unknown names) until `until`; the answers by status.
async fn flood_until(base: &str, flooders: usize, until: Instant) -> BTreeMap<u16, u64> {
    let tasks: Vec<_> = (0..flooders)
        .map(|k| {
            let url = format!("{base}/api/v1/auth/login");
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + k as u8)))
                    .build()
                    .unwrap();
                let mut answers: BTreeMap<u16, u64> = BTreeMap::new();
                let mut n = 0u64;
                while Instant::now() < until {
                    let username = if n % 2 == 0 {
                        "qip".to_owned()
                    } else {
                        format!("nobody-{k}-{n}")
                    };
                    let res = client
                        .post(&url)
                        .json(&json!({"username": username, "password": format!("wrong-password-{n}")}))
                        .send()
                        .await
                        .unwrap();
                    *answers.entry(res.status().as_u16()).or_insert(0) += 1;
                    let _ = res.bytes().await;
                    n += 1;
                }
                answers
            })
        })
        .collect();
    let mut answers: BTreeMap<u16, u64> = BTreeMap::new();
    for task in tasks {
        for (status, count) in task.await.unwrap() {
            *answers.entry(status).or_insert(0) += count;
        }
    }
    answers
}

/// Signs `username` in with the right password from `addr` once a second until `until`; the answers by status.
fn field_sign_ins(
    base: &str,
    addr: [u8; 4],
    username: &str,
    password: &str,
    until: Instant,
) -> BTreeMap<u16, u64> {
    let client = reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(addr)))
        .build()
        .unwrap();
    let mut answers: BTreeMap<u16, u64> = BTreeMap::new();
    std::thread::sleep(Duration::from_millis(500));
    while Instant::now() < until {
        let next = Instant::now() + Duration::from_secs(1);
        let status = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .unwrap()
            .status()
            .as_u16();
        *answers.entry(status).or_insert(0) += 1;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    answers
}

/// The server's threads whose name starts with `prefix`, with their nice value (`/proc/<pid>/task/*/stat`).
fn thread_niceness(pid: u32, prefix: &str) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        // Field 19 is nice; fields after the parenthesised name are split by spaces.
        let nice = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(16))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        found.push((comm.trim().to_owned(), nice));
    }
    found.sort();
    found
}

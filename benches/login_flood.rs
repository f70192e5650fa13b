//! Sign-in flood benchmark (docs/BENCHMARKS.md, issue 14 item 3): other requests' latency and the server's
//! memory while wrong-password sign-ins flood in from many client addresses.
//!
//! 1. Baseline: QIP_BENCH_READERS (2) clients read `GET /api/v1/pools/{id}` and `GET /api/v1/me/tasks` with a
//!    bearer token for QIP_BENCH_SECONDS (10) — p50/p99.
//! 2. Flood: the same readers again while QIP_BENCH_FLOODERS (16) clients, each bound to its own address
//!    127.0.0.<10+k>, post sign-ins with wrong passwords as fast as they are answered.
//! 3. Prints the p99 ratio flood / baseline (target <= 2.0), the sign-in answers by status (200/401/429/503)
//!    and the peak RSS of the process holding the server during each phase (target <= 200 MB).
//!
//! The server runs with the shipped defaults (`auth.max_concurrent_hashes`, `auth.hash_wait_ms`, per-address
//! sign-in rate limit). PostgreSQL: `scripts/with-postgres.sh cargo bench --bench login_flood`; without it,
//! SQLite: `cargo bench --bench login_flood`.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

#[path = "common/mod.rs"]
#[expect(
    dead_code,
    reason = "the PostgreSQL-only server plumbing there does not serve SQLite; this bench starts its own"
)]
mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qip_pool::config::{Secret, Settings};
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, env_or, percentile};

const USER_PASSWORD: &str = "bench-user-passphrase-1";

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
    let mut settings = Settings::load_from(None, Vec::<(String, String)>::new()).unwrap();
    settings.database.url = Secret::new(url);
    settings.auth.jwt_secret = Secret::new("bench-secret-0123456789abcdef-0123456789");
    let (max_hashes, hash_wait) = (settings.auth.max_concurrent_hashes, settings.auth.hash_wait_ms);
    let per_address = settings.auth.auth_rate_limit_per_minute;
    let (pool, base, handle) = common::serve(settings);

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
        qip_pool::features::identity::service::confirm_hat_grant_from_console(
            &mut pool.get().unwrap(),
            granted["id"].as_str().unwrap(),
            Some("bench"),
        )
        .unwrap();
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
    reset_peak_rss();
    let baseline = read_for(Instant::now() + Duration::from_secs(seconds));
    let rss_baseline = peak_rss_mb();

    // 2. The same reads under a flood of wrong-password sign-ins from many addresses.
    reset_peak_rss();
    let until = Instant::now() + Duration::from_secs(seconds);
    let (flooded, answers) = std::thread::scope(|s| {
        let flood: Vec<_> = (0..flooders)
            .map(|k| {
                let base = &base;
                s.spawn(move || {
                    let client = reqwest::blocking::Client::builder()
                        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + k as u8)))
                        .build()
                        .unwrap();
                    let mut answers: BTreeMap<u16, u64> = BTreeMap::new();
                    let mut n = 0u64;
                    while Instant::now() < until {
                        let res = client
                            .post(format!("{base}/api/v1/auth/login"))
                            .json(&json!({"username": if n % 2 == 0 { "qip".to_owned() } else { format!("nobody-{k}-{n}") },
                                          "password": format!("wrong-password-{n}")}))
                            .send()
                            .unwrap();
                        *answers.entry(res.status().as_u16()).or_insert(0) += 1;
                        let _ = res.bytes();
                        n += 1;
                    }
                    answers
                })
            })
            .collect();
        let reads = read_for(until);
        let mut answers: BTreeMap<u16, u64> = BTreeMap::new();
        for h in flood {
            for (status, count) in h.join().unwrap() {
                *answers.entry(status).or_insert(0) += count;
            }
        }
        (reads, answers)
    });
    let rss_flood = peak_rss_mb();

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "login_flood: reads during a wrong-password sign-in flood from {flooders} addresses ({}, {readers} readers, {seconds} s per phase; \
         auth.max_concurrent_hashes = {max_hashes}, auth.hash_wait_ms = {hash_wait}, {per_address} sign-ins/min per address)",
        if pg_admin.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    println!(
        "  baseline  {:>6} reads   p50 {:>7.2} ms   p99 {:>7.2} ms   peak RSS {rss_baseline:.0} MB",
        baseline.len(),
        ms(percentile(&baseline, 0.5)),
        ms(percentile(&baseline, 0.99))
    );
    println!(
        "  flood     {:>6} reads   p50 {:>7.2} ms   p99 {:>7.2} ms   peak RSS {rss_flood:.0} MB",
        flooded.len(),
        ms(percentile(&flooded, 0.5)),
        ms(percentile(&flooded, 0.99))
    );
    println!("  sign-in answers during the flood: {answers:?}");
    println!(
        "  ratio p99 flood/baseline = {:.2}   (target <= 2.00; RSS target <= 200 MB)",
        percentile(&flooded, 0.99).as_secs_f64() / percentile(&baseline, 0.99).as_secs_f64().max(1e-9)
    );

    actix_web::rt::System::new().block_on(handle.stop(true));
    drop(pool);
    if let Some(admin) = &pg_admin {
        let mut c = PgConnection::establish(admin).unwrap();
        let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"));
    }
}

/// Resets the peak resident set size of this process (the server runs in it), so each phase reports its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

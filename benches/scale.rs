//! Read latency as history grows (docs/BENCHMARKS.md, issue 14). Builds two databases itself, each served by
//! its own server process and both alive together: the small history (1k transactions) and the full one. Each
//! is set up over HTTP alike (users, hats, a pool), bulk-loaded with realistic rows by set-based SQL
//! (generate_series on PostgreSQL, a recursive CTE on SQLite; the full one grows through the small size) and
//! ANALYZEd. Then every read endpoint is measured on both in interleaved rounds: per round and endpoint a
//! warm-up on each server, then requests alternating between the two servers one by one (who goes first
//! alternates too), so a burst of machine noise lands on both sizes alike. It prints each round's p50/p99 per
//! size and their p99 ratio, then the full/1k ratio of p99 over all rounds (target <= 1.5) with the range of
//! the rounds' ratios, and the peak RSS of each server during the reads (target <= 200 MB).
//!
//! The servers are the release binary (`qip-pool serve`, built by `cargo bench` beside this bench) with the
//! shipped defaults and their background jobs (sweeper, audit sealer, delivery worker); any `QIP__…`
//! variables of the bench's environment pass through. Memory is read from each server's `/proc/<pid>/status`,
//! so the bench's client and bulk loaders are not counted.
//!
//! PostgreSQL: `scripts/with-postgres.sh cargo bench --bench scale`; SQLite: `cargo bench --bench scale`.
//! Tunables: QIP_BENCH_SCALE=full|small (full: 500k transactions / 1M entries / 100k proposals / 1M audit
//! events on PostgreSQL, 100k / 200k / 20k / 200k on SQLite; small: 20k / 40k / 4k / 40k, a smoke test),
//! QIP_BENCH_REQUESTS (1000 per endpoint and size, over all rounds), QIP_BENCH_ROUNDS (5), QIP_BENCH_WARMUP
//! (10 requests per endpoint, size and round, not counted), QIP_BENCH_CLIENTS and QIP_BENCH_SECONDS (the
//! posting phase at the end, on the full database).
//!
//! The current workload (proposals awaiting a decision, in implementation, with a report to accept or a
//! tranche to pay) is the same at both sizes: what grows is history (closed proposals, their money and
//! their audit trail), which is what must not slow reads down.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

#[path = "common/mod.rs"]
#[expect(
    dead_code,
    reason = "the in-process server plumbing there is not used: this bench runs the server binary"
)]
mod common;
mod server_process;

use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qip_pool::config::{Secret, Settings};
use qip_pool::db::DbConn;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, env_or, percentile};
use server_process::{Memory, Server};

const USER_PASSWORD: &str = "bench-user-passphrase-1";
const JWT_SECRET: &str = "bench-secret-0123456789abcdef-0123456789";
/// The current workload, loaded with the first tier and never grown.
const WORKLOAD_PROPOSALS: u64 = 200;

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Pg,
    Sqlite,
}

struct Sizes {
    transactions: u64,
    proposals: u64,
    audit_events: u64,
}

fn main() {
    let scale = std::env::var("QIP_BENCH_SCALE").unwrap_or_else(|_| "full".into());
    let requests = env_or("QIP_BENCH_REQUESTS", 1_000) as usize;
    let rounds = (env_or("QIP_BENCH_ROUNDS", 5) as usize).max(1);
    let warmup = env_or("QIP_BENCH_WARMUP", 10) as usize;
    let pg_admin = common::admin_url();
    let backend = if pg_admin.is_some() {
        Backend::Pg
    } else {
        Backend::Sqlite
    };
    let full = match (scale.as_str(), backend) {
        ("small", _) => Sizes {
            transactions: 20_000,
            proposals: 4_000,
            audit_events: 40_000,
        },
        (_, Backend::Pg) => Sizes {
            transactions: 500_000,
            proposals: 100_000,
            audit_events: 1_000_000,
        },
        (_, Backend::Sqlite) => Sizes {
            transactions: 100_000,
            proposals: 20_000,
            audit_events: 200_000,
        },
    };
    // The small size has some history too (100 closed, rejected, withdrawn or completed proposals), so a page
    // of closed proposals is a full page at both sizes rather than an empty one at 1k.
    let base = Sizes {
        transactions: 1_000,
        proposals: WORKLOAD_PROPOSALS + 100,
        audit_events: 2_000,
    };
    let nothing = Sizes {
        transactions: 0,
        proposals: 0,
        audit_events: 0,
    };
    let backend_name = if backend == Backend::Pg {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "scale: reads at {} transactions vs {} transactions / {} proposals / {} audit events ({backend_name}; two \
         databases, each with its own server process, measured in {rounds} interleaved rounds: {requests} requests per \
         endpoint and size in all, alternating between the two servers request by request)",
        base.transactions, full.transactions, full.proposals, full.audit_events
    );

    // Two deployments, both alive until the end: the small history and the full one, each its own database and
    // server process (shipped defaults, background jobs running), set up alike over HTTP.
    let small = Deployment::start("1k", pg_admin.as_deref());
    let large = Deployment::start("full", pg_admin.as_deref());
    for (deployment, sizes) in [(&small, &base), (&large, &full)] {
        let mut conn = deployment.pool.get().unwrap();
        let loader = Loader {
            backend,
            ids: &deployment.ids,
        };
        let started = Instant::now();
        // The full database grows through the small size, as its history would.
        loader.load(&mut conn, &nothing, &base);
        if sizes.transactions > base.transactions {
            loader.load(&mut conn, &base, sizes);
        }
        analyze(&mut conn, backend);
        println!(
            "  [{}] loaded {} transactions in {:.1} s: {} entries, {} balance rows",
            deployment.label,
            sizes.transactions,
            started.elapsed().as_secs_f64(),
            count_of(&mut conn, "SELECT COUNT(*) AS n FROM ledger_entries"),
            count_of(&mut conn, "SELECT COUNT(*) AS n FROM ledger_balances"),
        );
        deployment
            .memory
            .report(&format!("[{}] after set-up and load (idle)", deployment.label));
    }

    // Fresh sign-ins (the PostgreSQL load outlasts nothing, but the tokens are 15-minute ones).
    let client = reqwest::blocking::Client::new();
    let small_reads = small.endpoints(&client);
    let large_reads = large.endpoints(&client);
    let names: Vec<&str> = small_reads.iter().map(|(name, _, _)| *name).collect();
    let per_round = requests.div_ceil(rounds);
    let get = |base_url: &str, (name, path, token): &(&str, String, String)| -> Duration {
        let started = Instant::now();
        let res = client
            .get(format!("{base_url}{path}"))
            .bearer_auth(token)
            .send()
            .unwrap();
        let status = res.status().as_u16();
        let body = res.bytes().unwrap();
        assert_eq!(status, 200, "{name}: {}", String::from_utf8_lossy(&body));
        started.elapsed()
    };
    // Latencies per endpoint, per size; each round's own p99s are printed as it ends.
    let mut all: Vec<[Vec<Duration>; 2]> = names.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    let mut round_ratios: Vec<Vec<f64>> = names.iter().map(|_| Vec::new()).collect();
    small.memory.reset_peak();
    large.memory.reset_peak();
    let started = Instant::now();
    for round in 0..rounds {
        println!("  round {} of {rounds} (uptime: {})", round + 1, uptime());
        for (e, name) in names.iter().enumerate() {
            let (a, b) = (&small_reads[e], &large_reads[e]);
            for _ in 0..warmup {
                get(&small.base_url, a);
                get(&large.base_url, b);
            }
            let mut lat: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
            for i in 0..per_round {
                // Who goes first alternates, so neither side always follows the other's work.
                if (i + round) % 2 == 0 {
                    lat[0].push(get(&small.base_url, a));
                    lat[1].push(get(&large.base_url, b));
                } else {
                    lat[1].push(get(&large.base_url, b));
                    lat[0].push(get(&small.base_url, a));
                }
            }
            for side in &mut lat {
                side.sort();
            }
            let (s99, l99) = (percentile(&lat[0], 0.99), percentile(&lat[1], 0.99));
            println!(
                "    {name:<40} 1k p50 {:>6.2} p99 {:>6.2} ms | full p50 {:>6.2} p99 {:>6.2} ms | p99 ratio {:>5.2}",
                ms(percentile(&lat[0], 0.5)),
                ms(s99),
                ms(percentile(&lat[1], 0.5)),
                ms(l99),
                ms(l99) / ms(s99).max(1e-6)
            );
            round_ratios[e].push(ms(l99) / ms(s99).max(1e-6));
            let [s, l] = lat;
            all[e][0].extend(s);
            all[e][1].extend(l);
        }
    }
    let (rss_small, rss_large) = (small.memory.peak_mb(), large.memory.peak_mb());
    println!(
        "scale: p99 full / p99 1k over all rounds, {} requests per endpoint and size, {:.0} s (target <= 1.50)",
        per_round * rounds,
        started.elapsed().as_secs_f64()
    );
    let mut worst: f64 = 0.0;
    for (e, name) in names.iter().enumerate() {
        for side in &mut all[e] {
            side.sort();
        }
        let [s, l] = &all[e];
        let (s50, s99, l50, l99) = (
            percentile(s, 0.5),
            percentile(s, 0.99),
            percentile(l, 0.5),
            percentile(l, 0.99),
        );
        let ratio = ms(l99) / ms(s99).max(1e-6);
        worst = worst.max(ratio);
        let rounds_seen = &mut round_ratios[e];
        rounds_seen.sort_by(f64::total_cmp);
        println!(
            "  {name:<40} {ratio:>6.2}x   (1k p50 {:.2} ms, p99 {:.2} ms; full p50 {:.2} ms, p99 {:.2} ms; rounds' ratios {:.2}–{:.2}, median {:.2})",
            ms(s50),
            ms(s99),
            ms(l50),
            ms(l99),
            rounds_seen[0],
            rounds_seen[rounds_seen.len() - 1],
            rounds_seen[rounds_seen.len() / 2],
        );
    }
    println!("  worst ratio {worst:.2}x");
    println!(
        "  peak RSS of the server processes during the reads: {rss_small:.0} MB (1k), {rss_large:.0} MB (full) (target <= 200 MB)"
    );
    small.memory.report("[1k] after the reads");
    large.memory.report("[full] after the reads");
    explain_main_queries(&mut large.pool.get().unwrap(), backend, &large.ids);

    // Postings at full history: contributions over HTTP from QIP_BENCH_CLIENTS (8) clients.
    let clients = env_or("QIP_BENCH_CLIENTS", 8) as usize;
    let post_seconds = env_or("QIP_BENCH_SECONDS", 10);
    let finance = large.api(&client).login("finance", USER_PASSWORD);
    large.memory.reset_peak();
    let deadline = Instant::now() + Duration::from_secs(post_seconds);
    let started = Instant::now();
    let mut posts: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (client, base_url, finance, pool_id, donor) =
                    (&client, &large.base_url, &finance, &large.ids.pool, &large.ids.donor);
                s.spawn(move || {
                    let mut lat = Vec::new();
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let res = client
                            .post(format!("{base_url}/api/v1/pools/{pool_id}/contributions"))
                            .bearer_auth(finance)
                            .header("Idempotency-Key", format!("scale-{c}-{n}"))
                            .json(&json!({"contributor_organization_id": donor, "amount": "125.50", "currency": "USD"}))
                            .send()
                            .unwrap();
                        let created = res.status().as_u16() == 201;
                        let _ = res.bytes();
                        if created {
                            lat.push(t.elapsed());
                        }
                        n += 1;
                    }
                    lat
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    posts.sort();
    println!(
        "scale: contributions over HTTP at full history ({clients} clients, {post_seconds} s): {:.1} posts/s, p50 {:.2} ms, p99 {:.2} ms, peak RSS {:.0} MB",
        posts.len() as f64 / elapsed,
        ms(percentile(&posts, 0.5)),
        ms(percentile(&posts, 0.99)),
        large.memory.peak_mb()
    );
    large.memory.report("[full] at the end");
    let bench = Memory {
        pid: std::process::id(),
    };
    println!(
        "  for comparison, this bench process (HTTP client, bulk loaders): peak RSS {:.0} MB",
        bench.field_mb("VmHWM:")
    );
    println!("  uptime at the end: {}", uptime());
    drop(small);
    drop(large);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The machine's load as `uptime` prints it (the figures are only as quiet as the machine).
fn uptime() -> String {
    Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// One database with its own server process, set up over HTTP (users, hats, a pool, one contribution). When
/// this is dropped the server is killed first, then the pool closed, then the database deleted (SQLite) or
/// dropped (PostgreSQL), in the order of the fields.
struct Deployment {
    label: &'static str,
    // Field order is drop order: the server and the pool go before the database.
    _server: Server,
    base_url: String,
    memory: Memory,
    pool: qip_pool::db::DbPool,
    ids: Ids,
    _sqlite_dir: tempfile::TempDir,
    _pg_database: PgDatabase,
}

impl Deployment {
    fn start(label: &'static str, pg_admin: Option<&str>) -> Deployment {
        let db_name = format!("qip_scale_{}_{}", std::process::id(), label);
        let (url, sqlite_dir) = server_process::fresh_database(&db_name, pg_admin);
        // The server: the release binary in a process of its own with the shipped defaults (pool size, workers,
        // hashing limits), so its memory is read from its own /proc entry, without the bench's client, bulk
        // loader and their allocations.
        server_process::bootstrap_admin(|args| qip(&url, args), ADMIN_PASSWORD);
        let server = Server::start(|args| qip(&url, args));
        let base_url = server.base_url.clone();
        let memory = Memory { pid: server.pid() };
        memory.report(&format!("[{label}] idle after start"));
        // The bench's own connections (bulk loader, console-side grant confirmation), outside the server.
        let mut settings = Settings::load_from(None, Vec::<(String, String)>::new()).unwrap();
        settings.database.url = Secret::new(url.clone());
        settings.database.pool_size = 2;
        let pool = qip_pool::db::build_pool(&settings.database).unwrap();
        let ids = set_up_over_http(&base_url, &pool);
        memory.report(&format!("[{label}] after the set-up over HTTP (sign-ins hashed)"));
        Deployment {
            label,
            _server: server,
            base_url,
            memory,
            pool,
            ids,
            _sqlite_dir: sqlite_dir,
            _pg_database: PgDatabase(pg_admin.map(|a| (a.to_owned(), db_name))),
        }
    }

    fn api(&self, client: &reqwest::blocking::Client) -> common::Api {
        common::Api {
            client: client.clone(),
            base: self.base_url.clone(),
        }
    }

    /// The measured reads (name, path, token), signed in afresh; the deep cursor is the middle of this
    /// database's transactions.
    fn endpoints(&self, client: &reqwest::blocking::Client) -> Vec<(&'static str, String, String)> {
        let api = self.api(client);
        let [finance, qip, dsrsg, auditor] =
            ["finance", "qip", "dsrsg", "auditor"].map(|u| api.login(u, USER_PASSWORD));
        let pool_id = &self.ids.pool;
        let mut conn = self.pool.get().unwrap();
        let count = count_of(
            &mut conn,
            &format!("SELECT COUNT(*) AS n FROM ledger_transactions WHERE pool_id = '{pool_id}'"),
        );
        let middle = text_of(
            &mut conn,
            &format!(
                "SELECT id AS v FROM ledger_transactions WHERE pool_id = '{pool_id}' ORDER BY id LIMIT 1 OFFSET {}",
                count / 2
            ),
        );
        vec![
            (
                "statement (2 months)",
                format!("/api/v1/pools/{pool_id}/statement?from=2026-10-01&to=2026-11-30"),
                finance.clone(),
            ),
            (
                "statement (all history)",
                format!("/api/v1/pools/{pool_id}/statement"),
                finance.clone(),
            ),
            ("pool", format!("/api/v1/pools/{pool_id}"), finance.clone()),
            ("my tasks (qip_officer)", "/api/v1/me/tasks".into(), qip.clone()),
            ("my tasks (dsrsg)", "/api/v1/me/tasks".into(), dsrsg),
            (
                "my tasks (finance_officer)",
                "/api/v1/me/tasks".into(),
                finance.clone(),
            ),
            (
                "transactions page",
                format!("/api/v1/pools/{pool_id}/transactions?limit=50"),
                finance.clone(),
            ),
            (
                "audit events page",
                "/api/v1/audit/events?limit=50".into(),
                auditor,
            ),
            (
                "proposals by state (closed)",
                "/api/v1/proposals?state=closed&limit=50".into(),
                qip.clone(),
            ),
            (
                "proposals by state (in_implementation)",
                "/api/v1/proposals?state=in_implementation&limit=50".into(),
                qip,
            ),
            (
                "transactions page (deep cursor)",
                format!(
                    "/api/v1/pools/{pool_id}/transactions?limit=50&cursor={}",
                    qip_pool::http::pagination::encode_cursor(&middle)
                ),
                finance,
            ),
        ]
    }
}

/// A PostgreSQL database of the bench, dropped when this is dropped: the last field of [`Deployment`], so its
/// server and pool are gone by then.
struct PgDatabase(Option<(String, String)>);

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Some((admin, db_name)) = &self.0
            && let Ok(mut c) = PgConnection::establish(admin)
        {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"));
        }
    }
}

/// The mission, over HTTP: organisations, the four users with their hats, the pool and one real contribution
/// (which creates the pool's contributor and unallocated accounts).
fn set_up_over_http(base_url: &str, pool: &qip_pool::db::DbPool) -> Ids {
    let client = reqwest::blocking::Client::new();
    let api = common::Api {
        client: client.clone(),
        base: base_url.to_string(),
    };
    let call =
        |method: &str, path: &str, token: Option<&str>, body: Value| api.call(method, path, token, body);
    let login = |user: &str, password: &str| api.login(user, password);
    let admin_token = login("admin", ADMIN_PASSWORD);
    let org = |code: &str, kind: &str| api.org(&admin_token, code, kind);
    let office = org("SCALESEC", "mission_section");
    let donor = org("DONOR", "contributor");
    let ngo = org("NGO", "ngo");
    let user = |username: &str, hat: &str| -> String {
        let created = call(
            "POST",
            "/api/v1/users",
            Some(&admin_token),
            json!({"username": username, "display_name": username, "email": format!("{username}@bench.invalid"),
                   "organization_id": office}),
        );
        let res = client
            .post(format!("{base_url}/api/v1/auth/setup-password"))
            .json(&json!({"token": created["setup_token"], "password": USER_PASSWORD}))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 204);
        let id = created["id"].as_str().unwrap().to_owned();
        let granted = call(
            "POST",
            &format!("/api/v1/users/{id}/hats"),
            Some(&admin_token),
            json!({"hat": hat}),
        );
        if granted["status"] == "pending" {
            qip_pool::features::identity::service::confirm_hat_grant_from_console(
                &mut pool.get().unwrap(),
                granted["id"].as_str().unwrap(),
                Some("bench"),
            )
            .unwrap();
        }
        id
    };
    let finance_id = user("finance", "finance_officer");
    let qip_id = user("qip", "qip_officer");
    let dsrsg_id = user("dsrsg", "dsrsg");
    user("auditor", "auditor");
    let qip = login("qip", USER_PASSWORD);
    let finance = login("finance", USER_PASSWORD);
    let pool_id = call(
        "POST",
        "/api/v1/pools",
        Some(&qip),
        json!({"code": "SCALE", "name": "Scale", "currency": "USD", "funding_start": "2025-01-01", "funding_end": "2027-12-31"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = client
        .post(format!("{base_url}/api/v1/pools/{pool_id}/contributions"))
        .bearer_auth(&finance)
        .header("Idempotency-Key", "scale-seed")
        .json(&json!({"contributor_organization_id": donor, "amount": "1000000.00", "currency": "USD"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    Ids {
        pool: pool_id,
        donor,
        ngo,
        finance: finance_id,
        qip: qip_id,
        dsrsg: dsrsg_id,
    }
}

/// Plans of the main read queries at full size (hand-written equivalents of what the service issues).
fn explain_main_queries(conn: &mut DbConn, backend: Backend, ids: &Ids) {
    let Ids {
        pool, finance, dsrsg, ..
    } = ids;
    let count = count_of(
        conn,
        &format!("SELECT COUNT(*) AS n FROM ledger_transactions WHERE pool_id = '{pool}'"),
    );
    let middle = text_of(
        conn,
        &format!(
            "SELECT id AS v FROM ledger_transactions WHERE pool_id = '{pool}' ORDER BY id LIMIT 1 OFFSET {}",
            count / 2
        ),
    );
    let queries = [
        (
            "statement (2 months): opening balance, whole months before the period from the monthly roll-up",
            format!(
                "SELECT account_kind, transaction_kind, SUM(total_minor), SUM(entries) FROM (\
                 SELECT account_kind, transaction_kind, total_minor, entries FROM ledger_monthly_totals \
                 WHERE pool_id = '{pool}' AND month < '2026-10-01') periods GROUP BY account_kind, transaction_kind"
            ),
        ),
        (
            "statement (2 months): movements of the period, two whole months",
            format!(
                "SELECT account_kind, transaction_kind, SUM(total_minor), SUM(entries) FROM (\
                 SELECT account_kind, transaction_kind, total_minor, entries FROM ledger_monthly_totals \
                 WHERE pool_id = '{pool}' AND month >= '2026-10-01' AND month < '2026-12-01') periods \
                 GROUP BY account_kind, transaction_kind"
            ),
        ),
        (
            "statement from a mid-month day: whole months from the monthly roll-up, loose days from the daily totals",
            format!(
                "SELECT account_kind, transaction_kind, SUM(total_minor), SUM(entries) FROM (\
                 SELECT account_kind, transaction_kind, total_minor, entries FROM ledger_monthly_totals \
                 WHERE pool_id = '{pool}' AND month < '2026-09-01' \
                 UNION ALL SELECT account_kind, transaction_kind, total_minor, entries FROM ledger_daily_totals \
                 WHERE pool_id = '{pool}' AND day >= '2026-09-01' AND day < '2026-09-17') periods \
                 GROUP BY account_kind, transaction_kind"
            ),
        ),
        (
            "pool: balances per account kind from the monthly roll-up",
            format!("SELECT account_kind, SUM(total_minor) FROM ledger_monthly_totals WHERE pool_id = '{pool}' GROUP BY account_kind"),
        ),
        (
            "transactions page, deep cursor",
            format!("SELECT id, kind, amount_minor FROM ledger_transactions WHERE pool_id = '{pool}' AND id < '{middle}' ORDER BY id DESC LIMIT 51"),
        ),
        (
            "transactions page: the entries of its rows, one statement",
            format!(
                "SELECT e.transaction_id, e.leg, e.account_id, e.amount_minor, a.kind, a.owner_id FROM ledger_entries e \
                 JOIN ledger_accounts a ON a.id = e.account_id WHERE e.transaction_id IN \
                 (SELECT id FROM ledger_transactions WHERE pool_id = '{pool}' AND id < '{middle}' ORDER BY id DESC LIMIT 51) \
                 ORDER BY e.transaction_id, e.leg"
            ),
        ),
        (
            "my tasks (dsrsg): open steps of the hat this person may decide",
            format!(
                "SELECT p.id, p.reference, p.title, s.id, s.due_at, s.overdue FROM approval_steps s JOIN proposals p ON p.id = s.proposal_id \
                 WHERE s.status = 'pending' AND s.opened_at IS NOT NULL AND s.due_at IS NOT NULL AND s.hat = 'dsrsg' \
                 AND p.organization_id <> 'x' AND p.created_by <> '{dsrsg}' AND (p.submitted_by IS NULL OR p.submitted_by <> '{dsrsg}') \
                 ORDER BY s.due_at, p.id, s.id LIMIT 51"
            ),
        ),
        (
            "my tasks (qip_officer): reports to accept",
            "SELECT p.id, p.reference, p.title, r.id, r.submitted_at FROM reports r JOIN proposals p ON p.id = r.proposal_id \
             WHERE r.status = 'submitted' ORDER BY r.submitted_at, p.id, r.id LIMIT 51"
                .to_owned(),
        ),
        (
            "my tasks (qip_officer): first payments of the proposals in implementation",
            "SELECT tp.proposal_id, MIN(tp.paid_on) FROM tranche_payments tp JOIN proposals p ON p.id = tp.proposal_id \
             WHERE p.state = 'in_implementation' GROUP BY tp.proposal_id"
                .to_owned(),
        ),
        (
            "my tasks (qip_officer): proposals in implementation with their current version (also the sweeper's)",
            "SELECT p.id, p.reference, p.title, p.pool_id, v.pool_settings_version FROM proposals p \
             JOIN proposal_versions v ON v.proposal_id = p.id AND v.number = p.current_version \
             WHERE p.state = 'in_implementation'"
                .to_owned(),
        ),
        (
            "my tasks (finance_officer): tranches payable now that this officer may pay (the service's statement)",
            format!(
                "SELECT p.id, p.reference, p.title, t.number, t.condition, t.amount_minor, t.paid_minor \
                 FROM tranches t JOIN proposals p ON p.id = t.proposal_id \
                 WHERE t.status = 'scheduled' AND t.amount_minor > t.paid_minor \
                 AND p.state IN ('approved', 'in_implementation', 'completed') \
                 AND NOT EXISTS (SELECT 1 FROM approval_steps s WHERE s.proposal_id = p.id AND s.decided_by = '{finance}') \
                 AND (t.condition NOT IN ('on_progress_report_accepted', 'on_completion_report_accepted', 'against_accepted_reports') \
                   OR (t.condition = 'on_progress_report_accepted' AND EXISTS (SELECT 1 FROM reports r \
                       WHERE r.proposal_id = p.id AND r.status = 'accepted' AND r.kind IN ('progress', 'completion'))) \
                   OR (t.condition = 'on_completion_report_accepted' AND EXISTS (SELECT 1 FROM reports r \
                       WHERE r.proposal_id = p.id AND r.status = 'accepted' AND r.kind = 'completion')) \
                   OR (t.condition = 'against_accepted_reports' AND EXISTS (SELECT 1 FROM reports r \
                       WHERE r.proposal_id = p.id AND r.status = 'accepted' AND r.expenditure_minor IS NOT NULL))) \
                 ORDER BY t.proposal_id, t.number LIMIT 51"
            ),
        ),
        (
            "audit events page",
            "SELECT event_no, seq, action FROM audit_events ORDER BY event_no DESC LIMIT 51".to_owned(),
        ),
        (
            "proposals by state (as the list issues it for a qip_officer: every column, submitted scope)",
            "SELECT * FROM proposals WHERE state <> 'draft' AND state = 'closed' ORDER BY id DESC LIMIT 51".to_owned(),
        ),
    ];
    println!("scale: plans at full size");
    for (name, sql) in queries {
        println!("  -- {name}");
        let lines: Vec<String> = match backend {
            Backend::Pg => diesel::sql_query(format!(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {sql}"
            ))
            .load::<PgPlanLine>(conn)
            .unwrap()
            .into_iter()
            .map(|l| l.line)
            .collect(),
            Backend::Sqlite => diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
                .load::<SqlitePlanLine>(conn)
                .unwrap()
                .into_iter()
                .map(|l| l.detail)
                .collect(),
        };
        for line in lines {
            println!("     {line}");
        }
    }
}

#[derive(QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

struct Ids {
    pool: String,
    donor: String,
    ngo: String,
    finance: String,
    qip: String,
    dsrsg: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct TextValue {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

fn count_of(conn: &mut DbConn, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

fn text_of(conn: &mut DbConn, sql: &str) -> String {
    diesel::sql_query(sql).get_result::<TextValue>(conn).unwrap().v
}

/// Fresh statistics after a bulk load, and on PostgreSQL a VACUUM too: the load upserts each daily-totals row
/// thousands of times in minutes, leaving long HOT chains that autovacuum would prune within a minute or so on a
/// live system (postings touch them a few at a time). Then a checkpoint, so the load's write-back (gigabytes of
/// WAL, dirty pages) is not flushed in the middle of the reads measured next: the reads see a steady system.
fn analyze(conn: &mut DbConn, backend: Backend) {
    // One statement per call: PostgreSQL runs a multi-statement string as one transaction, where VACUUM cannot run.
    let statements: &[&str] = match backend {
        Backend::Pg => &["VACUUM ANALYZE", "CHECKPOINT"],
        Backend::Sqlite => &["ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)"],
    };
    for sql in statements {
        conn.batch_execute(sql).unwrap();
    }
}

/// `qip-pool ARGS` over `url` with the shipped defaults, the bench's secret and no sign-in rate limit (plus any
/// `QIP__` variables of the bench's environment, e.g. `QIP__DATABASE__POOL_SIZE=4` to compare).
fn qip(url: &str, args: &[&str]) -> Command {
    let mut cmd = server_process::qip(url, JWT_SECRET, args);
    cmd.env("QIP__AUTH__AUTH_RATE_LIMIT_PER_MINUTE", "1000000");
    cmd
}

struct Loader<'a> {
    backend: Backend,
    ids: &'a Ids,
}

impl Loader<'_> {
    /// `INSERT INTO … SELECT <select> FROM <series lo..=hi as i>` on either backend.
    fn series(&self, conn: &mut DbConn, lo: u64, hi: u64, insert: &str, select: &str) {
        if hi < lo {
            return;
        }
        let sql = match self.backend {
            Backend::Pg => {
                format!("{insert} SELECT {select} FROM generate_series({lo}::bigint, {hi}::bigint) AS s(i)")
            }
            Backend::Sqlite => format!(
                "WITH RECURSIVE s(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM s WHERE i < {hi}) {insert} SELECT {select} FROM s WHERE true"
            ),
        };
        conn.batch_execute(&sql).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    }

    fn pad(&self, e: &str) -> String {
        match self.backend {
            Backend::Pg => format!("lpad(CAST({e} AS TEXT), 9, '0')"),
            Backend::Sqlite => format!("printf('%09d', {e})"),
        }
    }

    /// A timestamp `minutes` after 2025-11-01.
    fn ts(&self, minutes: &str) -> String {
        match self.backend {
            Backend::Pg => format!("(TIMESTAMP '2025-11-01 00:00:00' + ({minutes}) * INTERVAL '1 minute')"),
            Backend::Sqlite => format!("datetime('2025-11-01 00:00:00', '+' || ({minutes}) || ' minutes')"),
        }
    }

    fn day(&self, days: &str) -> String {
        match self.backend {
            Backend::Pg => format!("(DATE '2025-01-01' + CAST({days} AS INTEGER))"),
            Backend::Sqlite => format!("date('2025-01-01', '+' || ({days}) || ' days')"),
        }
    }

    /// Grows the database from `from` to `to` rows.
    fn load(&self, conn: &mut DbConn, from: &Sizes, to: &Sizes) {
        let Ids {
            pool,
            donor,
            ngo,
            finance,
            qip,
            dsrsg,
        } = self.ids;
        let (p0, p1) = (from.proposals + 1, to.proposals);
        let pid = format!("'p-' || {}", self.pad("i"));
        let created = self.ts("i");
        let sv = format!("(SELECT settings_version FROM pools WHERE id = '{pool}')");
        // Workload proposals (1..=200): 1-40 and 81-100 in implementation (81-100 with a report to accept),
        // 41-80 in review with a DSRSG step open, 101-200 approved with a tranche to pay. History: closed,
        // rejected, withdrawn, completed.
        let w = WORKLOAD_PROPOSALS;
        let state = format!(
            "CASE WHEN i <= 40 THEN 'in_implementation' WHEN i <= 80 THEN 'in_review' WHEN i <= 100 THEN 'in_implementation' \
             WHEN i <= {w} THEN 'approved' WHEN i % 10 < 6 THEN 'closed' WHEN i % 10 < 8 THEN 'rejected' \
             WHEN i % 10 = 8 THEN 'withdrawn' ELSE 'completed' END"
        );
        self.series(
            conn,
            p0,
            p1,
            "INSERT INTO proposals (id, pool_id, organization_id, reference, state, current_version, version, title, search_text, \
             sector_code, adm1_pcode, adm2_pcode, requested_minor, pool_settings_version, created_by, created_at, updated_at, \
             first_submitted_at, submitted_at, submitted_by)",
            &format!(
                "{pid}, '{pool}', '{ngo}', 'QIP-B-' || {pad}, {state}, 1, 1, 'Bench proposal ' || i, 'bench proposal ' || i, \
                 NULL, NULL, NULL, 1000000, {sv}, '{qip}', {created}, {created}, {created}, {created}, '{qip}'",
                pad = self.pad("i"),
            ),
        );
        self.series(
            conn,
            p0,
            p1,
            "INSERT INTO proposal_versions (proposal_id, number, status, content, budget_total_minor, requested_minor, duration_days, \
             waiver_reasons, pool_settings_version, created_by, created_at, submitted_by, submitted_at)",
            &format!("{pid}, 1, 'submitted', '{{}}', 1000000, 1000000, 180, NULL, {sv}, '{qip}', {created}, '{qip}', {created}"),
        );
        // Two steps each: decided for history, the second open for the in-review workload.
        for position in [1, 2] {
            let hat = if position == 1 { "head_of_office" } else { "dsrsg" };
            let open = format!("(i > 40 AND i <= 80 AND {position} = 2)");
            self.series(
                conn,
                p0,
                p1,
                "INSERT INTO approval_steps (id, proposal_id, version_number, position, hat, reason, financial, sla_days, status, \
                 opened_at, due_at, overdue, decided_by, decided_hat, acting, decided_at, decision, comment, conditions, \
                 multi_hat_acknowledgement, created_at)",
                &format!(
                    "'st-{position}-' || {pad}, {pid}, 1, {position}, '{hat}', 'always', false, 5, \
                     CASE WHEN {open} THEN 'pending' ELSE 'approved' END, {created}, \
                     CASE WHEN {open} THEN {due} ELSE {created} END, false, \
                     CASE WHEN {open} THEN NULL ELSE '{dsrsg}' END, CASE WHEN {open} THEN NULL ELSE '{hat}' END, false, \
                     CASE WHEN {open} THEN NULL ELSE {created} END, CASE WHEN {open} THEN NULL ELSE 'approve' END, \
                     NULL, NULL, NULL, {created}",
                    pad = self.pad("i"),
                    due = self.ts("600000 + i"),
                ),
            );
        }
        // Accounts and balance rows per proposal (commitment, disbursed).
        for (prefix, kind) in [("acc-c-", "commitment"), ("acc-d-", "disbursed")] {
            let acc = format!("'{prefix}' || {}", self.pad("i"));
            self.series(
                conn,
                p0,
                p1,
                "INSERT INTO ledger_accounts (id, pool_id, kind, owner_id, currency, created_at)",
                &format!("{acc}, '{pool}', '{kind}', {pid}, 'USD', {created}"),
            );
            self.series(
                conn,
                p0,
                p1,
                "INSERT INTO ledger_balances (account_id, pool_id, kind, balance_minor)",
                &format!("{acc}, '{pool}', '{kind}', 0"),
            );
        }
        // Tranches: history paid; in implementation the first paid; approved the first payable now.
        for (number, percent, condition) in [(1, 60, "on_approval"), (2, 40, "on_completion_report_accepted")]
        {
            self.series(
                conn,
                p0,
                p1,
                "INSERT INTO tranches (id, proposal_id, number, percent, amount_minor, condition, status, paid_minor, waive_reason, created_at)",
                &format!(
                    "'tr-{number}-' || {pad}, {pid}, {number}, {percent}, {amount}, '{condition}', \
                     CASE WHEN i <= 40 OR (i > 80 AND i <= {w}) THEN (CASE WHEN {number} = 1 AND i <= 100 THEN 'paid' ELSE 'scheduled' END) \
                          WHEN i <= 80 THEN 'scheduled' ELSE 'paid' END, \
                     CASE WHEN (i <= 40 OR (i > 80 AND i <= 100)) AND {number} = 1 THEN {amount} WHEN i > {w} THEN {amount} ELSE 0 END, \
                     NULL, {created}",
                    pad = self.pad("i"),
                    amount = percent * 10_000,
                ),
            );
        }
        // Reports: a submitted completion report on workload 81-100, an accepted one on history.
        self.series(
            conn,
            p0,
            p1,
            "INSERT INTO reports (id, proposal_id, kind, content, expenditure_minor, status, submitted_by, submitted_at, decided_by, \
             decided_at, decision_reason)",
            &format!(
                "'rp-' || {pad}, {pid}, 'completion', '{{}}', 1000000, \
                 CASE WHEN i > 80 AND i <= 100 THEN 'submitted' ELSE 'accepted' END, '{qip}', {created}, \
                 CASE WHEN i > 80 AND i <= 100 THEN NULL ELSE '{qip}' END, CASE WHEN i > 80 AND i <= 100 THEN NULL ELSE {created} END, NULL",
                pad = self.pad("i"),
            ),
        );

        // Money: per five transactions one contribution, two commitments and two disbursements of one proposal.
        let (t0, t1) = (from.transactions + 1, to.transactions);
        let proposals = to.proposals;
        let p_of = format!("((i - 1) / 5) % {proposals} + 1");
        let kind = "CASE (i - 1) % 5 WHEN 0 THEN 'contribution' WHEN 1 THEN 'commitment' WHEN 2 THEN 'commitment' ELSE 'disbursement' END";
        let amount =
            "CASE (i - 1) % 5 WHEN 0 THEN 1000000 WHEN 1 THEN 300000 WHEN 2 THEN 300000 ELSE 100000 END";
        let tx = format!("'tx-' || {}", self.pad("i"));
        let tx_created = self.ts("i");
        self.series(
            conn,
            t0,
            t1,
            "INSERT INTO ledger_transactions (id, pool_id, kind, proposal_id, amount_minor, reference, memo, contributor_id, \
             original_currency, original_minor, fx_rate, reversal_of, idempotency_key, created_by, hat, request_id, created_at)",
            &format!(
                "{tx}, '{pool}', {kind}, CASE WHEN (i - 1) % 5 = 0 THEN NULL ELSE 'p-' || {pp} END, {amount}, 'BULK', NULL, \
                 CASE WHEN (i - 1) % 5 = 0 THEN '{donor}' ELSE NULL END, NULL, NULL, NULL, NULL, NULL, '{finance}', \
                 'finance_officer', NULL, {tx_created}",
                pp = self.pad(&p_of),
            ),
        );
        let contributor = format!(
            "(SELECT id FROM ledger_accounts WHERE pool_id = '{pool}' AND kind = 'contributor' AND owner_id = '{donor}')"
        );
        let unallocated = format!(
            "(SELECT id FROM ledger_accounts WHERE pool_id = '{pool}' AND kind = 'unallocated' AND owner_id = '')"
        );
        let commitment = format!("'acc-c-' || {}", self.pad(&p_of));
        let disbursed = format!("'acc-d-' || {}", self.pad(&p_of));
        // PostgreSQL keeps the daily and monthly roll-ups once per INSERT statement (migration R1), so the bulk
        // load keeps them as live postings do (the per-row triggers it replaced had to be switched off here).
        for leg in [0, 1] {
            let (from_acc, to_acc) = (
                format!(
                    "CASE (i - 1) % 5 WHEN 0 THEN {contributor} WHEN 1 THEN {unallocated} WHEN 2 THEN {unallocated} ELSE {commitment} END"
                ),
                format!(
                    "CASE (i - 1) % 5 WHEN 0 THEN {unallocated} WHEN 1 THEN {commitment} WHEN 2 THEN {commitment} ELSE {disbursed} END"
                ),
            );
            let (account, sign) = if leg == 0 { (from_acc, "-") } else { (to_acc, "") };
            self.series(
                conn,
                t0,
                t1,
                "INSERT INTO ledger_entries (transaction_id, leg, account_id, amount_minor)",
                &format!("{tx}, {leg}, {account}, {sign}({amount})"),
            );
        }
        // Payments: the first disbursement of each proposal pays its first tranche (history and the workload in
        // implementation, paid long ago so their implementations are overdue), once that disbursement is loaded
        // (transaction 5p - 1 of proposal p).
        let paid_through = |s: &Sizes| s.proposals.min(s.transactions / 5);
        self.series(
            conn,
            paid_through(from) + 1,
            paid_through(to),
            "INSERT INTO tranche_payments (transaction_id, proposal_id, tranche_number, amount_minor, paid_on, payment_reference, paid_by, created_at)",
            &format!(
                "'tx-' || {txp}, {pid}, 1, 100000, {paid_on}, 'PAY-' || i, '{finance}', {created}",
                txp = self.pad("5 * (i - 1) + 4"),
                paid_on = self.day("i % 300"),
            ),
        );
        // Balances follow the entries.
        conn.batch_execute(&format!(
            "UPDATE ledger_balances SET balance_minor = (SELECT COALESCE(SUM(e.amount_minor), 0) FROM ledger_entries e \
             WHERE e.account_id = ledger_balances.account_id) WHERE pool_id = '{pool}'"
        ))
        .unwrap();

        // Audit trail: one event per posting and per proposal decision, appended after the real ones. The bulk
        // rows carry placeholder hashes: `audit verify` is not part of this benchmark.
        let head = count_of(
            conn,
            "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) AS n FROM audit_events",
        );
        let (a0, a1) = (from.audit_events + 1, to.audit_events);
        let offset = head - i64::try_from(from.audit_events).unwrap();
        let actions = "CASE i % 4 WHEN 0 THEN 'ledger.contribution' WHEN 1 THEN 'ledger.commitment' WHEN 2 THEN 'ledger.disbursement' ELSE 'proposal.submit' END";
        self.series(
            conn,
            a0,
            a1,
            "INSERT INTO audit_events (seq, id, occurred_at, actor_id, actor_username, organization_id, hat, acting, action, entity_type, \
             entity_id, request_id, client_addr, outcome, reason, before_state, after_state, prev_hash, hash)",
            &format!(
                "i + {offset}, 'ae-' || {pad}, {ts}, '{finance}', 'finance', NULL, 'finance_officer', false, {actions}, 'transaction', \
                 'tx-' || {pad}, NULL, '127.0.0.1', 'success', NULL, NULL, '{{\"amount\":\"100.00\"}}', {hash}, {hash}",
                pad = self.pad("i"),
                ts = self.ts("i / 2"),
                hash = format!("'bulk' || {}", self.pad("i")),
            ),
        );
        conn.batch_execute(
            "UPDATE audit_head SET seq = (SELECT MAX(seq) FROM audit_events), \
             hash = (SELECT hash FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)) WHERE id = 1",
        )
        .unwrap();
    }
}

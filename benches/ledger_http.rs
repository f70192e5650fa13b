//! Ledger posting benchmark (docs/BENCHMARKS.md). Against PostgreSQL it measures, in one run:
//!   1. contributions posted over HTTP by an authenticated `finance_officer`, each with its own
//!      Idempotency-Key, at a fixed concurrency — throughput and p50/p99 latency;
//!   2. `pgbench -M prepared` running the same SQL statements the service issues for one such request written
//!      alone (the authorization read, the request's reads, then one transaction holding one statement: the
//!      idempotency record, the unsealed audit event, the transaction, its entries and balances) at the same
//!      concurrency — throughput (the service groups concurrent requests into one statement; pgbench cannot);
//!   3. the bare double-entry transfer of issue 14 in pgbench, on one hot pair and spread over 50 pairs, and
//!      HTTP again with the contributions spread over QIP_BENCH_POOLS pools;
//!
//! while the audit sealer runs beside the server as `serve` runs it (every `audit.seal_interval_ms`); at the
//! end every event must be sealed into one intact chain. Prints the ratios HTTP / pgbench and HTTP / bare. Run: `scripts/with-postgres.sh cargo bench --bench ledger_http`.
//! Tunables (environment): QIP_BENCH_CLIENTS (8), QIP_BENCH_SECONDS (10), QIP_BENCH_WARMUP (300),
//! QIP_BENCH_POOLS (50).
//! What-if runs with the database's triggers off set QIP_BENCH_WHAT_IF_NO_LEDGER_CHECK (docs/BENCHMARKS.md,
//! "Ceilings").

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, Bench, CpuSnapshot, env_or, machine_busy_ms, percentile};

fn main() {
    let Some(admin_url) = common::admin_url() else {
        eprintln!(
            "ledger_http: needs PostgreSQL; run `scripts/with-postgres.sh cargo bench --bench ledger_http`"
        );
        return;
    };
    let clients = env_or("QIP_BENCH_CLIENTS", 8) as usize;
    let seconds = env_or("QIP_BENCH_SECONDS", 10);
    let warmup = env_or("QIP_BENCH_WARMUP", 300) as usize;
    let bench = Bench::start(&admin_url, "qip_bench", clients);
    let base = bench.base.clone();
    let client = reqwest::blocking::Client::new();
    let api = common::Api {
        client: client.clone(),
        base: base.to_string(),
    };
    let call =
        |method: &str, path: &str, token: Option<&str>, body: Value| api.call(method, path, token, body);
    let login = |user: &str, password: &str| api.login(user, password);
    let admin_token = login("admin", ADMIN_PASSWORD);
    let org = |code: &str, kind: &str| api.org(&admin_token, code, kind);
    let office = org("FIN", "mission_section");
    let donor = org("DONOR", "contributor");
    let user = |username: &str, hat: &str| -> String {
        let created = call(
            "POST",
            "/api/v1/users",
            Some(&admin_token),
            json!({"username": username, "display_name": username, "email": format!("{username}@bench.invalid"),
                   "organization_id": office}),
        );
        bench.set_password(&created, "bench-user-passphrase-1");
        let id = created["id"].as_str().unwrap().to_owned();
        let granted = call(
            "POST",
            &format!("/api/v1/users/{id}/hats"),
            Some(&admin_token),
            json!({"hat": hat}),
        );
        bench.confirm_if_pending(&granted);
        id
    };
    let finance_id = user("finance", "finance_officer");
    user("qip", "qip_officer");
    let qip_token = login("qip", "bench-user-passphrase-1");
    let pool_id = call(
        "POST",
        "/api/v1/pools",
        Some(&qip_token),
        json!({"code": "BENCH", "name": "Bench", "currency": "USD", "funding_start": "2026-01-01", "funding_end": "2027-12-31"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let spread = env_or("QIP_BENCH_POOLS", 50).max(1) as usize;
    let mut pool_ids = vec![pool_id.clone()];
    for i in 1..spread {
        pool_ids.push(
            call(
                "POST",
                "/api/v1/pools",
                Some(&qip_token),
                json!({"code": format!("BENCH{i}"), "name": format!("Bench {i}"), "currency": "USD",
                       "funding_start": "2026-01-01", "funding_end": "2027-12-31"}),
            )["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let paths: Vec<String> = pool_ids
        .iter()
        .map(|id| format!("/api/v1/pools/{id}/contributions"))
        .collect();
    let finance_token = login("finance", "bench-user-passphrase-1");
    // The sealer, as `serve` runs it beside the server: a pass every `audit.seal_interval_ms`. Records the
    // largest unsealed age it saw after a pass (the merge delay under load).
    let sealing = std::sync::atomic::AtomicBool::new(true);
    let seal_every = Duration::from_millis(
        qip_pool::config::Settings::load_from(None, std::env::vars())
            .unwrap()
            .audit
            .seal_interval_ms,
    );
    let post_to = |pool: usize, key: &str| -> Duration {
        let started = Instant::now();
        let res = client
            .post(format!("{base}{}", paths[pool % paths.len()]))
            .bearer_auth(&finance_token)
            .header("Idempotency-Key", key)
            .json(&json!({"contributor_organization_id": donor, "amount": "125.50", "currency": "USD", "reference": "BENCH"}))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
        let _ = res.bytes();
        started.elapsed()
    };
    let post = |key: &str| post_to(0, key);

    std::thread::scope(|scope| {
        let sealer = scope.spawn(|| {
            let mut conn = bench.pool.get().unwrap();
            let (mut sealed, mut passes, mut worst_ms) = (0u64, 0u64, 0i64);
            while sealing.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(seal_every);
                sealed += qip_pool::jobs::audit_sealer::seal_once(&mut conn);
                passes += 1;
                let tail = qip_pool::features::audit::unsealed_tail(&mut conn).unwrap();
                worst_ms = worst_ms.max(tail.oldest_age_ms.unwrap_or(0));
            }
            (sealed, passes, worst_ms)
        });
        // A failing check below must end the run, not hang it: the scope waits for the sealer, so a panic stops
        // it on the way out.
        let _stop_sealer_on_panic = StopOnDrop(&sealing);
        // Warm-up on tables that then hold data, then fresh statistics (DESIGN.md §11).
        for i in 0..warmup {
            post(&format!("warm-{i}"));
        }
        let mut bench_conn = PgConnection::establish(&bench.url).unwrap();
        bench_conn.batch_execute("ANALYZE").unwrap();

        // 1. HTTP.
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut latencies: Vec<Duration> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    let post = &post;
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        let mut n = 0;
                        while Instant::now() < deadline {
                            mine.push(post(&format!("bench-{c}-{n}")));
                            n += 1;
                        }
                        mine
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort();
        let http_tps = latencies.len() as f64 / elapsed;
        let report = qip_pool::features::ledger::check::check(&mut bench.pool.get().unwrap()).unwrap();
        common::require_ledger_check(&report, "after the HTTP run");

        // 2. pgbench with the same statements.
        let accounts: Vec<(String, String)> = diesel::sql_query(format!(
            "SELECT id, kind FROM ledger_accounts WHERE pool_id = '{pool_id}' ORDER BY id"
        ))
        .load::<AccountIdKind>(&mut bench_conn)
        .unwrap()
        .into_iter()
        .map(|a| (a.id, a.kind))
        .collect();
        let contributor = accounts.iter().find(|a| a.1 == "contributor").unwrap().0.clone();
        let unallocated = accounts.iter().find(|a| a.1 == "unallocated").unwrap().0.clone();
        let pg_tps = bench.pgbench(
            pgbench_script(),
            clients,
            seconds,
            &[
                ("user_id", &finance_id),
                ("pool_id", &pool_id),
                ("donor_id", &donor),
                ("acc_contrib", &contributor),
                ("acc_unalloc", &unallocated),
            ],
        );

        // 3. The bare double-entry transfer of the issue (BEGIN; lock two balance rows in id order; insert the
        // transaction and two entries; update two balances; COMMIT) on one hot pair and spread over 50 pairs.
        bench_conn.batch_execute(common::BARE_LEDGER_SCHEMA).unwrap();
        let bare_hot = bench.pgbench(common::BARE_TRANSFER, clients, seconds, &[("pairs", "1")]);
        // The machine's CPU per transfer, pgbench included (its backends exit with it, their counters with them).
        let machine_before = machine_busy_ms();
        let bare_spread = bench.pgbench(common::BARE_TRANSFER, clients, seconds, &[("pairs", "50")]);
        let bare_spread_cpu = (machine_busy_ms() - machine_before) / (bare_spread * seconds as f64).max(1.0);

        // 4. HTTP again, each client's contributions going round the pools (no two postings share balance rows
        // unless they hit the same pool).
        let cpu_before = CpuSnapshot::now(&bench.name);
        let group_before = group_commit_counts(&client, &base);
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut spread_latencies: Vec<Duration> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|c| {
                    let post_to = &post_to;
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        let mut n = 0;
                        while Instant::now() < deadline {
                            mine.push(post_to(c * 7 + n, &format!("spread-{c}-{n}")));
                            n += 1;
                        }
                        mine
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let spread_elapsed = started.elapsed().as_secs_f64();
        let cpu_after = CpuSnapshot::now(&bench.name);
        let group_after = group_commit_counts(&client, &base);
        spread_latencies.sort();
        let http_spread_tps = spread_latencies.len() as f64 / spread_elapsed;
        sealing.store(false, std::sync::atomic::Ordering::SeqCst);
        let (sealed, passes, worst_ms) = sealer.join().unwrap();
        // Everything the runs wrote ends in one intact chain (pgbench's events included: the sealer chains any
        // committed event).
        let mut conn = bench.pool.get().unwrap();
        let last =
            qip_pool::features::audit::seal_pending(&mut conn, qip_pool::features::audit::WhenBusy::Wait)
                .unwrap();
        let chain = qip_pool::features::audit::verify_chain(&mut conn).unwrap();
        assert!(chain.intact, "audit chain broken after the runs: {chain:?}");
        assert_eq!(chain.unsealed_events, 0);
        let report = qip_pool::features::ledger::check::check(&mut conn).unwrap();
        common::require_ledger_check(&report, "after the runs");
        drop(conn);

        println!(
            "ledger_http: contributions over HTTP vs the same statements in pgbench (PostgreSQL, {clients} clients, {seconds} s each)"
        );
        println!(
            "  http     {http_tps:>9.1} posts/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} posts)",
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.len()
        );
        println!("  pgbench  {pg_tps:>9.1} tx/s      (-M prepared, same statements and locks)");
        println!(
            "  ratio http/pgbench = {:.2}   (target >= 0.50)",
            http_tps / pg_tps
        );
        println!(
            "  bare transfer, hot pair       {bare_hot:>9.1} tx/s   ratio http/bare = {:.2}",
            http_tps / bare_hot
        );
        println!(
            "  bare transfer, 50 pairs       {bare_spread:>9.1} tx/s   ratio http/bare = {:.2}",
            http_tps / bare_spread
        );
        println!(
            "  http over {spread} pools {http_spread_tps:>9.1} posts/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} posts)   ratio http/bare 50 pairs = {:.2}",
            percentile(&spread_latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&spread_latencies, 0.99).as_secs_f64() * 1e3,
            spread_latencies.len(),
            http_spread_tps / bare_spread
        );
        let (process, backends, machine) =
            cpu_after.per_transaction_since(&cpu_before, spread_latencies.len() as f64);
        println!(
            "    CPU per post over {spread} pools: this process (HTTP clients, server, sealer) {:.2} ms, PostgreSQL backends {:.2} ms, machine {:.2} ms (a bare transfer over 50 pairs: machine {bare_spread_cpu:.2} ms); group commit: {} requests in {} batches (mean {:.1})",
            process,
            backends,
            machine,
            group_after.1 - group_before.1,
            group_after.0 - group_before.0,
            (group_after.1 - group_before.1) / (group_after.0 - group_before.0).max(1.0),
        );
        println!(
            "  audit sealer: {sealed} events in {passes} passes every {} ms (+{last} at the end); largest unsealed age after a pass {worst_ms} ms; chain intact, {} events",
            seal_every.as_millis(),
            chain.events_checked
        );
        drop(bench_conn);
    });
    bench.finish();
}

/// The server's group-commit counters (batches, requests) from `/metrics`.
fn group_commit_counts(client: &reqwest::blocking::Client, base: &str) -> (f64, f64) {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
            .unwrap_or(0.0)
    };
    (
        value("qip_ledger_group_commit_batches_total"),
        value("qip_ledger_group_commit_requests_total"),
    )
}

#[derive(QueryableByName)]
struct AccountIdKind {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
}

/// The statements one contribution request issues on PostgreSQL, in order, when it is written alone (see
/// `features::ledger::group_commit` and `repo::post_batch_pg`; the service groups concurrent requests into one
/// such statement, which pgbench cannot): one connection checkout per request and no `SELECT 1` probe (only
/// after a lost connection), the authorization read, the request's reads (pool, contributor, its two accounts)
/// in one statement, then one transaction holding one statement — the idempotency record, the unsealed audit
/// event (no chain-head lock: the sealer chains it after commit), the transaction, its entries, and the
/// balances locked in account order and updated (the roll-ups by the statement-level trigger at its end).
fn pgbench_script() -> &'static str {
    r#"\set amount 12550
-- authorization: the account, its session cut-off and its hats in one statement.
SELECT u.id, u.username, u.display_name, u.email, u.organization_id, u.status, u.password_hash, u.failed_logins, u.failed_window_start, u.locked_until, u.lock_count, u.created_at, u.updated_at, c.sessions_valid_after, h.id, h.user_id, h.hat, h.scope_organization_id, h.scope_adm1, h.valid_from, h.valid_until, h.acting, h.granted_by, h.granted_at, h.revoked_by, h.revoked_at FROM users u LEFT JOIN session_cutoffs c ON c.user_id = u.id LEFT JOIN hats h ON h.user_id = u.id AND h.revoked_at IS NULL WHERE u.id = :user_id ORDER BY h.id;
-- request reads: the pool's currency, the contributor, and its two accounts, in one statement.
SELECT p.currency, EXISTS (SELECT 1 FROM organizations WHERE id = :donor_id) AS contributor_exists, (SELECT a.id FROM ledger_accounts AS a JOIN ledger_balances AS b ON b.account_id = a.id WHERE a.pool_id = p.id AND a.kind = 'contributor' AND a.owner_id = :donor_id) AS contributor_account, (SELECT a.id FROM ledger_accounts AS a JOIN ledger_balances AS b ON b.account_id = a.id WHERE a.pool_id = p.id AND a.kind = 'unallocated' AND a.owner_id = '') AS unallocated_account FROM pools AS p WHERE p.id = :pool_id;
\set idem_key random(1, 1000000000000)
BEGIN;
WITH claimed AS (INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status, response_status, response_body, transaction_id, locked_until, created_at, expires_at) VALUES (:user_id, 'b' || :idem_key || '-' || :client_id, md5(random()::text), 'done', 201, repeat('x', 900), 'b' || :idem_key || '-' || :client_id, now(), now(), now() + interval '7 days')), posted_events AS (INSERT INTO audit_events (id, occurred_at, actor_id, actor_username, organization_id, hat, acting, action, entity_type, entity_id, request_id, client_addr, outcome, reason, before_state, after_state) VALUES (gen_random_uuid()::text, now(), :user_id, 'finance', NULL, 'finance_officer', false, 'ledger.contribution', 'transaction', gen_random_uuid()::text, gen_random_uuid()::text, '127.0.0.1', 'success', NULL, NULL, '{"amount":"125.50","currency":"USD","kind":"contribution","legs":[{"account":"contributor","amount":"-125.50"},{"account":"unallocated","amount":"125.50"}]}')), posted_transactions AS (INSERT INTO ledger_transactions (id, pool_id, kind, proposal_id, amount_minor, reference, memo, contributor_id, original_currency, original_minor, fx_rate, reversal_of, idempotency_key, created_by, hat, request_id, created_at) VALUES ('b' || :idem_key || '-' || :client_id, :pool_id, 'contribution', NULL, :amount, 'BENCH', NULL, :donor_id, NULL, NULL, NULL, NULL, :user_id::text || ':' || :idem_key::text || '-' || :client_id, :user_id, 'finance_officer', gen_random_uuid()::text, now())), posted_entries AS (INSERT INTO ledger_entries (transaction_id, leg, account_id, amount_minor) VALUES ('b' || :idem_key || '-' || :client_id, 0, :acc_contrib, -(:amount::bigint)), ('b' || :idem_key || '-' || :client_id, 1, :acc_unalloc, :amount)), change AS (SELECT account_id, CAST(sum(delta) AS BIGINT) AS delta FROM (VALUES (:acc_contrib, CAST(-(:amount::bigint) AS BIGINT)), (:acc_unalloc, CAST(:amount AS BIGINT))) AS c (account_id, delta) GROUP BY account_id), locked AS (SELECT account_id FROM ledger_balances WHERE account_id IN (SELECT account_id FROM change) ORDER BY account_id FOR UPDATE), moved AS (UPDATE ledger_balances AS b SET balance_minor = b.balance_minor + change.delta FROM locked, change WHERE b.account_id = locked.account_id AND change.account_id = b.account_id RETURNING b.account_id) SELECT count(*) AS moved FROM moved;
COMMIT;
"#
}

/// Clears its flag when dropped (here: when a panic unwinds out of the measuring scope).
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

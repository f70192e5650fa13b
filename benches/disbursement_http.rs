//! Disbursement benchmark (docs/BENCHMARKS.md). Against PostgreSQL it prepares approved proposals over HTTP,
//! then measures in one run, for two variants — payments spread over many proposals, and a hot-row variant
//! with all payments on two proposals:
//!   1. tranche payments over HTTP by an authenticated `finance_officer`, each with its own Idempotency-Key —
//!      throughput and p50/p99 latency;
//!   2. `pgbench -M prepared` running the statements the service issues for one payment (authorization reads,
//!      request checks, then in one transaction the idempotency claim, the proposal lock, tranche and report
//!      reads, the posting with its balance locks, entries and audit event, the payment record, tranche and
//!      proposal updates, the second audit event, the response reads and the idempotency record) at the same
//!      concurrency — the audit events unsealed, as the service writes them (the sealer chains them later);
//!   3. the bare double-entry transfer of issue 14 (`common::BARE_TRANSFER`) at the same concurrency, over as
//!      many account pairs as the variant has proposals;
//!
//! and prints the ratios HTTP / pgbench and HTTP / bare. Run: `scripts/with-postgres.sh cargo bench --bench disbursement_http`.
//! Tunables: QIP_BENCH_CLIENTS (8), QIP_BENCH_SECONDS (10), QIP_BENCH_PROPOSALS (48).
//! What-if runs with the database's triggers off set QIP_BENCH_WHAT_IF_NO_LEDGER_CHECK (docs/BENCHMARKS.md,
//! "Ceilings").

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

#[path = "common/mod.rs"]
#[expect(dead_code, reason = "the set-up helpers this bench does not use")]
mod common;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, Bench, CpuSnapshot, env_or, machine_busy_ms, percentile};

struct Client {
    http: reqwest::blocking::Client,
    base: String,
}

impl Client {
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, String)],
        body: Value,
    ) -> Value {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if method != "GET" {
            req = req.json(&body);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = req.send().unwrap();
        let status = res.status();
        let text = res.text().unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    fn login(&self, user: &str) -> String {
        self.call(
            "POST",
            "/api/v1/auth/login",
            None,
            &[],
            json!({"username": user, "password": "bench-user-passphrase-1"}),
        )["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[derive(QueryableByName)]
struct Target {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    owner_id: String,
}

fn main() {
    let Some(admin_url) = common::admin_url() else {
        eprintln!(
            "disbursement_http: needs PostgreSQL; run `scripts/with-postgres.sh cargo bench --bench disbursement_http`"
        );
        return;
    };
    let clients = env_or("QIP_BENCH_CLIENTS", 8) as usize;
    let seconds = env_or("QIP_BENCH_SECONDS", 10);
    let proposals = env_or("QIP_BENCH_PROPOSALS", 48) as usize;
    let bench = Bench::start(&admin_url, "qip_bench_d", clients);
    let base = bench.base.clone();
    let c = Client {
        http: reqwest::blocking::Client::new(),
        base,
    };

    // A mission: organisations, one user per role, a gazetteer, a funded pool, a rule.
    let admin_token = c.call(
        "POST",
        "/api/v1/auth/login",
        None,
        &[],
        json!({"username": "admin", "password": ADMIN_PASSWORD}),
    )["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let org = |code: &str, kind: &str| -> String {
        c.call(
            "POST",
            "/api/v1/organizations",
            Some(&admin_token),
            &[],
            json!({"code": code, "name": code, "kind": kind}),
        )["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let office = org("OFFICE", "mission_office");
    let unit_org = org("UNIT", "military_unit");
    let ocha_org = org("OCHA", "coordination");
    let donor = org("DONOR", "contributor");
    let user = |username: &str, org: &str, hats: &[Value]| -> String {
        let created = c.call(
            "POST",
            "/api/v1/users",
            Some(&admin_token),
            &[],
            json!({"username": username, "display_name": username,
            "email": format!("{username}@bench.invalid"), "organization_id": org}),
        );
        bench.set_password(&created, "bench-user-passphrase-1");
        let id = created["id"].as_str().unwrap().to_owned();
        for hat in hats {
            let granted = c.call(
                "POST",
                &format!("/api/v1/users/{id}/hats"),
                Some(&admin_token),
                &[],
                hat.clone(),
            );
            bench.confirm_if_pending(&granted);
        }
        id
    };
    let finance_id = user("finance", &office, &[json!({"hat": "finance_officer"})]);
    user("qip", &office, &[json!({"hat": "qip_officer"})]);
    user("unit", &unit_org, &[json!({"hat": "submitter"})]);
    user("ocha", &ocha_org, &[json!({"hat": "consultee"})]);
    user("hc.bench", &office, &[json!({"hat": "hc"})]);
    user(
        "hoo",
        &office,
        &[json!({"hat": "head_of_office", "scope_adm1": "XY01"})],
    );
    let (qip, unit, ocha, hc, hoo, finance) = (
        c.login("qip"),
        c.login("unit"),
        c.login("ocha"),
        c.login("hc.bench"),
        c.login("hoo"),
        c.login("finance"),
    );
    let res = c
        .http
        .post(format!("{}/api/v1/areas/import", c.base))
        .bearer_auth(&qip)
        .header("content-type", "text/csv")
        .body("ADM1_PCODE,ADM1_EN,ADM2_PCODE,ADM2_EN\nXY01,North,XY0101,Kalma\n")
        .send()
        .unwrap();
    assert!(res.status().is_success());
    let pool_id = c.call(
        "POST",
        "/api/v1/pools",
        Some(&qip),
        &[],
        json!({"code": "BENCH", "name": "Bench", "currency": "USD",
        "funding_start": "2026-01-01", "funding_end": "2027-12-31"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.call(
        "POST",
        "/api/v1/consultation-rules",
        Some(&qip),
        &[],
        json!({"organization_id": ocha_org, "always_consult": true}),
    );
    c.call(
        "POST",
        &format!("/api/v1/pools/{pool_id}/contributions"),
        Some(&finance),
        &[("Idempotency-Key", "fund".into())],
        json!({"contributor_organization_id": donor, "amount": "10000000.00", "currency": "USD"}),
    );

    // Approved proposals, each with a 6,000.00 first tranche payable now.
    let mut ids = Vec::new();
    for i in 0..proposals {
        let p = c.call("POST", "/api/v1/proposals", Some(&unit), &[], json!({
            "pool_id": pool_id, "title": format!("Bench {i}"), "summary": "s", "objectives": "o", "confidence_building_purpose": "c",
            "sector_code": "HEA", "location": {"adm1_pcode": "XY01", "adm2_pcode": "XY0101"},
            "implementing_partner": {"kind": "local_authority", "name": "Council"},
            "beneficiaries": {"women": 1, "men": 1, "girls": 1, "boys": 1},
            "planned_start": "2027-01-01", "planned_end": "2027-03-01",
            "budget_lines": [{"description": "Works", "category": "materials", "quantity": "1", "unit_cost": "10000.00"}],
            "requested_amount": "10000.00", "handover": {"local_authority": "Council", "maintenance": "Committee"},
            "local_ownership": "Endorsed", "screening": {"civilian_actor_present": false, "unique_military_capability": "Engineers",
            "time_limited_with_handover": true, "assistance_type": "indirect", "humanitarian_access_risk": "Low"}}));
        let id = p["id"].as_str().unwrap().to_owned();
        c.call(
            "POST",
            &format!("/api/v1/proposals/{id}/submit"),
            Some(&unit),
            &[("If-Match", "\"1\"".into())],
            Value::Null,
        );
        c.call(
            "POST",
            &format!("/api/v1/proposals/{id}/consultation/responses"),
            Some(&ocha),
            &[],
            json!({"kind": "no_objection"}),
        );
        for who in [&hc, &hoo] {
            let a = c.call(
                "GET",
                &format!("/api/v1/proposals/{id}/approval"),
                Some(&qip),
                &[],
                Value::Null,
            );
            let step = a["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["current"] == true)
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            c.call(
                "POST",
                &format!("/api/v1/proposals/{id}/approval/steps/{step}/decision"),
                Some(who),
                &[("If-Match", format!("\"{}\"", a["version"]))],
                json!({"decision": "approve"}),
            );
        }
        ids.push(id);
    }
    let mut bench_conn = PgConnection::establish(&bench.url).unwrap();
    // Helper table for pgbench to pick a proposal by number (one primary-key read more than the service does).
    bench_conn.batch_execute("CREATE TABLE bench_targets (n INTEGER PRIMARY KEY, proposal_id TEXT, acc_commit TEXT, acc_disb TEXT, acc_first TEXT, acc_second TEXT)").unwrap();
    let post = |id: &str, key: &str| -> Duration {
        let started = Instant::now();
        let res = c
            .http
            .post(format!(
                "{}/api/v1/proposals/{id}/tranches/1/disbursements",
                c.base
            ))
            .bearer_auth(&finance)
            .header("Idempotency-Key", key)
            .json(&json!({"amount": "0.01", "paid_on": "2026-11-29", "payment_reference": "BENCH"}))
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().unwrap_or_default());
        started.elapsed()
    };
    for (i, id) in ids.iter().enumerate() {
        post(id, &format!("warm-{i}"));
    }
    let accounts: Vec<Target> = diesel::sql_query(format!(
        "SELECT id, kind, owner_id FROM ledger_accounts WHERE pool_id = '{pool_id}'"
    ))
    .load(&mut bench_conn)
    .unwrap();
    for (n, id) in ids.iter().enumerate() {
        let acc = |kind: &str| {
            accounts
                .iter()
                .find(|a| a.kind == kind && a.owner_id == *id)
                .unwrap()
                .id
                .clone()
        };
        let (commit, disb) = (acc("commitment"), acc("disbursed"));
        let (first, second) = if commit < disb {
            (&commit, &disb)
        } else {
            (&disb, &commit)
        };
        bench_conn
            .batch_execute(&format!(
                "INSERT INTO bench_targets VALUES ({}, '{id}', '{commit}', '{disb}', '{first}', '{second}')",
                n + 1
            ))
            .unwrap();
    }
    bench_conn.batch_execute(common::BARE_LEDGER_SCHEMA).unwrap();

    println!(
        "disbursement_http: tranche payments over HTTP vs the same statements in pgbench (PostgreSQL, {clients} clients, {seconds} s each)"
    );
    for (variant, spread) in [("spread", proposals), ("hot-row", 2.min(proposals))] {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let cpu_before = CpuSnapshot::now(&bench.name);
        let mut latencies: Vec<Duration> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..clients)
                .map(|cl| {
                    let (post, ids) = (&post, &ids);
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        let mut n = 0usize;
                        while Instant::now() < deadline {
                            let id = &ids[(cl * 7919 + n * 31) % spread];
                            mine.push(post(id, &format!("{variant}-{cl}-{n}")));
                            n += 1;
                        }
                        mine
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let http_tps = latencies.len() as f64 / started.elapsed().as_secs_f64();
        let cpu_after = CpuSnapshot::now(&bench.name);
        let payments = latencies.len() as f64;
        latencies.sort();
        let report = qip_pool::features::ledger::check::check(&mut bench.pool.get().unwrap()).unwrap();
        common::require_ledger_check(&report, "after the HTTP run");

        // The machine's CPU per transaction of each pgbench run, pgbench itself included: pgbench's backends exit
        // with it, so their own counters are gone by the time it returns.
        let machine_per_tx = |run: &dyn Fn() -> f64| {
            let before = machine_busy_ms();
            let tps = run();
            (
                tps,
                (machine_busy_ms() - before) / (tps * seconds as f64).max(1.0),
            )
        };
        // A script of one payment, with the variables every such script reads.
        let run_payment_script = |script: &str| {
            machine_per_tx(&|| {
                bench.pgbench(
                    script,
                    clients,
                    seconds,
                    &[("user_id", &finance_id), ("pool_id", &pool_id)],
                )
            })
        };
        let (pg_tps, pg_cpu) = run_payment_script(&pgbench_script(spread));
        let pairs = spread.to_string();
        let (bare_tps, bare_cpu) =
            machine_per_tx(&|| bench.pgbench(common::BARE_TRANSFER, clients, seconds, &[("pairs", &pairs)]));
        println!(
            "  {variant:<8} ({spread:>2} proposals)  http {http_tps:>8.1}/s  p50 {:>6.2} ms  p99 {:>7.2} ms  |  same statements {pg_tps:>8.1}/s  ratio {:.2}  |  bare transfer ({spread} pairs) {bare_tps:>8.1}/s  ratio {:.2}",
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            http_tps / pg_tps,
            http_tps / bare_tps
        );
        // What-if scripts (`QIP_BENCH_SCRIPTS`): the same payment written another way, same variables and targets.
        for path in what_if_scripts() {
            let Ok(text) = std::fs::read_to_string(&path) else {
                println!("    what-if {path}: cannot be read, skipped");
                continue;
            };
            let (tps, cpu) = run_payment_script(&text.replace("{targets}", &spread.to_string()));
            println!(
                "    what-if {path}: {tps:.1} tx/s, ratio to bare {:.2}, machine {cpu:.2} ms per transaction",
                tps / bare_tps
            );
        }
        let (process, backends, machine) = cpu_after.per_transaction_since(&cpu_before, payments);
        println!(
            "    CPU per payment: this process (HTTP clients, server, sealer) {:.2} ms, PostgreSQL backends {:.2} ms, machine {:.2} ms  |  machine per transaction: same statements {pg_cpu:.2} ms, bare transfer {bare_cpu:.2} ms",
            process, backends, machine,
        );
    }
    println!("  target (issue 14): ratio http / bare transfer >= 0.50");

    drop(bench_conn);
    bench.finish();
}

/// Paths of extra pgbench scripts to run after the same-statements script (`QIP_BENCH_SCRIPTS`, comma-separated):
/// a payment written another way, measured against the same bare transfer. `{targets}` in a script becomes the
/// variant's number of proposals; `:user_id`, `:pool_id` and the `bench_targets` table are as in
/// [`pgbench_script`].
fn what_if_scripts() -> Vec<String> {
    std::env::var("QIP_BENCH_SCRIPTS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The statements one tranche payment issues, in order (see `features::implementation::service`; counted in the
/// server log with `log_statement = all`): 3 before the transaction (authorization, the proposal's visibility,
/// the pool), then in one transaction the key claim, the proposal read and locked, the approval steps
/// (separation of duties), tranches, reports, the two accounts, the ledger audit event, the posting (written
/// here as separate statements; the service writes the transaction, its entries and both balances in one), the
/// payment record, tranche and proposal updates, the payment audit event, the notification outbox (the
/// recipients' hats in one read, the event, their e-mail preferences, the organisation's webhooks, the two
/// recipients' feed items in one insert and their e-mail deliveries in another) and the key's record.
fn pgbench_script(targets: usize) -> String {
    format!(
        r#"\set n random(1, {targets})
SELECT proposal_id, acc_commit, acc_disb, acc_first, acc_second FROM bench_targets WHERE n = :n \gset
SELECT u.id, u.username, u.organization_id, u.status, h.id, h.hat, h.scope_organization_id, h.valid_from, h.valid_until, h.acting FROM users u LEFT JOIN hats h ON h.user_id = u.id AND h.revoked_at IS NULL WHERE u.id = :user_id;
SELECT * FROM proposals WHERE id = :proposal_id;
SELECT * FROM pools WHERE id = :pool_id;
\set idem_key random(1, 1000000000000)
BEGIN;
SELECT l.locked, k.request_hash, k.status, k.response_status, k.response_body, k.expires_at FROM (SELECT pg_try_advisory_xact_lock(:idem_key) AS locked) AS l LEFT JOIN idempotency_keys AS k ON l.locked AND k.user_id = :user_id AND k.idem_key = :idem_key::text;
SELECT * FROM proposals WHERE id = :proposal_id FOR UPDATE;
SELECT * FROM approval_steps WHERE proposal_id = :proposal_id ORDER BY version_number, position;
SELECT * FROM tranches WHERE proposal_id = :proposal_id ORDER BY number;
SELECT * FROM reports WHERE proposal_id = :proposal_id ORDER BY submitted_at;
SELECT id, kind, owner_id FROM ledger_accounts WHERE pool_id = :pool_id AND ((kind = 'commitment' AND owner_id = :proposal_id) OR (kind = 'disbursed' AND owner_id = :proposal_id));
INSERT INTO audit_events (id, occurred_at, actor_id, actor_username, organization_id, hat, acting, action, entity_type, entity_id, request_id, client_addr, outcome, reason, before_state, after_state) VALUES (gen_random_uuid()::text, now(), :user_id, 'finance', NULL, 'finance_officer', false, 'ledger.disbursement', 'transaction', NULL, gen_random_uuid()::text, '127.0.0.1', 'success', NULL, NULL, repeat('x', 400));
SELECT balance_minor FROM ledger_balances WHERE account_id IN (:acc_first, :acc_second) ORDER BY account_id FOR UPDATE;
INSERT INTO ledger_transactions (id, pool_id, kind, proposal_id, amount_minor, reference, memo, contributor_id, original_currency, original_minor, fx_rate, reversal_of, idempotency_key, created_by, hat, request_id, created_at) VALUES (gen_random_uuid()::text, :pool_id, 'disbursement', :proposal_id, 1, 'BENCH', 'tranche 1', NULL, NULL, NULL, NULL, NULL, :user_id::text || ':' || :idem_key::text, :user_id, 'finance_officer', gen_random_uuid()::text, now()) RETURNING id AS tx_id \gset
INSERT INTO ledger_entries (transaction_id, leg, account_id, amount_minor) VALUES (:tx_id, 0, :acc_commit, -1), (:tx_id, 1, :acc_disb, 1);
UPDATE ledger_balances SET balance_minor = balance_minor + CASE WHEN account_id = :acc_commit THEN -1 ELSE 1 END WHERE account_id IN (:acc_commit, :acc_disb);
INSERT INTO tranche_payments (transaction_id, proposal_id, tranche_number, amount_minor, paid_on, payment_reference, paid_by, created_at) VALUES (:tx_id, :proposal_id, 1, 1, current_date, 'BENCH', :user_id, now());
UPDATE tranches SET paid_minor = paid_minor + 1 WHERE proposal_id = :proposal_id AND number = 1;
UPDATE proposals SET version = version + 1, updated_at = now() WHERE id = :proposal_id;
INSERT INTO audit_events (id, occurred_at, actor_id, actor_username, organization_id, hat, acting, action, entity_type, entity_id, request_id, client_addr, outcome, reason, before_state, after_state) VALUES (gen_random_uuid()::text, now(), :user_id, 'finance', NULL, 'finance_officer', false, 'implementation.disburse', 'proposal', :proposal_id, gen_random_uuid()::text, '127.0.0.1', 'success', NULL, NULL, repeat('y', 150)) RETURNING id AS event_id \gset
SELECT h.id, h.hat, h.user_id, u.organization_id FROM hats h JOIN users u ON u.id = h.user_id WHERE h.hat IN ('qip_officer', 'submitter') AND h.revoked_at IS NULL AND u.status <> 'disabled';
INSERT INTO notification_events (id, kind, audit_event_id, entity_type, entity_id, proposal_id, summary, link, payload, created_at) VALUES (gen_random_uuid()::text, 'tranche_paid', :event_id, 'proposal', :proposal_id, :proposal_id, 'A tranche was paid', '/api/v1/proposals', repeat('z', 300), now()) RETURNING id AS notice_id \gset
SELECT user_id, email_mode FROM notification_preferences WHERE user_id IN (:user_id, (SELECT created_by FROM proposals WHERE id = :proposal_id));
SELECT * FROM webhook_endpoints WHERE organization_id IN ((SELECT organization_id FROM proposals WHERE id = :proposal_id)) AND active ORDER BY id;
INSERT INTO notifications (id, user_id, event_id, kind, summary, reason, link, read_at, created_at) VALUES (gen_random_uuid()::text, :user_id, :notice_id, 'tranche_paid', 'A tranche was paid', 'you are a QIP officer', '/api/v1/proposals', NULL, now()), (gen_random_uuid()::text, (SELECT created_by FROM proposals WHERE id = :proposal_id), :notice_id, 'tranche_paid', 'A tranche was paid', 'you drafted this proposal', '/api/v1/proposals', NULL, now());
INSERT INTO notification_deliveries (id, event_id, channel, user_id, webhook_id, reason, digest, status, attempts, next_attempt_at, locked_until, locked_by, last_error, last_status_code, delivered_at, created_at) VALUES (gen_random_uuid()::text, :notice_id, 'email', :user_id, NULL, 'you are a QIP officer', false, 'pending', 0, now(), NULL, NULL, NULL, NULL, NULL, now()), (gen_random_uuid()::text, :notice_id, 'email', (SELECT created_by FROM proposals WHERE id = :proposal_id), NULL, 'you drafted this proposal', false, 'pending', 0, now(), NULL, NULL, NULL, NULL, NULL, now());
INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status, response_status, response_body, transaction_id, locked_until, created_at, expires_at) VALUES (:user_id, :idem_key::text, md5(random()::text), 'done', 201, repeat('x', 900), :tx_id, now(), now(), now() + interval '7 days');
COMMIT;
"#
    )
}

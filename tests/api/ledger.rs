//! The ledger: contributions over HTTP with idempotency, FX, reversals, statements, the invariant check,
//! append-only tables, and money under concurrency (commitments racing for too little money, random mixes).

use std::sync::atomic::{AtomicI64, Ordering};

use diesel::connection::SimpleConnection;
use qip_pool::db::{self, DbConn};
use qip_pool::features::audit::AuditContext;
use qip_pool::features::ledger::check;
use qip_pool::features::ledger::service::{self as ledger, PoolRef, PostingDetails};
use serde_json::{Value, json};

use crate::fixtures::Mission;
use crate::support::{Session, assert_problem};

pub(crate) struct Money {
    pub(crate) m: Mission,
    pub(crate) finance: Session,
    pub(crate) donor: String,
}

pub(crate) fn setup() -> Money {
    let m = Mission::new();
    let office = m.app.create_org(&m._admin, "FINSEC", "mission_section");
    let donor = m.app.create_org(&m._admin, "DONOR", "contributor");
    let finance = m
        .app
        .user_with_hats(&m._admin, "finance", &office, &["finance_officer"]);
    Money { m, finance, donor }
}

impl Money {
    pub(crate) fn contribute(&self, key: Option<&str>, body: &Value) -> reqwest::blocking::Response {
        let mut req = self
            .m
            .app
            .client
            .post(
                self.m
                    .app
                    .url(&format!("/api/v1/pools/{}/contributions", self.m.pool_id)),
            )
            .bearer_auth(&self.finance.access)
            .json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().unwrap()
    }

    pub(crate) fn usd(&self, amount: &str) -> Value {
        json!({"contributor_organization_id": self.donor, "amount": amount, "currency": "USD", "reference": "GRANT-1"})
    }

    pub(crate) fn pool(&self) -> Value {
        self.m
            .app
            .get_as(&format!("/api/v1/pools/{}", self.m.pool_id), &self.finance.access)
            .json()
            .unwrap()
    }

    pub(crate) fn transaction_count(&self) -> usize {
        let page: Value = self
            .m
            .app
            .get_as(
                &format!("/api/v1/pools/{}/transactions?limit=200", self.m.pool_id),
                &self.finance.access,
            )
            .json()
            .unwrap();
        page["items"].as_array().unwrap().len()
    }

    fn reverse(&self, id: &str, key: &str, reason: &str) -> reqwest::blocking::Response {
        self.m
            .app
            .client
            .post(self.m.app.url(&format!("/api/v1/transactions/{id}/reverse")))
            .bearer_auth(&self.finance.access)
            .header("Idempotency-Key", key)
            .json(&json!({"reason": reason}))
            .send()
            .unwrap()
    }
}

#[test]
fn a_contribution_is_posted_once_per_idempotency_key() {
    let t = setup();
    assert_problem(t.contribute(None, &t.usd("1000.00")), 400, "bad-request");
    // A refused request is not stored: the key stays usable.
    assert_problem(t.contribute(Some("k-1"), &t.usd("1000.001")), 422, "validation");
    let first = t.contribute(Some("k-1"), &t.usd("1000.00"));
    assert_eq!(first.status().as_u16(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_body = first.text().unwrap();
    let tx: Value = serde_json::from_str(&first_body).unwrap();
    assert_eq!(tx["kind"], "contribution");
    assert_eq!(tx["amount"], "1000.00");
    assert_eq!(tx["iati_transaction_type"], 1);
    assert_eq!(tx["entries"].as_array().unwrap().len(), 2);

    let again = t.contribute(Some("k-1"), &t.usd("1000.00"));
    assert_eq!(again.status().as_u16(), 201);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(again.text().unwrap(), first_body, "replayed byte for byte");
    assert_eq!(t.transaction_count(), 1);

    assert_problem(
        t.contribute(Some("k-1"), &t.usd("2000.00")),
        422,
        "idempotency-key-reused",
    );
    // Keys are per caller: another finance officer may use the same key for their own request.
    let balances = &t.pool()["balances"];
    assert_eq!(
        balances,
        &json!({"contributed": "1000.00", "unallocated": "1000.00", "committed": "0.00", "disbursed": "0.00"})
    );
    assert!(
        t.m.app
            .audit_rows()
            .iter()
            .any(|e| e.action == "ledger.contribution" && e.hat.as_deref() == Some("finance_officer"))
    );
}

/// A posting answers with a view built from what it wrote (no read-back): it must be the very view a later
/// read returns, for a contribution in the pool's currency, one converted from another, and a reversal.
#[test]
fn a_posting_answers_with_the_view_a_read_returns() {
    let t = setup();
    let read = |id: &str| -> Value {
        t.m.app
            .get_as(&format!("/api/v1/transactions/{id}"), &t.finance.access)
            .json()
            .unwrap()
    };
    let plain: Value = t.contribute(Some("view-1"), &t.usd("12.34")).json().unwrap();
    assert_eq!(read(plain["id"].as_str().unwrap()), plain);
    let foreign: Value = t
        .contribute(
            Some("view-2"),
            &json!({"contributor_organization_id": t.donor, "amount": "100.00", "currency": "EUR",
                    "exchange_rate": "1.0845", "memo": "in euros"}),
        )
        .json()
        .unwrap();
    assert_eq!(foreign["original_amount"], "100.00");
    assert_eq!(read(foreign["id"].as_str().unwrap()), foreign);
    let reversal = t.reverse(
        plain["id"].as_str().unwrap(),
        "view-3",
        "entered twice by mistake",
    );
    assert_eq!(reversal.status().as_u16(), 201);
    let reversal: Value = reversal.json().unwrap();
    assert_eq!(read(reversal["id"].as_str().unwrap()), reversal);
    assert_eq!(read(plain["id"].as_str().unwrap())["reversed_by"], reversal["id"]);
}

#[test]
fn a_foreign_currency_contribution_keeps_its_original_and_rounds_half_even() {
    let t = setup();
    let body = json!({"contributor_organization_id": t.donor, "amount": "1000.05", "currency": "EUR", "exchange_rate": "1.5"});
    let res = t.contribute(Some("fx-1"), &body);
    assert_eq!(res.status().as_u16(), 201);
    let tx: Value = res.json().unwrap();
    // 1000.05 × 1.5 = 1500.075 → 1500.08 (half-even: 7 is odd, rounds up to 8)
    assert_eq!(tx["amount"], "1500.08");
    assert_eq!(tx["original_amount"], "1000.05");
    assert_eq!(tx["original_currency"], "EUR");
    assert_eq!(tx["exchange_rate"], "1.5");
    let body = json!({"contributor_organization_id": t.donor, "amount": "1000.15", "currency": "EUR", "exchange_rate": "1.5"});
    let tx: Value = t.contribute(Some("fx-2"), &body).json().unwrap();
    assert_eq!(
        tx["amount"], "1500.22",
        "1500.225 → 1500.22 (half-even: 2 is even)"
    );
    let body = json!({"contributor_organization_id": t.donor, "amount": "10.00", "currency": "EUR"});
    let problem = assert_problem(t.contribute(Some("fx-3"), &body), 422, "validation");
    assert_eq!(problem["errors"][0]["field"], "exchange_rate");
}

#[test]
fn reversal_restores_balances_once_and_keeps_every_guard() {
    let t = setup();
    let tx: Value = t.contribute(Some("c1"), &t.usd("500.00")).json().unwrap();
    let id = tx["id"].as_str().unwrap();
    assert_problem(t.reverse(id, "r0", "x"), 422, "validation");
    let res = t.reverse(id, "r1", "Entered twice by mistake");
    assert_eq!(res.status().as_u16(), 201);
    let reversal: Value = res.json().unwrap();
    assert_eq!(reversal["kind"], "reversal");
    assert_eq!(reversal["reversal_of"], id);
    assert_eq!(t.pool()["balances"]["unallocated"], "0.00");
    let problem = assert_problem(t.reverse(id, "r2", "Again, wrongly"), 409, "conflict");
    assert_eq!(problem["reversed_by"], reversal["id"]);
    assert_problem(
        t.reverse(reversal["id"].as_str().unwrap(), "r3", "Undo the undo"),
        409,
        "conflict",
    );
    let original: Value =
        t.m.app
            .get_as(&format!("/api/v1/transactions/{id}"), &t.finance.access)
            .json()
            .unwrap();
    assert_eq!(original["reversed_by"], reversal["id"]);

    // A contribution whose money is committed cannot be reversed: the guard names what is available.
    let tx: Value = t.contribute(Some("c2"), &t.usd("300.00")).json().unwrap();
    let mut conn = t.m.app.conn();
    let pool = PoolRef::load(&mut conn, &t.m.pool_id.as_str().into()).unwrap();
    db::write_tx(&mut conn, |c| {
        ledger::commit_funds(
            c,
            &AuditContext::system(None),
            &pool,
            &"p-1".into(),
            200_00,
            PostingDetails::default(),
        )
    })
    .unwrap();
    drop(conn);
    let problem = assert_problem(
        t.reverse(tx["id"].as_str().unwrap(), "r4", "Donor withdrew"),
        409,
        "insufficient-funds",
    );
    assert_eq!(problem["available"], "100.00");
    assert_eq!(problem["account"], "unallocated");
    assert_eq!(
        t.pool()["balances"],
        json!({"contributed": "300.00", "unallocated": "100.00", "committed": "200.00", "disbursed": "0.00"})
    );
}

#[test]
fn statement_reconciles_and_transactions_filter_by_kind() {
    let t = setup();
    t.contribute(Some("s1"), &t.usd("1000.00"));
    t.contribute(Some("s2"), &t.usd("250.50"));
    let mut conn = t.m.app.conn();
    let pool = PoolRef::load(&mut conn, &t.m.pool_id.as_str().into()).unwrap();
    let ctx = AuditContext::system(None);
    db::write_tx(&mut conn, |c| {
        ledger::commit_funds(c, &ctx, &pool, &"p-1".into(), 600_00, PostingDetails::default())?;
        ledger::disburse(c, &ctx, &pool, &"p-1".into(), 360_00, PostingDetails::default())?;
        ledger::refund(c, &ctx, &pool, &"p-1".into(), 10_00, PostingDetails::default())?;
        ledger::release_commitment(c, &ctx, &pool, &"p-1".into(), 40_00, PostingDetails::default())
    })
    .unwrap();
    drop(conn);
    let today = chrono::Utc::now().date_naive();
    let st: Value =
        t.m.app
            .get_as(
                &format!("/api/v1/pools/{}/statement?from={today}&to={today}", t.m.pool_id),
                &t.finance.access,
            )
            .json()
            .unwrap();
    assert_eq!(st["reconciles"], true);
    assert_eq!(
        st["opening"],
        json!({"contributed": "0.00", "unallocated": "0.00", "committed": "0.00", "disbursed": "0.00"})
    );
    assert_eq!(
        st["closing"],
        json!({"contributed": "1250.50", "unallocated": "700.50", "committed": "200.00", "disbursed": "350.00"})
    );
    let kinds: Vec<&str> = st["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    let contributions = st["movements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "contribution")
        .unwrap();
    assert_eq!(contributions["entries"], 4, "two contributions, two legs each");
    assert_eq!(contributions["effect"]["contributed"], "1250.50");
    let later = today + chrono::Duration::days(1);
    let st: Value =
        t.m.app
            .get_as(
                &format!("/api/v1/pools/{}/statement?from={later}", t.m.pool_id),
                &t.finance.access,
            )
            .json()
            .unwrap();
    assert_eq!(st["opening"]["disbursed"], "350.00");
    assert_eq!(st["movements"], json!([]));
    let page: Value =
        t.m.app
            .get_as(
                &format!("/api/v1/pools/{}/transactions?kind=disbursement", t.m.pool_id),
                &t.finance.access,
            )
            .json()
            .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["iati_transaction_type"], 3);
    let report: Value =
        t.m.app
            .get_as("/api/v1/ledger/check", &t.m.auditor.access)
            .json()
            .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["transactions_checked"], 6);
}

#[test]
fn tampering_is_reported_and_ledger_rows_cannot_be_rewritten() {
    let t = setup();
    let tx: Value = t.contribute(Some("t1"), &t.usd("100.00")).json().unwrap();
    let mut raw = t.m.app.db.connect();
    let err = raw
        .batch_execute(&format!(
            "UPDATE ledger_transactions SET amount_minor = 1 WHERE id = '{}'",
            tx["id"].as_str().unwrap()
        ))
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = raw.batch_execute("DELETE FROM ledger_entries").unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    raw.batch_execute(
        "UPDATE ledger_balances SET balance_minor = balance_minor + 5 WHERE kind = 'unallocated'",
    )
    .unwrap();
    let report = check::check(&mut t.m.app.conn()).unwrap();
    assert!(!report.ok);
    let kinds: Vec<&str> = report.problems.iter().map(|p| p.kind.as_str()).collect();
    assert!(kinds.contains(&"balance_mismatch"), "{kinds:?}");
    assert!(kinds.contains(&"pool_does_not_add_up"), "{kinds:?}");
    let out = crate::support::run_child(
        std::process::Command::new(env!("CARGO_BIN_EXE_qip-pool"))
            .args(["ledger", "check"])
            .env("QIP__DATABASE__URL", t.m.app.db.url())
            .env("RUST_LOG", "error"),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["ok"], false);
}

fn fund(conn: &mut DbConn, pool: &PoolRef, donor: &str, amount: i64) {
    db::write_tx(conn, |c| {
        ledger::contribute(
            c,
            &AuditContext::system(None),
            pool,
            &donor.into(),
            amount,
            None,
            PostingDetails::default(),
        )
    })
    .unwrap();
}

#[test]
fn fifty_concurrent_commitments_on_money_for_ten_exactly_ten_succeed() {
    let t = setup();
    let mut conn = t.m.app.conn();
    let pool = PoolRef::load(&mut conn, &t.m.pool_id.as_str().into()).unwrap();
    fund(&mut conn, &pool, &t.donor, 10 * 1_000_00);
    drop(conn);
    let successes = AtomicI64::new(0);
    let refusals = AtomicI64::new(0);
    std::thread::scope(|s| {
        for i in 0..50 {
            let (t, pool, successes, refusals) = (&t, &pool, &successes, &refusals);
            s.spawn(move || {
                let mut conn = t.m.app.db.connect();
                let result = db::write_tx(&mut conn, |c| {
                    ledger::commit_funds(
                        c,
                        &AuditContext::system(None),
                        pool,
                        &format!("p-{i}").into(),
                        1_000_00,
                        PostingDetails::default(),
                    )
                });
                match result {
                    Ok(_) => successes.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        assert_eq!(e.kind(), qip_pool::error::ErrorKind::InsufficientFunds, "{e}");
                        refusals.fetch_add(1, Ordering::SeqCst)
                    }
                };
            });
        }
    });
    assert_eq!(successes.load(Ordering::SeqCst), 10);
    assert_eq!(refusals.load(Ordering::SeqCst), 40);
    assert!(check::check(&mut t.m.app.conn()).unwrap().ok);
    assert_eq!(t.pool()["balances"]["unallocated"], "0.00");
    assert_eq!(t.pool()["balances"]["committed"], "10000.00");
}

#[test]
fn concurrent_duplicates_of_one_key_make_one_transaction() {
    let t = setup();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let t = &t;
                s.spawn(move || t.contribute(Some("same-key"), &t.usd("77.00")).status().as_u16())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert!(statuses.contains(&201));
    assert_eq!(t.transaction_count(), 1);
    assert_eq!(t.pool()["balances"]["contributed"], "77.00");
}

/// A deterministic pseudo-random sequence (no extra crate; reproducible by seed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn random_concurrent_movements_keep_every_invariant() {
    let t = setup();
    let mut conn = t.m.app.conn();
    let mut pools = vec![PoolRef::load(&mut conn, &t.m.pool_id.as_str().into()).unwrap()];
    for code in ["P2", "P3"] {
        let res = t.m.app.post_json("/api/v1/pools", Some(&t.m.qip.access),
            &json!({"code": code, "name": code, "currency": "USD", "funding_start": "2026-01-01", "funding_end": "2027-12-31"}));
        let id = res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
        pools.push(PoolRef::load(&mut conn, &id.as_str().into()).unwrap());
    }
    drop(conn);
    let contributed = AtomicI64::new(0);
    let committed = AtomicI64::new(0);
    std::thread::scope(|s| {
        for thread in 0..6u64 {
            let (t, pools, contributed, committed) = (&t, &pools, &contributed, &committed);
            s.spawn(move || {
                let mut rng = Lcg(thread * 7919 + 1);
                let mut conn = t.m.app.db.connect();
                let ctx = AuditContext::system(None);
                let mut posted: Vec<String> = Vec::new();
                for _ in 0..40 {
                    let pool = &pools[rng.next(3) as usize];
                    let proposal = format!("p-{}", rng.next(4));
                    let amount = (rng.next(500) as i64 + 1) * 100;
                    let op = rng.next(7);
                    let result = db::write_tx(&mut conn, |c| match op {
                        0 | 1 => ledger::contribute(
                            c,
                            &ctx,
                            pool,
                            &t.donor.as_str().into(),
                            amount,
                            None,
                            PostingDetails::default(),
                        )
                        .map(|posted| posted.row),
                        2 => ledger::commit_funds(
                            c,
                            &ctx,
                            pool,
                            &proposal.as_str().into(),
                            amount,
                            PostingDetails::default(),
                        ),
                        3 => ledger::release_commitment(
                            c,
                            &ctx,
                            pool,
                            &proposal.as_str().into(),
                            amount,
                            PostingDetails::default(),
                        ),
                        4 => ledger::disburse(
                            c,
                            &ctx,
                            pool,
                            &proposal.as_str().into(),
                            amount,
                            PostingDetails::default(),
                        )
                        .map(|posted| posted.row),
                        5 => ledger::refund(
                            c,
                            &ctx,
                            pool,
                            &proposal.as_str().into(),
                            amount,
                            PostingDetails::default(),
                        )
                        .map(|posted| posted.row),
                        _ => match posted.get(rng.next(posted.len().max(1) as u64) as usize) {
                            Some(id) => ledger::reverse(
                                c,
                                &ctx,
                                &id.as_str().into(),
                                "random reversal",
                                PostingDetails::default(),
                            )
                            .map(|posted| posted.row),
                            None => ledger::contribute(
                                c,
                                &ctx,
                                pool,
                                &t.donor.as_str().into(),
                                amount,
                                None,
                                PostingDetails::default(),
                            )
                            .map(|posted| posted.row),
                        },
                    });
                    match result {
                        Ok(row) => {
                            if row.kind == qip_pool::domain::ledger_rules::TransactionKind::Contribution {
                                contributed.fetch_add(row.amount_minor, Ordering::SeqCst);
                            }
                            if row.kind == qip_pool::domain::ledger_rules::TransactionKind::Commitment {
                                committed.fetch_add(row.amount_minor, Ordering::SeqCst);
                            }
                            posted.push(row.id);
                        }
                        Err(e) => {
                            use qip_pool::error::ErrorKind::*;
                            assert!(
                                matches!(e.kind(), InsufficientFunds | Conflict),
                                "unexpected refusal: {e}"
                            );
                        }
                    }
                }
            });
        }
    });
    let report = check::check(&mut t.m.app.conn()).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert!(report.transactions_checked > 100);
    assert!(
        committed.load(Ordering::SeqCst) <= contributed.load(Ordering::SeqCst),
        "more committed than ever contributed"
    );
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.kind.as_str() == "negative_balance"),
        "a guarded account went negative"
    );
}

#[test]
fn expired_idempotency_keys_are_purged_and_then_free_again() {
    let t = setup();
    assert_eq!(
        t.contribute(Some("old-key"), &t.usd("10.00")).status().as_u16(),
        201
    );
    let mut conn = t.m.app.conn();
    let later = qip_pool::features::audit::now_micros() + chrono::Duration::days(8);
    assert_eq!(
        qip_pool::features::ledger::idempotency::purge_expired(&mut conn, later).unwrap(),
        1
    );
    assert_eq!(
        qip_pool::features::ledger::idempotency::purge_expired(&mut conn, later).unwrap(),
        0
    );
    drop(conn);
    // Within retention nothing is purged.
    let mut conn = t.m.app.conn();
    assert_eq!(
        t.contribute(Some("new-key"), &t.usd("10.00")).status().as_u16(),
        201
    );
    let now = qip_pool::features::audit::now_micros();
    assert_eq!(
        qip_pool::features::ledger::idempotency::purge_expired(&mut conn, now).unwrap(),
        0
    );
    assert!(check::check(&mut conn).unwrap().ok);
}

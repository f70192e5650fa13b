//! Issue 14 (posting throughput): on PostgreSQL the ledger's daily and monthly roll-ups have a stripe per
//! connection, so a payment never waits for another proposal's posting in the same pool on a roll-up row; the
//! sweeper's fold puts the stripes of past days and months back into one row per key without changing any
//! total. On SQLite (one writer, no stripes) the same payments and the fold leave the same figures.

use diesel::connection::SimpleConnection;
use qip_pool::db::DbConn;
use qip_pool::features::ledger::{check, repo};
use serde_json::Value;

use crate::approval::desk;
use crate::group_commit::count;
use crate::statement_periods::{contribution_accounts, text};

/// Writes a posting directly, as another connection of the service would, and leaves its transaction open.
fn open_posting(conn: &mut DbConn, pool: &str, id: &str, kind: &str, legs: [(&str, i64); 2], by: &str) {
    let (proposal, contributor) = match kind {
        "contribution" => (
            "NULL".to_owned(),
            format!(
                "(SELECT owner_id FROM ledger_accounts WHERE id = '{}')",
                legs[0].0
            ),
        ),
        _ => (
            format!(
                "(SELECT owner_id FROM ledger_accounts WHERE id = '{}')",
                legs[0].0
            ),
            "NULL".to_owned(),
        ),
    };
    let minor = legs[1].1;
    conn.batch_execute(&format!(
        "BEGIN; \
         INSERT INTO ledger_transactions (id, pool_id, kind, proposal_id, amount_minor, reference, memo, contributor_id, \
         original_currency, original_minor, fx_rate, reversal_of, idempotency_key, created_by, hat, request_id, created_at) \
         VALUES ('{id}', '{pool}', '{kind}', {proposal}, {minor}, 'RAW', NULL, {contributor}, NULL, NULL, NULL, NULL, \
         NULL, '{by}', 'finance_officer', NULL, CURRENT_TIMESTAMP); \
         INSERT INTO ledger_entries (transaction_id, leg, account_id, amount_minor) VALUES \
         ('{id}', 0, '{}', {}), ('{id}', 1, '{}', {}); \
         UPDATE ledger_balances SET balance_minor = balance_minor + {} WHERE account_id = '{}'; \
         UPDATE ledger_balances SET balance_minor = balance_minor + {} WHERE account_id = '{}';",
        legs[0].0, legs[0].1, legs[1].0, legs[1].1, legs[0].1, legs[0].0, legs[1].1, legs[1].0
    ))
    .unwrap();
}

fn account(conn: &mut DbConn, pool: &str, kind: &str, owner: &str) -> String {
    text(
        conn,
        &format!(
            "SELECT id AS v FROM ledger_accounts WHERE pool_id = '{pool}' AND kind = '{kind}' AND owner_id = '{owner}'"
        ),
    )
}

#[test]
fn a_payment_does_not_wait_for_another_proposals_open_posting_in_the_same_pool() {
    let d = desk("200000.00");
    let (a, b) = (d.approved("Well A", "10000.00"), d.approved("Well B", "10000.00"));
    // A first payment today, so the pool's roll-up rows for disbursements exist.
    assert_eq!(
        d.pay(&d.finance, Some("first"), &a, 1, "100.00")
            .status()
            .as_u16(),
        201
    );
    let pool = d.m.pool_id.clone();
    let mut held = d.m.app.db.connect();
    let (_, _, finance_id) = contribution_accounts(&mut held, &pool);
    let (commit_a, disb_a) = (
        account(&mut held, &pool, "commitment", &a),
        account(&mut held, &pool, "disbursed", &a),
    );
    if d.m.app.db.is_postgres() {
        // Another connection (stripe 99: no connection of this instance has it) is paying proposal A and has
        // not committed: its roll-up rows stay locked until it does.
        held.batch_execute("SET qip.ledger_stripe = 99").unwrap();
        open_posting(
            &mut held,
            &pool,
            "held-a",
            "disbursement",
            [(&commit_a, -5_00), (&disb_a, 5_00)],
            &finance_id,
        );
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let (d, b) = (&d, &b);
            s.spawn(move || {
                let status = d
                    .pay(&d.finance, Some("b-while-a-open"), b, 1, "200.00")
                    .status()
                    .as_u16();
                done_tx.send(status).unwrap();
            });
            // Before stripes this payment queued on the pool's roll-up row until A's posting ended.
            let answered = done_rx.recv_timeout(std::time::Duration::from_secs(20));
            held.batch_execute("ROLLBACK").unwrap();
            assert_eq!(answered, Ok(201), "the payment of B waited for A's open posting");
        });
        assert_eq!(
            count(
                &mut held,
                "SELECT COUNT(*) AS n FROM ledger_transactions WHERE id = 'held-a'"
            ),
            0
        );
    } else {
        // SQLite has one writer: an open write transaction holds every other one by design.
        assert_eq!(
            d.pay(&d.finance, Some("b-while-a-open"), &b, 1, "200.00")
                .status()
                .as_u16(),
            201
        );
    }
    let tranches: Vec<Value> =
        d.m.app
            .get_as(&format!("/api/v1/proposals/{b}/tranches"), &d.finance.access)
            .json()
            .unwrap();
    assert_eq!(tranches[0]["paid"], "200.00");
    let report = check::check(&mut held).unwrap();
    assert!(report.ok, "{:?}", report.problems);
}

#[test]
fn folding_the_stripes_leaves_one_row_per_key_and_every_total_as_it_was() {
    let d = desk("200000.00");
    let ids: Vec<String> = (0..3)
        .map(|i| d.approved(&format!("Fold {i}"), "10000.00"))
        .collect();
    std::thread::scope(|s| {
        for (n, id) in ids.iter().enumerate() {
            let d = &d;
            s.spawn(move || {
                for k in 0..3 {
                    let res = d.pay(&d.finance, Some(&format!("fold-{n}-{k}")), id, 1, "10.00");
                    assert_eq!(res.status().as_u16(), 201);
                }
            });
        }
    });
    let pool = d.m.pool_id.clone();
    let mut conn = d.m.app.db.connect();
    let (contributor, unallocated, finance_id) = contribution_accounts(&mut conn, &pool);
    let pg = d.m.app.db.is_postgres();
    if pg {
        // A contribution from another instance's connection: a second stripe for today's contribution keys.
        conn.batch_execute("SET qip.ledger_stripe = 99").unwrap();
    }
    open_posting(
        &mut conn,
        &pool,
        "raw-gift",
        "contribution",
        [(&contributor, -25_00), (&unallocated, 25_00)],
        &finance_id,
    );
    conn.batch_execute("COMMIT").unwrap();
    let view = |path: &str| -> Value { d.m.app.get_as(path, &d.finance.access).json().unwrap() };
    let pool_before = view(&format!("/api/v1/pools/{pool}"));
    let statement_before = view(&format!("/api/v1/pools/{pool}/statement"));
    let keys = |conn: &mut DbConn, table: &str, period: &str| {
        count(
            conn,
            &format!(
                "SELECT COUNT(*) AS n FROM (SELECT DISTINCT pool_id, {period}, account_kind, transaction_kind \
                 FROM {table} WHERE pool_id = '{pool}') k"
            ),
        )
    };
    let rows = |conn: &mut DbConn, table: &str| {
        count(
            conn,
            &format!("SELECT COUNT(*) AS n FROM {table} WHERE pool_id = '{pool}'"),
        )
    };
    let (daily_keys, monthly_keys) = (
        keys(&mut conn, "ledger_daily_totals", "day"),
        keys(&mut conn, "ledger_monthly_totals", "month"),
    );
    if pg {
        assert!(
            rows(&mut conn, "ledger_daily_totals") > daily_keys,
            "no key has two stripes"
        );
        assert!(rows(&mut conn, "ledger_monthly_totals") > monthly_keys);
    }

    // Today's sweep folds days before yesterday only: nothing here.
    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let before = rows(&mut conn, "ledger_daily_totals");
    assert_eq!(repo::fold_total_stripes(&mut conn, yesterday).unwrap(), 0);
    assert_eq!(rows(&mut conn, "ledger_daily_totals"), before);

    // Fold as the sweeper would a month from now: today's and this month's stripes are then in the past.
    let later = chrono::Utc::now().date_naive() + chrono::Days::new(40);
    let folded = repo::fold_total_stripes(&mut conn, later).unwrap();
    assert_eq!(folded > 0, pg);
    assert_eq!(rows(&mut conn, "ledger_daily_totals"), daily_keys);
    assert_eq!(rows(&mut conn, "ledger_monthly_totals"), monthly_keys);
    if pg {
        let unfolded = "SELECT COUNT(*) AS n FROM ledger_daily_totals WHERE stripe <> 0";
        assert_eq!(count(&mut conn, unfolded), 0);
    }
    // Nothing is left to fold, and no figure moved.
    assert_eq!(repo::fold_total_stripes(&mut conn, later).unwrap(), 0);
    assert_eq!(view(&format!("/api/v1/pools/{pool}")), pool_before);
    assert_eq!(view(&format!("/api/v1/pools/{pool}/statement")), statement_before);
    let report = check::check(&mut conn).unwrap();
    assert!(report.ok, "{:?}", report.problems);
}

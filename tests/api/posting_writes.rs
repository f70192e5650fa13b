//! Issue 14 (posting throughput): the ledger roll-ups kept once per INSERT statement (PostgreSQL) equal the
//! entries, however many transactions, days and months one statement's entries span; postings through the
//! prepared-statement path (`db::cached`) answer and store exactly as before.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qip_pool::db::DbConn;
use qip_pool::features::ledger::check;

use crate::ledger::setup;
use crate::statement_periods::contribution_accounts;

#[derive(QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rollup {
    #[diesel(sql_type = diesel::sql_types::Text)]
    period: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    account_kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    transaction_kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    entries: i64,
}

fn rollups(conn: &mut DbConn, sql: &str) -> Vec<Rollup> {
    let mut rows: Vec<Rollup> = diesel::sql_query(sql).load(conn).unwrap();
    rows.sort();
    rows
}

#[test]
fn one_insert_of_many_transactions_entries_keeps_both_rollups_equal_to_the_entries() {
    let t = setup();
    let res = t.contribute(Some("first"), &t.usd("10.00"));
    assert_eq!(res.status().as_u16(), 201);
    let pool = t.m.pool_id.clone();
    let mut conn = t.m.app.db.connect();
    let (contributor, unallocated, finance_id) = contribution_accounts(&mut conn, &pool);
    // Five transactions on two days of one month, one in the next month and a reversal: their transactions
    // first, then all their entries in ONE statement (as a bulk load would write them), so one statement's
    // entries fall on several roll-up rows, several of them more than once.
    let history = [
        ("b-1", "contribution", "2026-03-30 10:00:00", 100_00),
        ("b-2", "contribution", "2026-03-30 11:00:00", 250_50),
        ("b-3", "contribution", "2026-03-31 23:59:59", 7_25),
        ("b-4", "contribution", "2026-04-01 00:00:00", 40_00),
        ("b-5", "reversal", "2026-04-02 08:00:00", 100_00),
    ];
    let mut values = Vec::new();
    let mut moved = 0;
    for (id, kind, at, minor) in history {
        let (contributor_id, reversal_of) = if kind == "contribution" {
            (format!("'{}'", t.donor), "NULL".to_owned())
        } else {
            ("NULL".to_owned(), "'b-1'".to_owned())
        };
        conn.batch_execute(&format!(
            "INSERT INTO ledger_transactions (id, pool_id, kind, proposal_id, amount_minor, reference, memo, contributor_id, \
             original_currency, original_minor, fx_rate, reversal_of, idempotency_key, created_by, hat, request_id, created_at) \
             VALUES ('{id}', '{pool}', '{kind}', NULL, {minor}, 'BULK', NULL, {contributor_id}, NULL, NULL, NULL, {reversal_of}, \
             NULL, '{finance_id}', 'finance_officer', NULL, '{at}')"
        ))
        .unwrap();
        let (debit, credit) = if kind == "contribution" {
            (&contributor, &unallocated)
        } else {
            (&unallocated, &contributor)
        };
        moved += if kind == "contribution" { minor } else { -minor };
        values.push(format!(
            "('{id}', 0, '{debit}', -{minor}), ('{id}', 1, '{credit}', {minor})"
        ));
    }
    conn.batch_execute(&format!(
        "INSERT INTO ledger_entries (transaction_id, leg, account_id, amount_minor) VALUES {}; \
         UPDATE ledger_balances SET balance_minor = balance_minor - {moved} WHERE account_id = '{contributor}'; \
         UPDATE ledger_balances SET balance_minor = balance_minor + {moved} WHERE account_id = '{unallocated}';",
        values.join(", ")
    ))
    .unwrap();
    // And one more posting over HTTP after the bulk statement.
    let res = t.contribute(Some("second"), &t.usd("0.75"));
    assert_eq!(res.status().as_u16(), 201);

    let report = check::check(&mut conn).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    let (day, month) = match conn {
        DbConn::Pg(_) => (
            "CAST(CAST(t.created_at AS DATE) AS TEXT)",
            "CAST(CAST(date_trunc('month', t.created_at) AS DATE) AS TEXT)",
        ),
        DbConn::Sqlite(_) => ("date(t.created_at)", "date(t.created_at, 'start of month')"),
    };
    let from_entries = |conn: &mut DbConn, period: &str| {
        rollups(
            conn,
            &format!(
                "SELECT {period} AS period, a.kind AS account_kind, t.kind AS transaction_kind, \
                 CAST(SUM(e.amount_minor) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS entries \
                 FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id \
                 JOIN ledger_accounts a ON a.id = e.account_id WHERE t.pool_id = '{pool}' GROUP BY 1, 2, 3"
            ),
        )
    };
    let daily = rollups(
        &mut conn,
        &format!(
            "SELECT CAST(day AS TEXT) AS period, account_kind, transaction_kind, CAST(SUM(total_minor) AS BIGINT) AS total, \
             CAST(SUM(entries) AS BIGINT) AS entries FROM ledger_daily_totals WHERE pool_id = '{pool}' GROUP BY 1, 2, 3"
        ),
    );
    let monthly = rollups(
        &mut conn,
        &format!(
            "SELECT CAST(month AS TEXT) AS period, account_kind, transaction_kind, CAST(SUM(total_minor) AS BIGINT) AS total, \
             CAST(SUM(entries) AS BIGINT) AS entries FROM ledger_monthly_totals WHERE pool_id = '{pool}' GROUP BY 1, 2, 3"
        ),
    );
    assert_eq!(daily, from_entries(&mut conn, day));
    assert_eq!(monthly, from_entries(&mut conn, month));
    // The two March days hold two and one contributions: one roll-up row each per account kind.
    let march_30 = daily
        .iter()
        .find(|r| r.period == "2026-03-30" && r.account_kind == "unallocated")
        .unwrap();
    assert_eq!((march_30.total, march_30.entries), (350_50, 2));
    let april = monthly
        .iter()
        .filter(|r| r.period == "2026-04-01" && r.account_kind == "contributor")
        .map(|r| (r.transaction_kind.as_str(), r.total, r.entries))
        .collect::<Vec<_>>();
    assert_eq!(april, vec![("contribution", -40_00, 1), ("reversal", 100_00, 1)]);
}

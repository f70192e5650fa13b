//! Issue 14: a statement's opening and closing balances come from monthly and daily roll-ups (whole months
//! plus the loose days at the ends of a period); they must equal the sums of the entries themselves across
//! month boundaries, with reversals, for any period.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qip_pool::db::DbConn;
use serde_json::{Value, json};

use crate::ledger::setup;

#[derive(QueryableByName)]
struct KindSum {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
}

#[derive(QueryableByName)]
struct Text1 {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

pub(crate) fn text(conn: &mut DbConn, sql: &str) -> String {
    diesel::sql_query(sql).get_result::<Text1>(conn).unwrap().v
}

/// The pool's contributor and unallocated accounts and the finance officer who posted its first contribution:
/// what a test needs to write history rows directly, as postings would.
pub(crate) fn contribution_accounts(conn: &mut DbConn, pool: &str) -> (String, String, String) {
    let account = |conn: &mut DbConn, kind: &str| {
        text(
            conn,
            &format!("SELECT id AS v FROM ledger_accounts WHERE pool_id = '{pool}' AND kind = '{kind}'"),
        )
    };
    let contributor = account(conn, "contributor");
    let unallocated = account(conn, "unallocated");
    let finance_id = text(
        conn,
        &format!("SELECT created_by AS v FROM ledger_transactions WHERE pool_id = '{pool}'"),
    );
    (contributor, unallocated, finance_id)
}

fn amount(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", minor.abs() / 100, minor.abs() % 100)
}

/// The pool's balances before the start of `day` (all of them when `None`), summed from its entries.
fn balances_from_entries(conn: &mut DbConn, pool: &str, before_day: Option<chrono::NaiveDate>) -> Value {
    let cutoff = before_day
        .map(|d| format!(" AND t.created_at < '{d} 00:00:00'"))
        .unwrap_or_default();
    let rows: Vec<KindSum> = diesel::sql_query(format!(
        "SELECT a.kind AS kind, CAST(SUM(e.amount_minor) AS BIGINT) AS total FROM ledger_entries e \
         JOIN ledger_transactions t ON t.id = e.transaction_id JOIN ledger_accounts a ON a.id = e.account_id \
         WHERE t.pool_id = '{pool}'{cutoff} GROUP BY a.kind"
    ))
    .load(conn)
    .unwrap();
    let get = |k: &str| rows.iter().find(|r| r.kind == k).map_or(0, |r| r.total);
    json!({
        "contributed": amount(-get("contributor")),
        "unallocated": amount(get("unallocated")),
        "committed": amount(get("commitment")),
        "disbursed": amount(get("disbursed")),
    })
}

#[test]
fn statement_balances_equal_the_entries_across_month_boundaries_and_reversals() {
    let t = setup();
    // Today, over HTTP: creates the pool's contributor and unallocated accounts.
    let res = t.contribute(Some("today-1"), &t.usd("1000.00"));
    assert_eq!(res.status().as_u16(), 201);
    let pool = t.m.pool_id.clone();
    let mut conn = t.m.app.db.connect();
    let (contributor, unallocated, finance_id) = contribution_accounts(&mut conn, &pool);
    // History in earlier months, inserted as postings would be (the roll-ups are kept by the database as the
    // entries go in): contributions either side of month boundaries, and a reversal a month after its original.
    let history = [
        ("h-jan-last", "contribution", None, "2026-01-31 23:59:59", 200_00),
        ("h-feb-first", "contribution", None, "2026-02-01 00:00:00", 300_05),
        ("h-feb-mid", "contribution", None, "2026-02-14 12:00:00", 450_00),
        ("h-mar-last", "contribution", None, "2026-03-31 23:59:59", 75_25),
        ("h-apr-first", "contribution", None, "2026-04-01 00:00:01", 10_00),
        (
            "h-rev-feb-mid",
            "reversal",
            Some("h-feb-mid"),
            "2026-03-02 09:00:00",
            450_00,
        ),
        ("h-may", "contribution", None, "2026-05-20 08:00:00", 99_99),
    ];
    let mut moved = 0;
    for (id, kind, reversal_of, at, minor) in history {
        let reversal_of = reversal_of.map_or("NULL".to_owned(), |r| format!("'{r}'"));
        let contributor_id = if kind == "contribution" {
            format!("'{}'", t.donor)
        } else {
            "NULL".to_owned()
        };
        // A contribution moves money from the contributor to unallocated; its reversal back.
        let (debit, credit) = if kind == "contribution" {
            (&contributor, &unallocated)
        } else {
            (&unallocated, &contributor)
        };
        moved += if kind == "contribution" { minor } else { -minor };
        conn.batch_execute(&format!(
            "INSERT INTO ledger_transactions (id, pool_id, kind, proposal_id, amount_minor, reference, memo, contributor_id, \
             original_currency, original_minor, fx_rate, reversal_of, idempotency_key, created_by, hat, request_id, created_at) \
             VALUES ('{id}', '{pool}', '{kind}', NULL, {minor}, 'HIST', NULL, {contributor_id}, NULL, NULL, NULL, {reversal_of}, \
             NULL, '{finance_id}', 'finance_officer', NULL, '{at}'); \
             INSERT INTO ledger_entries (transaction_id, leg, account_id, amount_minor) VALUES \
             ('{id}', 0, '{debit}', -{minor}), ('{id}', 1, '{credit}', {minor});"
        ))
        .unwrap();
    }
    conn.batch_execute(&format!(
        "UPDATE ledger_balances SET balance_minor = balance_minor - {moved} WHERE account_id = '{contributor}'; \
         UPDATE ledger_balances SET balance_minor = balance_minor + {moved} WHERE account_id = '{unallocated}';"
    ))
    .unwrap();
    // Today, over HTTP: a reversal of a contribution made months ago.
    let res =
        t.m.app
            .client
            .post(t.m.app.url("/api/v1/transactions/h-feb-first/reverse"))
            .bearer_auth(&t.finance.access)
            .header("Idempotency-Key", "rev-feb-first")
            .json(&json!({"reason": "Paid into the wrong pool"}))
            .send()
            .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().unwrap_or_default());

    let today = chrono::Utc::now().date_naive();
    let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let periods: Vec<(Option<chrono::NaiveDate>, Option<chrono::NaiveDate>)> = vec![
        (None, None),
        (Some(d("2026-02-01")), Some(d("2026-02-28"))),
        (Some(d("2026-01-31")), Some(d("2026-02-01"))),
        (Some(d("2026-01-15")), Some(d("2026-03-31"))),
        (Some(d("2026-02-02")), Some(d("2026-04-30"))),
        (Some(d("2026-02-14")), None),
        (Some(d("2026-04-01")), None),
        (None, Some(d("2026-03-01"))),
        (None, Some(d("2026-03-31"))),
        (Some(d("2025-12-01")), Some(d("2026-05-01"))),
        (Some(today), Some(today)),
        (Some(today + chrono::Duration::days(1)), None),
    ];
    for (from, to) in periods {
        let mut query = Vec::new();
        if let Some(f) = from {
            query.push(format!("from={f}"));
        }
        if let Some(to) = to {
            query.push(format!("to={to}"));
        }
        let st: Value =
            t.m.app
                .get_as(
                    &format!("/api/v1/pools/{pool}/statement?{}", query.join("&")),
                    &t.finance.access,
                )
                .json()
                .unwrap();
        let label = format!("{from:?}..={to:?}: {st}");
        assert_eq!(st["reconciles"], true, "{label}");
        let opening = match from {
            Some(f) => balances_from_entries(&mut conn, &pool, Some(f)),
            None => {
                json!({"contributed": "0.00", "unallocated": "0.00", "committed": "0.00", "disbursed": "0.00"})
            }
        };
        assert_eq!(st["opening"], opening, "opening {label}");
        let closing = balances_from_entries(&mut conn, &pool, to.and_then(|t| t.succ_opt()));
        assert_eq!(st["closing"], closing, "closing {label}");
    }
    // Spot figures: February alone took in 300.05 + 450.00; the reversal of 450.00 landed in March.
    let feb: Value =
        t.m.app
            .get_as(
                &format!("/api/v1/pools/{pool}/statement?from=2026-02-01&to=2026-02-28"),
                &t.finance.access,
            )
            .json()
            .unwrap();
    assert_eq!(feb["opening"]["contributed"], "200.00");
    assert_eq!(feb["closing"]["contributed"], "950.05");
    // The pool's balances (from the monthly roll-up) are the entries' too, and the ledger check agrees.
    let balances = &t.pool()["balances"];
    assert_eq!(*balances, balances_from_entries(&mut conn, &pool, None));
    let report: Value =
        t.m.app
            .get_as("/api/v1/ledger/check", &t.m.auditor.access)
            .json()
            .unwrap();
    assert_eq!(report["ok"], true, "{report}");
}

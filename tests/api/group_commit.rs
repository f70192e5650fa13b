//! Issue 14 (posting throughput): contributions that arrive together are written together on PostgreSQL (one
//! statement and one commit for a batch, `ledger::group_commit`), and each still gets exactly one transaction,
//! its own idempotency record and its own audit event; a duplicate key in the crowd replays the first answer.
//! On SQLite every contribution is written on its own, with the same answers and effects.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qip_pool::db::DbConn;
use qip_pool::features::audit::{self, WhenBusy};
use qip_pool::features::ledger::check;
use serde_json::Value;

use crate::ledger::setup;
use crate::statement_periods::contribution_accounts;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// The `n` of a one-row `SELECT COUNT(*) AS n …`.
pub(crate) fn count(conn: &mut DbConn, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
}

/// Audit events recording a contribution.
fn contribution_events(conn: &mut DbConn) -> i64 {
    count(
        conn,
        "SELECT count(*) AS n FROM audit_events WHERE action = 'ledger.contribution'",
    )
}

/// A counter of the app's `/metrics` (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[test]
fn contributions_arriving_together_each_get_one_transaction_record_and_event() {
    let t = setup();
    // The first contribution creates the pool's accounts (the general path).
    assert_eq!(t.contribute(Some("first"), &t.usd("1.00")).status().as_u16(), 201);
    let pool = t.m.pool_id.clone();
    let mut conn = t.m.app.db.connect();
    let (_, unallocated, _) = contribution_accounts(&mut conn, &pool);
    let pg = matches!(conn, DbConn::Pg(_));

    // Hold the pool's unallocated balance (PostgreSQL) or the database's write lock (SQLite) so the first
    // writer waits and the others arrive meanwhile; then let go.
    let mut holder = t.m.app.db.connect();
    if pg {
        holder
            .batch_execute(&format!(
                "BEGIN; SELECT 1 FROM ledger_balances WHERE account_id = '{unallocated}' FOR UPDATE"
            ))
            .unwrap();
    } else {
        holder.batch_execute("BEGIN IMMEDIATE").unwrap();
    }
    // Six keys, and a second sending of keys 0 and 1 (a client retrying while its first is in flight): eight
    // requests, as many as the test app's connection pool (each waiting request holds its connection).
    let sends: Vec<(String, String)> = (0..6)
        .map(|i| (format!("k-{i}"), format!("{}.00", i + 1)))
        .chain((0..2).map(|i| (format!("k-{i}"), format!("{}.00", i + 1))))
        .collect();
    let answers: Vec<(String, u16, bool, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = sends
            .iter()
            .map(|(key, amount)| {
                let t = &t;
                s.spawn(move || {
                    let res = t.contribute(Some(key), &t.usd(amount));
                    let replayed = res.headers().contains_key("idempotent-replayed");
                    let status = res.status().as_u16();
                    (key.clone(), status, replayed, res.json::<Value>().unwrap())
                })
            })
            .collect();
        // PostgreSQL: the first two requests write a batch each (`ledger.group_commit_writers` = 2) and wait on
        // the held row; let go once the other six are queued behind them (or after 20 s). SQLite: every writer waits for the lock; let go after a second.
        let started = std::time::Instant::now();
        while pg && started.elapsed() < std::time::Duration::from_secs(20) {
            let text = t.m.app.get("/metrics").text().unwrap();
            if metric(&text, "qip_ledger_group_commit_waiting") >= 6.0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if !pg {
            std::thread::sleep(std::time::Duration::from_millis(1_000));
        }
        holder.batch_execute("COMMIT").unwrap();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    for (key, status, _, body) in &answers {
        assert_eq!(*status, 201, "{key}: {body}");
    }
    // Each key: one transaction, the same answer to both of its sendings, one of them a replay.
    for i in 0..6 {
        let key = format!("k-{i}");
        let mine: Vec<_> = answers.iter().filter(|a| a.0 == key).collect();
        let ids: std::collections::BTreeSet<&str> =
            mine.iter().map(|a| a.3["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 1, "{key}: {mine:?}");
        assert_eq!(
            mine.iter().filter(|a| !a.2).count(),
            1,
            "{key}: exactly one first answer"
        );
        assert_eq!(mine[0].3["amount"], format!("{}.00", i + 1));
    }
    assert_eq!(t.transaction_count(), 7);
    assert_eq!(t.pool()["balances"]["contributed"], "22.00");

    // One record per key naming its transaction, one audit event per transaction.
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM idempotency_keys k JOIN ledger_transactions t ON t.id = k.transaction_id \
             AND t.idempotency_key = k.user_id || ':' || k.idem_key"
        ),
        7
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM audit_events e JOIN ledger_transactions t ON t.id = e.entity_id \
             WHERE e.action = 'ledger.contribution' AND e.entity_type = 'transaction'"
        ),
        7
    );
    assert_eq!(contribution_events(&mut conn), 7);
    let report = check::check(&mut conn).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    audit::seal_pending(&mut conn, WhenBusy::Wait).unwrap();
    assert!(audit::verify_chain(&mut conn).unwrap().intact);

    // PostgreSQL wrote the waiting contributions in fewer commits than contributions; SQLite one by one.
    let text = t.m.app.get("/metrics").text().unwrap();
    let batches = metric(&text, "qip_ledger_group_commit_batches_total");
    let grouped = metric(&text, "qip_ledger_group_commit_requests_total");
    if pg {
        // The first two requests alone (they waited on the held row), then the six queued behind them, most
        // of them together (when both sendings of a key were queued one waits for the next batch). The
        // second sendings are not claimed again and are answered as replays by the general path.
        assert_eq!(grouped, 6.0, "{text}");
        assert!((2.0..=4.0).contains(&batches), "{text}");
        assert_eq!(
            metric(&text, "qip_ledger_group_commit_fallbacks_total"),
            2.0,
            "{text}"
        );
    } else {
        assert_eq!((batches, grouped), (0.0, 0.0));
    }
}

#[test]
fn a_key_already_recorded_fails_the_one_statement_write_and_the_general_path_answers() {
    // On PostgreSQL the reused key's statement fails on the key's primary key and writes nothing; the general
    // path then answers 422 (another request under that key) and the next key posts as usual.
    let t = setup();
    assert_eq!(t.contribute(Some("first"), &t.usd("1.00")).status().as_u16(), 201);
    assert_eq!(t.contribute(Some("taken"), &t.usd("2.00")).status().as_u16(), 201);
    let reused = t.contribute(Some("taken"), &t.usd("3.00"));
    assert_eq!(reused.status().as_u16(), 422);
    let fresh = t.contribute(Some("fresh"), &t.usd("4.00"));
    assert_eq!(fresh.status().as_u16(), 201);
    assert_eq!(t.transaction_count(), 3);
    assert_eq!(t.pool()["balances"]["contributed"], "7.00");
    let mut conn = t.m.app.db.connect();
    assert_eq!(contribution_events(&mut conn), 3);
    let report = check::check(&mut conn).unwrap();
    assert!(report.ok, "{:?}", report.problems);
    let text = t.m.app.get("/metrics").text().unwrap();
    let fell_back = metric(&text, "qip_ledger_group_commit_fallbacks_total");
    let expected = if matches!(conn, DbConn::Pg(_)) { 1.0 } else { 0.0 };
    assert_eq!(fell_back, expected, "{text}");
}

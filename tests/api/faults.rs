//! Faults: a lost database connection mid-request is a retryable 503 (never a 500), an idempotency key is free
//! again the moment the request holding it dies, contention is retried inside the service, and online backups
//! are consistent. (`/readyz` without network details: tests/api/ops.rs.)

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Integer;
use serde_json::Value;

use crate::ledger::setup;
use crate::support::{TestApp, TestDb, assert_problem};

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// Waits for a backend of `db_name` that is blocked on a lock, and returns its pid.
fn blocked_backend(admin: &mut PgConnection, db_name: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows: Vec<Pid> = diesel::sql_query(format!(
            "SELECT pid FROM pg_stat_activity WHERE datname = '{db_name}' AND wait_event_type = 'Lock'"
        ))
        .load(admin)
        .unwrap();
        if let Some(row) = rows.first() {
            return row.pid;
        }
        assert!(
            Instant::now() < deadline,
            "no request ever blocked on the held lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The database kills the connection of a payment in flight (as a restart or failover does). The client gets
/// a 503 with `Retry-After`, and its retry with the same key posts at once: the key's claim died with the
/// transaction instead of blocking the key for a lease.
#[test]
fn a_payment_whose_connection_dies_is_503_and_its_key_is_free_at_once() {
    let t = setup();
    assert_eq!(
        t.contribute(Some("warm-up"), &t.usd("1.00")).status().as_u16(),
        201
    );
    let TestDb::Postgres { name, .. } = &t.m.app.db else {
        // SQLite has no server to lose; the claim lives in the posting transaction there too (checked below).
        let res = t.contribute(Some("k-fault"), &t.usd("10.00"));
        assert_eq!(res.status().as_u16(), 201);
        assert_no_claim_left_in_progress(&t.m.app);
        return;
    };
    // Hold the balance rows: every posting locks the ones it moves, so the payment blocks inside its
    // transaction. (The audit chain's head no longer serves: postings write their events unsealed.)
    let mut holder = t.m.app.db.connect();
    holder
        .batch_execute("BEGIN; SELECT * FROM ledger_balances FOR UPDATE;")
        .unwrap();
    let (killed, retried) = std::thread::scope(|s| {
        let in_flight = s.spawn(|| t.contribute(Some("k-fault"), &t.usd("10.00")));
        let mut admin = t.m.app.db.admin();
        let pid = blocked_backend(&mut admin, name);
        admin
            .batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
            .unwrap();
        let killed = in_flight.join().unwrap();
        holder.batch_execute("ROLLBACK").unwrap();
        let retried = t.contribute(Some("k-fault"), &t.usd("10.00"));
        (killed, retried)
    });
    assert_eq!(killed.headers().get("retry-after").unwrap(), "1");
    let body = assert_problem(killed, 503, "service-unavailable");
    assert!(
        body["detail"].as_str().unwrap().to_lowercase().contains("retry"),
        "{body}"
    );
    assert_eq!(retried.status().as_u16(), 201, "the retry posts at once");
    assert!(retried.headers().get("idempotent-replayed").is_none());
    assert_eq!(t.transaction_count(), 2, "warm-up and k-fault, each once");
    assert_eq!(t.pool()["balances"]["contributed"], "11.00");
    assert_no_claim_left_in_progress(&t.m.app);
}

fn assert_no_claim_left_in_progress(app: &TestApp) {
    use qip_pool::db::schema::idempotency_keys::dsl::*;
    let pending: i64 = idempotency_keys
        .filter(status.ne("done"))
        .count()
        .get_result(&mut app.conn())
        .unwrap();
    assert_eq!(pending, 0, "no claim is ever committed without its response");
}

/// A concurrent duplicate either waits and replays (SQLite: one writer at a time) or is told at once that
/// the key is in use (PostgreSQL); never two postings, and no key is left claimed.
#[test]
fn concurrent_duplicates_leave_no_claim_behind() {
    let t = setup();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| t.contribute(Some("dup"), &t.usd("5.00")).status().as_u16()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert_eq!(t.transaction_count(), 1);
    assert_no_claim_left_in_progress(&t.m.app);
    let replay = t.contribute(Some("dup"), &t.usd("5.00"));
    assert_eq!(replay.headers().get("idempotent-replayed").unwrap(), "true");
}

/// `qip-pool backup --to FILE` while money keeps moving: the copy is one consistent instant (ledger check and
/// audit verify pass on it), never overwrites a file, and PostgreSQL is pointed to its own tools.
#[test]
fn online_backup_of_a_busy_database_is_consistent() {
    let t = setup();
    let url = t.m.app.db.url();
    let env = [("QIP__DATABASE__URL", url.as_str())];
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.sqlite3");
    let copy_arg = copy.display().to_string();
    // The checkpoint is taken on the sealed chain (no sealer job runs under test: `--seal` does its pass).
    let before = crate::cli::qip_pool(&["audit", "verify", "--seal"], &env);
    let before: Value = serde_json::from_slice(&before.stdout).unwrap();
    let checkpoint = format!("{}:{}", before["head_seq"], before["head_hash"].as_str().unwrap());
    let forged = format!("{}:{}", before["head_seq"], "0".repeat(64));
    if t.m.app.db.is_postgres() {
        let out = crate::cli::qip_pool(&["audit", "verify", "--checkpoint", &checkpoint], &env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let out = crate::cli::qip_pool(&["audit", "verify", "--checkpoint", &forged], &env);
        assert_eq!(
            out.status.code(),
            Some(2),
            "a checkpoint the chain does not carry is a break"
        );
        let out = crate::cli::qip_pool(&["backup", "--to", &copy_arg], &env);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
        return;
    }
    let (out, posted) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            (0..40)
                .filter(|n| {
                    t.contribute(Some(&format!("busy-{n}")), &t.usd("3.00"))
                        .status()
                        .as_u16()
                        == 201
                })
                .count()
        });
        std::thread::sleep(Duration::from_millis(150));
        let out = crate::cli::qip_pool(&["backup", "--to", &copy_arg], &env);
        (out, writer.join().unwrap())
    });
    assert_eq!(posted, 40);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["integrity"], "ok");
    assert!(report["bytes"].as_u64().unwrap() > 0);

    let copy_url = format!("sqlite://{copy_arg}");
    let copy_env = [("QIP__DATABASE__URL", copy_url.as_str())];
    for args in [["ledger", "check"], ["audit", "verify"]] {
        let out = crate::cli::qip_pool(&args, &copy_env);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?} on the copy: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = crate::cli::qip_pool(&["audit", "verify", "--checkpoint", &checkpoint], &copy_env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["checkpoint"]["matches"], true);
    let out = crate::cli::qip_pool(&["audit", "verify", "--checkpoint", &forged], &copy_env);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a checkpoint the copy does not carry is a break"
    );
    // The copy holds a prefix of the postings: whole transactions only, none half-written.
    let mut copy_conn = qip_pool::db::DbConnManager::new(&copy_url, 5_000).open().unwrap();
    let report = qip_pool::features::ledger::check::check(&mut copy_conn).unwrap();
    assert!(report.ok);

    let again = crate::cli::qip_pool(&["backup", "--to", &copy_arg], &env);
    assert_eq!(
        again.status.code(),
        Some(1),
        "an existing file is never overwritten"
    );
}

/// A money request the database rolls back for contention (serialization failure, deadlock, SQLite busy)
/// wrote nothing, so the service runs it again before answering; past the last attempt the client gets a 503
/// with `Retry-After`, and no key is left claimed either way.
#[test]
fn contention_is_retried_inside_the_service_then_answered_503() {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    use qip_pool::error::AppError;
    use qip_pool::features::ledger::idempotency::{self, CONTENTION_ATTEMPTS, IdempotentRequest};

    let app = TestApp::spawn();
    let mut conn = app.conn();
    let contention = || -> AppError {
        DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new("could not serialize access due to concurrent update".to_owned()),
        )
        .into()
    };
    let request = |key: &str| {
        IdempotentRequest::new("u-1", Some(key), "POST", "/probe", &serde_json::json!({})).unwrap()
    };
    let retention = chrono::Duration::days(1);

    let mut calls = 0;
    let stored = idempotency::run(&mut conn, &request("once-rolled-back"), retention, |_| {
        calls += 1;
        if calls == 1 {
            Err(contention())
        } else {
            Ok((201, "{\"ok\":true}".to_owned(), None))
        }
    })
    .unwrap();
    assert_eq!(calls, 2, "run again after the rollback");
    assert_eq!((stored.status, stored.replayed), (201, false));

    let mut calls = 0;
    let err = idempotency::run(&mut conn, &request("always-rolled-back"), retention, |_| {
        calls += 1;
        Err(contention())
    })
    .unwrap_err();
    assert_eq!(calls, CONTENTION_ATTEMPTS);
    assert_eq!(err.kind().status().as_u16(), 503);
    drop(conn);
    assert_no_claim_left_in_progress(&app);
    let stored_keys: i64 = {
        use qip_pool::db::schema::idempotency_keys::dsl::*;
        idempotency_keys.count().get_result(&mut app.conn()).unwrap()
    };
    assert_eq!(stored_keys, 1, "only the request that finally ran is stored");
}

/// Every pooled connection dies at once (a PostgreSQL restart), with no probe on checkout: at most one request
/// is answered 503 (retryable, never a 500) before the pool screens out the dead connections, and every
/// request after it succeeds with the real balances.
#[test]
fn a_pool_whose_connections_all_died_recovers_after_one_retryable_failure() {
    let t = setup();
    assert_eq!(
        t.contribute(Some("before"), &t.usd("5.00")).status().as_u16(),
        201
    );
    let path = format!("/api/v1/pools/{}", t.m.pool_id);
    // Fill the pool with idle connections: concurrent reads each check one out.
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(t.m.app.get_as(&path, &t.finance.access).status().as_u16(), 200);
                }
            });
        }
    });
    if let TestDb::Postgres { name, .. } = &t.m.app.db {
        t.m.app
            .db
            .admin()
            .batch_execute(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            ))
            .unwrap();
    }
    let statuses: Vec<u16> = (0..12)
        .map(|_| t.m.app.get_as(&path, &t.finance.access).status().as_u16())
        .collect();
    let failed = statuses.iter().filter(|s| **s == 503).count();
    assert!(failed <= 1, "at most one retryable failure: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "never a 500: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&200), "{statuses:?}");
    assert_eq!(t.pool()["balances"]["contributed"], "5.00");
}

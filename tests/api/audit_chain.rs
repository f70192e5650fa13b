//! The audit chain core: appends inside transactions (also from many threads at once) are sealed into one
//! chain that verifies as intact, each exactly once, also with several sealers at work and postings in
//! flight; a row changed behind the triggers' back is found at its sequence number; the database itself
//! refuses UPDATE and DELETE on the audit table (sealing an unsealed event is the one update it allows);
//! verification reports the unsealed tail.

use diesel::connection::SimpleConnection;
use qip_pool::db::{self, DbConn};
use qip_pool::features::audit::{self, AuditAction, AuditContext, Outcome, WhenBusy};
use serde_json::json;

use crate::support::TestApp;

fn append_one(conn: &mut DbConn, n: usize) {
    db::write_tx(conn, |c| {
        let ctx = AuditContext {
            actor_username: Some(format!("user{}", n % 7)),
            hat: Some("admin".into()),
            request_id: Some(format!("req-{n}")),
            ..AuditContext::default()
        };
        audit::append(
            c,
            ctx.event(AuditAction::AuditCheckpoint, "probe", Some(&n.to_string()))
                .after(json!({"n": n, "note": "ünïcode ✓"})),
        )
        .map(|_| ())
    })
    .unwrap();
}

fn seal(conn: &mut DbConn) -> u64 {
    audit::seal_pending(conn, WhenBusy::Wait).unwrap()
}

#[test]
fn sequential_and_concurrent_appends_verify_intact() {
    let app = TestApp::spawn();
    let mut conn = app.conn();
    for n in 0..50 {
        append_one(&mut conn, n);
    }
    drop(conn);
    std::thread::scope(|s| {
        for t in 0..6 {
            let app = &app;
            s.spawn(move || {
                let mut conn = app.conn();
                for n in 0..25 {
                    append_one(&mut conn, 1000 * (t + 1) + n);
                }
            });
        }
    });
    assert_eq!(seal(&mut app.conn()), 200);
    let report = audit::verify_chain(&mut app.conn()).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.events_checked, 200);
    assert_eq!(report.unsealed_events, 0);
    assert_eq!(report.head_seq, 200);
    assert_eq!(report.first_broken_seq, None);
    assert_eq!(report.head_hash.len(), 64);
}

#[test]
fn rolled_back_transaction_leaves_no_event() {
    let app = TestApp::spawn();
    let mut conn = app.conn();
    append_one(&mut conn, 1);
    let result: Result<(), diesel::result::Error> = db::write_tx(&mut conn, |c| {
        audit::append(
            c,
            AuditContext::system(None)
                .event(AuditAction::AuditCheckpoint, "probe", None)
                .outcome(Outcome::Failure),
        )?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(result.is_err());
    append_one(&mut conn, 2);
    assert_eq!(seal(&mut conn), 2);
    let report = audit::verify_chain(&mut conn).unwrap();
    assert!(report.intact);
    assert_eq!(report.head_seq, 2);
}

#[test]
fn update_and_delete_are_refused_by_the_database() {
    let app = TestApp::spawn();
    let mut conn = app.conn();
    append_one(&mut conn, 1);
    // Unsealed: its content cannot change, not even together with the sealing columns.
    for tamper in [
        "UPDATE audit_events SET action = 'rewritten' WHERE seq IS NULL",
        "UPDATE audit_events SET action = 'rewritten', seq = 1, prev_hash = 'ab', hash = 'cd' WHERE seq IS NULL",
        "DELETE FROM audit_events WHERE seq IS NULL",
    ] {
        let err = conn.batch_execute(tamper).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{tamper}: {err}");
    }
    assert_eq!(seal(&mut conn), 1);
    // Sealed: nothing changes, the chain fields included.
    let err = conn
        .batch_execute("UPDATE audit_events SET hash = 'cd' WHERE seq = 1")
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn
        .batch_execute("UPDATE audit_events SET action = 'rewritten' WHERE seq = 1")
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn
        .batch_execute("DELETE FROM audit_events WHERE seq = 1")
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(audit::verify_chain(&mut conn).unwrap().intact);
}

#[test]
fn a_row_changed_behind_the_trigger_is_found_at_its_seq() {
    let app = TestApp::spawn();
    let mut conn = app.conn();
    for n in 0..10 {
        append_one(&mut conn, n);
    }
    seal(&mut conn);
    let mut raw = app.db.connect();
    if app.db.is_postgres() {
        raw.batch_execute(
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only; \
             UPDATE audit_events SET reason = 'quietly edited' WHERE seq = 7; \
             ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only;",
        )
        .unwrap();
    } else {
        raw.batch_execute(
            "DROP TRIGGER audit_events_no_update; \
             UPDATE audit_events SET reason = 'quietly edited' WHERE seq = 7;",
        )
        .unwrap();
    }
    let report = audit::verify_chain(&mut conn).unwrap();
    assert!(!report.intact);
    assert_eq!(report.first_broken_seq, Some(7));
    assert_eq!(report.events_checked, 10);
}

#[test]
fn a_deleted_row_is_found_as_a_gap() {
    let app = TestApp::spawn();
    let mut conn = app.conn();
    for n in 0..5 {
        append_one(&mut conn, n);
    }
    seal(&mut conn);
    let mut raw = app.db.connect();
    if app.db.is_postgres() {
        raw.batch_execute(
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only; \
             DELETE FROM audit_events WHERE seq = 3;",
        )
        .unwrap();
    } else {
        raw.batch_execute("DROP TRIGGER audit_events_no_delete; DELETE FROM audit_events WHERE seq = 3;")
            .unwrap();
    }
    let report = audit::verify_chain(&mut conn).unwrap();
    assert_eq!(report.first_broken_seq, Some(3));
    assert_eq!(report.events_checked, 4);
}

/// Verification covers the sealed chain and reports what waits to be sealed beside it: how many events and
/// how long the oldest has waited. Unsealed events never make the chain look broken.
#[test]
fn verification_reports_the_unsealed_tail() {
    let app = TestApp::spawn();
    let mut conn = app.conn();
    for n in 0..3 {
        append_one(&mut conn, n);
    }
    let report = audit::verify_chain(&mut conn).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!((report.events_checked, report.head_seq), (0, 0));
    assert_eq!(report.unsealed_events, 3);
    assert!(report.oldest_unsealed_age_ms.is_some_and(|ms| ms >= 0));

    assert_eq!(seal(&mut conn), 3);
    std::thread::sleep(std::time::Duration::from_millis(30));
    append_one(&mut conn, 3);
    append_one(&mut conn, 4);
    let report = audit::verify_chain(&mut conn).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!((report.events_checked, report.head_seq), (3, 3));
    assert_eq!(report.unsealed_events, 2);
    let tail = audit::unsealed_tail(&mut conn).unwrap();
    assert_eq!(tail.events, 2);

    assert_eq!(seal(&mut conn), 2);
    let report = audit::verify_chain(&mut conn).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!((report.events_checked, report.head_seq), (5, 5));
    assert_eq!((report.unsealed_events, report.oldest_unsealed_age_ms), (0, None));
    // Sealed in the order written: chain positions follow event numbers here (one writer at a time).
    let rows = app.audit_rows();
    let seqs: Vec<Option<i64>> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=5).map(Some).collect::<Vec<_>>());
}

/// Many writers commit while two sealers run at once, each in a loop (one waits for the other, one skips
/// when the other is at work, as the job does on several instances): every event ends in one chain, exactly
/// once, with positions 1..=n and no gap, and the chain verifies.
#[test]
fn two_sealers_running_concurrently_produce_one_valid_chain() {
    let app = TestApp::spawn();
    let writing = std::sync::atomic::AtomicBool::new(true);
    let sealed_by_each = std::thread::scope(|s| {
        let sealers: Vec<_> = [WhenBusy::Wait, WhenBusy::Skip]
            .into_iter()
            .map(|when_busy| {
                let (app, writing) = (&app, &writing);
                s.spawn(move || {
                    let mut conn = app.conn();
                    let mut sealed = 0;
                    while writing.load(std::sync::atomic::Ordering::SeqCst) {
                        sealed += audit::seal_pending(&mut conn, when_busy).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    sealed
                })
            })
            .collect();
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let app = &app;
                s.spawn(move || {
                    let mut conn = app.conn();
                    for n in 0..60 {
                        append_one(&mut conn, 1000 * (t + 1) + n);
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        writing.store(false, std::sync::atomic::Ordering::SeqCst);
        sealers
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<u64>>()
    });
    let last = seal(&mut app.conn());
    assert_eq!(
        sealed_by_each.iter().sum::<u64>() + last,
        240,
        "{sealed_by_each:?} + {last}"
    );
    let report = audit::verify_chain(&mut app.conn()).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!((report.events_checked, report.head_seq), (240, 240));
    assert_eq!(report.unsealed_events, 0);
    let mut seqs: Vec<i64> = app.audit_rows().iter().map(|r| r.seq.unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=240).collect::<Vec<_>>());
}

/// Contributions posted concurrently over HTTP (each writing its audit event without any lock shared by all
/// postings) while a sealer runs: each posting's event is sealed exactly once into one valid chain.
#[test]
fn events_of_concurrent_postings_are_sealed_once_into_one_chain() {
    let t = crate::ledger::setup();
    let app = &t.m.app;
    let posting = std::sync::atomic::AtomicBool::new(true);
    std::thread::scope(|s| {
        let sealer = s.spawn(|| {
            let mut conn = app.conn();
            while posting.load(std::sync::atomic::Ordering::SeqCst) {
                audit::seal_pending(&mut conn, WhenBusy::Skip).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        let clients: Vec<_> = (0..6)
            .map(|c| {
                let t = &t;
                s.spawn(move || {
                    for n in 0..8 {
                        let res = t.contribute(Some(&format!("k-{c}-{n}")), &t.usd("1.00"));
                        assert_eq!(res.status().as_u16(), 201);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        posting.store(false, std::sync::atomic::Ordering::SeqCst);
        sealer.join().unwrap();
    });
    app.seal();
    let report = audit::verify_chain(&mut app.conn()).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.unsealed_events, 0);
    let rows = app.audit_rows();
    assert_eq!(report.events_checked, rows.len() as u64);
    let contributions: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "ledger.contribution")
        .collect();
    assert_eq!(contributions.len(), 48);
    assert_eq!(t.transaction_count(), 48);
    assert!(contributions.iter().all(|r| r.is_sealed()));
    let mut seqs: Vec<i64> = rows.iter().map(|r| r.seq.unwrap()).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs, (1..=rows.len() as i64).collect::<Vec<_>>());
}

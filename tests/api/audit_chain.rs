//! The audit chain core: appends inside transactions (also from many threads at once) verify as intact;
//! a row changed behind the triggers' back is found at its sequence number; the database itself refuses
//! UPDATE and DELETE on the audit table.

use diesel::connection::SimpleConnection;
use qip_pool::db::{self, DbConn};
use qip_pool::features::audit::{self, AuditContext, Outcome};
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
            ctx.event("test.event", "probe", Some(&n.to_string()))
                .after(json!({"n": n, "note": "ünïcode ✓"})),
        )
        .map(|_| ())
    })
    .unwrap();
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
    let report = audit::verify_chain(&mut app.conn()).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.events_checked, 200);
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
                .event("doomed", "probe", None)
                .outcome(Outcome::Failure),
        )?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(result.is_err());
    append_one(&mut conn, 2);
    let report = audit::verify_chain(&mut conn).unwrap();
    assert!(report.intact);
    assert_eq!(report.head_seq, 2);
}

#[test]
fn update_and_delete_are_refused_by_the_database() {
    let app = TestApp::spawn();
    let mut conn = app.conn();
    append_one(&mut conn, 1);
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

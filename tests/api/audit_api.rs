//! The audit API: filters, paging, an admin limited to their own domain, reads recorded, checkpoint.

use qip_pool::db;
use qip_pool::features::audit::{self, AuditAction, AuditContext};
use serde_json::Value;

use crate::support::TestApp;

#[test]
fn auditor_reads_filtered_events_and_each_read_is_audited() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "OIOS", "mission_section");
    let auditor = app.user_with_hats(&admin, "auditor", &org, &["auditor"]);
    db::write_tx(&mut app.conn(), |c| {
        audit::append(
            c,
            AuditContext::system(None).event(AuditAction::LedgerContribution, "transaction", Some("t-1")),
        )
        .map(|_| ())
    })
    .unwrap();

    // Shown at once, before the sealer has chained it...
    let page: Value = app
        .get_as("/api/v1/audit/events?entity_type=transaction", &auditor.access)
        .json()
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["entity_id"], "t-1");
    assert_eq!(page["items"][0]["sealed"], false);
    assert_eq!(page["items"][0]["seq"], Value::Null);
    assert_eq!(page["items"][0]["hash"], Value::Null);
    let event_no = page["items"][0]["event_no"].as_i64().unwrap();
    // ...and in the same place, with its chain position and hash, once sealed.
    assert!(app.seal() > 0);
    let page: Value = app
        .get_as("/api/v1/audit/events?entity_type=transaction", &auditor.access)
        .json()
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["event_no"], event_no);
    assert_eq!(page["items"][0]["sealed"], true);
    assert!(page["items"][0]["seq"].as_i64().unwrap() > 0);
    assert_eq!(page["items"][0]["hash"].as_str().unwrap().len(), 64);

    // An admin sees their own domain only.
    let page: Value = app
        .get_as("/api/v1/audit/events?entity_type=transaction", &admin.access)
        .json()
        .unwrap();
    assert_eq!(page["items"], serde_json::json!([]));
    let page: Value = app
        .get_as("/api/v1/audit/events?action=user.create", &admin.access)
        .json()
        .unwrap();
    assert!(!page["items"].as_array().unwrap().is_empty());

    let reads = app
        .audit_rows()
        .into_iter()
        .filter(|e| e.action == "audit.read")
        .count();
    assert_eq!(reads, 4);

    // Newest first, paged without overlap.
    let first: Value = app
        .get_as("/api/v1/audit/events?limit=2", &auditor.access)
        .json()
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get_as(
            &format!("/api/v1/audit/events?limit=2&cursor={cursor}"),
            &auditor.access,
        )
        .json()
        .unwrap();
    let a = first["items"][1]["event_no"].as_i64().unwrap();
    let b = second["items"][0]["event_no"].as_i64().unwrap();
    assert!(first["items"][0]["event_no"].as_i64().unwrap() > a && a > b);
}

#[test]
fn verify_and_checkpoint_report_the_head() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "BOA", "mission_section");
    let auditor = app.user_with_hats(&admin, "boa", &org, &["auditor"]);
    app.seal();
    let checkpoint: Value = app
        .get_as("/api/v1/audit/checkpoint", &auditor.access)
        .json()
        .unwrap();
    app.seal();
    let report: Value = app
        .get_as("/api/v1/audit/verify", &auditor.access)
        .json()
        .unwrap();
    assert_eq!(report["intact"], true);
    assert_eq!(report["first_broken_seq"], Value::Null);
    assert!(report["head_seq"].as_i64().unwrap() > checkpoint["head_seq"].as_i64().unwrap());
    let at_checkpoint = app
        .audit_rows()
        .into_iter()
        .find(|e| e.seq == checkpoint["head_seq"].as_i64())
        .unwrap();
    assert_eq!(at_checkpoint.hash.as_deref(), checkpoint["head_hash"].as_str());
}

//! Reads that must stay flat in history (issue 14): "my tasks" paged by keyset and honouring the payment
//! separation of duties, and a transactions page built from batched reads that still shows reversals.

use serde_json::{Value, json};

use crate::approval::desk;
use crate::ledger::setup;
use crate::support::Session;

fn tasks_page(app: &crate::support::TestApp, who: &Session, path: &str) -> (Vec<Value>, Option<String>) {
    let res = app.get_as(path, &who.access);
    assert_eq!(res.status().as_u16(), 200);
    let next = res
        .headers()
        .get("link")
        .map(|l| l.to_str().unwrap().to_owned())
        .map(|l| {
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l.trim_start_matches('<').split('>').next().unwrap().to_owned()
        });
    (res.json().unwrap(), next)
}

#[test]
fn a_finance_officer_who_decided_a_step_is_not_offered_its_tranche() {
    let d = desk("100000.00");
    let (id, _) = d.in_review("Well", "10000.00");
    assert_eq!(d.approve_all(&id)["state"], "approved");
    d.m.app
        .grant(&d.m._admin, &d.hoo.user_id, &json!({"hat": "finance_officer"}));

    let offered = |who: &Session| {
        let (tasks, _) = tasks_page(&d.m.app, who, "/api/v1/me/tasks");
        tasks
            .iter()
            .any(|t| t["kind"] == "tranche_to_pay" && t["proposal_id"] == id.as_str())
    };
    assert!(
        offered(&d.finance),
        "the finance officer is offered the first tranche"
    );
    assert!(
        !offered(&d.hoo),
        "the head of office decided a step: access::may_pay refuses them the payment, so it is no task of theirs"
    );
}

#[test]
fn my_tasks_are_paged_by_keyset_without_losing_or_repeating_a_task() {
    let d = desk("100000.00");
    let mut ids = Vec::new();
    for title in ["Pump", "School roof", "Clinic fence"] {
        let (id, _) = d.in_review(title, "10000.00");
        assert_eq!(d.approve_all(&id)["state"], "approved");
        ids.push(id);
    }
    let (all, next) = tasks_page(&d.m.app, &d.finance, "/api/v1/me/tasks");
    assert!(next.is_none(), "one page holds them all");
    let mut payable: Vec<String> = all
        .iter()
        .filter(|t| t["kind"] == "tranche_to_pay")
        .map(|t| t["proposal_id"].as_str().unwrap().to_owned())
        .collect();
    payable.sort();
    ids.sort();
    assert_eq!(payable, ids);

    let mut paged = Vec::new();
    let mut path = Some("/api/v1/me/tasks?limit=1".to_owned());
    while let Some(p) = path {
        let (page, next) = tasks_page(&d.m.app, &d.finance, &p);
        assert!(page.len() <= 1);
        paged.extend(page);
        path = next;
        assert!(paged.len() <= all.len(), "paging ends");
    }
    assert_eq!(paged, all, "the pages, in order, are the whole list");

    let res =
        d.m.app
            .get_as("/api/v1/me/tasks?cursor=nonsense", &d.finance.access);
    assert_eq!(
        res.status().as_u16(),
        422,
        "a bad cursor is a validation error, as on every list"
    );
}

#[test]
fn a_transactions_page_shows_entries_and_reversals_of_every_row() {
    let t = setup();
    let mut ids = Vec::new();
    for (i, amount) in ["100.00", "200.00", "300.00"].iter().enumerate() {
        let tx: Value = t
            .contribute(Some(&format!("c{i}")), &t.usd(amount))
            .json()
            .unwrap();
        ids.push(tx["id"].as_str().unwrap().to_owned());
    }
    let res =
        t.m.app
            .client
            .post(t.m.app.url(&format!("/api/v1/transactions/{}/reverse", ids[1])))
            .bearer_auth(&t.finance.access)
            .header("Idempotency-Key", "rev-1")
            .json(&json!({"reason": "Entered twice by mistake"}))
            .send()
            .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let reversal: Value = res.json().unwrap();

    let page: Value =
        t.m.app
            .get_as(
                &format!("/api/v1/pools/{}/transactions?limit=200", t.m.pool_id),
                &t.finance.access,
            )
            .json()
            .unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    for item in items {
        let id = item["id"].as_str().unwrap();
        let entries = item["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{item}");
        let expected_reversal = if id == ids[1] {
            reversal["id"].clone()
        } else {
            Value::Null
        };
        assert_eq!(item["reversed_by"], expected_reversal, "{id}");
        let single: Value =
            t.m.app
                .get_as(&format!("/api/v1/transactions/{id}"), &t.finance.access)
                .json()
                .unwrap();
        assert_eq!(&single, item, "the page shows what the single read shows");
    }
}

#[test]
fn a_paid_tranche_leaves_the_finance_officers_tasks_and_the_pages_still_hold_the_rest_in_order() {
    let d = desk("100000.00");
    let mut ids = Vec::new();
    for title in ["Well", "Market stalls", "Bridge rails"] {
        let (id, _) = d.in_review(title, "10000.00");
        assert_eq!(d.approve_all(&id)["state"], "approved");
        ids.push(id);
    }
    ids.sort();
    // Pay the middle proposal's first tranche in full: it is no longer scheduled, so no longer a task.
    let paid = ids[1].clone();
    let tranches: Vec<Value> =
        d.m.app
            .get_as(&format!("/api/v1/proposals/{paid}/tranches"), &d.finance.access)
            .json()
            .unwrap();
    let first = tranches.iter().find(|t| t["number"] == 1).unwrap();
    let res =
        d.m.app
            .client
            .post(
                d.m.app
                    .url(&format!("/api/v1/proposals/{paid}/tranches/1/disbursements")),
            )
            .bearer_auth(&d.finance.access)
            .header("Idempotency-Key", "pay-middle-1")
            .json(
                &json!({"amount": first["amount"], "paid_on": chrono::Utc::now().date_naive(),
                          "payment_reference": "PAY-MIDDLE-1"}),
            )
            .send()
            .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().unwrap());

    let tranche_tasks = |tasks: &[Value]| -> Vec<(String, String)> {
        tasks
            .iter()
            .filter(|t| t["kind"] == "tranche_to_pay")
            .map(|t| {
                (
                    t["proposal_id"].as_str().unwrap().to_owned(),
                    t["link"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (all, next) = tasks_page(&d.m.app, &d.finance, "/api/v1/me/tasks");
    assert!(next.is_none());
    let expected: Vec<(String, String)> = [&ids[0], &ids[2]]
        .iter()
        .map(|id| {
            (
                (*id).clone(),
                format!("/api/v1/proposals/{id}/tranches/1/disbursements"),
            )
        })
        .collect();
    assert_eq!(
        tranche_tasks(&all),
        expected,
        "the first tranches still scheduled, in proposal order; the paid one is gone"
    );

    let mut paged = Vec::new();
    let mut path = Some("/api/v1/me/tasks?limit=1".to_owned());
    while let Some(p) = path {
        let (page, next) = tasks_page(&d.m.app, &d.finance, &p);
        paged.extend(page);
        path = next;
        assert!(paged.len() <= all.len(), "paging ends");
    }
    assert_eq!(
        paged, all,
        "one task a page, after the cursor each time, is the whole list"
    );
}

#[derive(diesel::QueryableByName)]
struct LockingTransaction {
    #[diesel(sql_type = diesel::sql_types::Text)]
    xmax: String,
}

/// The audit sealer runs five times a second on every instance. A pass with nothing to seal must not open a
/// write transaction: on PostgreSQL locking the chain head is itself a write (a new locking transaction id on
/// the head row, a WAL record and a commit flush), on SQLite it takes the one write lock, so an idle pass
/// would wait behind any writer. A pass with events pending still seals them, in one chain.
#[test]
fn an_idle_audit_sealer_pass_writes_nothing_and_a_busy_one_seals() {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    use qip_pool::jobs::audit_sealer::seal_once;

    let (app, admin) = crate::support::TestApp::with_admin();
    app.seal();
    let mut conn = app.conn();
    assert_eq!(seal_once(&mut conn), 0, "everything was sealed already");
    if app.db.is_postgres() {
        let locker = |conn: &mut qip_pool::db::DbConn| {
            diesel::sql_query("SELECT CAST(xmax AS TEXT) AS xmax FROM audit_head WHERE id = 1")
                .get_result::<LockingTransaction>(conn)
                .unwrap()
                .xmax
        };
        let before = locker(&mut conn);
        for _ in 0..3 {
            assert_eq!(seal_once(&mut conn), 0);
        }
        assert_eq!(
            locker(&mut conn),
            before,
            "an idle pass locked the chain head (a write transaction with nothing to seal)"
        );
    } else {
        // Another connection holds SQLite's write lock, as a long posting would.
        let mut writer = app.conn();
        writer.batch_execute("BEGIN IMMEDIATE").unwrap();
        let started = std::time::Instant::now();
        assert_eq!(seal_once(&mut conn), 0);
        let waited = started.elapsed();
        writer.batch_execute("ROLLBACK").unwrap();
        assert!(
            waited < std::time::Duration::from_secs(2),
            "an idle pass waited {waited:?} for the write lock (a write transaction with nothing to seal)"
        );
    }

    // Something to seal: an audited write (creating an organisation), sealed by the next pass.
    let org = app.create_org(&admin, "SEALME", "ngo");
    let unsealed = app.audit_rows().into_iter().filter(|r| r.seq.is_none()).count();
    assert!(unsealed >= 1, "the write left its event unsealed");
    assert_eq!(seal_once(&mut conn), unsealed as u64);
    assert!(app.audit_rows().iter().all(|r| r.seq.is_some()));
    let created = app
        .audit_rows()
        .into_iter()
        .find(|r| r.entity_id.as_deref() == Some(org.as_str()))
        .expect("the organisation's event");
    assert!(created.seq.is_some());
    let report = qip_pool::features::audit::verify_chain(&mut conn).unwrap();
    assert!(report.intact, "{report:?}");
    assert_eq!(report.unsealed_events, 0);
}

/// Pays the first tranche of approved proposal `id` in full on `paid_on` (its implementation starts).
fn pay_first_tranche(d: &crate::approval::Desk, id: &str, key: &str, paid_on: chrono::NaiveDate) {
    let tranches: Value =
        d.m.app
            .get_as(&format!("/api/v1/proposals/{id}/tranches"), &d.finance.access)
            .json()
            .unwrap();
    let res =
        d.m.app
            .client
            .post(
                d.m.app
                    .url(&format!("/api/v1/proposals/{id}/tranches/1/disbursements")),
            )
            .bearer_auth(&d.finance.access)
            .header("Idempotency-Key", key)
            .json(&json!({"amount": tranches[0]["amount"], "paid_on": paid_on, "payment_reference": key}))
            .send()
            .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().unwrap());
}

/// The QIP officer's tasks list the implementations past their maximum duration, due on the first payment's
/// date plus that duration (one statement for all proposals in implementation, with their current version's
/// settings and first payment), and not the implementations still within it.
#[test]
fn implementations_past_their_maximum_duration_are_the_qip_officers_tasks() {
    let d = desk("100000.00");
    let today = chrono::Utc::now().date_naive();
    let (late, _) = d.in_review("Old well", "3000.00");
    assert_eq!(d.approve_all(&late)["state"], "approved");
    let (recent, _) = d.in_review("New well", "3000.00");
    assert_eq!(d.approve_all(&recent)["state"], "approved");
    pay_first_tranche(&d, &late, "late-1", today - chrono::Duration::days(800));
    pay_first_tranche(&d, &recent, "recent-1", today);
    for id in [&late, &recent] {
        let proposal: Value =
            d.m.app
                .get_as(&format!("/api/v1/proposals/{id}"), &d.m.qip.access)
                .json()
                .unwrap();
        assert_eq!(proposal["state"], "in_implementation");
    }

    let due_of = |id: &str| {
        qip_pool::features::implementation::service::implementation_due_dates(&mut d.m.app.conn())
            .unwrap()
            .into_iter()
            .find(|(p, _)| p.id == id)
            .expect("a paid implementation has a due date")
            .1
    };
    let late_due = due_of(&late);
    assert!(
        late_due < today,
        "the first payment is older than the maximum duration"
    );
    assert!(due_of(&recent) >= today);

    let (tasks, _) = tasks_page(&d.m.app, &d.m.qip, "/api/v1/me/tasks");
    let overdue: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["kind"] == "implementation_overdue")
        .collect();
    assert_eq!(overdue.len(), 1, "{tasks:?}");
    let task = overdue[0];
    assert_eq!(task["proposal_id"], late.as_str());
    assert_eq!(task["hat"], "qip_officer");
    assert_eq!(task["overdue"], true);
    assert_eq!(task["title"], "Old well");
    assert_eq!(task["link"], format!("/api/v1/proposals/{late}"));
    assert_eq!(
        task["due_at"].as_str().unwrap()[..10],
        late_due.to_string(),
        "due on the first payment's date plus the pool's maximum duration"
    );
    assert!(
        !tasks
            .iter()
            .any(|t| t["proposal_id"] == recent.as_str() && t["kind"] == "implementation_overdue"),
        "an implementation within its duration is no task yet"
    );
}

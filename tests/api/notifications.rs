//! Notifications end to end, with real components started here: an SMTP sink speaking enough SMTP on a
//! socket (lettre talks to it as to any relay), an HTTP webhook receiver on 127.0.0.1 (an allowlisted
//! loopback), the delivery worker as `serve` runs it, two of them at once, and the binary killed with -9
//! between commit and delivery.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use qip_pool::config::{NotificationSettings, Settings};
use qip_pool::db::schema::notification_deliveries;
use qip_pool::db::{self, DbPool};
use qip_pool::features::notifications::worker::Worker;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::fixtures::{GAZETTEER, Mission};
use crate::support::{Session, TEST_JWT_SECRET, TestApp, assert_problem, test_settings};

const SECRET_NOTE: &str = "secret-protection-note-4711";
const FLAG_TEXT: &str = "Armed escorts at a school endanger pupils";

// ---------------------------------------------------------------------------------------------------------
// A tiny SMTP server: enough of RFC 5321 for lettre (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).

#[derive(Debug, Clone)]
struct Mail {
    rcpt: Vec<String>,
    data: String,
}

struct SmtpSink {
    port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let store = mails.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let store = store.clone();
                std::thread::spawn(move || smtp_session(stream, &store));
            }
        });
        SmtpSink { port, mails }
    }

    fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    fn to(&self, address: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.rcpt.iter().any(|r| r == address))
            .collect()
    }
}

fn smtp_session(stream: TcpStream, store: &Mutex<Vec<Mail>>) {
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let _ = out.write_all(b"220 sink.test ESMTP\r\n");
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-sink.test\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM") {
            rcpt.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO") {
            let addr = line.split(['<', '>']).nth(1).unwrap_or_default().to_owned();
            rcpt.push(addr);
            b"250 OK\r\n"
        } else if upper.starts_with("DATA") {
            let _ = out.write_all(b"354 go ahead\r\n");
            let mut data = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" {
                    break;
                }
                data.push_str(&line);
            }
            store.lock().unwrap().push(Mail {
                rcpt: std::mem::take(&mut rcpt),
                data,
            });
            b"250 queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = out.write_all(b"221 bye\r\n");
            return;
        } else {
            b"250 OK\r\n"
        };
        let _ = out.write_all(reply);
    }
}

/// The decoded text of a message (lettre may quote-print or base64 its parts).
fn decoded_text(mail: &Mail) -> String {
    let mut text = mail.data.replace("=\r\n", "");
    // Base64 bodies: decode every line block that decodes.
    for block in mail.data.split("\r\n\r\n") {
        let joined: String = block.lines().collect();
        if let Ok(bytes) = STANDARD.decode(joined.trim())
            && let Ok(s) = String::from_utf8(bytes)
        {
            text.push_str(&s);
        }
    }
    text
}

// ---------------------------------------------------------------------------------------------------------
// A webhook receiver: records every request; answers 500 to the first `fail_first` ones, then 204.

#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: String,
}

struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let seen = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (store, seen) = (store.clone(), seen.clone());
                std::thread::spawn(move || {
                    if let Some(req) = read_request(&stream) {
                        store.lock().unwrap().push(req);
                        let n = seen.fetch_add(1, Ordering::SeqCst);
                        let status = if n < fail_first {
                            "500 Internal Server Error"
                        } else {
                            "204 No Content"
                        };
                        let mut s = stream;
                        let _ = write!(
                            s,
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                    }
                });
            }
        });
        Receiver { port, received }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/qip", self.port)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut headers = HashMap::new();
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

/// Standard Webhooks verification, written here from the specification (not with the service's code):
/// HMAC-SHA256 keyed with the base64-decoded part of `whsec_…` over `id.timestamp.body`, base64, `v1,` prefix.
fn verifies(secret: &str, r: &Received) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            r.headers["webhook-id"], r.headers["webhook-timestamp"], r.body
        )
        .as_bytes(),
    );
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    r.headers["webhook-signature"].split(' ').any(|s| s == expected)
}

// ---------------------------------------------------------------------------------------------------------
// The mission, with notification settings of the test's choosing.

struct World {
    m: Mission,
    unicef_org: String,
    settings: Settings,
}

fn world(customize: impl Fn(&mut NotificationSettings)) -> World {
    let outbox = std::env::temp_dir()
        .join(format!("qip-outbox-{}", uuid::Uuid::now_v7()))
        .display()
        .to_string();
    let apply = |s: &mut Settings| {
        s.notifications.outbox_dir = outbox.clone();
        s.notifications.public_base_url = "https://qip.example.org".into();
        s.notifications.retry_base_secs = 0;
        s.notifications.retry_max_delay_secs = 0;
        customize(&mut s.notifications);
    };
    let app = TestApp::spawn_with(apply, |_| {});
    let mut settings = test_settings(&app.db.url());
    apply(&mut settings);
    let admin = app.bootstrap_admin();
    let office = app.create_org(&admin, "QIPSEC", "mission_office");
    let unit_org = app.create_org(&admin, "BANBAT", "military_unit");
    let other_org = app.create_org(&admin, "PAKENG", "military_unit");
    let unicef_org = app.create_org(&admin, "UNICEF", "un_agency");
    let qip = app.user_with_hats(&admin, "qip", &office, &["qip_officer"]);
    let unit = app.user_with_hats(&admin, "cimic", &unit_org, &["submitter"]);
    let other_unit = app.user_with_hats(&admin, "sapper", &other_org, &["submitter"]);
    let consultee = app.user_with_hats(&admin, "wash", &unicef_org, &["consultee"]);
    let auditor = app.user_with_hats(&admin, "oios", &office, &["auditor"]);
    // Judges flags: told when one is raised.
    app.user_with_hats(&admin, "hc.user", &office, &["hc"]);
    let res = app
        .client
        .post(app.url("/api/v1/areas/import"))
        .bearer_auth(&qip.access)
        .header("content-type", "text/csv")
        .body(GAZETTEER)
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "gazetteer");
    let res = app.post_json(
        "/api/v1/pools",
        Some(&qip.access),
        &json!({"code": "DFP", "name": "Darfur QIP pool", "currency": "USD", "funding_start": "2026-01-01", "funding_end": "2027-12-31"}),
    );
    assert_eq!(res.status().as_u16(), 201, "pool");
    let pool_id = res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
    let res = app.post_json(
        "/api/v1/consultation-rules",
        Some(&qip.access),
        &json!({"organization_id": unicef_org, "sector_code": "WSH"}),
    );
    assert_eq!(res.status().as_u16(), 201, "rule");
    World {
        m: Mission {
            app,
            _admin: admin,
            qip,
            unit,
            unit_org,
            other_unit,
            consultee,
            auditor,
            pool_id,
        },
        unicef_org,
        settings,
    }
}

impl World {
    /// A second connection pool on the same database: another instance's.
    fn pool(&self) -> DbPool {
        db::build_pool(&self.settings.database).unwrap()
    }

    fn worker(&self) -> Worker {
        Worker::new(&self.settings.notifications).unwrap()
    }

    /// Runs worker passes until nothing is due (at most `max` passes).
    fn drain(&self, worker: &Worker, pool: &DbPool, max: usize) {
        for _ in 0..max {
            if worker.run_once(pool) == 0 {
                return;
            }
        }
    }

    fn register_webhook(&self, who: &Session, url: &str) -> Value {
        let res = self.m.app.post_json(
            &format!("/api/v1/organizations/{}/webhooks", self.unicef_org),
            Some(&who.access),
            &json!({"url": url, "description": "UNICEF WASH tracker"}),
        );
        assert_eq!(res.status().as_u16(), 201, "{:?}", res.text());
        res.json().unwrap()
    }

    fn deliveries(&self, webhook_id: &str) -> Vec<Value> {
        self.m
            .app
            .get_as(
                &format!(
                    "/api/v1/organizations/{}/webhooks/{webhook_id}/deliveries",
                    self.unicef_org
                ),
                &self.m.consultee.access,
            )
            .json::<Value>()
            .unwrap()["items"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn email_of(&self, username: &str) -> String {
        format!("{username}@example.org")
    }
}

fn loopback_allowed(n: &mut NotificationSettings) {
    n.webhook_allow_cidrs = vec!["127.0.0.0/8".into()];
}

fn blocking_objection() -> Value {
    json!({"kind": "objection", "comment": "We drill there in March", "flags": [
        {"category": "protection_risk", "severity": "blocking", "description": FLAG_TEXT,
         "confidential_note": SECRET_NOTE}]})
}

// ---------------------------------------------------------------------------------------------------------

#[test]
fn the_consultee_is_emailed_over_smtp_and_nothing_confidential_leaves() {
    let sink = SmtpSink::start();
    let port = sink.port;
    let w = world(move |n| {
        n.smtp.host = "127.0.0.1".into();
        n.smtp.port = port;
        n.smtp.tls = "none".into();
        n.smtp.from = "QIP pool <no-reply@qip.example.org>".into();
    });
    let (id, reference, _) = w.m.submitted("Kalma borehole", "9000.00");
    let (worker, pool) = (w.worker(), w.pool());
    w.drain(&worker, &pool, 10);

    // The consultee of UNICEF, and only they, hear that they are consulted.
    let consulted: Vec<Mail> = sink
        .mails()
        .into_iter()
        .filter(|m| decoded_text(m).contains("is consulted on proposal"))
        .collect();
    assert_eq!(consulted.len(), 1, "{consulted:?}");
    assert_eq!(consulted[0].rcpt, [w.email_of("wash")]);
    let text = decoded_text(&consulted[0]);
    assert!(text.contains(&reference), "{text}");
    assert!(text.contains("multipart/alternative"));
    assert!(text.contains("text/plain") && text.contains("text/html"));
    assert!(text.contains("Why you received this: your organisation is consulted on this proposal"));
    assert!(text.contains(&format!("https://qip.example.org/api/v1/proposals/{id}")));

    // A blocking flag with a confidential note: the unit, the secretariat and the HC are told, neutrally.
    let res = w.m.app.post_json(
        &format!("/api/v1/proposals/{id}/consultation/responses"),
        Some(&w.m.consultee.access),
        &blocking_objection(),
    );
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text());
    w.drain(&worker, &pool, 10);
    let to_unit = sink.to(&w.email_of("cimic"));
    assert!(
        to_unit
            .iter()
            .any(|m| decoded_text(m).contains("A concern was raised")),
        "{to_unit:?}"
    );
    assert!(!sink.to(&w.email_of("qip")).is_empty(), "the secretariat is told");
    assert!(!sink.to(&w.email_of("hc.user")).is_empty(), "the HC is told");
    for mail in sink.mails() {
        let text = decoded_text(&mail);
        assert!(!text.contains(SECRET_NOTE), "confidential note leaked: {text}");
        assert!(!text.contains(FLAG_TEXT), "flag text in an email: {text}");
    }
    // Nobody is emailed about their own act.
    assert!(
        !sink
            .to(&w.email_of("wash"))
            .iter()
            .any(|m| decoded_text(m).contains("A concern was raised"))
    );
    // Every email delivery is marked delivered.
    let mut conn = w.m.app.conn();
    let pending: i64 = notification_deliveries::table
        .filter(notification_deliveries::status.ne("delivered"))
        .count()
        .get_result(&mut *conn)
        .unwrap();
    assert_eq!(pending, 0);
}

#[test]
fn without_smtp_messages_are_written_to_the_outbox_folder() {
    let w = world(|_| {});
    w.m.submitted("Kalma borehole", "9000.00");
    let (worker, pool) = (w.worker(), w.pool());
    w.drain(&worker, &pool, 10);
    let files: Vec<_> = std::fs::read_dir(&w.settings.notifications.outbox_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(files.len(), 1, "one email: the consultee's");
    let raw = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(raw.contains("wash@example.org"), "{raw}");
}

#[test]
fn webhooks_are_signed_per_standard_webhooks_and_secrets_rotate() {
    let receiver = Receiver::start(0);
    let w = world(loopback_allowed);
    // The organisation's focal point registers; the secret is shown this once.
    let hook = w.register_webhook(&w.m.consultee, &receiver.url());
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/organizations/{}/webhooks/{hook_id}", w.unicef_org);
    let shown: Value = w.m.app.get_as(&path, &w.m.consultee.access).json().unwrap();
    assert!(shown.get("secret").is_none(), "{shown}");
    // Another organisation's people do not manage it.
    let res = w.m.app.get_as(
        &format!("/api/v1/organizations/{}/webhooks", w.unicef_org),
        &w.m.unit.access,
    );
    assert_problem(res, 403, "forbidden");
    assert!(
        w.m.app
            .audit_rows()
            .iter()
            .any(|r| r.action == "webhook.manage" && r.outcome == "denied")
    );

    let (id, reference, _) = w.m.submitted("Kalma borehole", "9000.00");
    let (worker, pool) = (w.worker(), w.pool());
    w.drain(&worker, &pool, 10);
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(verifies(&secret, &got[0]), "signature must verify");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["type"], "consultation.requested");
    assert_eq!(body["data"]["proposal_id"], id);
    assert_eq!(body["data"]["proposal_reference"], reference);
    assert_eq!(body["data"]["event_id"], got[0].headers["webhook-id"]);
    let delivered = w.deliveries(&hook_id);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["status"], "delivered");
    assert_eq!(delivered[0]["last_status_code"], 204);

    // Rotation: a new secret, shown once; the next event is signed with it and not with the old one.
    let res = w.m.app.post_json(
        &format!("{path}/rotate-secret"),
        Some(&w.m.consultee.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 200);
    let new_secret = res.json::<Value>().unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, secret);
    w.m.submitted("Tawila school latrines", "5000.00");
    w.drain(&worker, &pool, 10);
    let got = receiver.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(verifies(&new_secret, &got[1]));
    assert!(!verifies(&secret, &got[1]));
    // The flag on the first proposal concerns the secretariat, the HC and the unit, not UNICEF's systems.
    let res = w.m.app.post_json(
        &format!("/api/v1/proposals/{id}/consultation/responses"),
        Some(&w.m.consultee.access),
        &blocking_objection(),
    );
    assert_eq!(res.status().as_u16(), 200);
    w.drain(&worker, &pool, 10);
    for r in receiver.received() {
        assert!(!r.body.contains(SECRET_NOTE) && !r.body.contains(FLAG_TEXT));
    }

    // The audit trail records the subscription and the rotation, never the secret.
    let rows = w.m.app.audit_rows();
    assert!(rows.iter().any(|r| r.action == "webhook.create"));
    assert!(rows.iter().any(|r| r.action == "webhook.rotate_secret"));
    for r in &rows {
        let after = r.after_state.clone().unwrap_or_default();
        assert!(!after.contains(&secret) && !after.contains(&new_secret));
    }
}

#[test]
fn a_receiver_failing_three_times_gets_the_event_once_then_dead_letters_can_be_redelivered() {
    let receiver = Receiver::start(3);
    let w = world(loopback_allowed);
    let hook = w.register_webhook(&w.m.consultee, &receiver.url());
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    w.m.submitted("Kalma borehole", "9000.00");
    let (worker, pool) = (w.worker(), w.pool());
    w.drain(&worker, &pool, 20);
    let got = receiver.received();
    assert_eq!(got.len(), 4, "three failures, then the success");
    let ids: Vec<&String> = got.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert!(ids.iter().all(|i| *i == ids[0]), "one event id on every attempt");
    assert!(got.iter().all(|r| r.body == got[0].body), "the same body");
    let deliveries = w.deliveries(&hook_id);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["status"], "delivered");
    assert_eq!(deliveries[0]["attempts"], 4);
    // Nothing more is sent.
    w.drain(&worker, &pool, 5);
    assert_eq!(receiver.received().len(), 4);
    // The metrics count the retries.
    let metrics = w.m.app.get("/metrics").text().unwrap();
    assert!(metrics.contains("qip_notifications_retried_total"), "{metrics}");
    assert!(metrics.contains("qip_notifications_oldest_undelivered_age_seconds"));

    // A worker whose retry window is over dead-letters at the first failure; redelivery sends it again.
    let failing = Receiver::start(usize::MAX);
    let res = w.m.with_if_match(
        reqwest::Method::PATCH,
        &format!("/api/v1/organizations/{}/webhooks/{hook_id}", w.unicef_org),
        &w.m.consultee,
        1,
        Some(&json!({"url": failing.url()})),
    );
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text());
    let mut impatient = w.settings.notifications.clone();
    impatient.retry_window_secs = 0;
    let impatient = Worker::new(&impatient).unwrap();
    w.m.submitted("Tawila school latrines", "5000.00");
    w.drain(&impatient, &pool, 5);
    let deliveries = w.deliveries(&hook_id);
    let dead = deliveries.iter().find(|d| d["status"] == "dead").unwrap();
    assert_eq!(dead["attempts"], 1);
    assert!(dead["last_error"].as_str().unwrap().contains("HTTP 500"));
    assert_eq!(failing.received().len(), 1);
    let res = w.m.with_if_match(
        reqwest::Method::PATCH,
        &format!("/api/v1/organizations/{}/webhooks/{hook_id}", w.unicef_org),
        &w.m.consultee,
        2,
        Some(&json!({"url": receiver.url()})),
    );
    assert_eq!(res.status().as_u16(), 200);
    let res = w.m.app.post_json(
        &format!(
            "/api/v1/organizations/{}/webhooks/{hook_id}/deliveries/{}/redeliver",
            w.unicef_org,
            dead["id"].as_str().unwrap()
        ),
        Some(&w.m.consultee.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text());
    w.drain(&worker, &pool, 5);
    let last = receiver.received().pop().unwrap();
    assert_eq!(last.headers["webhook-id"], dead["event_id"].as_str().unwrap());
    assert!(w.deliveries(&hook_id).iter().all(|d| d["status"] == "delivered"));
}

#[test]
fn two_workers_deliver_each_event_once() {
    let receiver = Receiver::start(0);
    let sink = SmtpSink::start();
    let port = sink.port;
    let w = world(move |n| {
        loopback_allowed(n);
        n.smtp.host = "127.0.0.1".into();
        n.smtp.port = port;
        n.smtp.tls = "none".into();
        n.batch_size = 2;
    });
    w.register_webhook(&w.m.consultee, &receiver.url());
    let mut proposals = Vec::new();
    for i in 0..4 {
        proposals.push(w.m.submitted(&format!("Borehole {i}"), "9000.00").0);
    }
    let expected_emails: i64 = notification_deliveries::table
        .filter(notification_deliveries::channel.eq("email"))
        .count()
        .get_result(&mut *w.m.app.conn())
        .unwrap();
    assert!(expected_emails >= 4);
    let settings = Arc::new(w.settings.clone());
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let settings = settings.clone();
            std::thread::spawn(move || {
                let pool = db::build_pool(&settings.database).unwrap();
                let worker = Worker::new(&settings.notifications).unwrap();
                let deadline = Instant::now() + Duration::from_secs(20);
                let mut idle = 0;
                while idle < 3 && Instant::now() < deadline {
                    if worker.run_once(&pool) == 0 {
                        idle += 1;
                        std::thread::sleep(Duration::from_millis(50));
                    } else {
                        idle = 0;
                    }
                }
            })
        })
        .collect();
    for t in workers {
        t.join().unwrap();
    }
    let got = receiver.received();
    let mut ids: Vec<&String> = got.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert_eq!(ids.len(), 4, "one webhook call per event");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "no event twice");
    assert_eq!(sink.mails().len() as i64, expected_emails, "each email once");
    let undelivered: i64 = notification_deliveries::table
        .filter(notification_deliveries::status.ne("delivered"))
        .count()
        .get_result(&mut *w.m.app.conn())
        .unwrap();
    assert_eq!(undelivered, 0);
}

#[test]
fn webhook_urls_reaching_internal_addresses_are_refused() {
    let w = world(|_| {});
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://localhost:9/hook",
    ] {
        let res = w.m.app.post_json(
            &format!("/api/v1/organizations/{}/webhooks", w.unicef_org),
            Some(&w.m.consultee.access),
            &json!({"url": url}),
        );
        let body = assert_problem(res, 422, "validation");
        assert!(body.to_string().contains("url"), "{body}");
    }
    let res = w.m.app.post_json(
        &format!("/api/v1/organizations/{}/webhooks", w.unicef_org),
        Some(&w.m.consultee.access),
        &json!({"url": "file:///etc/passwd"}),
    );
    assert_problem(res, 422, "validation");

    // At delivery time too: an endpoint admitted under an allowlist the worker no longer has is refused,
    // and no request leaves.
    let receiver = Receiver::start(0);
    let lenient = world(loopback_allowed);
    let hook = lenient.register_webhook(&lenient.m.consultee, &receiver.url());
    lenient.m.submitted("Kalma borehole", "9000.00");
    let mut strict = lenient.settings.notifications.clone();
    strict.webhook_allow_cidrs = Vec::new();
    let strict = Worker::new(&strict).unwrap();
    lenient.drain(&strict, &lenient.pool(), 5);
    assert!(receiver.received().is_empty());
    let deliveries = lenient.deliveries(hook["id"].as_str().unwrap());
    assert_eq!(deliveries[0]["status"], "dead");
    assert!(
        deliveries[0]["last_error"].as_str().unwrap().contains("refused"),
        "{deliveries:?}"
    );
}

#[test]
fn the_feed_pages_counts_unread_and_marks_read() {
    let w = world(|_| {});
    for i in 0..3 {
        w.m.submitted(&format!("Borehole {i}"), "9000.00");
    }
    let wash = &w.m.consultee;
    let page: Value =
        w.m.app
            .get_as("/api/v1/me/notifications?limit=2", &wash.access)
            .json()
            .unwrap();
    assert_eq!(page["unread_count"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let first = &page["items"][0];
    assert_eq!(first["kind"], "consultation.requested");
    assert_eq!(first["read"], false);
    assert!(first["link"].as_str().unwrap().starts_with("/api/v1/proposals/"));
    assert!(
        first["reason"]
            .as_str()
            .unwrap()
            .contains("your organisation is consulted")
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value =
        w.m.app
            .get_as(
                &format!("/api/v1/me/notifications?limit=2&cursor={cursor}"),
                &wash.access,
            )
            .json()
            .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert!(rest["next_cursor"].is_null());
    assert_ne!(rest["items"][0]["id"], first["id"]);

    // Someone else cannot mark my notification; I can.
    let id = first["id"].as_str().unwrap();
    let res = w.m.app.post_json(
        &format!("/api/v1/me/notifications/{id}/read"),
        Some(&w.m.unit.access),
        &json!({}),
    );
    assert_problem(res, 404, "not-found");
    let res = w.m.app.post_json(
        &format!("/api/v1/me/notifications/{id}/read"),
        Some(&wash.access),
        &json!({}),
    );
    assert_eq!(res.json::<Value>().unwrap()["unread_count"], 2);
    let res = w.m.app.post_json(
        "/api/v1/me/notifications/read-all",
        Some(&wash.access),
        &json!({}),
    );
    let body: Value = res.json().unwrap();
    assert_eq!(body["marked"], 2);
    assert_eq!(body["unread_count"], 0);
    // The unit's feed knows nothing of the consultation requests.
    let unit: Value =
        w.m.app
            .get_as("/api/v1/me/notifications", &w.m.unit.access)
            .json()
            .unwrap();
    assert!(
        unit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["kind"] != "consultation.requested")
    );
}

#[test]
fn email_preferences_choose_immediate_digest_or_none() {
    let w = world(|_| {});
    let wash = &w.m.consultee;
    let prefs: Value =
        w.m.app
            .get_as("/api/v1/me/notification-preferences", &wash.access)
            .json()
            .unwrap();
    assert_eq!(prefs["email"], "immediate");
    let res =
        w.m.app
            .client
            .put(w.m.app.url("/api/v1/me/notification-preferences"))
            .bearer_auth(&wash.access)
            .json(&json!({"email": "daily_digest"}))
            .send()
            .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res =
        w.m.app
            .client
            .put(w.m.app.url("/api/v1/me/notification-preferences"))
            .bearer_auth(&wash.access)
            .json(&json!({"email": "hourly"}))
            .send()
            .unwrap();
    assert!(res.status().as_u16() >= 400 && res.status().as_u16() < 500);
    w.m.submitted("Kalma borehole", "9000.00");
    let digest: Vec<bool> = notification_deliveries::table
        .filter(notification_deliveries::channel.eq("email"))
        .select(notification_deliveries::digest)
        .load(&mut *w.m.app.conn())
        .unwrap();
    assert_eq!(digest, [true], "held for the digest");
}

/// `kill -9` of the server between the commit of an event and its delivery: nothing is lost, the restarted
/// server delivers it. Runs the real binary on the test database.
#[test]
fn an_event_committed_before_a_kill_9_is_delivered_after_restart() {
    let receiver = Receiver::start(0);
    let w = world(loopback_allowed);
    w.register_webhook(&w.m.consultee, &receiver.url());
    let serve = |worker: bool| {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_qip-pool"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("QIP__DATABASE__URL", w.m.app.db.url())
            .env("QIP__AUTH__JWT_SECRET", TEST_JWT_SECRET)
            .env("QIP__NOTIFICATIONS__WEBHOOK_ALLOW_CIDRS", "127.0.0.0/8")
            .env("QIP__NOTIFICATIONS__WORKER_ENABLED", worker.to_string())
            .env("QIP__NOTIFICATIONS__WORKER_INTERVAL_MS", "100")
            .env(
                "QIP__NOTIFICATIONS__OUTBOX_DIR",
                &w.settings.notifications.outbox_dir,
            )
            .env("QIP__LOG__FILTER", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(format!("{base}/readyz")).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        (child, base)
    };
    // A server that commits the event but has not delivered it when it is killed (its worker is off, so the
    // kill lands between commit and delivery every time).
    let (mut first, base) = serve(false);
    let (id, version) = w.m.draft("Kalma borehole", "9000.00");
    let res =
        w.m.app
            .client
            .post(format!("{base}/api/v1/proposals/{id}/submit"))
            .bearer_auth(&w.m.unit.access)
            .header("If-Match", format!("\"{version}\""))
            .send()
            .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text());
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    assert!(receiver.received().is_empty(), "not delivered before the kill");
    let pending: i64 = notification_deliveries::table
        .filter(notification_deliveries::channel.eq("webhook"))
        .filter(notification_deliveries::status.eq("pending"))
        .count()
        .get_result(&mut *w.m.app.conn())
        .unwrap();
    assert_eq!(pending, 1, "the committed event waits in the outbox");

    let (mut second, _) = serve(true);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.received().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    second.kill().unwrap();
    second.wait().unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 1, "delivered once after the restart");
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["data"]["proposal_id"], id);
}

fn feed_kinds(app: &TestApp, who: &Session) -> Vec<(String, String)> {
    let page: Value = app
        .get_as("/api/v1/me/notifications?limit=200", &who.access)
        .json()
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["kind"].as_str().unwrap().to_owned(),
                n["link"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn deciders_finance_and_the_unit_hear_of_what_waits_for_them() {
    let d = crate::approval::desk("100000.00");
    let (id, _) = d.in_review("Fence", "3000.00");
    let link = format!("/api/v1/proposals/{id}");
    let awaiting = |who: &Session| {
        feed_kinds(&d.m.app, who)
            .iter()
            .filter(|(k, l)| k == "approval.step_awaiting_decision" && *l == link)
            .count()
    };
    let first_hat = d.approval(&id)["steps"][0]["hat"].as_str().unwrap().to_owned();
    let decider = if first_hat == "head_of_office" {
        &d.hoo
    } else {
        &d.dsrsg
    };
    assert_eq!(awaiting(decider), 1, "the holder of the first step's hat");
    assert_eq!(awaiting(&d.hoo_south), 0, "a head of office of another area");
    assert_eq!(awaiting(&d.m.unit), 0, "the submitting unit decides nothing");
    d.approve_all(&id);
    let unit = feed_kinds(&d.m.app, &d.m.unit);
    assert!(
        unit.contains(&("proposal.approved".to_owned(), link.clone())),
        "{unit:?}"
    );
    let finance = feed_kinds(&d.m.app, &d.finance);
    assert!(
        finance.contains(&("tranche.payable".to_owned(), link.clone())),
        "{finance:?}"
    );
    // Consultation requests went to OCHA's consultee only.
    assert!(
        feed_kinds(&d.m.app, &d.ocha)
            .iter()
            .any(|(k, l)| k == "consultation.requested" && *l == link)
    );
    assert!(!unit.iter().any(|(k, _)| k == "consultation.requested"));
}

#[test]
fn a_deadline_within_24_hours_is_reminded_once_whatever_the_instances() {
    let w = world(|_| {});
    let (id, _, _) = w.m.submitted("Kalma borehole", "9000.00");
    let soon = chrono::Utc::now().naive_utc() + chrono::Duration::hours(2);
    diesel::update(
        qip_pool::db::schema::consultation_rounds::table
            .filter(qip_pool::db::schema::consultation_rounds::proposal_id.eq(&id)),
    )
    .set(qip_pool::db::schema::consultation_rounds::deadline.eq(soon))
    .execute(&mut *w.m.app.conn())
    .unwrap();
    let pool = w.pool();
    let (a, b) = (w.worker(), w.worker());
    for _ in 0..2 {
        a.run_once(&pool);
        b.run_once(&pool);
    }
    let reminders = feed_kinds(&w.m.app, &w.m.consultee)
        .into_iter()
        .filter(|(k, _)| k == "consultation.deadline_soon")
        .count();
    assert_eq!(reminders, 1);
    assert!(
        !feed_kinds(&w.m.app, &w.m.unit)
            .iter()
            .any(|(k, _)| k == "consultation.deadline_soon")
    );
}

#[test]
fn a_daily_digest_sends_one_message_with_everything_since_the_last() {
    let sink = SmtpSink::start();
    let port = sink.port;
    let w = world(move |n| {
        n.smtp.host = "127.0.0.1".into();
        n.smtp.port = port;
        n.smtp.tls = "none".into();
        n.digest_hour_utc = 0;
    });
    let res =
        w.m.app
            .client
            .put(w.m.app.url("/api/v1/me/notification-preferences"))
            .bearer_auth(&w.m.consultee.access)
            .json(&json!({"email": "daily_digest"}))
            .send()
            .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (_, first, _) = w.m.submitted("Kalma borehole", "9000.00");
    let (_, second, _) = w.m.submitted("Tawila latrines", "5000.00");
    let (worker, pool) = (w.worker(), w.pool());
    w.drain(&worker, &pool, 5);
    assert!(sink.to(&w.email_of("wash")).is_empty(), "held until the digest");
    // Yesterday's notifications: today's digest (hour 0) sends them, in one message.
    let yesterday = chrono::Utc::now().naive_utc() - chrono::Duration::days(1);
    diesel::update(notification_deliveries::table.filter(notification_deliveries::digest.eq(true)))
        .set(notification_deliveries::created_at.eq(yesterday))
        .execute(&mut *w.m.app.conn())
        .unwrap();
    w.drain(&worker, &pool, 5);
    let mails = sink.to(&w.email_of("wash"));
    assert_eq!(mails.len(), 1, "{mails:?}");
    let text = decoded_text(&mails[0]);
    assert!(text.contains(&first) && text.contains(&second), "{text}");
    assert!(text.contains("daily digest"));
}

#[test]
fn a_pending_privileged_grant_is_announced_to_the_other_administrators() {
    let w = world(|_| {});
    let admin = &w.m._admin;
    let office = w.m.app.create_org(admin, "DSS", "mission_office");
    let second = w.m.app.user_with_hats(admin, "admin2", &office, &["admin"]);
    let (grantee, token) = w.m.app.create_user(admin, "future.hc", &office);
    assert_eq!(
        w.m.app
            .setup_password(&token, crate::support::USER_PASSWORD)
            .status()
            .as_u16(),
        204
    );
    let res = w.m.app.post_json(
        &format!("/api/v1/users/{grantee}/hats"),
        Some(&admin.access),
        &json!({"hat": "hc"}),
    );
    assert_eq!(res.status().as_u16(), 202, "pending");
    let told = feed_kinds(&w.m.app, &second);
    assert!(
        told.iter()
            .any(|(k, l)| k == "hat_grant.pending" && l == "/api/v1/hat-grant-requests"),
        "{told:?}"
    );
    assert!(
        !feed_kinds(&w.m.app, admin)
            .iter()
            .any(|(k, _)| k == "hat_grant.pending"),
        "not the administrator who asked"
    );
}

/// A desk with one approved proposal whose first tranche was paid in full over HTTP, and the proposal's id.
fn approved_and_paid_first_tranche() -> (crate::approval::Desk, String) {
    let d = crate::approval::desk("100000.00");
    let (id, _) = d.in_review("Roof", "3000.00");
    d.approve_all(&id);
    let tranches: Vec<Value> =
        d.m.app
            .get_as(&format!("/api/v1/proposals/{id}/tranches"), &d.finance.access)
            .json()
            .unwrap();
    let amount = tranches[0]["amount"].as_str().unwrap().to_owned();
    let res = d
        .m
        .app
        .client
        .post(d.m.app.url(&format!("/api/v1/proposals/{id}/tranches/1/disbursements")))
        .bearer_auth(&d.finance.access)
        .header("Idempotency-Key", "first-tranche-1")
        .json(&json!({"amount": amount, "paid_on": chrono::Utc::now().date_naive(), "payment_reference": "PAY-1"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().unwrap());
    (d, id)
}

#[test]
fn a_completion_report_is_reminded_as_due_then_as_overdue_once_each() {
    let (d, id) = approved_and_paid_first_tranche();

    let due = {
        let mut conn = d.m.app.conn();
        qip_pool::features::implementation::service::implementation_due_dates(&mut conn)
            .unwrap()
            .into_iter()
            .find(|(p, _)| p.id == id)
            .expect("the paid implementation has a due date")
            .1
    };
    let at = |date: chrono::NaiveDate| date.and_hms_opt(12, 0, 0).unwrap();
    let link = format!("/api/v1/proposals/{id}");
    let count = |kind: &str| {
        feed_kinds(&d.m.app, &d.m.unit)
            .iter()
            .filter(|(k, l)| k == kind && *l == link)
            .count()
    };
    // Eight days before: nothing yet.
    let run = |now| {
        let mut conn = d.m.app.conn();
        qip_pool::features::notifications::reminders::run(&mut conn, now).unwrap();
    };
    run(at(due - chrono::Duration::days(8)));
    assert_eq!((count("report.due"), count("report.overdue")), (0, 0));
    // Within the week before the due date: "due", once however often the job runs.
    run(at(due - chrono::Duration::days(3)));
    run(at(due - chrono::Duration::days(2)));
    assert_eq!((count("report.due"), count("report.overdue")), (1, 0));
    // Past it: "overdue", once.
    run(at(due + chrono::Duration::days(1)));
    run(at(due + chrono::Duration::days(2)));
    assert_eq!((count("report.due"), count("report.overdue")), (1, 1));
}

/// The rows one notification event wrote: its feed items (user, kind, reason) and deliveries (channel, user,
/// webhook, reason, digest), sorted.
type Written = (Vec<(String, String, String)>, Vec<DeliveryFacts>);

/// A delivery's channel, user, webhook, reason and digest flag.
type DeliveryFacts = (String, Option<String>, Option<String>, String, bool);

fn written_for(conn: &mut db::DbConn, audit_event_id: &str) -> QueryResult<Written> {
    use qip_pool::db::schema::{notification_events, notifications};
    let event_id: String = notification_events::table
        .filter(notification_events::audit_event_id.eq(audit_event_id))
        .select(notification_events::id)
        .first(conn)?;
    let mut feed: Vec<(String, String, String)> = notifications::table
        .filter(notifications::event_id.eq(&event_id))
        .select((notifications::user_id, notifications::kind, notifications::reason))
        .load(conn)?;
    feed.sort();
    let mut deliveries: Vec<DeliveryFacts> = notification_deliveries::table
        .filter(notification_deliveries::event_id.eq(&event_id))
        .select((
            notification_deliveries::channel,
            notification_deliveries::user_id,
            notification_deliveries::webhook_id,
            notification_deliveries::reason,
            notification_deliveries::digest,
        ))
        .load(conn)?;
    deliveries.sort();
    Ok((feed, deliveries))
}

/// A workflow event's notifications cost a fixed handful of statements, not a few per recipient: a tranche
/// payment's are worked out and written again, on a counting connection, in six statements (the hats, the
/// event, the e-mail preferences, the webhooks, the feed items, the deliveries), and they are the rows the
/// payment itself wrote over HTTP.
#[test]
fn a_payments_notifications_take_six_statements_and_match_what_the_payment_wrote() {
    use diesel::connection::{Connection, InstrumentationEvent};
    use qip_pool::db::schema::{notification_events, notifications};

    let (d, id) = approved_and_paid_first_tranche();
    let event =
        d.m.app
            .audit_rows()
            .into_iter()
            .find(|e| e.action == "implementation.disburse" && e.entity_id.as_deref() == Some(id.as_str()))
            .expect("the payment's workflow event");

    let mut conn = d.m.app.conn();
    let by_payment = written_for(&mut conn, &event.id).unwrap();
    assert!(
        by_payment.0.len() >= 2 && by_payment.1.len() >= 2,
        "the payment tells the secretariat and the unit: {by_payment:?}"
    );
    let proposal = qip_pool::features::proposals::repo::find_proposal(&mut conn, &id)
        .unwrap()
        .unwrap();
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&statements);
    conn.set_instrumentation(move |e: InstrumentationEvent<'_>| {
        if matches!(e, InstrumentationEvent::StartQuery { .. }) {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let mut outcome = None;
    let rolled_back = conn.transaction::<(), diesel::result::Error, _>(|tx| {
        // The payment's notification rows go, so that capturing its event again writes them anew.
        let old: String = notification_events::table
            .filter(notification_events::audit_event_id.eq(&event.id))
            .select(notification_events::id)
            .first(tx)?;
        diesel::delete(notification_deliveries::table.filter(notification_deliveries::event_id.eq(&old)))
            .execute(tx)?;
        diesel::delete(notifications::table.filter(notifications::event_id.eq(&old))).execute(tx)?;
        diesel::delete(notification_events::table.filter(notification_events::id.eq(&old))).execute(tx)?;
        let before = statements.load(Ordering::SeqCst);
        qip_pool::features::notifications::outbox::capture(tx, &event, Some(&proposal))?;
        let issued = statements.load(Ordering::SeqCst) - before;
        outcome = Some((issued, written_for(tx, &event.id)?));
        Err(diesel::result::Error::RollbackTransaction)
    });
    conn.set_instrumentation(|_: InstrumentationEvent<'_>| {});
    assert!(matches!(
        rolled_back,
        Err(diesel::result::Error::RollbackTransaction)
    ));
    let (issued, again) = outcome.expect("captured");
    assert_eq!(issued, 6, "statements to notify {} people", by_payment.0.len());
    assert_eq!(again, by_payment, "the same recipients, reasons and channels");
}

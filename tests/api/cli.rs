//! The binary itself: `audit verify` output and exit codes, `migrate`, and one-line startup failures.

use std::process::{Command, Output};

use diesel::connection::SimpleConnection;
use qip_pool::db;
use qip_pool::features::audit::{self, AuditAction, AuditContext};
use serde_json::Value;

use crate::support::TestDb;

pub(crate) fn qip_pool(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qip-pool"));
    cmd.args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("QIP__")) {
        cmd.env_remove(key);
    }
    cmd.env("RUST_LOG", "error");
    for (k, v) in env {
        cmd.env(k, v);
    }
    crate::support::run_child(&mut cmd)
}

#[track_caller]
fn one_error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr: {stderr}");
    assert!(lines[0].starts_with("qip-pool: error: "), "{stderr}");
    stderr
}

#[test]
fn migrate_then_audit_verify_reports_intact_then_broken() {
    let test_db = TestDb::create();
    let url = test_db.url();
    let env = [("QIP__DATABASE__URL", url.as_str())];
    let out = qip_pool(&["migrate"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let mut conn = test_db.connect();
    for n in 0..3 {
        db::write_tx(&mut conn, |c| {
            audit::append(
                c,
                AuditContext::system(None).event(AuditAction::AuditCheckpoint, "probe", Some(&n.to_string())),
            )
            .map(|_| ())
        })
        .unwrap();
    }
    // Not sealed yet (no sealer runs here): intact, nothing checked, the tail reported.
    let out = qip_pool(&["audit", "verify"], &env);
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["intact"], true);
    assert_eq!(report["events_checked"], 0);
    assert_eq!(report["unsealed_events"], 3);
    assert!(report["oldest_unsealed_age_ms"].as_i64().unwrap() >= 0);
    let out = qip_pool(&["audit", "verify", "--seal"], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["intact"], true);
    assert_eq!(report["unsealed_events"], 0);
    assert_eq!(report["events_checked"], 3);
    assert_eq!(report["head_seq"], 3);
    assert_eq!(report["first_broken_seq"], Value::Null);

    let tamper = if test_db.is_postgres() {
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only; \
         UPDATE audit_events SET actor_username = 'someone else' WHERE seq = 2;"
    } else {
        "DROP TRIGGER audit_events_no_update; UPDATE audit_events SET actor_username = 'someone else' WHERE seq = 2;"
    };
    conn.batch_execute(tamper).unwrap();
    drop(conn);
    let out = qip_pool(&["audit", "verify"], &env);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{:?}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["intact"], false);
    assert_eq!(report["first_broken_seq"], 2);
}

#[test]
fn unreachable_postgres_is_one_line_with_the_real_error() {
    let out = qip_pool(
        &["migrate"],
        &[("QIP__DATABASE__URL", "postgres://nobody@127.0.0.1:1/none")],
    );
    let line = one_error_line(&out);
    assert!(line.contains("cannot connect to postgresql database"), "{line}");
    assert!(line.contains("127.0.0.1"), "{line}");
}

#[test]
fn unknown_config_key_is_one_line() {
    let out = qip_pool(&["migrate"], &[("QIP__SERVER__BINDD", "0.0.0.0:1")]);
    let line = one_error_line(&out);
    assert!(line.contains("bindd"), "{line}");
}

#[test]
fn production_with_a_weak_secret_refuses_to_serve() {
    let out = qip_pool(
        &["serve", "--bind", "127.0.0.1:0"],
        &[
            ("QIP__MODE", "production"),
            ("QIP__AUTH__JWT_SECRET", "too-short"),
        ],
    );
    let line = one_error_line(&out);
    assert!(line.contains("jwt_secret"), "{line}");
}

#[test]
fn missing_config_file_is_one_line() {
    let out = qip_pool(&["--config", "/nonexistent/qip.toml", "migrate"], &[]);
    let line = one_error_line(&out);
    assert!(line.contains("/nonexistent/qip.toml"), "{line}");
}

fn bootstrap(url: &str, password: &str) -> Output {
    use std::io::Write;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qip-pool"));
    cmd.args(["admin", "bootstrap", "--username", "chief", "--password-stdin"])
        .env("QIP__DATABASE__URL", url)
        .env("QIP__AUTH__ARGON2_MEMORY_KIB", "1024")
        .env("QIP__AUTH__ARGON2_ITERATIONS", "1")
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn admin_bootstrap_creates_one_admin_then_refuses() {
    let test_db = TestDb::create();
    let url = test_db.url();
    let weak = bootstrap(&url, "short");
    assert!(one_error_line(&weak).contains("at least 12 characters"));

    let out = bootstrap(&url, "a-strong-bootstrap-passphrase");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("created administrator chief"));

    let again = bootstrap(&url, "a-strong-bootstrap-passphrase");
    assert!(one_error_line(&again).contains("an administrator exists already"));

    let mut conn = test_db.connect();
    assert_eq!(audit::verify_chain(&mut conn).unwrap().unsealed_events, 3);
    audit::seal_pending(&mut conn, audit::WhenBusy::Wait).unwrap();
    let report = audit::verify_chain(&mut conn).unwrap();
    assert!(report.intact);
    assert_eq!(report.head_seq, 3, "organisation, user and hat, each audited");
}

#[test]
fn read_only_commands_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo").join("qip-pool.sqlite3");
    let url = format!("sqlite://{}", path.display());
    for args in [&["ledger", "check"][..], &["audit", "verify"][..]] {
        let out = qip_pool(args, &[("QIP__DATABASE__URL", url.as_str())]);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = one_error_line(&out);
        assert!(stderr.contains("no database at"), "{stderr}");
    }
    assert!(
        !path.exists() && !path.parent().unwrap().exists(),
        "nothing was created"
    );
}

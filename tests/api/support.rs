//! Test harness: `TestApp` runs the real server (same `build_server` as `qip-pool serve`) on 127.0.0.1:0 in
//! its own actix system thread, over a database made for the test and removed afterwards.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use actix_web::dev::ServerHandle;
use actix_web::web;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qip_pool::app::{AppState, build_server_with};
use qip_pool::config::{Secret, Settings};
use qip_pool::db::{self, DbPool, PooledDbConn};
use serde_json::Value;

pub const PG_ENV: &str = "QIP_TEST_DATABASE_URL";

/// A database that exists for one test.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl TestDb {
    pub fn create() -> Self {
        match std::env::var(PG_ENV).ok().filter(|u| !u.is_empty()) {
            Some(admin_url) => {
                let name = format!("qip_test_{}", uuid::Uuid::now_v7().simple());
                let mut admin =
                    PgConnection::establish(&admin_url).expect("connect to QIP_TEST_DATABASE_URL");
                admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
                let url = replace_db_name(&admin_url, &name);
                TestDb::Postgres { admin_url, name, url }
            }
            None => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("qip-test.sqlite3");
                TestDb::Sqlite { _dir: dir, path }
            }
        }
    }

    pub fn url(&self) -> String {
        match self {
            TestDb::Sqlite { path, .. } => format!("sqlite://{}", path.display()),
            TestDb::Postgres { url, .. } => url.clone(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, TestDb::Postgres { .. })
    }

    /// Opens a connection of the test's own, outside the app's pool.
    pub fn connect(&self) -> db::DbConn {
        db::DbConnManager::new(&self.url(), 5_000).open().unwrap()
    }

    /// A connection to the server's maintenance database (PostgreSQL only).
    pub fn admin(&self) -> PgConnection {
        match self {
            TestDb::Postgres { admin_url, .. } => PgConnection::establish(admin_url).unwrap(),
            TestDb::Sqlite { .. } => panic!("admin connection exists only on PostgreSQL"),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, name, .. } = self {
            if let Ok(mut admin) = PgConnection::establish(admin_url) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Settings for tests: the compiled defaults, a small pool, the given database.
pub fn test_settings(db_url: &str) -> Settings {
    let mut settings = Settings::load_from(None, Vec::<(String, String)>::new()).unwrap();
    settings.database.url = Secret::new(db_url);
    settings.database.pool_size = 8;
    settings.server.workers = 2;
    settings.server.shutdown_timeout_secs = 1;
    settings
}

/// The running service under test.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::blocking::Client,
    pool: Option<DbPool>,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
    // Dropped last: the database outlives the server and pool that use it.
    pub db: TestDb,
}

impl TestApp {
    pub fn spawn() -> Self {
        Self::spawn_with(|_| {}, |_| {})
    }

    /// Starts the app with adjusted settings and extra routes (test-only probes of the shared plumbing).
    pub fn spawn_with(
        customize: impl FnOnce(&mut Settings),
        extra_routes: fn(&mut web::ServiceConfig),
    ) -> Self {
        let db = TestDb::create();
        let mut settings = test_settings(&db.url());
        customize(&mut settings);
        let pool = db::build_pool(&settings.database).unwrap();
        db::run_migrations(&mut pool.get().unwrap()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = web::Data::new(AppState::new(settings, pool.clone()).unwrap());
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = build_server_with(state, listener, extra_routes).unwrap();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            });
        });
        let handle = rx.recv().unwrap();
        TestApp {
            base_url: format!("http://127.0.0.1:{port}"),
            client: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            pool: Some(pool),
            handle: Some(handle),
            thread: Some(thread),
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client.get(self.url(path)).send().unwrap()
    }

    /// A connection from the app's own pool, for inspecting and arranging database state.
    pub fn conn(&self) -> PooledDbConn {
        self.pool.as_ref().unwrap().get().unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.pool.take();
    }
}

/// Reads a response as a problem document and checks the parts every problem must have.
#[track_caller]
pub fn assert_problem(res: reqwest::blocking::Response, status: u16, type_slug: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let content_type = res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json", "content type");
    let request_id = res
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = res.json().unwrap();
    assert_eq!(body["type"], format!("/problems/{type_slug}"), "type in {body}");
    assert_eq!(body["status"], status, "status member in {body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "title in {body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|t| !t.is_empty()),
        "detail in {body}"
    );
    assert_eq!(body["request_id"], request_id, "request id in {body}");
    body
}

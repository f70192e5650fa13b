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
use reqwest::Method;

use crate::contract_check::ContractChecker;
use reqwest::blocking::Response;
use serde_json::{Value, json};

pub const PG_ENV: &str = "QIP_TEST_DATABASE_URL";
pub const TEST_JWT_SECRET: &str = "test-secret-0123456789abcdef-0123456789abcdef";
pub const ADMIN_PASSWORD: &str = "keeper-of-the-Quick-Impact-pool";
pub const USER_PASSWORD: &str = "field-pass-Quick-Impact-2026";

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
    settings.auth.jwt_secret = Secret::new(TEST_JWT_SECRET);
    // Cheap hashing keeps a suite that signs in hundreds of times fast; one test checks production cost.
    settings.auth.argon2_memory_kib = 1024;
    settings.auth.argon2_iterations = 1;
    settings.auth.auth_rate_limit_per_minute = 100_000;
    settings.auth.sign_in_budget_per_second = 100_000;
    settings.auth.sign_in_budget_burst = 100_000;
    // Refusals answered at once; `sec_signin_budget` checks the hold itself.
    settings.auth.refusal_hold_ms = 0;
    // Hashing threads in the normal class: the parallel suite saturates the cores, where an idle-class hash can
    // wait past `hash_wait_ms`; `sec_signin_budget` checks the idle class itself.
    settings.auth.hash_threads_low_priority = false;
    settings
}

/// The running service under test.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::blocking::Client,
    pool: Option<DbPool>,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
    /// Every response is checked against the served OpenAPI document; a test that received one breaking
    /// it fails when its app is dropped.
    pub contract: std::sync::Arc<ContractChecker>,
    // Dropped last: the database outlives the server and pool that use it.
    pub db: TestDb,
}

impl TestApp {
    pub fn spawn() -> Self {
        Self::spawn_with(|_| {}, |_| {})
    }

    /// Starts the app with the first administrator created the way `qip-pool admin bootstrap` does.
    pub fn with_admin() -> (Self, Session) {
        let app = Self::spawn();
        let admin = app.bootstrap_admin();
        (app, admin)
    }

    pub fn bootstrap_admin(&self) -> Session {
        let auth =
            qip_pool::features::identity::AuthRuntime::new(&test_settings(&self.db.url()).auth).unwrap();
        let id = qip_pool::features::identity::service::bootstrap_admin(
            &mut self.conn(),
            &auth,
            "admin",
            ADMIN_PASSWORD,
        )
        .unwrap();
        let mut session = self.login("admin", ADMIN_PASSWORD);
        session.user_id = id;
        session
    }

    /// Signs in over HTTP; panics unless it succeeds.
    pub fn login(&self, username: &str, password: &str) -> Session {
        let res = self.post_json(
            "/api/v1/auth/login",
            None,
            &json!({"username": username, "password": password}),
        );
        assert_eq!(res.status().as_u16(), 200, "login {username}");
        let body: Value = res.json().unwrap();
        let access = body["access_token"].as_str().unwrap().to_owned();
        let me: Value = self
            .send(Method::GET, "/api/v1/me", Some(&access), None)
            .json()
            .unwrap();
        Session {
            user_id: me["user"]["id"].as_str().unwrap_or_default().to_owned(),
            organization_id: me["user"]["organization_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            access,
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Any request, with an optional bearer token and JSON body.
    pub fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().unwrap()
    }

    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.send(Method::POST, path, token, Some(body))
    }

    pub fn get_as(&self, path: &str, token: &str) -> Response {
        self.send(Method::GET, path, Some(token), None)
    }

    /// Creates an organisation as `admin` and returns its id.
    pub fn create_org(&self, admin: &Session, code: &str, kind: &str) -> String {
        let res = self.post_json(
            "/api/v1/organizations",
            Some(&admin.access),
            &json!({"code": code, "name": format!("{code} organisation"), "kind": kind}),
        );
        assert_eq!(res.status().as_u16(), 201, "create org {code}");
        res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
    }

    /// Creates a user as `admin` and returns (user id, setup token). The account cannot sign in yet.
    pub fn create_user(&self, admin: &Session, username: &str, org_id: &str) -> (String, String) {
        let res = self.post_json(
            "/api/v1/users",
            Some(&admin.access),
            &json!({"username": username, "display_name": username, "email": format!("{username}@example.org"),
                    "organization_id": org_id}),
        );
        assert_eq!(
            res.status().as_u16(),
            201,
            "create user {username}: {}",
            res.text().unwrap_or_default()
        );
        let body = res.json::<Value>().unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["setup_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Sets a password with a setup token, as the user does (public endpoint).
    pub fn setup_password(&self, token: &str, password: &str) -> Response {
        self.post_json(
            "/api/v1/auth/setup-password",
            None,
            &json!({"token": token, "password": password}),
        )
    }

    /// Creates a user in `org_id` holding `hats` (unscoped, open-ended; privileged ones confirmed from the
    /// console), lets them set `USER_PASSWORD` with their setup token, and signs them in.
    pub fn user_with_hats(&self, admin: &Session, username: &str, org_id: &str, hats: &[&str]) -> Session {
        let (id, token) = self.create_user(admin, username, org_id);
        let res = self.setup_password(&token, USER_PASSWORD);
        assert_eq!(res.status().as_u16(), 204, "setup password {username}");
        for hat in hats {
            self.grant(admin, &id, &json!({"hat": hat}));
        }
        self.login(username, USER_PASSWORD)
    }

    /// Grants a hat as `admin`; a privileged hat's pending request is confirmed from the server's console (as a
    /// mission with one administrator does). Returns the grant id.
    pub fn grant(&self, admin: &Session, user_id: &str, body: &Value) -> String {
        let res = self.post_json(
            &format!("/api/v1/users/{user_id}/hats"),
            Some(&admin.access),
            body,
        );
        match res.status().as_u16() {
            201 => res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned(),
            202 => {
                let request = res.json::<Value>().unwrap();
                self.confirm_from_console(request["id"].as_str().unwrap())
            }
            other => panic!("grant {body}: {other} {}", res.text().unwrap_or_default()),
        }
    }

    /// Confirms a pending grant the way `qip-pool admin confirm-grant` does; returns the grant id.
    pub fn confirm_from_console(&self, request_id: &str) -> String {
        qip_pool::features::identity::service::confirm_hat_grant_from_console(
            &mut self.conn(),
            request_id,
            Some("test-harness"),
        )
        .unwrap()
        .id
    }

    /// Audit events straight from the database (not through the audited API), sealed or not, oldest first.
    pub fn audit_rows(&self) -> Vec<qip_pool::features::audit::repo::AuditEventRow> {
        qip_pool::features::audit::repo::all_events(&mut self.conn()).unwrap()
    }

    /// Runs the audit sealer once, as the sealer job does in a served instance (waiting for any sealer at
    /// work): afterwards every event committed so far is in the hash chain. Returns how many it sealed.
    pub fn seal(&self) -> u64 {
        qip_pool::features::audit::seal_pending(&mut self.conn(), qip_pool::features::audit::WhenBusy::Wait)
            .unwrap()
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
        let mut state = AppState::new(settings, pool.clone()).unwrap();
        let contract = ContractChecker::new(&state.openapi_json);
        let checker = contract.clone();
        state.response_tap = Some(std::sync::Arc::new(move |r| checker.check(r)));
        let state = web::Data::new(state);
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
            contract,
            db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A second server on this app's database, started the way `serve --no-migrate` starts (no migrations
    /// run, a fresh process state).
    pub fn spawn_on(&self) -> SecondServer {
        self.spawn_on_with(|_| {})
    }

    /// [`Self::spawn_on`] with settings of its own (as another instance's configuration).
    pub fn spawn_on_with(&self, customize: impl FnOnce(&mut Settings)) -> SecondServer {
        let mut settings = test_settings(&self.db.url());
        customize(&mut settings);
        let pool = db::build_pool(&settings.database).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = web::Data::new(AppState::new(settings, pool).unwrap());
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = build_server_with(state, listener, |_| {}).unwrap();
                tx.send(server.handle()).unwrap();
                let _ = server.await;
            });
        });
        SecondServer {
            base_url: format!("http://127.0.0.1:{port}"),
            client: reqwest::blocking::Client::new(),
            handle: Some(rx.recv().unwrap()),
            thread: Some(thread),
        }
    }

    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.client.get(self.url(path)).send().unwrap()
    }

    /// The service's own connection pool (for calling service functions the way the handlers do).
    pub fn pool(&self) -> &DbPool {
        self.pool.as_ref().expect("the app's pool")
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
        let failures = self.contract.failures();
        if !failures.is_empty() && !std::thread::panicking() {
            panic!(
                "{} response(s) broke the OpenAPI contract:\n{}",
                failures.len(),
                failures.join("\n")
            );
        }
    }
}

/// A server started by [`TestApp::spawn_on`]; stopped when dropped.
pub struct SecondServer {
    pub base_url: String,
    pub client: reqwest::blocking::Client,
    handle: Option<ServerHandle>,
    thread: Option<JoinHandle<()>>,
}

impl SecondServer {
    pub fn get(&self, path: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base_url))
            .send()
            .unwrap()
    }

    pub fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(token)
            .send()
            .unwrap()
    }
}

impl Drop for SecondServer {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::System::new().block_on(handle.stop(false));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub organization_id: String,
    pub access: String,
    pub refresh: String,
}

/// The absolute `type` URI of a problem (the test servers keep the default `server.public_url`).
pub fn problem_type(slug: &str) -> String {
    format!("http://127.0.0.1:8080/problems/{slug}")
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
    assert_eq!(body["type"], problem_type(type_slug), "type in {body}");
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

/// Runs a child process to completion. A child ended by a signal is not run again: the CLI's exit codes are
/// a contract, and an abort at exit (libpq, pool threads) must fail the test, not be retried away.
pub fn run_child(cmd: &mut std::process::Command) -> std::process::Output {
    cmd.output().unwrap()
}

/// A response read off the wire by [`raw_request`].
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The body as JSON, or `Value::Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends one hand-written HTTP/1.1 request over a fresh TCP connection, the request target exactly as given
/// (HTTP clients normalise dot segments and some escapes; these tests need the bytes sent as written).
pub fn raw_request(
    base_url: &str,
    method: &str,
    target: &str,
    extra_headers: &[(&str, &str)],
    body: Option<&str>,
) -> RawResponse {
    use std::io::{Read, Write};
    let authority = base_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = String::from_utf8_lossy(&data[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

//! Database access: the SQLite/PostgreSQL connection enum, the r2d2 pool that picks the backend by URL
//! scheme, embedded migrations, and the one helper that runs a closure in a write transaction.
//! Everything that differs between the two backends is fenced in this module tree.

pub mod backup;
pub mod cached;
pub mod schema;
pub mod stored;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseSettings;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One database connection, PostgreSQL or SQLite; queries written once against it run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = Pool<DbConnManager>;
pub type PooledDbConn = PooledConnection<DbConnManager>;

/// Which backend a URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Postgres { url: String },
    Sqlite { path: PathBuf },
}

/// Checks that a database URL names a backend this service speaks: `sqlite://…` (or `sqlite:…`, or a bare
/// path), `postgres://…` or `postgresql://…`. Any other scheme is refused — a typo like `postgress://` must not
/// quietly become a SQLite file named after the URL. The message never repeats the URL (it carries passwords).
pub fn check_url(url: &str) -> Result<(), String> {
    let url = url.trim();
    let Some((scheme, _)) = url.split_once(':') else {
        return Ok(());
    };
    let looks_like_scheme = scheme.len() > 1
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !looks_like_scheme || ["sqlite", "postgres", "postgresql"].contains(&scheme) {
        return Ok(());
    }
    let shown: String = scheme.chars().take(20).collect();
    Err(format!(
        "database.url has the scheme `{shown}:`, which is not supported; use sqlite://PATH, \
         postgres://USER:PASSWORD@HOST:PORT/DB or postgresql://…"
    ))
}

impl Backend {
    /// `postgres://` and `postgresql://` select PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a bare path select SQLite.
    pub fn from_url(url: &str) -> Self {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Backend::Postgres { url: url.to_owned() };
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        Backend::Sqlite {
            path: PathBuf::from(path),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Postgres { .. } => "postgresql",
            Backend::Sqlite { .. } => "sqlite",
        }
    }
}

/// Why the database could not be opened, with the backend's own message.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to {backend} database: {message}")]
    Connect { backend: &'static str, message: String },
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
}

/// Why a failed statement may succeed if the client simply tries again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransientCause {
    /// The connection to the database was lost or refused (restart, failover, network).
    ConnectionLost,
    /// The database refused the transaction to keep concurrent ones consistent (serialization failure,
    /// deadlock, SQLite's busy lock); nothing was written.
    Contention,
}

/// Phrases of libpq and SQLite errors that mean the connection, not the statement, failed. diesel reports most
/// of them as `DatabaseErrorKind::Unknown`, so the message is all there is to go on.
const CONNECTION_LOST_PHRASES: &[&str] = &[
    "terminating connection",
    "server closed the connection",
    "connection to server",
    "no connection to the server",
    "could not receive data",
    "could not send data",
    "connection refused",
    "connection reset",
    "broken pipe",
    "ssl syscall",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
];
const CONTENTION_PHRASES: &[&str] = &[
    "deadlock detected",
    "database is locked",
    "database table is locked",
];

/// Classifies a diesel error as transient (worth a retry, answered 503) or not (`None`: a real bug or a
/// refused statement). Backend-specific knowledge lives here so the HTTP layer needs none. A lost connection
/// is also noted (see [`connection_loss_noted`]): the pool then probes its connections for a while.
pub fn transient_cause(err: &diesel::result::Error) -> Option<TransientCause> {
    let cause = classify(err);
    if cause == Some(TransientCause::ConnectionLost) {
        note_connection_lost();
    }
    cause
}

/// How long after a lost connection was seen the pool probes connections (`SELECT 1`) as they are checked out
/// and given back. Outside this window a checkout costs no round trip.
const PROBE_AFTER_LOSS: Duration = Duration::from_secs(30);

static PROCESS_START: LazyLock<Instant> = LazyLock::new(Instant::now);
/// Milliseconds after `PROCESS_START` at which a lost connection was last seen, plus one (0: never).
static CONNECTION_LOST_AT: AtomicU64 = AtomicU64::new(0);

/// Records that a statement failed because its connection was lost (a PostgreSQL restart or failover drops
/// every connection of the pool at once, and a dead connection looks healthy until it is used).
pub fn note_connection_lost() {
    let since_start = u64::try_from(PROCESS_START.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
    CONNECTION_LOST_AT.store(since_start + 1, Ordering::Relaxed);
}

/// Whether a lost connection was seen within `PROBE_AFTER_LOSS` (in this process).
pub fn connection_loss_noted() -> bool {
    match CONNECTION_LOST_AT.load(Ordering::Relaxed) {
        0 => false,
        at => {
            let now = u64::try_from(PROCESS_START.elapsed().as_millis()).unwrap_or(u64::MAX);
            now.saturating_sub(at - 1) <= PROBE_AFTER_LOSS.as_millis() as u64
        }
    }
}

fn classify(err: &diesel::result::Error) -> Option<TransientCause> {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => Some(TransientCause::ConnectionLost),
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => Some(TransientCause::Contention),
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message().to_ascii_lowercase();
            if CONTENTION_PHRASES.iter().any(|p| message.contains(p)) {
                Some(TransientCause::Contention)
            } else if CONNECTION_LOST_PHRASES.iter().any(|p| message.contains(p)) {
                Some(TransientCause::ConnectionLost)
            } else {
                None
            }
        }
        // A rollback that failed after an error leaves the connection unusable; the pool discards it.
        Error::BrokenTransactionManager => Some(TransientCause::ConnectionLost),
        Error::RollbackErrorOnCommit { commit_error, .. } => classify(commit_error),
        _ => None,
    }
}

/// r2d2 manager that opens the backend named by the URL scheme, so the real connection error reaches the
/// operator (diesel's derived `establish` tries each backend and hides it).
#[derive(Debug, Clone)]
pub struct DbConnManager {
    backend: Backend,
    sqlite_busy_timeout_ms: u32,
    /// The ledger roll-up stripe the next PostgreSQL connection gets (see [`LEDGER_STRIPES`]).
    next_stripe: std::sync::Arc<AtomicU32>,
}

/// Stripes of each ledger roll-up key on PostgreSQL (migration `0000Z2_ledger_total_stripes`): each connection
/// of the pool adds its postings to its own stripe, so concurrent postings of one pool never wait for each
/// other on a roll-up row. Up to this many connections of an instance have distinct stripes.
pub const LEDGER_STRIPES: u32 = 16;

impl DbConnManager {
    pub fn new(url: &str, sqlite_busy_timeout_ms: u32) -> Self {
        Self {
            backend: Backend::from_url(url),
            sqlite_busy_timeout_ms,
            next_stripe: std::sync::Arc::new(AtomicU32::new(0)),
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Opens one connection with the per-connection settings applied.
    pub fn open(&self) -> Result<DbConn, DbError> {
        let backend = self.backend.name();
        let connect_err = |message: String| DbError::Connect { backend, message };
        match &self.backend {
            Backend::Postgres { url } => {
                let mut conn =
                    PgConnection::establish(url).map_err(|e| connect_err(e.to_string().trim().to_owned()))?;
                let stripe = self.next_stripe.fetch_add(1, Ordering::Relaxed) % LEDGER_STRIPES;
                conn.batch_execute(&format!("SET qip.ledger_stripe = {stripe}"))
                    .map_err(|e| connect_err(e.to_string()))?;
                Ok(DbConn::Pg(conn))
            }
            Backend::Sqlite { path } => {
                let path_str = path
                    .to_str()
                    .ok_or_else(|| connect_err("path is not UTF-8".into()))?;
                let mut conn = SqliteConnection::establish(path_str)
                    .map_err(|e| connect_err(format!("{}: {e}", path.display())))?;
                // busy_timeout first, so the pragmas after it already wait instead of failing.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                    self.sqlite_busy_timeout_ms
                ))
                .map_err(|e| connect_err(e.to_string()))?;
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for DbConnManager {
    type Connection = DbConn;
    type Error = DbError;

    fn connect(&self) -> Result<DbConn, DbError> {
        self.open()
    }

    /// Run on every checkout, but a round trip only within `PROBE_AFTER_LOSS` of a lost connection: then
    /// the pool's idle connections may all be dead (a PostgreSQL restart), and each is screened before use.
    /// Otherwise a checkout costs nothing: a connection that died unnoticed fails its first statement, which
    /// is answered 503 (retryable), notes the loss, and the connection is dropped when given back.
    fn is_valid(&self, conn: &mut DbConn) -> Result<(), DbError> {
        if connection_loss_noted() {
            probe(conn)?;
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        // A connection left inside a transaction (a panic mid-use) or with a broken transaction manager
        // must not go back to the pool; nor, after a lost connection was seen, one that fails a probe.
        std::thread::panicking()
            || !matches!(
                <DbConn as Connection>::TransactionManager::transaction_manager_status_mut(conn)
                    .transaction_depth(),
                Ok(None)
            )
            || (connection_loss_noted() && probe(conn).is_err())
    }
}

/// One round trip on the connection; a failure that means the connection is gone is noted.
fn probe(conn: &mut DbConn) -> Result<(), DbError> {
    conn.batch_execute("SELECT 1").map_err(|e| {
        transient_cause(&e);
        DbError::Query(e)
    })
}

/// Creates the pool: makes the SQLite directory and switches the file to WAL once, before any pooled connection
/// (setting WAL per connection races), then checks one connection out so a bad URL fails at startup.
pub fn build_pool(settings: &DatabaseSettings) -> Result<DbPool, DbError> {
    let manager = DbConnManager::new(settings.url.expose(), settings.sqlite_busy_timeout_ms);
    if let Backend::Sqlite { path } = manager.backend() {
        prepare_sqlite_file(path, &manager)?;
    }
    // Surface the real error now, not as a pool timeout on the first request.
    drop(manager.open()?);
    Ok(Pool::builder()
        .max_size(settings.pool_size)
        .connection_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
        // `is_valid` is a no-op unless a lost connection was seen recently: no `SELECT 1` per checkout.
        .test_on_check_out(true)
        .build_unchecked(manager))
}

/// One connection for a command-line job: no pool, so no background threads are still connecting when the
/// process exits (libpq can abort the process if one is). The caller drops it, closing it, before exit.
pub fn connect_once(settings: &DatabaseSettings) -> Result<DbConn, DbError> {
    let manager = DbConnManager::new(settings.url.expose(), settings.sqlite_busy_timeout_ms);
    if let Backend::Sqlite { path } = manager.backend() {
        prepare_sqlite_file(path, &manager)?;
    }
    manager.open()
}

/// [`connect_once`] for jobs that only read or change an existing database (`ledger check`, `audit verify`,
/// `admin confirm-grant`): a mistyped SQLite path is an error, never a new empty database.
pub fn connect_existing(settings: &DatabaseSettings) -> Result<DbConn, DbError> {
    let manager = DbConnManager::new(settings.url.expose(), settings.sqlite_busy_timeout_ms);
    if let Backend::Sqlite { path } = manager.backend() {
        if !path.is_file() {
            return Err(DbError::Connect {
                backend: "sqlite",
                message: format!("no database at {}; check database.url", path.display()),
            });
        }
    }
    manager.open()
}

fn prepare_sqlite_file(path: &Path, manager: &DbConnManager) -> Result<(), DbError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Connect {
            backend: "sqlite",
            message: format!("cannot create directory {}: {e}", dir.display()),
        })?;
    }
    let mut conn = manager.open()?;
    conn.batch_execute("PRAGMA journal_mode = WAL;")
        .map_err(DbError::Query)?;
    Ok(())
}

/// Applies every pending migration of the connection's backend; returns how many ran.
pub fn run_migrations(conn: &mut DbConn) -> Result<usize, DbError> {
    let result = match conn {
        DbConn::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|v| v.len()),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    result.map_err(|e| DbError::Migration(e.to_string()))
}

/// True when migrations embedded in this binary have not been applied to the database.
pub fn has_pending_migrations(conn: &mut DbConn) -> Result<bool, DbError> {
    let result = match conn {
        DbConn::Pg(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    };
    result.map_err(|e| DbError::Migration(e.to_string()))
}

/// Runs `f` in one write transaction: committed when it returns `Ok`, rolled back on `Err`.
/// On SQLite the transaction starts with `BEGIN IMMEDIATE`, taking the write lock up front so two writers
/// never both read and then fail to upgrade; on PostgreSQL it is a plain `BEGIN` (row locks are explicit).
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Pg(_) => conn.transaction(f),
        DbConn::Sqlite(inner) => {
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            // The multi-connection's transaction manager reads the inner connection's state, so nested
            // `transaction` calls inside `f` become savepoints as usual.
            match f(conn) {
                Ok(value) => {
                    if let DbConn::Sqlite(inner) = conn {
                        if let Err(e) =
                            <AnsiTransactionManager as TransactionManager<SqliteConnection>>::commit_transaction(inner)
                        {
                            let _ = <AnsiTransactionManager as TransactionManager<SqliteConnection>>::rollback_transaction(inner);
                            return Err(e.into());
                        }
                    }
                    Ok(value)
                }
                Err(err) => {
                    if let DbConn::Sqlite(inner) = conn {
                        <AnsiTransactionManager as TransactionManager<SqliteConnection>>::rollback_transaction(inner)?;
                    }
                    Err(err)
                }
            }
        }
    }
}

/// Runs `f` in a read-only transaction that sees one snapshot for all its statements (REPEATABLE READ on
/// PostgreSQL; a read transaction in WAL mode is a snapshot on SQLite). For reports that must add up.
pub fn snapshot_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|c| {
        if let DbConn::Pg(_) = c {
            c.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        }
        f(c)
    })
}

/// Why the database is not ready. The public probe names only the kind; the detail (which may carry
/// hosts, ports or paths) goes to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    Unreachable(String),
    MigrationsPending,
    FileMissing(String),
}

impl NotReady {
    /// A sentence safe to show anyone: no addresses, paths or driver messages.
    pub fn public_reason(&self) -> &'static str {
        match self {
            NotReady::Unreachable(_) => "database: unreachable",
            NotReady::MigrationsPending => "database: migrations pending; run `qip-pool migrate`",
            NotReady::FileMissing(_) => "database: file missing",
        }
    }

    /// The full cause, for the operator's log.
    pub fn detail(&self) -> String {
        match self {
            NotReady::Unreachable(d) | NotReady::FileMissing(d) => d.clone(),
            NotReady::MigrationsPending => "migrations are not current".into(),
        }
    }
}

/// A database-readiness probe: reachable, migrations current, and (SQLite) the file still where it was configured.
pub fn check_ready(pool: &DbPool, backend: &Backend, timeout: Duration) -> Result<(), NotReady> {
    if let Backend::Sqlite { path } = backend {
        if !path.is_file() {
            return Err(NotReady::FileMissing(format!(
                "database file {} is missing",
                path.display()
            )));
        }
    }
    let mut conn = pool
        .get_timeout(timeout)
        .map_err(|e| NotReady::Unreachable(e.to_string()))?;
    conn.batch_execute("SELECT 1").map_err(|e| {
        // A dead pooled connection is dropped when given back (see `has_broken`), so the next probe recovers.
        transient_cause(&e);
        NotReady::Unreachable(e.to_string())
    })?;
    match has_pending_migrations(&mut conn) {
        Ok(false) => Ok(()),
        Ok(true) => Err(NotReady::MigrationsPending),
        Err(e) => Err(NotReady::Unreachable(e.to_string())),
    }
}

/// Connections of the pool checked out (`in_use`) and waiting (`idle`).
pub fn pool_counts(pool: &DbPool) -> (u32, u32) {
    let state = pool.state();
    (
        state.connections.saturating_sub(state.idle_connections),
        state.idle_connections,
    )
}

/// Locks one row by primary key until the transaction ends (`FOR UPDATE` on PostgreSQL). On SQLite the write
/// transaction already holds the database's only write lock, so this is a no-op there. `table` is always a
/// constant from the code, never input.
pub fn lock_row(conn: &mut DbConn, table: &'static str, id: &str) -> QueryResult<()> {
    lock_row_by(conn, table, "id", id)
}

/// [`lock_row`] by another key column (constants from the code only).
pub fn lock_row_by(
    conn: &mut DbConn,
    table: &'static str,
    column: &'static str,
    value: &str,
) -> QueryResult<()> {
    if let DbConn::Pg(_) = conn {
        diesel::sql_query(format!("SELECT 1 FROM {table} WHERE {column} = $1 FOR UPDATE"))
            .bind::<diesel::sql_types::Text, _>(value)
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_sqlite_and_postgres_urls_are_accepted() {
        for ok in [
            "sqlite://./data/x.sqlite3",
            "sqlite:x.db",
            "./data/x.sqlite3",
            "/var/lib/qip/x.sqlite3",
            "postgres://u:p@h:5432/d",
            "postgresql://u:p@h/d",
        ] {
            assert_eq!(super::check_url(ok), Ok(()), "{ok}");
        }
        for bad in ["postgress://u:secret@h/d", "mysql://u:p@h/d", "http://x"] {
            let err = super::check_url(bad).unwrap_err();
            assert!(!err.contains("secret") && err.contains("not supported"), "{err}");
        }
    }
}

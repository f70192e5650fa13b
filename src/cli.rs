//! The command line (a contract, DESIGN.md §9): `serve`, `migrate`, `admin bootstrap`, `admin pending-grants`,
//! `admin confirm-grant`, `demo seed`, `audit verify`, `ledger check`. Each command returns an
//! exit code; startup failures are one line on stderr.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;

use actix_web::web;
use clap::{Parser, Subcommand};

use crate::app::{AppState, build_server};
use crate::config::Settings;
use crate::db;
use crate::features::audit;
use crate::features::identity::{self, AuthRuntime};

#[derive(Debug, Parser)]
#[command(
    name = "qip-pool",
    version,
    about = "Joint funding pool for Quick Impact Projects",
    after_help = "Configuration: built-in defaults (config/default.toml in the repository, every key documented), \
overlaid by the TOML file given with --config FILE, overlaid by environment variables QIP__SECTION__KEY \
(e.g. QIP__DATABASE__URL=postgres://user:pass@host:5432/db, QIP__SERVER__BIND=0.0.0.0:8080, \
QIP__AUTH__JWT_SECRET). Unknown keys are an error. Database URLs: sqlite://PATH, postgres://… or postgresql://…."
)]
pub struct Cli {
    /// TOML file overlaid on the built-in defaults (QIP__SECTION__KEY variables override both).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pending migrations (unless --no-migrate), then serve HTTP.
    Serve {
        /// Listen address, overriding server.bind.
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
        /// Do not run migrations at startup.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Administration commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Ledger commands.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Demo data.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Audit-trail commands.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Consistent online copy of the SQLite database (the server may keep running); prints a JSON report.
    /// PostgreSQL: use pg_dump or a base backup (docs/OPERATIONS.md).
    Backup {
        /// The new file to write; an existing file is never overwritten.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// On a database with no administrator: create the mission-office organisation and an `admin` user.
    /// Refuses (exit 1) when an administrator exists.
    Bootstrap {
        #[arg(long)]
        username: String,
        /// Read the password from standard input (first line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List grants of privileged hats waiting for a second administrator (one JSON object per line).
    PendingGrants,
    /// Confirm a pending grant of a privileged hat from the server's console: for a mission with a single
    /// administrator. Audited as done from the console, with the host user. Exempt from the rule that the
    /// grantee's password must not rest on the requester's setup token: whoever runs this holds the server
    /// and its database anyway.
    ConfirmGrant {
        /// The id of the grant request (from `admin pending-grants` or `GET /api/v1/hat-grant-requests`).
        request_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Check the ledger's invariants; print a JSON report. Exit 0 when they hold, 2 when broken, 1 when it
    /// could not run.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// On an empty database: a complete fictional demo mission with a user for every hat; prints the logins.
    Seed,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the sealed hash chain; print {intact, events_checked, head_seq, head_hash, first_broken_seq,
    /// unsealed_events, oldest_unsealed_age_ms}.
    /// Exit 0 when intact, 2 when broken, 1 when it could not run.
    Verify {
        /// A checkpoint kept outside the service (`GET /api/v1/audit/checkpoint`), as `SEQ:HASH`: the event
        /// with that sequence number must still carry that hash (exit 2 otherwise). Proves, after a restore,
        /// that nothing up to the checkpoint was rewritten.
        #[arg(long, value_name = "SEQ:HASH")]
        checkpoint: Option<String>,
        /// First seal every committed event not yet in the chain (as the sealer job would, waiting for a
        /// sealer at work), so the verification covers the whole trail up to now.
        #[arg(long)]
        seal: bool,
    },
}

/// A failure to start or run a command: printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Settings(#[from] crate::config::SettingsError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("{0}")]
    Other(String),
}

pub fn run(cli: Cli) -> ExitCode {
    match execute(cli) {
        Ok(code) => code,
        Err(err) => {
            // One line, whatever the cause's own formatting (libpq's messages span several).
            let message = err.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
            eprintln!("qip-pool: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> Result<ExitCode, CliError> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { bind, no_migrate } => {
            if let Some(bind) = bind {
                settings.server.bind = bind;
            }
            serve(settings, !no_migrate).map(|()| ExitCode::SUCCESS)
        }
        Command::Migrate => {
            crate::telemetry::init_tracing(&settings.log);
            let mut conn = db::connect_once(&settings.database)?;
            let applied = db::run_migrations(&mut conn)?;
            println!("applied {applied} migration(s)");
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin {
            command:
                AdminCommand::Bootstrap {
                    username,
                    password_stdin: _,
                },
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| CliError::Other(format!("cannot read the password from stdin: {e}")))?;
            let password = password.trim_end_matches(['\n', '\r']);
            let mut conn = db::connect_once(&settings.database)?;
            db::run_migrations(&mut conn)?;
            let auth = AuthRuntime::new(&settings.auth).map_err(CliError::Other)?;
            let user_id = identity::service::bootstrap_admin(&mut conn, &auth, &username, password)
                .map_err(|e| CliError::Other(format!("admin bootstrap refused: {e}")))?;
            println!(
                "created administrator {username} (user id {user_id}); sign in with POST /api/v1/auth/login"
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin {
            command: AdminCommand::PendingGrants,
        } => {
            let mut conn = db::connect_existing(&settings.database)?;
            let pending = identity::service::list_hat_grant_requests(
                &mut conn,
                identity::dto::HatGrantRequestListStatus::Pending,
                None,
                u32::MAX - 1,
            )
            .map_err(|e| CliError::Other(e.detail().to_owned()))?;
            for request in pending {
                println!("{}", serde_json::to_string(&request).unwrap_or_default());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin {
            command: AdminCommand::ConfirmGrant { request_id },
        } => {
            let mut conn = db::connect_existing(&settings.database)?;
            let host_user = host_user();
            let grant = identity::service::confirm_hat_grant_from_console(
                &mut conn,
                &request_id,
                host_user.as_deref(),
            )
            .map_err(|e| CliError::Other(format!("confirm-grant refused: {}", e.detail())))?;
            println!(
                "confirmed: {} now holds {} (grant {})",
                grant.user_id, grant.hat, grant.id
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Ledger {
            command: LedgerCommand::Check,
        } => {
            let mut conn = db::connect_existing(&settings.database)?;
            let report = crate::features::ledger::check::check(&mut conn).map_err(db::DbError::Query)?;
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Demo {
            command: DemoCommand::Seed,
        } => {
            let mut conn = db::connect_once(&settings.database)?;
            db::run_migrations(&mut conn)?;
            let auth = AuthRuntime::new(&settings.auth).map_err(CliError::Other)?;
            let logins = crate::features::demo::seed(&mut conn, &auth)
                .map_err(|e| CliError::Other(format!("demo seed refused: {}", e.detail())))?;
            println!(
                "Demo mission seeded (fictional country, P-codes XY…). Every password: {}",
                crate::features::demo::DEMO_PASSWORD
            );
            for login in logins {
                let hats: Vec<&str> = login.hats.iter().map(|h| h.as_str()).collect();
                println!(
                    "  {:<16} {:<10} {}",
                    login.username,
                    login.organization,
                    hats.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Backup { to } => {
            let db::Backend::Sqlite { path } = db::Backend::from_url(settings.database.url.expose()) else {
                return Err(CliError::Other(
                    "`qip-pool backup` copies the SQLite database; back PostgreSQL up with pg_dump or a base \
                     backup plus WAL archiving (docs/OPERATIONS.md)"
                        .into(),
                ));
            };
            let report = db::backup::backup_sqlite(&path, &to).map_err(|e| CliError::Other(e.to_string()))?;
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit {
            command: AuditCommand::Verify { checkpoint, seal },
        } => {
            let checkpoint = checkpoint.as_deref().map(parse_checkpoint).transpose()?;
            let mut conn = db::connect_existing(&settings.database)?;
            if seal {
                audit::seal_pending(&mut conn, audit::WhenBusy::Wait).map_err(db::DbError::Query)?;
            }
            let report = audit::verify_chain(&mut conn).map_err(db::DbError::Query)?;
            let mut json = serde_json::to_value(&report).unwrap_or_default();
            let mut checkpoint_holds = true;
            if let Some((seq, hash)) = checkpoint {
                let stored = audit::hash_at(&mut conn, seq).map_err(db::DbError::Query)?;
                checkpoint_holds = stored.as_deref() == Some(hash.as_str());
                json["checkpoint"] =
                    serde_json::json!({"seq": seq, "hash": hash, "matches": checkpoint_holds});
            }
            drop(conn);
            println!("{json}");
            Ok(if report.intact && checkpoint_holds {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
    }
}

/// `SEQ:HASH` as printed by the checkpoint endpoint.
fn parse_checkpoint(value: &str) -> Result<(i64, String), CliError> {
    let bad = || {
        CliError::Other(format!(
            "--checkpoint must be SEQ:HASH (e.g. 1042:9f86d0…), not {value:?}"
        ))
    };
    let (seq, hash) = value.split_once(':').ok_or_else(bad)?;
    let seq = seq.trim().parse::<i64>().map_err(|_| bad())?;
    let hash = hash.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok((seq, hash))
}

/// The operating-system user running the command, for the audit trail (the one behind `sudo` when there is one).
fn host_user() -> Option<String> {
    ["SUDO_USER", "USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .map(|u| u.chars().filter(|c| !c.is_control()).take(64).collect::<String>())
        .filter(|u| !u.is_empty())
}

fn serve(settings: Settings, migrate: bool) -> Result<(), CliError> {
    crate::telemetry::init_tracing(&settings.log);
    let pool = db::build_pool(&settings.database)?;
    {
        let mut conn = pool.get().map_err(|e| CliError::Other(e.to_string()))?;
        if migrate {
            let applied = db::run_migrations(&mut conn)?;
            tracing::info!(applied, "database migrations applied");
        } else if db::has_pending_migrations(&mut conn)? {
            tracing::warn!(
                "database migrations are pending; /readyz answers 503 until `qip-pool migrate` runs"
            );
        }
        if !db::has_pending_migrations(&mut conn)?
            && identity::service::needs_bootstrap(&mut conn).map_err(|e| CliError::Other(e.to_string()))?
        {
            tracing::warn!(
                "no administrator exists; create one with: qip-pool admin bootstrap --username NAME --password-stdin"
            );
        }
    }
    let bind = settings.server.bind.clone();
    let listener =
        TcpListener::bind(&bind).map_err(|e| CliError::Other(format!("cannot listen on {bind}: {e}")))?;
    let state = AppState::new(settings, pool).map_err(|e| CliError::Other(e.to_string()))?;
    tracing::info!(bind = %bind, database = state.backend.name(), "qip-pool listening");
    let state = web::Data::new(state);
    actix_web::rt::System::new()
        .block_on(async move {
            let sweep_every =
                std::time::Duration::from_secs(state.settings.consultation.sweep_interval_secs.max(1));
            crate::jobs::spawn(state.pool.clone(), sweep_every);
            crate::jobs::spawn_known_clients(state.clone(), sweep_every);
            crate::jobs::audit_sealer::spawn(
                state.pool.clone(),
                std::time::Duration::from_millis(state.settings.audit.seal_interval_ms.max(1)),
            );
            crate::features::notifications::worker::spawn(state.pool.clone(), state.settings.clone());
            let server = build_server(state, listener)?;
            server.await
        })
        .map_err(|e| CliError::Other(format!("server stopped: {e}")))
}

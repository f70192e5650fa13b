//! The server binary as a process of its own, for the benchmarks that read its memory (scale, login_flood):
//! `qip-pool` commands with a bench's settings, the administrator's bootstrap, `serve` on a free port until
//! `/readyz` answers (killed when dropped), the process's memory from `/proc/<pid>/status`, and a fresh
//! database for it.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `qip-pool ARGS` over `url` signing with `jwt_secret`, errors-only logs, plus any `QIP__` variables of the
/// bench's environment (e.g. `QIP__AUTH__MAX_CONCURRENT_HASHES=1`), which the child inherits.
pub fn qip(url: &str, jwt_secret: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qip-pool"));
    cmd.args(args)
        .env("QIP__DATABASE__URL", url)
        .env("QIP__AUTH__JWT_SECRET", jwt_secret)
        .env("QIP__LOG__FILTER", "error");
    cmd
}

/// Creates the administrator `admin` with `password` through `qip-pool admin bootstrap` (`command` builds the
/// bench's `qip-pool` command for the given arguments).
pub fn bootstrap_admin(command: impl Fn(&[&str]) -> Command, password: &str) {
    let mut bootstrap = command(&["admin", "bootstrap", "--username", "admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(bootstrap.stdin.take().unwrap(), "{password}").unwrap();
    assert!(bootstrap.wait().unwrap().success(), "admin bootstrap");
}

/// The running server; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
}

impl Server {
    /// Runs `qip-pool serve` (built by `command`, as for [`bootstrap_admin`]) on a free port and waits until
    /// `/readyz` answers 2xx (at most a minute).
    pub fn start(command: impl Fn(&[&str]) -> Command) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Server {
            child: command(&["serve", "--bind", &format!("127.0.0.1:{port}")])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while reqwest::blocking::get(format!("{}/readyz", server.base_url))
            .map_or(true, |r| !r.status().is_success())
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process's memory, from `/proc/<pid>/status`.
pub struct Memory {
    pub pid: u32,
}

impl Memory {
    /// Resets the peak resident set size (`VmHWM`) to the current one, so each phase reports its own.
    pub fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }

    /// The peak resident set size since the last reset, in MB.
    pub fn peak_mb(&self) -> f64 {
        self.field_mb("VmHWM:")
    }

    /// Prints the current RSS (and its anonymous part), the peak and the thread count.
    pub fn report(&self, moment: &str) {
        let threads = self.field("Threads:").unwrap_or(f64::NAN);
        println!(
            "  server memory {moment}: RSS {:.0} MB (anonymous {:.0} MB), peak {:.0} MB, {threads} threads",
            self.field_mb("VmRSS:"),
            self.field_mb("RssAnon:"),
            self.field_mb("VmHWM:"),
        );
    }

    /// A `kB` line of the status file (`VmRSS:`, `VmHWM:`, …) in MB; NaN when unreadable.
    pub fn field_mb(&self, name: &str) -> f64 {
        self.field(name).map_or(f64::NAN, |kb| kb / 1024.0)
    }

    fn field(&self, name: &str) -> Option<f64> {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()?
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

/// A fresh database `name` for a bench's server, and its URL: on PostgreSQL (`pg_admin`; dropped first if a
/// previous run left it), else a SQLite file in a temporary directory that lives as long as the returned guard.
pub fn fresh_database(name: &str, pg_admin: Option<&str>) -> (String, tempfile::TempDir) {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let sqlite_dir = tempfile::tempdir().unwrap();
    let url = match pg_admin {
        Some(admin) => {
            let mut c = diesel::PgConnection::establish(admin).unwrap();
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                .unwrap();
            c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
            crate::common::with_db_name(admin, name)
        }
        None => format!("sqlite://{}/{name}.sqlite3", sqlite_dir.path().display()),
    };
    (url, sqlite_dir)
}

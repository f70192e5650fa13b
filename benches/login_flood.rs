//! Sign-in flood benchmark (docs/BENCHMARKS.md, issue 14 item 3): other requests' latency and the server's
//! memory while wrong-password sign-ins flood in from many client addresses.
//!
//! The server is the release binary (`qip-pool serve`, what `cargo bench` builds beside this bench) in a
//! process of its own, configured as an operator would: `QIP__…` variables (the bench's own `QIP__AUTH__…`
//! overrides pass through, e.g. `QIP__AUTH__MAX_CONCURRENT_HASHES=2`). Its memory is read from
//! `/proc/<pid>/status`, so the clients' memory is not counted.
//!
//! The run alternates a baseline phase and a flood phase QIP_BENCH_ROUNDS (4) times, each QIP_BENCH_SECONDS (10)
//! long, so that both see the same machine (other processes on a shared machine come and go):
//! 1. Baseline: QIP_BENCH_READERS (2) clients read `GET /api/v1/pools/{id}` and `GET /api/v1/me/tasks` with a
//!    bearer token — p50/p99.
//! 2. Flood: the same readers again while QIP_BENCH_FLOODERS (16) clients, each bound to its own address
//!    127.<10+round>.0.<1+k> (new addresses each round, as a botnet's next wave), post sign-ins with wrong passwords as fast as they are answered. The flooders are async
//!    tasks on one thread, so they take at most one core of the client side (a remote attacker's would take none
//!    of ours); the CPU that thread took is printed, so its share of the machine is seen, not hidden.
//! 3. Each phase prints the reads' p50/p99, the server's peak RSS, the sign-in answers by status with the hashes a
//!    second (each 401 or 200 is one argon2 check; 429 and 503 hash nothing), and where the machine's CPU went
//!    (`/proc`: the server by thread name — `qip-hash-` the hashing threads, `actix-rt` the HTTP workers, tokio's
//!    the blocking pool with the database work —, this bench's readers and flooders, and every other process:
//!    on a shared machine that last figure says how far to trust the round).
//! 4. At the end: the p99 ratio flood / baseline over all rounds' reads together (target <= 2.0) and per round,
//!    the peak RSS (target <= 200 MB), the load average at the start and the end.
//! 5. The field users: during each flood, once a second, the real account signs in with its password from the
//!    address it signed in from before (127.0.0.2: the sign-in budget's known-client reserve) and the
//!    administrator from an address it never used (127.0.0.4); after the last flood, the administrator from
//!    another new address (127.0.0.5) until it gets in. Their answers are printed (200 every time is the aim).
//!
//! PostgreSQL: `scripts/with-postgres.sh cargo bench --bench login_flood`; without it, SQLite:
//! `cargo bench --bench login_flood`.

#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark fails loudly")]

#[path = "common/mod.rs"]
#[expect(
    dead_code,
    reason = "the in-process server plumbing there is not used: this bench runs the server binary"
)]
mod common;
mod server_process;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qip_pool::config::Settings;
use serde_json::{Value, json};

use common::{ADMIN_PASSWORD, env_or, percentile};
use server_process::{Memory, Server};

const USER_PASSWORD: &str = "bench-user-passphrase-1";
const JWT_SECRET: &str = "bench-secret-0123456789abcdef-0123456789";

/// `qip-pool ARGS` over `url` with the bench's settings (plus any `QIP__` variables of the bench's environment).
fn qip(url: &str, args: &[&str]) -> Command {
    server_process::qip(url, JWT_SECRET, args)
}

fn main() {
    let load_at_start = load_average();
    let seconds = env_or("QIP_BENCH_SECONDS", 10);
    let rounds = env_or("QIP_BENCH_ROUNDS", 4).max(1);
    let readers = env_or("QIP_BENCH_READERS", 2) as usize;
    let flooders = env_or("QIP_BENCH_FLOODERS", 16) as usize;
    let pg_admin = common::admin_url();
    let db_name = format!("qip_flood_{}", std::process::id());
    let (url, _sqlite_dir) = server_process::fresh_database(&db_name, pg_admin.as_deref());
    // The server's effective settings, as it will load them (defaults plus the environment's `QIP__`).
    let settings = Settings::load(None).unwrap();
    let (max_hashes, hash_wait) = (settings.auth.max_concurrent_hashes, settings.auth.hash_wait_ms);
    let low_priority = settings.auth.hash_threads_low_priority;
    let per_address = settings.auth.auth_rate_limit_per_minute;
    let budget = (
        settings.auth.sign_in_budget_per_second,
        settings.auth.sign_in_budget_burst,
        settings.auth.known_client_budget_per_second,
        settings.auth.known_client_budget_burst,
    );
    let refusal_hold = settings.auth.refusal_hold_ms;

    server_process::bootstrap_admin(|args| qip(&url, args), ADMIN_PASSWORD);
    let server = Server::start(|args| qip(&url, args));
    let base = server.base_url.clone();
    let memory = Memory { pid: server.pid() };

    // Set-up sign-ins come from their own address, away from the flood's.
    let client = reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))
        .build()
        .unwrap();
    let api = common::Api {
        client: client.clone(),
        base: base.to_string(),
    };
    let call =
        |method: &str, path: &str, token: Option<&str>, body: Value| api.call(method, path, token, body);
    let login = |user: &str, password: &str| api.login(user, password);
    let admin_token = login("admin", ADMIN_PASSWORD);
    let office = call(
        "POST",
        "/api/v1/organizations",
        Some(&admin_token),
        json!({"code": "FLOODSEC", "name": "Flood section", "kind": "mission_section"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = call(
        "POST",
        "/api/v1/users",
        Some(&admin_token),
        json!({"username": "qip", "display_name": "qip", "email": "qip@bench.invalid", "organization_id": office}),
    );
    let res = client
        .post(format!("{base}/api/v1/auth/setup-password"))
        .json(&json!({"token": created["setup_token"], "password": USER_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    let granted = call(
        "POST",
        &format!("/api/v1/users/{}/hats", created["id"].as_str().unwrap()),
        Some(&admin_token),
        json!({"hat": "qip_officer"}),
    );
    if granted["status"] == "pending" {
        let confirmed = qip(&url, &["admin", "confirm-grant", granted["id"].as_str().unwrap()])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(confirmed.success(), "confirm the hat grant");
    }
    let token = login("qip", USER_PASSWORD);
    let pool_id = call(
        "POST",
        "/api/v1/pools",
        Some(&token),
        json!({"code": "FLOOD", "name": "Flood", "currency": "USD", "funding_start": "2026-01-01", "funding_end": "2027-12-31"}),
    )["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let paths = [format!("/api/v1/pools/{pool_id}"), "/api/v1/me/tasks".to_owned()];

    // The readers until `until`: all their reads' latencies (sorted) and the CPU their own threads took.
    let read_for = |until: Instant| -> (Vec<Duration>, u64) {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..readers)
                .map(|r| {
                    let (paths, token, base) = (&paths, &token, &base);
                    std::thread::Builder::new()
                        .name(format!("reader-{r}"))
                        .spawn_scoped(s, move || {
                            let client = reqwest::blocking::Client::builder()
                                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)))
                                .build()
                                .unwrap();
                            let mut lat = Vec::new();
                            let mut n = r;
                            while Instant::now() < until {
                                let started = Instant::now();
                                let res = client
                                    .get(format!("{base}{}", paths[n % paths.len()]))
                                    .bearer_auth(token)
                                    .send()
                                    .unwrap();
                                assert_eq!(res.status().as_u16(), 200);
                                let _ = res.bytes();
                                lat.push(started.elapsed());
                                n += 1;
                            }
                            (lat, own_thread_ticks())
                        })
                        .unwrap()
                })
                .collect();
            let mut all = Vec::new();
            let mut ticks = 0;
            for handle in handles {
                let (lat, t) = handle.join().unwrap();
                all.extend(lat);
                ticks += t;
            }
            all.sort();
            (all, ticks)
        })
    };

    // Baseline and flood phases alternate, `rounds` times, so that both see the same machine (the other
    // processes on it come and go): each round's ratio, and the ratio of all rounds' reads together.
    let mut phases: Vec<Phase> = Vec::new();
    for round in 1..=rounds {
        for flooded in [false, true] {
            let backends = database_backends(&pg_admin, &db_name);
            let before = Snapshot::take(memory.pid, &backends);
            memory.reset_peak();
            let until = Instant::now() + Duration::from_secs(seconds);
            let (reads, reader_ticks, flood) = std::thread::scope(|s| {
                let base = &base;
                let flood = flooded.then(|| {
                    let flooders = std::thread::Builder::new()
                        .name("flooders".to_owned())
                        .spawn_scoped(s, move || {
                            let answers = tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .unwrap()
                                .block_on(flood_until(base, flooders, round, until));
                            (answers, own_thread_ticks())
                        })
                        .unwrap();
                    let known =
                        s.spawn(move || field_sign_ins(base, [127, 0, 0, 2], "qip", USER_PASSWORD, until));
                    let new =
                        s.spawn(move || field_sign_ins(base, [127, 0, 0, 4], "admin", ADMIN_PASSWORD, until));
                    (flooders, known, new)
                });
                let (reads, reader_ticks) = read_for(until);
                let flood = flood.map(|(flooders, known, new)| {
                    let (answers, ticks) = flooders.join().unwrap();
                    FloodAnswers {
                        flood: answers,
                        flooder_ticks: ticks,
                        known: known.join().unwrap(),
                        new: new.join().unwrap(),
                    }
                });
                (reads, reader_ticks, flood)
            });
            let after = Snapshot::take(memory.pid, &backends);
            let phase = Phase {
                round,
                reads,
                reader_ticks,
                flood,
                rss_peak: memory.peak_mb(),
                cpu: after.since(&before),
            };
            phase.print();
            phases.push(phase);
        }
    }

    // After the flood: a new address signs in as soon as the budget has room again.
    let after = Instant::now();
    let client = reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 5)))
        .build()
        .unwrap();
    let mut after_answers: Vec<u16> = Vec::new();
    while after.elapsed() < Duration::from_secs(30) {
        let status = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .unwrap()
            .status()
            .as_u16();
        after_answers.push(status);
        if status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let after_ms = after.elapsed().as_secs_f64() * 1e3;
    let rss_after = memory.field_mb("VmRSS:");
    memory.report("at the end");
    let hash_threads = thread_scheduling(memory.pid, "qip-hash-");

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "login_flood: reads during a wrong-password sign-in flood from {flooders} addresses ({}, {readers} readers, {rounds} rounds of \
         {seconds} s baseline + {seconds} s flood; auth.max_concurrent_hashes = {max_hashes}, auth.hash_wait_ms = {hash_wait}, \
         auth.hash_threads_low_priority = {low_priority}, {per_address} sign-ins/min per address; sign-in budget {}/s burst {}, \
         known clients {}/s burst {}, refusals held {refusal_hold} ms; hashing threads and their scheduling: {hash_threads:?}; \
         load average {} at the start, {} at the end)",
        if pg_admin.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        budget.0,
        budget.1,
        budget.2,
        budget.3,
        load_at_start.trim(),
        load_average().trim(),
    );
    let pooled = |flooded: bool| {
        let mut all: Vec<Duration> = phases
            .iter()
            .filter(|p| p.flood.is_some() == flooded)
            .flat_map(|p| p.reads.iter().copied())
            .collect();
        all.sort();
        all
    };
    let (baseline, flooded) = (pooled(false), pooled(true));
    let mut answers: BTreeMap<u16, u64> = BTreeMap::new();
    let (mut known, mut new) = (BTreeMap::new(), BTreeMap::new());
    for flood in phases.iter().filter_map(|p| p.flood.as_ref()) {
        for (totals, part) in [
            (&mut answers, &flood.flood),
            (&mut known, &flood.known),
            (&mut new, &flood.new),
        ] {
            for (status, count) in part {
                *totals.entry(*status).or_insert(0) += count;
            }
        }
    }
    let peak = |flooded: bool| {
        phases
            .iter()
            .filter(|p| p.flood.is_some() == flooded)
            .map(|p| p.rss_peak)
            .fold(0.0, f64::max)
    };
    let ratios: Vec<f64> = phases
        .chunks(2)
        .map(|pair| p99_ratio(&pair[1].reads, &pair[0].reads))
        .collect();
    println!(
        "  all baseline phases {:>6} reads   p50 {:>7.2} ms   p99 {:>7.2} ms   server peak RSS {:.0} MB",
        baseline.len(),
        ms(percentile(&baseline, 0.5)),
        ms(percentile(&baseline, 0.99)),
        peak(false)
    );
    println!(
        "  all flood phases    {:>6} reads   p50 {:>7.2} ms   p99 {:>7.2} ms   server peak RSS {:.0} MB (RSS at the end {rss_after:.0} MB)",
        flooded.len(),
        ms(percentile(&flooded, 0.5)),
        ms(percentile(&flooded, 0.99)),
        peak(true)
    );
    println!("  sign-in answers to the flood, all rounds: {answers:?}");
    println!(
        "  field sign-ins during the floods, once a second: qip from its usual address {known:?}, \
         admin from a new address {new:?}; after them, admin from another new address: {after_answers:?} \
         in {after_ms:.0} ms"
    );
    println!(
        "  ratio p99 flood/baseline, all rounds' reads together = {:.2}; per round {}   (target <= 2.00; RSS target <= 200 MB)",
        p99_ratio(&flooded, &baseline),
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    drop(server);
    if let Some(admin) = &pg_admin {
        let mut c = PgConnection::establish(admin).unwrap();
        let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db_name} WITH (FORCE)"));
    }
}

/// p99 of `flooded` over p99 of `baseline` (both sorted).
fn p99_ratio(flooded: &[Duration], baseline: &[Duration]) -> f64 {
    percentile(flooded, 0.99).as_secs_f64() / percentile(baseline, 0.99).as_secs_f64().max(1e-9)
}

/// What the clients of a flood phase were answered, and the CPU the flooders' client thread took.
struct FloodAnswers {
    flood: BTreeMap<u16, u64>,
    flooder_ticks: u64,
    known: BTreeMap<u16, u64>,
    new: BTreeMap<u16, u64>,
}

/// One phase of one round: the readers' latencies (sorted), what the sign-ins were answered (flood phases),
/// the server's peak RSS and where the machine's CPU went.
struct Phase {
    round: u64,
    reads: Vec<Duration>,
    reader_ticks: u64,
    flood: Option<FloodAnswers>,
    rss_peak: f64,
    cpu: CpuSpent,
}

impl Phase {
    fn print(&self) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let seconds = self.cpu.wall.as_secs_f64();
        // CPU as a percentage of one core over the phase (200 = both cores of a two-core machine).
        let pct = |ticks: u64| ticks as f64 / CLOCK_TICKS_PER_SECOND / seconds * 100.0;
        let server_threads = self
            .cpu
            .server_threads
            .iter()
            .filter(|(_, t)| t.ticks > 0)
            .map(|(name, t)| format!("{name} {:.0}", pct(t.ticks)))
            .collect::<Vec<_>>()
            .join(", ");
        // Time the server's threads spent runnable but without a core, per read: the queueing a read's
        // request met in the server (HTTP workers, then the blocking pool with the database work).
        let waiting = self
            .cpu
            .server_threads
            .iter()
            .filter(|(_, t)| t.waiting_ns > 0)
            .map(|(name, t)| {
                format!(
                    "{name} {:.0}",
                    t.waiting_ns as f64 / 1e3 / self.reads.len().max(1) as f64
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let flooders = self.flood.as_ref().map_or(0, |f| f.flooder_ticks);
        let others = self
            .cpu
            .machine_busy
            .saturating_sub(self.cpu.server + self.cpu.database + self.cpu.bench);
        println!(
            "  round {} {:<8} {:>6} reads   p50 {:>6.2} ms   p99 {:>6.2} ms   server peak RSS {:.0} MB",
            self.round,
            if self.flood.is_some() { "flood" } else { "baseline" },
            self.reads.len(),
            ms(percentile(&self.reads, 0.5)),
            ms(percentile(&self.reads, 0.99)),
            self.rss_peak
        );
        println!(
            "      CPU, % of a core: machine {:.0} of {:.0}; server {:.0} ({server_threads}); PostgreSQL backends {:.0}; bench {:.0} (of which the \
             readers' threads {:.0} — their clients' I/O runs on reqwest's own threads — and the flooders' thread {:.0}); \
             other processes {:.0}",
            pct(self.cpu.machine_busy),
            pct(self.cpu.machine_total),
            pct(self.cpu.server),
            pct(self.cpu.database),
            pct(self.cpu.bench),
            pct(self.reader_ticks),
            pct(flooders),
            pct(others)
        );
        println!("      server threads runnable but waiting for a core, µs per read: {waiting}");
        if let Some(flood) = &self.flood {
            let answered: u64 = flood.flood.values().sum();
            // Each 401 and 200 is one password checked (one argon2 hash); 429 and 503 hash nothing.
            let checked = |answers: &BTreeMap<u16, u64>| {
                answers.get(&401).copied().unwrap_or(0) + answers.get(&200).copied().unwrap_or(0)
            };
            let hashes = checked(&flood.flood) + checked(&flood.known) + checked(&flood.new);
            println!(
                "      sign-ins: flood {:?} ({:.1}/s answered, {:.1} hashes/s with the field sign-ins); field: usual address {:?}, new address {:?}",
                flood.flood,
                answered as f64 / seconds,
                hashes as f64 / seconds,
                flood.known,
                flood.new
            );
        }
    }
}

/// `/proc` times are in clock ticks of `USER_HZ`, 100 a second on Linux.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// CPU clock ticks at one moment: the server process (all its threads, exited ones included), its live threads
/// by name (digits dropped, so `qip-hash-0` and `qip-hash-1` add up) with the time they spent runnable but
/// waiting for a core (`/proc/…/schedstat`, ns), this bench process, and the machine.
struct Snapshot {
    at: Instant,
    server: u64,
    /// PostgreSQL's backends serving the bench's database (none on SQLite, which runs inside the server).
    database: u64,
    server_threads: BTreeMap<String, ThreadTime>,
    bench: u64,
    machine_busy: u64,
    machine_total: u64,
}

/// A group of threads' CPU (clock ticks) and time spent waiting for a core (ns).
#[derive(Clone, Copy, Default)]
struct ThreadTime {
    ticks: u64,
    waiting_ns: u64,
}

/// CPU spent between two snapshots.
struct CpuSpent {
    wall: Duration,
    server: u64,
    database: u64,
    server_threads: BTreeMap<String, ThreadTime>,
    bench: u64,
    machine_busy: u64,
    machine_total: u64,
}

impl Snapshot {
    /// `backends`: the pids of the database's server processes to count (PostgreSQL's backends).
    fn take(pid: u32, backends: &[u32]) -> Snapshot {
        let mut server_threads = BTreeMap::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let name: String = comm.trim().chars().filter(|c| !c.is_ascii_digit()).collect();
            let ticks = stat_ticks(&task.path().join("stat").to_string_lossy());
            // schedstat: time on a core, time runnable but waiting for one, time slices.
            let waiting_ns = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().nth(1)?.parse().ok())
                .unwrap_or(0);
            let group: &mut ThreadTime = server_threads.entry(name).or_default();
            group.ticks += ticks;
            group.waiting_ns += waiting_ns;
        }
        let (machine_busy, machine_total) = machine_ticks();
        Snapshot {
            at: Instant::now(),
            server: stat_ticks(&format!("/proc/{pid}/stat")),
            database: backends
                .iter()
                .map(|b| stat_ticks(&format!("/proc/{b}/stat")))
                .sum(),
            server_threads,
            bench: stat_ticks("/proc/self/stat"),
            machine_busy,
            machine_total,
        }
    }

    fn since(&self, before: &Snapshot) -> CpuSpent {
        CpuSpent {
            wall: self.at.duration_since(before.at),
            server: self.server.saturating_sub(before.server),
            database: self.database.saturating_sub(before.database),
            server_threads: self
                .server_threads
                .iter()
                .map(|(name, t)| {
                    let earlier = before.server_threads.get(name).copied().unwrap_or_default();
                    let spent = ThreadTime {
                        ticks: t.ticks.saturating_sub(earlier.ticks),
                        waiting_ns: t.waiting_ns.saturating_sub(earlier.waiting_ns),
                    };
                    (name.clone(), spent)
                })
                .collect(),
            bench: self.bench.saturating_sub(before.bench),
            machine_busy: self.machine_busy.saturating_sub(before.machine_busy),
            machine_total: self.machine_total.saturating_sub(before.machine_total),
        }
    }
}

/// utime + stime of a `/proc/…/stat` file (fields 14 and 15; the fields after the parenthesised name are split
/// by spaces), in clock ticks; 0 when unreadable.
fn stat_ticks(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// The calling thread's CPU so far, in clock ticks.
fn own_thread_ticks() -> u64 {
    stat_ticks("/proc/thread-self/stat")
}

/// The machine's busy and total CPU ticks, all cores (`/proc/stat`: idle and iowait count as not busy).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// The pids of the PostgreSQL backends connected to `db_name` (the server's pooled connections); none on SQLite.
fn database_backends(pg_admin: &Option<String>, db_name: &str) -> Vec<u32> {
    #[derive(QueryableByName)]
    struct Backend {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let Some(admin) = pg_admin else {
        return Vec::new();
    };
    let mut c = PgConnection::establish(admin).unwrap();
    diesel::sql_query("SELECT pid FROM pg_stat_activity WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(db_name)
        .load::<Backend>(&mut c)
        .unwrap()
        .into_iter()
        .filter_map(|b| u32::try_from(b.pid).ok())
        .collect()
}

/// `/proc/loadavg`, as `uptime` prints it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default()
}

/// `flooders` clients, each from its own address, post wrong-password sign-ins (half for the real account, half
/// for unknown names) until `until`; the answers by status. Each round's flood comes from new addresses
/// (127.<10+round>.x.y), as a botnet's next wave would: the per-address limit (30 a minute) does not silence
/// the later rounds, so every round floods alike.
async fn flood_until(base: &str, flooders: usize, round: u64, until: Instant) -> BTreeMap<u16, u64> {
    let tasks: Vec<_> = (0..flooders)
        .map(|k| {
            let url = format!("{base}/api/v1/auth/login");
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .local_address(IpAddr::V4(Ipv4Addr::new(
                        127,
                        10 + round as u8,
                        (k / 250) as u8,
                        (k % 250) as u8 + 1,
                    )))
                    .build()
                    .unwrap();
                let mut answers: BTreeMap<u16, u64> = BTreeMap::new();
                let mut n = 0u64;
                while Instant::now() < until {
                    let username = if n % 2 == 0 {
                        "qip".to_owned()
                    } else {
                        format!("nobody-{round}-{k}-{n}")
                    };
                    let res = client
                        .post(&url)
                        .json(&json!({"username": username, "password": format!("wrong-password-{n}")}))
                        .send()
                        .await
                        .unwrap();
                    *answers.entry(res.status().as_u16()).or_insert(0) += 1;
                    let _ = res.bytes().await;
                    n += 1;
                }
                answers
            })
        })
        .collect();
    let mut answers: BTreeMap<u16, u64> = BTreeMap::new();
    for task in tasks {
        for (status, count) in task.await.unwrap() {
            *answers.entry(status).or_insert(0) += count;
        }
    }
    answers
}

/// Signs `username` in with the right password from `addr` once a second until `until`; the answers by status.
fn field_sign_ins(
    base: &str,
    addr: [u8; 4],
    username: &str,
    password: &str,
    until: Instant,
) -> BTreeMap<u16, u64> {
    let client = reqwest::blocking::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(addr)))
        .build()
        .unwrap();
    let mut answers: BTreeMap<u16, u64> = BTreeMap::new();
    std::thread::sleep(Duration::from_millis(500));
    while Instant::now() < until {
        let next = Instant::now() + Duration::from_secs(1);
        let status = client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .unwrap()
            .status()
            .as_u16();
        *answers.entry(status).or_insert(0) += 1;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    answers
}

/// The server's threads whose name starts with `prefix`, with their scheduling policy and nice value
/// (`/proc/<pid>/task/*/stat`; policy 0 is SCHED_OTHER, 3 SCHED_BATCH, 5 SCHED_IDLE).
fn thread_scheduling(pid: u32, prefix: &str) -> Vec<(String, &'static str, i64)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        // Field 19 is nice, 41 the policy; fields after the parenthesised name are split by spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let nice = fields.get(16).and_then(|v| v.parse().ok()).unwrap_or(0);
        let policy = match fields.get(38).and_then(|v| v.parse::<u32>().ok()) {
            Some(0) => "SCHED_OTHER",
            Some(3) => "SCHED_BATCH",
            Some(5) => "SCHED_IDLE",
            _ => "other",
        };
        found.push((comm.trim().to_owned(), policy, nice));
    }
    found.sort();
    found
}

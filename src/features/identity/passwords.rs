//! Password hashing with argon2id (PHC strings), at the configured cost, on a small pool of dedicated hashing
//! threads (each with one reused argon2 buffer, in the idle scheduling class) with a bounded queue, and a dummy hash
//! so that an unknown username costs the same time as a wrong password.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::AuthSettings;
use crate::error::AppError;

/// Jobs that may wait in the queue per hashing thread. With the wait bound (`hash_wait_ms`) this caps the
/// sign-ins parked on the blocking pool behind the hashers; a full queue is answered at once.
const QUEUED_PER_THREAD: usize = 16;

/// One hash to compute: told whether it waited past its deadline (then it must not hash, only answer). No
/// deadline when a thread was free as it was queued: it starts at once.
struct HashJob {
    deadline: Option<Instant>,
    run: HashWork,
}

/// The work of a job, given the thread's memory and whether it came too late (then it only answers).
type HashWork = Box<dyn FnOnce(&mut HashMemory, bool) + Send>;

/// The argon2 working memory of one hashing thread, allocated once at the largest cost seen and reused by every
/// hash on that thread: the process's memory stays flat however many sign-ins come (a fresh 19 MiB per hash
/// went back to malloc, which kept it in the thread's arena or returned it only to fault it in again).
#[derive(Default)]
pub struct HashMemory {
    blocks: Vec<Block>,
}

impl HashMemory {
    /// `count` blocks (grown on first use or for a costlier stored hash, never shrunk).
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.blocks.len() < count {
            self.blocks.resize(count, Block::default());
        }
        &mut self.blocks[..count]
    }
}

/// Runs password hashes on `threads` dedicated threads fed by a bounded queue. argon2id takes ~19 MiB and a
/// core per hash: on the threads of the blocking pool a sign-in flood from many addresses spread those buffers
/// over as many malloc arenas (RSS 550–650 MB) and took the cores of every other request. Here at most
/// `threads` hashes run at once, each thread reuses one buffer, with `low_priority` the threads run in the idle
/// scheduling class (any other request that wants a core takes it from a hash at once), and a hash that cannot start within `wait`
/// (or finds the queue full) is a 503 the client may retry, without spending any work.
pub struct HashPool {
    queue: Mutex<Option<SyncSender<HashJob>>>,
    wait: Duration,
    threads: u32,
    /// Jobs queued or running.
    pending: Arc<AtomicU32>,
}

impl HashPool {
    pub fn new(threads: u32, wait: Duration, low_priority: bool) -> Result<Self, String> {
        let threads = threads.max(1);
        let capacity = QUEUED_PER_THREAD * threads as usize;
        let (sender, receiver) = mpsc::sync_channel::<HashJob>(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let pending = Arc::new(AtomicU32::new(0));
        for n in 0..threads {
            let (receiver, pending) = (Arc::clone(&receiver), Arc::clone(&pending));
            std::thread::Builder::new()
                .name(format!("qip-hash-{n}"))
                .spawn(move || {
                    if low_priority {
                        lower_priority();
                    }
                    hash_worker(&receiver, &pending)
                })
                .map_err(|e| format!("cannot start password hashing thread: {e}"))?;
        }
        Ok(Self {
            queue: Mutex::new(Some(sender)),
            wait,
            threads,
            pending,
        })
    }

    /// Runs `work` on a hashing thread and waits for its answer. Refused with a retryable 503 when the queue is
    /// full, or when no thread took the job within the pool's wait.
    pub fn run<T, F>(&self, work: F) -> Result<T, AppError>
    where
        F: FnOnce(&mut HashMemory) -> Result<T, AppError> + Send + 'static,
        T: Send + 'static,
    {
        let busy =
            || AppError::retryable("Too many sign-ins are being checked right now; retry in a moment.");
        let (reply, answer) = mpsc::sync_channel::<Result<T, AppError>>(1);
        // Only a job that has to wait behind others gets a deadline (`hash_wait_ms = 0`: a free thread or 503).
        let ahead = self.pending.fetch_add(1, Ordering::SeqCst);
        let job = HashJob {
            deadline: (ahead >= self.threads).then(|| Instant::now() + self.wait),
            run: Box::new(move |memory, late| {
                let result = if late { Err(busy()) } else { work(memory) };
                // The caller may be gone (its request ended): nothing to tell then.
                let _ = reply.send(result);
            }),
        };
        let sent = {
            // A poisoned lock only means a sender panicked mid-send; the sender itself is intact.
            let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            match queue.as_ref() {
                Some(sender) => sender.try_send(job),
                None => return Err(AppError::internal("password hashing pool is shut down")),
            }
        };
        if let Err(refused) = sent {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(match refused {
                TrySendError::Full(_) => busy(),
                TrySendError::Disconnected(_) => AppError::internal("password hashing threads stopped"),
            });
        }
        answer
            .recv()
            .map_err(|_| AppError::internal("a password hashing thread stopped mid-hash"))?
    }

    /// Hashing threads (the most hashes running at once).
    pub fn threads(&self) -> u32 {
        self.threads
    }
}

impl Drop for HashPool {
    fn drop(&mut self) {
        // Dropping the sender ends the threads once the queue is drained.
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Puts this thread in the idle scheduling class (`SCHED_IDLE`): it runs on a core no other thread of the machine
/// wants, and a thread of the normal class that wakes up takes the core from it at once. At nice 19 (still the
/// normal class) a hash gets a smaller share but keeps the slice it is running, so a waking request could wait
/// behind it for up to a slice (milliseconds, about a read's whole time). Best effort: where the system refuses the idle class,
/// the thread falls back to nice 19, and where it refuses that too, it hashes at normal priority and says so.
fn lower_priority() {
    use thread_priority::{
        NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id,
    };
    let lowest = |policy| {
        set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(policy),
        )
    };
    if let Err(idle) = lowest(NormalThreadSchedulePolicy::Idle) {
        tracing::warn!(error = %idle, "cannot put the password hashing thread in SCHED_IDLE; trying nice 19");
        if let Err(e) = lowest(NormalThreadSchedulePolicy::Other) {
            tracing::warn!(error = %e, "cannot lower the password hashing thread's priority");
        }
    }
}

fn hash_worker(receiver: &Mutex<Receiver<HashJob>>, pending: &AtomicU32) {
    let mut memory = HashMemory::default();
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let late = job.deadline.is_some_and(|deadline| Instant::now() > deadline);
        // A panicking hash must not take the thread with it: its caller sees the dropped reply as an error.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(&mut memory, late)));
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The configured hasher, plus a hash of a random secret to verify against when the user does not exist.
#[derive(Clone)]
pub struct PasswordHashing {
    params: Params,
    dummy_hash: Arc<str>,
    pool: Arc<HashPool>,
}

impl PasswordHashing {
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        // At startup, on this thread: nothing else hashes yet.
        let random: [u8; 16] = rand::random();
        let dummy = hash_with(
            &params,
            &mut HashMemory::default(),
            hex::encode(random).as_bytes(),
        )
        .map_err(|e| format!("argon2 hashing failed: {e}"))?;
        Ok(Self {
            params,
            dummy_hash: Arc::from(dummy),
            pool: Arc::new(HashPool::new(
                settings.max_concurrent_hashes,
                Duration::from_millis(settings.hash_wait_ms),
                settings.hash_threads_low_priority,
            )?),
        })
    }

    /// A PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash` with a fresh random salt, computed on a hashing
    /// thread (the caller blocks: call it on the blocking pool and outside any database transaction).
    pub fn hash(&self, password: &str) -> Result<String, AppError> {
        let (params, password) = (self.params.clone(), password.to_owned());
        self.pool.run(move |memory| {
            hash_with(&params, memory, password.as_bytes())
                .map_err(|e| AppError::internal(format!("argon2 hashing failed: {e}")))
        })
    }

    /// Verifies against a stored PHC string (its own parameters are used) on a hashing thread. Unparseable
    /// hashes never match. Fails only when the hashing queue is full or no thread took it in time (503).
    pub fn verify(&self, password: &str, phc: &str) -> Result<bool, AppError> {
        let (password, phc) = (password.to_owned(), phc.to_owned());
        self.pool
            .run(move |memory| Ok(verify_with(memory, password.as_bytes(), &phc)))
    }

    /// Whether a stored PHC string is argon2id at the configured cost (memory, iterations, parallelism, output
    /// length). One that is not (stored before the settings changed) is hashed again at the next sign-in.
    pub fn is_current(&self, phc: &str) -> bool {
        let Ok(stored) = PasswordHash::new(phc) else {
            return false;
        };
        let Ok(params) = Params::try_from(&stored) else {
            return false;
        };
        stored.algorithm == Algorithm::Argon2id.ident()
            && stored.version == Some(Version::V0x13.into())
            && params.m_cost() == self.params.m_cost()
            && params.t_cost() == self.params.t_cost()
            && params.p_cost() == self.params.p_cost()
            && stored
                .hash
                .is_some_and(|hash| hash.len() == Params::DEFAULT_OUTPUT_LEN)
    }

    /// Spends the same work as a real verification, for unknown users.
    pub fn verify_dummy(&self, password: &str) -> Result<(), AppError> {
        self.verify(password, &self.dummy_hash).map(|_| ())
    }

    /// The pool the hashes run on.
    pub fn pool(&self) -> &HashPool {
        &self.pool
    }
}

/// argon2id at `params` with a fresh random salt into `memory`, as a PHC string.
fn hash_with(params: &Params, memory: &mut HashMemory, password: &[u8]) -> Result<String, String> {
    let salt = Salt::generate();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(password, &salt, &mut out, memory.blocks(params.block_count()))
        .map_err(|e| e.to_string())?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| e.to_string())?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| e.to_string())?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `phc` (its algorithm, version and cost), computed in `memory`.
/// What `argon2::PasswordVerifier` does, without allocating the working memory for each hash.
fn verify_with(memory: &mut HashMemory, password: &[u8], phc: &str) -> bool {
    let Ok(stored) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(stored.algorithm.as_str()) else {
        return false;
    };
    let version = match stored.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&stored) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if argon2
        .hash_password_into_with_memory(password, salt, &mut out, memory.blocks(params.block_count()))
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| &computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_the_threads_hash_at_once() {
        let pool = Arc::new(HashPool::new(2, Duration::from_secs(5), true).expect("pool"));
        let (now, peak) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        std::thread::scope(|s| {
            for _ in 0..8 {
                let (pool, now, peak) = (Arc::clone(&pool), Arc::clone(&now), Arc::clone(&peak));
                s.spawn(move || {
                    pool.run(move |_| {
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(running, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        now.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .expect("answered within 5 s");
                });
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_job_that_waited_past_the_deadline_is_refused_without_running() {
        let pool = Arc::new(HashPool::new(1, Duration::from_millis(30), true).expect("pool"));
        let ran = Arc::new(AtomicU32::new(0));
        // Channels, not sleeps, order the jobs: the blocker holds the only thread until the late job's
        // deadline has certainly passed, whatever the machine's load.
        let (started, blocker_running) = mpsc::channel::<()>();
        let (release, hold) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            let blocker = Arc::clone(&pool);
            s.spawn(move || {
                blocker.run(move |_| {
                    let _ = started.send(());
                    let _ = hold.recv();
                    Ok(())
                })
            });
            blocker_running.recv().expect("the blocker runs");
            let late = Arc::clone(&pool);
            let counted = Arc::clone(&ran);
            let waiter = s.spawn(move || late.run(move |_| Ok(counted.fetch_add(1, Ordering::SeqCst))));
            while pool.pending.load(Ordering::SeqCst) < 2 {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(60));
            release.send(()).expect("release");
            let refused = waiter
                .join()
                .expect("thread")
                .expect_err("no thread free within 30 ms");
            assert_eq!(refused.kind().status().as_u16(), 503);
        });
        assert_eq!(ran.load(Ordering::SeqCst), 0, "the late job spent no work");
        assert!(
            pool.run(|_| Ok(())).is_ok(),
            "free again once the first hash ends"
        );
    }

    #[test]
    fn a_full_queue_is_refused_at_once() {
        let pool = Arc::new(HashPool::new(1, Duration::from_secs(5), true).expect("pool"));
        let (release, hold) = mpsc::channel::<()>();
        let hold = Arc::new(Mutex::new(hold));
        std::thread::scope(|s| {
            let blocker = Arc::clone(&pool);
            let held = Arc::clone(&hold);
            let (started, blocker_running) = mpsc::channel::<()>();
            s.spawn(move || {
                blocker.run(move |_| {
                    let _ = started.send(());
                    let _ = held.lock().expect("lock").recv();
                    Ok(())
                })
            });
            blocker_running.recv().expect("the blocker runs");
            let waiting: Vec<_> = (0..QUEUED_PER_THREAD)
                .map(|_| {
                    let pool = Arc::clone(&pool);
                    s.spawn(move || pool.run(|_| Ok(())))
                })
                .collect();
            // Every waiter has counted itself before the last one knocks; the pause covers the step from
            // counting to enqueueing.
            while (pool.pending.load(Ordering::SeqCst) as usize) < 1 + QUEUED_PER_THREAD {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(50));
            let started = Instant::now();
            let refused = pool.run(|_| Ok(())).expect_err("queue full");
            assert_eq!(refused.kind().status().as_u16(), 503);
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "refused without waiting"
            );
            release.send(()).expect("release");
            for w in waiting {
                assert!(w.join().expect("thread").is_ok());
            }
        });
    }

    #[test]
    fn hashes_verify_and_wrong_passwords_do_not() {
        let settings = crate::config::Settings::load_from(None, Vec::<(String, String)>::new())
            .expect("default settings")
            .auth;
        let hashing = PasswordHashing::new(&settings).expect("hashing");
        let phc = hashing.hash("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(hashing.verify("correct horse", &phc).expect("verify"));
        assert!(!hashing.verify("wrong horse", &phc).expect("verify"));
        assert!(!hashing.verify("x", "not a phc string").expect("verify"));
        // Hashes stored by the argon2 crate's own hasher (every hash before the reused buffers) still verify,
        // and ours verify with its verifier.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, hashing.params.clone());
        let theirs = argon2.hash_password(b"tr0ub4dor").expect("hash").to_string();
        assert!(hashing.verify("tr0ub4dor", &theirs).expect("verify"));
        assert!(!hashing.verify("tr0ub4dor&3", &theirs).expect("verify"));
        assert!(argon2.verify_password(b"correct horse", phc.as_str()).is_ok());
        assert_eq!(hashing.pool().threads(), settings.max_concurrent_hashes);
    }

    #[test]
    fn a_hash_is_current_only_at_the_configured_algorithm_and_cost() {
        use argon2::password_hash::PasswordHasher;
        let mut settings = crate::config::Settings::load_from(None, Vec::<(String, String)>::new())
            .expect("default settings")
            .auth;
        (settings.argon2_memory_kib, settings.argon2_iterations) = (1024, 2);
        let hashing = PasswordHashing::new(&settings).expect("hashing");
        assert!(hashing.is_current(&hashing.hash("correct horse").expect("hash")));
        let other = |algorithm, m, t, p| {
            Argon2::new(
                algorithm,
                Version::V0x13,
                Params::new(m, t, p, None).expect("params"),
            )
            .hash_password(b"correct horse")
            .expect("hash")
            .to_string()
        };
        assert!(hashing.is_current(&other(Algorithm::Argon2id, 1024, 2, 1)));
        assert!(!hashing.is_current(&other(Algorithm::Argon2id, 512, 2, 1)));
        assert!(!hashing.is_current(&other(Algorithm::Argon2id, 1024, 3, 1)));
        assert!(!hashing.is_current(&other(Algorithm::Argon2id, 1024, 2, 2)));
        assert!(!hashing.is_current(&other(Algorithm::Argon2i, 1024, 2, 1)));
        let v10 = Argon2::new(Algorithm::Argon2id, Version::V0x10, hashing.params.clone())
            .hash_password(b"correct horse")
            .expect("hash")
            .to_string();
        assert!(!hashing.is_current(&v10));
        assert!(!hashing.is_current("not a phc string"));
    }

    /// The calling thread's scheduling policy (field 41 of /proc/thread-self/stat, 0 SCHED_OTHER, 5 SCHED_IDLE)
    /// and nice (field 19), counted after the name's `)`.
    fn own_scheduling() -> (u32, i64) {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let field = |n: usize| fields.get(n).copied().unwrap_or("-1");
        (
            field(38).parse().unwrap_or(u32::MAX),
            field(16).parse().unwrap_or(i64::MIN),
        )
    }

    #[test]
    fn hashing_threads_run_in_the_idle_class_when_asked() {
        let low = HashPool::new(1, Duration::from_secs(5), true).expect("pool");
        assert_eq!(low.run(|_| Ok(own_scheduling().0)).expect("ran"), 5, "SCHED_IDLE");
        let normal = HashPool::new(1, Duration::from_secs(5), false).expect("pool");
        assert_eq!(
            normal.run(|_| Ok(own_scheduling())).expect("ran"),
            own_scheduling()
        );
    }

    #[test]
    fn a_hashing_thread_reuses_its_memory() {
        let pool = HashPool::new(1, Duration::from_secs(5), true).expect("pool");
        let first = pool
            .run(|memory| Ok(memory.blocks(1024).as_ptr() as usize))
            .expect("ran");
        let again = pool
            .run(|memory| Ok(memory.blocks(512).as_ptr() as usize))
            .expect("ran");
        assert_eq!(first, again, "the same buffer, not a new allocation");
    }
}

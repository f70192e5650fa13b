//! Group commit of concurrent money requests (PostgreSQL): requests that arrive while batches are being written
//! wait and go together in the next one — one statement, one commit and one flush of the write-ahead log for
//! many requests, each with its own idempotency record and audit event (issue 14; TigerBeetle's batching).
//!
//! No thread of its own: a request that arrives while fewer than `ledger.group_commit_writers` batches are
//! being written writes one (it "leads"), on its own connection, with every request queued by then, up to
//! `ledger.group_commit_max`; the others queue, and when a leader is done the first of them leads the next
//! batch. A request is answered only after the commit of the batch that holds it. A request whose key is
//! already recorded is not written by its batch, and a batch that fails writes nothing (one transaction); each
//! such request is then answered on its own by the general path (`idempotency::run`): a replay, a 422, a
//! refusal with its figures, or the posting.

use std::collections::{BTreeSet, VecDeque};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::Duration;
use prometheus::{IntCounter, IntGauge};

use super::idempotency::{self, IdempotentRequest, StoredResponse};
use super::repo::{self, EntryRow, TransactionRow};
use crate::db::{self, DbConn};
use crate::error::AppResult;
use crate::features::audit::{self, repo::AuditEventRow};

/// One money request, worked out and ready to be written.
pub struct Pending {
    pub request: IdempotentRequest,
    /// The answer it stores and sends once written.
    pub response: StoredResponse,
    pub retention: Duration,
    pub event: AuditEventRow,
    pub row: TransactionRow,
    pub entries: Vec<EntryRow>,
    /// Each of its accounts' net change.
    pub changes: Vec<(String, i64)>,
}

/// The queue of requests waiting for the next batch, shared by every request of the app.
pub struct GroupCommit {
    queue: Mutex<Queue>,
    max_batch: usize,
    writers: usize,
    /// Batches committed, and the requests they held (their ratio is the mean batch).
    batches: IntCounter,
    grouped: IntCounter,
    /// Requests of batches that wrote nothing, each then answered on its own.
    fell_back: IntCounter,
    /// Requests queued for the next batch right now.
    waiting: IntGauge,
}

struct Queue {
    waiting: VecDeque<Waiting>,
    /// Requests writing a batch right now (at most `writers`).
    leaders: usize,
}

struct Waiting {
    pending: Pending,
    turn: SyncSender<Turn>,
}

/// What a queued request is told.
enum Turn {
    /// The batch holding it was committed (`true`) or wrote nothing (`false`).
    Written(bool),
    /// Write the next batch, starting with this request (taken off the queue).
    Lead(Box<Pending>),
}

impl GroupCommit {
    /// `max_batch`: most requests in one statement (1: every request alone, still in one statement);
    /// `writers`: batches written at once (one can run while another waits for its commit to be flushed).
    pub fn new(max_batch: usize, writers: usize) -> Result<Self, prometheus::Error> {
        Ok(Self {
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                leaders: 0,
            }),
            max_batch: max_batch.max(1),
            writers: writers.max(1),
            batches: IntCounter::new(
                "ledger_group_commit_batches_total",
                "Batches of money requests written in one statement and commit (PostgreSQL).",
            )?,
            grouped: IntCounter::new(
                "ledger_group_commit_requests_total",
                "Money requests written in a committed batch.",
            )?,
            waiting: IntGauge::new(
                "ledger_group_commit_waiting",
                "Money requests queued for the next group-commit batch right now.",
            )?,
            fell_back: IntCounter::new(
                "ledger_group_commit_fallbacks_total",
                "Money requests not written by their batch (a key already recorded, a refusal, contention), \
                 each then answered on its own.",
            )?,
        })
    }

    /// Its counters, for the app's `/metrics`.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.batches.clone()),
            Box::new(self.grouped.clone()),
            Box::new(self.fell_back.clone()),
            Box::new(self.waiting.clone()),
        ]
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `pending` in a batch — on `conn`, with the requests queued by then, if fewer than `writers`
    /// batches are being written; otherwise queued for the next — and answers whether it was written
    /// (`false`: nothing was written for it, and the caller answers it on its own).
    pub fn write(&self, conn: &mut DbConn, pending: Pending) -> bool {
        let mut queue = self.queue();
        if queue.leaders < self.writers {
            queue.leaders += 1;
            drop(queue);
            return self.lead(conn, pending);
        }
        let (sender, turn) = sync_channel(1);
        queue.waiting.push_back(Waiting {
            pending,
            turn: sender,
        });
        self.waiting.set(gauge(queue.waiting.len()));
        drop(queue);
        match turn.recv() {
            Ok(Turn::Written(written)) => written,
            Ok(Turn::Lead(pending)) => self.lead(conn, *pending),
            // The leader is gone without an answer (it cannot be: it answers or hands on even when unwinding);
            // nothing is known to be written, and the key guards a second attempt.
            Err(_) => false,
        }
    }

    /// Writes one batch — `mine` and the first queued requests, at most `max_batch`, no two with one key — then
    /// hands the lead to the first request still waiting (or frees its place).
    fn lead(&self, conn: &mut DbConn, mine: Pending) -> bool {
        let _hand_on = HandOn(self);
        let (batch, turns) = self.next_batch(mine);
        let written = write_batch(conn, &batch);
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let grouped = written.iter().filter(|w| **w).count();
        if grouped > 0 {
            self.batches.inc();
            self.grouped.inc_by(count(grouped));
        }
        self.fell_back.inc_by(count(written.len() - grouped));
        for (sender, written) in turns.into_iter().zip(written.iter().skip(1)) {
            // A request that went away (its thread ended) needs no answer.
            let _ = sender.send(Turn::Written(*written));
        }
        written.first().copied().unwrap_or(false)
    }

    /// `mine` first, then the first waiting requests whose keys differ from the batch's (the others keep
    /// their place for the next), with the senders that answer them.
    fn next_batch(&self, mine: Pending) -> (Vec<Pending>, Vec<SyncSender<Turn>>) {
        let mut queue = self.queue();
        let mut keys = BTreeSet::from([(mine.request.user_id.clone(), mine.request.key.clone())]);
        let (mut batch, mut turns) = (vec![mine], Vec::new());
        let mut later = VecDeque::new();
        while let Some(waiting) = queue.waiting.pop_front() {
            if batch.len() == self.max_batch {
                later.push_back(waiting);
                later.extend(queue.waiting.drain(..));
                break;
            }
            let key = (
                waiting.pending.request.user_id.clone(),
                waiting.pending.request.key.clone(),
            );
            if keys.insert(key) {
                batch.push(waiting.pending);
                turns.push(waiting.turn);
            } else {
                later.push_back(waiting);
            }
        }
        queue.waiting = later;
        self.waiting.set(gauge(queue.waiting.len()));
        (batch, turns)
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Hands the lead on when a leader returns (or unwinds): the first waiting request writes the next batch, or,
/// with none waiting, the place is free for whoever comes next.
struct HandOn<'a>(&'a GroupCommit);

impl Drop for HandOn<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.queue();
        while let Some(next) = queue.waiting.pop_front() {
            self.0.waiting.set(gauge(queue.waiting.len()));
            // A waiting request has been told nothing yet, so its channel has room; one that went away
            // cannot lead, and the next is asked.
            if next.turn.send(Turn::Lead(Box::new(next.pending))).is_ok() {
                return;
            }
        }
        queue.leaders = queue.leaders.saturating_sub(1);
    }
}

/// Writes one batch in one transaction; for each request, whether it was written (`false`: its key was
/// already recorded, or the whole batch wrote nothing).
fn write_batch(conn: &mut DbConn, batch: &[Pending]) -> Vec<bool> {
    let outcome = db::write_tx(conn, |tx| -> AppResult<Vec<(String, String)>> {
        let postings = batch
            .iter()
            .map(|p| repo::BatchPosting {
                user_id: &p.request.user_id,
                key: &p.request.key,
                key_record: idempotency::done_record(
                    &p.request,
                    &p.response,
                    Some(p.row.id.clone()),
                    p.retention,
                ),
                event: audit::event_fields(&p.event),
                row: &p.row,
                entries: &p.entries,
                changes: &p.changes,
            })
            .collect();
        let written = repo::post_batch_pg(tx, postings)?;
        for p in batch {
            if written.contains(&(p.request.user_id.clone(), p.request.key.clone())) {
                audit::appended(tx, &p.event)?;
            }
        }
        Ok(written)
    });
    match outcome {
        Ok(written) => batch
            .iter()
            .map(|p| written.contains(&(p.request.user_id.clone(), p.request.key.clone())))
            .collect(),
        Err(e) => {
            // A guard, an overflow or contention: each request is answered on its own.
            tracing::info!(requests = batch.len(), error = %e, "group commit wrote nothing; each request runs on its own");
            vec![false; batch.len()]
        }
    }
}

//! Group commit of concurrent money requests (PostgreSQL): requests that arrive while a batch is being written
//! wait and go together in the next one — one statement, one commit and one flush of the write-ahead log for
//! many requests, each with its own idempotency record and audit event (issue 14; TigerBeetle's batching).
//!
//! No thread of its own: the first request to arrive writes (it "leads"), on its own connection, every
//! request queued by then, up to `ledger.group_commit_max`; requests arriving meanwhile queue for the next
//! batch, which the first of them writes once the lead is handed on. A request is answered only after the
//! commit of the batch that holds it. A batch that fails writes nothing (one transaction), and each of its
//! requests is then answered on its own by the general path (`idempotency::run`): a replay, a refusal with
//! its figures, or the posting.

use std::collections::{BTreeSet, VecDeque};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
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
    /// A request is writing batches (and will hand the lead on when its own is written).
    leading: bool,
}

struct Waiting {
    pending: Pending,
    turn: SyncSender<Turn>,
}

/// What a queued request is told.
enum Turn {
    /// The batch holding it was committed (`true`) or wrote nothing (`false`).
    Written(bool),
    /// Write the next batch.
    Lead,
}

impl GroupCommit {
    /// `max_batch`: most requests in one statement (1: every request alone, still in one statement).
    pub fn new(max_batch: usize) -> Result<Self, prometheus::Error> {
        Ok(Self {
            queue: Mutex::new(Queue {
                waiting: VecDeque::new(),
                leading: false,
            }),
            max_batch: max_batch.max(1),
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
                "Money requests of batches that wrote nothing (a replay, a refusal, contention), each then \
                 answered on its own.",
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

    /// Writes `pending` in the next batch, on `conn` if this request leads it; whether it was written
    /// (`false`: nothing was written for it, and the caller answers it on its own).
    pub fn write(&self, conn: &mut DbConn, pending: Pending) -> bool {
        let (sender, turn) = sync_channel(1);
        {
            let mut queue = self.queue();
            queue.waiting.push_back(Waiting {
                pending,
                turn: sender,
            });
            self.waiting.set(gauge(queue.waiting.len()));
            if queue.leading {
                drop(queue);
                match turn.recv() {
                    Ok(Turn::Written(written)) => return written,
                    Ok(Turn::Lead) => {}
                    // The leader is gone without an answer (it cannot be: it answers or hands on even when
                    // unwinding); nothing is known to be written, and the key guards a second attempt.
                    Err(_) => return false,
                }
            } else {
                queue.leading = true;
            }
        }
        self.lead(conn, &turn)
    }

    /// Writes batches until this request's own is written, then hands the lead to the first request still
    /// waiting (or leaves it free).
    fn lead(&self, conn: &mut DbConn, turn: &Receiver<Turn>) -> bool {
        let _hand_on = HandOn(self);
        loop {
            let batch = self.next_batch();
            let (pendings, turns): (Vec<Pending>, Vec<SyncSender<Turn>>) =
                batch.into_iter().map(|w| (w.pending, w.turn)).unzip();
            let written = write_batch(conn, &pendings);
            let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            let grouped = written.iter().filter(|w| **w).count();
            if grouped > 0 {
                self.batches.inc();
                self.grouped.inc_by(count(grouped));
            }
            self.fell_back.inc_by(count(written.len() - grouped));
            for (sender, written) in turns.into_iter().zip(written) {
                // A sender whose request went away (its thread ended) needs no answer.
                let _ = sender.send(Turn::Written(written));
            }
            if let Ok(Turn::Written(mine)) = turn.try_recv() {
                return mine;
            }
        }
    }

    /// The first waiting requests, at most `max_batch`, no two with one key (the later waits for the next).
    fn next_batch(&self) -> Vec<Waiting> {
        let mut queue = self.queue();
        let mut keys = BTreeSet::new();
        let mut batch = Vec::new();
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
                batch.push(waiting);
            } else {
                later.push_back(waiting);
            }
        }
        queue.waiting = later;
        self.waiting.set(gauge(queue.waiting.len()));
        batch
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Hands the lead on when the leader returns (or unwinds): to the first waiting request, which then writes
/// the next batch, or to whoever comes next.
struct HandOn<'a>(&'a GroupCommit);

impl Drop for HandOn<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.queue();
        match queue.waiting.front() {
            Some(next) => {
                // Its channel is empty: a waiting request has been told nothing yet.
                let _ = next.turn.send(Turn::Lead);
            }
            None => queue.leading = false,
        }
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

//! The writing connection's own thread, and its group commit.
//!
//! Every write of [`super::SqliteStore`] (a commit, a secret) is queued here. The thread takes
//! the first waiting write and every other already in the queue (at most [`MAX_GROUP`]) and
//! runs them in ONE `BEGIN IMMEDIATE` transaction, so the group costs one fsync instead of one
//! per write: under load the commit rate is no longer bound by the disk's sync latency.
//!
//! - Each write runs in its own `SAVEPOINT`: a write that fails (a [`Rejection`], say) is
//!   rolled back to it, so it commits nothing and its neighbours keep their changes.
//! - Writes run in queue order, so a later write of the same image reads the head (and rows)
//!   the earlier one wrote: `seq` stays gap-free and ordered, and a retry in the same group is
//!   recognised as a duplicate, exactly as if they had been committed one by one.
//! - Every caller is answered only after the group's `COMMIT` has returned (acknowledged means
//!   durable); if the transaction fails as a whole (`BEGIN`, a savepoint, or `COMMIT`), every
//!   write of the group gets that error, since none of them is on disk.
//! - The bound keeps one group's latency (and the time the database's write lock is held)
//!   short; the queue is never waited on to fill up, so a lone write goes at once.
//!
//! [`Rejection`]: crate::store::Rejection

use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::lock;
use super::tx::SqliteTx;
use crate::store::StoreError;

/// Most writes committed in one transaction, by default (`SqliteConfig::max_group`).
pub(super) const MAX_GROUP: usize = 64;

/// The queue to the writer thread. The thread ends when this is dropped (after the writes
/// already queued).
#[derive(Debug)]
pub(super) struct Writer {
    queue: Sender<Box<dyn Queued>>,
    /// Whether callers wait for their answer on tokio's blocking pool (see [`Self::write`]).
    blocking_wait: bool,
}

impl Writer {
    /// Starts the writer thread on `conn`, committing at most `max_group` writes together;
    /// `blocking_wait`: see [`Self::write`]. The thread locks the connection for each group
    /// only, so others may briefly use it between groups (tests inspect it that way).
    pub(super) fn start(
        conn: Arc<Mutex<Connection>>,
        max_group: usize,
        blocking_wait: bool,
    ) -> Result<Self, StoreError> {
        let max_group = max_group.max(1);
        let (queue, waiting) = channel::<Box<dyn Queued>>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                while let Some(group) = next_group(&waiting, max_group) {
                    commit_group(&conn, group);
                }
            })
            .map_err(|e| StoreError::Backend(format!("sqlite: starting the writer thread: {e}")))?;
        Ok(Self {
            queue,
            blocking_wait,
        })
    }

    /// Runs `f` in the next group's transaction (in a savepoint of its own) and returns its
    /// result once that transaction has committed.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteTx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Write {
            f: Some(f),
            out: None,
            reply,
        };
        self.queue.send(Box::new(job)).map_err(|_| writer_gone())?;
        if !self.blocking_wait {
            // The server: one thread hand-off per write (writer thread → this task).
            return answer.await.map_err(|_| writer_gone())?;
        }
        // Waited for on tokio's blocking pool rather than as a plain future: tokio's paused test
        // clock does not jump ahead while a blocking task runs, so a commit takes no virtual
        // time (as when writes ran on the blocking pool themselves) and timers in tests of
        // the layers above stay deterministic. It holds a blocking thread per waiting write,
        // as the connection's mutex did before, and costs a second thread hand-off per write
        // (writer thread → blocking thread → this task): under a busy image, on loaded cores,
        // that hand-off was a large part of every op's ack time (docs/BENCHMARKS.md).
        tokio::task::spawn_blocking(move || answer.blocking_recv())
            .await
            .map_err(|e| StoreError::Backend(format!("sqlite: blocking task failed: {e}")))?
            .map_err(|_| writer_gone())?
    }
}

/// The writer thread ended (it panicked): nothing more can be written.
fn writer_gone() -> StoreError {
    StoreError::Backend("sqlite: the writer thread stopped".into())
}

/// The next group: the first write to arrive (waiting for it), then whatever else is already
/// queued, up to `max`. `None` once the queue is closed and empty.
fn next_group<T>(queue: &Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = queue.recv().ok()?;
    let mut group = vec![first];
    while group.len() < max {
        match queue.try_recv() {
            Ok(next) => group.push(next),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
        }
    }
    Some(group)
}

/// Runs `group` in one transaction, then answers every caller.
fn commit_group(conn: &Mutex<Connection>, mut group: Vec<Box<dyn Queued>>) {
    let outcome = lock(conn).and_then(|mut conn| run_group(&mut conn, &mut group));
    let outcome = outcome.map_err(|e| match e {
        StoreError::Backend(message) => message,
        other => other.to_string(),
    });
    for job in group {
        job.answer(outcome.clone());
    }
}

/// Savepoint of the write in progress (one at a time, released before the next).
const SAVEPOINT: &str = "SAVEPOINT group_op";
const RELEASE: &str = "RELEASE group_op";
const UNDO: &str = "ROLLBACK TO group_op; RELEASE group_op";

fn run_group(conn: &mut Connection, group: &mut [Box<dyn Queued>]) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in group.iter_mut() {
        tx.execute_batch(SAVEPOINT)?;
        // Fails (and so fails the group) if SQLite already rolled the whole transaction back
        // after the write's error (a full disk, an I/O error): the earlier writes are gone too.
        tx.execute_batch(if job.run(&mut SqliteTx(&tx)) {
            RELEASE
        } else {
            UNDO
        })?;
    }
    // Dropping `tx` on an error above rolls the group back.
    tx.commit()?;
    Ok(())
}

/// A write waiting in the queue, its result type erased so one queue holds every kind.
trait Queued: Send {
    /// Runs the write in the open transaction; `false` if it failed (undo its changes).
    fn run(&mut self, tx: &mut SqliteTx<'_>) -> bool;

    /// Answers the caller once the group is over: its own result if the group committed (or
    /// if the write itself failed), else the group's error.
    fn answer(self: Box<Self>, group: Result<(), String>);
}

struct Write<T, F> {
    f: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Queued for Write<T, F>
where
    T: Send,
    F: FnOnce(&mut SqliteTx<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, tx: &mut SqliteTx<'_>) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let out = f(tx);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn answer(self: Box<Self>, group: Result<(), String>) {
        let out = match (self.out, group) {
            // A failed write committed nothing, whatever became of the group.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(out)), Ok(())) => Ok(out),
            (_, Err(e)) => Err(StoreError::Backend(e)),
            (None, Ok(())) => Err(StoreError::Backend(
                "sqlite: a write of a committed group was never run".into(),
            )),
        };
        // The caller may have stopped waiting (a client disconnected): nothing to tell.
        let _ = self.reply.send(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Rejection;

    /// A connection with a table to write in, and a queued write that inserts `value` then
    /// returns `result`, with the receiver of its answer.
    fn table() -> Mutex<Connection> {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .expect("create");
        Mutex::new(conn)
    }

    type Answer = oneshot::Receiver<Result<i64, StoreError>>;

    fn insert(value: i64, result: Result<i64, Rejection>) -> (Box<dyn Queued>, Answer) {
        let (reply, answer) = oneshot::channel();
        let f = move |tx: &mut SqliteTx<'_>| {
            tx.0.execute("INSERT INTO t (v) VALUES (?1)", [value])?;
            Ok(result?)
        };
        let job = Write {
            f: Some(f),
            out: None,
            reply,
        };
        (Box::new(job), answer)
    }

    fn rows(conn: &Mutex<Connection>) -> Vec<i64> {
        let conn = conn.lock().expect("lock");
        let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v").expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn a_failed_write_undoes_only_its_own_changes() {
        let conn = table();
        let (a, answer_a) = insert(1, Ok(1));
        let (b, answer_b) = insert(2, Err(Rejection::Forbidden));
        let (c, answer_c) = insert(3, Ok(3));
        commit_group(&conn, vec![a, b, c]);
        assert!(matches!(answer_a.blocking_recv(), Ok(Ok(1))));
        assert!(matches!(
            answer_b.blocking_recv(),
            Ok(Err(StoreError::Rejected(Rejection::Forbidden)))
        ));
        assert!(matches!(answer_c.blocking_recv(), Ok(Ok(3))));
        assert_eq!(rows(&conn), [1, 3]);
    }

    #[test]
    fn when_the_transaction_fails_every_write_of_the_group_fails() {
        let conn = table();
        let (a, answer_a) = insert(1, Ok(1));
        // Ends the transaction under the group's feet, as SQLite does itself after some errors
        // (a full disk, an I/O error): the first write is lost with it.
        let (reply, answer_b) = oneshot::channel::<Result<i64, StoreError>>();
        let b = Box::new(Write {
            f: Some(|tx: &mut SqliteTx<'_>| {
                tx.0.execute_batch("ROLLBACK")?;
                Err(StoreError::Backend("disk I/O error".into()))
            }),
            out: None,
            reply,
        });
        let (c, answer_c) = insert(3, Ok(3));
        commit_group(&conn, vec![a, b, c]);
        assert!(matches!(
            answer_a.blocking_recv(),
            Ok(Err(StoreError::Backend(_)))
        ));
        assert!(matches!(
            answer_b.blocking_recv(),
            Ok(Err(StoreError::Backend(_)))
        ));
        assert!(matches!(
            answer_c.blocking_recv(),
            Ok(Err(StoreError::Backend(_)))
        ));
        assert!(rows(&conn).is_empty(), "nothing of the group is committed");
        // The connection is usable again for the next group.
        let (d, answer_d) = insert(4, Ok(4));
        commit_group(&conn, vec![d]);
        assert!(matches!(answer_d.blocking_recv(), Ok(Ok(4))));
        assert_eq!(rows(&conn), [4]);
    }

    #[test]
    fn a_group_is_what_is_already_queued_up_to_the_bound() {
        let (tx, rx) = channel();
        for i in 0..5 {
            tx.send(i).expect("send");
        }
        assert_eq!(next_group(&rx, 3), Some(vec![0, 1, 2]));
        assert_eq!(next_group(&rx, 3), Some(vec![3, 4]));
        tx.send(9).expect("send");
        assert_eq!(next_group(&rx, 3), Some(vec![9]));
        drop(tx);
        assert_eq!(next_group(&rx, 3), None);
    }
}

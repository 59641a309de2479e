//! A connection's ops in flight: the session reads the client's next op while earlier ones
//! commit, up to [`DEPTH`] at once, and replies to them in the order they were sent.
//!
//! One op at a time made each op cost a full round of the session's task: read, commit, wake,
//! reply, read again. On a busy image that task waits for a CPU slice behind every viewer's
//! delivery, so a poster could not keep up with its own rate and its acks fell seconds behind
//! (docs/BENCHMARKS.md, "The busy image"). With several ops in flight they share the store's
//! group commits and the task's wakes. The order the ops commit in is not this module's: each
//! op takes a [`Turn`] here and waits for it before asking for its image's lock
//! ([`App::commit_after`](crate::app::App::commit_after)).

use std::future::Future;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;

use crate::app::{Turn, Turns};

/// Ops one connection may have in flight. Each holds at most one frame's text; the session's
/// rate and byte budgets bound how fast they come, this bounds how many wait.
pub const DEPTH: usize = 16;

/// The ops in flight of one connection, each a future that commits the op and yields its
/// reply.
pub struct OpPipeline<F: Future> {
    /// `None` while idle, and boxed: an idle connection's task holds one pointer for its
    /// ops, not the set's ~70 bytes and the allocation it makes on creation.
    running: Option<Box<FuturesOrdered<F>>>,
    /// The ops' order on their way to the image's lock.
    sent: Turns,
}

impl<F: Future> Default for OpPipeline<F> {
    fn default() -> Self {
        Self {
            running: None,
            sent: Turns::default(),
        }
    }
}

impl<F: Future> OpPipeline<F> {
    /// No op in flight.
    pub fn is_empty(&self) -> bool {
        self.running.as_ref().is_none_or(|ops| ops.is_empty())
    }

    /// [`DEPTH`] ops in flight: read no more until one is answered.
    pub fn is_full(&self) -> bool {
        self.running.as_ref().is_some_and(|ops| ops.len() >= DEPTH)
    }

    /// Starts an op: `start` makes its future from the op's turn, which it must wait for
    /// before asking for its image's lock (the turn ends those of every op sent before it).
    /// The set keeps each future in a node of its own: no box needed around it.
    pub fn push(&mut self, start: impl FnOnce(Turn) -> F) {
        let op = start(self.sent.next_turn());
        self.running
            .get_or_insert_with(|| Box::new(FuturesOrdered::new()))
            .push_back(op);
    }

    /// The reply of the oldest op once it is done; later ops that finish first wait for it.
    /// `Pending` with no op in flight.
    pub fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(running) = self.running.as_mut() else {
            return Poll::Pending;
        };
        match running.poll_next_unpin(cx) {
            Poll::Ready(Some(reply)) => {
                if running.is_empty() {
                    self.running = None;
                }
                Poll::Ready(reply)
            }
            // Empty: nothing to wait for (it is dropped when the last reply is taken).
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    /// Waits for every op in flight to finish (their replies are dropped): a session that
    /// ends leaves no op committed and unpublished.
    pub async fn finish(&mut self) {
        if let Some(running) = self.running.take() {
            running.for_each(|_| async {}).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use futures_channel::oneshot;

    use super::*;

    /// An op that finishes when its channel is fed, yielding what it was fed.
    async fn op(
        mut turn: Turn,
        done: oneshot::Receiver<u32>,
        order: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
        id: u32,
    ) -> u32 {
        turn.wait().await;
        order.lock().unwrap().push(id);
        drop(turn);
        done.await.unwrap_or(0)
    }

    #[tokio::test]
    async fn replies_in_the_order_sent_though_later_ops_finish_first() {
        let mut pipeline = OpPipeline::default();
        let order = std::sync::Arc::default();
        let mut finish = Vec::new();
        for id in 0..3 {
            let (tx, rx) = oneshot::channel();
            finish.push(tx);
            let order = std::sync::Arc::clone(&order);
            pipeline.push(|turn| op(turn, rx, order, id));
        }
        assert!(!pipeline.is_empty());
        // The last two finish first; nothing is answered before the first.
        let mut finish = finish.into_iter();
        let first = finish.next().unwrap();
        for (tx, value) in finish.zip([12, 13]) {
            tx.send(value).unwrap();
        }
        let pending = poll_fn(|cx| Poll::Ready(pipeline.poll_reply(cx))).await;
        assert!(pending.is_pending());
        first.send(11).unwrap();
        let mut replies = Vec::new();
        while !pipeline.is_empty() {
            replies.push(poll_fn(|cx| pipeline.poll_reply(cx)).await);
        }
        assert_eq!(replies, [11, 12, 13]);
        // Each op passed its turn only after the one sent before it.
        assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    }

    #[tokio::test]
    async fn full_at_depth_and_idle_allocates_nothing() {
        let mut pipeline = OpPipeline::default();
        assert!(pipeline.running.is_none() && pipeline.is_empty() && !pipeline.is_full());
        let mut senders = Vec::new();
        for _ in 0..DEPTH {
            let (tx, rx) = oneshot::channel::<u32>();
            senders.push(tx);
            pipeline.push(|turn| op(turn, rx, std::sync::Arc::default(), 0));
        }
        assert!(pipeline.is_full());
        for tx in senders {
            tx.send(1).unwrap();
        }
        pipeline.finish().await;
        assert!(pipeline.running.is_none() && pipeline.is_empty());
    }
}

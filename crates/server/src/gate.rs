//! Per-branch wake tracking for a session's event loop: [`Gates`] let a loop poll each of its
//! futures only when that future asked to be polled.
//!
//! `tokio::select!` polls every branch each time the task wakes. A session task wakes once per
//! delivered frame (5,000 times per event on an image with 5,000 viewers), and polling its
//! other branches then cost more than the delivery itself (measured with `perf`, see
//! `docs/BENCHMARKS.md`): the socket read (the WebSocket transport zero-fills its read buffer
//! and registers two wakers before every read attempt), the shutdown token (its waiter list is
//! one mutex shared by every session, locked on every poll and every drop) and a fresh idle
//! timer (inserted into and removed from the timer wheel).
//!
//! Each branch hands its future a waker of its own; the future is polled again only after that
//! waker fired, or right after it returned a value (a stream may hold more). Spurious wakes
//! cost one extra poll, never a lost one: the task's waker is registered before the flag is
//! read, so a wake that races with the check still wakes the task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// What a set of gates shares with the wakers it hands out: one allocation per session, so a
/// wake-up touches one cache line of gate state, not one per branch.
struct Shared {
    /// Bit `i` set: branch `i` must be polled (woken, not polled yet, or just yielded).
    woken: AtomicU32,
    /// The task that polls the gates.
    task: AtomicWaker,
}

/// The waker branch `bit` of a set hands to its future.
struct BranchWaker {
    shared: Arc<Shared>,
    bit: u32,
}

impl Wake for BranchWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.shared.woken.fetch_or(self.bit, Ordering::AcqRel);
        self.shared.task.wake();
    }
}

/// `N` gates (`N` ≤ 32): branch `i`'s future is polled only when it was woken, was never
/// polled, or just returned a value. Each poll of the task goes through [`Gates::arm`].
pub struct Gates<const N: usize> {
    shared: Arc<Shared>,
    /// One waker per branch, so a wake says which branch it is for.
    wakers: [Waker; N],
}

impl<const N: usize> Default for Gates<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Gates<N> {
    /// Every branch is polled at its first [`Armed::poll`].
    pub fn new() -> Self {
        const { assert!(N <= 32, "at most 32 branches") };
        let shared = Arc::new(Shared {
            woken: AtomicU32::new(u32::MAX),
            task: AtomicWaker::new(),
        });
        let wakers = std::array::from_fn(|i| {
            Waker::from(Arc::new(BranchWaker {
                shared: Arc::clone(&shared),
                bit: 1 << i,
            }))
        });
        Self { shared, wakers }
    }

    /// Makes the next [`Armed::poll`] of `branch` poll its future (e.g. after it was reset).
    pub fn open(&self, branch: usize) {
        self.shared.woken.fetch_or(1 << branch, Ordering::AcqRel);
    }

    /// Registers the polling task's waker (once for every branch) and returns the view through
    /// which this poll of the task polls its branches.
    pub fn arm(&self, cx: &Context<'_>) -> Armed<'_, N> {
        // Registered before any flag is read: a wake after the read still wakes the task.
        self.shared.task.register(cx.waker());
        Armed { gates: self }
    }
}

/// The gates during one poll of their task (see [`Gates::arm`]).
pub struct Armed<'a, const N: usize> {
    gates: &'a Gates<N>,
}

impl<const N: usize> Armed<'_, N> {
    /// Runs `poll` with `branch`'s waker if that branch asked to be polled; `Pending`
    /// otherwise.
    pub fn poll<T>(
        &self,
        branch: usize,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let shared = &self.gates.shared;
        let bit = 1 << branch;
        // A plain load first: most branches are not woken most of the time.
        if shared.woken.load(Ordering::Acquire) & bit == 0
            || shared.woken.fetch_and(!bit, Ordering::AcqRel) & bit == 0
        {
            return Poll::Pending;
        }
        let result = poll(&mut Context::from_waker(&self.gates.wakers[branch]));
        if result.is_ready() {
            // A stream that yielded may have more without a new wake: poll it next time too.
            self.gates.open(branch);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::future::poll_fn;
    use std::sync::atomic::AtomicUsize;

    use futures_util::StreamExt;

    use super::*;

    /// Counts how often a stream is polled.
    fn counted<S: futures_util::Stream + Unpin>(
        mut inner: S,
        polls: Arc<AtomicUsize>,
    ) -> impl futures_util::Stream<Item = S::Item> + Unpin {
        futures_util::stream::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            inner.poll_next_unpin(cx)
        })
    }

    #[tokio::test]
    async fn a_gated_stream_is_polled_only_when_woken_and_loses_no_item() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let polls = Arc::new(AtomicUsize::new(0));
        let mut gated = counted(tokio_stream_from(rx), Arc::clone(&polls));
        let (other_tx, mut other_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let gates = Gates::<2>::new();
        let consumer = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut others = 0;
            loop {
                // The other branch wakes the task far more often than the gated one.
                let next = poll_fn(|cx| {
                    let armed = gates.arm(cx);
                    let other = armed.poll(0, |cx| other_rx.poll_recv(cx));
                    if let Poll::Ready(Some(())) = other {
                        return Poll::Ready(None);
                    }
                    armed.poll(1, |cx| gated.poll_next_unpin(cx)).map(Some)
                })
                .await;
                match next {
                    None => others += 1,
                    Some(Some(item)) => got.push(item),
                    Some(None) => return (got, others),
                }
            }
        });
        for i in 0..100u32 {
            for _ in 0..10 {
                other_tx.send(()).unwrap();
                tokio::task::yield_now().await;
            }
            tx.send(i).unwrap();
        }
        drop(tx);
        let (got, others) = consumer.await.unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        assert!(others >= 1);
        // Without the gate it would be polled once per wake of either branch (≥ 1,100 times).
        assert!(
            polls.load(Ordering::Relaxed) <= 2 * 100 + 2,
            "polled {} times",
            polls.load(Ordering::Relaxed)
        );
    }

    /// A stream over an unbounded receiver.
    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<u32>,
    ) -> impl futures_util::Stream<Item = u32> + Unpin {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}

//! The session's send budget: a [`Sink`] wrapper that fails a send the peer's socket has not
//! accepted within a time budget.
//!
//! A WebSocket send completes when the frame is in the kernel's socket buffer. A peer that stops
//! reading (a frozen tab, a dead mobile link, a hostile client) fills that buffer and then every
//! send waits forever: the session would hang, holding its socket and subscription. With this
//! wrapper such a send fails with [`OutboundError::Stalled`] after the budget; the session then
//! ends and closes with 4000 ("slow consumer": reconnect and resync). Other connections are never
//! affected either way: each session has its own task and the broker's per-subscriber queue is
//! bounded. Memory per stalled session stays bounded too: one frame in flight.
//!
//! The budget restarts with every operation that completes, so a peer that reads slowly but
//! steadily is not cut off; only one that accepts nothing for the whole budget is. The close
//! frame sent after a stall gets a short budget of its own (`session::STALLED_CLOSE_GRACE`): it
//! reaches the peer only if the peer resumes reading at once; otherwise the TCP connection is
//! dropped and the peer sees it end without a close frame.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::{Sleep, sleep};

/// Why a send failed.
#[derive(Debug)]
pub enum OutboundError<E> {
    /// The peer accepted nothing for the whole budget.
    Stalled,
    /// The transport failed (the peer is gone).
    Transport(E),
}

impl<E: fmt::Display> fmt::Display for OutboundError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboundError::Stalled => f.write_str("peer stopped reading (send timed out)"),
            OutboundError::Transport(err) => err.fmt(f),
        }
    }
}

/// A sink whose operations fail with [`OutboundError::Stalled`] after `budget` without progress.
pub struct Outbound<S> {
    inner: S,
    budget: Duration,
    /// Running while an operation is pending; boxed so the wrapper stays `Unpin`. Allocated only
    /// when a send actually has to wait.
    timer: Option<Pin<Box<Sleep>>>,
    /// Whether a send ever stalled (the session reports it with its close code).
    stalled: bool,
}

impl<S> Outbound<S> {
    /// Wraps `inner` with a send budget.
    pub fn new(inner: S, budget: Duration) -> Self {
        Self {
            inner,
            budget,
            timer: None,
            stalled: false,
        }
    }

    /// Changes the budget of the operations that follow (the close frame after a stall gets a
    /// short one).
    pub fn set_budget(&mut self, budget: Duration) {
        self.budget = budget;
    }

    /// Whether a send stalled: the peer is a slow consumer.
    pub fn stalled(&self) -> bool {
        self.stalled
    }

    fn guard<T, E>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut S, &mut Context<'_>) -> Poll<Result<T, E>>,
    ) -> Poll<Result<T, OutboundError<E>>> {
        match poll(&mut self.inner, cx) {
            Poll::Ready(result) => {
                // Checked first: a send that never waited (the usual case) has no timer to drop.
                if self.timer.is_some() {
                    self.timer = None;
                }
                Poll::Ready(result.map_err(OutboundError::Transport))
            }
            Poll::Pending => {
                let budget = self.budget;
                let timer = self.timer.get_or_insert_with(|| Box::pin(sleep(budget)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        self.timer = None;
                        self.stalled = true;
                        Poll::Ready(Err(OutboundError::Stalled))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S, M> Sink<M> for Outbound<S>
where
    S: Sink<M> + Unpin,
{
    type Error = OutboundError<S::Error>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().guard(cx, |s, cx| s.poll_ready_unpin(cx))
    }

    fn start_send(self: Pin<&mut Self>, item: M) -> Result<(), Self::Error> {
        self.get_mut()
            .inner
            .start_send_unpin(item)
            .map_err(OutboundError::Transport)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().guard(cx, |s, cx| s.poll_flush_unpin(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().guard(cx, |s, cx| s.poll_close_unpin(cx))
    }
}

/// Reading passes straight through (only sends have a budget), so one value can be the whole
/// connection.
impl<S> Stream for Outbound<S>
where
    S: Stream + Unpin,
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.get_mut().inner.poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    //! A sink that never accepts anything, on tokio's paused clock.

    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use futures_util::SinkExt;
    use tokio::time::Instant;

    use super::*;

    /// Accepts items, never finishes flushing them (a peer that stopped reading).
    struct Stuck;

    impl Sink<u8> for Stuck {
        type Error = std::convert::Infallible;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn start_send(self: Pin<&mut Self>, _: u8) -> Result<(), Self::Error> {
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_send_fails_after_the_budget_and_so_does_the_next() {
        let budget = Duration::from_millis(250);
        let mut sink = Outbound::new(Stuck, budget);
        let t0 = Instant::now();
        assert!(matches!(sink.send(1).await, Err(OutboundError::Stalled)));
        assert_eq!(t0.elapsed(), budget);
        assert!(sink.stalled());
        // The next send (the close frame) gets a fresh, equally bounded budget.
        assert!(matches!(sink.send(2).await, Err(OutboundError::Stalled)));
        assert_eq!(t0.elapsed(), budget * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sink_that_keeps_up_is_never_cut_off() {
        let (tx, mut rx) = futures_channel::mpsc::channel::<u8>(1);
        let mut sink = Outbound::new(tx, Duration::from_millis(100));
        let reader = tokio::spawn(async move {
            let mut n = 0;
            while futures_util::StreamExt::next(&mut rx).await.is_some() {
                tokio::time::sleep(Duration::from_millis(60)).await;
                n += 1;
            }
            n
        });
        for i in 0..20 {
            sink.send(i).await.unwrap();
        }
        drop(sink);
        assert_eq!(reader.await.unwrap(), 20);
    }
}

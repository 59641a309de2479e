//! The write side of one plain-TCP WebSocket, shared by its session and its image's pump.
//!
//! Why: with a task per connection, every published frame woke one task per viewer, and
//! waking, polling and framing cost more than the kernel's send itself (docs/BENCHMARKS.md,
//! "Direct-write fan-out"). Here the pump ([`fanout`](crate::fanout)) writes the frame's bytes,
//! framed once, straight into each viewer's socket with a non-blocking write; the session's
//! task is woken only when a socket could not take everything at once (a backlog to drain),
//! or when the pump ended the connection.
//!
//! Order: every write goes through the one lock here, so frames never interleave. Bytes the
//! socket did not take wait in `unsent`, and later frames queue behind them.
//!
//! The protocol promises that a connection receives its op's `ack` before the echo of that
//! op's event. While the session has ops in flight it [`hold`](Outlet::hold)s the outlet:
//! published frames wait in `held` and are [`release`](Outlet::release)d after each reply,
//! up to that reply's `seq`.
//!
//! Bounds: at most `max_waiting` published frames may wait (unsent or held; the server's
//! `--subscriber-buffer`); one more and the pump ends the connection as a slow consumer,
//! which reconnects and resyncs.
//! The session's own frames are bounded by its send budget ([`outbound`](crate::outbound)):
//! it waits for each to be written.

use std::collections::VecDeque;
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes};
use image_chat_protocol::CloseCode;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

/// What the session is woken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Bytes wait for the socket: the session drains them (within its send budget).
    Backlog,
    /// The pump ended the connection: close with this code.
    Ended(CloseCode),
}

#[derive(Default)]
struct State {
    /// Bytes the socket has not taken yet, in order; the first may be partly written.
    unsent: VecDeque<Bytes>,
    /// Published frames (`seq`, bytes) waiting for the session's replies (see [`Outlet::hold`]).
    held: VecDeque<(Option<u64>, Bytes)>,
    holding: bool,
    ended: Option<CloseCode>,
    /// The socket failed: nothing more is written (the session sees the failure when it reads).
    broken: bool,
    /// The session's task, woken for a [`Signal`].
    session: Option<Waker>,
}

/// One connection's shared writer.
pub struct Outlet {
    stream: TcpStream,
    /// Published frames that may wait (as many as a broker subscriber may fall behind by).
    max_waiting: usize,
    state: Mutex<State>,
}

impl Outlet {
    /// Takes over `stream`'s writing (and, through [`Outlet::poll_read`], its reading); at
    /// most `max_waiting` published frames may wait for it.
    pub fn new(stream: TcpStream, max_waiting: usize) -> Self {
        Self {
            stream,
            max_waiting,
            state: Mutex::default(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One of the session's own frames (welcome, replies, close): never held.
    pub fn send(&self, bytes: Bytes) {
        let mut state = self.state();
        self.write(&mut state, bytes);
    }

    /// A published frame from the pump. `false`: this outlet cannot take more (it is ended, or
    /// it was over its bound and is now ended as a slow consumer).
    pub fn publish(&self, seq: Option<u64>, bytes: Bytes) -> bool {
        let mut state = self.state();
        if state.ended.is_some() {
            return false;
        }
        if state.unsent.len() + state.held.len() >= self.max_waiting {
            Self::end_locked(&mut state, CloseCode::SlowConsumer);
            return false;
        }
        if state.holding {
            state.held.push_back((seq, bytes));
        } else {
            self.write(&mut state, bytes);
        }
        true
    }

    /// Holds published frames back until [`Outlet::release`]: the session has an op in flight.
    pub fn hold(&self) {
        self.state().holding = true;
    }

    /// The session sent a reply (`acked`: the `seq` of an `ack`): the held frames up to that
    /// `seq` go out, in order, up to the first that may be the echo of a later op. With
    /// `last`, no op is in flight any more: everything held goes out.
    pub fn release(&self, acked: Option<u64>, last: bool) {
        let mut state = self.state();
        state.holding = !last;
        while let Some((seq, _)) = state.held.front() {
            // A frame without `seq` (presence) is no op's echo.
            let due = match (*seq, acked) {
                _ if last => true,
                (None, _) => true,
                (Some(seq), Some(acked)) => seq <= acked,
                (Some(_), None) => false,
            };
            if !due {
                break;
            }
            let Some((_, bytes)) = state.held.pop_front() else {
                break;
            };
            self.write(&mut state, bytes);
        }
    }

    /// Ends the connection with `code` (the pump's subscription lagged or closed).
    pub fn end(&self, code: CloseCode) {
        Self::end_locked(&mut self.state(), code);
    }

    fn end_locked(state: &mut State, code: CloseCode) {
        if state.ended.is_none() {
            state.ended = Some(code);
            state.held.clear();
            if let Some(waker) = state.session.take() {
                waker.wake();
            }
        }
    }

    /// Writes `bytes` now if nothing waits before them and the socket takes them; queues the
    /// rest and wakes the session to drain it.
    fn write(&self, state: &mut State, mut bytes: Bytes) {
        if state.broken {
            return;
        }
        if state.unsent.is_empty() {
            while !bytes.is_empty() {
                match self.stream.try_write(&bytes) {
                    Ok(n) => bytes.advance(n),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        state.broken = true;
                        return;
                    }
                }
            }
            if bytes.is_empty() {
                return;
            }
            if let Some(waker) = state.session.take() {
                waker.wake();
            }
        }
        state.unsent.push_back(bytes);
    }

    /// Writes what waits; ready once nothing does.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.state();
        loop {
            if state.broken {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            let Some(front) = state.unsent.front_mut() else {
                return Poll::Ready(Ok(()));
            };
            match self.stream.try_write(front) {
                Ok(n) => {
                    front.advance(n);
                    if front.is_empty() {
                        state.unsent.pop_front();
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    // Registers the task for writability; a ready answer means it changed
                    // meanwhile: try again.
                    match self.stream.poll_write_ready(cx) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Err(err) => {
                    state.broken = true;
                    return Poll::Ready(Err(err));
                }
            }
        }
    }

    /// Ready with what the session must do: close (the pump ended the connection) or drain
    /// a backlog. Pending (the task registered) while neither.
    pub fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        let mut state = self.state();
        if let Some(code) = state.ended {
            return Poll::Ready(Signal::Ended(code));
        }
        if !state.unsent.is_empty() {
            return Poll::Ready(Signal::Backlog);
        }
        match &mut state.session {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.session = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Reads from the socket (the session's transport reads through here).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.stream.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
            match self.stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // The readiness was stale: wait for the next.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;

    const MAX_WAITING: usize = 16;

    /// An outlet over one end of a loopback connection, and the other end.
    async fn pair() -> (Outlet, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (server, _) = accepted.expect("accept");
        (Outlet::new(server, MAX_WAITING), client.expect("connect"))
    }

    async fn read_exactly(client: &mut TcpStream, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut buf))
            .await
            .expect("in time")
            .expect("read");
        buf
    }

    fn pending_signal(outlet: &Outlet) -> bool {
        let waker = futures_util::task::noop_waker();
        outlet
            .poll_signal(&mut Context::from_waker(&waker))
            .is_pending()
    }

    #[tokio::test]
    async fn frames_go_out_at_once_and_in_order() {
        let (outlet, mut client) = pair().await;
        outlet.send(Bytes::from_static(b"one "));
        assert!(outlet.publish(Some(1), Bytes::from_static(b"two ")));
        outlet.send(Bytes::from_static(b"three"));
        assert!(
            pending_signal(&outlet),
            "the socket took everything: nothing to drain"
        );
        assert_eq!(read_exactly(&mut client, 13).await, b"one two three");
    }

    #[tokio::test]
    async fn what_a_full_socket_cannot_take_waits_and_is_drained_later() {
        let (outlet, mut client) = pair().await;
        // Far more than the two kernels' buffers hold: the rest must wait.
        let chunk = Bytes::from(vec![7u8; 64 * 1024]);
        let chunks = 64;
        outlet.send(chunk.clone());
        for _ in 1..chunks {
            outlet.send(chunk.clone());
        }
        assert!(!pending_signal(&outlet), "a backlog is signalled");
        let reader =
            tokio::spawn(
                async move { read_exactly(&mut client, chunk.len() * chunks).await.len() },
            );
        poll_fn(|cx| outlet.poll_flush(cx)).await.expect("drained");
        assert_eq!(reader.await.expect("reader"), 64 * 1024 * chunks);
    }

    #[tokio::test]
    async fn held_frames_wait_for_the_reply_that_acks_their_seq() {
        let (outlet, mut client) = pair().await;
        outlet.hold();
        assert!(outlet.publish(Some(4), Bytes::from_static(b"e4 ")));
        assert!(outlet.publish(None, Bytes::from_static(b"presence ")));
        assert!(outlet.publish(Some(5), Bytes::from_static(b"e5 ")));
        assert!(outlet.publish(Some(6), Bytes::from_static(b"e6 ")));
        // The ack of seq 5 goes first, then what it covers; e6 may be the next op's echo.
        outlet.send(Bytes::from_static(b"ack5 "));
        outlet.release(Some(5), false);
        assert_eq!(read_exactly(&mut client, 20).await, b"ack5 e4 presence e5 ");
        // An error reply acks nothing; the last reply lets everything go.
        outlet.send(Bytes::from_static(b"error "));
        outlet.release(None, false);
        outlet.send(Bytes::from_static(b"ack7 "));
        outlet.release(Some(7), true);
        assert!(outlet.publish(Some(8), Bytes::from_static(b"e8")));
        assert_eq!(read_exactly(&mut client, 16).await, b"error ack7 e6 e8");
    }

    #[tokio::test]
    async fn an_outlet_over_its_bound_ends_as_a_slow_consumer() {
        let (outlet, _client) = pair().await;
        outlet.hold();
        for seq in 0..MAX_WAITING as u64 {
            assert!(outlet.publish(Some(seq), Bytes::from_static(b"e")));
        }
        assert!(!outlet.publish(Some(1_000), Bytes::from_static(b"e")));
        let waker = futures_util::task::noop_waker();
        assert_eq!(
            outlet.poll_signal(&mut Context::from_waker(&waker)),
            Poll::Ready(Signal::Ended(CloseCode::SlowConsumer))
        );
        assert!(
            !outlet.publish(Some(1_001), Bytes::from_static(b"e")),
            "ended for good"
        );
    }
}

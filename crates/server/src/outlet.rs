//! The write side of one taken-over WebSocket (plain TCP or TLS, see
//! [`transport`](crate::transport)), shared by its session and its image's pump.
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

use bytes::Bytes;
use image_chat_protocol::CloseCode;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

use crate::transport::{Flow, Read, Transport};

/// What the session is woken for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Bytes wait for the socket: the session drains them (within its send budget).
    Backlog,
    /// The pump ended the connection: close with this code.
    Ended(CloseCode),
}

struct State {
    /// How bytes reach the socket.
    transport: Transport,
    /// Bytes the socket has not taken yet, in order; the first may be partly written. (On TLS,
    /// records made from earlier bytes may wait in the transport: they go first.)
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
    /// Takes over `stream`'s writing (and, through [`Outlet::poll_read`], its reading) through
    /// `transport`; at most `max_waiting` published frames may wait for it.
    pub fn new(stream: TcpStream, transport: Transport, max_waiting: usize) -> Self {
        Self {
            stream,
            max_waiting,
            state: Mutex::new(State {
                transport,
                unsent: VecDeque::new(),
                held: VecDeque::new(),
                holding: false,
                ended: None,
                broken: false,
                session: None,
            }),
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
            // TLS records still waiting go first (`Transport::write`): then nothing is taken.
            match state.transport.write(&self.stream, &mut bytes) {
                Ok(Flow::Done) => return,
                Ok(Flow::Blocked) => Self::wake_session(state),
                Err(_) => {
                    state.broken = true;
                    return;
                }
            }
        }
        if !bytes.is_empty() {
            state.unsent.push_back(bytes);
        }
    }

    fn wake_session(state: &mut State) {
        if let Some(waker) = state.session.take() {
            waker.wake();
        }
    }

    /// Writes what waits, in order, as far as the socket takes it.
    fn drain(&self, state: &mut State) -> io::Result<Flow> {
        loop {
            let Some(front) = state.unsent.front_mut() else {
                return state.transport.flush(&self.stream);
            };
            let flow = state.transport.write(&self.stream, front)?;
            if front.is_empty() {
                state.unsent.pop_front();
            }
            if flow == Flow::Blocked {
                return Ok(Flow::Blocked);
            }
        }
    }

    /// Writes what waits; ready once nothing does.
    pub fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.state();
        loop {
            if state.broken {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            match self.drain(&mut state) {
                Ok(Flow::Done) => return Poll::Ready(Ok(())),
                // Registers the task for writability; a ready answer means it changed
                // meanwhile: try again.
                Ok(Flow::Blocked) => match self.stream.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => return Poll::Pending,
                },
                Err(err) => {
                    state.broken = true;
                    return Poll::Ready(Err(err));
                }
            }
        }
    }

    /// Writes what waits, then (on TLS) tells the peer that nothing more follows.
    pub fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.poll_flush(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        // Queued once however often this is polled: rustls sends close_notify only once.
        self.state().transport.close_notify();
        self.poll_flush(cx)
    }

    /// Ready with what the session must do: close (the pump ended the connection) or drain
    /// a backlog. Pending (the task registered) while neither.
    pub fn poll_signal(&self, cx: &mut Context<'_>) -> Poll<Signal> {
        let mut state = self.state();
        if let Some(code) = state.ended {
            return Poll::Ready(Signal::Ended(code));
        }
        if !state.unsent.is_empty() || state.transport.has_output() {
            return Poll::Ready(Signal::Backlog);
        }
        Self::wake_later(&mut state, cx);
        Poll::Pending
    }

    /// Registers the session's task for the next [`Signal`].
    fn wake_later(state: &mut State, cx: &Context<'_>) {
        match &mut state.session {
            Some(waker) => waker.clone_from(cx.waker()),
            None => state.session = Some(cx.waker().clone()),
        }
    }

    /// Ready with the close code once the pump ended the connection; pending (the task
    /// registered) until then. What the session waits on while it drains a backlog.
    pub fn poll_ended(&self, cx: &mut Context<'_>) -> Poll<CloseCode> {
        let mut state = self.state();
        if let Some(code) = state.ended {
            return Poll::Ready(code);
        }
        Self::wake_later(&mut state, cx);
        Poll::Pending
    }

    /// Reads from the socket (the session's WebSocket reads through here).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let mut wait = self.state().transport.reads_wait_for_readiness();
        loop {
            if wait {
                match self.stream.poll_read_ready(cx) {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            wait = true;
            let mut state = self.state();
            let read = state.transport.read(&self.stream, buf);
            if state.transport.has_output() {
                // TLS owes the peer an answer: it goes out in order with everything else.
                match self.drain(&mut state) {
                    Ok(Flow::Done) => {}
                    Ok(Flow::Blocked) => Self::wake_session(&mut state),
                    Err(_) => state.broken = true,
                }
            }
            match read {
                Ok(Read::Filled) => return Poll::Ready(Ok(())),
                // The readiness was stale (or TLS needs more of a record): wait for the next.
                Ok(Read::Empty) => {}
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

    use super::*;

    const MAX_WAITING: usize = 16;

    /// What each end's kernel may buffer. Set explicitly, because left to autotuning a
    /// loopback connection's buffers grow to what `tcp_wmem` and `tcp_rmem` allow, and on some
    /// machines that holds every byte a test sends to fill a socket: CI once failed so.
    const SOCKET_BUFFER: u32 = 32 * 1024;

    /// A TCP socket whose kernel buffers are [`SOCKET_BUFFER`] each.
    fn small_socket() -> tokio::net::TcpSocket {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .set_send_buffer_size(SOCKET_BUFFER)
            .expect("send buffer");
        socket
            .set_recv_buffer_size(SOCKET_BUFFER)
            .expect("recv buffer");
        socket
    }

    /// Both ends of a loopback connection with small kernel buffers: (server, client).
    async fn loopback() -> (TcpStream, TcpStream) {
        // An accepted socket inherits the listener's buffer sizes.
        let listening = small_socket();
        listening
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind");
        let listener = listening.listen(1).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(small_socket().connect(addr), listener.accept());
        let (server, _) = accepted.expect("accept");
        (server, client.expect("connect"))
    }

    /// An outlet over one end of a loopback connection, and the other end.
    async fn pair() -> (Outlet, TcpStream) {
        let (server, client) = loopback().await;
        (Outlet::new(server, Transport::Plain, MAX_WAITING), client)
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

    /// An outlet over one end of a TLS connection on loopback (a certificate made here), and a
    /// client that trusts it.
    async fn tls_pair() -> (Outlet, tokio_rustls::client::TlsStream<TcpStream>) {
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        let cert = CertificateDer::from(made.cert.der().to_vec());
        let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let config = crate::tls::config_from(vec![cert.clone()], key).expect("config");
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).expect("root");
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config));
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (server_tcp, client_tcp) = loopback().await;
        let client = async {
            let name = ServerName::try_from("localhost").expect("name");
            connector
                .connect(name, client_tcp)
                .await
                .expect("client handshake")
        };
        let server = async { acceptor.accept(server_tcp).await.expect("server handshake") };
        let (client, server) = tokio::join!(client, server);
        let (tcp, session) = server.into_inner();
        (
            Outlet::new(tcp, Transport::Tls(Box::new(session)), MAX_WAITING),
            client,
        )
    }

    async fn read_tls_exactly(
        client: &mut tokio_rustls::client::TlsStream<TcpStream>,
        len: usize,
    ) -> Vec<u8> {
        let mut buf = vec![0; len];
        tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut buf))
            .await
            .expect("in time")
            .expect("read");
        buf
    }

    #[tokio::test]
    async fn over_tls_frames_are_encrypted_in_order_and_held_alike() {
        let (outlet, mut client) = tls_pair().await;
        outlet.send(Bytes::from_static(b"one "));
        assert!(outlet.publish(Some(1), Bytes::from_static(b"two ")));
        outlet.hold();
        assert!(outlet.publish(Some(2), Bytes::from_static(b"echo ")));
        outlet.send(Bytes::from_static(b"ack2 "));
        outlet.release(Some(2), true);
        assert_eq!(
            read_tls_exactly(&mut client, 18).await,
            b"one two ack2 echo "
        );
    }

    #[tokio::test]
    async fn over_tls_a_full_socket_backs_up_and_is_drained_in_order() {
        let (outlet, mut client) = tls_pair().await;
        // Distinct bytes per chunk, so that a reordering or a repeat would show. Each chunk is
        // larger than what rustls encrypts at once (64 KiB), and the lot far more than the
        // kernels' buffers hold.
        let chunk_len = 100 * 1024;
        let chunks = 40u8;
        for i in 0..chunks {
            outlet.send(Bytes::from(vec![i; chunk_len]));
        }
        assert!(!pending_signal(&outlet), "a backlog is signalled");
        let reader = tokio::spawn(async move {
            let all = read_tls_exactly(&mut client, chunk_len * usize::from(chunks)).await;
            // Then the session's end: close_notify (a bare TCP end would be an error here).
            let mut rest = Vec::new();
            let end = client.read_to_end(&mut rest).await;
            (all, end.map(|_| rest.len()).map_err(|err| err.kind()))
        });
        poll_fn(|cx| outlet.poll_flush(cx)).await.expect("drained");
        poll_fn(|cx| outlet.poll_shutdown(cx)).await.expect("shut");
        drop(outlet);
        let (all, end) = reader.await.expect("reader");
        assert_eq!(
            end,
            Ok(0),
            "closed with close_notify, nothing after the frames"
        );
        for (i, chunk) in all.chunks(chunk_len).enumerate() {
            assert!(
                chunk.iter().all(|&b| usize::from(b) == i),
                "chunk {i} intact"
            );
        }
    }

    /// One read through the outlet, at most 5 bytes (nothing: the end of the stream).
    async fn read_some(outlet: &Outlet) -> Vec<u8> {
        let mut space = [0u8; 5];
        let mut buf = ReadBuf::new(&mut space);
        tokio::time::timeout(
            Duration::from_secs(5),
            poll_fn(|cx| outlet.poll_read(cx, &mut buf)),
        )
        .await
        .expect("in time")
        .expect("read");
        buf.filled().to_vec()
    }

    #[tokio::test]
    async fn over_tls_what_the_client_sends_is_read_decrypted_even_when_buffered() {
        use tokio::io::AsyncWriteExt;
        let (outlet, mut client) = tls_pair().await;
        // Two writes, likely read off the socket in one go: the second must not wait for the
        // socket to become readable again (it is already decrypted inside rustls).
        client.write_all(b"first").await.expect("write");
        client.write_all(b" second").await.expect("write");
        client.flush().await.expect("flush");
        let mut got = Vec::new();
        while got.len() < 12 {
            let read = read_some(&outlet).await;
            assert!(!read.is_empty(), "no early end of stream");
            got.extend(read);
        }
        assert_eq!(got, b"first second");
        // The client's close_notify reads as the end of the stream.
        client.shutdown().await.expect("shutdown");
        assert!(read_some(&outlet).await.is_empty(), "end of stream");
    }
}

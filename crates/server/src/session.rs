//! One WebSocket connection, from `hello` to close.
//!
//! The loop is generic over any `Sink` + `Stream` of WebSocket messages, so unit tests can drive
//! it with in-memory channels and the HTTP layer only hands it the upgraded socket. It does, in
//! order: wait for `hello` (bounded), check tenant / origin / identity, subscribe to the image's
//! topic *before* reading the catch-up from the store (so no event can fall between the two),
//! send `welcome`, then serve ops, forward published frames (skipping those the catch-up already
//! covered), answer pings, and close with a precise code on timeout, lag or shutdown.
//!
//! Published frames reach the client one of two ways ([`Delivery`]). On a socket the server
//! writes itself (every connection of the accept loop, plain or TLS) the session hands its
//! outlet to the image's pump after `welcome` (`fanout`): the pump writes them, and this task
//! only drains what the socket could not take at once and holds them back while its own ops
//! are in flight (an `ack` precedes its echo). Otherwise (the tests' channels) it reads its own
//! subscription and sends each frame itself.

use std::borrow::Cow;
use std::fmt::Display;
use std::future::{Future, poll_fn};
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::future::Either;
use futures_util::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use image_chat_protocol::{
    Ack, BroadcastId, ClientMessage, CloseCode, ErrorCode, ErrorFrame, Hello, Op, Pong, Position,
    ServerMessage, SubjectKind, User, Welcome, decode_client_frame,
};
use tokio::time::{Instant, sleep_until};

use crate::admission::{GateRates, OpGate};
use crate::app::{App, Turn};
use crate::broker::{Received, Subscription};
use crate::cluster_rates::Verdict;
use crate::fanout::{Fanout, Joined};
use crate::gate::Gates;
use crate::identity::{AuthError, Identity};
use crate::moderation;
use crate::op_pipeline::OpPipeline;
use crate::outbound::Outbound;
use crate::outlet::{Outlet, Signal};
use crate::presence::{Full, Viewer, ViewerLimits};
use crate::pseudonyms;
use crate::store::{CommitLimits, ImageKey, StoreError};
use crate::tenant::Tenant;
use crate::usage::metered::Metered;
use crate::ws_frame;

/// What the HTTP layer knows about the peer.
#[derive(Clone, Debug, Default)]
pub struct Peer {
    /// The `Origin` header of the upgrade request (browsers always send it).
    pub origin: Option<String>,
    /// The address the client is accounted under (per-address op limits); `None`: unknown.
    pub ip: Option<IpAddr>,
    /// The `Host` header of the upgrade request: the default SSO audience.
    pub host: Option<String>,
}

/// Why the loop ended; the close frame to send, if any.
enum End {
    /// Send this close code.
    Close(CloseCode),
    /// The peer is gone or closed first: nothing more to send.
    Gone,
}

/// Serves one connection until it ends. `conn` is the whole socket (both directions in one
/// value: splitting it would put a lock in front of every send and every read).
pub fn run<C, E>(
    app: Arc<App>,
    peer: Peer,
    conn: C,
    outlet: Option<Arc<Outlet>>,
) -> impl Future<Output = ()>
where
    C: Sink<Message> + Stream<Item = Result<Message, E>> + Unpin,
    <C as Sink<Message>>::Error: Display,
    E: ReadError,
{
    // Every send (the close frame included) is bounded: a peer that stops reading is cut off.
    // Wrapped before the future is made: an `async fn`'s argument keeps its room in the task
    // after being moved out, so the socket would be stored twice.
    let conn = Outbound::new(conn, app.limits.send_timeout);
    serve_connection(app, peer, conn, outlet)
}

async fn serve_connection<C, E>(
    app: Arc<App>,
    peer: Peer,
    mut conn: Outbound<C>,
    outlet: Option<Arc<Outlet>>,
) where
    C: Sink<Message> + Stream<Item = Result<Message, E>> + Unpin,
    <C as Sink<Message>>::Error: Display,
    E: ReadError,
{
    // The phases before the live loop are boxed, and freed once done: a task is allocated at
    // the size of its largest state, and an idle connection should pay only for the loop's.
    // The live loop is boxed too, for the delivery path: inline, its state sat kilobytes into
    // the task behind the outer futures' state, and each delivered frame touched cache lines
    // at both ends (docs/BENCHMARKS.md, issue 18, session 8).
    let end = match Box::pin(await_hello(&app, &mut conn)).await {
        Ok(hello) => Box::pin(serve(&app, &peer, Box::new(hello), &mut conn, outlet)).await,
        Err(end) => end,
    };
    let end = if conn.stalled() {
        tracing::info!("slow consumer disconnected (send timed out)");
        End::Close(CloseCode::SlowConsumer)
    } else {
        end
    };
    if matches!(end, End::Close(CloseCode::SlowConsumer)) {
        // A slow consumer's socket may be full (a send stalled, or its backlog went over its
        // bound): the close frame can only reach it if it starts reading again at once. A
        // short try, then the TCP connection is dropped (the peer then sees it end without a
        // close frame, 1006).
        conn.set_budget(app.limits.send_timeout.min(STALLED_CLOSE_GRACE));
    }
    if let End::Close(code) = end {
        let frame = CloseFrame {
            code: code.code(),
            reason: Utf8Bytes::from_static(code.reason()),
        };
        let sent = conn.send(Message::Close(Some(frame))).await.is_ok();
        if sent && code != CloseCode::SlowConsumer {
            await_close_reply(&mut conn).await;
        }
    }
    let _ = conn.close().await;
}

/// How long the close frame may wait after a send stalled (see [`run`]).
pub const STALLED_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How long a peer has to answer our close frame before its connection is dropped.
const CLOSE_REPLY_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How many bytes of messages a closing peer may still send before it is dropped without its
/// reply: a client that floods on after our close frame gets no full second of reading.
const CLOSE_DRAIN_BYTES: usize = 256 * 1024;

/// Reads, and drops, what the peer still sends until its close reply or its end (bounded by
/// [`CLOSE_REPLY_GRACE`]). Why: a TCP socket closed with unread bytes in its receive queue is
/// reset, not ended, and the reset can reach the peer before it has read our close frame. A
/// client cut off in the middle of a burst (junk over its allowance, say) then saw a reset
/// instead of the code and reason that tell it why (RFC 6455 §7.1.1: the close handshake).
/// Also bounded by [`CLOSE_DRAIN_BYTES`].
async fn await_close_reply<C, E>(conn: &mut Outbound<C>)
where
    C: Sink<Message> + Stream<Item = Result<Message, E>> + Unpin,
{
    let drained = async {
        let mut bytes = 0;
        while let Some(Ok(message)) = conn.next().await {
            bytes += match &message {
                Message::Close(_) => break,
                Message::Text(text) => text.len(),
                Message::Binary(data) | Message::Ping(data) | Message::Pong(data) => data.len(),
            };
            if bytes > CLOSE_DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_REPLY_GRACE, drained).await;
}

/// What a failed read of the transport means for the close frame.
pub trait ReadError {
    /// The close code that tells the peer what it did wrong, when the socket can still carry
    /// one (a message over the size limit: 1009; invalid UTF-8: 1007); `None`: the peer is gone.
    fn close_code(&self) -> Option<CloseCode>;
}

impl ReadError for axum::Error {
    fn close_code(&self) -> Option<CloseCode> {
        std::error::Error::source(self)?
            .downcast_ref::<tungstenite::Error>()?
            .close_code()
    }
}

/// The taken-over socket's reads (`raw_socket`) fail with tungstenite's own error.
impl ReadError for tungstenite::Error {
    fn close_code(&self) -> Option<CloseCode> {
        match self {
            tungstenite::Error::Capacity(_) => Some(CloseCode::MessageTooBig),
            tungstenite::Error::Utf8(_) => Some(CloseCode::InvalidData),
            _ => None,
        }
    }
}

impl ReadError for std::convert::Infallible {
    fn close_code(&self) -> Option<CloseCode> {
        match *self {}
    }
}

/// The end of a session whose read failed with `err`.
fn read_failed<E: ReadError>(err: &E) -> End {
    match err.close_code() {
        Some(code) => {
            tracing::debug!(code = code.code(), "closing after a refused frame");
            End::Close(code)
        }
        None => End::Gone,
    }
}

/// Sends one message; `Err` means the peer is gone.
async fn send<S>(sink: &mut S, message: &ServerMessage) -> Result<(), End>
where
    S: Sink<Message> + Unpin,
    S::Error: Display,
{
    send_frame(sink, message.to_json().into()).await
}

async fn send_frame<S>(sink: &mut S, frame: Utf8Bytes) -> Result<(), End>
where
    S: Sink<Message> + Unpin,
    S::Error: Display,
{
    sink.send(Message::Text(frame)).await.map_err(peer_gone)
}

/// Queues one frame for the next [`flush`].
async fn feed_frame<S>(sink: &mut S, frame: Utf8Bytes) -> Result<(), End>
where
    S: Sink<Message> + Unpin,
    S::Error: Display,
{
    sink.feed(Message::Text(frame)).await.map_err(peer_gone)
}

/// Writes out what [`feed_frame`] queued.
async fn flush<S>(sink: &mut S) -> Result<(), End>
where
    S: Sink<Message> + Unpin,
    S::Error: Display,
{
    sink.flush().await.map_err(peer_gone)
}

fn peer_gone(err: impl Display) -> End {
    tracing::debug!(%err, "send failed; peer gone");
    End::Gone
}

fn error_message(
    broadcast_id: Option<BroadcastId>,
    code: ErrorCode,
    message: impl Into<String>,
) -> ServerMessage {
    ServerMessage::Error(ErrorFrame {
        broadcast_id,
        code,
        message: message.into(),
    })
}

/// Waits for a valid `hello`. Anything else before it is a client bug: reported, then closed.
async fn await_hello<C, E>(app: &App, conn: &mut C) -> Result<Hello, End>
where
    C: Sink<Message> + Stream<Item = Result<Message, E>> + Unpin,
    <C as Sink<Message>>::Error: Display,
    E: ReadError,
{
    let deadline = Instant::now() + app.limits.hello_timeout;
    loop {
        let frame = tokio::select! {
            () = app.shutdown.cancelled() => return Err(End::Close(CloseCode::ServiceRestart)),
            () = sleep_until(deadline) => return Err(End::Close(CloseCode::Timeout)),
            frame = conn.next() => frame,
        };
        let text = match frame {
            None | Some(Ok(Message::Close(_))) => return Err(End::Gone),
            Some(Err(err)) => return Err(read_failed(&err)),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                send(
                    conn,
                    &error_message(None, ErrorCode::MalformedFrame, "frames are text"),
                )
                .await?;
                return Err(End::Close(CloseCode::BadHello));
            }
            Some(Ok(_)) => continue,
        };
        match decode_client_frame(&text) {
            Ok(ClientMessage::Hello(hello)) => return Ok(hello),
            Ok(ClientMessage::Ping { nonce }) => {
                send(conn, &ServerMessage::Pong(Pong { nonce })).await?;
            }
            Ok(other) => {
                let id = other.into_op().ok().map(|op| op.broadcast_id().clone());
                let msg = error_message(id, ErrorCode::UnexpectedMessage, "send hello first");
                send(conn, &msg).await?;
                return Err(End::Close(CloseCode::BadHello));
            }
            Err(err) => {
                send(conn, &ServerMessage::Error(err.to_frame())).await?;
                return Err(End::Close(CloseCode::BadHello));
            }
        }
    }
}

/// Admits the session described by `hello` and serves it.
///
/// `hello` comes boxed: an `async fn`'s arguments keep their room in its future for its whole
/// life, and an idle connection should not hold a `hello` it read once (its parts live on as
/// locals, which share room with the states they are not alive in).
async fn serve<C, E>(
    app: &Arc<App>,
    peer: &Peer,
    hello: Box<Hello>,
    conn: &mut C,
    outlet: Option<Arc<Outlet>>,
) -> End
where
    C: Sink<Message> + Stream<Item = Result<Message, E>> + Unpin,
    <C as Sink<Message>>::Error: Display,
    E: ReadError,
{
    let admitted = admit(app, peer, &hello);
    let Hello {
        tenant_id,
        subject,
        resume,
        ..
    } = *hello;
    let (mut identity, mut gate, viewer_limits) = match admitted {
        Ok(admitted) => admitted,
        Err((code, close, message)) => {
            let _ = send(conn, &error_message(None, code, message)).await;
            return End::Close(close);
        }
    };
    let image = ImageKey {
        tenant: tenant_id,
        subject,
    };
    // From here on every frame sent counts toward the tenant's usage (`usage`).
    let meter = app.usage.tenant(&image.tenant);
    let mut metered = Metered::new(conn, &meter);
    let conn = &mut metered;

    let mut subscription = match app.broker.subscribe(&image).await {
        Ok(subscription) => subscription,
        Err(err) => {
            tracing::error!(%err, "subscribe failed");
            return End::Close(CloseCode::TryAgainLater);
        }
    };
    let viewer = Viewer {
        person: identity.user.id.clone(),
        anonymous: identity.token.is_some(),
        ip: peer.ip,
    };
    let online = match app.presence.join(&image, &viewer, viewer_limits).await {
        Ok(online) => online,
        Err(full) => {
            let message = match full {
                Full::Image => "too many connections on this image; try again later",
                Full::Address => {
                    "too many connections on this image from your address; try again later"
                }
            };
            let _ = send(
                conn,
                &error_message(None, ErrorCode::LimitExceeded, message),
            )
            .await;
            return End::Close(CloseCode::TooManyConnections);
        }
    };
    let _presence = PresenceGuard {
        app,
        image: &image,
        viewer,
    };

    // Boxed: see `run`.
    let welcome = match Box::pin(welcome_frame(app, &image, &identity, &gate, resume, online)).await
    {
        Ok(welcome) => welcome,
        Err(err) => {
            tracing::error!(%err, "catch-up failed");
            return End::Close(CloseCode::TryAgainLater);
        }
    };
    // Everything up to here reached the client through the welcome; later frames from the
    // subscription with a seq at or below it are duplicates of the catch-up.
    let mut delivered_seq = welcome.0.seq;
    // An anonymous session: published frames carrying signed users' ids are rewritten for it.
    let anonymous = identity.token.is_some();
    if let Err(end) = send_frame(conn, welcome.1.into()).await {
        return end;
    }
    let _open = meter.connect();
    // With an outlet, the image's pump writes published frames straight into the socket from
    // here on (`fanout`): this task only drains what the socket could not take at once.
    let mut delivery = match outlet {
        None => Delivery::Queue(subscription),
        Some(outlet) => {
            let mut ended = None;
            let catch_up = || {
                while let Some(received) = subscription.try_recv() {
                    match published_frame(app, &image, anonymous, &mut delivered_seq, received) {
                        Forward::Frame(frame) => {
                            meter.sent(frame.len());
                            outlet.send(ws_frame::text(frame.as_str()));
                        }
                        Forward::Nothing => {}
                        Forward::End(end) => {
                            ended = Some(end);
                            return None;
                        }
                    }
                }
                Some(delivered_seq)
            };
            match Fanout::join(app, &image, &outlet, anonymous, catch_up).await {
                Ok(Some(joined)) => Delivery::Direct {
                    outlet,
                    _joined: joined,
                },
                Ok(None) => return ended.unwrap_or(End::Close(CloseCode::SlowConsumer)),
                Err(err) => {
                    tracing::error!(%err, "subscribe failed");
                    return End::Close(CloseCode::TryAgainLater);
                }
            }
        }
    };
    tracing::debug!(tenant = %image.tenant, subject = %image.subject, user = %identity.user.id, "session live");

    // The loop's futures live across iterations and each is polled only when it was woken
    // (see `gate`): the task wakes once per delivered frame, and re-polling the socket, the
    // shutdown token and a fresh idle timer on each of those wakes cost more than the
    // delivery itself.
    let idle_timeout = app.limits.idle_timeout;
    let mut shutdown = pin!(app.shutdown.cancelled());
    let mut idle = pin!(sleep_until(Instant::now() + idle_timeout));
    // The client's ops being committed. Published frames keep flowing while they wait for the
    // image's lock and the store: a busy image publishes hundreds of frames a second, and a
    // session that stopped delivering for its own commits fell behind its queue and was cut
    // off as a slow consumer (the active poster, of all people). Several at a time
    // (`op_pipeline`): the client's next frame is read while earlier ops commit, up to the
    // pipeline's depth; the ops commit and are answered in the order sent.
    // The author is passed by value: `set-name` may rename the session between two ops.
    let start_commit = |turn, op, limits, author, size| {
        admit_and_commit(app, peer.ip, &image, turn, author, op, limits, size)
    };
    let mut pipeline = OpPipeline::default();
    const SHUTDOWN: usize = 0;
    const IDLE: usize = 1;
    const INPUT: usize = 2;
    const OP: usize = 3;
    let gates = Gates::<4>::new();
    // Alternates which of published frames and client input is looked at first, so neither
    // can starve the other (what `select!`'s random order gave).
    let mut input_first = false;
    let end = loop {
        input_first = !input_first;
        let committing = !pipeline.is_empty();
        let reading = !pipeline.is_full();
        let wake = {
            let mut published = pin!(delivery.next());
            poll_fn(|cx| {
                let armed = gates.arm(cx);
                // A shutdown waits for the ops in flight: cut short, one could be committed
                // and never published.
                if !committing
                    && armed
                        .poll(SHUTDOWN, |cx| shutdown.as_mut().poll(cx))
                        .is_ready()
                {
                    return Poll::Ready(Wake::Shutdown);
                }
                if armed.poll(IDLE, |cx| idle.as_mut().poll(cx)).is_ready() {
                    return Poll::Ready(Wake::Idle);
                }
                // First: an op's reply goes out before anything published after its commit.
                if committing
                    && let Poll::Ready(reply) = armed.poll(OP, |cx| pipeline.poll_reply(cx))
                {
                    return Poll::Ready(Wake::Committed(Box::new(reply)));
                }
                let mut input = || {
                    if !reading {
                        return Poll::Pending;
                    }
                    armed
                        .poll(INPUT, |cx| conn.poll_next_unpin(cx))
                        .map(Wake::Input)
                };
                if input_first && let Poll::Ready(wake) = input() {
                    return Poll::Ready(wake);
                }
                if let Poll::Ready(wake) = published.as_mut().poll(cx) {
                    return Poll::Ready(wake);
                }
                if !input_first {
                    return input();
                }
                Poll::Pending
            })
            .await
        };
        match wake {
            Wake::Shutdown => break End::Close(CloseCode::ServiceRestart),
            Wake::Idle => break End::Close(CloseCode::Timeout),
            Wake::Outlet(Signal::Backlog) => {
                // Boxed: the loop's state is most of what an idle connection costs, and this
                // future (a flush raced against the pump's end) is only made when a socket
                // backs up.
                if let Err(end) = Box::pin(delivery.drain(conn)).await {
                    break end;
                }
            }
            Wake::Outlet(Signal::Ended(code)) => break End::Close(code),
            Wake::Published(received) => {
                // What queued up behind this frame meanwhile goes out with it in one write: a
                // session that fell behind a busy image catches up with one send instead of
                // one per frame, which is what let it fall behind. A session that keeps up
                // finds nothing queued and writes each frame at once.
                let mut next = Some(received);
                let mut fed = 0;
                let mut ended = None;
                while let Some(received) = next.take() {
                    match published_frame(app, &image, anonymous, &mut delivered_seq, received) {
                        Forward::Frame(frame) => {
                            if let Err(end) = feed_frame(conn, frame).await {
                                ended = Some(end);
                                break;
                            }
                            fed += 1;
                        }
                        Forward::Nothing => {}
                        Forward::End(end) => {
                            ended = Some(end);
                            break;
                        }
                    }
                    if fed < MAX_FRAMES_PER_WRITE
                        && let Delivery::Queue(subscription) = &mut delivery
                    {
                        next = subscription.try_recv();
                    }
                }
                if fed > 0
                    && let Err(end) = flush(conn).await
                {
                    break end;
                }
                if let Some(end) = ended {
                    break end;
                }
            }
            Wake::Committed(committed) => {
                let (reply, refused) = *committed;
                if let Refused::ByCluster { size } = refused {
                    gate.refund(app, size);
                }
                if let Err(end) = send(conn, &reply).await {
                    break end;
                }
                // The echoes of what this reply acked may follow it now.
                let acked = match &reply {
                    ServerMessage::Ack(ack) => Some(ack.seq),
                    _ => None,
                };
                delivery.release(acked, pipeline.is_empty());
            }
            Wake::Input(frame) => {
                idle.as_mut().reset(Instant::now() + idle_timeout);
                // The reset timer must be polled again to wake at its new deadline.
                gates.open(IDLE);
                let handled = match frame {
                    None | Some(Ok(Message::Close(_))) => break End::Gone,
                    Some(Err(err)) => break read_failed(&err),
                    Some(Ok(Message::Text(text))) => {
                        handle_frame(app, &mut gate, image.kind(), &text)
                    }
                    Some(Ok(Message::Binary(_))) => Handled::Junk(error_message(
                        None,
                        ErrorCode::MalformedFrame,
                        "frames are text",
                    )),
                    // WebSocket-level ping/pong: answered by the transport.
                    Some(Ok(_)) => continue,
                };
                match handled {
                    Handled::Junk(reply) => {
                        if !gate.junk(Instant::now()) {
                            let msg = error_message(
                                None,
                                ErrorCode::RateLimited,
                                "too many invalid frames; closing",
                            );
                            let _ = send(conn, &msg).await;
                            break End::Close(CloseCode::PolicyViolation);
                        }
                        if let Err(end) = send(conn, &reply).await {
                            break end;
                        }
                    }
                    Handled::Reply(reply) => {
                        if let Err(end) = send(conn, &reply).await {
                            break end;
                        }
                    }
                    Handled::Commit(op, text_len) => {
                        let limits = gate.commit_limits;
                        let author = identity.user.clone();
                        // Its echo must not overtake its ack (PROTOCOL §5).
                        delivery.hold();
                        pipeline.push(|turn| start_commit(turn, op, limits, author, text_len));
                        gates.open(OP);
                    }
                    Handled::SetLock(locked) => {
                        if let Some(reply) = set_lock(app, &identity, &image, locked).await
                            && let Err(end) = send(conn, &reply).await
                        {
                            break end;
                        }
                    }
                    Handled::Rename(name) => {
                        // A signed user's name is the site's; an anonymous one's is theirs.
                        if identity.user.signed_in {
                            let msg = error_message(
                                None,
                                ErrorCode::Forbidden,
                                "a signed user's name comes from the site",
                            );
                            if let Err(end) = send(conn, &msg).await {
                                break end;
                            }
                        } else {
                            identity.user.name = name;
                        }
                    }
                }
            }
        }
    };
    // Whatever ends the session, the ops already started are finished (committed and
    // published, or refused) rather than dropped halfway; their replies have nowhere to go.
    pipeline.finish().await;
    end
}

/// At most this many published frames are gathered into one write, so client input is looked
/// at again between two writes however far behind the session is.
const MAX_FRAMES_PER_WRITE: usize = 32;

/// How published frames reach this session's client.
enum Delivery {
    /// Through the session's own subscription: this task wakes for each and sends it (the
    /// tests' in-memory sockets, and a router served outside `listen`'s accept loop).
    Queue(Subscription),
    /// Written by the image's pump straight into the socket's outlet (every connection of the
    /// accept loop, plain TCP or TLS).
    Direct {
        outlet: Arc<Outlet>,
        _joined: Joined,
    },
}

impl Delivery {
    /// What the session must act on next: a published frame to send, or its outlet's signal.
    fn next<'a, E: 'a>(&'a mut self) -> impl Future<Output = Wake<E>> + 'a {
        match self {
            Delivery::Queue(subscription) => Either::Left(subscription.recv().map(Wake::Published)),
            Delivery::Direct { outlet, .. } => {
                Either::Right(poll_fn(|cx| outlet.poll_signal(cx)).map(Wake::Outlet))
            }
        }
    }

    /// An op is in flight: hold published frames back (direct delivery; the queue holds them
    /// by itself, being read only after the reply).
    fn hold(&self) {
        if let Delivery::Direct { outlet, .. } = self {
            outlet.hold();
        }
    }

    /// A reply went out (`acked`: its `seq`); `last`: no op is in flight any more.
    fn release(&self, acked: Option<u64>, last: bool) {
        if let Delivery::Direct { outlet, .. } = self {
            outlet.release(acked, last);
        }
    }

    /// Writes out the socket's backlog, unless the pump ends the connection meanwhile (it went
    /// over its bound while the peer read nothing): that ends the session at once, where
    /// waiting for the flush would keep a peer that stopped reading until the send timeout.
    async fn drain<S>(&self, sink: &mut S) -> Result<(), End>
    where
        S: Sink<Message> + Unpin,
        S::Error: Display,
    {
        let Delivery::Direct { outlet, .. } = self else {
            return flush(sink).await;
        };
        let ended = pin!(poll_fn(|cx| outlet.poll_ended(cx)));
        match futures_util::future::select(pin!(flush(sink)), ended).await {
            Either::Left((flushed, _)) => flushed,
            Either::Right((code, _)) => Err(End::Close(code)),
        }
    }
}

/// What a published frame means for one session.
enum Forward {
    /// Send this frame.
    Frame(Utf8Bytes),
    /// Nothing to send (already delivered by the catch-up, or the broker is away).
    Nothing,
    /// The session ends.
    End(End),
}

/// Turns what the subscription yielded into what this session sends: skips what the catch-up
/// already delivered, and shows anonymous viewers signed users' ids as pseudonyms.
fn published_frame(
    app: &App,
    image: &ImageKey,
    anonymous: bool,
    delivered_seq: &mut u64,
    received: Received,
) -> Forward {
    match received {
        Received::Message(message) => {
            let seq = message.seq;
            let Some(message) = message.after(*delivered_seq) else {
                return Forward::Nothing;
            };
            if let Some(seq) = seq {
                *delivered_seq = seq;
            }
            Forward::Frame(app.viewer_frame(image.tenant.as_str(), anonymous, message))
        }
        Received::Lagged(missed) => {
            tracing::info!(missed, "slow consumer disconnected");
            Forward::End(End::Close(CloseCode::SlowConsumer))
        }
        // Nothing to send until the broker is back (a cluster's ordering layer never passes
        // this on: it reads the database meanwhile).
        Received::Disconnected => Forward::Nothing,
        // Something published meanwhile may be missing: the client resyncs.
        Received::Interrupted => {
            tracing::info!("broker connection interrupted; client resyncs");
            Forward::End(End::Close(CloseCode::SlowConsumer))
        }
        Received::Closed => Forward::End(End::Close(CloseCode::ServiceRestart)),
    }
}

/// What woke a live session's loop.
enum Wake<E> {
    /// The server is shutting down.
    Shutdown,
    /// Nothing came from the client for the idle timeout.
    Idle,
    /// The image's subscription yielded.
    Published(Received),
    /// The socket's outlet needs the session (see [`Delivery::Direct`]).
    Outlet(Signal),
    /// The client sent something (or the socket ended).
    Input(Option<Result<Message, E>>),
    /// The oldest op in flight was committed (or refused): its reply. Boxed (once per op): a
    /// reply is three times the size of a published frame, and this value is held across the
    /// send of every delivered frame.
    Committed(Box<(ServerMessage, Refused)>),
}

/// Why a `hello` was refused: the error code and the message for the client, and the close
/// code that follows.
type Refusal = (ErrorCode, CloseCode, Cow<'static, str>);

/// Checks protocol version, tenant, origin and identity; returns the identity, the session's
/// op gate and the image's viewer limits. On refusal: the error code, the close code and a
/// message for the client.
fn admit(
    app: &App,
    peer: &Peer,
    hello: &Hello,
) -> Result<(Identity, OpGate, ViewerLimits), Refusal> {
    if hello.protocol != image_chat_protocol::PROTOCOL_VERSION {
        return Err((
            ErrorCode::UnsupportedProtocol,
            CloseCode::BadHello,
            "unsupported protocol version".into(),
        ));
    }
    let Some(tenant) = app.tenants.get(&hello.tenant_id) else {
        return Err((
            ErrorCode::UnknownTenant,
            CloseCode::UnknownTenant,
            "unknown tenant".into(),
        ));
    };
    if !tenant.origins.allows(peer.origin.as_deref()) {
        // Named, so the site owner looking at the socket (and the operator at debug level)
        // sees that the page's origin is the reason, and which one to add to `origins`.
        let origin = match peer.origin.as_deref() {
            None => "(none)",
            // Only ever sent back to the same client, but bounded all the same.
            Some(o) if o.len() > 256 => "(too long)",
            Some(o) => o,
        };
        tracing::debug!(tenant = %tenant.id, origin, "origin not allowed");
        let message = [
            "this page's origin ",
            origin,
            " is not in the origins of tenant ",
            tenant.id.as_str(),
        ]
        .concat();
        return Err((ErrorCode::Forbidden, CloseCode::Forbidden, message.into()));
    }
    let identity = app
        .identities
        .resolve(
            &tenant,
            hello.auth.as_ref(),
            now_ms(),
            app.security.sso,
            sso_audience(app, &tenant, peer),
        )
        .map_err(|err| {
            // The precise reason (expired, wrong audience…) for the operator only.
            tracing::info!(tenant = %tenant.id, %err, "authentication failed");
            let message = match err {
                AuthError::AnonymousNotAllowed => "this site does not allow anonymous comments",
                AuthError::SsoNotConfigured => "signed users are not configured for this site",
                AuthError::Sso(err) => err.client_message(),
            };
            (
                ErrorCode::AuthenticationFailed,
                CloseCode::AuthenticationFailed,
                message.into(),
            )
        })?;
    let limits = app.security.tenant.with_overrides(&tenant.limits);
    let rates = GateRates {
        ops: limits.ops,
        bytes: app.security.conn_bytes,
        junk: app.security.junk,
    };
    let gate = OpGate::new(
        identity.read_only,
        rates,
        peer.ip,
        tenant.id.clone(),
        limits.commit_limits(app.security.max_bytes_total),
        Instant::now(),
    );
    let viewers = ViewerLimits {
        per_image: limits.max_connections_per_image,
        per_ip: app.security.max_viewers_per_ip_per_image,
    };
    Ok((identity, gate, viewers))
}

/// The `welcome` for a client resuming from `resume`, encoded, and the position it brings the
/// client to: the missed events when the store still has them and they weigh no more than the
/// snapshot, else the image's snapshot from the shared cache (encoded once per position for
/// every viewer, see `snapshots`).
async fn welcome_frame(
    app: &App,
    image: &ImageKey,
    identity: &Identity,
    gate: &OpGate,
    resume: Option<Position>,
    online: u32,
) -> Result<(Position, String), StoreError> {
    let mut welcome = Welcome {
        you: identity.user.clone(),
        token: identity.token.clone(),
        position: Position { epoch: 0, seq: 0 },
        recovered: true,
        events: Vec::new(),
        snapshot: None,
        online,
        read_only: gate.read_only(),
        // Read after subscribing (like the catch-up): a lock made later arrives as a frame.
        locked: app.store.locked(image).await?,
    };
    // Anonymous people see signed users' ids as pseudonyms (`pseudonyms`).
    let anonymous = identity.token.is_some();
    let tenant = image.tenant.as_str();
    if let Some((position, mut events)) = app.store.missed_events(image, resume).await? {
        if anonymous {
            for event in &mut events {
                pseudonyms::event(&app.identities, tenant, event);
            }
        }
        welcome.position = position;
        welcome.events = events;
        return Ok((position, ServerMessage::Welcome(welcome).to_json()));
    }
    let snapshot = if anonymous {
        let view = |s: &mut image_chat_protocol::Snapshot| {
            pseudonyms::snapshot(&app.identities, tenant, s);
        };
        app.public_snapshots
            .get_viewed(app.store.as_ref(), image, view)
            .await?
    } else {
        app.snapshots.get(app.store.as_ref(), image).await?
    };
    welcome.position = snapshot.position;
    welcome.recovered = false;
    let frame = ServerMessage::welcome_with_encoded_snapshot(&welcome, &snapshot.json);
    Ok((snapshot.position, frame))
}

/// The audience a signed user must be signed for here: the tenant's, else the server's, else
/// the `Host` the client connected to (see `sso::Audience`).
fn sso_audience<'a>(app: &'a App, tenant: &'a Tenant, peer: &'a Peer) -> &'a str {
    tenant
        .sso_audience
        .as_deref()
        .or(app.security.sso_audience.as_deref())
        .or(peer.host.as_deref())
        .unwrap_or_default()
}

/// What a client frame of a live session asks for.
enum Handled {
    /// Answer at once (pong, refusal of an op).
    Reply(ServerMessage),
    /// An invalid frame (undecodable, a second `hello`): answered with this error while the
    /// connection's allowance of invalid frames lasts.
    Junk(ServerMessage),
    /// An admitted op (and its frame's size), to commit.
    Commit(Op, usize),
    /// A valid `set-name`: the session's later ops are authored with this name.
    Rename(String),
    /// `set-lock`: a moderator locks or unlocks the image.
    SetLock(bool),
}

/// Decodes one frame of a live session on a subject of `kind` and admits it if it is an op.
fn handle_frame(app: &App, gate: &mut OpGate, kind: SubjectKind, text: &str) -> Handled {
    let reply = match decode_client_frame(text) {
        Err(err) => return Handled::Junk(ServerMessage::Error(err.to_frame())),
        Ok(ClientMessage::Ping { nonce }) => ServerMessage::Pong(Pong { nonce }),
        Ok(ClientMessage::SetName { name }) => return Handled::Rename(name),
        Ok(ClientMessage::SetLock { locked }) => return Handled::SetLock(locked),
        Ok(ClientMessage::Hello(_)) => {
            return Handled::Junk(error_message(
                None,
                ErrorCode::UnexpectedMessage,
                "this session already said hello",
            ));
        }
        Ok(other) => match other.into_op() {
            // Validated like any other field: text anchors on pages, points and regions on
            // images (`wrong-anchor-kind`).
            Ok(op) if let Err(e) = op.check_subject(kind) => {
                let id = Some(op.broadcast_id().clone());
                return Handled::Junk(error_message(id, ErrorCode::from(&e), e.to_string()));
            }
            Ok(op) => match gate.admit(app, Instant::now(), text.len()) {
                Ok(()) => return Handled::Commit(op, text.len()),
                Err(refusal) => error_message(
                    Some(op.broadcast_id().clone()),
                    refusal.code,
                    refusal.message,
                ),
            },
            // `into_op` refuses only hello and ping, handled above.
            Err(_) => error_message(None, ErrorCode::UnexpectedMessage, "not an op"),
        },
    };
    Handled::Reply(reply)
}

/// A moderator's `set-lock`: the same path as the admin API's ([`moderation::set_lock`]); the
/// `lock` frame reaches every viewer, this one included, through the broker. Returns the error
/// to send, if any.
async fn set_lock(
    app: &App,
    identity: &Identity,
    image: &ImageKey,
    locked: bool,
) -> Option<ServerMessage> {
    if !identity.user.is_moderator || identity.read_only {
        return Some(error_message(
            None,
            ErrorCode::Forbidden,
            "only moderators may lock or unlock an image",
        ));
    }
    match moderation::set_lock(app, image, locked).await {
        Ok(_) => None,
        Err(err) => {
            tracing::error!(%err, "lock failed");
            Some(error_message(
                None,
                ErrorCode::Unavailable,
                "the server could not change the lock; nothing was changed",
            ))
        }
    }
}

/// Whether the cluster's budgets refused an op (its session then gives back what the op took
/// from the session's own budgets: a refused op costs nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// The op went on to the store (whatever the store said).
    No,
    /// The client address's or the tenant's cluster-wide budget was spent; `size` is what the
    /// op took from the session's budgets.
    ByCluster { size: usize },
}

/// The cluster-wide per-address and per-tenant budgets (when the node is in a cluster), then
/// [`commit`] in the op's `turn` among the connection's ops.
#[allow(clippy::too_many_arguments)]
async fn admit_and_commit(
    app: &App,
    ip: Option<IpAddr>,
    image: &ImageKey,
    turn: Turn,
    author: User,
    op: Op,
    limits: CommitLimits,
    size: usize,
) -> (ServerMessage, Refused) {
    if let Some(rates) = &app.cluster_rates {
        let bytes = u32::try_from(size).unwrap_or(u32::MAX);
        if rates.admit(ip, &image.tenant, bytes).await == Verdict::Limited {
            let refusal = crate::admission::RATE_LIMITED;
            let broadcast_id = Some(op.broadcast_id().clone());
            let reply = error_message(broadcast_id, refusal.code, refusal.message);
            return (reply, Refused::ByCluster { size });
        }
    }
    (
        commit(app, image, turn, author, op, limits).await,
        Refused::No,
    )
}

/// validate (already done by the codec) → commit → ack → publish ([`App::commit`]), as the
/// reply for the client.
async fn commit(
    app: &App,
    image: &ImageKey,
    turn: Turn,
    author: User,
    op: Op,
    limits: CommitLimits,
) -> ServerMessage {
    let broadcast_id = op.broadcast_id().clone();
    let committed = app.commit_after(turn, image, &author, &op, now_ms(), limits);
    match committed.await {
        Ok(seq) => ServerMessage::Ack(Ack { broadcast_id, seq }),
        Err(StoreError::Rejected(rejection)) => {
            error_message(Some(broadcast_id), rejection.into(), rejection.to_string())
        }
        Err(StoreError::Backend(err)) => {
            tracing::error!(%err, "commit failed");
            error_message(
                Some(broadcast_id),
                ErrorCode::Unavailable,
                "the server could not save this change; nothing was changed",
            )
        }
    }
}

/// Milliseconds since the Unix epoch (the server's clock stamps comments).
pub use crate::app::now_ms;

/// Counts the session out of its image's presence however the session ends.
struct PresenceGuard<'a> {
    app: &'a App,
    image: &'a ImageKey,
    viewer: Viewer,
}

impl Drop for PresenceGuard<'_> {
    fn drop(&mut self) {
        let presence = Arc::clone(&self.app.presence);
        let image = self.image.clone();
        let viewer = self.viewer.clone();
        // Drop cannot await; the leave (and the count it publishes) completes on its own.
        tokio::spawn(async move { presence.leave(&image, &viewer).await });
    }
}

#[cfg(test)]
mod tests {
    //! The session loop driven through in-memory channels (no socket), on tokio's paused clock
    //! so the timeouts are exact and instant.

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Context;
    use std::time::Duration;

    use futures_channel::mpsc;
    use image_chat_protocol::{
        AddComment, Anchor, ChatId, CommentId, CreateChat, ImageId, NewImageChat, TenantId,
    };

    use super::*;
    use crate::app::SessionLimits;
    use crate::broker::Published;
    use crate::broker::memory::MemoryBroker;
    use crate::identity::Identities;
    use crate::store::sqlite::{SqliteConfig, SqliteStore};
    use crate::tenant::Tenants;

    type Input = Result<Message, std::convert::Infallible>;

    /// Two channels as one socket: what the session sends goes to `sink`, what it reads
    /// comes from `stream`.
    struct Duplex {
        sink: mpsc::UnboundedSender<Message>,
        stream: mpsc::UnboundedReceiver<Input>,
        /// Flushes completed: on a socket, writes.
        flushes: Arc<AtomicUsize>,
    }

    impl Sink<Message> for Duplex {
        type Error = mpsc::SendError;
        fn poll_ready(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            self.sink.poll_ready_unpin(cx)
        }
        fn start_send(
            mut self: std::pin::Pin<&mut Self>,
            item: Message,
        ) -> Result<(), Self::Error> {
            self.sink.start_send_unpin(item)
        }
        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            let flushed = self.sink.poll_flush_unpin(cx);
            if flushed.is_ready() {
                self.flushes.fetch_add(1, Ordering::Relaxed);
            }
            flushed
        }
        fn poll_close(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Result<(), Self::Error>> {
            self.sink.poll_close_unpin(cx)
        }
    }

    impl Stream for Duplex {
        type Item = Input;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Input>> {
            self.stream.poll_next_unpin(cx)
        }
    }

    struct Harness {
        to_session: mpsc::UnboundedSender<Input>,
        from_session: mpsc::UnboundedReceiver<Message>,
        task: tokio::task::JoinHandle<()>,
        app: Arc<App>,
        flushes: Arc<AtomicUsize>,
        _dir: tempfile::TempDir,
    }

    fn start(limits: SessionLimits) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).unwrap();
        let broker: Arc<dyn crate::broker::Broker> = Arc::new(MemoryBroker::default());
        let presence = Arc::new(crate::presence::memory::MemoryPresence::new(
            0,
            Arc::clone(&broker),
        ));
        let app = Arc::new(App::new(
            Arc::new(store),
            broker,
            presence,
            Tenants::builtin(),
            Identities::new([1; 32]),
            limits,
            crate::limits::Limits::default(),
        ));
        let (to_session, stream) = mpsc::unbounded();
        let (sink, from_session) = mpsc::unbounded();
        let flushes = Arc::new(AtomicUsize::new(0));
        let conn = Duplex {
            sink,
            stream,
            flushes: Arc::clone(&flushes),
        };
        let task = tokio::spawn(run(Arc::clone(&app), Peer::default(), conn, None));
        Harness {
            to_session,
            from_session,
            task,
            app,
            flushes,
            _dir: dir,
        }
    }

    impl Harness {
        fn send(&self, message: &ClientMessage) {
            self.send_frame(Message::Text(message.to_json().into()));
        }

        /// Any WebSocket message, as the peer would send it.
        fn send_frame(&self, message: Message) {
            self.to_session.unbounded_send(Ok(message)).unwrap();
        }

        async fn recv(&mut self) -> Message {
            self.from_session.next().await.expect("session ended")
        }

        async fn recv_json(&mut self) -> ServerMessage {
            loop {
                match self.recv().await {
                    Message::Text(text) => match ServerMessage::from_json(&text).unwrap() {
                        ServerMessage::Presence(_) => continue,
                        other => return other,
                    },
                    other => panic!("expected a text frame, got {other:?}"),
                }
            }
        }

        async fn close_code(&mut self) -> u16 {
            match self.recv().await {
                Message::Close(Some(frame)) => frame.code,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }

    fn hello() -> ClientMessage {
        ClientMessage::Hello(Hello {
            protocol: 1,
            tenant_id: TenantId::new("demo"),
            subject: ImageId::new("img").into(),
            auth: None,
            resume: None,
        })
    }

    const LIMITS: SessionLimits = SessionLimits {
        hello_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(70),
        send_timeout: Duration::from_secs(10),
        backlog_frames: 256,
    };

    #[tokio::test(start_paused = true)]
    async fn no_hello_in_time_closes_with_timeout() {
        let mut h = start(LIMITS);
        let started = Instant::now();
        assert_eq!(h.close_code().await, CloseCode::Timeout.code());
        assert_eq!(started.elapsed(), LIMITS.hello_timeout);
        h.task.await.unwrap();
    }

    /// A session closed for want of a `hello`, and when its close frame came.
    async fn closed_for_timeout() -> (Harness, Instant) {
        let mut h = start(LIMITS);
        assert_eq!(h.close_code().await, CloseCode::Timeout.code());
        (h, Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn after_its_close_frame_the_session_reads_what_is_left_until_the_reply() {
        let (h, closed_at) = closed_for_timeout().await;
        // Frames the peer sent before it saw the close: read and dropped, so that the socket
        // ends with nothing unread (a reset otherwise), then the peer's reply ends it at once.
        for i in 0..3 {
            h.send_frame(Message::Text(format!("late {i}").into()));
        }
        h.send_frame(Message::Close(None));
        h.task.await.unwrap();
        assert_eq!(closed_at.elapsed(), Duration::ZERO, "ended by the reply");
        assert!(h.to_session.is_closed(), "everything was read");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_floods_on_after_the_close_is_dropped_at_the_byte_bound() {
        let (h, closed_at) = closed_for_timeout().await;
        let kib = "x".repeat(1024);
        for _ in 0..CLOSE_DRAIN_BYTES / 1024 + 1 {
            h.send_frame(Message::Text(kib.clone().into()));
        }
        h.task.await.unwrap();
        assert_eq!(closed_at.elapsed(), Duration::ZERO, "no grace for a flood");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_never_answers_the_close_is_dropped_after_the_grace() {
        let (h, closed_at) = closed_for_timeout().await;
        h.task.await.unwrap();
        assert_eq!(closed_at.elapsed(), CLOSE_REPLY_GRACE);
    }

    /// A marker creation at `(x, y)`.
    fn create_chat(x: f64, y: f64) -> CreateChat {
        CreateChat {
            broadcast_id: BroadcastId::new("AAAAAAAAQACAAAAAAAAAAQ"),
            chat_id: ChatId::new("AAAAAAAAQACAAAAAAAAAAg"),
            anchor: Anchor::point(x, y),
            text: "hi".into(),
        }
    }

    /// Expects the ack of `op` (the image's first commit), then its echo; returns the echo.
    async fn expect_ack_then_echo(h: &mut Harness, op: &CreateChat) -> NewImageChat {
        assert_eq!(
            h.recv_json().await,
            ServerMessage::Ack(Ack {
                broadcast_id: op.broadcast_id.clone(),
                seq: 1
            })
        );
        let ServerMessage::NewImageChat(echo) = h.recv_json().await else {
            panic!("expected the echo after the ack");
        };
        assert_eq!(echo.broadcast_id, op.broadcast_id);
        echo
    }

    /// A session past its welcome on [`hello`]'s image, and that image's key.
    async fn welcomed() -> (Harness, ImageKey) {
        let mut h = start(LIMITS);
        h.send(&hello());
        let ServerMessage::Welcome(_) = h.recv_json().await else {
            panic!("expected welcome");
        };
        (
            h,
            ImageKey::image(TenantId::new("demo"), ImageId::new("img")),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn published_frames_keep_flowing_while_the_sessions_own_op_commits() {
        let (mut h, image) = welcomed().await;
        // Another op of this image holds its lock: ours waits to be committed.
        let app = Arc::clone(&h.app);
        let lock = app.lock_image(&image).await;
        let op = create_chat(0.25, 0.5);
        h.send(&ClientMessage::CreateChat(op.clone()));
        // Lets the session take the op and start committing it before anything is published.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let elsewhere = r#"{"type":"presence","online":7}"#;
        app.broker
            .publish(&image, Published::state(elsewhere.into()))
            .await
            .unwrap();
        // What the image publishes meanwhile is delivered (its own join presence may come
        // first); no reply to the op yet.
        let meanwhile = async {
            loop {
                let Message::Text(text) = h.recv().await else {
                    panic!("expected a text frame");
                };
                match ServerMessage::from_json(&text).unwrap() {
                    ServerMessage::Presence(p) if p.online == 7 => break,
                    ServerMessage::Presence(_) => continue,
                    other => panic!("expected the presence published meanwhile, got {other:?}"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), meanwhile)
            .await
            .expect("frames published while an op commits must still be delivered");
        drop(lock);
        expect_ack_then_echo(&mut h, &op).await;
    }

    #[tokio::test(start_paused = true)]
    async fn frames_that_queued_up_behind_one_go_out_with_it_in_one_write() {
        let (mut h, image) = welcomed().await;
        // Whatever the join published has gone out.
        tokio::time::sleep(Duration::from_millis(1)).await;
        while futures_util::FutureExt::now_or_never(h.from_session.next()).is_some() {}
        let before = h.flushes.load(Ordering::Relaxed);
        // Published while the session's task cannot run (this one does not yield): they queue.
        for online in 1..=5 {
            let frame = format!(r#"{{"type":"presence","online":{online}}}"#);
            h.app
                .broker
                .publish(&image, Published::state(frame.into()))
                .await
                .unwrap();
        }
        for online in 1..=5 {
            let Message::Text(text) = h.recv().await else {
                panic!("expected a text frame");
            };
            let ServerMessage::Presence(p) = ServerMessage::from_json(&text).unwrap() else {
                panic!("expected presence, got {text}");
            };
            assert_eq!(p.online, online, "in the order published");
        }
        assert_eq!(
            h.flushes.load(Ordering::Relaxed) - before,
            1,
            "one write for all five"
        );
        // One published alone goes out alone, at once.
        h.app
            .broker
            .publish(
                &image,
                Published::state(r#"{"type":"presence","online":6}"#.into()),
            )
            .await
            .unwrap();
        let Message::Text(text) = h.recv().await else {
            panic!("expected a text frame");
        };
        assert!(text.contains(r#""online":6"#), "{text}");
        assert_eq!(h.flushes.load(Ordering::Relaxed) - before, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn ops_sent_back_to_back_are_read_while_earlier_ones_commit_and_answered_in_order() {
        let (mut h, image) = welcomed().await;
        // Another op of this image holds its lock: the session's ops wait to be committed.
        let app = Arc::clone(&h.app);
        let lock = app.lock_image(&image).await;
        // A discussion, a reply to it sent before the discussion is acknowledged (it depends
        // on the first op's commit), and a second discussion.
        let create = create_chat(0.25, 0.5);
        let reply = AddComment {
            broadcast_id: BroadcastId::new("AAAAAAAAQACAAAAAAAAAAw"),
            chat_id: create.chat_id.clone(),
            comment_id: CommentId::new("AAAAAAAAQACAAAAAAAAABA"),
            text: "a reply".into(),
        };
        let second = CreateChat {
            broadcast_id: BroadcastId::new("AAAAAAAAQACAAAAAAAAABQ"),
            chat_id: ChatId::new("AAAAAAAAQACAAAAAAAAABg"),
            ..create_chat(0.75, 0.5)
        };
        h.send(&ClientMessage::CreateChat(create.clone()));
        h.send(&ClientMessage::AddComment(reply.clone()));
        h.send(&ClientMessage::CreateChat(second.clone()));
        // A ping sent behind them is read and answered while all three wait (one op at a
        // time, it was read only after the first op's reply).
        h.send(&ClientMessage::Ping { nonce: 9 });
        let pong = tokio::time::timeout(Duration::from_secs(5), h.recv_json())
            .await
            .expect("the session must read on while its ops commit");
        assert_eq!(pong, ServerMessage::Pong(Pong { nonce: 9 }));
        drop(lock);
        // Committed in the order sent (the reply found its discussion), acknowledged in that
        // order; each echo follows its own ack.
        let sent = [
            create.broadcast_id.clone(),
            reply.broadcast_id.clone(),
            second.broadcast_id.clone(),
        ];
        let mut acks = Vec::new();
        let mut echoes = Vec::new();
        while echoes.len() < 3 {
            match h.recv_json().await {
                ServerMessage::Ack(ack) => acks.push((ack.broadcast_id, ack.seq)),
                ServerMessage::NewImageChat(event) => echoes.push(event.broadcast_id),
                ServerMessage::ImageChatUpdated(event) => echoes.push(event.broadcast_id),
                other => panic!("expected acks and echoes, got {other:?}"),
            }
            assert!(acks.len() >= echoes.len(), "an echo came before its ack");
        }
        assert_eq!(echoes, sent);
        assert_eq!(
            acks,
            sent.iter().cloned().zip(1..).collect::<Vec<_>>(),
            "acknowledged in the order sent, with seqs in that order"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn welcome_ack_echo_then_idle_timeout() {
        let mut h = start(LIMITS);
        h.send(&hello());
        let ServerMessage::Welcome(welcome) = h.recv_json().await else {
            panic!("expected welcome");
        };
        assert_eq!(welcome.you.name, crate::identity::DEFAULT_ANONYMOUS_NAME);
        assert_eq!(welcome.online, 1);

        let op = create_chat(0.123_456_78, 0.5);
        h.send(&ClientMessage::CreateChat(op.clone()));
        let echo = expect_ack_then_echo(&mut h, &op).await;
        // Stored canonical: quantized to 5 decimals.
        assert_eq!(
            echo.chat.anchor,
            Anchor::Point {
                x: 0.123_46,
                y: 0.5
            }
        );

        // Pings keep the session alive past the idle timeout...
        for nonce in 0..3 {
            tokio::time::advance(LIMITS.idle_timeout - Duration::from_secs(1)).await;
            h.send(&ClientMessage::Ping { nonce });
            assert_eq!(h.recv_json().await, ServerMessage::Pong(Pong { nonce }));
        }
        // ...silence does not.
        let silent_from = Instant::now();
        assert_eq!(h.close_code().await, CloseCode::Timeout.code());
        assert_eq!(silent_from.elapsed(), LIMITS.idle_timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_hangs_up_ends_the_session() {
        let mut h = start(LIMITS);
        h.send(&hello());
        assert!(matches!(h.recv_json().await, ServerMessage::Welcome(_)));
        h.to_session.close_channel();
        h.task.await.unwrap();
    }
}

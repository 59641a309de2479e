//! The slow-consumer scenario, over ws:// (`slow_consumer.rs`) and over wss:// (`tls_hostile.rs`):
//! a client that stops reading is cut off with close code 4000 ("slow consumer": reconnect and
//! resync) while a watcher of the same image keeps receiving every event promptly, and the
//! cut-off client can come back and resume. Only opening the sockets differs between the two;
//! the rest is here, generic over the client's stream. Test files using it also declare
//! `mod support;`.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use image_chat_protocol::{
    ClientMessage, CloseCode, Event, ImageId, Position, ServerMessage, TenantId,
};
use image_chat_server::RunningServer;
use image_chat_server::app::{App, SessionLimits};
use image_chat_server::store::ImageKey;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, WAIT, commit, create_op, hello, start_unlimited};

/// The image every client of the scenario watches.
pub const IMAGE: &str = "busy";

// Long enough that a busy 2-core machine finishes a round of 16 commits well within it: the
// assertion below is that the watcher is not held up for the whole send timeout.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(3000);

/// A round of 16 ops starts at most this often, so that however fast the machine commits, the
/// events written before the cut-off (the send buffers' fill plus `SEND_TIMEOUT`: a few
/// seconds, at most ~107 events a second of ~16 KB) stay far below what one catch-up frame may
/// carry to the reconnecting client (16 MiB): unpaced, a fast machine committed ~1,900 events
/// (~30 MB) before the cut-off.
const ROUND_EVERY: Duration = Duration::from_millis(150);

/// Published frames that may wait for the slow client's socket: fewer than the default (256),
/// because after the send stalls, the close frame gets out only if what waits ahead of it
/// (these frames, ~16 KB each) drains within the short close grace
/// (`session::STALLED_CLOSE_GRACE`, for the close frame's send and again for the close: ~2 s
/// in all). With 256, reading everything that reached the slow client took a loaded 2-core
/// machine up to ~1 s in a debug build; with 64, ~0.2 s.
const BACKLOG_FRAMES: usize = 64;

/// A server for the scenario (ws://, or wss:// with `tls`) and the directory of its database,
/// which must outlive it.
pub async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> (RunningServer, tempfile::TempDir) {
    let limits = SessionLimits {
        send_timeout: SEND_TIMEOUT,
        backlog_frames: BACKLOG_FRAMES,
        ..SessionLimits::default()
    };
    start_with(limits, tls).await
}

/// Like [`start`] with other limits.
pub async fn start_with(
    limits: SessionLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (RunningServer, tempfile::TempDir) {
    // On tmpfs and without abuse limits: one publisher pipelines hundreds of big ops.
    start_unlimited(limits, tls).await
}

/// The scenario's image.
pub fn image() -> ImageKey {
    ImageKey::image(TenantId::new("demo"), ImageId::new(IMAGE))
}

/// A TCP connection to `addr` with a tiny receive buffer: once the client stops reading, the
/// server's writes back up after a few frames.
pub async fn small_receive_buffer(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .expect("TCP connect timed out")
        .unwrap()
}

/// Says hello for the scenario's image and then (by the caller's choice) reads nothing.
pub async fn say_hello_only<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) {
    let hello = ClientMessage::Hello(hello(IMAGE, None)).to_json();
    ws.send(Message::text(hello)).await.unwrap();
}

/// Waits (bounded by WAIT) until `online` connections watch `image`.
pub async fn wait_for_online(app: &App, image: &ImageKey, online: u32) {
    wait_for_online_within(app, image, online, WAIT).await;
}

/// Waits until `online` connections watch `image`, for at most `within`.
pub async fn wait_for_online_within(app: &App, image: &ImageKey, online: u32, within: Duration) {
    let deadline = Instant::now() + within;
    while app.presence.count(image).await != online {
        assert!(
            Instant::now() < deadline,
            "{online} connections never watched the image (now {})",
            app.presence.count(image).await
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Where the cut-off client may resume from, and the last event committed.
pub struct Resume {
    pub from: Position,
    pub last_seq: u64,
}

/// With `publisher`, `watcher` and `slow` (which said hello and read nothing since) watching
/// the image: publishes big events until the slow client is cut off, checking that the
/// watcher gets each one in order and promptly all along; reads what reached the slow client
/// (the close code 4000 last) as soon as it is cut off; then checks that the others go on.
pub async fn slow_one_is_cut_off_and_others_keep_receiving<P, W, S>(
    app: &App,
    publisher: &mut Client<P>,
    watcher: &mut Client<W>,
    slow: &mut WebSocketStream<S>,
) -> Resume
where
    P: AsyncRead + AsyncWrite + Unpin,
    W: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let image = image();
    wait_for_online(app, &image, 3).await;
    let began = Instant::now();
    // Both at once: the publisher's rounds (until the cut-off), and the slow client, which
    // starts reading the moment it is cut off. After its send stalled, the server gives the
    // close frame only a short grace (`session::STALLED_CLOSE_GRACE`, per send) to get out
    // behind everything still queued for the socket: a client that starts reading later than
    // about that sees the connection end without the close frame.
    let ((sent, worst), (from, got, code, read_in)) = tokio::join!(
        rounds_until_cut_off(app, &image, publisher, watcher),
        async {
            wait_for_online_within(app, &image, 2, 2 * WAIT).await;
            let reading = Instant::now();
            let (from, got, code) = events_then_close(slow, Position { epoch: 0, seq: 0 }).await;
            (from, got, code, reading.elapsed())
        }
    );
    println!(
        "slow client cut off after {sent} events in {:?}; worst round to the watcher {worst:?}",
        began.elapsed()
    );
    println!("the slow client read {got} events, then close code {code}, in {read_in:?}");
    assert!(
        worst < SEND_TIMEOUT,
        "the watcher was held up by the slow client: {worst:?}"
    );
    assert_eq!(
        code,
        CloseCode::SlowConsumer.code(),
        "slow consumer must be told to reconnect"
    );
    assert!(
        from.seq < sent,
        "the slow client cannot have received everything"
    );

    // Life goes on for the others.
    let last_seq = commit(
        publisher,
        ClientMessage::CreateChat(create_op(0.1, 0.1, "still here")),
    )
    .await;
    match watcher.recv_skip_presence().await {
        ServerMessage::NewImageChat(e) => assert_eq!(e.seq, last_seq),
        other => panic!("expected event {last_seq}, got {other:?}"),
    }
    Resume { from, last_seq }
}

/// Publishes big events in paced rounds until the slow client is cut off (bounded by WAIT),
/// checking that the watcher gets each one, in order; returns how many were published and the
/// longest any round took to reach the watcher.
async fn rounds_until_cut_off<P, W>(
    app: &App,
    image: &ImageKey,
    publisher: &mut Client<P>,
    watcher: &mut Client<W>,
) -> (u64, Duration)
where
    P: AsyncRead + AsyncWrite + Unpin,
    W: AsyncRead + AsyncWrite + Unpin,
{
    // Big comments (4,000 four-byte characters: ~16 KB per event) fill the slow client's socket
    // buffers quickly; ops are pipelined in rounds of 16.
    let text = "\u{1F30A}".repeat(4_000);
    let mut worst = Duration::ZERO;
    let mut sent = 0u64;
    // Rounds go on until the cut-off (bounded by WAIT), however fast this machine commits.
    let rounds_until = Instant::now() + WAIT;
    loop {
        assert!(
            Instant::now() < rounds_until,
            "the slow client was never cut off"
        );
        let started = Instant::now();
        for _ in 0..16 {
            publisher
                .send(&ClientMessage::CreateChat(create_op(0.5, 0.5, &text)))
                .await;
        }
        // The watcher gets every event, in order, promptly, whatever the slow client does
        // (alone, or gathered into a batch by the image's pump).
        for e in watcher.recv_events(16).await {
            sent += 1;
            assert!(matches!(e, Event::NewImageChat(_)), "unexpected {e:?}");
            assert_eq!(e.seq(), sent);
        }
        worst = worst.max(started.elapsed());
        publisher.acks_and_echoes(16).await;
        if app.presence.count(image).await == 2 {
            return (sent, worst);
        }
        tokio::time::sleep_until(started + ROUND_EVERY).await;
    }
}

/// Reads what reached a client that stopped reading (its welcome if still queued, then the
/// events after `from`, in order, alone or in batches) up to the close frame; returns the
/// position of the last thing it got, how many events there were, and the close code.
pub async fn events_then_close<S: AsyncRead + AsyncWrite + Unpin>(
    slow: &mut WebSocketStream<S>,
    mut from: Position,
) -> (Position, u64, u16) {
    let mut got = 0u64;
    loop {
        let frame = tokio::time::timeout(WAIT, slow.next())
            .await
            .expect("no close in time");
        match frame {
            Some(Ok(Message::Text(text))) => match ServerMessage::from_json(&text).unwrap() {
                // Events published while it joined are in its welcome's state (on a busy
                // machine, some are): the events follow on from the welcome's position.
                ServerMessage::Welcome(welcome) => from = welcome.position,
                ServerMessage::Presence(_) => {}
                // Alone, or gathered into a batch by the image's pump.
                other => {
                    let events = other
                        .into_events()
                        .unwrap_or_else(|o| panic!("unexpected {o:?}"));
                    for e in events {
                        assert!(matches!(e, Event::NewImageChat(_)), "unexpected {e:?}");
                        got += 1;
                        assert_eq!(
                            e.seq(),
                            from.seq + 1,
                            "the stalled client's events in order"
                        );
                        from = e.position();
                    }
                }
            },
            Some(Ok(Message::Close(Some(frame)))) => return (from, got, u16::from(frame.code)),
            other => panic!("expected the close frame, got {other:?}"),
        }
    }
}

/// The cut-off client came `back` with a hello resuming from `resume.from`: it got exactly
/// what it missed, and nothing else is queued for it.
pub async fn assert_resumed<S: AsyncRead + AsyncWrite + Unpin>(
    back: &mut Client<S>,
    resume: Resume,
) {
    let welcome = back.welcome().clone();
    assert_eq!(welcome.position.seq, resume.last_seq);
    if resume.from.seq > 0 {
        assert!(welcome.recovered);
        assert_eq!(
            welcome.events.len() as u64,
            resume.last_seq - resume.from.seq
        );
    }
    back.assert_quiet().await;
}

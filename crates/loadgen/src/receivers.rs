//! Subscribers that only listen, served by a few poll loops on their own threads instead of a
//! tokio task each.
//!
//! Why: the load generator shares the machine's two cores with the server, so every cycle it
//! spends receiving is taken from the server it measures. With a task per subscriber, each
//! delivered frame cost a reactor wake, a scheduler push, a task poll and tungstenite's
//! per-socket waker bookkeeping, and 5,000 tasks' states do not stay in cache. Here one thread
//! takes up to 1,024 ready sockets per `epoll_wait` and reads each into one scratch buffer.
//! The clients are still real: they connect, upgrade, say `hello`, wait for `welcome`
//! ([`connect`]), answer pings, send the widget's keepalive and close properly.
//!
//! Publishers keep the task-per-client path ([`crate::client`]): they are few and they write.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use image_chat_protocol::{ClientMessage, Position, ServerMessage, Welcome};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;

use crate::client::{
    CONNECT_TIMEOUT, ClientStats, ConnectError, PING_EVERY, hello, is_event_frame, now_ns,
    record_events,
};
use crate::wsframe::{self, FrameReader, Message, client_frame, close_code, opcode};

/// The poll loop's own token (new connections or stop).
const WAKE: Token = Token(usize::MAX);

/// A subscriber after `welcome`, ready to be handed to [`Receivers`].
pub struct RawConn {
    stream: std::net::TcpStream,
    /// Bytes already received after `welcome` (often a presence frame).
    reader: FrameReader,
}

/// A fresh mask for a client frame. Masking only matters against intermediaries, and there are
/// none on loopback, but the protocol requires one per frame: a counter is enough.
fn mask() -> [u8; 4] {
    static NEXT: AtomicU32 = AtomicU32::new(0x5bd1_e995);
    NEXT.fetch_add(0x9e37_79b9, Ordering::Relaxed).to_le_bytes()
}

/// Opens a socket, upgrades it, says hello and waits for `welcome`.
pub async fn connect(
    addr: SocketAddr,
    image: &str,
    resume: Option<Position>,
) -> Result<(RawConn, Welcome), ConnectError> {
    let transport = |e: io::Error| ConnectError::Transport(e.to_string());
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(transport)?;
        stream.set_nodelay(true).map_err(transport)?;
        let key = generate_key();
        let request = wsframe::upgrade_request(&addr.to_string(), "/ws", &key);
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(transport)?;
        let mut received = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        let head = loop {
            let n = stream.read(&mut chunk).await.map_err(transport)?;
            if n == 0 {
                return Err(ConnectError::Transport(
                    "socket ended during the upgrade".into(),
                ));
            }
            received.extend_from_slice(&chunk[..n]);
            let answer = wsframe::upgrade_answer(&received, &key)
                .map_err(|e| ConnectError::Refused(e.to_string()))?;
            if let Some(head) = answer {
                break head;
            }
        };
        let mut reader = FrameReader::with_bytes(&received[head..]);
        let hello = hello(image, resume).to_json();
        stream
            .write_all(&client_frame(opcode::TEXT, hello.as_bytes(), mask()))
            .await
            .map_err(transport)?;
        loop {
            while let Some(message) = reader
                .next_message()
                .map_err(|e| ConnectError::Transport(e.to_string()))?
            {
                match message.op {
                    opcode::TEXT => {
                        let text = String::from_utf8_lossy(&message.payload);
                        match ServerMessage::from_json(&text) {
                            Ok(ServerMessage::Welcome(welcome)) => {
                                let stream = stream.into_std().map_err(transport)?;
                                return Ok((RawConn { stream, reader }, welcome));
                            }
                            Ok(ServerMessage::Presence(_)) => {}
                            _ => return Err(ConnectError::Refused(text.into_owned())),
                        }
                    }
                    opcode::CLOSE => {
                        let code = close_code(&message.payload);
                        return Err(ConnectError::Refused(format!("closed: {code}")));
                    }
                    opcode::PING => {
                        let pong = client_frame(opcode::PONG, &message.payload, mask());
                        stream.write_all(&pong).await.map_err(transport)?;
                    }
                    _ => {}
                }
            }
            let n = stream.read(&mut chunk).await.map_err(transport)?;
            if n == 0 {
                return Err(ConnectError::Transport(
                    "socket ended before welcome".into(),
                ));
            }
            reader.push(&chunk[..n]);
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or(Err(ConnectError::Timeout))
}

/// One poll loop's inbox.
struct Loop {
    inbox: Sender<RawConn>,
    waker: Waker,
    thread: JoinHandle<Vec<ClientStats>>,
}

/// A few poll-loop threads that receive for many subscribers; clients are spread round-robin.
pub struct Receivers {
    loops: Vec<Loop>,
    next: usize,
    stop: Arc<AtomicBool>,
}

impl Receivers {
    /// Starts `threads` poll loops (at least one).
    pub fn start(threads: usize) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut loops = Vec::new();
        for k in 0..threads.max(1) {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKE)?;
            let (inbox, incoming) = mpsc::channel();
            let stop = Arc::clone(&stop);
            let thread = std::thread::Builder::new()
                .name(format!("receivers-{k}"))
                .spawn(move || serve(poll, incoming, &stop))?;
            loops.push(Loop {
                inbox,
                waker,
                thread,
            });
        }
        Ok(Self {
            loops,
            next: 0,
            stop,
        })
    }

    /// Hands a subscriber to the next loop.
    pub fn add(&mut self, conn: RawConn) -> io::Result<()> {
        let target = &self.loops[self.next % self.loops.len()];
        self.next += 1;
        target
            .inbox
            .send(conn)
            .map_err(|_| io::Error::other("receiver thread ended"))?;
        target.waker.wake()
    }

    /// Stops every loop (each subscriber says goodbye with a close frame) and returns what each
    /// subscriber measured. Blocks until the threads end.
    pub fn stop(self) -> Result<Vec<ClientStats>, String> {
        self.stop.store(true, Ordering::Release);
        let mut all = Vec::new();
        for lp in self.loops {
            // A loop that cannot be woken has ended already; joining tells how.
            let _ = lp.waker.wake();
            let stats = lp
                .thread
                .join()
                .map_err(|_| "a receiver thread panicked".to_string())?;
            all.extend(stats);
        }
        Ok(all)
    }
}

/// A subscriber inside a poll loop.
struct Live {
    stream: TcpStream,
    reader: FrameReader,
    stats: ClientStats,
    open: bool,
}

impl Live {
    /// Reads everything the socket has (edge-triggered: until it would block).
    fn read_all(&mut self, scratch: &mut [u8]) {
        while self.open {
            match self.stream.read(scratch) {
                Ok(0) => {
                    self.stats.closed.get_or_insert(1006);
                    self.open = false;
                }
                Ok(n) => {
                    let now = now_ns();
                    self.reader.push(&scratch[..n]);
                    self.take_messages(now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.stats.closed.get_or_insert(1006);
                    self.open = false;
                }
            }
        }
    }

    /// Handles every whole message received so far; `now` is when their last bytes arrived.
    fn take_messages(&mut self, now: u64) {
        while self.open {
            let message = match self.reader.next_message() {
                Ok(Some(message)) => message,
                Ok(None) => return,
                Err(_) => {
                    // Protocol error: what a browser does too (close 1002, then give up).
                    self.stats.closed.get_or_insert(1002);
                    self.send(opcode::CLOSE, &1002u16.to_be_bytes());
                    self.open = false;
                    return;
                }
            };
            self.on_message(message, now);
        }
    }

    fn on_message(&mut self, message: Message, now: u64) {
        match message.op {
            opcode::TEXT => {
                let Ok(text) = std::str::from_utf8(&message.payload) else {
                    return;
                };
                let stats = &mut self.stats;
                if is_event_frame(text) {
                    stats.event_frames += 1;
                    stats.event_bytes += text.len() as u64;
                    stats.events += record_events(text, now, &mut stats.latencies_us);
                } else if text.starts_with(r#"{"type":"error""#) {
                    stats.errors += 1;
                }
            }
            opcode::CLOSE => {
                self.stats.closed = Some(close_code(&message.payload));
                // Echo the close, as the protocol asks; the server then ends the connection.
                self.send(opcode::CLOSE, message.payload.get(..2).unwrap_or_default());
                self.open = false;
            }
            opcode::PING => self.send(opcode::PONG, &message.payload),
            _ => {}
        }
    }

    /// Writes one small frame. These are tiny (keepalive, pong, close) and the socket's send
    /// buffer is empty but for them, so a write that cannot complete at once means the server
    /// stopped reading: the connection is counted as broken rather than buffered.
    fn send(&mut self, op: u8, payload: &[u8]) {
        let frame = client_frame(op, payload, mask());
        let mut written = 0;
        while written < frame.len() {
            match self.stream.write(&frame[written..]) {
                Ok(n) if n > 0 => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => {
                    self.stats.closed.get_or_insert(1006);
                    self.open = false;
                    return;
                }
            }
        }
    }
}

/// One poll loop: adopts new subscribers from `incoming`, reads every ready socket, sends the
/// keepalive, and on `stop` closes them all and returns their figures.
fn serve(mut poll: Poll, incoming: Receiver<RawConn>, stop: &AtomicBool) -> Vec<ClientStats> {
    let mut conns: Vec<Live> = Vec::new();
    let mut events = Events::with_capacity(1024);
    let mut scratch = vec![0u8; 64 << 10];
    let mut next_ping = Instant::now() + PING_EVERY;
    let mut nonce = 0u64;
    loop {
        let timeout = next_ping.saturating_duration_since(Instant::now());
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            // The poll itself failed: nothing more can be received; report what was.
            eprintln!("receiver poll failed: {e}");
            break;
        }
        for event in events.iter() {
            if let Some(live) = conns.get_mut(event.token().0) {
                live.read_all(&mut scratch);
            }
        }
        while let Ok(conn) = incoming.try_recv() {
            let token = Token(conns.len());
            let mut live = Live {
                stream: TcpStream::from_std(conn.stream),
                reader: conn.reader,
                stats: ClientStats::default(),
                open: true,
            };
            // Registering reports data that is already waiting, so nothing is missed; frames
            // read during the connect are handled now.
            if poll
                .registry()
                .register(&mut live.stream, token, Interest::READABLE)
                .is_err()
            {
                live.stats.closed = Some(1006);
                live.open = false;
            }
            live.take_messages(now_ns());
            conns.push(live);
        }
        if stop.load(Ordering::Acquire) {
            break;
        }
        if Instant::now() >= next_ping {
            nonce += 1;
            let ping = ClientMessage::Ping { nonce }.to_json();
            for live in conns.iter_mut().filter(|live| live.open) {
                live.send(opcode::TEXT, ping.as_bytes());
            }
            next_ping += PING_EVERY;
        }
    }
    for live in conns.iter_mut().filter(|live| live.open) {
        live.send(opcode::CLOSE, &1000u16.to_be_bytes());
    }
    conns.into_iter().map(|live| live.stats).collect()
}

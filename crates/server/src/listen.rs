//! The accept loop: every TCP connection is counted from the moment it is accepted, on the
//! plain and the TLS listener alike, and served over HTTP/1.1 with bounded headers and a header
//! read timeout.
//!
//! Why not `axum::serve`: it counts nothing, sets no header read timeout and lets a request head
//! grow to hyper's default buffer (~400 KB). One address holding a thousand half-sent requests
//! then exhausted the open-files limit and stalled every other client. Here:
//!
//! - **Per address** (unless a trusted proxy is the peer): a connection over
//!   `max_connections_per_ip` is answered at accept with HTTP 429 (TLS port: closed) before any
//!   request is read. The permit travels with the socket ([`Counted`]), through the WebSocket
//!   upgrade, and is given back when the socket is dropped, so one counter covers plain HTTP
//!   requests, keep-alive connections and WebSockets. Behind a trusted proxy the TCP peer is the
//!   proxy; the same counter is then applied per `X-Forwarded-For` address at the WebSocket
//!   upgrade instead (`http::websocket`).
//! - **Server-wide**: at most `max_connections` at once; more get HTTP 503 at accept.
//! - **Header read timeout**: a client has this long to send a request head, counted from the
//!   connection's start or the end of the previous response, so it is also the keep-alive idle
//!   timeout (hyper restarts its timer when it waits for the next request).
//! - **Header size**: at most `max_header_bytes` (431 above), which also bounds hyper's read
//!   buffer per connection.
//!
//! Every connection's requests carry [`Accepted`]: its WebSocket is taken over after the
//! upgrade ([`take_socket`]) so that the server writes to the TCP socket itself, through the
//! connection's TLS session if it has one (`transport`, `raw_socket`, `fanout`).
//!
//! HTTP/2 is not offered (TLS announces only `http/1.1`; plain connections speak HTTP/1.1):
//! WebSockets upgrade over HTTP/1.1, and every extra protocol is extra attack surface.

use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use crate::admission::{ConnectionCounts, ConnectionPermit, PeerAddr, accounting_key};
use crate::limits::HttpLimits;
use crate::transport::Transport;

/// Refused connections being closed politely at once (see [`refuse`]); beyond this many, a
/// refused connection is simply dropped. Bounds the descriptors a flood of refusals can hold.
const MAX_LINGERING: usize = 256;

/// How long a refused connection is kept open to read what the client still sends, so that
/// closing it does not reset the connection before the client has read the refusal.
const LINGER: Duration = Duration::from_millis(500);

/// How long a connection may take to finish its request in progress at shutdown.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);

/// What the accept loop needs.
pub struct Listen {
    /// The bound socket.
    pub listener: TcpListener,
    /// `Some`: complete a TLS handshake before HTTP.
    pub tls: Option<TlsAcceptor>,
    /// The application.
    pub router: Router,
    /// Connections per client address (shared with the WebSocket upgrade).
    pub per_ip: Arc<ConnectionCounts>,
    /// Per-address limit (0: unlimited).
    pub max_connections_per_ip: u32,
    /// The peer is a trusted proxy: count per address at the upgrade, not here.
    pub trust_forwarded_for: bool,
    /// Server-wide limit, timeouts and sizes.
    pub http: HttpLimits,
    /// Cancelled at shutdown.
    pub stop: CancellationToken,
}

/// Why a connection was refused at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// The address holds its maximum.
    PerAddress,
    /// The server holds its maximum.
    ServerFull,
}

impl Refusal {
    fn response(self) -> &'static [u8] {
        match self {
            Refusal::PerAddress => {
                b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 10\r\ncontent-type: text/plain\r\ncontent-length: 38\r\nconnection: close\r\n\r\ntoo many connections from this address"
            }
            Refusal::ServerFull => {
                b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 10\r\ncontent-type: text/plain\r\ncontent-length: 22\r\nconnection: close\r\n\r\nserver at capacity now"
            }
        }
    }
}

/// The permits one connection holds; dropping them counts it out.
#[derive(Debug, Default)]
pub struct Permits {
    _ip: Option<ConnectionPermit>,
    _total: Option<OwnedSemaphorePermit>,
}

/// A socket that holds its connection's permits for as long as it exists (through a WebSocket
/// upgrade too: hyper hands the same value to the upgraded connection).
pub struct Counted<T> {
    io: T,
    _permits: Permits,
}

/// Marks a request that came over a connection of this accept loop (plain or TLS): its
/// upgraded socket can be taken over ([`take_socket`]).
#[derive(Clone, Copy, Debug)]
pub struct Accepted;

/// A connection's socket after its WebSocket upgrade.
pub struct TakenSocket {
    /// The TCP stream.
    pub stream: TcpStream,
    /// How to write and read it: as it is, or through the TLS session the handshake set up.
    pub transport: Transport,
    /// What hyper had read past the upgrade request (decrypted, on TLS).
    pub read_ahead: bytes::Bytes,
    /// The connection's permits: they must live as long as the socket.
    pub permits: Permits,
}

/// Takes an upgraded connection of this accept loop apart. `None`: it was not one.
pub fn take_socket(upgraded: hyper::upgrade::Upgraded) -> Option<TakenSocket> {
    let upgraded = match upgraded.downcast::<TokioIo<Counted<TcpStream>>>() {
        Ok(parts) => {
            let Counted { io, _permits } = parts.io.into_inner();
            return Some(TakenSocket {
                stream: io,
                transport: Transport::Plain,
                read_ahead: parts.read_buf,
                permits: _permits,
            });
        }
        Err(upgraded) => upgraded,
    };
    let parts = upgraded
        .downcast::<TokioIo<TlsStream<Counted<TcpStream>>>>()
        .ok()?;
    // rustls keeps what it decrypted and what it still has to send: both travel with it.
    let (Counted { io, _permits }, session) = parts.io.into_inner().into_inner();
    Some(TakenSocket {
        stream: io,
        transport: Transport::Tls(Box::new(session)),
        read_ahead: parts.read_buf,
        permits: _permits,
    })
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepts until `stop`, then waits for the connections being served to finish (HTTP requests
/// in progress complete; upgraded WebSockets are closed by their sessions).
pub async fn run(listen: Listen) -> io::Result<()> {
    let Listen {
        listener,
        tls,
        router,
        per_ip,
        max_connections_per_ip,
        trust_forwarded_for,
        http,
        stop,
    } = listen;
    let total = (http.max_connections > 0).then(|| Arc::new(Semaphore::new(http.max_connections)));
    let lingering = Arc::new(Semaphore::new(MAX_LINGERING));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(http.header_read_timeout)
        .max_header_size(http.max_header_bytes)
        .max_buf_size(http.max_header_bytes.max(MIN_BUF))
        .max_headers(http.max_headers);
    let builder = Arc::new(builder);
    let tasks = TaskTracker::new();
    loop {
        let (mut tcp, peer) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: back off briefly instead of
                    // spinning (connections ending meanwhile free descriptors).
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        crate::tune_accepted(&mut tcp);
        let permits = match admit(
            &per_ip,
            max_connections_per_ip,
            trust_forwarded_for,
            total.as_ref(),
            peer,
        ) {
            Ok(permits) => permits,
            Err(refusal) => {
                tracing::debug!(%peer, ?refusal, "connection refused at accept");
                refuse(tcp, refusal, tls.is_none(), &lingering);
                continue;
            }
        };
        let io = Counted {
            io: tcp,
            _permits: permits,
        };
        let router = router.clone();
        let builder = Arc::clone(&builder);
        let stop = stop.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            match tls {
                None => serve_connection(io, peer, router, &builder, stop).await,
                Some(acceptor) => {
                    if let Some(tls) = crate::tls::handshake(&acceptor, io, peer).await {
                        serve_connection(tls, peer, router, &builder, stop).await;
                    }
                }
            }
        });
    }
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// hyper's smallest allowed read buffer.
const MIN_BUF: usize = 8192;

/// Counts a new connection in, or says why not. The server-wide permit is taken first and given
/// back if the address is over its limit, so a refused connection holds nothing.
fn admit(
    per_ip: &Arc<ConnectionCounts>,
    max_per_ip: u32,
    trust_forwarded_for: bool,
    total: Option<&Arc<Semaphore>>,
    peer: SocketAddr,
) -> Result<Permits, Refusal> {
    let total = match total {
        Some(total) => Some(
            Arc::clone(total)
                .try_acquire_owned()
                .map_err(|_| Refusal::ServerFull)?,
        ),
        None => None,
    };
    let ip = if trust_forwarded_for {
        None
    } else {
        Some(
            per_ip
                .try_acquire(accounting_key(peer.ip()), max_per_ip)
                .ok_or(Refusal::PerAddress)?,
        )
    };
    Ok(Permits {
        _ip: ip,
        _total: total,
    })
}

/// Answers a refused connection at once, without waiting for its request: the HTTP status on a
/// plain listener (a TLS client could not read it, so there it is only closed). Closing a
/// socket with unread data in it resets the connection, which can destroy the answer before the
/// client read it; so the socket is half-closed and what the client still sends is read and
/// discarded for a moment ([`LINGER`]). At most [`MAX_LINGERING`] refusals linger at once; past
/// that (a flood), only what already arrived is discarded before the socket is closed.
fn refuse(tcp: TcpStream, refusal: Refusal, plain: bool, lingering: &Arc<Semaphore>) {
    if plain {
        // A fresh socket's send buffer is empty: this never waits.
        let _ = tcp.try_write(refusal.response());
    }
    let Ok(permit) = Arc::clone(lingering).try_acquire_owned() else {
        let mut scratch = [0u8; 1024];
        for _ in 0..64 {
            match tcp.try_read(&mut scratch) {
                Ok(1..) => continue,
                _ => break,
            }
        }
        return;
    };
    tokio::spawn(async move {
        let mut tcp = tcp;
        let _ = tcp.shutdown().await;
        let drain = async {
            let mut scratch = [0u8; 1024];
            while let Ok(1..) = tcp.read(&mut scratch).await {}
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
        drop(permit);
    });
}

/// Serves HTTP/1.1 (with upgrades) on one connection until it ends; at shutdown, lets the
/// request in progress finish and closes. `io` is this loop's [`Counted`] TCP stream, or the
/// TLS stream over it ([`take_socket`] knows both).
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    builder: &http1::Builder,
    stop: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // What `into_make_service_with_connect_info` would add: the peer, for the limits.
        request.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
        request.extensions_mut().insert(Accepted);
        let mut router = router.clone();
        async move { Service::call(&mut router, request).await }
    });
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            // A request head still arriving is bounded by the header timeout anyway.
            match tokio::time::timeout(SHUTDOWN_WAIT, conn).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(err) = result {
        // Header timeouts, oversized heads, peers that vanish: routine on the internet.
        tracing::debug!(%err, %peer, "connection ended with an error");
    }
}

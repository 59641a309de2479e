//! A WebSocket over a TCP socket (plain, or through its TLS session) that the server writes
//! itself: read by tungstenite, written through the connection's [`Outlet`], so that the
//! image's pump can write published frames to it directly ([`fanout`](crate::fanout)).
//!
//! It is the same `Sink` + `Stream` of messages the session is written against (axum's
//! `WebSocket` is the other one, for the tests' routers), so the session serves both alike.
//! tungstenite's own writes (the answer to a ping, the reply to a close) go through the
//! outlet too, in order with everything else.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tungstenite::protocol::{Role, WebSocketConfig};
use ws_tokio::WebSocketStream;

use crate::outlet::Outlet;
use crate::transport::Transport;
use crate::ws_frame::{self, Opcode};

/// tungstenite's view of the socket: reads what hyper read past the upgrade request first,
/// then the socket; writes into the outlet.
struct RawIo {
    outlet: Arc<Outlet>,
    read_ahead: Bytes,
}

impl AsyncRead for RawIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read_ahead.has_remaining() {
            let n = this.read_ahead.len().min(buf.remaining());
            buf.put_slice(&this.read_ahead[..n]);
            this.read_ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        this.outlet.poll_read(cx, buf)
    }
}

impl AsyncWrite for RawIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.outlet.send(Bytes::copy_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outlet.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.outlet.poll_shutdown(cx)
    }
}

/// One upgraded WebSocket the server writes itself.
pub struct RawSocket {
    reader: WebSocketStream<RawIo>,
    outlet: Arc<Outlet>,
    /// What must live as long as the socket (its connection permits).
    _keep: Box<dyn Send + Sync>,
}

impl RawSocket {
    /// Takes over `stream` after the upgrade, written and read through `transport`
    /// (`read_ahead`: what hyper had read past the request), reading with `config`'s limits;
    /// at most `max_waiting` published frames may wait for it.
    pub async fn new(
        stream: TcpStream,
        transport: Transport,
        read_ahead: Bytes,
        config: WebSocketConfig,
        max_waiting: usize,
        keep: Box<dyn Send + Sync>,
    ) -> Self {
        let outlet = Arc::new(Outlet::new(stream, transport, max_waiting));
        // A view into hyper's whole read buffer (8 KiB), usually empty: copied out, so that an
        // idle connection does not keep that buffer alive.
        let read_ahead = Bytes::copy_from_slice(&read_ahead);
        let io = RawIo {
            outlet: Arc::clone(&outlet),
            read_ahead,
        };
        let reader = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
        Self {
            reader,
            outlet,
            _keep: keep,
        }
    }

    /// The socket's writer, for the image's pump.
    pub fn outlet(&self) -> &Arc<Outlet> {
        &self.outlet
    }
}

/// A client's message as the session reads it (`None`: a raw frame, which tungstenite only
/// yields when asked to).
fn message(message: tungstenite::Message) -> Option<Message> {
    use tungstenite::Message as Ws;
    Some(match message {
        Ws::Text(text) => Message::Text(Utf8Bytes::from(text.as_str())),
        Ws::Binary(bytes) => Message::Binary(bytes),
        Ws::Ping(bytes) => Message::Ping(bytes),
        Ws::Pong(bytes) => Message::Pong(bytes),
        Ws::Close(close) => Message::Close(close.map(|close| CloseFrame {
            code: close.code.into(),
            reason: Utf8Bytes::from(close.reason.as_str()),
        })),
        Ws::Frame(_) => return None,
    })
}

impl Stream for RawSocket {
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match ready!(Pin::new(&mut this.reader).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                Some(Ok(read)) => {
                    if let Some(read) = message(read) {
                        return Poll::Ready(Some(Ok(read)));
                    }
                }
            }
        }
    }
}

/// A close frame as tungstenite takes it.
fn close_frame(close: Option<&CloseFrame>) -> tungstenite::Message {
    tungstenite::Message::Close(close.map(|close| tungstenite::protocol::CloseFrame {
        code: close.code.into(),
        reason: close.reason.as_str().into(),
    }))
}

/// tungstenite's close after the peer's: the handshake is over, nothing to do.
fn closed_already(result: Result<(), tungstenite::Error>) -> io::Result<()> {
    match result {
        Ok(()) | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
            Ok(())
        }
        Err(tungstenite::Error::Io(err)) => Err(err),
        Err(err) => Err(io::Error::other(err)),
    }
}

/// Data frames go straight to the outlet. Close frames go through tungstenite, which keeps
/// the close handshake's state: it answers a peer's close (also when the session ends
/// first) and never sends two.
impl Sink<Message> for RawSocket {
    type Error = io::Error;

    fn poll_ready(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Every send is flushed by the session (within its budget) before the next.
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        let this = self.get_mut();
        let bytes = match &item {
            Message::Text(text) => ws_frame::text(text.as_str()),
            Message::Binary(bytes) => ws_frame::encode(Opcode::Binary, bytes),
            Message::Ping(bytes) => ws_frame::encode(Opcode::Ping, bytes),
            Message::Pong(bytes) => ws_frame::encode(Opcode::Pong, bytes),
            Message::Close(close) => {
                let close = close_frame(close.as_ref());
                return closed_already(Pin::new(&mut this.reader).start_send(close));
            }
        };
        this.outlet.send(bytes);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // tungstenite writes what it has (a close, a pong) into the outlet; then the outlet
        // writes everything.
        let this = self.get_mut();
        closed_already(ready!(Pin::new(&mut this.reader).poll_flush(cx)))?;
        this.outlet.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        closed_already(ready!(Pin::new(&mut this.reader).poll_close(cx)))?;
        this.outlet.poll_flush(cx)
    }
}

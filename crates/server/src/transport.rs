//! How bytes cross one taken-over socket: as they are on plain TCP, or through the
//! connection's TLS session (rustls, after `listen` completed the handshake and hyper the
//! upgrade).
//!
//! The [`Outlet`](crate::outlet::Outlet) owns order, holding and bounds; this module only moves
//! bytes, and never waits: a full socket is [`Flow::Blocked`], an empty one [`Read::Empty`], and
//! the outlet registers for readiness. Keeping both transports behind one type lets a TLS
//! connection take the same direct-write path as a plain one (`fanout`): the pump encrypts each
//! viewer's copy under that viewer's outlet lock instead of waking a task per viewer.

use std::io::{self, Read as _, Write as _};

use bytes::{Buf, Bytes};
use rustls::ServerConnection;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;

/// One connection's way of writing and reading its socket.
pub enum Transport {
    /// Bytes go to the socket as they are.
    Plain,
    /// Bytes go through this TLS session (boxed: it is large, and plain connections are most).
    Tls(Box<ServerConnection>),
}

/// Whether the socket took everything asked of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// All of it went out.
    Done,
    /// The socket is full: the rest waits for writability.
    Blocked,
}

/// What a read found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Bytes were put in the buffer, or none at the end of the stream.
    Filled,
    /// Nothing now: wait for readability.
    Empty,
}

/// The socket as std's `Read` and `Write`, never waiting (rustls reads and writes through it).
struct NonBlocking<'a>(&'a TcpStream);

impl io::Read for NonBlocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl io::Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

impl Transport {
    /// Plain TCP reads wait for the socket's readiness first; TLS may hold decrypted bytes
    /// already read off the socket, so it looks before waiting.
    pub fn reads_wait_for_readiness(&self) -> bool {
        matches!(self, Self::Plain)
    }

    /// TLS records made but not written yet (none on plain TCP).
    pub fn has_output(&self) -> bool {
        match self {
            Self::Plain => false,
            Self::Tls(conn) => conn.wants_write(),
        }
    }

    /// Writes the TLS records already made.
    pub fn flush(&mut self, stream: &TcpStream) -> io::Result<Flow> {
        if let Self::Tls(conn) = self {
            while conn.wants_write() {
                match conn.write_tls(&mut NonBlocking(stream)) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(err) if would_block(&err) => return Ok(Flow::Blocked),
                    Err(err) => return Err(err),
                }
            }
        }
        Ok(Flow::Done)
    }

    /// Writes as much of `bytes` as the socket takes now, advancing past what went out.
    /// Records made earlier go first. On TLS, `bytes` may be used up while records still wait
    /// ([`Transport::has_output`]).
    pub fn write(&mut self, stream: &TcpStream, bytes: &mut Bytes) -> io::Result<Flow> {
        loop {
            if self.flush(stream)? == Flow::Blocked {
                return Ok(Flow::Blocked);
            }
            if bytes.is_empty() {
                return Ok(Flow::Done);
            }
            let taken = match self {
                Self::Plain => match stream.try_write(bytes) {
                    Ok(n) => n,
                    Err(err) if would_block(&err) => return Ok(Flow::Blocked),
                    Err(err) => return Err(err),
                },
                // Encrypted up to rustls's buffer limit (64 KiB), written by `flush` above: a
                // large frame (a snapshot) is never copied whole into the TLS session.
                Self::Tls(conn) => conn.writer().write(bytes)?,
            };
            if taken == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes.advance(taken);
        }
    }

    /// Reads what the peer sent into `buf` (decrypted on TLS). Any answer TLS owes the peer
    /// (an alert, a key update) is left for [`Transport::flush`].
    pub fn read(&mut self, stream: &TcpStream, buf: &mut ReadBuf<'_>) -> io::Result<Read> {
        match self {
            Self::Plain => match stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    Ok(Read::Filled)
                }
                Err(err) if would_block(&err) => Ok(Read::Empty),
                Err(err) => Err(err),
            },
            Self::Tls(conn) => read_tls(conn, stream, buf),
        }
    }

    /// Tells the peer that nothing more will be written (TLS's `close_notify`). Idempotent:
    /// rustls queues the alert only the first time.
    pub fn close_notify(&mut self) {
        if let Self::Tls(conn) = self {
            conn.send_close_notify();
        }
    }
}

/// Decrypted bytes into `buf`: those rustls holds, else what the socket has.
fn read_tls(
    conn: &mut ServerConnection,
    stream: &TcpStream,
    buf: &mut ReadBuf<'_>,
) -> io::Result<Read> {
    let mut at_eof = false;
    loop {
        match conn.reader().read(buf.initialize_unfilled()) {
            // 0: the peer's close_notify, the end of the stream.
            Ok(n) => {
                buf.advance(n);
                return Ok(Read::Filled);
            }
            Err(err) if would_block(&err) && !at_eof => {}
            // The TCP stream ended without close_notify: an end like any other here, since
            // WebSocket frames carry their own lengths (a cut frame is an error above).
            Err(err) if would_block(&err) || err.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(Read::Filled);
            }
            Err(err) => return Err(err),
        }
        match conn.read_tls(&mut NonBlocking(stream)) {
            Ok(0) => at_eof = true,
            Ok(_) => {
                conn.process_new_packets()
                    .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
            }
            Err(err) if would_block(&err) => return Ok(Read::Empty),
            Err(err) => return Err(err),
        }
    }
}

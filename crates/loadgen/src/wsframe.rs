//! A minimal WebSocket client codec (RFC 6455) for the receivers in [`crate::receivers`]: the
//! upgrade request and its answer, server frames (unmasked) read from a byte buffer, and masked
//! client frames. Just what a client of our server needs: no extensions, no subprotocols.
//!
//! Why not tungstenite here: its client is one task per socket, and handing its socket to a
//! shared poll loop after `welcome` would drop whatever it had already buffered (a presence
//! frame often follows `welcome` in the same read). Owning the bytes from the first read keeps
//! every frame.

use std::fmt;

use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Frame opcodes used here.
pub mod opcode {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// Text message.
    pub const TEXT: u8 = 0x1;
    /// Binary message.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// Largest message accepted (the server's frames are far smaller; a snapshot is the largest).
const MAX_MESSAGE: usize = 16 << 20;

/// Why the server's bytes are not a WebSocket stream we accept.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The upgrade was answered with something else than a valid `101`.
    Handshake(String),
    /// A frame breaks the protocol (masked server frame, reserved bits, bad lengths).
    Protocol(&'static str),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Handshake(answer) => write!(f, "upgrade refused: {answer}"),
            FrameError::Protocol(what) => write!(f, "bad frame: {what}"),
        }
    }
}

/// The HTTP upgrade request for `ws://{host}{path}` with this `Sec-WebSocket-Key`.
pub fn upgrade_request(host: &str, path: &str, key: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Checks the server's answer to the upgrade once `buf` holds all of its head. Returns
/// `Ok(None)` while the head is incomplete, else how many bytes of `buf` the head took (what
/// follows is already WebSocket frames).
pub fn upgrade_answer(buf: &[u8], key: &str) -> Result<Option<usize>, FrameError> {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        return if buf.len() > 16 << 10 {
            Err(FrameError::Handshake("answer head too long".into()))
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(FrameError::Handshake(status.to_string()));
    }
    let expected = derive_accept_key(key.as_bytes());
    let accepted = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("sec-websocket-accept") && value.trim() == expected
        })
    });
    if !accepted {
        return Err(FrameError::Handshake(
            "missing or wrong Sec-WebSocket-Accept".into(),
        ));
    }
    Ok(Some(end + 4))
}

/// A masked client frame (FIN set) carrying `payload`.
pub fn client_frame(op: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | op);
    match payload.len() {
        len @ 0..=125 => out.push(0x80 | len as u8),
        len @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// A whole message read from the server.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    /// The message's opcode (text, binary, close, ping or pong; never continuation).
    pub op: u8,
    /// Its payload (for a fragmented message, all fragments joined).
    pub payload: Vec<u8>,
}

/// Reads server frames from the bytes received so far; keeps a partial frame (and the first
/// fragments of a fragmented message) until the rest arrives.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed (dropped in one move, not per frame).
    start: usize,
    /// Opcode and payload so far of a fragmented message.
    partial: Option<(u8, Vec<u8>)>,
}

impl FrameReader {
    /// A reader that starts with bytes already received (what followed the upgrade answer).
    pub fn with_bytes(bytes: &[u8]) -> Self {
        Self {
            buf: bytes.to_vec(),
            ..Self::default()
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, if the bytes so far hold one.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        loop {
            let Some((fin, op, payload)) = self.next_frame()? else {
                return Ok(None);
            };
            match (op, self.partial.take()) {
                (opcode::CONTINUATION, Some((first_op, mut joined))) => {
                    joined.extend_from_slice(&payload);
                    if joined.len() > MAX_MESSAGE {
                        return Err(FrameError::Protocol("message too long"));
                    }
                    if fin {
                        return Ok(Some(Message {
                            op: first_op,
                            payload: joined,
                        }));
                    }
                    self.partial = Some((first_op, joined));
                }
                (opcode::CONTINUATION, None) => {
                    return Err(FrameError::Protocol("continuation without a start"));
                }
                // Control frames may come between fragments; they are never fragmented.
                (op, partial) if op >= opcode::CLOSE => {
                    self.partial = partial;
                    if !fin {
                        return Err(FrameError::Protocol("fragmented control frame"));
                    }
                    return Ok(Some(Message { op, payload }));
                }
                (_, Some(_)) => return Err(FrameError::Protocol("new message inside another")),
                (op, None) if fin => return Ok(Some(Message { op, payload })),
                (op, None) => self.partial = Some((op, payload)),
            }
        }
    }

    /// The next complete frame: (FIN, opcode, payload).
    fn next_frame(&mut self) -> Result<Option<(bool, u8, Vec<u8>)>, FrameError> {
        let bytes = &self.buf[self.start..];
        let [b0, b1, ..] = *bytes else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        if b1 & 0x80 != 0 {
            return Err(FrameError::Protocol("server frames are not masked"));
        }
        let (len, head) = match b1 & 0x7F {
            126 => match bytes.get(2..4) {
                Some(ext) => (u64::from(u16::from_be_bytes([ext[0], ext[1]])), 4),
                None => return Ok(None),
            },
            127 => match bytes
                .get(2..10)
                .and_then(|ext| <[u8; 8]>::try_from(ext).ok())
            {
                Some(ext) => (u64::from_be_bytes(ext), 10),
                None => return Ok(None),
            },
            len => (u64::from(len), 2),
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= MAX_MESSAGE)
            .ok_or(FrameError::Protocol("frame too long"))?;
        let Some(payload) = bytes.get(head..head + len) else {
            return Ok(None);
        };
        let frame = (b0 & 0x80 != 0, b0 & 0x0F, payload.to_vec());
        self.start += head + len;
        Ok(Some(frame))
    }
}

/// The close code of a close frame's payload (1005 when it carries none).
pub fn close_code(payload: &[u8]) -> u16 {
    match payload {
        [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
        _ => 1005,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

    /// Server frames as tungstenite writes them (the server's transport).
    fn server_frame(op: OpCode, payload: &[u8], fin: bool) -> Vec<u8> {
        let mut out = Vec::new();
        Frame::message(payload.to_vec(), op, fin)
            .format(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn reads_frames_of_every_length_class_split_anywhere() {
        let texts: Vec<Vec<u8>> = [5usize, 125, 126, 300, 65_535, 70_000]
            .iter()
            .map(|&n| (0..n).map(|i| b'a' + (i % 26) as u8).collect())
            .collect();
        let stream: Vec<u8> = texts
            .iter()
            .flat_map(|t| server_frame(OpCode::Data(Data::Text), t, true))
            .collect();
        for chunk in [1usize, 7, 1000, stream.len()] {
            let mut reader = FrameReader::default();
            let mut got = Vec::new();
            for part in stream.chunks(chunk) {
                reader.push(part);
                while let Some(message) = reader.next_message().unwrap() {
                    assert_eq!(message.op, opcode::TEXT);
                    got.push(message.payload);
                }
            }
            assert_eq!(got, texts, "chunk {chunk}");
        }
    }

    #[test]
    fn joins_fragments_around_a_control_frame() {
        let mut stream = server_frame(OpCode::Data(Data::Text), b"hel", false);
        Frame::ping(&b"p"[..]).format(&mut stream).unwrap();
        stream.extend(server_frame(OpCode::Data(Data::Continue), b"lo", true));
        let mut reader = FrameReader::with_bytes(&stream);
        let ping = reader.next_message().unwrap().unwrap();
        assert_eq!(
            (ping.op, ping.payload.as_slice()),
            (opcode::PING, &b"p"[..])
        );
        let text = reader.next_message().unwrap().unwrap();
        assert_eq!(
            (text.op, text.payload.as_slice()),
            (opcode::TEXT, &b"hello"[..])
        );
        assert_eq!(reader.next_message().unwrap(), None);
    }

    #[test]
    fn refuses_masked_or_reserved_frames() {
        let masked = client_frame(opcode::TEXT, b"x", [1, 2, 3, 4]);
        assert!(FrameReader::with_bytes(&masked).next_message().is_err());
        assert!(FrameReader::with_bytes(&[0xC1, 0]).next_message().is_err());
    }

    #[test]
    fn client_frames_unmask_to_their_payload() {
        for len in [0usize, 10, 126, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let frame = client_frame(opcode::TEXT, &payload, [9, 8, 7, 6]);
            let mut cursor = std::io::Cursor::new(&frame);
            let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            let mask = header.mask.unwrap();
            let body = &frame[cursor.position() as usize..];
            assert_eq!(len as usize, body.len());
            let unmasked: Vec<u8> = body
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, m)| b ^ m)
                .collect();
            assert_eq!(unmasked, payload);
            assert!(header.is_final && header.opcode == OpCode::Data(Data::Text));
        }
    }

    #[test]
    fn checks_the_upgrade_answer() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let answer = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x00";
        assert_eq!(upgrade_answer(&answer[..20], key), Ok(None));
        assert_eq!(upgrade_answer(answer, key), Ok(Some(answer.len() - 2)));
        let wrong = b"HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\n\r\n";
        assert!(upgrade_answer(wrong, key).is_err());
        assert!(upgrade_answer(b"HTTP/1.1 429 Too Many\r\n\r\n", key).is_err());
        assert_eq!(close_code(&[0x0F, 0xA0]), 4000);
        assert_eq!(close_code(&[]), 1005);
    }
}

//! Server-to-client WebSocket frames (RFC 6455 §5.2), encoded once and written as bytes.
//!
//! A published event goes to every viewer of an image unchanged, so its frame (header and
//! payload) is built once by the image's pump ([`fanout`](crate::fanout)) and the same bytes
//! are written to every viewer's socket ([`outlet`](crate::outlet); each TLS session encrypts
//! its own copy). Frames from a server are never masked and never fragmented here. (Close
//! frames go through tungstenite, which keeps the close handshake's state: `raw_socket`.)

use bytes::{BufMut, Bytes, BytesMut};

/// The opcodes the server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    /// A UTF-8 text message (every protocol frame).
    Text = 0x1,
    /// A binary message (never sent by the protocol; kept for the transport's interface).
    Binary = 0x2,
    /// A WebSocket-level ping.
    Ping = 0x9,
    /// The answer to a ping.
    Pong = 0xA,
}

/// One final frame with `payload`.
pub fn encode(opcode: Opcode, payload: &[u8]) -> Bytes {
    let len = payload.len();
    let mut out = BytesMut::with_capacity(len + 10);
    out.put_u8(0x80 | opcode as u8);
    match (u8::try_from(len), u16::try_from(len)) {
        (Ok(short), _) if short < 126 => out.put_u8(short),
        (_, Ok(medium)) => {
            out.put_u8(126);
            out.put_u16(medium);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
    out.put_slice(payload);
    out.freeze()
}

/// A text frame.
pub fn text(payload: &str) -> Bytes {
    encode(Opcode::Text, payload.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What tungstenite (the reader every test client uses) makes of `bytes`.
    fn decode(bytes: &[u8]) -> tungstenite::protocol::frame::Frame {
        let mut cursor = std::io::Cursor::new(bytes);
        let (header, len) = tungstenite::protocol::frame::FrameHeader::parse(&mut cursor)
            .expect("a valid header")
            .expect("a whole header");
        let start = cursor.position() as usize;
        assert_eq!(
            start + len as usize,
            bytes.len(),
            "nothing after the payload"
        );
        tungstenite::protocol::frame::Frame::from_payload(
            header,
            Bytes::copy_from_slice(&bytes[start..]),
        )
    }

    #[test]
    fn every_length_class_has_the_header_tungstenite_reads() {
        // 7-bit, 16-bit and 64-bit lengths, at and around each boundary.
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = "x".repeat(len);
            let frame = decode(&text(&payload));
            assert!(frame.header().is_final);
            assert!(frame.header().mask.is_none(), "server frames are unmasked");
            assert_eq!(
                frame.header().opcode,
                tungstenite::protocol::frame::coding::OpCode::Data(
                    tungstenite::protocol::frame::coding::Data::Text
                )
            );
            assert_eq!(frame.payload().len(), len, "length {len}");
            let header_len = if len < 126 {
                2
            } else if len <= 65_535 {
                4
            } else {
                10
            };
            assert_eq!(text(&payload).len(), header_len + len, "length {len}");
        }
    }
}

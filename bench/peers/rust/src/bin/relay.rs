//! The floor: a plain tokio-tungstenite relay with no persistence and no protocol beyond the
//! benchmark's. A client sends `{"type":"join","room":"…"}` and gets `{"type":"joined"}`; every
//! other text frame is an op: the sender gets `{"type":"ack","broadcastId":"…"}` (the op's own
//! id) and every member of the room, the sender included, gets `{"type":"event","op":<the
//! op>}`. One task per connection, one tokio broadcast channel per room: what fan-out costs on
//! this machine at all. Small transport buffers (a 4 KiB read buffer, image-chat's setting
//! before session 6) and frames written at once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames a room keeps for a member that is behind (image-chat's default per image).
const ROOM_BUFFER: usize = 256;

type Rooms = Arc<Mutex<HashMap<String, broadcast::Sender<Utf8Bytes>>>>;

#[derive(Deserialize)]
struct Join {
    room: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpId {
    broadcast_id: String,
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let addr = image_chat_bench_peers::listen_addr()?;
    let listener = TcpListener::bind(addr).await.map_err(|e| e.to_string())?;
    let local: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
    image_chat_bench_peers::announce("peer-relay", local);
    let rooms: Rooms = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream, Arc::clone(&rooms)));
    }
}

fn room(rooms: &Rooms, name: String) -> broadcast::Sender<Utf8Bytes> {
    let mut rooms = rooms
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    rooms
        .entry(name)
        .or_insert_with(|| broadcast::channel(ROOM_BUFFER).0)
        .clone()
}

async fn serve(stream: TcpStream, rooms: Rooms) {
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let Ok(mut ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let tx = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match serde_json::from_str::<Join>(&text) {
                Ok(join) => break room(&rooms, join.room),
                Err(_) => return,
            },
            Some(Ok(_)) => continue,
            _ => return,
        }
    };
    let mut rx = tx.subscribe();
    if ws
        .send(Message::text(r#"{"type":"joined"}"#))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(op))) => {
                    let Ok(id) = serde_json::from_str::<OpId>(&op) else { continue };
                    let ack = format!(r#"{{"type":"ack","broadcastId":"{}"}}"#, id.broadcast_id);
                    if ws.send(Message::text(ack)).await.is_err() {
                        return;
                    }
                    let _ = tx.send(Utf8Bytes::from(format!(r#"{{"type":"event","op":{op}}}"#)));
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            event = rx.recv() => match event {
                Ok(frame) => {
                    if ws.send(Message::Text(frame)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

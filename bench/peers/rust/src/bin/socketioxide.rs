//! socketioxide (Socket.IO on axum) with the benchmark's behaviour: a client emits
//! `join(room)` (acknowledged once it is in the room) and `op(op)`; the op is acknowledged with
//! `{"broadcastId": …}` (the op's own id) and broadcast as `event(op)` to every member of the
//! room, the sender included. No persistence. Defaults otherwise (WebSocket transport only, as
//! the load generator connects).

use serde::Deserialize;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, Extension, SocketRef};

/// The room a socket joined (kept in the socket's extensions).
#[derive(Clone)]
struct Room(String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpId {
    broadcast_id: Value,
}

async fn on_connect(socket: SocketRef) {
    socket.on(
        "join",
        async |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
            s.join(room.clone());
            s.extensions.insert(Room(room));
            let _ = ack.send(&"ok");
        },
    );
    socket.on(
        "op",
        async |s: SocketRef,
               Data(op): Data<Value>,
               ack: AckSender,
               Extension(room): Extension<Room>| {
            let id = serde_json::from_value::<OpId>(op.clone()).map(|o| o.broadcast_id);
            let _ = ack.send(&json!({ "broadcastId": id.unwrap_or(Value::Null) }));
            let _ = s.within(room.0).emit("event", &op).await;
        },
    );
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let addr = image_chat_bench_peers::listen_addr()?;
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", on_connect);
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    image_chat_bench_peers::announce("peer-socketioxide", local);
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

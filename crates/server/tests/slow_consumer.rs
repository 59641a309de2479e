//! A client that stops reading is cut off with close code 4000 ("slow consumer": reconnect and
//! resync) while a normal client of the same image keeps receiving every event promptly, and the
//! cut-off client can come back and resume. Over real sockets on 127.0.0.1:0; the same scenario
//! over wss:// is in `tls_hostile.rs` (both in `slow_consumer_support`).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod slow_consumer_support;
mod support;

use slow_consumer_support as scenario;
use support::{Client, WAIT, hello};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A ws:// client on a socket with a tiny receive buffer that says hello and then reads nothing.
async fn never_reading_client(
    addr: std::net::SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let tcp = scenario::small_receive_buffer(addr).await;
    let request = format!("ws://{addr}/ws").into_client_request().unwrap();
    let (mut slow, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(request, tcp))
        .await
        .expect("WebSocket handshake timed out")
        .unwrap();
    scenario::say_hello_only(&mut slow).await;
    slow
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_and_others_keep_receiving() {
    let (server, _dir) = scenario::start(None).await;
    let addr = server.local_addr();
    let mut publisher = Client::join(addr, scenario::IMAGE).await;
    let mut watcher = Client::join(addr, scenario::IMAGE).await;
    let mut slow = never_reading_client(addr).await;

    let resume = scenario::slow_one_is_cut_off_and_others_keep_receiving(
        server.app(),
        &mut publisher,
        &mut watcher,
        &mut slow,
    )
    .await;
    drop(slow);

    // The slow client resyncs from where it was.
    let mut back = Client::join_with(addr, hello(scenario::IMAGE, Some(resume.from))).await;
    scenario::assert_resumed(&mut back, resume).await;
    server.shutdown().await;
}

/// The backlog bound ends a connection by itself: once `backlog_frames` published frames wait
/// for a client that reads nothing, it is closed with 4000, long before its send timeout. With
/// a 20 s send timeout the scenario's rounds (bounded by WAIT, 10 s) must see the cut. (The
/// session, blocked in the flush of that backlog, is woken by the pump's end: before, the
/// connection stayed open, and counted in presence, until the send timeout.)
#[tokio::test]
async fn a_client_over_its_backlog_bound_is_cut_off_before_its_send_timeout() {
    let limits = image_chat_server::app::SessionLimits {
        send_timeout: std::time::Duration::from_secs(20),
        backlog_frames: 32,
        ..Default::default()
    };
    let (server, _dir) = scenario::start_with(limits, None).await;
    let addr = server.local_addr();
    let mut publisher = Client::join(addr, scenario::IMAGE).await;
    let mut watcher = Client::join(addr, scenario::IMAGE).await;
    let mut slow = never_reading_client(addr).await;
    scenario::slow_one_is_cut_off_and_others_keep_receiving(
        server.app(),
        &mut publisher,
        &mut watcher,
        &mut slow,
    )
    .await;
    server.shutdown().await;
}

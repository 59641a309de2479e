//! Hostile and slow clients over wss:// beside well-behaved ones. The server moves every wss
//! connection's bytes through its rustls session itself (`transport`, `outlet`), and the image's
//! pump writes each published frame into every viewer's socket: one viewer that stops reading,
//! or that stops in the middle of a TLS record or of a WebSocket frame, must not hold up the
//! others' deliveries, and is cut off (slow consumer) or dropped (hello / idle timeout) on its
//! own.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod slow_consumer_support;
mod support;

use std::time::Duration;

use image_chat_protocol::{ClientMessage, CloseCode, Event, ServerMessage};
use image_chat_server::app::SessionLimits;
use slow_consumer_support as scenario;
use support::wss::{self, SelfSigned, WssClient};
use support::{WAIT, commit, create_op, hello, start_unlimited};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

#[tokio::test]
async fn a_wss_client_that_never_reads_is_cut_off_and_others_keep_receiving() {
    let certificate = SelfSigned::generate();
    let (server, _dir) = scenario::start(Some(certificate.server.clone())).await;
    assert!(server.is_tls());
    let addr = server.local_addr();
    let cert = &certificate.cert;
    let mut publisher = WssClient::join_wss(addr, cert, hello(scenario::IMAGE, None)).await;
    let mut watcher = WssClient::join_wss(addr, cert, hello(scenario::IMAGE, None)).await;
    // TLS handshake and upgrade over a socket with a tiny receive buffer, a hello, and then
    // nothing read.
    let tcp = scenario::small_receive_buffer(addr).await;
    let mut slow = wss::upgrade(addr, cert, tcp).await;
    scenario::say_hello_only(&mut slow).await;

    let resume = scenario::slow_one_is_cut_off_and_others_keep_receiving(
        server.app(),
        &mut publisher,
        &mut watcher,
        &mut slow,
    )
    .await;
    drop(slow);

    // The slow client resyncs from where it was, over wss:// again.
    let mut back = WssClient::join_wss(addr, cert, hello(scenario::IMAGE, Some(resume.from))).await;
    scenario::assert_resumed(&mut back, resume).await;
    server.shutdown().await;
}

/// The hello and idle timeouts of the stall test: short, so that the stalled clients are
/// dropped within the test, and long enough that a loaded machine's rounds fit in them many
/// times over (the watcher is asserted not to wait this long for any round).
const STALL_TIMEOUT: Duration = Duration::from_secs(3);

/// A round of ops starts at most this often while the stalled clients wait to be dropped.
const STALL_ROUND_EVERY: Duration = Duration::from_millis(100);

/// Where a client stops.
#[derive(Clone, Copy, Debug)]
enum Stall {
    /// In a TLS record: its header and the first bytes of its body, written under rustls.
    TlsRecord,
    /// In a WebSocket frame: its header and the first bytes of its payload, in a whole TLS
    /// record (the server decrypts them and waits for the rest of the frame).
    WsFrame,
}

/// Writes the beginning of a TLS record or a WebSocket frame, and then nothing.
async fn stall(client: &mut WssClient, how: Stall) {
    match how {
        Stall::TlsRecord => {
            // Application data (TLS 1.3's record type for everything after the handshake),
            // announcing 512 bytes; 16 follow.
            let mut record = vec![0x17, 0x03, 0x03, 0x02, 0x00];
            record.extend([0xA5; 16]);
            client.tcp().write_all(&record).await.unwrap();
        }
        Stall::WsFrame => {
            // A final, masked text frame of 200 bytes (a 16-bit length), mask, 10 of them.
            let mut frame = vec![0x81, 0x80 | 126, 0x00, 200, 0x12, 0x34, 0x56, 0x78];
            frame.extend(b"{\"type\":\"h");
            let tls = client.ws.get_mut();
            tls.write_all(&frame).await.unwrap();
            tls.flush().await.unwrap();
        }
    }
}

/// Reads what reached a stalled viewer: events in order after its welcome (returns how many),
/// then the close frame (returns its code).
async fn events_then_close(client: &mut WssClient) -> (u64, u16) {
    let from = client.welcome().position;
    let (_, seen, code) = scenario::events_then_close(&mut client.ws, from).await;
    (seen, code)
}

#[tokio::test]
async fn wss_clients_stalled_mid_record_or_mid_frame_hold_up_no_one_and_are_dropped() {
    let limits = SessionLimits {
        hello_timeout: STALL_TIMEOUT,
        idle_timeout: STALL_TIMEOUT,
        ..SessionLimits::default()
    };
    let certificate = SelfSigned::generate();
    let (server, _dir) = start_unlimited(limits, Some(certificate.server.clone())).await;
    let addr = server.local_addr();
    let cert = &certificate.cert;
    let image = scenario::image();
    let join = || WssClient::join_wss(addr, cert, hello(scenario::IMAGE, None));
    let mut publisher = join().await;
    let mut watcher = join().await;

    // Viewers that said hello and then stopped in the middle of something (their idle timer
    // runs from the hello on), and connections that stopped before their hello.
    let mut live = Vec::new();
    let mut early = Vec::new();
    for how in [Stall::TlsRecord, Stall::WsFrame] {
        let mut viewer = join().await;
        stall(&mut viewer, how).await;
        live.push((how, viewer));
        let mut connection = WssClient::open_wss(addr, cert).await;
        stall(&mut connection, how).await;
        early.push((how, connection));
    }
    let stalled_at = Instant::now();
    scenario::wait_for_online(server.app(), &image, 4).await;

    // Rounds of ops until the stalled viewers are dropped (bounded by WAIT): the watcher gets
    // every event in order, and each round promptly. It pings each round, or it would be idle
    // for as long as the stalled ones.
    let mut sent = 0u64;
    let mut rounds = 0u32;
    let mut worst = Duration::ZERO;
    let dropped_after = loop {
        assert!(
            stalled_at.elapsed() < WAIT,
            "the stalled viewers were not dropped in time"
        );
        let started = Instant::now();
        for i in 0..4 {
            let op = create_op(0.1 + 0.2 * f64::from(i), 0.5, "while others stall");
            publisher.send(&ClientMessage::CreateChat(op)).await;
        }
        watcher.send(&ClientMessage::Ping { nonce: 7 }).await;
        let (mut events, mut ponged) = (0, false);
        while events < 4 || !ponged {
            match watcher.recv_skip_presence().await {
                ServerMessage::Pong(_) => ponged = true,
                // Alone, or gathered into a batch by the image's pump.
                other => {
                    let batch = other
                        .into_events()
                        .unwrap_or_else(|o| panic!("expected event {}, got {o:?}", sent + 1));
                    for e in batch {
                        sent += 1;
                        events += 1;
                        assert!(matches!(e, Event::NewImageChat(_)), "unexpected {e:?}");
                        assert_eq!(e.seq(), sent, "the watcher's events in order");
                    }
                }
            }
        }
        worst = worst.max(started.elapsed());
        rounds += 1;
        publisher.acks_and_echoes(4).await;
        if server.app().presence.count(&image).await == 2 {
            break stalled_at.elapsed();
        }
        tokio::time::sleep_until(started + STALL_ROUND_EVERY).await;
    };
    println!(
        "stalled viewers dropped {dropped_after:?} after stalling; {sent} events in {rounds} \
         rounds meanwhile, worst round to the watcher {worst:?}"
    );
    assert!(
        worst < STALL_TIMEOUT,
        "the watcher was held up by the stalled clients: {worst:?}"
    );

    // The stalled viewers were written to all along (the pump does not wait for their reads),
    // then closed for their silence; the connections stalled before hello likewise.
    let timeout = CloseCode::Timeout.code();
    for (how, mut viewer) in live {
        let (seen, code) = events_then_close(&mut viewer).await;
        println!("{how:?} viewer: {seen} events, then close code {code}");
        assert!(seen > 0, "{how:?}: no event reached the stalled viewer");
        assert_eq!(
            code, timeout,
            "{how:?}: the stalled viewer is dropped as idle"
        );
    }
    for (how, mut connection) in early {
        let code = connection.closed().await;
        assert_eq!(code, timeout, "{how:?}: no hello in time");
    }

    // The watcher is still served, and nothing else waits for it.
    let seq = commit(
        &mut publisher,
        ClientMessage::CreateChat(create_op(0.5, 0.9, "after the stalls")),
    )
    .await;
    match watcher.recv_skip_presence().await {
        ServerMessage::NewImageChat(e) => assert_eq!(e.seq, seq),
        other => panic!("expected event {seq}, got {other:?}"),
    }
    watcher.assert_quiet().await;
    server.shutdown().await;
}

//! The `image-chat-server` binary as an operator runs it: configured by environment variables
//! and flags, printing its bound address, serving static files, the health check and the
//! WebSocket, and shutting down on SIGTERM with a "reconnect" close code for its clients.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use support::*;

/// Kills the child if a test fails half-way, so no server outlives its test.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(dir: &std::path::Path) -> (ServerProcess, SocketAddr) {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<h1>demo page</h1>").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_image-chat-server"))
        .arg("serve")
        .arg("--www-dir")
        .arg(&www)
        .env("IMAGE_CHAT_LISTEN", "127.0.0.1:0")
        .env("IMAGE_CHAT_DATABASE", dir.join("demo.db"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let process = ServerProcess(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("image-chat-server listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .parse()
        .unwrap();
    (process, addr)
}

#[tokio::test]
async fn binary_serves_and_shuts_down_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut process, addr) = spawn(dir.path());

    assert_eq!(http_get(addr, "/healthz").await, (200, "ok".to_owned()));
    let (status, body) = http_get(addr, "/").await;
    assert_eq!(status, 200);
    assert!(body.contains("demo page"));
    let (status, _) = http_get(addr, "/pkg/image_chat.js").await;
    assert_eq!(status, 404, "no --pkg-dir given");

    let mut client = Client::join(addr, "img").await;
    let seq = commit(
        &mut client,
        image_chat_protocol::ClientMessage::CreateChat(create_op(0.5, 0.5, "before SIGTERM")),
    )
    .await;
    assert_eq!(seq, 1);

    let pid = process.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    assert_eq!(client.closed().await, 1012, "clients are told to reconnect");
    let status = tokio::task::spawn_blocking(move || process.0.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status:?}");

    // The acked change is on disk: a new server on the same file has it.
    let (_again, addr) = spawn(dir.path());
    let reader = Client::join(addr, "img").await;
    let chats = &reader.welcome().snapshot.as_ref().unwrap().chats;
    assert_eq!(chats[0].comments[0].text, "before SIGTERM");
}

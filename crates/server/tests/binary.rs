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
    spawn_with(dir, &[])
}

fn spawn_with(dir: &std::path::Path, args: &[&std::ffi::OsStr]) -> (ServerProcess, SocketAddr) {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "<h1>demo page</h1>").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_image-chat-server"))
        .arg("serve")
        .arg("--www-dir")
        .arg(&www)
        .args(args)
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

/// The widget travels compressed: a browser that accepts Brotli or gzip gets the twin the build
/// wrote beside each file, with `Content-Encoding`; one that accepts neither gets the file.
#[tokio::test]
async fn widget_files_are_served_precompressed_when_the_browser_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    // The server sends the twins as they are (it never compresses per request), so their
    // content only has to be distinguishable here.
    std::fs::write(pkg.join("w.wasm"), "plain bytes").unwrap();
    std::fs::write(pkg.join("w.wasm.gz"), "gzip twin").unwrap();
    std::fs::write(pkg.join("w.wasm.br"), "brotli twin").unwrap();
    std::fs::write(pkg.join("only-plain.js"), "plain only").unwrap();
    let (_process, addr) = spawn_with(dir.path(), &["--pkg-dir".as_ref(), pkg.as_os_str()]);

    let cases = [
        ("", "plain bytes", None),
        ("Accept-Encoding: gzip\r\n", "gzip twin", Some("gzip")),
        (
            "Accept-Encoding: gzip, deflate, br\r\n",
            "brotli twin",
            Some("br"),
        ),
        ("Accept-Encoding: identity\r\n", "plain bytes", None),
    ];
    for (headers, body, encoding) in cases {
        let response = http_raw_with(addr, "/pkg/w.wasm", headers).await;
        let (head, got) = response.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{headers:?}: {head}");
        assert_eq!(got, body, "{headers:?}");
        match encoding {
            Some(e) => assert!(head.contains(&format!("content-encoding: {e}")), "{head}"),
            None => assert!(!head.contains("content-encoding"), "{head}"),
        }
        assert!(head.contains("content-type: application/wasm"), "{head}");
        assert!(
            head.contains("vary: accept-encoding"),
            "caches keep the encodings apart"
        );
    }
    // No twin: the file itself, whatever the browser accepts.
    let response = http_raw_with(addr, "/pkg/only-plain.js", "Accept-Encoding: gzip, br\r\n").await;
    assert!(response.ends_with("\r\n\r\nplain only"), "{response}");
    assert!(!response.to_ascii_lowercase().contains("content-encoding"));
}

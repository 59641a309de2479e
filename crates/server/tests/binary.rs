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
    let built_in = if image_chat_server::embedded::has_widget() {
        200
    } else {
        503
    };
    assert_eq!(status, built_in, "no --pkg-dir given: the widget built in");

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

/// Lower-cased head and body of a raw HTTP response.
fn split_response(response: &str) -> (String, &str) {
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_ascii_lowercase(), body)
}

/// Every real site embeds the widget from another origin than the server's: the loader's
/// module `import()` of the glue (and the glue's of its snippets) and the `fetch` of the wasm
/// are CORS requests, refused by the browser without `Access-Control-Allow-Origin`. Public,
/// credential-free files: any origin may read them (the WebSocket's origin check decides who
/// may use the server). The wasm keeps `application/wasm` (streaming compilation needs it)
/// whichever twin is sent, and nothing is sniffed.
#[tokio::test]
async fn widget_files_load_from_any_origin() {
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    let snippets = pkg.join("snippets/image-chat-0123/src/dom");
    std::fs::create_dir_all(&snippets).unwrap();
    std::fs::write(pkg.join("image_chat_bg.wasm"), "wasm").unwrap();
    std::fs::write(pkg.join("image_chat_bg.wasm.br"), "wasm, brotli").unwrap();
    std::fs::write(pkg.join("image_chat.js"), "export default 1").unwrap();
    std::fs::write(pkg.join("image_chat.js.gz"), "glue, gzip").unwrap();
    std::fs::write(snippets.join("bulk.js"), "export {}").unwrap();
    // `--pkg-dir` is the whole widget, its loader included (scripts/build-widget.sh copies it).
    std::fs::write(pkg.join("embed.js"), "(function(){})()").unwrap();
    let (_process, addr) = spawn_with(dir.path(), &["--pkg-dir".as_ref(), pkg.as_os_str()]);
    std::fs::write(dir.path().join("www/embed.js"), "www's copy, not served").unwrap();

    let origin = "Origin: http://site.example:9001\r\n";
    let cases = [
        ("/embed.js", "", "text/javascript"),
        (
            "/pkg/image_chat.js",
            "Accept-Encoding: gzip\r\n",
            "text/javascript",
        ),
        (
            "/pkg/image_chat_bg.wasm",
            "Accept-Encoding: br\r\n",
            "application/wasm",
        ),
        ("/pkg/image_chat_bg.wasm", "", "application/wasm"),
        (
            "/pkg/snippets/image-chat-0123/src/dom/bulk.js",
            "",
            "text/javascript",
        ),
    ];
    for (path, extra, content_type) in cases {
        let response = http_raw_with(addr, path, &format!("{origin}{extra}")).await;
        let (head, _) = split_response(&response);
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        for expected in [
            "access-control-allow-origin: *",
            "cross-origin-resource-policy: cross-origin",
            "x-content-type-options: nosniff",
            "vary: accept-encoding",
        ] {
            assert!(
                head.contains(expected),
                "{path} {extra:?}: {expected} in {head}"
            );
        }
        assert!(
            head.contains(&format!("content-type: {content_type}")),
            "{path}: {head}"
        );
        assert!(
            !head.contains("vary: origin"),
            "one answer for every origin"
        );
    }
    let (_, body) = http_get(addr, "/embed.js").await;
    assert_eq!(body, "(function(){})()", "the loader comes from --pkg-dir");
}

/// The demo pages run under a strict Content Security Policy (no inline script, the widget's
/// wasm allowed, connections only back to this server); other files need none.
#[tokio::test]
async fn demo_pages_carry_a_content_security_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (_process, addr) = spawn(dir.path());
    std::fs::write(dir.path().join("www/site.js"), "//").unwrap();

    let response = http_raw(addr, "/").await;
    let (head, body) = split_response(&response);
    assert!(body.contains("demo page"));
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("content-security-policy: "))
        .unwrap_or_else(|| panic!("no CSP on the demo page: {head}"));
    assert!(
        csp.contains("script-src 'self' 'wasm-unsafe-eval'"),
        "{csp}"
    );
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("'unsafe-eval'"), "{csp}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");

    let response = http_raw(addr, "/site.js").await;
    let (head, _) = split_response(&response);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("content-security-policy"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
}

/// A symlink inside a static directory that leads out of it is not followed (404, as if it did
/// not exist): neither as the file, nor as a directory on the way, nor as the compressed twin
/// the server would pick for the browser. Links that stay inside keep working.
#[tokio::test]
async fn static_files_do_not_follow_symlinks_out_of_their_directory() {
    use std::os::unix::fs::symlink;

    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP SECRET").unwrap();
    std::fs::write(pkg.join("w.wasm"), "plain bytes").unwrap();
    symlink(&secret, pkg.join("w.wasm.br")).unwrap();
    let (_process, addr) = spawn_with(dir.path(), &["--pkg-dir".as_ref(), pkg.as_os_str()]);
    let www = dir.path().join("www");
    symlink(&secret, www.join("leak.txt")).unwrap();
    symlink(dir.path(), www.join("up")).unwrap();
    symlink(www.join("index.html"), www.join("alias.html")).unwrap();

    for path in ["/leak.txt", "/up/secret.txt", "/up/"] {
        let response = http_raw(addr, path).await;
        assert!(response.starts_with("HTTP/1.1 404"), "{path}: {response}");
        assert!(!response.contains("TOP SECRET"), "{path}: {response}");
    }
    let response = http_raw_with(addr, "/pkg/w.wasm", "Accept-Encoding: br\r\n").await;
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    assert!(!response.contains("TOP SECRET"), "{response}");

    let (status, body) = http_get(addr, "/alias.html").await;
    assert_eq!((status, body.as_str()), (200, "<h1>demo page</h1>"));
    let response = http_raw(addr, "/pkg/w.wasm").await;
    assert!(response.ends_with("\r\n\r\nplain bytes"), "{response}");
}

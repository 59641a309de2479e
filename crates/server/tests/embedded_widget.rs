//! The widget built into the binary: `image-chat-server serve` with no asset flags serves
//! `/embed.js` and every `/pkg/…` file byte for byte as `scripts/build-widget.sh` wrote them
//! (with the precompressed twin the browser accepts, the right type, CORS and an ETag), and a
//! binary built without a widget says so instead of serving nothing. The browser side (a page on
//! another origin mounting the widget from such a binary) is `e2e/install.test.mjs`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::net::SocketAddr;

use image_chat_server::embedded::{self, Asset};
use support::process::ServerProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw HTTP/1.1 GET: (status, lower-cased headers, body bytes).
async fn get(addr: SocketAddr, path: &str, headers: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(support::WAIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(response[..split].to_vec()).unwrap();
    let body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn url_of(asset: &Asset) -> String {
    if asset.path == "embed.js" {
        "/embed.js".to_owned()
    } else {
        format!("/pkg/{}", asset.path)
    }
}

#[tokio::test]
async fn serve_with_no_asset_flags_serves_the_widget_built_in() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::serve(dir.path(), &[], &[], false);
    let Some(widget) = embedded::WIDGET else {
        // Built before `scripts/build-widget.sh` ran (scripts/test.sh runs the native tests
        // first): the binary must say so, not serve an empty 404.
        let (status, _, body) = get(server.addr, "/embed.js", "").await;
        assert_eq!(status, 503);
        assert_eq!(String::from_utf8(body).unwrap(), embedded::MISSING);
        let (status, _, _) = get(server.addr, "/pkg/image_chat_bg.wasm", "").await;
        assert_eq!(status, 503);
        return;
    };
    for essential in ["embed.js", "image_chat.js", "image_chat_bg.wasm"] {
        assert!(
            widget.iter().any(|a| a.path == essential),
            "{essential} embedded"
        );
    }
    for asset in widget {
        let url = url_of(asset);
        let (status, headers, body) = get(server.addr, &url, "").await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(body, asset.identity, "{url} as built");
        let wasm = asset.path.ends_with(".wasm");
        let expected_type = if wasm {
            "application/wasm"
        } else {
            "text/javascript"
        };
        assert_eq!(header(&headers, "content-type"), Some(expected_type));
        assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
        assert_eq!(
            header(&headers, "cross-origin-resource-policy"),
            Some("cross-origin")
        );
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&headers, "vary"), Some("accept-encoding"));
        assert_eq!(header(&headers, "content-encoding"), None);
        let etag = header(&headers, "etag").unwrap().to_owned();

        if let Some(br) = asset.br {
            let (status, headers, body) =
                get(server.addr, &url, "Accept-Encoding: gzip, deflate, br\r\n").await;
            assert_eq!(status, 200);
            assert_eq!(header(&headers, "content-encoding"), Some("br"));
            assert_eq!(header(&headers, "content-type"), Some(expected_type));
            assert_eq!(body, br);
        }
        if let Some(gzip) = asset.gzip {
            let (_, headers, body) = get(server.addr, &url, "Accept-Encoding: gzip\r\n").await;
            assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
            assert_eq!(body, gzip);
        }
        let (status, _, body) = get(server.addr, &url, &format!("If-None-Match: {etag}\r\n")).await;
        assert_eq!(status, 304, "{url} revalidates");
        assert!(body.is_empty());
    }
    let (status, _, _) = get(server.addr, "/pkg/no-such-file.js", "").await;
    assert_eq!(status, 404);
}

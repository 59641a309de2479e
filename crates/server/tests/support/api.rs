//! HTTP requests to the server's JSON APIs written on a raw TCP socket (every byte under the
//! test's control), and a server with API-keyed tenants.

use std::net::SocketAddr;
use std::sync::Arc;

use image_chat_protocol::{Auth, Hello, ImageId, TenantId};
use image_chat_server::app::SessionLimits;
use image_chat_server::broker::memory::MemoryBroker;
use image_chat_server::http::StaticDirs;
use image_chat_server::limits::Limits;
use image_chat_server::store::sqlite::{SqliteConfig, SqliteStore};
use image_chat_server::tenant::Tenants;
use image_chat_server::{RunningServer, Security, ServerParts};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// Asserts the admin API's JSON error shape with this status and code.
    #[track_caller]
    pub fn error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{}",
            self.head
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "only code and message: {body}"
        );
    }
}

/// One HTTP/1.1 request on a fresh TCP connection; the response read to its end.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // A server may answer (413) before reading a large body, and close: that is fine.
    let _ = stream.write_all(body.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .expect("response in time");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        head: head.to_owned(),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The admin API's prefix.
pub const BASE: &str = "/admin/api/v1/tenants";

/// A server (SQLite in a temp dir, no HTTP API rate limit) with the tenants of `toml`.
pub struct ApiEnv {
    pub server: RunningServer,
    pub dir: tempfile::TempDir,
}

impl ApiEnv {
    pub async fn start(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = Self::start_in(&dir, toml).await;
        Self { server, dir }
    }

    async fn start_in(dir: &tempfile::TempDir, toml: &str) -> RunningServer {
        let store = SqliteStore::open(&dir.path().join("db"), SqliteConfig::default()).unwrap();
        let mut tenants = Tenants::builtin();
        tenants.merge_toml(toml, "test").unwrap();
        RunningServer::start(ServerParts {
            listen: "127.0.0.1:0".parse().unwrap(),
            store: Arc::new(store),
            broker: Arc::new(MemoryBroker::default()),
            presence: None,
            cluster_rates: None,
            tenants,
            limits: SessionLimits::default(),
            dirs: StaticDirs::default(),
            security: Security {
                limits: Limits {
                    api_requests: None,
                    ..Limits::default()
                },
                tls: None,
            },
        })
        .await
        .unwrap()
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// A request with `key` as bearer (`None`: no Authorization header); a body is sent as
    /// JSON.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut headers = String::new();
        if let Some(key) = key {
            headers.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        if body.is_some() {
            headers.push_str("Content-Type: application/json\r\n");
        }
        request(self.addr(), method, path, &headers, body.unwrap_or("")).await
    }
}

/// An anonymous `hello` for `tenant`'s `image`.
pub fn hello_for(tenant: &str, image: &str) -> Hello {
    Hello {
        protocol: 1,
        tenant_id: TenantId::new(tenant),
        subject: ImageId::new(image).into(),
        auth: Some(Auth::Anonymous {
            name: "Reader".into(),
            token: None,
        }),
        resume: None,
    }
}

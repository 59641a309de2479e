//! wss:// for the tests: a self-signed certificate made in memory (rcgen), the server's rustls
//! configuration for it, and clients that trust only that certificate. A client can bring its
//! own TCP stream (e.g. one with a tiny receive buffer) and reach the TLS stream and the socket
//! under it (to write partial records or frames behind rustls's and tungstenite's backs).

use std::net::SocketAddr;
use std::sync::Arc;

use image_chat_protocol::Hello;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;

use super::{Client, WAIT};

/// A WebSocket over TLS, as the client sees it.
pub type Wss = WebSocketStream<TlsStream<TcpStream>>;

/// A protocol client over wss://.
pub type WssClient = Client<TlsStream<TcpStream>>;

/// A certificate for "localhost" and the server configuration that presents it.
pub struct SelfSigned {
    pub cert: CertificateDer<'static>,
    pub server: Arc<rustls::ServerConfig>,
}

impl SelfSigned {
    pub fn generate() -> Self {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = made.cert.der().clone();
        let key = PrivateKeyDer::from(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
        let server = image_chat_server::tls::config_from(vec![cert.clone()], key).unwrap();
        Self { cert, server }
    }
}

/// A rustls client that trusts only these certificates.
pub fn connector<'a>(
    trusted: impl IntoIterator<Item = &'a CertificateDer<'static>>,
) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// Completes the TLS handshake (as "localhost", trusting only `cert`) and the WebSocket
/// upgrade to wss://localhost:PORT/ws over `tcp`, connected to `addr`.
pub async fn upgrade(addr: SocketAddr, cert: &CertificateDer<'static>, tcp: TcpStream) -> Wss {
    let name = ServerName::try_from("localhost").unwrap();
    let stream = tokio::time::timeout(WAIT, connector([cert]).connect(name, tcp))
        .await
        .expect("TLS handshake timed out")
        .unwrap();
    let url = format!("wss://localhost:{}/ws", addr.port());
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(url, stream))
        .await
        .expect("WebSocket handshake timed out")
        .unwrap();
    ws
}

/// Opens wss://localhost:PORT/ws over a fresh connection to `addr`.
pub async fn connect(addr: SocketAddr, cert: &CertificateDer<'static>) -> Wss {
    let tcp = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("TCP connect timed out")
        .unwrap();
    upgrade(addr, cert, tcp).await
}

impl WssClient {
    /// Opens wss:// without saying hello.
    pub async fn open_wss(addr: SocketAddr, cert: &CertificateDer<'static>) -> Self {
        Self {
            ws: connect(addr, cert).await,
            welcome: None,
        }
    }

    /// Opens wss://, says `hello` and reads the welcome.
    pub async fn join_wss(addr: SocketAddr, cert: &CertificateDer<'static>, hello: Hello) -> Self {
        Self::open_wss(addr, cert).await.say_hello(hello).await
    }

    /// The TCP socket under the TLS session (writes here bypass rustls).
    pub fn tcp(&mut self) -> &mut TcpStream {
        self.ws.get_mut().get_mut().0
    }
}

//! wss:// against a spawned server (`--tls`): a self-signed certificate for [`NAME`] written
//! into the server's temp dir (the server reads it through `--tls-cert` / `--tls-key`), and one
//! rustls client configuration that trusts only that certificate, shared by every client.
//!
//! The files stay in the directory for the server's whole life, so a restart on the same
//! address (the storm scenario) and a sibling node (the hop scenario) present the same
//! certificate, and clients keep trusting it.
//!
//! WebSocket clients get their TLS from tokio-tungstenite; [`connect`] is the handshake of the
//! raw attackers of the hostile scenario, which speak HTTP themselves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The name the certificate is for, sent as SNI and checked by the clients. Their TCP
/// connections still go to the server's loopback address, without a name lookup.
pub const NAME: &str = "localhost";

/// Why the TLS setup could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// rcgen could not make the certificate.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// rustls refused the certificate or the protocol versions.
    #[error("cannot build the TLS client configuration: {0}")]
    Client(#[from] rustls::Error),
}

/// The TLS side of a spawned server: its certificate files and the clients' configuration.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The certificate (PEM), for `--tls-cert`.
    pub cert: PathBuf,
    /// Its private key (PEM), for `--tls-key`.
    pub key: PathBuf,
    /// The configuration of every client of this server: trusts only [`Self::cert`].
    pub client: Arc<ClientConfig>,
}

impl ServerTls {
    /// Generates a self-signed certificate for [`NAME`] into `dir` (`cert.pem`, `key.pem`).
    pub fn generate(dir: &Path) -> Result<Self, TlsSetupError> {
        let generated = rcgen::generate_simple_self_signed(vec![NAME.to_owned()])?;
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        for (path, pem) in [
            (&cert, generated.cert.pem()),
            (&key, generated.signing_key.serialize_pem()),
        ] {
            std::fs::write(path, pem).map_err(|source| TlsSetupError::Write {
                path: path.clone(),
                source,
            })?;
        }
        let mut roots = RootCertStore::empty();
        roots.add(generated.cert.der().clone())?;
        // The ring provider, as the server uses: no process-wide default provider to install.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            cert,
            key,
            client: Arc::new(client),
        })
    }
}

/// Completes a TLS handshake over `tcp` as a client of [`NAME`] with `config` (which trusts only
/// the spawned server's certificate).
pub async fn connect(
    config: &Arc<ClientConfig>,
    tcp: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    // A constant, valid DNS name: the error cannot happen, but is an error rather than a panic.
    let name = ServerName::try_from(NAME)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
}

/// Test servers that present a generated certificate, as the image-chat server does.
#[cfg(test)]
pub(crate) mod test_support {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    use super::ServerTls;

    /// A rustls server from the PEM files `generate` wrote, as the image-chat server loads them.
    pub(crate) fn acceptor(tls: &ServerTls) -> tokio_rustls::TlsAcceptor {
        let certs = CertificateDer::pem_file_iter(&tls.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&tls.key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::MaybeTlsStream;
    use tokio_tungstenite::tungstenite::Message;

    use super::test_support::acceptor;
    use super::*;
    use crate::client::{self, Endpoint};

    /// Serves one wss:// connection that echoes one text frame; returns the SNI it was given.
    async fn echo_once(
        listener: TcpListener,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Option<String> {
        let (tcp, _) = listener.accept().await.ok()?;
        let stream = acceptor.accept(tcp).await.ok()?;
        let sni = stream.get_ref().1.server_name().map(str::to_owned);
        let mut ws = tokio_tungstenite::accept_async(stream).await.ok()?;
        if let Some(Ok(Message::Text(text))) = ws.next().await {
            ws.send(Message::Text(text)).await.ok()?;
        }
        sni
    }

    #[tokio::test]
    async fn clients_reach_a_server_with_the_generated_certificate_over_wss() {
        let dir = tempfile::tempdir().unwrap();
        let tls = ServerTls::generate(dir.path()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(echo_once(listener, acceptor(&tls)));

        let endpoint = Endpoint {
            addr,
            tls: Some(Arc::clone(&tls.client)),
        };
        let mut ws = client::open_socket(&endpoint).await.unwrap();
        let MaybeTlsStream::Rustls(stream) = ws.get_ref() else {
            panic!("expected a TLS socket");
        };
        assert!(stream.get_ref().0.nodelay().unwrap(), "Nagle stays off");
        ws.send(Message::text("over wss")).await.unwrap();
        let echoed = tokio::time::timeout(client::CONNECT_TIMEOUT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(echoed, Message::text("over wss"));
        assert_eq!(server.await.unwrap().as_deref(), Some(NAME));
    }

    #[tokio::test]
    async fn clients_trust_only_their_own_servers_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let tls = ServerTls::generate(dir.path()).unwrap();
        let other_dir = tempfile::tempdir().unwrap();
        let other = ServerTls::generate(other_dir.path()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(echo_once(listener, acceptor(&tls)));

        let stranger = Endpoint {
            addr,
            tls: Some(Arc::clone(&other.client)),
        };
        let refused = client::open_socket(&stranger).await;
        assert!(
            refused.is_err(),
            "a certificate it does not trust was accepted"
        );
        assert_eq!(server.await.unwrap(), None);
    }
}
